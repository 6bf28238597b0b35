# Caducée — common tasks. `make demo` shows the whole flow in a browser; `make run` starts the
# provider on its embedded default;
# `make test` runs every test suite (unit, integration, conformance) and a short run of each fuzz
# target; `make fuzz` runs the fuzz targets for longer (fuzz/README.md).

CARGO ?= cargo

.PHONY: demo demo-card run build release image test test-assets lint fmt check-tools clean bench bench-peers soak fuzz fuzz-build fuzz-smoke

AXE_VERSION = 4.14.1
AXE = .cache/npm/node_modules/axe-core/axe.min.js
SCHEMATHESIS_VERSION = 4.32.5
SCHEMATHESIS = .cache/venv/bin/schemathesis
# The schema checkers of deploy/ (Kubernetes manifests, compose.yaml), in their own virtual
# environment: their jsonschema need not agree with schemathesis's.
KUBERNETES_VALIDATE_VERSION = 1.37.0
CHECK_JSONSCHEMA_VERSION = 0.39.0
DEPLOY_VENV = .cache/deploy-venv
DEPLOY_CHECKERS = $(DEPLOY_VENV)/.installed-$(KUBERNETES_VALIDATE_VERSION)-$(CHECK_JSONSCHEMA_VERSION)
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null || echo docker)
IMAGE ?= caducee:latest

## The whole flow in a browser: the provider on 127.0.0.1:8080 (embedded default, its data in
## ./data/demo, fresh at each run) with a demo professional who is also an administrator, and a
## demo relying party on 127.0.0.1:8081 (docs/quickstart.md). Prints what to open and type.
demo:
	$(CARGO) run -p demo --bin caducee-demo

## Start the provider on 127.0.0.1:8080 (SQLite and keys under ./data, sessions in process).
run:
	$(CARGO) run --bin caducee -- serve

## A CPS card sign-in without hardware: a test PKI, a private pcscd with the virtual reader and a
## virtual CPS3, the card agent and the provider (on 127.0.0.1:8080, data under .cache/demo-card);
## prints what to open and the PIN. Needs pcscd and vsmartcard-vpcd (see the README).
demo-card:
	$(CARGO) build -p server -p card-agent -p test-support --bins
	$${CARGO_TARGET_DIR:-target}/debug/demo-card --caducee $${CARGO_TARGET_DIR:-target}/debug/caducee \
		--card-agent $${CARGO_TARGET_DIR:-target}/debug/card-agent --dir .cache/demo-card

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release --bin caducee

## The container image (deploy/Dockerfile), with docker or podman (CONTAINER_ENGINE=...);
## IMAGE=name:tag to name it. docs/operations.md says how to run it.
image:
	$(CONTAINER_ENGINE) build -f deploy/Dockerfile -t $(IMAGE) .

## Every test, in parallel, against real parts (loopback HTTP, Redis, PostgreSQL and an SMTP sink
## started by the harness, headless Chromium).
test: check-tools test-assets
	$(CARGO) nextest run --workspace --no-fail-fast
	$(MAKE) fuzz-smoke

## axe-core, for the accessibility checks the browser tests run (from npm, pinned),
## schemathesis, which checks the admin API against its OpenAPI document (from PyPI, pinned),
## and kubernetes-validate and check-jsonschema, which check deploy/ (from PyPI, pinned; their
## schemas are in the packages, so the checks run offline).
test-assets: $(AXE) $(SCHEMATHESIS) $(DEPLOY_CHECKERS)

$(AXE):
	npm install --no-save --no-audit --no-fund --prefix .cache/npm axe-core@$(AXE_VERSION)

$(SCHEMATHESIS):
	python3 -m venv .cache/venv
	.cache/venv/bin/pip install --quiet schemathesis==$(SCHEMATHESIS_VERSION)

# A marker named after the pins: changing a version installs again.
$(DEPLOY_CHECKERS):
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION) check-jsonschema==$(CHECK_JSONSCHEMA_VERSION)
	touch $@

## Benchmarks (docs/benchmarks.md): release build, then Caducée (embedded default, then over
## PostgreSQL + Redis, both started by the bench: needs redis-server, PostgreSQL and psql), panva's
## oidc-provider and the raw limits (signatures, argon2id, an axum hello-world) measured side by
## side on loopback, servers pinned to core 0 and the load generator to core 1. BENCH_QUICK=1 for
## short runs.
bench: bench-peers
	$(CARGO) build --release -p server -p caducee-bench --bins
	$${CARGO_TARGET_DIR:-target}/release/caducee-bench run --caducee $${CARGO_TARGET_DIR:-target}/release/caducee

## The soak (docs/benchmarks.md, «Soak»; not part of `make test`): two release `caducee serve`
## nodes over one PostgreSQL and one Redis behind one address, complete flows (full and SSO
## logins, code exchanges, refreshes, userinfo, logouts with back-channel tokens) at half of
## their measured capacity for SOAK_MINUTES (30 by default), a line per minute: flows, errors,
## p99 per request kind, each node's memory and share of the requests. Fails if any request
## failed.
soak:
	$(CARGO) build --release -p server -p caducee-bench --bins
	$${CARGO_TARGET_DIR:-target}/release/caducee-bench soak --caducee $${CARGO_TARGET_DIR:-target}/release/caducee

## The peer provider, pinned in bench/peers/package-lock.json.
bench-peers: bench/peers/node_modules/oidc-provider/package.json

bench/peers/node_modules/oidc-provider/package.json: bench/peers/package.json bench/peers/package-lock.json
	npm ci --no-audit --no-fund --prefix bench/peers
	touch $@

