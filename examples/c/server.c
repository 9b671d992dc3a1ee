/*
 * A small HTTP/1.1 server in C on a poll() loop, drained by libshutdown.
 *
 *   GET /            200 "hello"
 *   GET /slow?ms=N   200 after N ms (a timer in the event loop, not a sleep)
 *   POST /work?ms=N  200 after N ms (default 0), once its Content-Length body is read
 *   GET /readyz      200 while ready; 503 while draining (and reports the probe)
 *   GET /healthz     200 (liveness)
 *
 * Keep-alive connections, each registered with the engine (shutdown_connection_new()):
 * the connection is marked reading when the first bytes of a request arrive, each
 * complete request head takes a request (shutdown_connection_request(); refused ones
 * get 503 with Connection: close), the response head says what
 * shutdown_request_keep_alive() says, and shutdown_request_finish() ends it. The core
 * decides which idle keep-alive connections to close once admission closes: its
 * dismissal callback (shutdown_on_dismissed(), possibly on the library's driver
 * thread) queues their ids for the loop under a mutex and wakes it through an eventfd;
 * the loop closes a dismissed connection that is idle, and serves the request of one
 * on which a request is arriving. The listener closes when the engine says to stop
 * listening (shutdown_should_listen(): when admission closes, unless a listener hold
 * delays it; shutdown_fd() is in the poll set and wakes the loop then), after
 * accepting what its backlog still holds;
 * the loop ends when the shutdown is Done; a cleanup hook flushes the request log; the
 * exit code is the report's.
 *
 * Usage: server [--port N] [--preset NAME] [--drain-delay-ms N] [--announce-probes N]
 *               [--drain-timeout-ms N] [--close-timeout-ms N] [--log-requests FILE]
 * The engine reads the SHUTDOWN_* environment variables first (SHUTDOWN_PRESET,
 * SHUTDOWN_DRAIN_TIMEOUT_MS, ...: every option of the core's schema; an invalid one
 * stops the server naming the variable); the flags then change what they name.
 * Binds 127.0.0.1 only; --port 0 (the default) picks a free port. Prints
 * "listening 127.0.0.1:PORT" on stdout once ready.
 *
 * Build: cc -std=c11 -O2 server.c -o server $(pkg-config --cflags --libs shutdown)
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <shutdown.h>

#define MAX_CONNS 512
#define IN_SIZE 8192

enum conn_state { READING, WAITING, WRITING };

typedef struct {
    int fd;
    enum conn_state state;
    char in[IN_SIZE];
    size_t in_len;
    char out[1024];
    size_t out_len, out_off;
    int64_t due_ms;               /* WAITING: when the slow response is due */
    shutdown_connection_t *sc;    /* the connection, as the engine knows it */
    uint64_t sid;                 /* its id (shutdown_connection_id()) */
    shutdown_request_t *req;      /* the request in flight, if any */
    int dismissed;                /* the engine asked to close it */
    char id[64];             /* X-Request-Id */
    int status;
    int close_after;
    int client_close;
} conn_t;

static conn_t conns[MAX_CONNS];
static int nconns;
static int accepted_dismissed; /* a connection came back dismissed at accept */

/* Ids of dismissed connections, from the dismissal callback (any thread) to the loop. */
static struct {
    pthread_mutex_t lock;
    uint64_t ids[MAX_CONNS];
    size_t len;
    int overflow; /* ids were lost: ask every connection */
    int efd;      /* eventfd in the poll set: readable when ids are queued */
} dismissals = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0, -1};

/* The dismissal callback: it may run on the library's driver thread, or on the loop's
 * own thread inside a library call; it only queues and wakes the loop. */
static void on_dismissed(void *user_data, const uint64_t *ids, size_t len) {
    (void)user_data;
    pthread_mutex_lock(&dismissals.lock);
    for (size_t i = 0; i < len; i++) {
        if (dismissals.len < MAX_CONNS)
            dismissals.ids[dismissals.len++] = ids[i];
        else
            dismissals.overflow = 1;
    }
    pthread_mutex_unlock(&dismissals.lock);
    uint64_t one = 1;
    ssize_t w = write(dismissals.efd, &one, sizeof one);
    (void)w; /* a full counter is readable already */
}

