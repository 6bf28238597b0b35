# Caducée — common tasks. `make run` starts the provider on its embedded default;
# `make test` runs every test suite (unit, integration, conformance).

CARGO ?= cargo

.PHONY: run build release test test-assets lint fmt check-tools clean bench bench-peers

AXE_VERSION = 4.14.1
AXE = .cache/npm/node_modules/axe-core/axe.min.js
SCHEMATHESIS_VERSION = 4.32.5
SCHEMATHESIS = .cache/venv/bin/schemathesis

## Start the provider on 127.0.0.1:8080 (SQLite and keys under ./data, sessions in process).
run:
	$(CARGO) run --bin caducee -- serve

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release --bin caducee

## Every test, in parallel, against real parts (loopback HTTP, Redis, PostgreSQL and an SMTP sink
## started by the harness, headless Chromium).
test: check-tools test-assets
	$(CARGO) nextest run --workspace --no-fail-fast

## axe-core, for the accessibility checks the browser tests run (from npm, pinned), and
## schemathesis, which checks the admin API against its OpenAPI document (from PyPI, pinned).
test-assets: $(AXE) $(SCHEMATHESIS)

$(AXE):
	npm install --no-save --no-audit --no-fund --prefix .cache/npm axe-core@$(AXE_VERSION)

$(SCHEMATHESIS):
	python3 -m venv .cache/venv
	.cache/venv/bin/pip install --quiet schemathesis==$(SCHEMATHESIS_VERSION)

## Benchmarks (docs/benchmarks.md): release build, then Caducée, panva's oidc-provider and the raw
## limits (signatures, argon2id, an axum hello-world) measured side by side on loopback, servers
## pinned to core 0 and the load generator to core 1. BENCH_QUICK=1 for short runs.
bench: bench-peers
	$(CARGO) build --release -p server -p caducee-bench --bins
	$${CARGO_TARGET_DIR:-target}/release/caducee-bench run --caducee $${CARGO_TARGET_DIR:-target}/release/caducee

## The peer provider, pinned in bench/peers/package-lock.json.
bench-peers: bench/peers/node_modules/oidc-provider/package.json

bench/peers/node_modules/oidc-provider/package.json: bench/peers/package.json bench/peers/package-lock.json
	npm ci --no-audit --no-fund --prefix bench/peers
	touch $@

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

check-tools:
	@command -v cargo-nextest >/dev/null 2>&1 || { echo "cargo-nextest is missing: cargo install --locked cargo-nextest"; exit 1; }
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is missing: apt-get install redis-server"; exit 1; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { echo "PostgreSQL is missing: apt-get install postgresql"; exit 1; }
	@command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || { echo "Chromium is missing: apt-get install chromium chromium-driver"; exit 1; }
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing (for axe-core): apt-get install npm"; exit 1; }
	@python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || { echo "python3 with venv is missing (for schemathesis): apt-get install python3-venv"; exit 1; }

clean:
	$(CARGO) clean