## Fuzzing (fuzz/README.md): libFuzzer through cargo-fuzz, on the stable toolchain (no nightly
## needed): `--sanitizer none`, since AddressSanitizer needs nightly's -Zsanitizer and finds
## nothing in safe Rust; the build has debug assertions and overflow checks on, so an overflow
## panics and is reported. The fuzz crate is its own workspace, built into its own target
## folder (its instrumentation flags differ from every other build's).
FUZZ_TARGETS = authorize_query token_form client_assertion id_token_hint phone_request pskc
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR)/fuzz,fuzz/target)
FUZZ_FLAGS = --sanitizer none --target-dir $(abspath $(FUZZ_TARGET_DIR))
# Each target's libFuzzer dictionary (fuzz/dict/); every run stops at an input taking 60 s (a
# hang) or at 2 GB of memory, and each is reported as a crash.
FUZZ_DICT_authorize_query = form
FUZZ_DICT_token_form = form
FUZZ_DICT_client_assertion = json
FUZZ_DICT_id_token_hint = json
FUZZ_DICT_phone_request = json
FUZZ_DICT_pskc = pskc
FUZZ_ARGS = -timeout=60 -rss_limit_mb=2048 -print_final_stats=1
# The minimised corpus keeps an input for every code edge reached, not for every hit count of
# each (a third of the inputs, 100 to 450 KB a target).
FUZZ_CMIN_ARGS = -use_counters=0
FUZZ_SMOKE_DIR = $(abspath $(FUZZ_TARGET_DIR))/smoke-corpus

# Target $(1) for FUZZ_SECONDS from its seeds (fuzz/seeds/, real requests and tokens, kept as
# written) and its corpus (fuzz/corpus/, what libFuzzer found), which grows and is then minimised.
define fuzz_long
	$(CARGO) fuzz run $(FUZZ_FLAGS) $(1) fuzz/corpus/$(1) fuzz/seeds/$(1) -- $(FUZZ_ARGS) -dict=fuzz/dict/$(FUZZ_DICT_$(1)).dict -max_total_time=$(FUZZ_SECONDS)
	$(CARGO) fuzz cmin $(FUZZ_FLAGS) $(1) fuzz/corpus/$(1) -- $(FUZZ_CMIN_ARGS)

endef

# Target $(1) for FUZZ_SMOKE_SECONDS from its seeds and corpus; new inputs go to a scratch folder.
# The same optimised build as `make fuzz` (unoptimised, a target ran 16 to 40 inputs a second,
# and an opt-level 1 build cost nearly as much as this one).
define fuzz_short
	mkdir -p $(FUZZ_SMOKE_DIR)/$(1)
	$(CARGO) fuzz run $(FUZZ_FLAGS) $(1) $(FUZZ_SMOKE_DIR)/$(1) fuzz/corpus/$(1) fuzz/seeds/$(1) -- $(FUZZ_ARGS) -dict=fuzz/dict/$(FUZZ_DICT_$(1)).dict -max_total_time=$(FUZZ_SMOKE_SECONDS)

endef

fuzz-build:
	$(CARGO) fuzz build $(FUZZ_FLAGS)

## Each target for FUZZ_SECONDS, one after the other, growing fuzz/corpus/<target>, which is
## then minimised (commit it). A crash stops the run; its input is in fuzz/artifacts/<target>/.
fuzz: fuzz-build
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_long,$(t)))

## What `make test` runs: each target for FUZZ_SMOKE_SECONDS, the committed inputs left as they are.
fuzz-smoke: fuzz-build
	rm -rf $(FUZZ_SMOKE_DIR)
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_short,$(t)))

## Formatting and lints, as CI checks them (the fuzz crate too: it is its own workspace).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml

check-tools:
	@command -v cargo-nextest >/dev/null 2>&1 || { echo "cargo-nextest is missing: cargo install --locked cargo-nextest"; exit 1; }
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is missing: apt-get install redis-server"; exit 1; }
	@command -v redis-cli >/dev/null 2>&1 || { echo "redis-cli is missing (Redis Cluster and Sentinel tests): apt-get install redis-tools"; exit 1; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { echo "PostgreSQL is missing: apt-get install postgresql"; exit 1; }
	@command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || { echo "Chromium is missing: apt-get install chromium chromium-driver"; exit 1; }
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing (for axe-core): apt-get install npm"; exit 1; }
	@python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || { echo "python3 with venv is missing (for schemathesis and the deploy/ schema checkers): apt-get install python3-venv"; exit 1; }
	@command -v cargo-fuzz >/dev/null 2>&1 || { echo "cargo-fuzz is missing (for the fuzz targets): cargo install --locked cargo-fuzz"; exit 1; }
	@command -v c++ >/dev/null 2>&1 || { echo "a C++ compiler is missing (cargo-fuzz builds libFuzzer): apt-get install g++"; exit 1; }
	@{ [ -x /usr/sbin/pcscd ] || command -v pcscd >/dev/null 2>&1; } && [ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || { echo "pcscd or the vpcd driver is missing (CPS card tests): apt-get install --no-install-recommends pcscd libpcsclite-dev vsmartcard-vpcd"; exit 1; }
	@command -v pkcs15-tool >/dev/null 2>&1 && command -v softhsm2-util >/dev/null 2>&1 || { echo "OpenSC or SoftHSM2 is missing (CPS card tests): apt-get install --no-install-recommends opensc softhsm2"; exit 1; }

clean:
	$(CARGO) clean
