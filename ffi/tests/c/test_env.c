/* shutdown_config_builder_from_env(): the SHUTDOWN_* environment variables, applied by
 * the core (Builder::env) over the builder; an invalid one is refused naming the
 * variable through shutdown_config_builder_validate(). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "harness.h"

static const char *const VARS[] = {
    "SHUTDOWN_DRAIN_TIMEOUT_MS", "SHUTDOWN_CLOSE_TIMEOUT_MS", "SHUTDOWN_GRACE_PERIOD_MS",
    "SHUTDOWN_FORCED_EXIT_CODE", "SHUTDOWN_CLOSE_STRATEGY",   "SHUTDOWN_FORCE_AT",
    "SHUTDOWN_PRESET",           "SHUTDOWN_SYSTEMD_NOTIFY",
};

static void clear_env(void) {
    for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++) unsetenv(VARS[i]);
}

/* The drain deadline of `b`'s configuration, on a virtual clock: a guard held past it. */
static uint64_t drain_deadline_ms(shutdown_config_builder_t *b) {
    CHECK_OK(shutdown_config_builder_set_manual_clock(b, true));
    shutdown_t *sd = NULL;
    CHECK_OK(shutdown_new(b, &sd));
    if (sd == NULL) return 0;
    shutdown_guard_t *g = NULL;
    CHECK_OK(shutdown_guard_acquire(sd, &g));
    CHECK_OK(shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "env"));
    uint64_t ms = 0;
    for (; ms < 60000; ms += 500) {
        shutdown_phase_t phase;
        CHECK_OK(shutdown_phase(sd, &phase));
        if (phase != SHUTDOWN_PHASE_DRAINING) break;
        CHECK_OK(shutdown_advance(sd, 500));
    }
    shutdown_guard_release(g);
    shutdown_free(sd);
    return ms;
}

static void test_variables_apply_over_the_setters(void) {
    clear_env();
    setenv("SHUTDOWN_DRAIN_TIMEOUT_MS", "12000", 1);
    setenv("SHUTDOWN_CLOSE_STRATEGY", "gradual", 1);
    shutdown_config_builder_t *b = default_config();
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(b, 3000));
    CHECK(drain_deadline_ms(b) == 3000); /* not read until asked */
    CHECK_OK(shutdown_config_builder_from_env(b));
    CHECK_OK(shutdown_config_builder_validate(b, NULL, 0, NULL, 0));
    CHECK(drain_deadline_ms(b) == 12000);
    /* A setter after it wins again; an empty variable is unset. */
    setenv("SHUTDOWN_DRAIN_TIMEOUT_MS", "", 1);
    CHECK_OK(shutdown_config_builder_from_env(b));
    CHECK(drain_deadline_ms(b) == 12000);
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(b, 2000));
    CHECK(drain_deadline_ms(b) == 2000);
    shutdown_config_builder_free(b);
    clear_env();
}