static FILE *request_log;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_line(const char *what, const char *id, int status) {
    if (!request_log || id[0] == '\0')
        return;
    pthread_mutex_lock(&log_lock);
    if (status)
        fprintf(request_log, "%s %s %d\n", what, id, status);
    else
        fprintf(request_log, "%s %s\n", what, id);
    fflush(request_log);
    pthread_mutex_unlock(&log_lock);
}

/* The cleanup hook: runs in Closing, on a thread of the library's. */
static int flush_log(void *user_data, char *message, size_t message_len) {
    (void)user_data;
    if (!request_log)
        return 0;
    pthread_mutex_lock(&log_lock);
    int rc = fflush(request_log) == 0 && fsync(fileno(request_log)) == 0 ? 0 : 1;
    pthread_mutex_unlock(&log_lock);
    if (rc)
        snprintf(message, message_len, "flush failed: %s", strerror(errno));
    return rc;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what, shutdown_status_t st) {
    fprintf(stderr, "server: %s: %s\n", what, shutdown_status_str(st));
    exit(2);
}

static void set_nonblocking(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void close_conn(int i) {
    conn_t *c = &conns[i];
    if (c->req) { /* aborted mid-request (Done came first) */
        log_line("aborted", c->id, 0);
        shutdown_request_finish(c->req, NULL);
    }
    close(c->fd);
    shutdown_connection_free(c->sc); /* the engine learns it is closed */
    conns[i] = conns[--nconns];
}

static void respond(conn_t *c, int status, const char *body) {
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                                         : "Service Unavailable";
    /* Without a request (refused, malformed) the connection closes after this. */
    bool keep = false;
    if (c->req && shutdown_request_keep_alive(c->req, &keep) != SHUTDOWN_STATUS_OK)
        keep = false;
    c->close_after = c->client_close || !keep || status == 503;
    c->status = status;
    c->out_len = (size_t)snprintf(c->out, sizeof c->out,
                                  "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
                                  status, reason, strlen(body),
                                  c->close_after ? "close" : "keep-alive", body);
    c->out_off = 0;
    c->state = WRITING;
}

static void header_value(const char *headers, const char *name, char *out, size_t out_len) {
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = headers; p && *p; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL) {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            if (len >= out_len)
                len = out_len - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return;
        }
    }
}

/* Handles one complete request in c->in (headers end at `end`, then `body` bytes). */
static void handle_request(const shutdown_t *sd, conn_t *c, char *end, size_t body) {
    *end = '\0';
    char method[8] = "", target[256] = "", conn_hdr[32];
    sscanf(c->in, "%7s %255s", method, target);
    header_value(c->in, "X-Request-Id", c->id, sizeof c->id);
    header_value(c->in, "Connection", conn_hdr, sizeof conn_hdr);
    c->client_close = strcasecmp(conn_hdr, "close") == 0;
    size_t used = (size_t)(end + 4 - c->in) + body;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;

    /* Every request on the connection, probes included, is one the engine knows of
     * (it clears the connection's "reading"); a probe is answered even when refused. */
    shutdown_status_t st = shutdown_connection_request(c->sc, &c->req);
    if (st != SHUTDOWN_STATUS_OK)
        c->req = NULL;
    int probe = strcmp(target, "/healthz") == 0 || strcmp(target, "/readyz") == 0;
    if (probe)
        c->id[0] = '\0'; /* probes are not in the request log */
    if (strcmp(target, "/healthz") == 0) {
        respond(c, 200, "ok\n");
        return;
    }
    if (strcmp(target, "/readyz") == 0) {
        if (shutdown_is_ready(sd)) {
            respond(c, 200, "ready\n");
        } else {
            shutdown_readiness_probed(sd); /* the balancer saw "not ready" */
            respond(c, 503, "draining\n");
        }
        return;
    }
    if (!c->req) {
        log_line("refused", c->id, 503);
        respond(c, 503, "shutting down\n");
        return;
    }
    log_line("accepted", c->id, 0);
    int is_slow = strncmp(target, "/slow", 5) == 0;
    int is_work = strcmp(method, "POST") == 0 && strncmp(target, "/work", 5) == 0 &&
                  (target[5] == '\0' || target[5] == '?');
    if (is_slow || is_work) {
        const char *ms = strstr(target, "ms=");
        long wait = ms ? strtol(ms + 3, NULL, 10) : is_slow ? 1000 : 0;
        if (wait < 0 || wait > 600000)
            wait = 1000;
        c->due_ms = now_ms() + wait;
        c->state = WAITING;
        return;
    }
    if (strcmp(target, "/") == 0)
        respond(c, 200, "hello\n");
    else
        respond(c, 404, "not found\n");
}

