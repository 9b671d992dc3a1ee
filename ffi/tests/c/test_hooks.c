/* Cleanup hooks: order groups, failures with messages, timeouts and the close budget
 * (manual clock), deferred completion from another thread and blocking hooks on
 * their own threads (system clock, no timing asserted), registration errors. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct {
    char log[64];
    int n;
} call_log;

typedef struct {
    call_log *log;
    char tag;
    int result;
    const char *message;
} hook_spec;

static int logging_hook(void *user_data, char *message, size_t message_len) {
    hook_spec *h = (hook_spec *)user_data;
    if (h->log->n < 63)
        h->log->log[h->log->n++] = h->tag;
    if (h->result != 0 && h->message != NULL)
        snprintf(message, message_len, "%s", h->message);
    return h->result;
}

static void deferred_keep(void *user_data, shutdown_hook_done_t *done) {
    *(shutdown_hook_done_t **)user_data = done;
}

static shutdown_hook_report_t hook_at(const shutdown_report_t *r, size_t i) {
    shutdown_hook_report_t h;
    memset(&h, 0, sizeof h);
    CHECK_OK(shutdown_report_hook(r, i, &h));
    return h;
}

static void test_ordered_hooks_with_failure(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    shutdown_t *sd = new_engine(cfg);
    call_log log;
    memset(&log, 0, sizeof log);
    hook_spec late = {&log, 'c', 0, NULL};
    hook_spec a = {&log, 'a', 0, NULL};
    hook_spec b = {&log, 'b', 1, "b failed"};
    hook_spec e = {&log, 'e', 7, NULL};
    /* Registered out of order: groups run by ascending order. */
    CHECK_OK(shutdown_on_close(sd, "c", 10, 0, logging_hook, &late));
    CHECK_OK(shutdown_on_close(sd, "a", -5, 100, logging_hook, &a));
    CHECK_OK(shutdown_on_close(sd, "b", -5, 0, logging_hook, &b));
    CHECK_OK(shutdown_on_close(sd, "e", 10, 0, logging_hook, &e));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "test"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(log.n == 4);
    CHECK(log.n == 4 && ((log.log[0] == 'a' && log.log[1] == 'b') || (log.log[0] == 'b' && log.log[1] == 'a')));
    CHECK(log.n == 4 && ((log.log[2] == 'c' && log.log[3] == 'e') || (log.log[2] == 'e' && log.log[3] == 'c')));
    /* Registering once hooks have run is too late. */
    CHECK_STATUS(shutdown_on_close(sd, "z", 0, 0, logging_hook, &a), SHUTDOWN_STATUS_TOO_LATE);

    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    size_t n = 0;
    CHECK_OK(shutdown_report_hook_count(r, &n));
    CHECK(n == 4);
    shutdown_hook_report_t h = hook_at(r, 0);
    CHECK_STR(h.name, "c");
    CHECK(h.order == 10 && h.outcome == SHUTDOWN_HOOK_OUTCOME_OK && h.message == NULL);
    h = hook_at(r, 2);
    CHECK_STR(h.name, "b");
    CHECK(h.outcome == SHUTDOWN_HOOK_OUTCOME_FAILED);
    CHECK_STR(h.message, "b failed");
    h = hook_at(r, 3);
    CHECK(h.outcome == SHUTDOWN_HOOK_OUTCOME_FAILED);
    CHECK_STR(h.message, "hook returned 7");
    shutdown_hook_report_t untouched;
    memset(&untouched, 0x5a, sizeof untouched);
    CHECK_STATUS(shutdown_report_hook(r, 4, &untouched), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK(untouched.order == 0x5a5a5a5a);
    int32_t code = -1;
    CHECK_OK(shutdown_report_exit_code(r, &code));
    CHECK(code == 1); /* a failed hook is not clean */
    shutdown_forced_t forced = 99;
    CHECK_OK(shutdown_report_forced(r, &forced));
    CHECK(forced == SHUTDOWN_FORCED_NONE);
    const char *json = NULL;
    CHECK_OK(shutdown_report_json(r, &json));
    CHECK(strstr(json, "\"outcome\":{\"status\":\"failed\",\"message\":\"b failed\"}") != NULL);
    shutdown_report_free(r);
    shutdown_free(sd);
}

