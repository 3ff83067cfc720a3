# Fuzzing and sanitizers of the Rust engine (issue 16). Included by the root Makefile. None of
# these targets is part of `make test`: the committed corpora are replayed there by the stable
# test crates/proto/tests/fuzz_corpus.rs (inside `cargo test --workspace`).
#
#   make fuzz            every cargo-fuzz target of crates/proto/fuzz for FUZZ_SECONDS each
#                        (default 300), one after the other, niced; fails if any crashed
#   make fuzz-one FUZZ_TARGET=connection [FUZZ_SECONDS=60]
#   make fuzz-cmin       merge what `make fuzz` found into the committed corpora, minimized
#   make fuzz-build      build the targets only
#   make sanitize        proto and net test suites under AddressSanitizer (nightly), and the
#                        proto tests under Miri when the nightly toolchain has it
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); cargo-fuzz is installed
# from crates.io when missing. The library itself builds on stable.
#
# New corpus entries go to build/fuzz/corpus/<target> (the committed corpus in
# crates/proto/fuzz/corpus/<target> is read, never written); crashes to
# crates/proto/fuzz/artifacts/<target>/ (not committed: copy each one, once understood and
# fixed, to crates/proto/fuzz/regressions/<target>/, which `make test` replays).

FUZZ_SECONDS ?= 300
FUZZ_TARGET ?= connection
FUZZ_TARGETS := frame_header mask url server_handshake client_handshake deflate_negotiate \
                inflate connection proxy_http_reply proxy_socks5_reply
FUZZ_DIR := crates/proto/fuzz
FUZZ_WORK := $(abspath $(BUILD)/fuzz)
# libFuzzer options for every run: keep memory and single-input time in check.
FUZZ_FLAGS ?= -rss_limit_mb=2048 -timeout=10
NIGHTLY ?= +nightly
# The sanitizer build has its own target directory so it never invalidates the normal one.
SANITIZE_TARGET_DIR := $(abspath target/sanitize)
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

.PHONY: fuzz fuzz-one fuzz-build fuzz-cmin fuzz-tools sanitize sanitize-asan sanitize-miri

fuzz-tools: ## check for nightly; install cargo-fuzz when missing
	@rustup toolchain list | grep -q '^nightly' || { \
	  echo "fuzzing needs the nightly toolchain: rustup toolchain install nightly"; exit 1; }
	@cargo $(NIGHTLY) fuzz --version >/dev/null 2>&1 || { \
	  echo "== installing cargo-fuzz"; $(CARGO) install cargo-fuzz --locked; }

fuzz-build: fuzz-tools ## build the cargo-fuzz targets only
	cd crates/proto && nice cargo $(NIGHTLY) fuzz build -O

# One target after another (the machines have two cores, shared). Each run reads the committed
# corpus, writes what it finds under build/fuzz, and prints libFuzzer's final statistics.
fuzz: fuzz-build ## every fuzz target for FUZZ_SECONDS each (default 300); fails on a crash
	@mkdir -p $(FUZZ_WORK)/logs
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_WORK)/corpus/$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s (log: $(FUZZ_WORK)/logs/$$t.log)"; \
	  if bash -c 'TIMEFORMAT="cpu: %U s user + %S s system, %R s wall"; time ( \
	        cd crates/proto && nice cargo $(NIGHTLY) fuzz run -O '$$t' \
	        $(FUZZ_WORK)/corpus/'$$t' fuzz/corpus/'$$t' -- \
	        -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_FLAGS) )' \
	      > $(FUZZ_WORK)/logs/$$t.log 2>&1; then \
	    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb|cpu:)' $(FUZZ_WORK)/logs/$$t.log; \
	  else \
	    echo "!! $$t failed:"; grep -E -A3 'panicked|ERROR: |SUMMARY|Test unit written' \
	      $(FUZZ_WORK)/logs/$$t.log | head -20; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz: crashes in:$$failed (inputs in $(FUZZ_DIR)/artifacts/)"; exit 1; \
	fi; \
	echo "fuzz: $(words $(FUZZ_TARGETS)) targets, $(FUZZ_SECONDS) s each, no crash"

