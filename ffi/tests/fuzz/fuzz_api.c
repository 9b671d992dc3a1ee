/* libFuzzer harness for the C ABI of libshutdown (ffi/include/shutdown.h).
 *
 * The input decodes into one sequence of C API calls with hostile arguments (NULL
 * pointers, out-of-range values, unknown enum values, overlong and invalid strings),
 * every one of them a call the header permits, so any failed check below is a broken
 * promise of the header, and the harness abort()s so that libFuzzer reports it.
 *
 * Input encoding (ffi/tests/fuzz/README.md has the table):
 *   byte 0: the clock. (b & 0x0f) == 0x0f: the system clock, with tiny timeouts
 *           (drain 1..8 ms, close 1..8 ms from bits 4-6); otherwise the manual clock.
 *   then ops: one opcode byte (op % OP_COUNT) followed by its argument bytes; an
 *   argument read past the end of the input is 0. At the end: shutdown_free (unless an
 *   op did it), then every guard still held is released and every deferred hook's
 *   completion still held is completed, then the final checks.
 *
 * The host side is single-threaded (one thread makes the top-level calls); with the
 * system clock the library's driver and hook threads run callbacks concurrently, so
 * the harness's tables are behind a mutex and its counters are atomic.
 */
#define _POSIX_C_SOURCE 200809L
#include <shutdown.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ----- failing ----------------------------------------------------------------------- */

#define BROKEN(...)                                                                     \
    do {                                                                                \
        fprintf(stderr, "fuzz_api: contract broken at %s:%d: ", __FILE__, __LINE__);     \
        fprintf(stderr, __VA_ARGS__);                                                   \
        fprintf(stderr, "\n");                                                          \
        abort();                                                                        \
    } while (0)

#define REQUIRE(cond, ...)                                                              \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_api: failed: %s\n", #cond);                           \
            BROKEN(__VA_ARGS__);                                                        \
        }                                                                               \
    } while (0)

#define S(x) (1u << SHUTDOWN_STATUS_##x)

/* Every status is in the documented set for the call; never PANIC. */
static shutdown_status_t status_in(const char *call, shutdown_status_t st, uint32_t mask) {
    if (st > SHUTDOWN_STATUS_PANIC || !(mask & (1u << st)))
        BROKEN("%s returned %u (%s), outside its documented set 0x%x", call, (unsigned)st,
               shutdown_status_str(st), (unsigned)mask);
    return st;
}
#define CALL(mask, expr) status_in(#expr, (expr), (mask))

/* FUZZ_TRACE=1 in the environment prints the decoded calls (to read a finding). */
static int g_trace = -1;
static int g_avoid_overflow;
static int g_avoid_cancel_race;
#define TRACE(...)                                                                      \
    do {                                                                                \
        if (g_trace) { fprintf(stderr, "  [%d] ", t_depth); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } \
    } while (0)
static __thread int t_depth; /* callback nesting on this thread */

/* ----- input ------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} input_t;

static uint8_t rd8(input_t *in) { return in->i < in->n ? in->p[in->i++] : 0; }
static uint16_t rd16(input_t *in) { uint16_t lo = rd8(in); return (uint16_t)(lo | (rd8(in) << 8)); }

/* A duration in ms: mostly small, sometimes 16 bits, sometimes extreme. */
static uint64_t rd_ms(input_t *in) {
    uint8_t sel = rd8(in);
    if (sel < 200) return sel;
    if (sel < 250) return rd16(in);
    static const uint64_t extreme[] = {0, 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
                                       UINT64_MAX / 1000, UINT64_MAX};
    return extreme[(sel - 250) % 6];
}

static int rd_int(input_t *in) {
    uint8_t sel = rd8(in);
    static const int extreme[] = {0, -1, 256, INT_MIN, INT_MAX, 255};
    if (sel < 250) return sel;
    return extreme[sel - 250];
}

/* ----- strings ----------------------------------------------------------------------- */

static char s_256[257], s_257[258], s_64[65], s_65[66], s_4096[4097], s_4097[4098];
static char s_kinds[256][8];
static void init_strings(void) {
    static int done;
    if (done) return;
    done = 1;
    memset(s_256, 'n', 256);
    memset(s_257, 'n', 257);
    memset(s_64, 'k', 64);
    memset(s_65, 'k', 65);
    memset(s_4096, 'd', 4096);
    memset(s_4097, 'd', 4097);
    for (int i = 0; i < 256; i++) snprintf(s_kinds[i], sizeof s_kinds[i], "k%d", i);
}

/* NULL, empty, ordinary, at and past each documented limit, invalid UTF-8. */
static const char *rd_str(input_t *in) {
    uint8_t sel = rd8(in);
    switch (sel % 16) {
    case 0: return NULL;
    case 1: return "";
    case 2: return "http";
    case 3: return "job";
    case 4: return "a";
    case 5: return s_256;
    case 6: return s_257;
    case 7: return s_64;
    case 8: return s_65;
    case 9: return "\xff\xfe bad";
    case 10: return s_4096;
    case 11: return s_4097;
    case 12: return "deploy";
    case 13: return "\xc3\xa9t\xc3\xa9"; /* valid UTF-8 */
    default: return s_kinds[rd8(in)];
    }
}

/* ----- state ------------------------------------------------------------------------- */

#define MAX_GUARDS 16
#define MAX_DONES 16
#define MAX_HOOKS 24
#define MAX_MS 4
#define MAX_KINDS 80

typedef struct ctx ctx_t;

typedef struct {
    ctx_t *c;
    int idx;
    int deferred;
    int result;     /* blocking: what it returns */
    int msg_mode;   /* blocking: 0 none, 1 short, 2 exactly fills the buffer, 3 overlong */
    atomic_int calls;
    char name[258];
    int32_t order;
    uint64_t limit_ms;  /* its own timeout, or close_timeout */
} hook_t;

typedef struct {
    ctx_t *c;
    int idx;
    uint8_t action[5], arg[5];
    atomic_int last;      /* last milestone seen */
    atomic_int seen;      /* bitmask of milestones seen */
    int at_running;       /* registered at top level while Running */
} ms_reg_t;

struct ctx {
    pthread_mutex_t mu;
    shutdown_t *engine; /* NULL before shutdown_new and after shutdown_free */
    int manual;
    int had_engine;
    uint64_t close_timeout_ms;     /* the builder's, when the engine was created */
    uint64_t builder_close_ms;
    int forced_exit_code;
    shutdown_guard_t *guards[MAX_GUARDS];
    shutdown_hook_done_t *dones[MAX_DONES];
    int done_hook[MAX_DONES];       /* which hook a completion belongs to */
    int done_result[MAX_HOOKS];     /* the result the hook was completed with, -1 none */
    hook_t hooks[MAX_HOOKS];
    int nhooks;
    ms_reg_t ms[MAX_MS];
    int nms;
    atomic_int cancel_calls;
    int cancel_registered;
    atomic_int ev_last_milestone;  /* the event stream's latest milestone (op 22) */
    atomic_int ev_cancelled;       /* its Cancelled events */
    atomic_int ev_unlisten;        /* its unlisten events */
    atomic_ullong ev_last_at_us;
    atomic_int max_phase;
    atomic_int max_fd_milestone;
    atomic_int freed;              /* shutdown_free returned */
    atomic_int in_callback_depth;  /* on the host thread */
    int ok_triggers;
    uint64_t max_recorded;         /* the largest count record_aborted accepted */
    int first_kind;                /* kind of the first accepted trigger, -1 none */
    char *json;                    /* the first Done report's JSON */
    uint32_t report_outcome[MAX_HOOKS];
    int have_outcomes;
    int done_waited;               /* shutdown_wait_timeout gave OK (system clock) */
    char kind_names[MAX_KINDS][70];
    uint32_t kind_ids[MAX_KINDS];
    int nkinds;
    long sleep_budget_us;
};

/* A ring of contexts: a hook thread of the system clock that is still returning when
 * its input ends writes into its own context, not the next input's. */
#define RING 8
static ctx_t g_ring[RING];
static unsigned g_gen;

