/* shutdown_on_event(): the core's one event stream, with its stable codes, and the
 * other notifications as views of it. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdbool.h>

#define MAX_SEEN 32

typedef struct {
    int n;
    uint32_t code[MAX_SEEN];
    uint64_t at_us[MAX_SEEN];
    shutdown_milestone_t milestone[MAX_SEEN];
    char hook[MAX_SEEN][16];
    shutdown_hook_outcome_t outcome[MAX_SEEN];
    size_t ids_len[MAX_SEEN];
    uint32_t kind[MAX_SEEN];
    char kind_name[MAX_SEEN][16];
    uint64_t count[MAX_SEEN];
    int cancel_calls_at[MAX_SEEN]; /* cancel callbacks seen when the event came */
    atomic_int cancel_calls;
} event_log;

static void log_event(void *user_data, const shutdown_event_t *e) {
    event_log *l = (event_log *)user_data;
    if (l->n >= MAX_SEEN) return;
    int i = l->n++;
    l->code[i] = e->code;
    l->at_us[i] = e->at_us;
    l->milestone[i] = e->milestone;
    l->hook[i][0] = 0;
    if (e->hook_name) snprintf(l->hook[i], sizeof l->hook[i], "%s", e->hook_name);
    l->outcome[i] = e->hook_outcome;
    l->ids_len[i] = e->connection_ids_len;
    l->kind[i] = e->kind;
    l->kind_name[i][0] = 0;
    if (e->kind_name) snprintf(l->kind_name[i], sizeof l->kind_name[i], "%s", e->kind_name);
    l->count[i] = e->count;
    l->cancel_calls_at[i] = atomic_load(&l->cancel_calls);
}

static void on_cancel_count(void *user_data) {
    atomic_fetch_add(&((event_log *)user_data)->cancel_calls, 1);
}

static int ok_hook(void *user_data, char *message, size_t message_len) {
    (void)user_data; (void)message; (void)message_len;
    return 0;
}

static int find(const event_log *l, uint32_t code) {
    for (int i = 0; i < l->n; i++)
        if (l->code[i] == code) return i;
    return -1;
}

static void test_the_stream_has_the_cores_codes_in_order(void) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_OK(shutdown_config_builder_set_manual_clock(cfg, true));
    shutdown_t *sd = new_engine(cfg);
    event_log l;
    memset(&l, 0, sizeof l);
    CHECK_OK(shutdown_on_event(sd, log_event, &l));
    CHECK_OK(shutdown_on_cancel(sd, on_cancel_count, &l));
    CHECK_OK(shutdown_on_close(sd, "db", 0, 1000, ok_hook, NULL));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK(phase_of(sd) == SHUTDOWN_PHASE_DONE);
    CHECK(l.n >= 7);
    CHECK(l.code[0] == 1 && l.milestone[0] == SHUTDOWN_MILESTONE_DRAINING);
    CHECK(l.code[l.n - 1] == 4 && l.milestone[l.n - 1] == SHUTDOWN_MILESTONE_DONE);
    int draining = find(&l, 1), quiescing = find(&l, 2), closing = find(&l, 3);
    int started = find(&l, 6), finished = find(&l, 7), cancelled = find(&l, 5);
    CHECK(draining == 0 && quiescing > draining && closing > quiescing);
    CHECK(started > closing && finished > started && cancelled > 0 && cancelled < l.n - 1);
    if (started > 0) CHECK_STR(l.hook[started], "db");
    if (finished > 0) {
        CHECK_STR(l.hook[finished], "db");
        CHECK(l.outcome[finished] == SHUTDOWN_HOOK_OUTCOME_OK);
    }
    /* The cancel callback is the Cancelled event's view: called before it is fanned
     * out to the event callbacks, exactly once. */
    if (cancelled > 0) CHECK(l.cancel_calls_at[cancelled] == 1);
    CHECK(atomic_load(&l.cancel_calls) == 1);
    int cancels = 0;
    for (int i = 0; i < l.n; i++) {
        if (l.code[i] == 5) cancels++;
        if (i > 0) CHECK(l.at_us[i] >= l.at_us[i - 1]);
        if (l.code[i] > 4) CHECK(l.milestone[i] == SHUTDOWN_MILESTONE_NONE);
    }
    CHECK(cancels == 1);
    shutdown_free(sd);
}