fuzz-one: fuzz-build ## one fuzz target: FUZZ_TARGET=connection FUZZ_SECONDS=60
	@mkdir -p $(FUZZ_WORK)/corpus/$(FUZZ_TARGET)
	cd crates/proto && nice cargo $(NIGHTLY) fuzz run -O $(FUZZ_TARGET) \
	  $(FUZZ_WORK)/corpus/$(FUZZ_TARGET) fuzz/corpus/$(FUZZ_TARGET) -- \
	  -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_FLAGS)

# Adds what `make fuzz` found to the committed corpora, then keeps only the inputs that add
# coverage (libFuzzer's merge). Review the diff before committing; keep it small.
fuzz-cmin: fuzz-build ## merge what `make fuzz` found into the committed corpora, minimized
	@for t in $(FUZZ_TARGETS); do \
	  if [ -d $(FUZZ_WORK)/corpus/$$t ]; then \
	    cp -n $(FUZZ_WORK)/corpus/$$t/* $(FUZZ_DIR)/corpus/$$t/ 2>/dev/null || true; \
	  fi; \
	  (cd crates/proto && nice cargo $(NIGHTLY) fuzz cmin -O $$t) || exit 1; \
	done
	@# The hand-made seeds stay, under their names; a minimized copy of one (named by its
	@# SHA-1) is dropped.
	$(CARGO) test -q -p tidewire-proto --test fuzz_corpus -- --ignored write_seeds
	@for f in $(FUZZ_DIR)/corpus/*/seed-*; do \
	  rm -f "$$(dirname $$f)/$$(sha1sum < $$f | cut -d' ' -f1)"; \
	done
	@du -sb $(FUZZ_DIR)/corpus

# AddressSanitizer over the proto and net test suites. The standard library is not rebuilt
# with the sanitizer unless nightly has rust-src (-Zbuild-std); our code and every dependency
# are instrumented either way. Doctests are left out (rustdoc would need the flags too).
sanitize: sanitize-asan sanitize-miri ## sanitize-asan, then sanitize-miri

sanitize-asan: fuzz-tools ## proto and net test suites under AddressSanitizer (nightly)
	@if rustup $(NIGHTLY) component list --installed 2>/dev/null | grep -q '^rust-src'; then \
	  build_std="-Zbuild-std"; echo "== ASan with -Zbuild-std"; \
	else \
	  build_std=""; echo "== ASan without -Zbuild-std (nightly has no rust-src): std itself is not instrumented"; \
	fi; \
	RUSTFLAGS="-Zsanitizer=address -Cdebuginfo=1" RUSTDOCFLAGS="-Zsanitizer=address" \
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1 TIDEWIRE_SANITIZER=address \
	CARGO_TARGET_DIR=$(SANITIZE_TARGET_DIR) \
	  nice cargo $(NIGHTLY) test $$build_std --target $(HOST_TRIPLE) \
	  -p tidewire-proto -p tidewire-net --lib --tests

# Miri runs the proto unit tests that do not take long (the masking kernel with its
# unsafe word and AVX2 paths, UTF-8, frames, close codes) where nightly has the component.
MIRI_FILTERS ?= frame:: utf8:: close::
sanitize-miri: ## proto unit tests (frame, utf8, close) under Miri, when installed
	@if cargo $(NIGHTLY) miri --version >/dev/null 2>&1; then \
	  for f in $(MIRI_FILTERS); do \
	    MIRIFLAGS="-Zmiri-disable-isolation" CARGO_TARGET_DIR=$(SANITIZE_TARGET_DIR) \
	      nice cargo $(NIGHTLY) miri test -p tidewire-proto --lib $$f || exit 1; \
	  done; \
	else \
	  echo "== Miri: skipped, not installed for nightly (rustup $(NIGHTLY) component add miri)"; \
	fi