static void put_guard(ctx_t *c, shutdown_guard_t *g) {
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < MAX_GUARDS; i++)
        if (!c->guards[i]) { c->guards[i] = g; g = NULL; break; }
    pthread_mutex_unlock(&c->mu);
    if (g) shutdown_guard_release(g); /* table full */
}

static shutdown_guard_t *take_guard(ctx_t *c, uint8_t slot) {
    pthread_mutex_lock(&c->mu);
    shutdown_guard_t *g = c->guards[slot % MAX_GUARDS];
    c->guards[slot % MAX_GUARDS] = NULL;
    pthread_mutex_unlock(&c->mu);
    return g;
}

/* ----- checks shared by the ops -------------------------------------------------------- */

static void check_phase(ctx_t *c, shutdown_t *e) {
    int before = atomic_load(&c->max_phase);
    shutdown_phase_t ph = 0xA5A5A5A5u;
    shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_phase(e, &ph));
    if (!e) {
        REQUIRE(st == SHUTDOWN_STATUS_NULL_PARAMETER && ph == 0xA5A5A5A5u, "NULL engine");
        return;
    }
    REQUIRE(st == SHUTDOWN_STATUS_OK, "shutdown_phase on a live engine");
    REQUIRE(ph <= SHUTDOWN_PHASE_DONE, "phase %u", (unsigned)ph);
    REQUIRE((int)ph >= before, "phase went back from %d to %u", before, (unsigned)ph);
    int cur = before;
    while ((int)ph > cur && !atomic_compare_exchange_weak(&c->max_phase, &cur, (int)ph)) {}
}

static int phase_now(shutdown_t *e) {
    shutdown_phase_t ph = 0;
    if (!e || shutdown_phase(e, &ph) != SHUTDOWN_STATUS_OK) return -1;
    return (int)ph;
}

static void do_trigger(ctx_t *c, shutdown_t *e, uint32_t kind, const char *detail) {
    int set_first = 0;
    pthread_mutex_lock(&c->mu);
    if (c->first_kind < 0 && e && phase_now(e) == SHUTDOWN_PHASE_RUNNING) {
        c->first_kind = (int)kind;
        set_first = 1;
    }
    pthread_mutex_unlock(&c->mu);
    shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER) | S(INVALID_ARGUMENT) | S(INVALID_UTF8) |
                                    S(STRING_TOO_LONG),
                                shutdown_trigger(e, kind, detail));
    TRACE("shutdown_trigger(kind %u, detail of %zu bytes) = %u", kind, detail ? strlen(detail) : 0, (unsigned)st);
    if (!e) REQUIRE(st != SHUTDOWN_STATUS_OK, "trigger(NULL) accepted");
    if (kind > 2 && e) REQUIRE(st != SHUTDOWN_STATUS_OK, "trigger with unknown kind %u accepted", kind);
    pthread_mutex_lock(&c->mu);
    if (st == SHUTDOWN_STATUS_OK) c->ok_triggers++;
    else if (set_first) c->first_kind = -1;
    pthread_mutex_unlock(&c->mu);
}

static void do_trigger_signal(ctx_t *c, shutdown_t *e, int signum) {
    int set_first = 0;
    pthread_mutex_lock(&c->mu);
    if (c->first_kind < 0 && e && phase_now(e) == SHUTDOWN_PHASE_RUNNING) {
        c->first_kind = SHUTDOWN_REASON_KIND_SIGNAL;
        set_first = 1;
    }
    pthread_mutex_unlock(&c->mu);
    shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER) | S(INVALID_ARGUMENT),
                                shutdown_trigger_signal(e, signum));
    TRACE("shutdown_trigger_signal(%d) = %u", signum, (unsigned)st);
    if (!e) REQUIRE(st != SHUTDOWN_STATUS_OK, "trigger_signal(NULL) accepted");
    pthread_mutex_lock(&c->mu);
    if (st == SHUTDOWN_STATUS_OK) c->ok_triggers++;
    else if (set_first) c->first_kind = -1;
    pthread_mutex_unlock(&c->mu);
}

static void do_advance(ctx_t *c, shutdown_t *e, uint64_t v, int us) {
    shutdown_status_t st = us ? CALL(S(OK) | S(NULL_PARAMETER) | S(NOT_MANUAL_CLOCK), shutdown_advance_us(e, v))
                              : CALL(S(OK) | S(NULL_PARAMETER) | S(NOT_MANUAL_CLOCK), shutdown_advance(e, v));
    TRACE("shutdown_advance%s(%llu) = %u, phase now %d", us ? "_us" : "", (unsigned long long)v, (unsigned)st, phase_now(e));
    if (!e) REQUIRE(st == SHUTDOWN_STATUS_NULL_PARAMETER, "advance(NULL)");
    else if (c->manual) REQUIRE(st == SHUTDOWN_STATUS_OK, "advance on a manual clock");
    else REQUIRE(st == SHUTDOWN_STATUS_NOT_MANUAL_CLOCK, "advance on the system clock");
}

static void do_release(ctx_t *c, uint8_t slot) {
    shutdown_guard_t *g = take_guard(c, slot);
    TRACE("shutdown_guard_release(slot %u: %s)", slot % MAX_GUARDS, g ? "a guard" : "NULL");
    shutdown_guard_release(g); /* NULL when the slot is empty: allowed */
}

static void do_acquire(ctx_t *c, shutdown_t *e, uint8_t how, input_t *in, uint8_t arg) {
    shutdown_guard_t *const SENT = (shutdown_guard_t *)(uintptr_t)0x5A5A5A5Au;
    shutdown_guard_t *g = SENT;
    shutdown_status_t st;
    int null_out = (how & 0x80) != 0;
    switch (how % 4) {
    case 0:
        st = CALL(S(OK) | S(NULL_PARAMETER) | S(ADMISSION_CLOSED), shutdown_guard_acquire(e, null_out ? NULL : &g));
        break;
    case 1: {
        uint32_t kind = arg;
        pthread_mutex_lock(&c->mu);
        if (c->nkinds > 0 && arg < 200) kind = c->kind_ids[arg % c->nkinds];
        else if (arg >= 250) kind = UINT32_MAX - arg;
        pthread_mutex_unlock(&c->mu);
        st = CALL(S(OK) | S(NULL_PARAMETER) | S(ADMISSION_CLOSED) | S(INVALID_ARGUMENT),
                  shutdown_guard_acquire_of(e, kind, null_out ? NULL : &g));
        break;
    }
    case 2: {
        const char *name = in ? rd_str(in) : "http";
        st = CALL(S(OK) | S(NULL_PARAMETER) | S(ADMISSION_CLOSED) | S(INVALID_NAME) | S(INVALID_UTF8) |
                      S(STRING_TOO_LONG) | S(TOO_MANY_KINDS),
                  shutdown_guard_acquire_kind(e, name, null_out ? NULL : &g));
        break;
    }
    default: {
        /* A child of a held guard, only while its engine lives. */
        if (!e) return;
        pthread_mutex_lock(&c->mu);
        shutdown_guard_t *parent = c->guards[arg % MAX_GUARDS];
        if (parent) c->guards[arg % MAX_GUARDS] = NULL; /* hold it while we use it */
        pthread_mutex_unlock(&c->mu);
        st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_guard_child(parent, null_out ? NULL : &g));
        if (parent && !null_out) REQUIRE(st == SHUTDOWN_STATUS_OK, "a child guard is always admitted");
        if (!parent || null_out) REQUIRE(st == SHUTDOWN_STATUS_NULL_PARAMETER, "child with a NULL argument");
        if (parent) put_guard(c, parent);
        break;
    }
    }
    if (!e && how % 4 != 3) REQUIRE(st != SHUTDOWN_STATUS_OK, "acquire on a NULL engine accepted");
    TRACE("guard acquire (variant %u%s) = %u", how % 4, null_out ? ", NULL out" : "", (unsigned)st);
    if (null_out) REQUIRE(st != SHUTDOWN_STATUS_OK, "NULL out_guard accepted");
    if (st != SHUTDOWN_STATUS_OK) {
        REQUIRE(g == SENT, "out_guard written on error %u", (unsigned)st);
        return;
    }
    REQUIRE(g != SENT && g != NULL, "acquire OK without a guard");
    put_guard(c, g);
}

