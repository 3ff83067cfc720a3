# tidewire: `make test` runs every check; `make demo` runs the main example.
# Every target installs what it needs and skips what is already there.
#
# Each face adds its own targets in mk/<face>.mk and registers them here through
#   TEST_TARGETS      += test-<face>      (run by `make test`, in order)
#   SLOW_TEST_TARGETS += test-<suite>     (run by `make test` after all the others)
#   EXAMPLE_TARGETS   += examples-<face>  (run by `make examples`)

CARGO ?= cargo
BUILD := build
BIN := $(abspath $(BUILD)/bin)
export CARGO_TERM_COLOR ?= never

TEST_TARGETS :=
SLOW_TEST_TARGETS :=
EXAMPLE_TARGETS :=

.PHONY: all build test lint doc fmt test-rust examples bench-mask bench-engine clean help

all: build

help:
	@echo "make build       build the Rust workspace (release)"
	@echo "make test        formatting, clippy, every test suite"
	@echo "make examples    build the example programs into $(BIN)/"
	@echo "make demo        run the demo server (open the URL it prints)"
	@echo "make bench-mask  criterion benchmark of the masking kernel"

build:
	$(CARGO) build --workspace --release

lint: doc
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# API documentation of the Rust crates; a broken link or a bad doc comment fails the build.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace

fmt:
	$(CARGO) fmt --all

test-rust:
	$(CARGO) test --workspace

bench-engine:
	$(CARGO) bench -p tidewire-proto --bench engine -- --warm-up-time 1 --measurement-time 3

bench-mask:
	$(CARGO) bench -p tidewire-proto --bench mask -- --warm-up-time 1 --measurement-time 3

clean:
	$(CARGO) clean
	rm -rf $(BUILD)

-include $(sort $(wildcard mk/*.mk))

# `make test`: lint and the Rust suites first, then every face's suites, the slow ones last.
test: lint test-rust $(TEST_TARGETS) $(SLOW_TEST_TARGETS)
	@echo "== make test: all suites passed"

examples: $(EXAMPLE_TARGETS)
	@mkdir -p $(BIN)
	@ls $(BIN)