static void test_dismissed_connections_come_as_events(void) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_OK(shutdown_config_builder_set_manual_clock(cfg, true));
    CHECK_OK(shutdown_config_builder_set_connection_grace_ms(cfg, 0));
    shutdown_t *sd = new_engine(cfg);
    event_log l;
    memset(&l, 0, sizeof l);
    CHECK_OK(shutdown_on_event(sd, log_event, &l));
    shutdown_connection_t *c = NULL;
    CHECK_OK(shutdown_connection_new(sd, &c));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    int d = find(&l, 8);
    CHECK(d > 0);
    if (d > 0) CHECK(l.ids_len[d] == 1);
    shutdown_connection_free(c);
    shutdown_free(sd);
}

static void test_no_event_after_free_and_null_is_refused(void) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_OK(shutdown_config_builder_set_manual_clock(cfg, true));
    shutdown_t *sd = new_engine(cfg);
    event_log l;
    memset(&l, 0, sizeof l);
    CHECK_STATUS(shutdown_on_event(NULL, log_event, &l), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_on_event(sd, NULL, &l), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_OK(shutdown_on_event(sd, log_event, &l));
    shutdown_free(sd);
    CHECK(l.n == 0);
}

static void test_long_lived_kinds_are_told_to_end_then_cut(void) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_OK(shutdown_config_builder_set_manual_clock(cfg, true));
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 10000));
    CHECK_OK(shutdown_config_builder_set_long_lived(cfg, "websocket", 500, SHUTDOWN_MILESTONE_DRAINING));
    shutdown_t *sd = new_engine(cfg);
    event_log l;
    memset(&l, 0, sizeof l);
    CHECK_OK(shutdown_on_event(sd, log_event, &l));
    uint32_t ws = 99;
    CHECK_OK(shutdown_kind(sd, "websocket", &ws));
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire_kind(sd, "websocket", &g));
    bool ending = true, cut = true;
    CHECK_OK(shutdown_is_ending(sd, "websocket", &ending));
    CHECK_OK(shutdown_is_cut(sd, "websocket", &cut));
    CHECK(!ending && !cut);
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    int e9 = find(&l, 9);
    CHECK(e9 > 0);
    if (e9 > 0) {
        CHECK(l.kind[e9] == ws);
        CHECK_STR(l.kind_name[e9], "websocket");
    }
    CHECK_OK(shutdown_is_ending(sd, "websocket", &ending));
    CHECK(ending);
    CHECK(find(&l, 10) < 0);
    CHECK_OK(shutdown_advance(sd, 600));
    int e10 = find(&l, 10);
    CHECK(e10 > e9);
    if (e10 > 0) {
        CHECK(l.kind[e10] == ws && l.count[e10] == 1);
        CHECK_STR(l.kind_name[e10], "websocket");
    }
    CHECK_OK(shutdown_is_cut(sd, "websocket", &cut));
    CHECK(cut);
    CHECK_STATUS(shutdown_is_cut(sd, NULL, &cut), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_is_ending(sd, "websocket", NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    shutdown_guard_release(g);
    shutdown_free(sd);
}

static void test_long_lived_policies_are_checked_by_the_core(void) {
    shutdown_config_builder_t *cfg = default_config();
    CHECK_STATUS(shutdown_config_builder_set_long_lived(cfg, "ws", 10, 7), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(shutdown_config_builder_set_long_lived(cfg, NULL, 10, 0), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_long_lived(NULL, "ws", 10, 0), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_OK(shutdown_config_builder_set_long_lived(cfg, "ws", 10, SHUTDOWN_MILESTONE_CLOSING));
    shutdown_t *sd = NULL;
    CHECK_STATUS(shutdown_new(cfg, &sd), SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK(sd == NULL);
    char field[64], msg[256];
    CHECK_STATUS(shutdown_config_builder_validate(cfg, field, sizeof field, msg, sizeof msg),
                 SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK_STR(field, "long_lived");
    shutdown_config_builder_free(cfg);
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_the_stream_has_the_cores_codes_in_order),
        TEST(test_dismissed_connections_come_as_events),
        TEST(test_no_event_after_free_and_null_is_refused),
        TEST(test_long_lived_kinds_are_told_to_end_then_cut),
        TEST(test_long_lived_policies_are_checked_by_the_core),
    };
    return RUN_TESTS("events", tests);
}