static void do_done(ctx_t *c, uint8_t slot, int result, const char *msg) {
    pthread_mutex_lock(&c->mu);
    shutdown_hook_done_t *d = c->dones[slot % MAX_DONES];
    c->dones[slot % MAX_DONES] = NULL;
    int hook = c->done_hook[slot % MAX_DONES];
    pthread_mutex_unlock(&c->mu);
    if (!d) {
        CALL(S(NULL_PARAMETER), shutdown_hook_done(NULL, result, msg));
        return;
    }
    /* Recorded before the call: the completion may run the rest of Closing. */
    pthread_mutex_lock(&c->mu);
    int prev = c->done_result[hook];
    c->done_result[hook] = result;
    pthread_mutex_unlock(&c->mu);
    shutdown_status_t st = CALL(S(OK) | S(INVALID_UTF8) | S(STRING_TOO_LONG), shutdown_hook_done(d, result, msg));
    TRACE("shutdown_hook_done(hook %d, %d) = %u", hook, result, (unsigned)st);
    if (st != SHUTDOWN_STATUS_OK) {
        /* Not consumed: keep it for later. */
        pthread_mutex_lock(&c->mu);
        c->done_result[hook] = prev;
        int i;
        for (i = 0; i < MAX_DONES && c->dones[i]; i++) {}
        if (i < MAX_DONES) { c->dones[i] = d; c->done_hook[i] = hook; d = NULL; }
        pthread_mutex_unlock(&c->mu);
        if (d) CALL(S(OK), shutdown_hook_done(d, 0, NULL));
    }
}

static void check_report(ctx_t *c, shutdown_t *e, int top);

/* ----- callbacks --------------------------------------------------------------------- */

static void milestone_cb(void *ud, shutdown_milestone_t m) {
    ms_reg_t *r = (ms_reg_t *)ud;
    ctx_t *c = r->c;
    TRACE("milestone callback %d: milestone %u, action %u arg %u", r->idx, (unsigned)m, r->action[m] % 10, r->arg[m]);
    REQUIRE(!atomic_load(&c->freed), "milestone callback after shutdown_free returned");
    REQUIRE(m >= SHUTDOWN_MILESTONE_DRAINING && m <= SHUTDOWN_MILESTONE_DONE, "milestone %u", (unsigned)m);
    int last = atomic_load(&r->last);
    REQUIRE((int)m > last, "milestone callback %d after %d (each once, in order)", (int)m, last);
    atomic_store(&r->last, (int)m);
    atomic_fetch_or(&r->seen, 1 << m);
    shutdown_t *e = c->engine;
    /* Delivered after the step that reached it: the phase is at least there. */
    int ph = phase_now(e);
    static const int min_phase[] = {0, SHUTDOWN_PHASE_DRAINING, SHUTDOWN_PHASE_DRAINING,
                                    SHUTDOWN_PHASE_CLOSING, SHUTDOWN_PHASE_DONE};
    REQUIRE(ph >= min_phase[m], "milestone %u delivered while the phase reads %d", (unsigned)m, ph);
    t_depth++;
    uint8_t a = r->action[m], arg = r->arg[m];
    switch (a % 10) {
    case 0: break;
    case 1: do_advance(c, e, arg < 128 ? arg : (uint64_t)(arg - 128) * 100, 0); break;
    case 2: do_trigger(c, e, SHUTDOWN_REASON_KIND_MANUAL, "cb"); break;
    case 3: do_release(c, arg); break;
    case 4: CALL(S(OK), shutdown_readiness_probed(e)); break;
    case 5: do_acquire(c, e, arg & 3, NULL, arg); break;
    case 6: do_done(c, arg, arg & 1, (arg & 2) ? "cb failed" : NULL); break;
    case 7:
        if (CALL(S(OK) | S(TOO_LATE), shutdown_record_aborted(e, 1, (arg & 1) ? "cb" : NULL)) == SHUTDOWN_STATUS_OK) {
            pthread_mutex_lock(&c->mu);
            if (c->max_recorded < 1) c->max_recorded = 1;
            pthread_mutex_unlock(&c->mu);
        }
        break;
    case 8: do_trigger_signal(c, e, arg % 70); break;
    default:
        if (m == SHUTDOWN_MILESTONE_DONE) {
            shutdown_report_t *rep = NULL;
            REQUIRE(shutdown_report(e, &rep) == SHUTDOWN_STATUS_OK, "no report in the Done callback");
            shutdown_report_free(rep);
        }
        check_phase(c, e);
        break;
    }
    t_depth--;
}

static void cancel_cb(void *ud) {
    ctx_t *c = (ctx_t *)ud;
    TRACE("cancel callback");
    REQUIRE(!atomic_load(&c->freed), "cancel callback after shutdown_free returned");
    int n = atomic_fetch_add(&c->cancel_calls, 1);
    REQUIRE(n == 0, "cancel callback called %d times", n + 1);
    REQUIRE(shutdown_is_cancelled(c->engine), "cancel callback before is_cancelled");
}

/* The event stream (registered with the cancel callback, op 22): the core's codes, each
 * payload where its code says, the milestones once each and in order, one Cancelled,
 * after the cancel callback ran, times that never go back, none after shutdown_free. */
static void event_cb(void *ud, const shutdown_event_t *ev) {
    ctx_t *c = (ctx_t *)ud;
    TRACE("event callback: code %u", (unsigned)ev->code);
    REQUIRE(!atomic_load(&c->freed), "event callback after shutdown_free returned");
    REQUIRE(ev->code >= 1 && ev->code <= 13, "event code %u", (unsigned)ev->code);
    unsigned long long last_at = atomic_load(&c->ev_last_at_us);
    REQUIRE(ev->at_us >= last_at, "event at %llu us after one at %llu us",
            (unsigned long long)ev->at_us, last_at);
    atomic_store(&c->ev_last_at_us, ev->at_us);
    if (ev->code <= 4) {
        REQUIRE((uint32_t)ev->milestone == ev->code, "milestone event %u carries %u",
                (unsigned)ev->code, (unsigned)ev->milestone);
        int last = atomic_load(&c->ev_last_milestone);
        REQUIRE((int)ev->code > last, "milestone event %u after %d", (unsigned)ev->code, last);
        atomic_store(&c->ev_last_milestone, (int)ev->code);
    } else {
        REQUIRE(ev->milestone == SHUTDOWN_MILESTONE_NONE, "event %u carries a milestone", (unsigned)ev->code);
    }
    if (ev->code == 5) {
        int n = atomic_fetch_add(&c->ev_cancelled, 1);
        REQUIRE(n == 0, "Cancelled event %d times", n + 1);
        REQUIRE(atomic_load(&c->cancel_calls) == 1, "Cancelled event before the cancel callback");
    }
    REQUIRE((ev->code == 6 || ev->code == 7) == (ev->hook_name != NULL), "hook name of event %u", (unsigned)ev->code);
    REQUIRE((ev->code == 8) == (ev->connection_ids != NULL && ev->connection_ids_len > 0),
            "connection ids of event %u", (unsigned)ev->code);
    REQUIRE((ev->code == 9 || ev->code == 10) == (ev->kind_name != NULL), "kind name of event %u", (unsigned)ev->code);
    if (ev->code == 13) {
        /* Unlisten: once, after quiescing, and the query agrees from then on. */
        int n = atomic_fetch_add(&c->ev_unlisten, 1);
        REQUIRE(n == 0, "unlisten event %d times", n + 1);
        REQUIRE(atomic_load(&c->ev_last_milestone) >= 2, "unlisten before quiescing");
        REQUIRE(!shutdown_should_listen(c->engine), "unlisten event while should_listen");
        REQUIRE(!shutdown_is_accepting(c->engine), "unlisten event while accepting");
    }
}

