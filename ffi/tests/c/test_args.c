/* Every bad-argument path: NULL everywhere, invalid configurations, bad strings and
 * enum values, wrong clock, out-parameters left untouched on failure, and the
 * _free/_release(NULL) no-ops. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdlib.h>

#define SENTINEL ((void *)0x5a5a)

static int noop_hook(void *u, char *m, size_t l) {
    (void)u;
    (void)m;
    (void)l;
    return 0;
}
static void noop_deferred(void *u, shutdown_hook_done_t *d) {
    (void)u;
    shutdown_hook_done(d, 0, NULL);
}
static void noop_milestone(void *u, shutdown_milestone_t m) {
    (void)u;
    (void)m;
}
static void noop_cancel(void *u) { (void)u; }

static void test_null_everywhere(void) {
    shutdown_config_builder_t *cfg = manual_config();
    shutdown_t *out = (shutdown_t *)SENTINEL;
    CHECK_STATUS(shutdown_new(NULL, &out), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(out == (shutdown_t *)SENTINEL);
    CHECK_STATUS(shutdown_new(cfg, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    shutdown_config_builder_free(cfg);
    CHECK_STATUS(shutdown_config_builder_new(NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_validate(NULL, NULL, 0, NULL, 0), SHUTDOWN_STATUS_NULL_PARAMETER);
    const int sigterm = 15;
    CHECK_STATUS(shutdown_config_builder_set_drain_delay_ms(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_announce_probes(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_announce_settle_ms(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_drain_timeout_ms(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_close_timeout_ms(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_grace_period_ms(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_force_at(NULL, 2), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_terminate_at(NULL, 3), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_same_signal_window_ms(NULL, 1000), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_forced_exit_code(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_close_strategy(NULL, SHUTDOWN_CLOSE_STRATEGY_GRADUAL),
                 SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_signals(NULL, &sigterm, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_manual_clock(NULL, true), SHUTDOWN_STATUS_NULL_PARAMETER);

    uint64_t u64 = 7;
    uint32_t u32 = 7;
    int i = 7;
    shutdown_phase_t ph = 7;
    shutdown_milestone_t ms = 7;
    shutdown_guard_t *g = (shutdown_guard_t *)SENTINEL;
    shutdown_report_t *r = (shutdown_report_t *)SENTINEL;
    CHECK_STATUS(shutdown_listen_signals(NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_trigger(NULL, SHUTDOWN_REASON_KIND_MANUAL, "x"), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_trigger_signal(NULL, 15), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_readiness_probed(NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_phase(NULL, &ph), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(ph == 7);
    CHECK(!shutdown_is_ready(NULL));
    CHECK(!shutdown_is_accepting(NULL));
    CHECK(!shutdown_should_close(NULL));
    CHECK(!shutdown_is_cancelled(NULL));
    CHECK_STATUS(shutdown_in_flight(NULL, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_fd(NULL, &i), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_fd_clear(NULL, &ms), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_cancel_fd(NULL, &i), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_milestone(NULL, noop_milestone, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_cancel(NULL, noop_cancel, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_wait(NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_wait_timeout(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_exit_code(NULL, &i), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_advance(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_advance_us(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_elapsed_us(NULL, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_acquire(NULL, &g), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_kind(NULL, "http", &u32), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_acquire_of(NULL, 0, &g), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_acquire_kind(NULL, "http", &g), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_child(NULL, &g), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_close(NULL, "x", 0, 0, noop_hook, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_close_deferred(NULL, "x", 0, 0, noop_deferred, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_hook_done(NULL, 0, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report(NULL, &r), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(g == (shutdown_guard_t *)SENTINEL && r == (shutdown_report_t *)SENTINEL);
    CHECK(u64 == 7 && u32 == 7 && i == 7 && ms == 7);

    /* The report accessors. */
    const char *s = (const char *)SENTINEL;
    int32_t i32 = 7;
    shutdown_reason_kind_t rk = 7;
    shutdown_forced_t fc = 7;
    size_t sz = 7;
    shutdown_hook_report_t hr;
    CHECK_STATUS(shutdown_report_json(NULL, &s), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_exit_code(NULL, &i32), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_reason_kind(NULL, &rk), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_reason_detail(NULL, &s), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_triggers(NULL, &u32), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_duplicate_triggers(NULL, &u32), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_forced(NULL, &fc), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_in_flight_at_trigger(NULL, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_aborted(NULL, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_aborted_kind_count(NULL, &sz), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_hook_count(NULL, &sz), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_total_us(NULL, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_aborted_kind(NULL, 0, &s, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_milestone_us(NULL, SHUTDOWN_MILESTONE_DONE, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_hook(NULL, 0, &hr), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(s == (const char *)SENTINEL && i32 == 7 && rk == 7 && fc == 7 && sz == 7);

    /* NULL handles to free or release do nothing. */
    shutdown_free(NULL);
    shutdown_guard_release(NULL);
    shutdown_report_free(NULL);
}

static void test_null_out_params_and_callbacks(void) {
    shutdown_t *sd = new_engine(manual_config());
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_STATUS(shutdown_phase(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_in_flight(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_fd(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_fd_clear(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_cancel_fd(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_exit_code(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_elapsed_us(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_acquire(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_acquire_of(sd, 0, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_acquire_kind(sd, "x", NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_acquire_kind(sd, NULL, &g), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_kind(sd, "x", NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_kind(sd, NULL, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_guard_child(g, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_milestone(sd, NULL, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_cancel(sd, NULL, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_close(sd, NULL, 0, 0, noop_hook, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_close(sd, "x", 0, 0, NULL, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_RUNNING); /* nothing was triggered */

    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "x"));
    shutdown_guard_release(g);
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    uint64_t u64 = 0;
    const char *s = NULL;
    CHECK_STATUS(shutdown_report_json(r, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_exit_code(r, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_reason_detail(r, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_aborted_kind(r, 0, NULL, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_aborted_kind(r, 0, &s, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_aborted_kind(r, 0, &s, &u64), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(shutdown_report_milestone_us(r, SHUTDOWN_MILESTONE_DONE, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_report_hook(r, 0, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    shutdown_report_free(r);
    shutdown_free(sd);
}

/* Checks `b` as shutdown_new() would: when `field` is set, the core must name it (in
 * the field buffer and in the message); shutdown_new() must agree. */
static shutdown_status_t validate(const shutdown_config_builder_t *b, const char *field) {
    char name[SHUTDOWN_CONFIG_FIELD_LEN] = "untouched";
    char msg[256] = "untouched";
    shutdown_status_t st = shutdown_config_builder_validate(b, name, sizeof name, msg, sizeof msg);
    if (field != NULL) {
        CHECK_STR(name, field);
        if (strstr(msg, field) == NULL) {
            fprintf(stderr, "  message \"%s\" does not name %s\n", msg, field);
            harness_failures++;
        }
    } else {
        CHECK_STR(name, "untouched"); /* nothing is written on success */
        CHECK_STR(msg, "untouched");
    }
    shutdown_t *sd = (shutdown_t *)SENTINEL;
    CHECK_STATUS(shutdown_new(b, &sd), st);
    if (st == SHUTDOWN_STATUS_OK)
        shutdown_free(sd);
    else
        CHECK(sd == (shutdown_t *)SENTINEL);
    return st;
}

/* The builder `c` freed and replaced by one holding the defaults. */
#define FRESH() (shutdown_config_builder_free(c), c = default_config())

static void test_invalid_configs(void) {
    shutdown_config_builder_t *c = default_config();
    CHECK_OK(validate(c, NULL));

    FRESH();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(c, 0));
    CHECK_STATUS(validate(c, "drain_timeout"), SHUTDOWN_STATUS_INVALID_CONFIG);
    FRESH();
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(c, 0));
    CHECK_STATUS(validate(c, "close_timeout"), SHUTDOWN_STATUS_INVALID_CONFIG);
    /* The defaults: no drain delay + 25 s drain + 5 s hooks fill the 30 s grace period. */
    FRESH();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(c, 25000));
    CHECK_OK(validate(c, NULL));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(c, 25001));
    CHECK_STATUS(validate(c, "grace_period"), SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK_OK(shutdown_config_builder_set_grace_period_ms(c, 0)); /* no grace-period check */
    CHECK_OK(validate(c, NULL));
    FRESH();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(c, UINT64_MAX));
    CHECK_OK(shutdown_config_builder_set_grace_period_ms(c, 0));
    CHECK_STATUS(validate(c, "drain_timeout"), SHUTDOWN_STATUS_INVALID_CONFIG);
    FRESH();
    CHECK_OK(shutdown_config_builder_set_announce_probes(c, 2)); /* needs a drain delay */
    CHECK_STATUS(validate(c, "announce_probes"), SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK_OK(shutdown_config_builder_set_drain_delay_ms(c, 1000));
    CHECK_OK(validate(c, NULL));
    CHECK_OK(shutdown_config_builder_set_announce_probes(c, 0)); /* not a count: off is the default */
    CHECK_STATUS(validate(c, "announce_probes"), SHUTDOWN_STATUS_INVALID_CONFIG);
    FRESH();
    CHECK_OK(shutdown_config_builder_set_force_at(c, 1));
    CHECK_STATUS(validate(c, "escalation"), SHUTDOWN_STATUS_INVALID_CONFIG);
    FRESH();
    CHECK_OK(shutdown_config_builder_set_terminate_at(c, 2)); /* not after force_at */
    CHECK_STATUS(validate(c, "escalation"), SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK_OK(shutdown_config_builder_set_force_at(c, 0)); /* no forcing: terminating at 2 is fine */
    CHECK_OK(validate(c, NULL));
    FRESH();
    CHECK_OK(shutdown_config_builder_set_forced_exit_code(c, 0));
    CHECK_STATUS(validate(c, "forced_exit_code"), SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK_OK(shutdown_config_builder_set_forced_exit_code(c, 256));
    CHECK_STATUS(validate(c, "forced_exit_code"), SHUTDOWN_STATUS_INVALID_CONFIG);
    FRESH();
    const int sigkill[] = {15, 9}; /* SIGKILL cannot be handled */
    CHECK_OK(shutdown_config_builder_set_signals(c, sigkill, 2));
    CHECK_STATUS(validate(c, "signals"), SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK_OK(shutdown_config_builder_set_signals(c, NULL, 0)); /* no signals at all */
    CHECK_OK(validate(c, NULL));

    /* Both buffers are optional, and truncated to their sizes. */
    FRESH();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(c, 0));
    CHECK_STATUS(shutdown_config_builder_validate(c, NULL, 100, NULL, 100), SHUTDOWN_STATUS_INVALID_CONFIG);
    char tiny[8] = "xxxxxxx", small[4] = "xxx";
    CHECK_STATUS(shutdown_config_builder_validate(c, small, 0, tiny, 0), SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK(tiny[0] == 'x' && small[0] == 'x');
    CHECK_STATUS(shutdown_config_builder_validate(c, small, sizeof small, tiny, sizeof tiny),
                 SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK_STR(small, "dra");
    CHECK(strlen(tiny) == sizeof tiny - 1);
    shutdown_config_builder_free(c);
}

static void test_setters_refuse_bad_values(void) {
    shutdown_config_builder_t *c = default_config();
    /* A refused value leaves the builder as it was (still valid). */
    CHECK_STATUS(shutdown_config_builder_set_close_strategy(c, 7), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    int many[SHUTDOWN_MAX_SIGNALS + 1];
    for (size_t i = 0; i < SHUTDOWN_MAX_SIGNALS + 1; i++)
        many[i] = 15;
    CHECK_STATUS(shutdown_config_builder_set_signals(c, many, SHUTDOWN_MAX_SIGNALS + 1),
                 SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(shutdown_config_builder_set_signals(c, NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_OK(shutdown_config_builder_set_signals(c, many, SHUTDOWN_MAX_SIGNALS));
    CHECK_OK(validate(c, NULL));
    shutdown_config_builder_free(c);
    shutdown_config_builder_free(NULL);
}

static void test_one_builder_many_engines(void) {
    /* shutdown_new() copies the builder: it builds several engines, changed in between,
     * and engines outlive it. */
    shutdown_config_builder_t *c = manual_config();
    CHECK_OK(shutdown_config_builder_set_forced_exit_code(c, 7));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(c, 100));
    shutdown_t *a = NULL, *b = NULL;
    CHECK_OK(shutdown_new(c, &a));
    CHECK_OK(shutdown_config_builder_set_forced_exit_code(c, 9));
    CHECK_OK(shutdown_new(c, &b));
    shutdown_config_builder_free(c);
    shutdown_t *engines[2] = {a, b};
    int want[2] = {7, 9};
    for (int i = 0; i < 2; i++) {
        shutdown_guard_t *g = NULL;
        CHECK_OK(shutdown_guard_acquire(engines[i], &g));
        CHECK_OK(shutdown_trigger(engines[i], SHUTDOWN_REASON_KIND_MANUAL, "x"));
        CHECK_OK(shutdown_advance(engines[i], 100)); /* drain deadline: forced */
        int code = -1;
        CHECK_OK(shutdown_exit_code(engines[i], &code));
        CHECK(code == want[i]);
        shutdown_guard_release(g);
        shutdown_free(engines[i]);
    }
}

static void test_bad_strings_and_values(void) {
    shutdown_t *sd = new_engine(manual_config());
    shutdown_guard_t *g = (shutdown_guard_t *)SENTINEL;
    uint32_t id = 7;
    /* Invalid UTF-8 */
    CHECK_STATUS(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "bad \xc3\x28"), SHUTDOWN_STATUS_INVALID_UTF8);
    CHECK_STATUS(shutdown_kind(sd, "\x80", &id), SHUTDOWN_STATUS_INVALID_UTF8);
    CHECK_STATUS(shutdown_guard_acquire_kind(sd, "\xff", &g), SHUTDOWN_STATUS_INVALID_UTF8);
    /* Overlong */
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    CHECK_STATUS(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, big), SHUTDOWN_STATUS_STRING_TOO_LONG);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_RUNNING);
    big[300] = '\0';
    CHECK_STATUS(shutdown_kind(sd, big, &id), SHUTDOWN_STATUS_STRING_TOO_LONG);
    big[65] = '\0';
    CHECK_STATUS(shutdown_kind(sd, big, &id), SHUTDOWN_STATUS_INVALID_NAME); /* kinds: 1..64 */
    CHECK_STATUS(shutdown_kind(sd, "", &id), SHUTDOWN_STATUS_INVALID_NAME);
    CHECK(id == 7 && g == (shutdown_guard_t *)SENTINEL);
    /* Unknown enum values and kind ids */
    CHECK_STATUS(shutdown_trigger(sd, 42, "x"), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(shutdown_guard_acquire_of(sd, 0, &g), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(shutdown_guard_acquire_of(sd, 1000, &g), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK(g == (shutdown_guard_t *)SENTINEL);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_RUNNING);
    /* Too many kinds */
    char name[16];
    shutdown_status_t last = SHUTDOWN_STATUS_OK;
    for (int i = 0; i < 70 && last == SHUTDOWN_STATUS_OK; i++) {
        snprintf(name, sizeof name, "k%d", i);
        last = shutdown_kind(sd, name, &id);
    }
    CHECK_STATUS(last, SHUTDOWN_STATUS_TOO_MANY_KINDS);
    CHECK(id == 63);

    /* The longest detail accepted: 4096 bytes. */
    memset(big, 'a', 4999);
    big[4096] = '\0';
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, big));
    shutdown_report_t *r = NULL;
    const char *detail = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    CHECK_OK(shutdown_report_reason_detail(r, &detail));
    CHECK(detail != NULL && strlen(detail) == 4096);
    shutdown_report_free(r);
    free(big);
    CHECK_STATUS(shutdown_on_close(sd, "late", 0, 0, noop_hook, NULL), SHUTDOWN_STATUS_TOO_LATE);
    shutdown_free(sd);
}

static void keep_done(void *user_data, shutdown_hook_done_t *done) {
    *(shutdown_hook_done_t **)user_data = done;
}

static void test_hook_done_with_a_bad_message_is_not_consumed(void) {
    shutdown_t *sd = new_engine(manual_config());
    shutdown_hook_done_t *done = NULL;
    CHECK_OK(shutdown_on_close_deferred(sd, "d", 0, 0, keep_done, &done));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "x"));
    CHECK(done != NULL);
    CHECK_STATUS(shutdown_hook_done(done, 1, "\xfe"), SHUTDOWN_STATUS_INVALID_UTF8);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_CLOSING);
    CHECK_OK(shutdown_hook_done(done, 1, "d failed"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    shutdown_free(sd);
}

static void test_wrong_clock_and_not_done(void) {
    shutdown_t *real = new_engine(default_config());
    CHECK_STATUS(shutdown_advance(real, 10), SHUTDOWN_STATUS_NOT_MANUAL_CLOCK);
    CHECK_STATUS(shutdown_advance_us(real, 10), SHUTDOWN_STATUS_NOT_MANUAL_CLOCK);
    int code = 7;
    CHECK_STATUS(shutdown_exit_code(real, &code), SHUTDOWN_STATUS_NOT_DONE);
    CHECK(code == 7);
    shutdown_free(real);

    shutdown_t *sd = new_engine(manual_config());
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "x"));
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    uint64_t us = 7;
    CHECK_STATUS(shutdown_report_milestone_us(r, SHUTDOWN_MILESTONE_NONE, &us), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(shutdown_report_milestone_us(r, 99, &us), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK(us == 7);
    shutdown_report_free(r);
    shutdown_free(sd);

    /* A deadline never reached: NOT_FOUND. */
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_delay_ms(cfg, 100));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 100));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 100));
    sd = new_engine(cfg);
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "x"));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "x"));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "x"));
    CHECK_OK(shutdown_report(sd, &r));
    CHECK_OK(shutdown_report_milestone_us(r, SHUTDOWN_MILESTONE_DONE, &us));
    shutdown_report_free(r);
    shutdown_free(sd);
}

static void test_status_strings_and_version(void) {
    for (uint32_t s = 0; s <= 16; s++) {
        const char *text = shutdown_status_str(s);
        CHECK(text != NULL && text[0] != '\0');
    }
    CHECK_STR(shutdown_status_str(SHUTDOWN_STATUS_OK), "ok");
    CHECK_STR(shutdown_status_str(1000), "unknown status");
    CHECK_STR(shutdown_status_str(SHUTDOWN_STATUS_ADMISSION_CLOSED), "admission is closed");
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", SHUTDOWN_MAJOR, SHUTDOWN_MINOR, SHUTDOWN_PATCH);
    CHECK_STR(shutdown_version(), version);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_null_everywhere),
        TEST(test_null_out_params_and_callbacks),
        TEST(test_invalid_configs),
        TEST(test_setters_refuse_bad_values),
        TEST(test_one_builder_many_engines),
        TEST(test_bad_strings_and_values),
        TEST(test_hook_done_with_a_bad_message_is_not_consumed),
        TEST(test_wrong_clock_and_not_done),
        TEST(test_status_strings_and_version),
    };
    return RUN_TESTS("args", tests);
}