static void try_parse(const shutdown_t *sd, conn_t *c) {
    if (c->state != READING)
        return;
    char *end = NULL;
    if (c->in_len > 0) {
        c->in[c->in_len < IN_SIZE ? c->in_len : IN_SIZE - 1] = '\0';
        end = strstr(c->in, "\r\n\r\n");
    }
    if (!end)
        return;
    char length[24];
    *end = '\0'; /* header_value reads the header block only */
    header_value(c->in, "Content-Length", length, sizeof length);
    *end = '\r';
    char *rest = NULL;
    long body = length[0] ? strtol(length, &rest, 10) : 0;
    size_t head = (size_t)(end + 4 - c->in);
    if (body < 0 || (rest && *rest != '\0') || head + (size_t)body >= IN_SIZE) {
        c->client_close = 1; /* malformed or too large: answer and hang up */
        c->in_len = 0;
        respond(c, 400, "bad request\n");
        return;
    }
    if (c->in_len < head + (size_t)body)
        return; /* the body is still arriving */
    handle_request(sd, c, end, (size_t)body);
}

/* Returns 0 when the connection is to be closed. */
static int on_readable(const shutdown_t *sd, conn_t *c) {
    if (c->in_len >= IN_SIZE - 1)
        return 0; /* request too large */
    ssize_t n = recv(c->fd, c->in + c->in_len, IN_SIZE - 1 - c->in_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return 0;
    if (n > 0) {
        if (c->in_len == 0 && !c->req)
            shutdown_connection_reading(c->sc); /* the first bytes of a request */
        c->in_len += (size_t)n;
    }
    try_parse(sd, c);
    return 1;
}

static int on_writable(const shutdown_t *sd, conn_t *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        c->out_off += (size_t)n;
    }
    if (c->req) {
        log_line("completed", c->id, c->status);
        bool open = false;
        shutdown_request_finish(c->req, &open); /* the request is over */
        c->req = NULL;
        if (!open)
            c->close_after = 1;
    }
    if (c->close_after)
        return 0;
    c->state = READING;
    c->id[0] = '\0';
    if (c->in_len > 0)
        shutdown_connection_reading(c->sc); /* a pipelined request is arriving */
    try_parse(sd, c); /* ... and may be complete */
    return 1;
}

/* Accepts every pending connection and registers it with the engine. */
static void accept_all(const shutdown_t *sd, int lfd) {
    for (;;) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0)
            break;
        if (nconns == MAX_CONNS) {
            close(cfd);
            break;
        }
        set_nonblocking(cfd);
        conn_t *c = &conns[nconns];
        memset(c, 0, sizeof *c);
        shutdown_status_t st = shutdown_connection_new(sd, &c->sc);
        if (st != SHUTDOWN_STATUS_OK) {
            fprintf(stderr, "server: shutdown_connection_new: %s\n", shutdown_status_str(st));
            close(cfd);
            continue;
        }
        shutdown_connection_id(c->sc, &c->sid);
        c->fd = cfd;
        c->state = READING;
        /* Accepted once the drain is over: dismissed already, with no callback. */
        bool d = false;
        if (shutdown_connection_is_dismissed(c->sc, &d) == SHUTDOWN_STATUS_OK && d)
            c->dismissed = accepted_dismissed = 1;
        nconns++;
    }
}