static int blocking_hook(void *ud, char *message, size_t message_len) {
    hook_t *h = (hook_t *)ud;
    TRACE("blocking hook %d called (returns %d)", h->idx, h->result);
    /* shutdown_free() waits for a running hook only up to its timeout, so a hook called
     * just before could read `freed` set: checked only when that wait cannot end first
     * (a limit of a second or more; the hook returns at once). */
    if (h->limit_ms >= 1000)
        REQUIRE(!atomic_load(&h->c->freed), "hook %d called after shutdown_free returned", h->idx);
    int n = atomic_fetch_add(&h->calls, 1);
    REQUIRE(n == 0, "hook %d called %d times", h->idx, n + 1);
    REQUIRE(message != NULL && message_len > 0 && message_len <= SHUTDOWN_HOOK_MESSAGE_LEN,
            "hook message buffer %zu", message_len);
    REQUIRE(message[0] == '\0', "the hook's message buffer does not start empty");
    if (h->result != 0) {
        switch (h->msg_mode) {
        case 1: snprintf(message, message_len, "hook %d failed", h->idx); break;
        case 2: memset(message, 'm', message_len - 1); message[message_len - 1] = '\0'; break;
        default: break;
        }
    }
    return h->result;
}

static void deferred_hook(void *ud, shutdown_hook_done_t *done) {
    hook_t *h = (hook_t *)ud;
    ctx_t *c = h->c;
    TRACE("deferred hook %d started", h->idx);
    REQUIRE(!atomic_load(&c->freed), "deferred hook %d started after shutdown_free returned", h->idx);
    int n = atomic_fetch_add(&h->calls, 1);
    REQUIRE(n == 0, "deferred hook %d started %d times", h->idx, n + 1);
    REQUIRE(done != NULL, "deferred hook without a completion");
    pthread_mutex_lock(&c->mu);
    int i;
    for (i = 0; i < MAX_DONES && c->dones[i]; i++) {}
    if (i < MAX_DONES) { c->dones[i] = done; c->done_hook[i] = h->idx; done = NULL; }
    pthread_mutex_unlock(&c->mu);
    if (done) { /* table full: complete it at once (allowed from the start function) */
        c->done_result[h->idx] = 0;
        CALL(S(OK), shutdown_hook_done(done, 0, NULL));
    }
}

/* ----- the report -------------------------------------------------------------------- */

static void check_report(ctx_t *c, shutdown_t *e, int top) {
    shutdown_report_t *const SENT = (shutdown_report_t *)(uintptr_t)0x5A5A5A5Au;
    shutdown_report_t *r = SENT;
    int before = phase_now(e);
    shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER) | S(NOT_DONE), shutdown_report(e, &r));
    int after = phase_now(e);
    if (!e) { REQUIRE(st == SHUTDOWN_STATUS_NULL_PARAMETER && r == SENT, "report(NULL)"); return; }
    CALL(S(NULL_PARAMETER), shutdown_report(e, NULL));
    int code = 0x5A5A;
    shutdown_status_t cst = CALL(S(OK) | S(NOT_DONE), shutdown_exit_code(e, &code));
    if (st != SHUTDOWN_STATUS_OK) {
        REQUIRE(r == SENT, "out_report written on error");
        REQUIRE(before != SHUTDOWN_PHASE_DONE, "NOT_DONE while the phase read DONE");
        if (cst != SHUTDOWN_STATUS_OK) REQUIRE(code == 0x5A5A, "exit code written on error");
        return;
    }
    REQUIRE(r != SENT && r != NULL, "report OK without a report");
    REQUIRE(after == SHUTDOWN_PHASE_DONE, "a report while the phase reads %d", after);
    REQUIRE(cst == SHUTDOWN_STATUS_OK, "no exit code once Done");

    const char *json = NULL;
    CALL(S(OK), shutdown_report_json(r, &json));
    REQUIRE(json && json[0] == '{', "json");
    CALL(S(NULL_PARAMETER), shutdown_report_json(r, NULL));
    CALL(S(NULL_PARAMETER), shutdown_report_json(NULL, &json));
    /* Final: the same as every earlier read, and as a second one now. */
    shutdown_report_t *r2 = NULL;
    CALL(S(OK), shutdown_report(e, &r2));
    const char *json2 = NULL;
    CALL(S(OK), shutdown_report_json(r2, &json2));
    REQUIRE(strcmp(json, json2) == 0, "two reads of a Done report differ:\n%s\n%s", json, json2);
    shutdown_report_free(r2);
    pthread_mutex_lock(&c->mu);
    if (!c->json) c->json = strdup(json);
    else REQUIRE(strcmp(c->json, json) == 0, "a Done report changed:\n%s\n%s", c->json, json);
    pthread_mutex_unlock(&c->mu);

    int rcode = -7;
    CALL(S(OK), shutdown_report_exit_code(r, &rcode));
    REQUIRE(rcode == code, "report exit code %d, engine exit code %d", rcode, code);
    shutdown_reason_kind_t kind = 99;
    CALL(S(OK), shutdown_report_reason_kind(r, &kind));
    REQUIRE(kind <= SHUTDOWN_REASON_KIND_FATAL, "reason kind %u", (unsigned)kind);
    if (c->first_kind >= 0)
        REQUIRE((int)kind == c->first_kind, "reason kind %u, first trigger %d", (unsigned)kind, c->first_kind);
    const char *detail = NULL;
    CALL(S(OK), shutdown_report_reason_detail(r, &detail));
    REQUIRE(detail != NULL, "detail");
    uint32_t triggers = 0;
    CALL(S(OK), shutdown_report_triggers(r, &triggers));
    REQUIRE(triggers >= 1, "triggers %u", triggers);
    shutdown_forced_t forced = 99;
    CALL(S(OK), shutdown_report_forced(r, &forced));
    REQUIRE(forced <= SHUTDOWN_FORCED_TERMINATED, "forced %u", (unsigned)forced);
    uint64_t v = 0, aborted = 0;
    CALL(S(OK), shutdown_report_in_flight_at_trigger(r, &v));
    CALL(S(OK), shutdown_report_aborted(r, &aborted));
    size_t nk = 0, nh = 0;
    CALL(S(OK), shutdown_report_aborted_kind_count(r, &nk));
    uint64_t ksum = 0;
    for (size_t i = 0; i <= nk; i++) {
        const char *kn = (const char *)1;
        uint64_t kc = 77;
        shutdown_status_t ks = CALL(S(OK) | S(INVALID_ARGUMENT), shutdown_report_aborted_kind(r, i, &kn, &kc));
        if (i < nk) {
            REQUIRE(ks == SHUTDOWN_STATUS_OK && kn != NULL, "aborted kind %zu", i);
            ksum = kc > UINT64_MAX - ksum ? UINT64_MAX : ksum + kc;
            REQUIRE(kc <= aborted, "aborted of one kind %llu > aborted %llu", (unsigned long long)kc, (unsigned long long)aborted);
        } else {
            REQUIRE(ks == SHUTDOWN_STATUS_INVALID_ARGUMENT && kn == (const char *)1 && kc == 77, "past the end");
        }
    }
    REQUIRE(ksum <= aborted, "aborted by kind %llu > aborted %llu", (unsigned long long)ksum,
            (unsigned long long)aborted);
    CALL(S(OK), shutdown_report_hook_count(r, &nh));
    REQUIRE((int)nh == c->nhooks, "hook count %zu, registered %d", nh, c->nhooks);
    int all_ok = 1;
    for (size_t i = 0; i <= nh; i++) {
        shutdown_hook_report_t hr;
        memset(&hr, 0xA5, sizeof hr);
        shutdown_status_t hs = CALL(S(OK) | S(INVALID_ARGUMENT), shutdown_report_hook(r, i, &hr));
        if (i == nh) {
            unsigned char z[sizeof hr];
            memset(z, 0xA5, sizeof z);
            REQUIRE(hs == SHUTDOWN_STATUS_INVALID_ARGUMENT && memcmp(&hr, z, sizeof z) == 0, "hook past the end");
            break;
        }
        REQUIRE(hs == SHUTDOWN_STATUS_OK, "hook %zu", i);
        hook_t *h = &c->hooks[i];
        REQUIRE(hr.name && strcmp(hr.name, h->name) == 0 && hr.order == h->order, "hook %zu is not the registered one", i);
        REQUIRE(hr.outcome <= SHUTDOWN_HOOK_OUTCOME_CANCELLED, "outcome %u", (unsigned)hr.outcome);
        if (hr.outcome != SHUTDOWN_HOOK_OUTCOME_OK) all_ok = 0;
        int calls = atomic_load(&h->calls);
        REQUIRE(!(hr.outcome == SHUTDOWN_HOOK_OUTCOME_SKIPPED && calls > 0), "hook %zu reported SKIPPED but it was called", i);
        if (c->manual)
            REQUIRE(!(calls == 0 && hr.outcome != SHUTDOWN_HOOK_OUTCOME_SKIPPED), "hook %zu never called, reported %u", i, (unsigned)hr.outcome);
        if (hr.outcome == SHUTDOWN_HOOK_OUTCOME_SKIPPED) REQUIRE(hr.duration_us == 0, "skipped with a duration");
        if (hr.outcome == SHUTDOWN_HOOK_OUTCOME_FAILED || hr.outcome == SHUTDOWN_HOOK_OUTCOME_PANICKED)
            REQUIRE(hr.message != NULL, "failed without a message");
        else
            REQUIRE(hr.message == NULL, "a message for outcome %u", (unsigned)hr.outcome);
        if (!h->deferred && c->manual && calls > 0) {
            /* On the manual clock a blocking hook runs to its end on the caller's thread. */
            uint32_t want = h->result == 0 ? SHUTDOWN_HOOK_OUTCOME_OK : SHUTDOWN_HOOK_OUTCOME_FAILED;
            REQUIRE(hr.outcome == want, "blocking hook %zu returned %d, reported %u", i, h->result, (unsigned)hr.outcome);
            if (want == SHUTDOWN_HOOK_OUTCOME_FAILED && h->msg_mode == 1) {
                char buf[64];
                snprintf(buf, sizeof buf, "hook %d failed", h->idx);
                REQUIRE(strcmp(hr.message, buf) == 0, "message \"%s\"", hr.message);
            }
        }
        if (h->deferred && hr.outcome == SHUTDOWN_HOOK_OUTCOME_OK)
            REQUIRE(c->done_result[i] == 0, "deferred hook %zu OK but completed with %d", i, c->done_result[i]);
        if (!h->deferred && hr.outcome == SHUTDOWN_HOOK_OUTCOME_OK)
            REQUIRE(h->result == 0, "blocking hook %zu returned %d, reported OK", i, h->result);
        if (!c->have_outcomes) c->report_outcome[i] = hr.outcome;
        else REQUIRE(c->report_outcome[i] == hr.outcome, "outcome changed");
    }
    c->have_outcomes = 1;
    /* record_aborted: "the report's aborted grows by count, and the exit code is not 0". */
    REQUIRE(aborted >= c->max_recorded, "aborted %llu after record_aborted(%llu) was accepted",
            (unsigned long long)aborted, (unsigned long long)c->max_recorded);
    if (c->max_recorded > 0) REQUIRE(rcode != 0, "exit code 0 after record_aborted(%llu) was accepted", (unsigned long long)c->max_recorded);
    /* The exit code rule. */
    int clean = forced == SHUTDOWN_FORCED_NONE && aborted == 0 && all_ok && kind != SHUTDOWN_REASON_KIND_FATAL;
    REQUIRE((rcode == 0) == clean, "exit code %d, forced %u aborted %llu hooks ok %d kind %u", rcode,
            (unsigned)forced, (unsigned long long)aborted, all_ok, (unsigned)kind);
    if (!clean) REQUIRE(rcode == c->forced_exit_code, "exit code %d, configured %d", rcode, c->forced_exit_code);

    /* The timeline. */
    uint64_t prev = 0, t = 0, total = 1;
    for (uint32_t m = 0; m <= 6; m++) {
        uint64_t us = 0xABCD;
        shutdown_status_t ms = CALL(S(OK) | S(NOT_FOUND) | S(INVALID_ARGUMENT), shutdown_report_milestone_us(r, m, &us));
        if (m == 0 || m > 4) { REQUIRE(ms == SHUTDOWN_STATUS_INVALID_ARGUMENT && us == 0xABCD, "milestone %u", m); continue; }
        REQUIRE(ms == SHUTDOWN_STATUS_OK, "milestone %u not in a Done report (every milestone is passed)", m);
        REQUIRE(us >= prev, "milestone %u at %llu before %llu", m, (unsigned long long)us, (unsigned long long)prev);
        prev = us;
        t = us;
    }
    CALL(S(OK), shutdown_report_total_us(r, &total));
    REQUIRE(total == t, "total %llu, done at %llu", (unsigned long long)total, (unsigned long long)t);
    shutdown_report_free(r);

    /* Milestone callbacks registered while Running have seen all four, in order. */
    if (top && (c->manual || c->done_waited)) {
        for (int i = 0; i < c->nms; i++)
            if (c->ms[i].at_running)
                REQUIRE(atomic_load(&c->ms[i].seen) == 0x1e, "milestone callback %d saw 0x%x of 0x1e", i,
                        atomic_load(&c->ms[i].seen));
    }
}

