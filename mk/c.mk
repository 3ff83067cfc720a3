# The C face (issue 4): libtidewire.so / libtidewire.a, include/tidewire.h, the C examples,
# the C test suite and `make install`. Included by the root Makefile.
#
#   make lib-c            build the libraries (release) and stage them in build/c/lib
#   make header           regenerate include/tidewire.h (cbindgen, pinned in Cargo.toml)
#   make header-check     fail when include/tidewire.h differs from a fresh generation
#   make examples-c       build/bin/{echo_server_c,autobahn_client_c,game_loop_c,echo_bench_c}
#   make test-c           header check, C tests (ASan+UBSan, shared and static), the header
#                         as C++, example smoke tests, install test
#   make install PREFIX=/usr/local [DESTDIR=...]

TEST_TARGETS += test-c
EXAMPLE_TARGETS += examples-c

.PHONY: lib-c header header-check examples-c test-c test-c-unit test-c-cpp test-c-examples \
        test-c-install install c-tools

CC ?= cc
CXX ?= g++
PREFIX ?= /usr/local
DESTDIR ?=

C_TARGET_DIR := $(abspath $(or $(CARGO_TARGET_DIR),target))
C_CARGO_OUT := $(C_TARGET_DIR)/release
C_BUILD := $(abspath $(BUILD)/c)
C_LIB := $(C_BUILD)/lib
# The workspace version, for the real file name behind the SONAME symlinks.
TW_VERSION := $(shell sed -n 's/^version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
TW_MAJOR := $(firstword $(subst ., ,$(TW_VERSION)))

# What a C program needs besides libtidewire.a: rustc's `native-static-libs` for the Rust
# standard library, less -lc and -lgcc_s, which cc adds itself (and -lgcc_s has no static
# archive, so listing it would break `-static` links).
C_LIBS_PRIVATE := -lpthread -ldl -lm -lrt -lutil
C_WARN := -std=c11 -Wall -Wextra -Wpedantic -Werror
C_SAN := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
C_EXAMPLE_FLAGS := -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -g
C_TEST_SRC := $(sort $(wildcard tests/c/test_*.c))
C_TEST_NAMES := $(basename $(notdir $(C_TEST_SRC)))
C_TEST_DEPS := tests/c/runner.h tests/c/common.h include/tidewire.h
C_EXAMPLES := echo_server autobahn_client game_loop echo_bench

# Installs a tool from Debian's packages only when it is missing.
define c_need
	@command -v $(1) >/dev/null 2>&1 || { \
	  echo "== installing $(2)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; }
endef

c-tools: ## install cc, g++ and pkg-config from Debian when missing
	$(call c_need,$(CC),gcc)
	$(call c_need,$(CXX),g++)
	$(call c_need,pkg-config,pkg-config)

# --- library ------------------------------------------------------------------------------

# Copies $(1) to $(2) only when they differ, through a rename: a program being linked (or
# running) against the old file, in this make or a concurrent one, never sees it half-written.
define c_stage
	@cmp -s $(1) $(2) || { cp -f $(1) $(2).tmp.$$$$ && mv -f $(2).tmp.$$$$ $(2); }
endef

# The cargo outputs staged as an install would lay them out, so that programs linked here
# find `libtidewire.so.0` (the SONAME) through their rpath.
lib-c: ## build libtidewire.so and .a (release), staged in build/c/lib
	$(CARGO) build --release -p tidewire
	@mkdir -p $(C_LIB)
	$(call c_stage,$(C_CARGO_OUT)/libtidewire.so,$(C_LIB)/libtidewire.so.$(TW_VERSION))
	@ln -sfn libtidewire.so.$(TW_VERSION) $(C_LIB)/libtidewire.so.$(TW_MAJOR)
	@ln -sfn libtidewire.so.$(TW_MAJOR) $(C_LIB)/libtidewire.so
	$(call c_stage,$(C_CARGO_OUT)/libtidewire.a,$(C_LIB)/libtidewire.a)

# --- header -------------------------------------------------------------------------------

# cbindgen runs inside build.rs only with the `header` feature; `cargo check` is enough to
# run a build script. The output is deleted first so the script always runs again.
$(C_BUILD)/tidewire.h: FORCE
	@mkdir -p $(C_BUILD)
	@rm -f $@
	TIDEWIRE_HEADER_OUT=$@ $(CARGO) check -p tidewire --features header --quiet

header: $(C_BUILD)/tidewire.h ## regenerate include/tidewire.h (cbindgen)
	@cmp -s $< include/tidewire.h || { cp $< include/tidewire.h; echo "include/tidewire.h updated"; }

header-check: $(C_BUILD)/tidewire.h ## fail when include/tidewire.h differs from the sources
	@if diff -u include/tidewire.h $<; then \
	  echo "header: include/tidewire.h matches the sources"; \
	else \
	  echo "include/tidewire.h differs from what the sources generate: run 'make header'"; exit 1; \
	fi

.PHONY: FORCE
FORCE:

# --- examples -----------------------------------------------------------------------------

# Linked with the static library: the programs run from anywhere without LD_LIBRARY_PATH.
examples-c: c-tools lib-c ## C examples: build/bin/{echo_server,autobahn_client,game_loop,echo_bench}_c
	@mkdir -p $(BIN)
	@for ex in $(C_EXAMPLES); do \
	  echo "cc examples/c/$$ex.c -> $(BIN)/$${ex}_c"; \
	  $(CC) $(C_EXAMPLE_FLAGS) -Iinclude examples/c/$$ex.c -o $(BIN)/$${ex}_c \
	    $(C_LIB)/libtidewire.a $(C_LIBS_PRIVATE) -pthread || exit 1; \
	done

# --- tests --------------------------------------------------------------------------------

# Every test file twice: against the shared library (rpath to the staged copy) and against
# the static one; both under AddressSanitizer (leaks included) and UBSan.
test-c-unit: c-tools proxy-tools lib-c ## tests/c/test_*.c, shared and static, under ASan+UBSan (test_proxy through tests/proxies.py)
	@mkdir -p $(C_BUILD)/tests/shared $(C_BUILD)/tests/static $(C_BUILD)/results
	@for t in $(C_TEST_NAMES); do \
	  $(CC) $(C_WARN) $(C_SAN) -Iinclude -Itests/c tests/c/$$t.c -o $(C_BUILD)/tests/shared/$$t \
	    -L$(C_LIB) -ltidewire -Wl,-rpath,$(C_LIB) -pthread || exit 1; \
	  $(CC) $(C_WARN) $(C_SAN) -Iinclude -Itests/c tests/c/$$t.c -o $(C_BUILD)/tests/static/$$t \
	    $(C_LIB)/libtidewire.a $(C_LIBS_PRIVATE) -pthread || exit 1; \
	done
	@for b in $(C_BUILD)/tests/shared/test_basics $(C_BUILD)/tests/static/test_basics; do \
	  nm $$b | grep -q __asan_init || { echo "$$b: AddressSanitizer is not linked"; exit 1; }; \
	done
	@ldd $(C_BUILD)/tests/shared/test_basics | grep -q 'libtidewire.so.$(TW_MAJOR) => $(C_LIB)' \
	  || { echo "shared tests do not load $(C_LIB)/libtidewire.so.$(TW_MAJOR)"; exit 1; }
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TIDEWIRE_REQUIRE_PROXIES=1 \
	  tests/c/run_suite.sh $(C_BUILD)/results/unit.txt \
	  $(addprefix $(C_BUILD)/tests/shared/,$(C_TEST_NAMES)) \
	  $(addprefix $(C_BUILD)/tests/static/,$(C_TEST_NAMES))

# The header as C++ (C++11 and C++17), pedantic, with its static_asserts; then run.
test-c-cpp: c-tools lib-c ## tidewire.h compiled and run as C++11 and C++17
	@mkdir -p $(C_BUILD)/tests $(C_BUILD)/results
	@for std in c++11 c++17; do \
	  $(CXX) -std=$$std -Wall -Wextra -Wpedantic -Werror -Iinclude tests/c/header_cpp.cpp \
	    -o $(C_BUILD)/tests/header_$$std $(C_LIB)/libtidewire.a $(C_LIBS_PRIVATE) -pthread || exit 1; \
	done
	tests/c/run_suite.sh $(C_BUILD)/results/cpp.txt $(C_BUILD)/tests/header_c++11 $(C_BUILD)/tests/header_c++17

test-c-examples: examples-c ## smoke tests of the C example programs
	@mkdir -p $(C_BUILD)/results
	tests/c/examples_test.sh $(BIN) tests/c/data $(C_BUILD)/results/examples.txt

test-c-install: c-tools lib-c ## make install into a temporary prefix, link with pkg-config
	@mkdir -p $(C_BUILD)/results
	tests/c/install_test.sh "$(MAKE)" $(C_BUILD)/results/install.txt

# One line for the whole C suite at the end (CI reads it).
test-c: header-check test-c-unit test-c-cpp test-c-examples test-c-install ## C face: all of the above
	@cat $(C_BUILD)/results/unit.txt $(C_BUILD)/results/cpp.txt \
	  $(C_BUILD)/results/examples.txt $(C_BUILD)/results/install.txt \
	  | awk '{p += $$1; f += $$3} END {printf "C: %d passed, %d failed\n", p, f; exit f > 0}'

# --- install ------------------------------------------------------------------------------

install: lib-c ## install libs, tidewire.h, .pc, C++ header, CMake package (PREFIX, DESTDIR)
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(C_LIB)/libtidewire.so.$(TW_VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libtidewire.so.$(TW_VERSION) $(DESTDIR)$(PREFIX)/lib/libtidewire.so.$(TW_MAJOR)
	ln -sf libtidewire.so.$(TW_MAJOR) $(DESTDIR)$(PREFIX)/lib/libtidewire.so
	install -m 0644 $(C_LIB)/libtidewire.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 include/tidewire.h $(DESTDIR)$(PREFIX)/include/
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: tidewire' 'Description: WebSocket library (RFC 6455, RFC 7692), client and server' \
	  'Version: $(TW_VERSION)' 'Libs: -L$${libdir} -ltidewire' 'Libs.private: $(C_LIBS_PRIVATE)' \
	  'Cflags: -I$${includedir}' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tidewire.pc