static int readable_now(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Takes the queued dismissals and closes each dismissed connection that is idle (no
 * byte of a new request read, none waiting in the socket); one on which a request is
 * arriving is marked reading and served (its response says Connection: close). */
static void close_dismissed(const shutdown_t *sd) {
    uint64_t count;
    ssize_t r = read(dismissals.efd, &count, sizeof count); /* clears it */
    (void)r;
    uint64_t ids[MAX_CONNS];
    pthread_mutex_lock(&dismissals.lock);
    size_t len = dismissals.len;
    int all = dismissals.overflow;
    memcpy(ids, dismissals.ids, len * sizeof ids[0]);
    dismissals.len = 0;
    dismissals.overflow = 0;
    pthread_mutex_unlock(&dismissals.lock);
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        for (size_t k = 0; k < len && !c->dismissed; k++)
            c->dismissed = ids[k] == c->sid;
        if (all && !c->dismissed) {
            bool d = false;
            c->dismissed = shutdown_connection_is_dismissed(c->sc, &d) == SHUTDOWN_STATUS_OK && d;
        }
    }
    for (int i = nconns - 1; i >= 0; i--) {
        conn_t *c = &conns[i];
        if (!c->dismissed || c->state != READING || c->in_len > 0 || c->req)
            continue; /* busy: its response closes it */
        /* A request already on the wire is served, never reset. on_readable() marks
         * the connection reading when bytes arrive; EOF or an error closes it. */
        if (!on_readable(sd, c) || c->in_len == 0)
            close_conn(i);
        else if (c->state == WRITING && !on_writable(sd, c))
            close_conn(i);
    }
}

static long arg_num(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "server: %s needs a value\n", argv[*i]);
        exit(2);
    }
    return strtol(argv[++*i], NULL, 10);
}

/* Applies one setter; a refused value is a usage error. */
static void set(const char *flag, shutdown_status_t st) {
    if (st != SHUTDOWN_STATUS_OK) {
        fprintf(stderr, "server: %s: %s\n", flag, shutdown_status_str(st));
        exit(2);
    }
}