/* ----- ops --------------------------------------------------------------------------- */

enum {
    OP_DRAIN_DELAY, OP_DRAIN_TIMEOUT, OP_CLOSE_TIMEOUT, OP_GRACE, OP_FORCE_AT, OP_TERMINATE_AT,
    OP_EXIT_CODE, OP_STRATEGY, OP_SIGNALS, OP_MANUAL, OP_PROBES, OP_SETTLE, OP_VALIDATE, OP_NEW,
    OP_ACQUIRE, OP_RELEASE, OP_KIND, OP_TRIGGER, OP_TRIGGER_SIGNAL, OP_PROBE, OP_ADVANCE,
    OP_ON_MILESTONE, OP_ON_CANCEL, OP_ON_CLOSE, OP_ON_CLOSE_DEFERRED, OP_HOOK_DONE,
    OP_RECORD_ABORTED, OP_QUERY, OP_REPORT, OP_FREE, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "set_drain_delay_ms", "set_drain_timeout_ms", "set_close_timeout_ms", "set_grace_period_ms",
    "set_force_at", "set_terminate_at", "set_forced_exit_code", "set_close_strategy", "set_signals",
    "set_manual_clock", "set_announce_probes", "set_announce_settle_ms", "validate", "shutdown_new",
    "guard acquire", "guard_release", "shutdown_kind", "shutdown_trigger", "shutdown_trigger_signal",
    "readiness_probed", "shutdown_advance", "on_milestone", "on_cancel", "on_close", "on_close_deferred",
    "hook_done", "record_aborted", "query", "report", "shutdown_free"};

#define SETTER_MASK (S(OK) | S(INVALID_ARGUMENT) | S(INVALID_CONFIG))

