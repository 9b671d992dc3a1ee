/* Calls from several threads at once: guards acquired and released concurrently with
 * a trigger, concurrent triggers, concurrent waiters, milestone callbacks counted. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>

#define THREADS 4
#define ROUNDS 5000

typedef struct {
    const shutdown_t *sd;
    uint32_t kind;
    atomic_long admitted;
    atomic_long refused;
} shared_t;

static void *hammer(void *arg) {
    shared_t *s = (shared_t *)arg;
    for (int i = 0; i < ROUNDS; i++) {
        shutdown_guard_t *g = NULL, *child = NULL;
        shutdown_status_t st = (i % 3 == 0) ? shutdown_guard_acquire_of(s->sd, s->kind, &g)
                                            : shutdown_guard_acquire(s->sd, &g);
        if (st == SHUTDOWN_STATUS_ADMISSION_CLOSED) {
            CHECK(g == NULL);
            atomic_fetch_add(&s->refused, 1);
            continue;
        }
        CHECK_OK(st);
        atomic_fetch_add(&s->admitted, 1);
        if (i % 5 == 0)
            CHECK_OK(shutdown_guard_child(g, &child));
        (void)shutdown_should_close(s->sd);
        (void)shutdown_is_ready(s->sd);
        shutdown_guard_release(child);
        shutdown_guard_release(g);
    }
    return NULL;
}

static atomic_int milestones;
static void count_milestone(void *user_data, shutdown_milestone_t m) {
    (void)user_data;
    (void)m;
    atomic_fetch_add(&milestones, 1);
}

static void test_guards_from_many_threads_during_a_trigger(void) {
    shutdown_config_builder_t *cfg = default_config();
    shutdown_t *sd = new_engine(cfg);
    shared_t s;
    s.sd = sd;
    CHECK_OK(shutdown_kind(sd, "http", &s.kind));
    atomic_init(&s.admitted, 0);
    atomic_init(&s.refused, 0);
    atomic_store(&milestones, 0);
    CHECK_OK(shutdown_on_milestone(sd, count_milestone, NULL));
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, hammer, &s) == 0);
    sleep_ms(5);
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_OK(shutdown_wait(sd));
    CHECK(atomic_load(&s.admitted) + atomic_load(&s.refused) == (long)THREADS * ROUNDS);
    CHECK(in_flight_of(sd) == 0);
    CHECK(atomic_load(&milestones) == 4);
    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0); /* every admitted guard was released before the deadline */
    shutdown_free(sd);
}

static void *trigger_once(void *arg) {
    CHECK_OK(shutdown_trigger((const shutdown_t *)arg, SHUTDOWN_REASON_KIND_SIGNAL, "SIGTERM"));
    return NULL;
}

static void *wait_done(void *arg) {
    CHECK_OK(shutdown_wait((const shutdown_t *)arg));
    CHECK(phase_of((const shutdown_t *)arg) == SHUTDOWN_PHASE_DONE);
    return NULL;
}

static void test_concurrent_triggers_and_waiters(void) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_OK(shutdown_config_builder_set_force_at(cfg, 0));
    CHECK_OK(shutdown_config_builder_set_terminate_at(cfg, 0));
    shutdown_t *sd = new_engine(cfg);
    pthread_t waiters[3], triggers[THREADS];
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&waiters[i], NULL, wait_done, sd) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&triggers[i], NULL, trigger_once, sd) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(triggers[i], NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(waiters[i], NULL);
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    uint32_t n = 0;
    CHECK_OK(shutdown_report_triggers(r, &n));
    CHECK(n >= 1 && n <= THREADS); /* triggers after Done are not counted */
    shutdown_report_free(r);
    shutdown_free(sd);
}

static void *intern_kinds(void *arg) {
    const shutdown_t *sd = (const shutdown_t *)arg;
    char name[16];
    for (int i = 0; i < 32; i++) {
        uint32_t id = 0;
        snprintf(name, sizeof name, "kind%d", i);
        CHECK_OK(shutdown_kind(sd, name, &id));
        shutdown_guard_t *g = NULL;
        CHECK_OK(shutdown_guard_acquire_of(sd, id, &g));
        shutdown_guard_release(g);
    }
    return NULL;
}

static void test_kinds_from_many_threads(void) {
    shutdown_t *sd = new_engine(manual_config());
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, intern_kinds, sd) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    uint32_t a = 0, b = 0;
    CHECK_OK(shutdown_kind(sd, "kind7", &a));
    CHECK_OK(shutdown_kind(sd, "kind7", &b));
    CHECK(a == b && a < 64);
    shutdown_free(sd);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_guards_from_many_threads_during_a_trigger),
        TEST(test_concurrent_triggers_and_waiters),
        TEST(test_kinds_from_many_threads),
    };
    return RUN_TESTS("threads", tests);
}
