// The header compiles as C++17 (-Wall -Wextra -Werror -pedantic) and links.
#include <shutdown.h>

#include <cstdio>
#include <cstring>

namespace {
void on_milestone(void *user_data, shutdown_milestone_t m) {
    *static_cast<int *>(user_data) += static_cast<int>(m);
}
int hook(void *, char *message, size_t len) {
    std::snprintf(message, len, "%s", "cxx failed");
    return 1;
}
}  // namespace

int main() {
    shutdown_config_builder_t *cfg = nullptr;
    if (shutdown_config_builder_new(&cfg) != SHUTDOWN_STATUS_OK) return 1;
    shutdown_config_builder_set_manual_clock(cfg, true);
    shutdown_config_builder_set_close_strategy(cfg, SHUTDOWN_CLOSE_STRATEGY_GRADUAL);
    shutdown_t *sd = nullptr;
    shutdown_status_t st = shutdown_new(cfg, &sd);
    shutdown_config_builder_free(cfg);
    if (st != SHUTDOWN_STATUS_OK) return 1;
    int sum = 0;
    shutdown_on_milestone(sd, on_milestone, &sum);
    shutdown_on_close(sd, "cxx", 0, 0, hook, nullptr);
    shutdown_trigger(sd, SHUTDOWN_REASON_KIND_MANUAL, "c++");
    shutdown_phase_t phase = SHUTDOWN_PHASE_RUNNING;
    shutdown_phase(sd, &phase);
    shutdown_report_t *r = nullptr;
    shutdown_report(sd, &r);
    shutdown_hook_report_t h{};
    shutdown_report_hook(r, 0, &h);
    bool ok = phase == SHUTDOWN_PHASE_DONE && sum == 1 + 2 + 3 + 4 &&
              h.outcome == SHUTDOWN_HOOK_OUTCOME_FAILED && std::strcmp(h.message, "cxx failed") == 0;
    shutdown_report_free(r);
    shutdown_free(sd);
    std::printf("c++17: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
