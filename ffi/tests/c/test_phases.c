/* Phase transitions, the announce window, the drain deadline, escalation, child and
 * labelled guards, and the report, on the manual clock (no wall-clock dependency). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdlib.h>

static shutdown_report_t *report_of(const shutdown_t *sd) {
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    return r;
}

static uint64_t reached_us(const shutdown_report_t *r, shutdown_milestone_t m) {
    uint64_t us = 12345678;
    CHECK_OK(shutdown_report_milestone_us(r, m, &us));
    return us;
}

static void deferred_keep(void *user_data, shutdown_hook_done_t *done) {
    *(shutdown_hook_done_t **)user_data = done;
}

static void test_every_phase_transition(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    shutdown_t *sd = new_engine(cfg);
    trace_t trace = {sd, 0, {0}, {0}};
    CHECK_OK(shutdown_on_milestone(sd, record_milestone, &trace));
    shutdown_hook_done_t *done = NULL;
    CHECK_OK(shutdown_on_close_deferred(sd, "db", 0, 0, deferred_keep, &done));

    /* Running */
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_RUNNING);
    CHECK(shutdown_is_ready(sd));
    CHECK(shutdown_is_accepting(sd));
    CHECK(!shutdown_should_close(sd));
    CHECK(!shutdown_is_cancelled(sd));
    int code = -7;
    CHECK_STATUS(shutdown_exit_code(sd, &code), SHUTDOWN_STATUS_NOT_DONE);
    CHECK(code == -7);
    shutdown_report_t *none = NULL;
    CHECK_STATUS(shutdown_report(sd, &none), SHUTDOWN_STATUS_NOT_DONE);
    CHECK(none == NULL);

    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK(g != NULL);
    CHECK(in_flight_of(sd) == 1);

    /* Draining (no drain_delay: admission closes at once) */
    CHECK_OK(shutdown_advance(sd, 10));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_SIGNAL, "SIGTERM"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK(!shutdown_is_ready(sd));
    CHECK(!shutdown_is_accepting(sd));
    CHECK(shutdown_should_close(sd));
    CHECK(!shutdown_is_cancelled(sd));
    shutdown_guard_t *refused = (shutdown_guard_t *)&trace; /* a sentinel: must stay */
    CHECK_STATUS(shutdown_guard_acquire(sd, &refused), SHUTDOWN_STATUS_ADMISSION_CLOSED);
    CHECK(refused == (shutdown_guard_t *)&trace);
    CHECK(trace.n == 2);

    /* Closing: the last guard leaves 40 ms later; the hook runs */
    CHECK_OK(shutdown_advance(sd, 40));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    shutdown_guard_release(g);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_CLOSING);
    CHECK(done != NULL);
    CHECK(in_flight_of(sd) == 0);
    CHECK(!shutdown_is_cancelled(sd));

    /* Done */
    CHECK_OK(shutdown_advance(sd, 5));
    CHECK_OK(shutdown_hook_done(done, 0, NULL));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(shutdown_is_cancelled(sd));
    CHECK(!shutdown_is_ready(sd));
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0);
    CHECK_OK(shutdown_wait(sd));
    CHECK_OK(shutdown_wait_timeout(sd, 0));

    shutdown_milestone_t want[4] = {SHUTDOWN_MILESTONE_DRAINING, SHUTDOWN_MILESTONE_QUIESCING,
                                    SHUTDOWN_MILESTONE_CLOSING, SHUTDOWN_MILESTONE_DONE};
    uint64_t want_at[4] = {10000, 10000, 50000, 55000};
    CHECK(trace.n == 4);
    for (int i = 0; i < 4 && i < trace.n; i++) {
        CHECK(trace.seen[i] == want[i]);
        CHECK(trace.at_us[i] == want_at[i]);
    }

    shutdown_report_t *r = report_of(sd);
    int32_t ec = -1;
    CHECK_OK(shutdown_report_exit_code(r, &ec));
    CHECK(ec == 0);
    shutdown_reason_kind_t kind = 99;
    const char *detail = NULL;
    CHECK_OK(shutdown_report_reason_kind(r, &kind));
    CHECK(kind == SHUTDOWN_REASON_KIND_SIGNAL);
    CHECK_OK(shutdown_report_reason_detail(r, &detail));
    CHECK_STR(detail, "SIGTERM");
    uint32_t triggers = 0;
    CHECK_OK(shutdown_report_triggers(r, &triggers));
    CHECK(triggers == 1);
    shutdown_forced_t forced = 99;
    CHECK_OK(shutdown_report_forced(r, &forced));
    CHECK(forced == SHUTDOWN_FORCED_NONE);
    uint64_t n = 99;
    CHECK_OK(shutdown_report_in_flight_at_trigger(r, &n));
    CHECK(n == 1);
    CHECK_OK(shutdown_report_aborted(r, &n));
    CHECK(n == 0);
    CHECK(reached_us(r, SHUTDOWN_MILESTONE_DRAINING) == 0);
    CHECK(reached_us(r, SHUTDOWN_MILESTONE_QUIESCING) == 0);
    CHECK(reached_us(r, SHUTDOWN_MILESTONE_CLOSING) == 40000);
    CHECK(reached_us(r, SHUTDOWN_MILESTONE_DONE) == 45000);
    CHECK_OK(shutdown_report_total_us(r, &n));
    CHECK(n == 45000);
    size_t hooks = 0;
    CHECK_OK(shutdown_report_hook_count(r, &hooks));
    CHECK(hooks == 1);
    shutdown_hook_report_t h;
    CHECK_OK(shutdown_report_hook(r, 0, &h));
    CHECK_STR(h.name, "db");
    CHECK(h.outcome == SHUTDOWN_HOOK_OUTCOME_OK);
    CHECK(h.message == NULL);
    CHECK(h.duration_us == 5000);
    const char *json = NULL;
    CHECK_OK(shutdown_report_json(r, &json));
    CHECK(json != NULL && strstr(json, "\"reason\":{\"kind\":\"signal\",\"detail\":\"SIGTERM\"}") != NULL);
    CHECK(json != NULL && strstr(json, "\"exit_code\":0") != NULL);
    CHECK(json != NULL && strstr(json, "{\"milestone\":\"closing\",\"at_ms\":40.0}") != NULL);
    shutdown_report_free(r);

    /* A trigger after Done changes nothing. */
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "again"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    shutdown_free(sd);
}

