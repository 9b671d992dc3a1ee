/* Regression of finding 3 of the C ABI fuzzing issue (ffi/tests/fuzz/README.md), which
 * needs a second host thread and so is not an input of the single-threaded fuzz harness:
 * on the system clock, with one guard, a trigger, the guard released on another thread
 * and a repeated trigger (terminate_at 2) as soon as the phase reads CLOSING, the
 * milestone callbacks must still see DRAINING, QUIESCING, CLOSING and DONE, each once
 * and in that order (the engine once delivered DONE before CLOSING). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>

#define ROUNDS 100

typedef struct {
    atomic_int n;
    shutdown_milestone_t seen[8];
} order_log;

static void log_milestone(void *user_data, shutdown_milestone_t m) {
    order_log *l = (order_log *)user_data;
    int i = atomic_fetch_add(&l->n, 1);
    if (i < 8) l->seen[i] = m;
}

static void *release_guard(void *arg) {
    shutdown_guard_release((shutdown_guard_t *)arg);
    return NULL;
}

static void keep_done(void *user_data, shutdown_hook_done_t *done) {
    *(shutdown_hook_done_t *_Atomic *)user_data = done;
}

static void one_round(int hold_closing) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 2000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 2000));
    CHECK_OK(shutdown_config_builder_set_force_at(cfg, 0));
    CHECK_OK(shutdown_config_builder_set_terminate_at(cfg, 2));
    /* The same signal again within milliseconds must count: the window off. */
    CHECK_OK(shutdown_config_builder_set_same_signal_window_ms(cfg, 0));
    shutdown_t *sd = new_engine(cfg);
    order_log log;
    memset(&log, 0, sizeof log);
    shutdown_hook_done_t *_Atomic done = NULL;
    CHECK_OK(shutdown_on_milestone(sd, log_milestone, &log));
    if (hold_closing) /* a deferred hook keeps Closing open until the second trigger */
        CHECK_OK(shutdown_on_close_deferred(sd, "held", 0, 0, keep_done, (void *)&done));
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_SIGNAL, "SIGTERM"));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, release_guard, g) == 0);
    /* The second trigger as soon as the phase reads CLOSING (bounded: 5 s). */
    for (int spins = 0; spins < 5000000; spins++) {
        shutdown_phase_t p = phase_of(sd);
        if (p >= SHUTDOWN_PHASE_CLOSING) break;
    }
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_SIGNAL, "SIGTERM"));
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_OK(shutdown_wait_timeout(sd, 5000));
    CHECK(atomic_load(&log.n) == 4);
    for (int i = 0; i < 4 && i < atomic_load(&log.n); i++) {
        if (log.seen[i] != (shutdown_milestone_t)(SHUTDOWN_MILESTONE_DRAINING + i)) {
            fprintf(stderr, "  milestone %d was %u, expected %u\n", i, (unsigned)log.seen[i],
                    (unsigned)(SHUTDOWN_MILESTONE_DRAINING + i));
            harness_failures++;
            break;
        }
    }
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    int code = 0;
    CHECK_OK(shutdown_report_exit_code(r, &code));
    if (hold_closing) CHECK(code == 1); /* terminated in Closing; without the hook it may have ended clean */
    shutdown_report_free(r);
    shutdown_free(sd);
    shutdown_hook_done_t *d = atomic_load(&done);
    if (d) CHECK_OK(shutdown_hook_done(d, 0, NULL)); /* after the end: ignored, freed */
}

static void test_done_after_closing_on_repeated_trigger(void) {
    for (int i = 0; i < ROUNDS && harness_failures == 0; i++) one_round(0);
}

static void test_done_after_closing_with_a_held_hook(void) {
    for (int i = 0; i < ROUNDS && harness_failures == 0; i++) one_round(1);
}

/* The cancellation race of ffi/tests/fuzz/README.md, made deterministic: the engine
 * reports cancelled (shutdown_is_cancelled()) while its Cancelled event is still queued
 * behind a milestone callback running on another thread. A cancel callback registered
 * then must be called at once, on the registering thread, and only once (the C layer
 * once kept a "fired" flag of its own, set only when the event was delivered, and
 * queued the registration for the delivering thread). */
typedef struct {
    shutdown_t *sd;
    atomic_int cancel_calls;
    atomic_int called_at_once; /* the registration returned with the callback called */
    atomic_int cancelled_seen;
} cancel_race;

static void count_cancel(void *user_data) {
    atomic_fetch_add(&((cancel_race *)user_data)->cancel_calls, 1);
}

static void *cancel_then_register(void *arg) {
    cancel_race *r = (cancel_race *)arg;
    /* Past the drain timeout: the drain is cut, the engine is cancelled, and its
     * events are queued for the thread delivering DRAINING (the main thread). */
    CHECK_OK(shutdown_advance(r->sd, 2000));
    atomic_store(&r->cancelled_seen, shutdown_is_cancelled(r->sd));
    CHECK_OK(shutdown_on_cancel(r->sd, count_cancel, r));
    atomic_store(&r->called_at_once, atomic_load(&r->cancel_calls) == 1);
    return NULL;
}

static void hold_draining(void *user_data, shutdown_milestone_t m) {
    if (m != SHUTDOWN_MILESTONE_DRAINING) return;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, cancel_then_register, user_data) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

static void test_cancel_callback_registered_once_cancelled_runs_at_once(void) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_OK(shutdown_config_builder_set_manual_clock(cfg, true));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    shutdown_t *sd = new_engine(cfg);
    cancel_race r;
    memset(&r, 0, sizeof r);
    r.sd = sd;
    CHECK_OK(shutdown_on_milestone(sd, hold_draining, &r));
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(atomic_load(&r.cancelled_seen));
    CHECK(atomic_load(&r.called_at_once));
    CHECK(atomic_load(&r.cancel_calls) == 1);
    shutdown_phase_t p = phase_of(sd);
    CHECK(p == SHUTDOWN_PHASE_DONE);
    shutdown_guard_release(g);
    shutdown_free(sd);
    CHECK(atomic_load(&r.cancel_calls) == 1);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_done_after_closing_on_repeated_trigger),
        TEST(test_done_after_closing_with_a_held_hook),
        TEST(test_cancel_callback_registered_once_cancelled_runs_at_once),
    };
    return RUN_TESTS("fuzz_regress", tests);
}
