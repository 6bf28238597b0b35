# Caducée — common tasks. `make run` starts the provider on its embedded default;
# `make test` runs every test suite (unit, integration, conformance).

CARGO ?= cargo

.PHONY: run build release test lint fmt check-tools clean

## Start the provider on 127.0.0.1:8080 (SQLite and keys under ./data, sessions in process).
run:
	$(CARGO) run --bin caducee -- serve

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release --bin caducee

## Every test, in parallel, against real parts (loopback HTTP, Redis, PostgreSQL started by the harness).
test: check-tools
	$(CARGO) nextest run --workspace --no-fail-fast

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

clean:
	$(CARGO) clean