static void test_announce_window(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_delay_ms(cfg, 300));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    shutdown_t *sd = new_engine(cfg);
    trace_t trace = {sd, 0, {0}, {0}};
    CHECK_OK(shutdown_on_milestone(sd, record_milestone, &trace));
    int fd = -1;
    CHECK_OK(shutdown_fd(sd, &fd));

    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK(!shutdown_is_ready(sd));
    CHECK(shutdown_is_accepting(sd)); /* late requests are still served */
    CHECK(shutdown_should_close(sd)); /* immediate advice */
    shutdown_milestone_t m = 99;
    CHECK(readable(fd));
    CHECK_OK(shutdown_fd_clear(sd, &m));
    CHECK(m == SHUTDOWN_MILESTONE_DRAINING);
    CHECK(!readable(fd));

    shutdown_guard_t *late = NULL;
    CHECK_OK(shutdown_advance(sd, 299));
    CHECK_OK(shutdown_guard_acquire(sd, &late));
    CHECK(shutdown_is_accepting(sd));
    CHECK(!readable(fd));
    CHECK_OK(shutdown_advance(sd, 1));
    CHECK(!shutdown_is_accepting(sd));
    CHECK(readable(fd));
    CHECK_OK(shutdown_fd_clear(sd, &m));
    CHECK(m == SHUTDOWN_MILESTONE_QUIESCING);
    CHECK(trace.n == 2 && trace.at_us[1] == 300000);

    CHECK_OK(shutdown_advance(sd, 100));
    shutdown_guard_release(late);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(readable(fd));
    CHECK_OK(shutdown_fd_clear(sd, &m));
    CHECK(m == SHUTDOWN_MILESTONE_DONE);
    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0);
    shutdown_free(sd);
}