static void check_refused(shutdown_config_builder_t *b, const char *field) {
    char name[SHUTDOWN_CONFIG_FIELD_LEN] = "";
    char msg[256] = "";
    CHECK_STATUS(shutdown_config_builder_validate(b, name, sizeof name, msg, sizeof msg),
                 SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK_STR(name, field);
    CHECK(strstr(msg, field) != NULL);
    shutdown_t *sd = NULL;
    CHECK_STATUS(shutdown_new(b, &sd), SHUTDOWN_STATUS_INVALID_CONFIG);
    CHECK(sd == NULL);
}

static void test_an_invalid_variable_is_refused_naming_it(void) {
    clear_env();
    setenv("SHUTDOWN_CLOSE_TIMEOUT_MS", "5s", 1);
    shutdown_config_builder_t *b = default_config();
    CHECK_STATUS(shutdown_config_builder_from_env(b), SHUTDOWN_STATUS_INVALID_CONFIG);
    check_refused(b, "SHUTDOWN_CLOSE_TIMEOUT_MS");
    /* Still refused after a setter: the environment is what is wrong. */
    CHECK_OK(shutdown_config_builder_set_close_timeout_ms(b, 1000));
    check_refused(b, "SHUTDOWN_CLOSE_TIMEOUT_MS");
    /* Read again, valid: accepted. */
    unsetenv("SHUTDOWN_CLOSE_TIMEOUT_MS");
    CHECK_OK(shutdown_config_builder_from_env(b));
    CHECK_OK(shutdown_config_builder_validate(b, NULL, 0, NULL, 0));

    setenv("SHUTDOWN_CLOSE_STRATEGY", "slow", 1);
    CHECK_STATUS(shutdown_config_builder_from_env(b), SHUTDOWN_STATUS_INVALID_CONFIG);
    check_refused(b, "SHUTDOWN_CLOSE_STRATEGY");
    unsetenv("SHUTDOWN_CLOSE_STRATEGY");

    /* Valid alone, refused with the whole configuration: the core's field. */
    setenv("SHUTDOWN_DRAIN_TIMEOUT_MS", "29500", 1); /* + the 1 s close budget set above */
    CHECK_OK(shutdown_config_builder_from_env(b));
    check_refused(b, "grace_period");
    setenv("SHUTDOWN_GRACE_PERIOD_MS", "none", 1);
    CHECK_OK(shutdown_config_builder_from_env(b));
    CHECK_OK(shutdown_config_builder_validate(b, NULL, 0, NULL, 0));
    shutdown_config_builder_free(b);

    CHECK_STATUS(shutdown_config_builder_from_env(NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    clear_env();
}

static void test_escalation_setters_and_variables_share_one_configuration(void) {
    clear_env();
    setenv("SHUTDOWN_FORCE_AT", "3", 1);
    shutdown_config_builder_t *b = default_config();
    CHECK_OK(shutdown_config_builder_set_terminate_at(b, 3));
    CHECK_OK(shutdown_config_builder_validate(b, NULL, 0, NULL, 0));
    CHECK_OK(shutdown_config_builder_from_env(b)); /* force_at 3, terminate_at 3 */
    check_refused(b, "escalation");
    CHECK_OK(shutdown_config_builder_set_terminate_at(b, 0));
    CHECK_OK(shutdown_config_builder_validate(b, NULL, 0, NULL, 0));
    shutdown_config_builder_free(b);
    clear_env();
}

/* A preset by name, changed by the setters after it; from the environment, the base the
 * other variables change. */
static void test_presets(void) {
    clear_env();
    shutdown_config_builder_t *b = default_config();
    CHECK_OK(shutdown_config_builder_set_preset(b, "docker"));
    CHECK(drain_deadline_ms(b) == 7000);
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(b, 5000));
    CHECK(drain_deadline_ms(b) == 5000);
    /* The platform's window is the grace period: a budget past it is refused. */
    CHECK_OK(shutdown_config_builder_set_drain_timeout_ms(b, 9000));
    check_refused(b, "grace_period");
    /* An unknown name changes nothing. */
    CHECK_STATUS(shutdown_config_builder_set_preset(b, "k8s"), SHUTDOWN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(shutdown_config_builder_set_preset(b, NULL), SHUTDOWN_STATUS_NULL_PARAMETER);
    CHECK_STATUS(shutdown_config_builder_set_preset(NULL, "docker"), SHUTDOWN_STATUS_NULL_PARAMETER);
    check_refused(b, "grace_period");
    CHECK_OK(shutdown_config_builder_set_systemd_notify(b, true));
    shutdown_config_builder_free(b);

    setenv("SHUTDOWN_PRESET", "pm2", 1);
    setenv("SHUTDOWN_DRAIN_TIMEOUT_MS", "1100", 1);
    b = default_config();
    CHECK_OK(shutdown_config_builder_from_env(b));
    CHECK_OK(shutdown_config_builder_validate(b, NULL, 0, NULL, 0));
    /* Virtual time advances in steps of 500 ms: 1100 shows as the step past it. */
    CHECK(drain_deadline_ms(b) == 1500);
    setenv("SHUTDOWN_PRESET", "dokcer", 1);
    CHECK_STATUS(shutdown_config_builder_from_env(b), SHUTDOWN_STATUS_INVALID_CONFIG);
    check_refused(b, "SHUTDOWN_PRESET");
    shutdown_config_builder_free(b);
    clear_env();
}

int main(void) {
    static const test_case tests[] = {
        TEST(test_presets),
        TEST(test_variables_apply_over_the_setters),
        TEST(test_an_invalid_variable_is_refused_naming_it),
        TEST(test_escalation_setters_and_variables_share_one_configuration),
    };
    return RUN_TESTS("env", tests);
}
