/* The pollable descriptors on the system clock: shutdown_fd() wakes a poll() loop on
 * every milestone, shutdown_cancel_fd() wakes a worker at the drain deadline. No
 * timing is asserted: poll timeouts are only a guard against hanging forever. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>

static void *trigger_soon(void *arg) {
    sleep_ms(20);
    CHECK_OK(shutdown_trigger((const shutdown_t *)arg, SHUTDOWN_REASON_KIND_SIGNAL, "SIGTERM"));
    return NULL;
}

static void test_fd_wakes_a_poll_loop(void) {
    shutdown_config_builder_t *cfg = default_config();
    shutdown_t *sd = new_engine(cfg);
    int fd = -1;
    CHECK_OK(shutdown_fd(sd, &fd));
    CHECK(fd >= 0);
    CHECK(!readable(fd));
    shutdown_guard_t *request = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &request));

    pthread_t t;
    CHECK(pthread_create(&t, NULL, trigger_soon, sd) == 0);
    shutdown_milestone_t last = SHUTDOWN_MILESTONE_NONE;
    int wakeups = 0, listening = 1;
    while (last != SHUTDOWN_MILESTONE_DONE) {
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, 30000);
        CHECK(n == 1);
        if (n != 1)
            break;
        wakeups++;
        shutdown_milestone_t m = SHUTDOWN_MILESTONE_NONE;
        CHECK_OK(shutdown_fd_clear(sd, &m));
        CHECK(m >= last); /* monotonic */
        last = m;
        if (listening && !shutdown_is_accepting(sd)) {
            listening = 0; /* a server closes its listener here */
            CHECK(m >= SHUTDOWN_MILESTONE_QUIESCING);
            shutdown_guard_release(request); /* the last request ends */
            request = NULL;
        }
    }
    pthread_join(t, NULL);
    CHECK_OK(shutdown_wait(sd)); /* the Done callbacks have run */
    CHECK(wakeups >= 2);
    CHECK(last == SHUTDOWN_MILESTONE_DONE);
    shutdown_milestone_t m = SHUTDOWN_MILESTONE_NONE;
    CHECK_OK(shutdown_fd_clear(sd, &m)); /* every notification has been written */
    CHECK(m == SHUTDOWN_MILESTONE_DONE);
    CHECK(!readable(fd));
    int cfd = -1;
    CHECK_OK(shutdown_cancel_fd(sd, &cfd));
    CHECK(readable(cfd)); /* Done fires the cancellation signal */
    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0);
    shutdown_guard_release(request);
    shutdown_free(sd);
}

typedef struct {
    const shutdown_t *sd;
    shutdown_guard_t *guard;
    atomic_int woke;
} worker_t;

/* Long work that can stop early: it waits on the cancellation fd. */
static void *cancellable_work(void *arg) {
    worker_t *w = (worker_t *)arg;
    int cfd = -1;
    CHECK_OK(shutdown_cancel_fd(w->sd, &cfd));
    struct pollfd p = {cfd, POLLIN, 0};
    if (poll(&p, 1, 30000) == 1)
        atomic_store(&w->woke, 1);
    CHECK(shutdown_is_cancelled(w->sd));
    shutdown_guard_release(w->guard);
    return NULL;
}

static void test_cancel_fd_wakes_work_at_the_drain_deadline(void) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 50));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 50));
    shutdown_t *sd = new_engine(cfg);
    worker_t w;
    w.sd = sd;
    w.guard = NULL;
    atomic_init(&w.woke, 0);
    CHECK_OK(shutdown_guard_acquire_kind(sd, "export", &w.guard));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, cancellable_work, &w) == 0);
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK_OK(shutdown_wait(sd));
    pthread_join(t, NULL);
    CHECK(atomic_load(&w.woke) == 1);
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    shutdown_forced_t forced = 99;
    CHECK_OK(shutdown_report_forced(r, &forced));
    CHECK(forced == SHUTDOWN_FORCED_DRAIN_TIMEOUT);
    const char *name = NULL;
    uint64_t n = 0;
    CHECK_OK(shutdown_report_aborted_kind(r, 0, &name, &n));
    CHECK_STR(name, "export");
    CHECK(n == 1);
    shutdown_report_free(r);
    shutdown_free(sd);
}

static void test_wait_timeout(void) {
    shutdown_t *sd = new_engine(default_config());
    CHECK_STATUS(shutdown_wait_timeout(sd, 0), SHUTDOWN_STATUS_TIMED_OUT);
    CHECK_STATUS(shutdown_wait_timeout(sd, 20), SHUTDOWN_STATUS_TIMED_OUT);
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "test"));
    CHECK_OK(shutdown_wait_timeout(sd, 30000));
    shutdown_free(sd);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_fd_wakes_a_poll_loop),
        TEST(test_cancel_fd_wakes_work_at_the_drain_deadline),
        TEST(test_wait_timeout),
    };
    return RUN_TESTS("fd", tests);
}