static void op_query(ctx_t *c, shutdown_t *e, uint8_t which) {
    int before = phase_now(e);
    switch (which % 8) {
    case 0: check_phase(c, e); break;
    case 1: {
        bool listen = shutdown_should_listen(e); /* read first: unlisten follows the close */
        bool ready = shutdown_is_ready(e);
        bool acc = shutdown_is_accepting(e);
        bool close = shutdown_should_close(e);
        bool canc = shutdown_is_cancelled(e);
        int after = phase_now(e);
        if (!e) { REQUIRE(!ready && !acc && !close && !canc && !listen, "NULL engine gives false"); break; }
        if (!listen) REQUIRE(!acc, "not listening while accepting");
        if (after == SHUTDOWN_PHASE_RUNNING) REQUIRE(listen, "Running but not listening");
        if (before != SHUTDOWN_PHASE_RUNNING) REQUIRE(!ready, "ready in phase %d", before);
        if (after == SHUTDOWN_PHASE_RUNNING) REQUIRE(ready && acc, "Running but not ready/accepting");
        if (before >= SHUTDOWN_PHASE_CLOSING) REQUIRE(!acc, "accepting in phase %d", before);
        if (before == SHUTDOWN_PHASE_DONE) REQUIRE(canc, "Done but not cancelled");
        if (after == SHUTDOWN_PHASE_RUNNING) REQUIRE(!canc, "cancelled while Running");
        break;
    }
    case 2: {
        uint64_t n = 0xABCD;
        shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_in_flight(e, (which & 0x80) ? NULL : &n));
        if (st != SHUTDOWN_STATUS_OK) REQUIRE(n == 0xABCD, "in_flight written on error");
        break;
    }
    case 3: {
        int fd = -77;
        shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_fd(e, (which & 0x80) ? NULL : &fd));
        if (st == SHUTDOWN_STATUS_OK) REQUIRE(fd >= 0, "fd %d", fd); else REQUIRE(fd == -77, "fd written on error");
        fd = -77;
        st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_cancel_fd(e, (which & 0x40) ? NULL : &fd));
        if (st == SHUTDOWN_STATUS_OK) REQUIRE(fd >= 0, "cancel fd %d", fd); else REQUIRE(fd == -77, "cancel fd written on error");
        break;
    }
    case 4: {
        shutdown_milestone_t m = 0xA5A5;
        int was = atomic_load(&c->max_fd_milestone);
        shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_fd_clear(e, (which & 0x80) ? NULL : &m));
        if (st != SHUTDOWN_STATUS_OK) { REQUIRE(m == 0xA5A5, "fd_clear wrote on error"); break; }
        REQUIRE(m <= SHUTDOWN_MILESTONE_DONE && (int)m >= was, "fd_clear milestone %u after %d", (unsigned)m, was);
        atomic_store(&c->max_fd_milestone, (int)m);
        if (m >= SHUTDOWN_MILESTONE_QUIESCING) REQUIRE(!shutdown_is_accepting(e), "QUIESCING but accepting");
        if (m == SHUTDOWN_MILESTONE_NONE) REQUIRE(before == SHUTDOWN_PHASE_RUNNING, "milestone NONE in phase %d", before);
        break;
    }
    case 5: {
        uint64_t us = 0xABCD, us2 = 0;
        shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_elapsed_us(e, (which & 0x80) ? NULL : &us));
        if (st != SHUTDOWN_STATUS_OK) { REQUIRE(us == 0xABCD, "elapsed written on error"); break; }
        CALL(S(OK), shutdown_elapsed_us(e, &us2));
        REQUIRE(us2 >= us, "elapsed went back");
        break;
    }
    case 6: {
        shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER) | S(TIMED_OUT), shutdown_wait_timeout(e, 0));
        if (!e) break;
        if (st == SHUTDOWN_STATUS_OK) {
            REQUIRE(phase_now(e) == SHUTDOWN_PHASE_DONE, "wait OK before Done");
            c->done_waited = 1;
        } else if (c->manual) {
            REQUIRE(before != SHUTDOWN_PHASE_DONE, "wait timed out on a Done manual engine");
        }
        break;
    }
    default: {
        int code = 0x5A5A;
        shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER) | S(NOT_DONE), shutdown_exit_code(e, (which & 0x80) ? NULL : &code));
        if (st != SHUTDOWN_STATUS_OK) REQUIRE(code == 0x5A5A, "exit code written on error");
        else REQUIRE(phase_now(e) == SHUTDOWN_PHASE_DONE, "exit code before Done");
        if (st == SHUTDOWN_STATUS_NOT_DONE) REQUIRE(before != SHUTDOWN_PHASE_DONE, "NOT_DONE once Done");
        break;
    }
    }
}

static void register_hook(ctx_t *c, shutdown_t *e, input_t *in, int deferred) {
    const char *name = rd_str(in);
    uint8_t ob = rd8(in);
    int32_t order = ob < 250 ? (int32_t)(ob % 5) - 1 : (ob & 1 ? INT32_MAX : INT32_MIN);
    uint64_t timeout = rd_ms(in);
    uint8_t beh = rd8(in);
    int null_cb = beh == 0xff;
    hook_t *h = c->nhooks < MAX_HOOKS ? &c->hooks[c->nhooks] : NULL;
    if (!h) return;
    memset(h, 0, sizeof *h);
    h->c = c;
    h->idx = c->nhooks;
    h->deferred = deferred;
    h->result = (beh & 3) == 0 ? 0 : (beh & 3) == 3 ? -1 : (int)(beh & 3);
    h->msg_mode = (beh >> 2) & 3;
    h->order = order;
    h->limit_ms = timeout ? timeout : c->close_timeout_ms;
    c->done_result[h->idx] = -1;
    if (name && strlen(name) < sizeof h->name) strcpy(h->name, name);
    int before = phase_now(e);
    shutdown_status_t st;
    uint32_t mask = S(OK) | S(NULL_PARAMETER) | S(INVALID_ARGUMENT) | S(INVALID_NAME) | S(INVALID_UTF8) |
                    S(STRING_TOO_LONG) | S(TOO_LATE);
    if (deferred)
        st = CALL(mask, shutdown_on_close_deferred(e, name, order, timeout, null_cb ? NULL : deferred_hook, h));
    else
        st = CALL(mask, shutdown_on_close(e, name, order, timeout, null_cb ? NULL : blocking_hook, h));
    TRACE("%s(name of %zu bytes, order %d, timeout %llu, %s) = %u -> hook %d", deferred ? "on_close_deferred" : "on_close",
          name ? strlen(name) : 0, order, (unsigned long long)timeout, null_cb ? "NULL callback" : "", (unsigned)st, h->idx);
    /* With several bad arguments, any of their statuses; one NULL is always refused. */
    if (!e || null_cb || !name) REQUIRE(st != SHUTDOWN_STATUS_OK, "hook with a NULL argument accepted");
    if (st == SHUTDOWN_STATUS_OK) {
        REQUIRE(before < SHUTDOWN_PHASE_DONE, "hook registered once Done");
        REQUIRE(name && *name && strlen(name) <= 256, "hook name of %zu bytes accepted", name ? strlen(name) : 0);
        c->nhooks++;
    }
    if (st == SHUTDOWN_STATUS_TOO_LATE) REQUIRE(phase_now(e) >= SHUTDOWN_PHASE_CLOSING, "TOO_LATE before Closing");
}

