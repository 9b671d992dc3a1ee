# libshutdown: the two commands a new user runs are `make demo` and `make test`.
# Everything a target needs (apt packages, cargo-c, npm packages) is installed by
# the target itself when missing.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never
# The cargo-nextest that .config/nextest.toml was written for, installed when missing.
NEXTEST_VERSION ?= 0.9.143
# Limits, in seconds, of the steps that have no per-test limit of their own: no step of
# the default run can hang it (cargo builds are not limited).
DOCTEST_TIMEOUT ?= 600
NODE_TEST_TIMEOUT ?= 2400
E2E_QUICK_TIMEOUT ?= 1800
E2E_TIMEOUT ?= 3600

.PHONY: demo test lint nextest rust-test loom c-test node-test stress stress-quick e2e-quick e2e bench containers

demo:
	$(CARGO) run --release -q -p libshutdown-examples --bin demo

# The whole default test run (CI calls this). Long soak/load runs are `make e2e`
# and `make bench`.
test: lint rust-test loom c-test node-test stress-quick storm-quick package-test e2e-quick platforms-quick production-quick

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@# The core must stay executor-agnostic: no tokio among its normal dependencies.
	@if $(CARGO) tree -p libshutdown -e normal --prefix none | grep -q '^tokio'; then \
		echo "error: the libshutdown crate depends on tokio"; exit 1; fi

# Every test in a process of its own, under the time limits of .config/nextest.toml: a
# test that hangs is killed, named and fails the run. nextest does not run doc tests.
rust-test: nextest
	$(CARGO) nextest run --workspace
	timeout -k 10 $(DOCTEST_TIMEOUT) $(CARGO) test --workspace --doc

# The atomic protocol of the admission word, model-checked (its own limit in
# .config/nextest.toml).
loom: nextest
	$(CARGO) nextest run -p libshutdown --release --features loom --test loom --test loom_driver

nextest:
	@$(CARGO) nextest --version >/dev/null 2>&1 || \
		$(CARGO) install cargo-nextest --version $(NEXTEST_VERSION) --locked

c-test:
	bash ffi/tests/run.sh

node-test:
	timeout -k 10 $(NODE_TEST_TIMEOUT) bash bindings/node/scripts/test.sh

# The concurrency tests, repeated (tests/stress/run.sh): every test of
# core/tests/drivers.rs and the C test_threads STRESS_ITERATIONS times (default 200),
# the Node guard tests STRESS_NODE_ITERATIONS times (default 20), each run under a time
# limit; a hang is named and counted, never waited for.
stress:
	bash tests/stress/run.sh

# Its short form in the default run: 20 runs of each (2 of each Node file).
stress-quick:
	bash tests/stress/run.sh --quick

# The quick form in the default run: HAProxy only. Behind nginx (no health checks) a
# request arriving in the instant admission closes was lost now and then before the
# examples' per-connection reserve guards (tests/e2e/README.md); the clean runs since
# are evidence, not proof, so nginx stays in `make e2e` and the default run in CI
# cannot be flaky on it.
e2e-quick:
	timeout -k 30 $(E2E_QUICK_TIMEOUT) bash tests/e2e/run.sh --quick --topologies haproxy --require-all

e2e:
	timeout -k 30 $(E2E_TIMEOUT) bash tests/e2e/run.sh --full

bench:
	$(CARGO) bench -p libshutdown --bench guard
	bash bindings/node/bench/run.sh

# The npm packages as users install them (bindings/node/scripts/package-test.sh):
# packed, installed with npm and pnpm without cargo, a real server drained by SIGTERM,
# tsc on the installed types, and the from-source build of the tarball.
.PHONY: package-test package-test-node
# What users install, as they install it: the npm packages (below), the C tarball
# (ffi/tests/dist-test.sh, also part of c-test) and the crate as crates.io would build it.
package-test: package-test-node
	bash ffi/tests/dist-test.sh
	$(CARGO) publish --dry-run -p libshutdown

package-test-node:
	bash bindings/node/scripts/package-test.sh

