# libshutdown: the two commands a new user runs are `make demo` and `make test`.
# Everything a target needs (apt packages, cargo-c, npm packages) is installed by
# the target itself when missing.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: demo test lint rust-test loom c-test node-test e2e-quick e2e bench

demo:
	$(CARGO) run --release -q -p libshutdown-examples --bin demo

# The whole default test run (CI calls this). Long soak/load runs are `make e2e`
# and `make bench`.
test: lint rust-test loom c-test node-test e2e-quick

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@# The core must stay executor-agnostic: no tokio among its normal dependencies.
	@if $(CARGO) tree -p libshutdown -e normal --prefix none | grep -q '^tokio'; then \
		echo "error: the libshutdown crate depends on tokio"; exit 1; fi

rust-test:
	$(CARGO) test --workspace

# The atomic protocol of the admission word, model-checked.
loom:
	$(CARGO) test -p libshutdown --release --features loom --test loom

c-test:
	bash ffi/tests/run.sh

node-test:
	bash bindings/node/scripts/test.sh

# The quick form in the default run: HAProxy only. Behind nginx (no health checks) a
# request arriving in the instant admission closes was lost now and then before the
# examples' per-connection reserve guards (tests/e2e/README.md); the clean runs since
# are evidence, not proof, so nginx stays in `make e2e` and the default run in CI
# cannot be flaky on it.
e2e-quick:
	bash tests/e2e/run.sh --quick --topologies haproxy

e2e:
	bash tests/e2e/run.sh --full

bench:
	$(CARGO) bench -p libshutdown --bench guard
	bash bindings/node/bench/run.sh

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