static void sys_sleep(ctx_t *c, uint64_t ms) {
    if (c->manual || c->sleep_budget_us <= 0) return;
    long us = (long)(ms % 4) * 500 + 100;
    if (us > c->sleep_budget_us) us = c->sleep_budget_us;
    c->sleep_budget_us -= us;
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void run(ctx_t *c, input_t *in, shutdown_config_builder_t *b) {
    while (in->i < in->n) {
        uint8_t op = rd8(in) % OP_COUNT;
        shutdown_t *e = c->engine;
        TRACE("op %s (byte offset %zu)%s", op_names[op], in->i - 1, e ? "" : " [engine NULL]");
        switch (op) {
        case OP_DRAIN_DELAY: CALL(SETTER_MASK, shutdown_config_builder_set_drain_delay_ms(b, rd_ms(in))); break;
        case OP_DRAIN_TIMEOUT: CALL(SETTER_MASK, shutdown_config_builder_set_drain_timeout_ms(b, rd_ms(in))); break;
        case OP_CLOSE_TIMEOUT: {
            uint64_t v = rd_ms(in);
            if (CALL(SETTER_MASK, shutdown_config_builder_set_close_timeout_ms(b, v)) == SHUTDOWN_STATUS_OK) c->builder_close_ms = v;
            break;
        }
        case OP_GRACE: CALL(SETTER_MASK, shutdown_config_builder_set_grace_period_ms(b, rd_ms(in))); break;
        case OP_FORCE_AT: { uint8_t v = rd8(in); CALL(SETTER_MASK, shutdown_config_builder_set_force_at(b, v < 250 ? v % 6 : UINT32_MAX - v)); break; }
        case OP_TERMINATE_AT: { uint8_t v = rd8(in); CALL(SETTER_MASK, shutdown_config_builder_set_terminate_at(b, v < 250 ? v % 6 : UINT32_MAX - v)); break; }
        case OP_EXIT_CODE: {
            int code = rd_int(in);
            shutdown_status_t st = CALL(SETTER_MASK, shutdown_config_builder_set_forced_exit_code(b, code));
            if (st == SHUTDOWN_STATUS_OK && !c->had_engine) c->forced_exit_code = code;
            break;
        }
        case OP_STRATEGY: {
            uint32_t s = rd8(in);
            shutdown_status_t st = CALL(SETTER_MASK, shutdown_config_builder_set_close_strategy(b, s));
            REQUIRE((st == SHUTDOWN_STATUS_OK) == (s <= 1), "strategy %u gave %u", s, (unsigned)st);
            break;
        }
        case OP_SIGNALS: {
            uint8_t len = rd8(in) % 72;
            int sigs[72];
            for (int i = 0; i < len; i++) sigs[i] = (int8_t)rd8(in);
            int use_null = len == 0 && (rd8(in) & 1);
            shutdown_status_t st = CALL(SETTER_MASK | S(NULL_PARAMETER), shutdown_config_builder_set_signals(b, use_null ? NULL : sigs, len));
            if (len > SHUTDOWN_MAX_SIGNALS) REQUIRE(st == SHUTDOWN_STATUS_INVALID_ARGUMENT, "%u signals gave %u", len, (unsigned)st);
            break;
        }
        case OP_MANUAL: { int m = rd8(in) & 1; if (CALL(SETTER_MASK, shutdown_config_builder_set_manual_clock(b, m)) == 0 && !c->had_engine) c->manual = m; break; }
        case OP_PROBES: { uint8_t v = rd8(in); CALL(SETTER_MASK, shutdown_config_builder_set_announce_probes(b, v < 250 ? v % 8 : UINT32_MAX - v)); break; }
        case OP_SETTLE: CALL(SETTER_MASK, shutdown_config_builder_set_announce_settle_ms(b, rd_ms(in))); break;
        case OP_VALIDATE: {
            uint8_t fl = rd8(in) % (SHUTDOWN_CONFIG_FIELD_LEN + 1), ml = rd8(in);
            char field[SHUTDOWN_CONFIG_FIELD_LEN + 1], msg[257];
            memset(field, 0x7f, sizeof field);
            memset(msg, 0x7f, sizeof msg);
            shutdown_status_t st = CALL(S(OK) | S(INVALID_CONFIG), shutdown_config_builder_validate(b, (fl & 1) ? field : NULL, fl, msg, ml));
            if (st == SHUTDOWN_STATUS_OK || !(fl & 1)) for (size_t i = 0; i < sizeof field; i++) REQUIRE(field[i] == 0x7f, "field written");
            if (st == SHUTDOWN_STATUS_OK || ml == 0) for (size_t i = 0; i < sizeof msg; i++) REQUIRE(msg[i] == 0x7f, "message written");
            if (st != SHUTDOWN_STATUS_OK && (fl & 1) && fl > 0) REQUIRE(memchr(field, 0, fl) != NULL, "field not NUL-terminated in %u", fl);
            if (st != SHUTDOWN_STATUS_OK && ml > 0) {
                REQUIRE(memchr(msg, 0, ml) != NULL, "message not NUL-terminated in %u", ml);
                for (size_t i = ml; i < sizeof msg; i++) REQUIRE(msg[i] == 0x7f, "message written past its length");
            }
            break;
        }
        case OP_NEW: {
            uint8_t fl = rd8(in);
            if (c->had_engine) break; /* one engine per input */
            shutdown_t *const SENT = (shutdown_t *)(uintptr_t)0x5A5A5A5Au;
            shutdown_t *ne = SENT;
            shutdown_status_t v = CALL(S(OK) | S(INVALID_CONFIG), shutdown_config_builder_validate(b, NULL, 0, NULL, 0));
            shutdown_status_t st = CALL(S(OK) | S(INVALID_CONFIG) | S(NULL_PARAMETER) | S(IO_ERROR),
                                        shutdown_new((fl & 0x80) ? NULL : b, (fl & 0x40) ? NULL : &ne));
            TRACE("shutdown_new = %u (validate %u)", (unsigned)st, (unsigned)v);
            if (fl & 0xc0) { REQUIRE(st == SHUTDOWN_STATUS_NULL_PARAMETER && ne == SENT, "new with NULL"); break; }
            if (st == SHUTDOWN_STATUS_OK) REQUIRE(v == SHUTDOWN_STATUS_OK, "new accepted a configuration validate refused");
            if (st == SHUTDOWN_STATUS_INVALID_CONFIG) REQUIRE(v == SHUTDOWN_STATUS_INVALID_CONFIG, "new refused a valid configuration");
            if (st != SHUTDOWN_STATUS_OK) { REQUIRE(ne == SENT, "out_engine written on error"); break; }
            REQUIRE(ne != NULL && ne != SENT, "new OK without an engine");
            c->engine = ne;
            c->had_engine = 1;
            c->close_timeout_ms = c->builder_close_ms;
            CALL(S(NULL_PARAMETER), shutdown_on_milestone(ne, NULL, NULL));
            CALL(S(NULL_PARAMETER), shutdown_on_cancel(ne, NULL, NULL));
            break;
        }
        case OP_ACQUIRE: { uint8_t how = rd8(in), arg = rd8(in); do_acquire(c, e, how, in, arg); break; }
        case OP_RELEASE: do_release(c, rd8(in)); break;
        case OP_KIND: {
            const char *name = rd_str(in);
            uint32_t id = 0xABCDu;
            shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER) | S(INVALID_NAME) | S(INVALID_UTF8) | S(STRING_TOO_LONG) | S(TOO_MANY_KINDS),
                                        shutdown_kind(e, name, (rd8(in) == 0xff) ? NULL : &id));
            if (st != SHUTDOWN_STATUS_OK) { REQUIRE(id == 0xABCDu, "kind written on error"); break; }
            REQUIRE(name && *name && strlen(name) <= 64, "kind name of %zu bytes accepted", name ? strlen(name) : 0);
            int k;
            for (k = 0; k < c->nkinds; k++)
                if (strcmp(c->kind_names[k], name) == 0) { REQUIRE(c->kind_ids[k] == id, "kind \"%s\" gave %u then %u", name, c->kind_ids[k], id); break; }
            if (k == c->nkinds && k < MAX_KINDS) {
                for (int j = 0; j < c->nkinds; j++) REQUIRE(c->kind_ids[j] != id, "two kinds share id %u", id);
                strcpy(c->kind_names[k], name); c->kind_ids[k] = id; c->nkinds++;
            }
            break;
        }
        case OP_TRIGGER: { uint8_t k = rd8(in); do_trigger(c, e, k < 240 ? k % 3 : (k < 250 ? 3 : UINT32_MAX - k), rd_str(in)); break; }
        case OP_TRIGGER_SIGNAL: { uint8_t s = rd8(in); do_trigger_signal(c, e, s < 250 ? s % 70 : (s & 1 ? INT_MIN : -1)); break; }
        case OP_PROBE: {
            shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_readiness_probed(e));
            if (e) REQUIRE(st == SHUTDOWN_STATUS_OK, "probe");
            break;
        }
        case OP_ADVANCE: {
            uint8_t us = rd8(in);
            uint64_t v = rd_ms(in);
            do_advance(c, e, v, us & 1);
            sys_sleep(c, v);
            break;
        }
        case OP_ON_MILESTONE: {
            uint8_t acts[5], args[5];
            for (int m = 1; m <= 4; m++) { acts[m] = rd8(in); args[m] = rd8(in); }
            if (c->nms >= MAX_MS) break;
            ms_reg_t *r = &c->ms[c->nms];
            memset(r, 0, sizeof *r);
            r->c = c;
            r->idx = c->nms;
            memcpy(r->action, acts, sizeof acts);
            memcpy(r->arg, args, sizeof args);
            int before = phase_now(e);
            shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER), shutdown_on_milestone(e, milestone_cb, r));
            if (!e) { REQUIRE(st == SHUTDOWN_STATUS_NULL_PARAMETER, "on_milestone(NULL)"); break; }
            REQUIRE(st == SHUTDOWN_STATUS_OK, "on_milestone");
            r->at_running = before == SHUTDOWN_PHASE_RUNNING;
            c->nms++;
            break;
        }
        case OP_ON_CANCEL: {
            if (!e) {
                CALL(S(NULL_PARAMETER), shutdown_on_cancel(e, cancel_cb, c));
                CALL(S(NULL_PARAMETER), shutdown_on_event(e, event_cb, c));
                break;
            }
            if (c->cancel_registered) break; /* one registration: it counts calls */
            c->cancel_registered = 1;
            CALL(S(NULL_PARAMETER), shutdown_on_event(e, NULL, c));
            int was = shutdown_is_cancelled(e);
            CALL(S(OK), shutdown_on_cancel(e, cancel_cb, c));
            /* After the cancel callback: its Cancelled event (if still to come) finds it
             * called. */
            CALL(S(OK), shutdown_on_event(e, event_cb, c));
            if (was && !(g_avoid_cancel_race && !c->manual)) /* FUZZ_AVOID_CANCEL_RACE: the finding */
                REQUIRE(atomic_load(&c->cancel_calls) == 1, "on_cancel after the cancel did not call at once");
            break;
        }
        case OP_ON_CLOSE: register_hook(c, e, in, 0); break;
        case OP_ON_CLOSE_DEFERRED: register_hook(c, e, in, 1); break;
        case OP_HOOK_DONE: {
            uint8_t slot = rd8(in), res = rd8(in);
            const char *msg = rd_str(in);
            do_done(c, slot, res < 128 ? 0 : (int)res - 128, msg);
            break;
        }
        case OP_RECORD_ABORTED: {
            uint8_t sel = rd8(in);
            uint64_t count = sel < 250 ? sel % 4 : (sel & 1 ? UINT64_MAX : UINT64_MAX / 2);
            if (g_avoid_overflow && count > 3) count = 3; /* FUZZ_AVOID_ABORTED_OVERFLOW: the finding */
            const char *kind = rd_str(in);
            int before = phase_now(e);
            shutdown_status_t st = CALL(S(OK) | S(NULL_PARAMETER) | S(TOO_LATE) | S(INVALID_NAME) | S(INVALID_UTF8) | S(STRING_TOO_LONG) | S(TOO_MANY_KINDS),
                                        shutdown_record_aborted(e, count, kind));
            TRACE("shutdown_record_aborted(%llu, kind of %zu bytes) = %u", (unsigned long long)count, kind ? strlen(kind) : 0, (unsigned)st);
            if (!e) REQUIRE(st != SHUTDOWN_STATUS_OK, "record_aborted(NULL) accepted");
            if (st == SHUTDOWN_STATUS_OK && count > c->max_recorded) c->max_recorded = count;
            if (st == SHUTDOWN_STATUS_TOO_LATE) REQUIRE(phase_now(e) == SHUTDOWN_PHASE_DONE, "TOO_LATE before Done");
            if (before == SHUTDOWN_PHASE_DONE && e) REQUIRE(st != SHUTDOWN_STATUS_OK, "record_aborted counted after Done");
            break;
        }
        case OP_QUERY: op_query(c, e, rd8(in)); break;
        case OP_REPORT:
            if (e && !c->manual && shutdown_wait_timeout(e, 0) == SHUTDOWN_STATUS_OK) c->done_waited = 1;
            check_report(c, e, 1);
            break;
        case OP_FREE:
            if (!e) { shutdown_free(NULL); break; }
            shutdown_free(e);
            c->engine = NULL;
            atomic_store(&c->freed, 1);
            break;
        }
        if (c->engine && c->manual && phase_now(c->engine) == SHUTDOWN_PHASE_DONE) {
            /* Everything a manual engine's calls caused has run when they return. */
            for (int i = 0; i < c->nms; i++)
                if (c->ms[i].at_running)
                    REQUIRE(atomic_load(&c->ms[i].seen) == 0x1e, "Done, but milestone callback %d saw 0x%x of 0x1e",
                            i, atomic_load(&c->ms[i].seen));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_strings();
    if (g_trace < 0) {
        g_trace = getenv("FUZZ_TRACE") != NULL;
        g_avoid_overflow = getenv("FUZZ_AVOID_ABORTED_OVERFLOW") != NULL;
        g_avoid_cancel_race = getenv("FUZZ_AVOID_CANCEL_RACE") != NULL;
    }
    ctx_t *c = &g_ring[g_gen++ % RING];
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->first_kind = -1;
    c->forced_exit_code = 1;
    c->sleep_budget_us = 20000;
    c->builder_close_ms = 5000; /* the default */
    input_t in = {data, size, 0};

    shutdown_config_builder_t *b = NULL;
    if (shutdown_config_builder_new(&b) != SHUTDOWN_STATUS_OK || !b) BROKEN("builder_new");
    uint8_t clk = rd8(&in);
    if ((clk & 0x0f) == 0x0f) {
        c->manual = 0;
        CALL(S(OK), shutdown_config_builder_set_drain_timeout_ms(b, 1 + ((clk >> 4) & 7)));
        CALL(S(OK), shutdown_config_builder_set_close_timeout_ms(b, 1 + ((clk >> 4) & 7)));
        c->builder_close_ms = 1 + ((clk >> 4) & 7);
    } else {
        c->manual = 1;
        CALL(S(OK), shutdown_config_builder_set_manual_clock(b, true));
    }
    /* Hostile builder calls that never depend on the input. */
    CALL(S(NULL_PARAMETER), shutdown_config_builder_set_drain_delay_ms(NULL, 1));
    CALL(S(NULL_PARAMETER), shutdown_config_builder_new(NULL));
    shutdown_config_builder_free(NULL);

    run(c, &in, b);

    if (c->engine) {
        if (!c->manual && shutdown_wait_timeout(c->engine, 0) == SHUTDOWN_STATUS_OK) c->done_waited = 1;
        if (phase_now(c->engine) == SHUTDOWN_PHASE_DONE) check_report(c, c->engine, 1);
        shutdown_free(c->engine);
        c->engine = NULL;
        atomic_store(&c->freed, 1);
    }
    /* What outlives the engine must still be released. */
    for (int i = 0; i < MAX_GUARDS; i++) shutdown_guard_release(take_guard(c, (uint8_t)i));
    for (int i = 0; i < MAX_DONES; i++) {
        shutdown_hook_done_t *d = c->dones[i];
        c->dones[i] = NULL;
        if (d) CALL(S(OK), shutdown_hook_done(d, 0, NULL));
    }
    /* A hook reported SKIPPED was never called, not even later. */
    if (c->have_outcomes) {
        for (int i = 0; i < c->nhooks; i++) {
            int calls = atomic_load(&c->hooks[i].calls);
            if (c->report_outcome[i] == SHUTDOWN_HOOK_OUTCOME_SKIPPED)
                REQUIRE(calls == 0, "hook %d reported SKIPPED was called after the report", i);
            else if (c->manual)
                REQUIRE(calls > 0, "hook %d never called, reported %u", i, c->report_outcome[i]);
            /* (On the system clock a hook whose thread had not called it yet when a
             * repeated trigger ended Closing is reported CANCELLED: abandoned while
             * starting. Not a promise of the header, so not checked.) */
        }
    }
    /* A hook thread of the system clock abandoned after its 1-8 ms timeout may still be
     * exiting (it holds the engine's state until it does): give it a moment, so that
     * libFuzzer's leak check after this input does not count what it still holds. */
    if (!c->manual && c->nhooks > 0) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(c->json);
    c->json = NULL;
    shutdown_config_builder_free(b);
    return 0;
}
