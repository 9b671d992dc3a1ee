/* Lifetimes: create and free without a trigger, free in the middle of a shutdown
 * (no callback after free; guards and completions still released afterwards), real
 * signals through shutdown_listen_signals(), several engines at once. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <signal.h>
#include <stdatomic.h>

static atomic_int calls;
static void count(void *user_data, shutdown_milestone_t m) {
    (void)user_data;
    (void)m;
    atomic_fetch_add(&calls, 1);
}
static void count_cancel(void *user_data) {
    (void)user_data;
    atomic_fetch_add(&calls, 100);
}
static void keep_done(void *user_data, shutdown_hook_done_t *done) {
    *(shutdown_hook_done_t **)user_data = done;
}

static void test_create_and_free(void) {
    for (int i = 0; i < 20; i++) {
        shutdown_t *sd = new_engine(default_config()); /* a driver thread each */
        shutdown_guard_t *g = NULL;
        CHECK_OK(shutdown_guard_acquire(sd, &g));
        shutdown_guard_release(g);
        shutdown_free(sd);
    }
    shutdown_t *sd = new_engine(manual_config());
    shutdown_free(sd);
}

static void test_free_mid_drain_on_the_system_clock(void) {
    shutdown_config_builder_t *cfg = default_config();
    shutdown_t *sd = new_engine(cfg);
    atomic_store(&calls, 0);
    CHECK_OK(shutdown_on_milestone(sd, count, NULL));
    CHECK_OK(shutdown_on_cancel(sd, count_cancel, NULL));
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(atomic_load(&calls) == 2); /* draining, quiescing, on this thread */
    shutdown_free(sd);                /* abandoned mid-drain: the driver stops */
    shutdown_guard_release(g);        /* still valid after free; nothing is called */
    sleep_ms(20);
    CHECK(atomic_load(&calls) == 2);
}

static void test_free_mid_close_on_the_manual_clock(void) {
    shutdown_t *sd = new_engine(manual_config());
    atomic_store(&calls, 0);
    CHECK_OK(shutdown_on_milestone(sd, count, NULL));
    shutdown_hook_done_t *first = NULL, *second = NULL;
    CHECK_OK(shutdown_on_close_deferred(sd, "first", 0, 0, keep_done, &first));
    CHECK_OK(shutdown_on_close_deferred(sd, "second", 1, 0, keep_done, &second));
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    shutdown_guard_release(g);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_CLOSING);
    CHECK(first != NULL);
    CHECK(atomic_load(&calls) == 3);
    shutdown_free(sd);
    /* Completing after free is allowed: it frees the handle; the next hook's start
     * function and the milestone callbacks are not called any more. */
    CHECK_OK(shutdown_hook_done(first, 0, NULL));
    CHECK(second == NULL);
    CHECK(atomic_load(&calls) == 3);
}

static void test_listen_signals(void) {
    shutdown_config_builder_t *cfg = default_config();
    shutdown_t *sd = new_engine(cfg);
    CHECK_OK(shutdown_listen_signals(sd));
    CHECK_OK(shutdown_listen_signals(sd)); /* again: nothing more */
    CHECK(raise(SIGTERM) == 0);
    CHECK_OK(shutdown_wait_timeout(sd, 30000));
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    shutdown_reason_kind_t kind = 99;
    const char *detail = NULL;
    CHECK_OK(shutdown_report_reason_kind(r, &kind));
    CHECK_OK(shutdown_report_reason_detail(r, &detail));
    CHECK(kind == SHUTDOWN_REASON_KIND_SIGNAL);
    CHECK_STR(detail, "SIGTERM");
    shutdown_report_free(r);
    shutdown_free(sd);
}

static void test_engines_are_independent(void) {
    shutdown_t *a = new_engine(manual_config());
    shutdown_t *b = new_engine(manual_config());
    CHECK_OK(shutdown_trigger(a, SHUTDOWN_REASON_KIND_MANUAL, "a"));
    CHECK(phase_of(a) == SHUTDOWN_PHASE_DONE);
    CHECK(phase_of(b) == SHUTDOWN_PHASE_RUNNING);
    int fa = -1, fb = -1;
    CHECK_OK(shutdown_fd(a, &fa));
    CHECK_OK(shutdown_fd(b, &fb));
    CHECK(fa != fb && readable(fa) && !readable(fb));
    shutdown_free(a);
    CHECK(shutdown_is_ready(b));
    shutdown_free(b);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_create_and_free),
        TEST(test_free_mid_drain_on_the_system_clock),
        TEST(test_free_mid_close_on_the_manual_clock),
        TEST(test_listen_signals),
        TEST(test_engines_are_independent),
    };
    return RUN_TESTS("lifecycle", tests);
}
