# tidewire: `make test` runs every check; `make demo` runs the main example.
# Every target installs what it needs and skips what is already there.
#
# Each face adds its own targets in mk/<face>.mk and registers them here through
#   TEST_TARGETS      += test-<face>      (run by `make test`, in order)
#   SLOW_TEST_TARGETS += test-<suite>     (run by `make test` after all the others)
#   EXAMPLE_TARGETS   += examples-<face>  (run by `make examples`)
#
# Every target a user may call carries a one-line description after `## ` on its rule line
# (`test-c: header-check ... ## C face: ...`); `make help` lists them, grouped by file.
# docs/DESIGN.md says which suite lives where.

CARGO ?= cargo
BUILD := build
BIN := $(abspath $(BUILD)/bin)
export CARGO_TERM_COLOR ?= never

TEST_TARGETS :=
SLOW_TEST_TARGETS :=
EXAMPLE_TARGETS :=

.PHONY: all build test lint doc fmt test-rust redis-tools proxy-tools examples bench-mask bench-engine clean help

all: build ## the default goal: same as `make build`

# Every rule line with a `## ` description, grouped by the file it is in.
help: ## list every target with a one-line description (this list)
	@awk -F ':.*## ' '/^[A-Za-z0-9_.-]+:([^=]|$$).*## / { \
	  if (FILENAME != file) { file = FILENAME; printf "%s%s\n", (n++ ? "\n" : ""), file } \
	  printf "  %-20s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## build the Rust workspace (release)
	$(CARGO) build --workspace --release

lint: doc ## rustfmt check, clippy with warnings denied, and `make doc`
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# API documentation of the Rust crates; a broken link or a bad doc comment fails the build.
doc: ## API documentation of the Rust crates (rustdoc warnings denied)
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace

fmt: ## format the Rust workspace in place
	$(CARGO) fmt --all

test-rust: redis-tools proxy-tools ## cargo test --workspace: proto, net (fault proxy, Redis cluster, real proxies too), fuzz corpora, C face's Rust tests
	TIDEWIRE_REQUIRE_REDIS=1 TIDEWIRE_REQUIRE_PROXIES=1 $(CARGO) test --workspace

# The cluster bridge's tests start their own redis-server (on a free port, stopped by PID).
redis-tools: ## install redis-server from Debian when missing
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "== installing redis-server"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# crates/net/tests/proxy.rs and the faces' proxy tests (tests/proxies.py) start their own
# tinyproxy, danted and stunnel (the HTTPS proxy, in front of tinyproxy): free ports,
# stopped by PID.
proxy-tools: ## install tinyproxy, dante-server (danted) and stunnel4 from Debian when missing
	@{ command -v tinyproxy >/dev/null 2>&1 && { command -v danted >/dev/null 2>&1 || [ -x /usr/sbin/danted ]; } \
	   && command -v stunnel4 >/dev/null 2>&1; } || { \
	  echo "== installing tinyproxy dante-server stunnel4"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy dante-server stunnel4 >/dev/null; }

bench-engine: ## criterion: per-message parse and echo cost of the engine
	$(CARGO) bench -p tidewire-proto --bench engine -- --warm-up-time 1 --measurement-time 3

bench-mask: ## criterion: the masking kernel against memcpy
	$(CARGO) bench -p tidewire-proto --bench mask -- --warm-up-time 1 --measurement-time 3

clean: ## cargo clean and remove build/
	$(CARGO) clean
	rm -rf $(BUILD)

-include $(sort $(wildcard mk/*.mk))

# `make test`: lint and the Rust suites first, then every face's suites, the slow ones last.
test: lint test-rust $(TEST_TARGETS) $(SLOW_TEST_TARGETS) ## every check: lint, Rust, each face, then the slow suites
	@echo "== make test: all suites passed"

examples: $(EXAMPLE_TARGETS) ## build every face's example programs into build/bin/
	@mkdir -p $(BIN)
	@ls $(BIN)
