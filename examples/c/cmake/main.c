/* The smallest real use of an installed libshutdown: build an engine from a
 * configuration builder, hold a request's guard, trigger the shutdown, let the drain
 * deadline cut the request, and check the report's exit code. It runs on the manual
 * clock, so it takes no time; the same calls drive a real server (examples/c/server.c).
 * Exits 0 when everything matched; prints what did not.
 *
 * Built by CMake (CMakeLists.txt here) or by hand:
 *   cc -std=c11 main.c -o consumer $(pkg-config --cflags --libs shutdown) */
#include <stdio.h>
#include <string.h>

#include <shutdown.h>

static int failures;

static void expect(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "consumer: %s\n", what);
        failures++;
    }
}

static int hook(void *user_data, char *message, size_t len) {
    (void)message;
    (void)len;
    ++*(int *)user_data;
    return 0;
}

int main(void) {
    shutdown_config_builder_t *cfg = NULL;
    if (shutdown_config_builder_new(&cfg) != SHUTDOWN_STATUS_OK)
        return 2;
    expect(shutdown_config_builder_set_manual_clock(cfg, true) == SHUTDOWN_STATUS_OK, "set_manual_clock");
    expect(shutdown_config_builder_set_drain_timeout_ms(cfg, 1000) == SHUTDOWN_STATUS_OK, "set_drain_timeout_ms");
    expect(shutdown_config_builder_set_forced_exit_code(cfg, 3) == SHUTDOWN_STATUS_OK, "set_forced_exit_code");

    /* The core names what it refuses. */
    char field[SHUTDOWN_CONFIG_FIELD_LEN] = "";
    expect(shutdown_config_builder_set_close_timeout_ms(cfg, 0) == SHUTDOWN_STATUS_OK, "set_close_timeout_ms");
    expect(shutdown_config_builder_validate(cfg, field, sizeof field, NULL, 0) == SHUTDOWN_STATUS_INVALID_CONFIG &&
               strcmp(field, "close_timeout") == 0,
           "a zero close timeout is refused, naming close_timeout");
    expect(shutdown_config_builder_set_close_timeout_ms(cfg, 500) == SHUTDOWN_STATUS_OK, "set_close_timeout_ms");

    shutdown_t *sd = NULL;
    shutdown_status_t st = shutdown_new(cfg, &sd);
    shutdown_config_builder_free(cfg);
    if (st != SHUTDOWN_STATUS_OK) {
        fprintf(stderr, "consumer: shutdown_new: %s\n", shutdown_status_str(st));
        return 2;
    }
    int hooks_run = 0;
    expect(shutdown_on_close(sd, "flush", 0, 0, hook, &hooks_run) == SHUTDOWN_STATUS_OK, "on_close");

    shutdown_guard_t *request = NULL;
    expect(shutdown_guard_acquire(sd, &request) == SHUTDOWN_STATUS_OK, "guard_acquire");
    expect(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "deploy") == SHUTDOWN_STATUS_OK, "trigger");
    expect(!shutdown_is_accepting(sd), "admission closed (no drain delay)");
    expect(shutdown_advance(sd, 1000) == SHUTDOWN_STATUS_OK, "advance to the drain deadline");

    shutdown_report_t *report = NULL;
    expect(shutdown_report(sd, &report) == SHUTDOWN_STATUS_OK, "the shutdown is done");
    int code = -1;
    uint64_t aborted = 0;
    if (report) {
        shutdown_report_exit_code(report, &code);
        shutdown_report_aborted(report, &aborted);
    }
    expect(code == 3, "the report's exit code is the forced one (3)");
    expect(aborted == 1, "the report counts the request cut by the deadline");
    expect(hooks_run == 1, "the cleanup hook ran once");
    shutdown_report_free(report);
    shutdown_guard_release(request);
    shutdown_free(sd);

    printf("consumer: libshutdown %s: %s\n", shutdown_version(), failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
