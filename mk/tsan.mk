# ThreadSanitizer over the background I/O thread mode (issue 15): `tidewire_net::Background`
# (crates/net/tests/background.rs) and the C face's `tw_io` (tests/c/test_io.c). Included by
# the root Makefile; not part of `make test` (it rebuilds the standard library).
#
#   make sanitize-tsan        both of the following
#   make sanitize-tsan-rust   the Rust background tests, std and every crate instrumented
#   make sanitize-tsan-c      libtidewire.a instrumented the same way, linked into
#                             tests/c/test_io.c built with gcc -fsanitize=thread
#
# Why -Zbuild-std: TSan only sees the synchronisation of instrumented code. The standard
# library's Mutex, Condvar and channels are futex-based; an uninstrumented std makes every
# hand-over through them look like a data race. Needs the nightly toolchain with rust-src
# (installed here when missing). Its own target directory, so it never invalidates the
# normal build.
#
# Why the C test links rustc's TSan runtime instead of gcc's: the Rust code is instrumented
# by LLVM, which calls __tsan_memcpy and __tsan_memset; Debian 12's gcc 12 libtsan has
# neither. The test is compiled by gcc with -fsanitize=thread (same __tsan_* entry points) and
# linked, without gcc's runtime, against the compiler-rt TSan runtime that ships with the
# nightly toolchain (librustc-nightly_rt.tsan.a), so both sides report to one runtime.

.PHONY: sanitize-tsan sanitize-tsan-rust sanitize-tsan-c tsan-tools

TSAN_TARGET_DIR := $(abspath target/tsan)
TSAN_HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
TSAN_RUSTFLAGS := -Zsanitizer=thread -Cdebuginfo=1
TSAN_CARGO := env RUSTFLAGS="$(TSAN_RUSTFLAGS)" RUSTDOCFLAGS="$(TSAN_RUSTFLAGS)" \
  CARGO_TARGET_DIR=$(TSAN_TARGET_DIR) cargo +nightly
TSAN_C_BUILD := $(abspath $(BUILD)/tsan)
# halt_on_error: the first report fails the run; second_deadlock_stack for readable reports.
TSAN_RUN_OPTIONS := halt_on_error=1:second_deadlock_stack=1
TSAN_RT = $(shell rustc +nightly --print sysroot 2>/dev/null)/lib/rustlib/$(TSAN_HOST)/lib/librustc-nightly_rt.tsan.a

tsan-tools: ## check for nightly; add its rust-src component when missing
	@rustup toolchain list | grep -q '^nightly' || { \
	  echo "ThreadSanitizer needs the nightly toolchain: rustup toolchain install nightly"; exit 1; }
	@rustup +nightly component list --installed | grep -q '^rust-src' || { \
	  echo "== adding rust-src to nightly"; rustup component add rust-src --toolchain nightly; }

sanitize-tsan-rust: tsan-tools ## Background's tests under ThreadSanitizer (nightly, -Zbuild-std)
	TSAN_OPTIONS=$(TSAN_RUN_OPTIONS) nice $(TSAN_CARGO) test -Zbuild-std --target $(TSAN_HOST) \
	  -p tidewire-net --test background

sanitize-tsan-c: tsan-tools c-tools ## tests/c/test_io.c (tw_io) under ThreadSanitizer
	nice $(TSAN_CARGO) rustc -Zbuild-std --target $(TSAN_HOST) --release -p tidewire --lib \
	  --crate-type staticlib
	@mkdir -p $(TSAN_C_BUILD)
	$(CC) $(C_WARN) -g -O1 -fno-omit-frame-pointer -fsanitize=thread -Iinclude -Itests/c \
	  -c tests/c/test_io.c -o $(TSAN_C_BUILD)/test_io.o
	$(CC) $(TSAN_C_BUILD)/test_io.o -o $(TSAN_C_BUILD)/test_io \
	  $(TSAN_TARGET_DIR)/$(TSAN_HOST)/release/libtidewire.a \
	  -Wl,--whole-archive $(TSAN_RT) -Wl,--no-whole-archive $(C_LIBS_PRIVATE) -lstdc++ -pthread
	@nm $(TSAN_C_BUILD)/test_io | grep -q __tsan_init || { echo "test_io: ThreadSanitizer is not linked"; exit 1; }
	TSAN_OPTIONS=$(TSAN_RUN_OPTIONS) $(TSAN_C_BUILD)/test_io

sanitize-tsan: sanitize-tsan-rust sanitize-tsan-c ## ThreadSanitizer over the background I/O thread mode (Rust and C)
	@echo "== sanitize-tsan: no data race reported"