int main(int argc, char **argv) {
    shutdown_config_builder_t *cfg = NULL;
    shutdown_status_t st = shutdown_config_builder_new(&cfg);
    if (st != SHUTDOWN_STATUS_OK)
        die("shutdown_config_builder_new", st);
    /* The deployment's variables first: a unit file or manifest sets the budgets where
     * the platform's numbers live. Refused here, the variable is named below. */
    (void)shutdown_config_builder_from_env(cfg);
    long port = 0;
    const char *log_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--port") == 0)
            port = arg_num(argc, argv, &i);
        else if (strcmp(flag, "--preset") == 0 && i + 1 < argc)
            set(flag, shutdown_config_builder_set_preset(cfg, argv[++i]));
        else if (strcmp(flag, "--drain-delay-ms") == 0)
            set(flag, shutdown_config_builder_set_drain_delay_ms(cfg, (uint64_t)arg_num(argc, argv, &i)));
        else if (strcmp(flag, "--announce-probes") == 0)
            set(flag, shutdown_config_builder_set_announce_probes(cfg, (uint32_t)arg_num(argc, argv, &i)));
        else if (strcmp(flag, "--drain-timeout-ms") == 0)
            set(flag, shutdown_config_builder_set_drain_timeout_ms(cfg, (uint64_t)arg_num(argc, argv, &i)));
        else if (strcmp(flag, "--close-timeout-ms") == 0)
            set(flag, shutdown_config_builder_set_close_timeout_ms(cfg, (uint64_t)arg_num(argc, argv, &i)));
        else if (strcmp(flag, "--log-requests") == 0 && i + 1 < argc)
            log_path = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--port N] [--preset NAME] [--drain-delay-ms N] [--announce-probes N] "
                            "[--drain-timeout-ms N] [--close-timeout-ms N] [--log-requests FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (log_path && !(request_log = fopen(log_path, "a"))) {
        perror(log_path);
        return 2;
    }

    /* The core judges the whole configuration and names the field it refuses. */
    char field[SHUTDOWN_CONFIG_FIELD_LEN], why[256];
    if (shutdown_config_builder_validate(cfg, field, sizeof field, why, sizeof why) != SHUTDOWN_STATUS_OK) {
        fprintf(stderr, "server: %s (field %s)\n", why, field);
        return 2;
    }
    shutdown_t *sd = NULL;
    st = shutdown_new(cfg, &sd);
    shutdown_config_builder_free(cfg); /* the engine keeps its own copy */
    if (st != SHUTDOWN_STATUS_OK)
        die("shutdown_new", st);
    /* Early, before any other thread: SIGTERM/SIGINT become triggers. */
    if ((st = shutdown_listen_signals(sd)) != SHUTDOWN_STATUS_OK)
        die("shutdown_listen_signals", st);
    if ((st = shutdown_on_close(sd, "flush request log", 0, 0, flush_log, NULL)) != SHUTDOWN_STATUS_OK)
        die("shutdown_on_close", st);
    int sdfd = -1;
    if ((st = shutdown_fd(sd, &sdfd)) != SHUTDOWN_STATUS_OK)
        die("shutdown_fd", st);
    if ((dismissals.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        perror("eventfd");
        return 2;
    }
    if ((st = shutdown_on_dismissed(sd, on_dismissed, NULL)) != SHUTDOWN_STATUS_OK)
        die("shutdown_on_dismissed", st);

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only */
    addr.sin_port = htons((uint16_t)port);
    socklen_t alen = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 128) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("listen");
        return 2;
    }
    set_nonblocking(lfd);
    printf("listening 127.0.0.1:%u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);

    int done = 0;
    struct pollfd pfds[MAX_CONNS + 2];
    while (!done) {
        int n = 0, timeout = -1;
        int64_t now = now_ms();
        pfds[n++] = (struct pollfd){sdfd, POLLIN, 0};
        pfds[n++] = (struct pollfd){dismissals.efd, POLLIN, 0};
        int lidx = -1;
        if (lfd >= 0 && nconns < MAX_CONNS) {
            lidx = n;
            pfds[n++] = (struct pollfd){lfd, POLLIN, 0};
        }
        int first = n;
        for (int i = 0; i < nconns; i++) {
            conn_t *c = &conns[i];
            short ev = c->state == READING ? POLLIN : c->state == WRITING ? POLLOUT : 0;
            pfds[n++] = (struct pollfd){c->fd, ev, 0};
            if (c->state == WAITING) {
                int64_t left = c->due_ms > now ? c->due_ms - now : 0;
                if (timeout < 0 || left < timeout)
                    timeout = (int)left;
            }
        }
        if (poll(pfds, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            perror("poll");
            break;
        }

        /* Connections first (indexes match conns[] before any is closed). */
        now = now_ms();
        for (int i = nconns - 1; i >= 0; i--) {
            conn_t *c = &conns[i];
            short re = pfds[first + i].revents;
            int keep = 1;
            if (c->state == WAITING && c->due_ms <= now)
                respond(c, 200, "done\n");
            if (c->state == READING && (re & (POLLIN | POLLHUP | POLLERR)))
                keep = on_readable(sd, c);
            if (keep && c->state == WRITING)
                keep = on_writable(sd, c);
            if (!keep)
                close_conn(i);
        }

        if (lidx >= 0 && (pfds[lidx].revents & POLLIN))
            accept_all(sd, lfd);

        if (pfds[0].revents & POLLIN) {
            shutdown_milestone_t m = SHUTDOWN_MILESTONE_NONE;
            shutdown_fd_clear(sd, &m);
            if (lfd >= 0 && !shutdown_should_listen(sd)) {
                /* Unlisten: stop accepting, new connections are refused. The
                 * clients in the backlog connected before: accept them first (the
                 * engine serves a request of theirs that arrives within the grace,
                 * and dismisses the connection otherwise) rather than reset them. */
                accept_all(sd, lfd);
                close(lfd);
                lfd = -1;
                fprintf(stderr, "server: admission closed, listener closed (unlisten)\n");
            }
            if (m == SHUTDOWN_MILESTONE_DONE)
                done = 1;
        }

        /* Last: the dismissal callbacks of this iteration's library calls are queued. */
        if (readable_now(dismissals.efd) || accepted_dismissed) {
            accepted_dismissed = 0;
            close_dismissed(sd);
        }
    }

    while (nconns > 0)
        close_conn(nconns - 1);
    if (lfd >= 0)
        close(lfd);
    int code = 1;
    shutdown_exit_code(sd, &code);
    shutdown_report_t *report = NULL;
    const char *json = NULL;
    if (shutdown_report(sd, &report) == SHUTDOWN_STATUS_OK &&
        shutdown_report_json(report, &json) == SHUTDOWN_STATUS_OK)
        fprintf(stderr, "server: report %s\n", json);
    shutdown_report_free(report);
    shutdown_free(sd); /* no dismissal callback runs after this */
    close(dismissals.efd);
    if (request_log)
        fclose(request_log);
    return code;
}
