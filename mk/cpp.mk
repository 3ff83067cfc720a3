# The C++ face (issue 8): bindings/cpp/include/tidewire.hpp (header-only C++17 over
# tidewire.h), its doctest suite, the C++ examples and the CMake package. Included by the root
# Makefile after mk/c.mk, whose library build it uses (lib-c, $(C_LIB), $(C_LIBS_PRIVATE)).
#
#   make examples-cpp   build/bin/{echo_server_cpp,autobahn_client_cpp,chat_server_cpp}
#   make test-cpp       the doctest suite (bindings/cpp/tests, one file per class) as C++17
#                       under ASan+UBSan and as C++20; the programs under strict warnings with
#                       g++, and everything through clang++ too when it is installed; example
#                       smoke tests; the CMake package (find_package and add_subdirectory).
#                       Ends with one line,
#                       "cpp: N passed, M failed".
#   make install        (mk/c.mk) also installs tidewire.hpp and lib/cmake/tidewire/

TEST_TARGETS += test-cpp
EXAMPLE_TARGETS += examples-cpp

.PHONY: cpp-tools examples-cpp test-cpp test-cpp-unit test-cpp-compilers test-cpp-examples \
        test-cpp-package cpp-test-bins install-cpp

CPP_DIR := bindings/cpp
CPP_BUILD := $(abspath $(BUILD)/cpp)
CPP_INC := -Iinclude -I$(CPP_DIR)/include
CPP_WARN := -Wall -Wextra -Wpedantic -Werror
CPP_SAN := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
CPP_TEST_DATA := -DTIDEWIRE_TEST_DATA='"$(abspath tests/c/data)"'
CPP_TEST_NAMES := $(basename $(notdir $(wildcard $(CPP_DIR)/tests/*.cpp)))
CPP_HEADERS := $(CPP_DIR)/include/tidewire.hpp include/tidewire.h
CPP_TEST_DEPS := $(CPP_HEADERS) $(CPP_DIR)/tests/support.hpp
CPP_EXAMPLES := echo_server autobahn_client chat_server
CPP_EXAMPLE_FLAGS := -std=c++17 $(CPP_WARN) -O2 -g
CPP_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CLANGXX ?= clang++

# Installs a Debian package when the file or command $(1) is missing.
define cpp_need
	@{ command -v $(1) >/dev/null 2>&1 || [ -e $(1) ]; } || { \
	  echo "== installing $(2)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; }
endef

cpp-tools: c-tools ## install cmake and doctest from Debian when missing
	$(call cpp_need,cmake,cmake)
	$(call cpp_need,/usr/include/doctest/doctest.h,doctest-dev)

# --- examples -----------------------------------------------------------------------------

# Linked with the static library, like the C examples: they run from anywhere.
examples-cpp: c-tools lib-c ## C++ examples: build/bin/{echo_server,autobahn_client,chat_server}_cpp
	@mkdir -p $(BIN)
	@for ex in $(CPP_EXAMPLES); do \
	  echo "c++ examples/cpp/$$ex.cpp -> $(BIN)/$${ex}_cpp"; \
	  $(CXX) $(CPP_EXAMPLE_FLAGS) $(CPP_INC) examples/cpp/$$ex.cpp -o $(BIN)/$${ex}_cpp \
	    $(C_LIB)/libtidewire.a $(C_LIBS_PRIVATE) -pthread || exit 1; \
	done

# --- the doctest suite --------------------------------------------------------------------

CPP_ASAN_OBJS := $(addprefix $(CPP_BUILD)/asan17/,$(addsuffix .o,$(CPP_TEST_NAMES)))
CPP_CXX20_OBJS := $(addprefix $(CPP_BUILD)/cxx20/,$(addsuffix .o,$(CPP_TEST_NAMES)))

$(CPP_BUILD)/asan17/%.o: $(CPP_DIR)/tests/%.cpp $(CPP_TEST_DEPS)
	@mkdir -p $(@D)
	$(CXX) -std=c++17 $(CPP_WARN) $(CPP_SAN) $(CPP_INC) $(CPP_TEST_DATA) -c $< -o $@

$(CPP_BUILD)/cxx20/%.o: $(CPP_DIR)/tests/%.cpp $(CPP_TEST_DEPS)
	@mkdir -p $(@D)
	$(CXX) -std=c++20 $(CPP_WARN) -O0 -g $(CPP_INC) $(CPP_TEST_DATA) -c $< -o $@

# Both against the shared library staged by lib-c (rpath), like the C suite.
$(CPP_BUILD)/tests_asan17: $(CPP_ASAN_OBJS) $(C_LIB)/libtidewire.so
	$(CXX) -fsanitize=address,undefined $(CPP_ASAN_OBJS) -o $@ -L$(C_LIB) -ltidewire -Wl,-rpath,$(C_LIB) -pthread

$(CPP_BUILD)/tests_cxx20: $(CPP_CXX20_OBJS) $(C_LIB)/libtidewire.so
	$(CXX) $(CPP_CXX20_OBJS) -o $@ -L$(C_LIB) -ltidewire -Wl,-rpath,$(C_LIB) -pthread

$(CPP_BUILD)/ws_check: $(CPP_DIR)/tests/tools/ws_check.cpp $(CPP_HEADERS) $(C_LIB)/libtidewire.a
	@mkdir -p $(@D)
	$(CXX) -std=c++17 $(CPP_WARN) -O1 -g $(CPP_INC) $< -o $@ $(C_LIB)/libtidewire.a $(C_LIBS_PRIVATE) -pthread

cpp-test-bins: $(CPP_BUILD)/tests_asan17 $(CPP_BUILD)/tests_cxx20 $(CPP_BUILD)/ws_check ## build the C++ test binaries only

# The objects compile in parallel (a sub-make with -j); leaks are checked at exit.
test-cpp-unit: cpp-tools proxy-tools lib-c ## doctest suite: C++17 under ASan+UBSan, and C++20 (test_proxy through tests/proxies.py)
	@$(MAKE) --no-print-directory -j$(CPP_JOBS) cpp-test-bins
	@nm $(CPP_BUILD)/tests_asan17 | grep -q __asan_init || { echo "tests_asan17: AddressSanitizer is not linked"; exit 1; }
	@mkdir -p $(CPP_BUILD)/results
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TIDEWIRE_REQUIRE_PROXIES=1 $(CPP_DIR)/tests/run_doctest.sh $(CPP_BUILD)/results/unit.txt $(CPP_BUILD)/tests_asan17 $(CPP_BUILD)/tests_cxx20

# The programs under a strict warning set with g++ (C++17 and C++20), and everything through
# clang++ as well when it is installed.
test-cpp-compilers: cpp-tools ## strict warnings with g++ (C++17, C++20), and clang++ if installed
	@mkdir -p $(CPP_BUILD)/results
	CXX=$(CXX) CLANGXX=$(CLANGXX) $(CPP_DIR)/tests/compilers_test.sh $(CPP_BUILD)/results/compilers.txt $(CPP_TEST_DATA)

test-cpp-examples: examples-cpp ## smoke tests of the C++ example programs
	@$(MAKE) --no-print-directory $(CPP_BUILD)/ws_check
	@mkdir -p $(CPP_BUILD)/results
	$(CPP_DIR)/tests/examples_test.sh $(BIN) $(CPP_BUILD)/ws_check $(abspath tests/c/data) $(CPP_BUILD)/results/examples.txt

test-cpp-package: cpp-tools lib-c ## CMake package: find_package and add_subdirectory
	@mkdir -p $(CPP_BUILD)/results
	$(CPP_DIR)/tests/package_test.sh "$(MAKE)" $(CPP_BUILD)/results/package.txt

# One line for the whole C++ suite at the end (CI reads it).
test-cpp: test-cpp-unit test-cpp-compilers test-cpp-examples test-cpp-package ## C++ face: all of the above
	@cat $(CPP_BUILD)/results/unit.txt $(CPP_BUILD)/results/compilers.txt \
	  $(CPP_BUILD)/results/examples.txt $(CPP_BUILD)/results/package.txt \
	  | awk '{p += $$1; f += $$3} END {printf "cpp: %d passed, %d failed\n", p, f; exit f > 0}'

# --- install (a prerequisite of mk/c.mk's install) ----------------------------------------

install: install-cpp

install-cpp: ## install tidewire.hpp and lib/cmake/tidewire/ only (part of install)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/cmake/tidewire
	install -m 0644 $(CPP_DIR)/include/tidewire.hpp $(DESTDIR)$(PREFIX)/include/
	install -m 0644 $(CPP_DIR)/cmake/tidewireConfig.cmake $(DESTDIR)$(PREFIX)/lib/cmake/tidewire/
	sed 's/@TW_VERSION@/$(TW_VERSION)/' $(CPP_DIR)/cmake/tidewireConfigVersion.cmake.in \
	  > $(DESTDIR)$(PREFIX)/lib/cmake/tidewire/tidewireConfigVersion.cmake
