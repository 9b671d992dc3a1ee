/* systemd's Type=notify protocol through the C ABI, against a real NOTIFY_SOCKET: a
 * Unix datagram socket bound in a temporary directory, read after a drain with a guard
 * in flight. The engine has a manual clock, so every milestone (and its datagram)
 * happens on this thread, before the call that caused it returns. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char dir[64];
static char path[128];

/* Binds a datagram socket at a fresh path and points NOTIFY_SOCKET at it. */
static int bind_notify_socket(void) {
    strcpy(dir, "/tmp/libshutdown-sd-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/notify.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(setenv("NOTIFY_SOCKET", path, 1) == 0);
    return fd;
}

static void unbind_notify_socket(int fd) {
    close(fd);
    unlink(path);
    rmdir(dir);
    unsetenv("NOTIFY_SOCKET");
}

/* Every line of every datagram queued on fd, joined with '|'. */
static void drain_lines(int fd, char *out, size_t len) {
    out[0] = 0;
    char buf[1024];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        buf[n] = 0;
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
            strncat(out, line, len - strlen(out) - 1);
            strncat(out, "|", len - strlen(out) - 1);
        }
    }
}

/* The offset of `needle` in `hay`, or -1. */
static long at(const char *hay, const char *needle) {
    const char *p = strstr(hay, needle);
    return p ? (long)(p - hay) : -1;
}

static void test_a_drain_speaks_the_protocol_in_order(void) {
    int fd = bind_notify_socket();
    shutdown_config_builder_t *cfg = manual_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(cfg, 5000));
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(cfg, 1000));
    shutdown_t *sd = new_engine(cfg);
    bool enabled = false, sent = false;
    CHECK_OK(shutdown_notify_systemd(sd, &enabled));
    CHECK(enabled);
    CHECK_OK(shutdown_notify_ready(sd, &sent));
    CHECK(sent);
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy"));
    CHECK_OK(shutdown_notify_ready(sd, &sent));
    CHECK(!sent); /* a stopping service is not ready */
    shutdown_guard_release(g);
    int code = -1;
    CHECK_OK(shutdown_exit_code(sd, &code));
    CHECK(code == 0);

    char lines[4096];
    drain_lines(fd, lines, sizeof lines);
    long ready = at(lines, "READY=1|STATUS=serving, 0 in flight|");
    long stopping = at(lines, "STOPPING=1|STATUS=draining, 1 in flight|");
    /* drain_timeout (5 s) + the 5 s margin, in microseconds */
    long extend = at(lines, "EXTEND_TIMEOUT_USEC=10000000|");
    long quiescing = at(lines, "STATUS=quiescing, 1 in flight|");
    long closing = at(lines, "STATUS=closing, 0 in flight|EXTEND_TIMEOUT_USEC=6000000|");
    long done = at(lines, "STATUS=done, 0 in flight|EXTEND_TIMEOUT_USEC=5000000|");
    CHECK(ready == 0);
    CHECK(stopping > ready);
    CHECK(extend > stopping);
    CHECK(quiescing > extend);
    CHECK(closing > quiescing);
    CHECK(done > closing);
    if (!(ready == 0 && stopping > ready && extend > stopping && quiescing > extend &&
          closing > quiescing && done > closing)) {
        fprintf(stderr, "  received: %s\n", lines);
    }
    shutdown_free(sd);
    unbind_notify_socket(fd);
}

static void test_without_notify_socket_nothing_is_sent(void) {
    unsetenv("NOTIFY_SOCKET");
    shutdown_t *sd = new_engine(manual_config());
    bool enabled = true, sent = true;
    CHECK_OK(shutdown_notify_systemd(sd, &enabled));
    CHECK(!enabled);
    CHECK_OK(shutdown_notify_ready(sd, &sent));
    CHECK(!sent);
    CHECK_STATUS(shutdown_notify_systemd(NULL, &enabled), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_notify_systemd(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_notify_ready(NULL, &sent), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_notify_ready(sd, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    shutdown_free(sd);
}

static void test_an_unreachable_socket_is_an_io_error(void) {
    CHECK(setenv("NOTIFY_SOCKET", "/nonexistent/libshutdown/notify.sock", 1) == 0);
    shutdown_t *sd = new_engine(manual_config());
    bool sent = true;
    CHECK_STATUS(shutdown_notify_ready(sd, &sent), SHUTDOWN_STATUS_IO_ERROR);
    CHECK(sent); /* untouched on failure */
    shutdown_free(sd);
    unsetenv("NOTIFY_SOCKET");
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_a_drain_speaks_the_protocol_in_order),
        TEST(test_without_notify_socket_nothing_is_sent),
        TEST(test_an_unreachable_socket_is_an_io_error),
    };
    return RUN_TESTS("test_systemd", tests);
}