# The C ABI's baseline (ffi/abi/libshutdown.abi): record it again after bumping the
# SONAME counter in ffi/Cargo.toml. `make c-test` checks against it.
.PHONY: abi-baseline
abi-baseline:
	bash ffi/tests/check-abi.sh --update

# The relocatable binary tarball of the C library:
# target/dist/libshutdown-<version>-<target>.tar.gz (ffi/tests/dist-test.sh checks it).
.PHONY: dist
dist:
	bash ffi/dist.sh

# The signal storm (tests/storm/run.sh): the smol, threads, C and Node example servers,
# idle and with a slow request in flight, each get 1,000 SIGTERMs; each must exit
# normally (never by a signal), print its report, and exit with the report's exit code.
# STORM_ROUNDS runs of each server and scenario (default 5); storm-quick: 1 of each.
.PHONY: storm storm-quick
storm:
	bash tests/storm/run.sh

storm-quick:
	bash tests/storm/run.sh --quick

# The example servers as PID 1 of a new PID namespace (as in a container), SIGTERMed
# with a request in flight (tests/containers/pid1.sh; skipped when not root).
containers:
	bash tests/containers/pid1.sh

# The libFuzzer harness of the C ABI (ffi/tests/fuzz/README.md): a 300 s campaign from
# the committed corpus (`make c-test` replays that corpus). FUZZ_SECONDS to change it.
FUZZ_SECONDS ?= 300
.PHONY: fuzz
fuzz:
	timeout -k 30 $$(( $(FUZZ_SECONDS) + 2400 )) bash ffi/tests/fuzz/run.sh --campaign $(FUZZ_SECONDS)

# The Node example under real process managers (tests/platforms/): PM2 (pm2.sh, pm2 and
# autocannon from npm into a temp dir, a private PM2_HOME): cluster mode, 2 workers,
# `pm2 reload` twice under load, once with PM2 stopping workers by SIGINT, once by the IPC
# message 'shutdown'; 0 failed requests and every old worker exiting 0. About 45 s a run
# after the npm install, so not part of `make test`.
PLATFORMS_TIMEOUT ?= 900
.PHONY: platforms platforms-quick
# The quick form in `make test`: signal mode only, both reloads within 20 s of load.
platforms-quick:
	timeout -k 30 300 env PM2_TOOLS_DIR=$(CURDIR)/target/platforms/pm2-tools PM2_LOAD_SECONDS=20 bash tests/platforms/pm2.sh
platforms:
	timeout -k 30 $(PLATFORMS_TIMEOUT) env PM2_TOOLS_DIR=$(CURDIR)/target/platforms/pm2-tools bash tests/platforms/pm2.sh
	timeout -k 30 $(PLATFORMS_TIMEOUT) env PM2_TOOLS_DIR=$(CURDIR)/target/platforms/pm2-tools PM2_STOP=message bash tests/platforms/pm2.sh

# The production-shaped Node service (examples/node/production: Express, Socket.io, pg,
# ioredis, a Redis job loop, prom-client) against a real PostgreSQL and Redis started on
# 127.0.0.1 by tests/platforms/production.sh (Debian packages, apt-get when missing): /metrics
# while running and draining, then PM2 cluster of 2 under autocannon load with Socket.io
# clients and queued jobs, `pm2 reload` twice: 0 failed requests, old workers exit 0, every
# socket reconnected to a new worker, every job done exactly once, the drain in order.
# production-quick: one reload, 30 s of load (about 55 s after the installs).
PRODUCTION_TIMEOUT ?= 1200
PRODUCTION_QUICK_TIMEOUT ?= 900
.PHONY: production production-quick
production:
	timeout -k 30 $(PRODUCTION_TIMEOUT) env PROD_TOOLS_DIR=$(CURDIR)/target/platforms/production-tools bash tests/platforms/production.sh

production-quick:
	timeout -k 30 $(PRODUCTION_QUICK_TIMEOUT) env PROD_TOOLS_DIR=$(CURDIR)/target/platforms/production-tools bash tests/platforms/production.sh --quick
