/* A minimal test harness for the C tests of libshutdown: CHECK macros and a runner
 * that prints one line per test and a closing "N passed, M failed" line. */
#ifndef SHUTDOWN_TEST_HARNESS_H
#define SHUTDOWN_TEST_HARNESS_H

#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <shutdown.h>

static atomic_int harness_failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            harness_failures++;                                                     \
        }                                                                           \
    } while (0)

#define CHECK_STATUS(expr, want)                                                    \
    do {                                                                            \
        shutdown_status_t got_ = (expr);                                            \
        if (got_ != (shutdown_status_t)(want)) {                                    \
            fprintf(stderr, "  %s:%d: %s gave %u (%s), expected %u (%s)\n", __FILE__, \
                    __LINE__, #expr, (unsigned)got_, shutdown_status_str(got_),     \
                    (unsigned)(want), shutdown_status_str(want));                   \
            harness_failures++;                                                     \
        }                                                                           \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, SHUTDOWN_STATUS_OK)

#define CHECK_STR(got, want)                                                        \
    do {                                                                            \
        const char *g_ = (got), *w_ = (want);                                       \
        if (g_ == NULL || strcmp(g_, w_) != 0) {                                    \
            fprintf(stderr, "  %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__,   \
                    __LINE__, #got, g_ ? g_ : "(null)", w_);                        \
            harness_failures++;                                                     \
        }                                                                           \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

#define TEST(fn) { #fn, fn }

static int run_tests(const char *program, const test_case *tests, size_t n) {
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        int before = harness_failures;
        tests[i].fn();
        if (harness_failures == before) {
            passed++;
            printf("ok   %s/%s\n", program, tests[i].name);
        } else {
            failed++;
            printf("FAIL %s/%s\n", program, tests[i].name);
        }
        fflush(stdout);
    }
    printf("%s: %d passed, %d failed\n", program, passed, failed);
    return failed == 0 ? 0 : 1;
}

#define RUN_TESTS(program, tests) run_tests(program, tests, sizeof(tests) / sizeof(tests[0]))

/* Helpers shared by the tests. */

/* A configuration builder holding the defaults; new_engine() frees it. */
static inline shutdown_config_builder_t *default_config(void) {
    shutdown_config_builder_t *b = NULL;
    CHECK_OK(shutdown_config_builder_new(&b));
    return b;
}

static inline shutdown_config_builder_t *manual_config(void) {
    shutdown_config_builder_t *b = default_config();
    CHECK_OK(shutdown_config_builder_set_manual_clock(b, true));
    return b;
}

/* Builds an engine from `cfg` and frees the builder (tests build one engine each). */
static inline shutdown_t *new_engine(shutdown_config_builder_t *cfg) {
    shutdown_t *sd = NULL;
    CHECK_OK(shutdown_new(cfg, &sd));
    shutdown_config_builder_free(cfg);
    return sd;
}

static inline shutdown_phase_t phase_of(const shutdown_t *sd) {
    shutdown_phase_t p = (shutdown_phase_t)99;
    CHECK_OK(shutdown_phase(sd, &p));
    return p;
}

static inline uint64_t in_flight_of(const shutdown_t *sd) {
    uint64_t n = 999;
    CHECK_OK(shutdown_in_flight(sd, &n));
    return n;
}

/* Whether fd is readable now (poll with a zero timeout). */
static inline int readable(int fd) {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static inline void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Milestones recorded by a callback, with the engine's clock. */
typedef struct {
    const shutdown_t *sd;
    int n;
    shutdown_milestone_t seen[16];
    uint64_t at_us[16];
} trace_t;

static inline void record_milestone(void *user_data, shutdown_milestone_t m) {
    trace_t *t = (trace_t *)user_data;
    if (t->n < 16) {
        uint64_t us = 0;
        shutdown_elapsed_us(t->sd, &us);
        t->seen[t->n] = m;
        t->at_us[t->n] = us;
        t->n++;
    }
}

#endif