static void test_adaptive_announce(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_delay_ms(cfg, 5000));
    CHECK_OK(shutdown_config_builder_set_announce_probes(cfg, 2));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    shutdown_t *sd = new_engine(cfg);
    CHECK_OK(shutdown_readiness_probed(sd)); /* ignored while Running */
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK_OK(shutdown_advance(sd, 10));
    CHECK_OK(shutdown_readiness_probed(sd));
    CHECK(shutdown_is_accepting(sd));
    CHECK_OK(shutdown_advance(sd, 10));
    CHECK_OK(shutdown_readiness_probed(sd));
    /* admission stays open for announce_settle_ms (default 100) after the last probe */
    CHECK(shutdown_is_accepting(sd));
    CHECK_OK(shutdown_advance(sd, 99));
    CHECK(shutdown_is_accepting(sd));
    CHECK_OK(shutdown_advance(sd, 1));
    CHECK(!shutdown_is_accepting(sd));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE); /* nothing in flight, no hooks */
    shutdown_report_t *r = report_of(sd);
    CHECK(reached_us(r, SHUTDOWN_MILESTONE_QUIESCING) == 120000);
    shutdown_report_free(r);
    shutdown_free(sd);
}

static int cancel_calls;
static void on_cancel(void *user_data) {
    (void)user_data;
    cancel_calls++;
}

static void test_drain_deadline_with_guards_left(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 100));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 50));
    CHECK_OK(shutdown_config_builder_set_forced_exit_code(cfg, 3));
    shutdown_t *sd = new_engine(cfg);
    uint32_t http = 99, http2 = 98;
    CHECK_OK(shutdown_kind(sd, "http", &http));
    CHECK_OK(shutdown_kind(sd, "http", &http2));
    CHECK(http == http2);
    shutdown_guard_t *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    CHECK_OK(shutdown_guard_acquire_of(sd, http, &a));
    CHECK_OK(shutdown_guard_acquire_of(sd, http, &b));
    CHECK_OK(shutdown_guard_acquire_kind(sd, "job", &c));
    CHECK_OK(shutdown_guard_acquire(sd, &d));
    int cfd = -1;
    CHECK_OK(shutdown_cancel_fd(sd, &cfd));
    cancel_calls = 0;
    CHECK_OK(shutdown_on_cancel(sd, on_cancel, NULL));

    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_FATAL, "out of memory"));
    shutdown_guard_release(c);
    CHECK_OK(shutdown_advance(sd, 99));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK(!shutdown_is_cancelled(sd));
    CHECK(!readable(cfd));
    CHECK(cancel_calls == 0);
    CHECK_OK(shutdown_advance(sd, 1));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(shutdown_is_cancelled(sd));
    CHECK(readable(cfd));
    CHECK(readable(cfd)); /* stays readable */
    CHECK(cancel_calls == 1);
    CHECK_OK(shutdown_on_cancel(sd, on_cancel, NULL)); /* already fired: called at once */
    CHECK(cancel_calls == 2);

    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 3);
    shutdown_report_t *r = report_of(sd);
    shutdown_forced_t forced = 99;
    CHECK_OK(shutdown_report_forced(r, &forced));
    CHECK(forced == SHUTDOWN_FORCED_DRAIN_TIMEOUT);
    uint64_t n = 0;
    CHECK_OK(shutdown_report_aborted(r, &n));
    CHECK(n == 3);
    CHECK_OK(shutdown_report_in_flight_at_trigger(r, &n));
    CHECK(n == 4);
    size_t kinds = 0;
    CHECK_OK(shutdown_report_aborted_kind_count(r, &kinds));
    CHECK(kinds == 1);
    const char *name = NULL;
    CHECK_OK(shutdown_report_aborted_kind(r, 0, &name, &n));
    CHECK_STR(name, "http");
    CHECK(n == 2);
    shutdown_reason_kind_t kind = 99;
    CHECK_OK(shutdown_report_reason_kind(r, &kind));
    CHECK(kind == SHUTDOWN_REASON_KIND_FATAL);
    const char *json = NULL;
    CHECK_OK(shutdown_report_json(r, &json));
    CHECK(strstr(json, "\"aborted_by_kind\":{\"http\":2}") != NULL);
    CHECK(strstr(json, "\"forced\":\"drain_timeout\",\"exit_code\":3") != NULL);
    shutdown_report_free(r);
    /* Aborted guards are still released by their owners, after Done and after free. */
    shutdown_guard_release(a);
    shutdown_free(sd);
    shutdown_guard_release(b);
    shutdown_guard_release(d);
}