static void test_hook_message_is_truncated_to_its_buffer(void) {
    shutdown_t *sd = new_engine(manual_config());
    static char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    call_log log;
    memset(&log, 0, sizeof log);
    hook_spec h = {&log, 'x', 1, big};
    CHECK_OK(shutdown_on_close(sd, "verbose", 0, 0, logging_hook, &h));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "test"));
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    shutdown_hook_report_t hr = hook_at(r, 0);
    CHECK(hr.message != NULL && strlen(hr.message) == SHUTDOWN_HOOK_MESSAGE_LEN - 1);
    shutdown_report_free(r);
    shutdown_free(sd);
}

static void test_hook_timeouts_and_close_budget(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    shutdown_t *sd = new_engine(cfg);
    shutdown_hook_done_t *h1 = NULL, *h2 = NULL;
    call_log log;
    memset(&log, 0, sizeof log);
    hook_spec h3 = {&log, '3', 0, NULL};
    CHECK_OK(shutdown_on_close_deferred(sd, "h1", 0, 200, deferred_keep, &h1));
    CHECK_OK(shutdown_on_close_deferred(sd, "h2", 1, 0, deferred_keep, &h2));
    CHECK_OK(shutdown_on_close(sd, "h3", 2, 0, logging_hook, &h3));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "test"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_CLOSING);
    CHECK(h1 != NULL && h2 == NULL);
    CHECK_OK(shutdown_advance(sd, 199));
    CHECK(h2 == NULL);
    CHECK_OK(shutdown_advance(sd, 1)); /* h1's own limit */
    CHECK(h2 != NULL);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_CLOSING);
    CHECK_OK(shutdown_advance(sd, 299));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_CLOSING);
    CHECK_OK(shutdown_advance(sd, 1)); /* the close budget is gone: h3 never starts */
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(log.n == 0);

    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    shutdown_hook_report_t h = hook_at(r, 0);
    CHECK(h.outcome == SHUTDOWN_HOOK_OUTCOME_TIMED_OUT && h.duration_us == 200000);
    h = hook_at(r, 1);
    CHECK(h.outcome == SHUTDOWN_HOOK_OUTCOME_TIMED_OUT && h.duration_us == 300000);
    h = hook_at(r, 2);
    CHECK(h.outcome == SHUTDOWN_HOOK_OUTCOME_SKIPPED && h.duration_us == 0);
    int32_t code = -1;
    CHECK_OK(shutdown_report_exit_code(r, &code));
    CHECK(code == 1);
    shutdown_report_free(r);
    /* Late completions are ignored (and free their handles). */
    CHECK_OK(shutdown_hook_done(h1, 0, NULL));
    CHECK_OK(shutdown_hook_done(h2, 1, "too late"));
    CHECK_OK(shutdown_report(sd, &r));
    h = hook_at(r, 1);
    CHECK(h.outcome == SHUTDOWN_HOOK_OUTCOME_TIMED_OUT);
    shutdown_report_free(r);
    shutdown_free(sd);
}

static void test_deferred_failure_message(void) {
    shutdown_t *sd = new_engine(manual_config());
    shutdown_hook_done_t *d = NULL, *e = NULL;
    CHECK_OK(shutdown_on_close_deferred(sd, "queue", 0, 0, deferred_keep, &d));
    CHECK_OK(shutdown_on_close_deferred(sd, "cache", 0, 0, deferred_keep, &e));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "test"));
    CHECK_OK(shutdown_hook_done(d, 1, "queue failed"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_CLOSING);
    CHECK_OK(shutdown_hook_done(e, -1, NULL));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    shutdown_hook_report_t h = hook_at(r, 0);
    CHECK_STR(h.message, "queue failed");
    h = hook_at(r, 1);
    CHECK_STR(h.message, "hook returned -1");
    shutdown_report_free(r);
    shutdown_free(sd);
}

