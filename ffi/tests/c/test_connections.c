/* Connections and their requests (shutdown_connection_t, shutdown_request_t): the
 * quiesce-boundary rule through the C ABI. NULL arguments, the keep-alive reuse race on
 * the manual clock, the dismissal callback's ids, a request still arriving at the drain
 * deadline, upgrades and refusals, the dismissal callback never running once
 * shutdown_free() has returned, and listener holds (when the host stops listening). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <pthread.h>
#include <stdlib.h>

#define SENTINEL ((void *)0x5a5a)

/* The batches a dismissal callback saw, in order, flattened, with the batch count. */
typedef struct {
    int batches;
    int n;
    uint64_t ids[32];
} dismissed_t;

static void record_dismissed(void *user_data, const uint64_t *ids, size_t len) {
    dismissed_t *d = (dismissed_t *)user_data;
    d->batches++;
    for (size_t i = 0; i < len && d->n < 32; i++) {
        d->ids[d->n++] = ids[i];
    }
}

static void noop_dismissed(void *user_data, const uint64_t *ids, size_t len) {
    (void)user_data;
    (void)ids;
    (void)len;
}

static uint64_t id_of(const shutdown_connection_t *c) {
    uint64_t id = 0;
    CHECK_OK(shutdown_connection_id(c, &id));
    return id;
}

static bool dismissed_of(const shutdown_connection_t *c) {
    bool d = true;
    CHECK_OK(shutdown_connection_is_dismissed(c, &d));
    return d;
}

static shutdown_config_builder_t *manual_grace(uint64_t grace_ms) {
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_connection_grace_ms(cfg, grace_ms));
    return cfg;
}

static shutdown_report_t *report_of(const shutdown_t *sd) {
    shutdown_report_t *r = NULL;
    CHECK_OK(shutdown_report(sd, &r));
    return r;
}