static void test_escalation(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    /* SIGTERM again 10 ms later is a second press past a 5 ms same-signal window. */
    CHECK_OK(shutdown_config_builder_set_same_signal_window_ms(cfg, 5));
    shutdown_t *sd = new_engine(cfg);
    shutdown_hook_done_t *done = NULL;
    CHECK_OK(shutdown_on_close_deferred(sd, "flush", 0, 0, deferred_keep, &done));
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    cancel_calls = 0;
    CHECK_OK(shutdown_on_cancel(sd, on_cancel, NULL));

    CHECK_OK(shutdown_trigger_signal(sd, 15));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK_OK(shutdown_advance(sd, 10));
    CHECK_OK(shutdown_trigger_signal(sd, 15)); /* second: skip the rest of the drain */
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_CLOSING);
    CHECK(shutdown_is_cancelled(sd));
    CHECK(cancel_calls == 1);
    CHECK(done != NULL);
    CHECK_OK(shutdown_advance(sd, 10));
    CHECK_OK(shutdown_trigger_signal(sd, 2)); /* third: end now */
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(cancel_calls == 1);

    shutdown_report_t *r = report_of(sd);
    shutdown_forced_t forced = 99;
    CHECK_OK(shutdown_report_forced(r, &forced));
    CHECK(forced == SHUTDOWN_FORCED_TERMINATED);
    uint32_t triggers = 0;
    CHECK_OK(shutdown_report_triggers(r, &triggers));
    CHECK(triggers == 3);
    const char *detail = NULL;
    CHECK_OK(shutdown_report_reason_detail(r, &detail));
    CHECK_STR(detail, "SIGTERM");
    uint64_t aborted = 0;
    CHECK_OK(shutdown_report_aborted(r, &aborted));
    CHECK(aborted == 1);
    shutdown_hook_report_t h;
    CHECK_OK(shutdown_report_hook(r, 0, &h));
    CHECK(h.outcome == SHUTDOWN_HOOK_OUTCOME_TIMED_OUT);
    int32_t code = -1;
    CHECK_OK(shutdown_report_exit_code(r, &code));
    CHECK(code == 1);
    shutdown_report_free(r);
    CHECK_OK(shutdown_hook_done(done, 0, NULL)); /* late: ignored, freed */
    shutdown_guard_release(g);
    shutdown_free(sd);
}

static void test_same_signal_twice_is_one_trigger(void) {
    /* One Ctrl-C under npm run: the terminal's SIGINT and npm's relayed copy 2 ms later,
       within the default 1 s same-signal window: one trigger, no escalation. */
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    shutdown_t *sd = new_engine(cfg);
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger_signal(sd, 2));
    CHECK_OK(shutdown_advance(sd, 2));
    CHECK_OK(shutdown_trigger_signal(sd, 2));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK(!shutdown_is_cancelled(sd));
    shutdown_guard_release(g);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    shutdown_report_t *r = report_of(sd);
    uint32_t n = 99;
    CHECK_OK(shutdown_report_triggers(r, &n));
    CHECK(n == 1);
    CHECK_OK(shutdown_report_duplicate_triggers(r, &n));
    CHECK(n == 1);
    const char *json = NULL;
    CHECK_OK(shutdown_report_json(r, &json));
    CHECK(json != NULL && strstr(json, "\"triggers\":1,\"duplicate_triggers\":1,") != NULL);
    int32_t code = -1;
    CHECK_OK(shutdown_report_exit_code(r, &code));
    CHECK(code == 0);
    shutdown_report_free(r);
    shutdown_free(sd);
}

static void test_escalation_at_the_second_trigger_only(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    CHECK_OK(shutdown_config_builder_set_terminate_at(cfg, 0));
    shutdown_t *sd = new_engine(cfg);
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "one"));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "two"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE); /* no hooks: Closing ends at once */
    shutdown_report_t *r = report_of(sd);
    shutdown_forced_t forced = 99;
    CHECK_OK(shutdown_report_forced(r, &forced));
    CHECK(forced == SHUTDOWN_FORCED_ESCALATION);
    const char *detail = NULL;
    CHECK_OK(shutdown_report_reason_detail(r, &detail));
    CHECK_STR(detail, "one");
    shutdown_report_free(r);
    shutdown_guard_release(g);
    shutdown_free(sd);
}