/* System clock: a deferred hook completed by a thread of the host's own. */
static void *complete_later(void *arg) {
    sleep_ms(20);
    CHECK_OK(shutdown_hook_done((shutdown_hook_done_t *)arg, 0, NULL));
    return NULL;
}

static pthread_t completer;
static atomic_int completer_started;

static void start_on_a_thread(void *user_data, shutdown_hook_done_t *done) {
    (void)user_data;
    if (pthread_create(&completer, NULL, complete_later, done) == 0)
        atomic_store(&completer_started, 1);
}

static pthread_t main_thread;
static atomic_int ran_elsewhere;

static int blocking_hook(void *user_data, char *message, size_t len) {
    (void)user_data;
    (void)message;
    (void)len;
    atomic_store(&ran_elsewhere, pthread_equal(pthread_self(), main_thread) ? 0 : 1);
    sleep_ms(10);
    return 0;
}

static void test_hooks_on_the_system_clock(void) {
    shutdown_config_builder_t *cfg = default_config();
    shutdown_t *sd = new_engine(cfg);
    main_thread = pthread_self();
    atomic_store(&completer_started, 0);
    atomic_store(&ran_elsewhere, 0);
    CHECK_OK(shutdown_on_close_deferred(sd, "async", 0, 0, start_on_a_thread, NULL));
    CHECK_OK(shutdown_on_close(sd, "blocking", 1, 0, blocking_hook, NULL));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "test"));
    CHECK_OK(shutdown_wait(sd));
    CHECK(atomic_load(&ran_elsewhere) == 1);
    if (atomic_load(&completer_started))
        pthread_join(completer, NULL);
    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0);
    shutdown_free(sd);
}

static void test_registration_errors(void) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 500));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    shutdown_t *sd = new_engine(cfg);
    call_log log;
    memset(&log, 0, sizeof log);
    hook_spec h = {&log, 'h', 0, NULL};
    CHECK_STATUS(shutdown_on_close(sd, "slow", 0, 501, logging_hook, &h), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_OK(shutdown_on_close(sd, "exact", 0, 500, logging_hook, &h));
    CHECK_STATUS(shutdown_on_close(sd, "", 0, 0, logging_hook, &h), SHUTDOWN_STATUS_INVALID_NAME);
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[256] = '\0';
    CHECK_OK(shutdown_on_close(sd, name, 0, 0, logging_hook, &h)); /* 256 bytes: fine */
    name[256] = 'n';
    name[257] = '\0';
    CHECK_STATUS(shutdown_on_close(sd, name, 0, 0, logging_hook, &h), SHUTDOWN_STATUS_STRING_TOO_LONG);
    CHECK_STATUS(shutdown_on_close(sd, "\xff\xfe", 0, 0, logging_hook, &h), SHUTDOWN_STATUS_INVALID_UTF8);
    CHECK_STATUS(shutdown_on_close(sd, "x", 0, 0, NULL, &h), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_close_deferred(sd, "x", 0, 0, NULL, &h), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_close_deferred(sd, NULL, 0, 0, deferred_keep, &h), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_close_deferred(NULL, "x", 0, 0, deferred_keep, &h), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_OK(shutdown_on_close(sd, "no user data", 0, 0, logging_hook, &h));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "test"));
    CHECK(log.n == 3);
    shutdown_free(sd);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_ordered_hooks_with_failure),
        TEST(test_hook_message_is_truncated_to_its_buffer),
        TEST(test_hook_timeouts_and_close_budget),
        TEST(test_deferred_failure_message),
        TEST(test_hooks_on_the_system_clock),
        TEST(test_registration_errors),
    };
    return RUN_TESTS("hooks", tests);
}