static void test_null_arguments(void) {
    CHECK_STATUS(shutdown_config_builder_set_connection_grace_ms(NULL, 1), SHUTDOWN_STATUS_NULL_PARAMETER);
    shutdown_t *sd = new_engine(manual_config());
    shutdown_connection_t *c = (shutdown_connection_t *)SENTINEL;
    shutdown_request_t *r = (shutdown_request_t *)SENTINEL;
    shutdown_guard_t *g = (shutdown_guard_t *)SENTINEL;
    uint64_t u64 = 7;
    bool b = true;
    CHECK_STATUS(shutdown_connection_new(NULL, &c), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(c == (shutdown_connection_t *)SENTINEL);
    CHECK_STATUS(shutdown_connection_new(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_connection_id(NULL, &u64), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(u64 == 7);
    CHECK_STATUS(shutdown_connection_reading(NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_connection_is_dismissed(NULL, &b), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(b);
    CHECK_STATUS(shutdown_connection_request(NULL, &r), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_connection_request_of(NULL, 0, &r), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_connection_request_kind(NULL, "http", &r), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(r == (shutdown_request_t *)SENTINEL);
    CHECK_STATUS(shutdown_request_keep_alive(NULL, &b), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(b);
    CHECK_STATUS(shutdown_request_finish(NULL, &b), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_request_finish(NULL, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_request_upgrade(NULL, "websocket", &g), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(g == (shutdown_guard_t *)SENTINEL);
    CHECK_STATUS(shutdown_on_dismissed(NULL, noop_dismissed, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_dismissed(sd, NULL, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    shutdown_connection_free(NULL);

    /* With a live connection and request: NULL out-parameters and bad kinds. */
    c = NULL;
    CHECK_OK(shutdown_connection_new(sd, &c));
    CHECK_STATUS(shutdown_connection_id(c, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_connection_is_dismissed(c, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_connection_request(c, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_connection_request_of(c, 0, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    r = (shutdown_request_t *)SENTINEL;
    CHECK_STATUS(shutdown_connection_request_of(c, 63, &r), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(shutdown_connection_request_kind(c, NULL, &r), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_connection_request_kind(c, "", &r), SHUTDOWN_STATUS_INVALID_NAME);
    CHECK_STATUS(shutdown_connection_request_kind(c, "\xff", &r), SHUTDOWN_STATUS_INVALID_UTF8);
    CHECK(r == (shutdown_request_t *)SENTINEL);
    CHECK(in_flight_of(sd) == 0);
    r = NULL;
    CHECK_OK(shutdown_connection_request(c, &r));
    CHECK(in_flight_of(sd) == 1);
    CHECK_STATUS(shutdown_request_keep_alive(r, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    /* A refused upgrade leaves the request the caller's. */
    CHECK_STATUS(shutdown_request_upgrade(r, "websocket", NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_request_upgrade(r, "", &g), SHUTDOWN_STATUS_INVALID_NAME);
    CHECK(g == (shutdown_guard_t *)SENTINEL);
    CHECK(in_flight_of(sd) == 1);
    CHECK_OK(shutdown_request_finish(r, NULL)); /* keep_open may be NULL */
    CHECK(in_flight_of(sd) == 0);
    shutdown_connection_free(c);
    shutdown_free(sd);
}

/* The keep-alive reuse race: a response said keep-alive while Running, admission closes
 * 1 ms later, and the client's next request arrives on that connection 2 ms after that.
 * It is served (Connection: close), and the drain ends when the host closes it. */
static void test_keep_alive_reuse_race(void) {
    shutdown_t *sd = new_engine(manual_config());
    dismissed_t d = {0};
    CHECK_OK(shutdown_on_dismissed(sd, record_dismissed, &d));
    shutdown_connection_t *c = NULL;
    CHECK_OK(shutdown_connection_new(sd, &c));
    CHECK(id_of(c) != 0);
    shutdown_request_t *r = NULL;
    CHECK_OK(shutdown_connection_request(c, &r));
    bool keep = false;
    CHECK_OK(shutdown_request_keep_alive(r, &keep));
    CHECK(keep);
    bool open = false;
    CHECK_OK(shutdown_request_finish(r, &open));
    CHECK(open);

    CHECK_OK(shutdown_advance(sd, 1));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(!shutdown_is_accepting(sd));
    CHECK(!dismissed_of(c)); /* idle for 1 ms only: within the grace */
    CHECK_OK(shutdown_advance(sd, 2));
    CHECK_OK(shutdown_connection_reading(c));
    r = NULL;
    CHECK_OK(shutdown_connection_request(c, &r));
    CHECK(r != NULL);
    CHECK(in_flight_of(sd) == 1);
    keep = true;
    CHECK_OK(shutdown_request_keep_alive(r, &keep));
    CHECK(!keep);
    keep = true;
    CHECK_OK(shutdown_request_keep_alive(r, &keep)); /* decided once */
    CHECK(!keep);
    open = true;
    CHECK_OK(shutdown_request_finish(r, &open));
    CHECK(!open);
    /* The drain waits for the host to close the connection. */
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK_OK(shutdown_advance(sd, 200)); /* past the grace: a closing connection is not dismissed */
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK(d.n == 0);
    shutdown_connection_free(c);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0);
    shutdown_free(sd);
}

/* The dismissal callback gets the ids: a connection idle for more than the grace is
 * dismissed at the trigger, one that was active recently once its idleness reaches
 * the grace. */
static void test_dismissal_ids(void) {
    shutdown_t *sd = new_engine(manual_grace(100));
    dismissed_t d = {0};
    CHECK_OK(shutdown_on_dismissed(sd, record_dismissed, &d));
    shutdown_connection_t *idle = NULL, *recent = NULL;
    CHECK_OK(shutdown_connection_new(sd, &idle));
    CHECK_OK(shutdown_connection_new(sd, &recent));
    CHECK(id_of(idle) != id_of(recent));
    CHECK_OK(shutdown_advance(sd, 150));
    shutdown_request_t *r = NULL;
    CHECK_OK(shutdown_connection_request(recent, &r));
    CHECK_OK(shutdown_request_finish(r, NULL));
    CHECK_OK(shutdown_advance(sd, 10));

    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(d.batches == 1 && d.n == 1 && d.ids[0] == id_of(idle));
    CHECK(dismissed_of(idle));
    CHECK(!dismissed_of(recent));
    CHECK_OK(shutdown_advance(sd, 89)); /* idle for 99 ms */
    CHECK(d.n == 1);
    CHECK(!dismissed_of(recent));
    CHECK_OK(shutdown_advance(sd, 1)); /* 100 ms */
    CHECK(d.batches == 2 && d.n == 2 && d.ids[1] == id_of(recent));
    CHECK(dismissed_of(recent));
    /* Dismissed connections still hold the drain until the host closes them. */
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    shutdown_connection_free(idle);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    shutdown_connection_free(recent);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0);
    CHECK(d.n == 2); /* nothing left to dismiss at Closing */
    shutdown_free(sd);
}

/* A request still arriving at the drain deadline is aborted work of kind "connection";
 * the connection is dismissed at Closing. */
static void test_reading_at_the_deadline(void) {
    shutdown_config_builder_t *cfg = manual_grace(100);
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000));
    shutdown_t *sd = new_engine(cfg);
    dismissed_t d = {0};
    CHECK_OK(shutdown_on_dismissed(sd, record_dismissed, &d));
    shutdown_connection_t *c = NULL;
    CHECK_OK(shutdown_connection_new(sd, &c));
    CHECK_OK(shutdown_advance(sd, 500));
    CHECK_OK(shutdown_connection_reading(c));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK_OK(shutdown_advance(sd, 999));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING);
    CHECK(!dismissed_of(c));
    CHECK(d.n == 0);
    CHECK_OK(shutdown_advance(sd, 1));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(dismissed_of(c));
    CHECK(d.n == 1 && d.ids[0] == id_of(c));
    shutdown_report_t *rep = report_of(sd);
    uint64_t n = 0;
    CHECK_OK(shutdown_report_aborted(rep, &n));
    CHECK(n == 1);
    size_t kinds = 0;
    CHECK_OK(shutdown_report_aborted_kind_count(rep, &kinds));
    CHECK(kinds == 1);
    const char *name = NULL;
    n = 0;
    CHECK_OK(shutdown_report_aborted_kind(rep, 0, &name, &n));
    CHECK_STR(name, "connection");
    CHECK(n == 1);
    int code = 0;
    CHECK_OK(shutdown_report_exit_code(rep, &code));
    CHECK(code != 0);
    shutdown_report_free(rep);
    /* A connection accepted once the drain is over comes back dismissed, at once (the
     * host sees it on the connection: the callback does not name it). */
    shutdown_connection_t *late = NULL;
    CHECK_OK(shutdown_connection_new(sd, &late));
    CHECK(dismissed_of(late));
    CHECK(d.n == 1);
    shutdown_connection_free(late);
    shutdown_connection_free(c);
    shutdown_free(sd);
}

/* Kinds, the upgrade to long-lived work, and a refused request. */
static void test_kinds_upgrade_and_refusal(void) {
    shutdown_t *sd = new_engine(manual_grace(100));
    uint32_t http = 99;
    CHECK_OK(shutdown_kind(sd, "http", &http));
    shutdown_connection_t *c = NULL, *ws = NULL;
    CHECK_OK(shutdown_connection_new(sd, &c));
    CHECK_OK(shutdown_connection_new(sd, &ws));
    shutdown_request_t *r = NULL, *up = NULL;
    CHECK_OK(shutdown_connection_request_of(c, http, &r));
    CHECK_OK(shutdown_connection_request_kind(ws, "upgrade", &up));
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_request_upgrade(up, "websocket", &g));
    CHECK(g != NULL);
    CHECK(in_flight_of(sd) == 2);

    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    /* The drain is cut at its deadline with both still held. */
    CHECK_OK(shutdown_advance(sd, 20000));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    shutdown_report_t *rep = report_of(sd);
    uint64_t n = 0;
    CHECK_OK(shutdown_report_aborted(rep, &n));
    CHECK(n == 2);
    size_t kinds = 0;
    CHECK_OK(shutdown_report_aborted_kind_count(rep, &kinds));
    CHECK(kinds == 2);
    int seen = 0;
    for (size_t i = 0; i < kinds; i++) {
        const char *name = NULL;
        uint64_t count = 0;
        CHECK_OK(shutdown_report_aborted_kind(rep, i, &name, &count));
        if (name != NULL && strcmp(name, "http") == 0 && count == 1) seen |= 1;
        if (name != NULL && strcmp(name, "websocket") == 0 && count == 1) seen |= 2;
    }
    CHECK(seen == 3);
    shutdown_report_free(rep);
    bool open = true;
    CHECK_OK(shutdown_request_finish(r, &open));
    CHECK(!open);
    shutdown_guard_release(g);
    shutdown_connection_free(ws);
    shutdown_connection_free(c);
    shutdown_free(sd);

    /* Admission closed with no connection open, a job still in flight: a connection
     * accepted later (from the listener's backlog, or handed over by a cluster master)
     * joins the boundary, and its request is served with Connection: close; the drain
     * waits for it. */
    sd = new_engine(manual_grace(100));
    shutdown_guard_t *work = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &work));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK_OK(shutdown_connection_new(sd, &c));
    shutdown_request_t *bad = (shutdown_request_t *)SENTINEL;
    /* No kind has been interned by this engine yet: kind 0 is no kind. */
    CHECK_STATUS(shutdown_connection_request_of(c, 0, &bad), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK(bad == (shutdown_request_t *)SENTINEL);
    r = NULL;
    CHECK_OK(shutdown_connection_request_kind(c, "http", &r));
    CHECK(r != NULL);
    bool keep = true;
    CHECK_OK(shutdown_request_keep_alive(r, &keep));
    CHECK(!keep);
    shutdown_guard_release(work);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DRAINING); /* the late request holds it */
    CHECK_OK(shutdown_request_finish(r, &open));
    CHECK(!open);
    shutdown_connection_free(c);
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    rep = report_of(sd);
    CHECK_OK(shutdown_report_aborted(rep, &n));
    CHECK(n == 0);
    shutdown_report_free(rep);

    /* Once the drain has ended, a connection comes back dismissed and its request is
     * refused. */
    CHECK_OK(shutdown_connection_new(sd, &c));
    r = (shutdown_request_t *)SENTINEL;
    CHECK_STATUS(shutdown_connection_request(c, &r), SHUTDOWN_STATUS_ADMISSION_CLOSED);
    CHECK(r == (shutdown_request_t *)SENTINEL);
    shutdown_connection_free(c);
    shutdown_free(sd);
}

/* The dismissal callback never runs once shutdown_free() has returned, even when the
 * host's handles, which outlive the engine, end the drain afterwards: on a manual clock
 * closing the last connection the drain waits for ends it on this thread, and the drain's
 * end dismisses every connection left (here an upgraded one). */
static void test_no_callback_after_free_from_the_host(void) {
    shutdown_t *sd = new_engine(manual_grace(100));
    dismissed_t d = {0};
    CHECK_OK(shutdown_on_dismissed(sd, record_dismissed, &d));
    shutdown_connection_t *ws = NULL, *busy = NULL;
    CHECK_OK(shutdown_connection_new(sd, &ws));
    CHECK_OK(shutdown_connection_new(sd, &busy));
    shutdown_request_t *up = NULL, *r = NULL;
    CHECK_OK(shutdown_connection_request(ws, &up));
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_request_upgrade(up, NULL, &g));
    CHECK_OK(shutdown_connection_request(busy, &r));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    shutdown_guard_release(g); /* the stream ended; the upgraded connection stays open */
    CHECK(d.n == 0);
    shutdown_free(sd);
    CHECK_OK(shutdown_request_finish(r, NULL));
    shutdown_connection_free(busy); /* the drain ends now, on this thread */
    CHECK(d.n == 0);
    bool dismissed = false;
    CHECK_OK(shutdown_connection_is_dismissed(ws, &dismissed));
    CHECK(dismissed); /* the engine did dismiss it: only the callback is gone */
    shutdown_connection_free(ws);
}

/* With the real clock the driver thread dismisses connections while shutdown_free()
 * runs; a callback that sees `freed` set ran too late. */
static atomic_int freed;
static atomic_int calls;
static atomic_int late_calls;

static void slow_dismissed(void *user_data, const uint64_t *ids, size_t len) {
    (void)user_data;
    (void)ids;
    (void)len;
    calls++;
    sleep_ms(2);
    if (freed) late_calls++;
}

static void test_no_callback_after_free(void) {
    enum { ITERATIONS = 20, CONNS = 8 };
    for (int it = 0; it < ITERATIONS; it++) {
        freed = 0;
        shutdown_config_builder_t *cfg = default_config();
        CHECK_OK(shutdown_config_builder_set_connection_grace_ms(cfg, 1 + it % 3));
        shutdown_t *sd = new_engine(cfg);
        CHECK_OK(shutdown_on_dismissed(sd, slow_dismissed, NULL));
        shutdown_connection_t *conns[CONNS];
        for (int i = 0; i < CONNS; i++) {
            conns[i] = NULL;
            CHECK_OK(shutdown_connection_new(sd, &conns[i]));
            shutdown_request_t *r = NULL;
            CHECK_OK(shutdown_connection_request(conns[i], &r));
            CHECK_OK(shutdown_request_finish(r, NULL));
        }
        CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
        sleep_ms(it % 4);
        shutdown_free(sd);
        freed = 1;
        /* Closing them now may end the drain: no callback may run for it. */
        for (int i = 0; i < CONNS; i++) {
            shutdown_connection_free(conns[i]);
        }
        sleep_ms(5);
    }
    CHECK(late_calls == 0);
    CHECK(calls > 0);
}

/* A request of the quiesce boundary (after admission closed) starts a job: its child
 * guard is admitted while new guards are refused, and the drain waits for it after the
 * request and its connection are gone. */
static void test_request_child(void) {
    shutdown_guard_t *g = (shutdown_guard_t *)SENTINEL;
    CHECK_STATUS(shutdown_request_child(NULL, &g), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(g == (shutdown_guard_t *)SENTINEL);
    shutdown_t *sd = new_engine(manual_config());
    shutdown_connection_t *c = NULL;
    CHECK_OK(shutdown_connection_new(sd, &c));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    shutdown_guard_t *refused = NULL;
    CHECK_STATUS(shutdown_guard_acquire(sd, &refused), SHUTDOWN_STATUS_ADMISSION_CLOSED);
    shutdown_request_t *r = NULL;
    CHECK_OK(shutdown_connection_request(c, &r));
    CHECK_STATUS(shutdown_request_child(r, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    shutdown_guard_t *job = NULL;
    CHECK_OK(shutdown_request_child(r, &job));
    CHECK(job != NULL);
    bool keep = true;
    CHECK_OK(shutdown_request_finish(r, &keep));
    CHECK(!keep);
    shutdown_connection_free(c);
    CHECK(in_flight_of(sd) == 1);
    shutdown_phase_t ph = SHUTDOWN_PHASE_RUNNING;
    CHECK_OK(shutdown_phase(sd, &ph));
    CHECK(ph == SHUTDOWN_PHASE_DRAINING);
    shutdown_guard_release(job);
    CHECK_OK(shutdown_phase(sd, &ph));
    CHECK(ph == SHUTDOWN_PHASE_DONE);
    shutdown_free(sd);
}

/* The unlisten events (code 13) an event callback saw. */
static void count_unlisten(void *user_data, const shutdown_event_t *e) {
    if (e->code == 13)
        (*(int *)user_data)++;
}

/* Listener holds: NULL arguments; a hold keeps the host listening after admission
 * closes and its release says unlisten once (the event, shutdown_should_listen(), the
 * milestone fd); a hold asked for after that is refused; a hold may outlive its
 * engine. */
static void test_listener_holds(void) {
    shutdown_listener_hold_t *h = (shutdown_listener_hold_t *)SENTINEL;
    CHECK_STATUS(shutdown_listener_hold(NULL, &h), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK(h == (shutdown_listener_hold_t *)SENTINEL);
    CHECK(!shutdown_should_listen(NULL));
    shutdown_listener_release(NULL);

    shutdown_t *sd = new_engine(manual_config());
    CHECK_STATUS(shutdown_listener_hold(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    int unlistened = 0;
    CHECK_OK(shutdown_on_event(sd, count_unlisten, &unlistened));
    int fd = -1;
    CHECK_OK(shutdown_fd(sd, &fd));
    shutdown_guard_t *job = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &job));
    h = NULL;
    CHECK_OK(shutdown_listener_hold(sd, &h));
    CHECK(h != NULL);
    CHECK(shutdown_should_listen(sd));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(!shutdown_is_accepting(sd));
    CHECK(shutdown_should_listen(sd));
    CHECK(unlistened == 0);
    shutdown_milestone_t m = SHUTDOWN_MILESTONE_NONE;
    CHECK_OK(shutdown_fd_clear(sd, &m));
    CHECK(m == SHUTDOWN_MILESTONE_QUIESCING);
    CHECK(!readable(fd));
    shutdown_listener_release(h);
    CHECK(!shutdown_should_listen(sd));
    CHECK(unlistened == 1);
    CHECK(readable(fd)); /* a loop polling the fd wakes to close its listener */
    shutdown_listener_hold_t *late = (shutdown_listener_hold_t *)SENTINEL;
    CHECK_STATUS(shutdown_listener_hold(sd, &late), SHUTDOWN_STATUS_TOO_LATE);
    CHECK(late == (shutdown_listener_hold_t *)SENTINEL);
    shutdown_guard_release(job);
    CHECK(unlistened == 1);
    shutdown_free(sd);

    /* A hold taken, its engine freed, then released. */
    sd = new_engine(manual_config());
    h = NULL;
    CHECK_OK(shutdown_listener_hold(sd, &h));
    shutdown_free(sd);
    shutdown_listener_release(h);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_null_arguments),
        TEST(test_keep_alive_reuse_race),
        TEST(test_dismissal_ids),
        TEST(test_reading_at_the_deadline),
        TEST(test_kinds_upgrade_and_refusal),
        TEST(test_no_callback_after_free_from_the_host),
        TEST(test_no_callback_after_free),
        TEST(test_listener_holds),
        TEST(test_request_child),
    };
    return RUN_TESTS("connections", tests);
}