static void test_escalation_disabled(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    CHECK_OK(shutdown_config_builder_set_force_at(cfg, 0));
    CHECK_OK(shutdown_config_builder_set_terminate_at(cfg, 0));
    shutdown_t *sd = new_engine(cfg);
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    for (int i = 0; i < 5; i++)
        CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_SIGNAL, "SIGINT"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK(!shutdown_is_cancelled(sd));
    shutdown_guard_release(g);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0);
    shutdown_free(sd);
}

static void test_child_guards(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    shutdown_t *sd = new_engine(cfg);
    shutdown_guard_t *parent = NULL, *child = NULL, *grandchild = NULL;
    CHECK_OK(shutdown_guard_acquire_kind(sd, "request", &parent));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(!shutdown_is_accepting(sd));
    /* Work begun before the close may still start children. */
    CHECK_OK(shutdown_guard_child(parent, &child));
    CHECK_OK(shutdown_guard_child(child, &grandchild));
    CHECK(in_flight_of(sd) == 3);
    shutdown_guard_release(parent);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    shutdown_guard_release(grandchild);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK_OK(shutdown_advance(sd, 1000)); /* the deadline: the child is aborted */
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    shutdown_report_t *r = report_of(sd);
    const char *name = NULL;
    uint64_t n = 0;
    CHECK_OK(shutdown_report_aborted_kind(r, 0, &name, &n));
    CHECK_STR(name, "request"); /* children inherit the kind */
    CHECK(n == 1);
    shutdown_report_free(r);
    shutdown_guard_release(child);
    shutdown_free(sd);
}

static void test_gradual_advice(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_delay_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    CHECK_OK(shutdown_config_builder_set_close_strategy(cfg, SHUTDOWN_CLOSE_STRATEGY_GRADUAL));
    shutdown_t *sd = new_engine(cfg);
    CHECK(!shutdown_should_close(sd));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    /* At the very start of the window the probability is 0. */
    CHECK(!shutdown_should_close(sd));
    CHECK_OK(shutdown_advance(sd, 1000));
    CHECK(shutdown_should_close(sd)); /* 1 once admission closed */
    shutdown_free(sd);
}

static void test_manual_clock_elapsed(void) {
    shutdown_t *sd = new_engine(manual_config());
    uint64_t us = 1;
    CHECK_OK(shutdown_elapsed_us(sd, &us));
    CHECK(us == 0);
    CHECK_OK(shutdown_advance_us(sd, 1500));
    CHECK_OK(shutdown_advance(sd, 2));
    CHECK_OK(shutdown_elapsed_us(sd, &us));
    CHECK(us == 3500);
    shutdown_free(sd);
}

/* Work the host cut outside any guard (a connection closed while its request was
 * arriving) is counted in the report and makes the exit code non-zero. */
static void test_record_aborted(void) {
    shutdown_config_builder_t *cfg = manual_config();
    shutdown_t *sd = new_engine(cfg);
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(shutdown_record_aborted(NULL, 1, NULL) == SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_OK(shutdown_record_aborted(sd, 2, "connection"));
    CHECK_OK(shutdown_record_aborted(sd, 1, NULL));
    shutdown_guard_release(g);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(shutdown_record_aborted(sd, 1, NULL) == SHUTDOWN_STATUS_TOO_LATE);
    shutdown_report_t *r = report_of(sd);
    uint64_t n = 0;
    CHECK_OK(shutdown_report_aborted(r, &n));
    CHECK(n == 3);
    const char *name = NULL;
    CHECK_OK(shutdown_report_aborted_kind(r, 0, &name, &n));
    CHECK(strcmp(name, "connection") == 0 && n == 2);
    int code = 0;
    CHECK_OK(shutdown_report_exit_code(r, &code));
    CHECK(code != 0);
    shutdown_report_free(r);
    shutdown_free(sd);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_record_aborted),
        TEST(test_every_phase_transition),
        TEST(test_announce_window),
        TEST(test_adaptive_announce),
        TEST(test_drain_deadline_with_guards_left),
        TEST(test_escalation),
        TEST(test_same_signal_twice_is_one_trigger),
        TEST(test_escalation_at_the_second_trigger_only),
        TEST(test_escalation_disabled),
        TEST(test_child_guards),
        TEST(test_gradual_advice),
        TEST(test_manual_clock_elapsed),
    };
    return RUN_TESTS("phases", tests);
}
