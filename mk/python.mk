# Python face (bindings/python): a maturin-built abi3 wheel, tested against its installed copy
# in a virtualenv under build/python/ (created, and filled from PyPI, only when missing).
#
#   make test-python      lint the extension, build and install the wheel, stubtest, pytest
#   make lint-python      rustfmt and clippy over the extension, ruff check and format --check
#   make examples-python  build/bin/echo_server_py, build/bin/autobahn_client_py (asyncio API)
#                         and their _pysync twins (the same programs on the blocking API)
#   make bench-python     the echo benchmark of bindings/python/benchmarks

PY_DIR := bindings/python
PY_BUILD := $(abspath $(BUILD)/python)
PY_VENV := $(PY_BUILD)/venv
PY := $(PY_VENV)/bin/python
PYTHON3 ?= python3
# The extension has its own Cargo workspace; its build output stays under build/.
PY_CARGO_ENV := CARGO_TARGET_DIR=$(PY_BUILD)/target PYO3_PYTHON=$(PY)
PY_TEST_DEPS := "maturin>=1.9.4,<2" "pytest>=7" "pytest-timeout>=2" "websockets>=13" "mypy>=1.8"
PY_SOURCES := $(shell find $(PY_DIR)/src $(PY_DIR)/python -type f 2>/dev/null) \
	$(PY_DIR)/Cargo.toml $(PY_DIR)/pyproject.toml \
	$(shell find crates/net/src crates/proto/src -name '*.rs' 2>/dev/null)

TEST_TARGETS += test-python
EXAMPLE_TARGETS += examples-python

PY_RUFF := "ruff>=0.17,<0.18"

.PHONY: test-python lint-python python-venv python-install examples-python bench-python

$(PY_VENV)/.ready:
	$(PYTHON3) -m venv $(PY_VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(PY_TEST_DEPS)
	touch $@

# The virtualenv alone (other suites run their pytest in it).
python-venv: $(PY_VENV)/.ready ## the test virtualenv under build/python/venv

# Build the wheel and install it into the venv (rebuilt when a source changed).
$(PY_BUILD)/.installed: $(PY_VENV)/.ready $(PY_SOURCES)
	rm -rf $(PY_BUILD)/wheels
	cd $(PY_DIR) && $(PY_CARGO_ENV) $(PY_VENV)/bin/maturin build --release --quiet \
		--interpreter $(PY) --out $(PY_BUILD)/wheels
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall \
		$(PY_BUILD)/wheels/tidewire-*.whl
	touch $@

python-install: $(PY_BUILD)/.installed ## build the wheel and install it into the venv

# Ruff over the package, its tests and benchmarks (settings in bindings/python/pyproject.toml);
# its cache stays under build/.
$(PY_VENV)/.ruff: $(PY_VENV)/.ready
	$(PY) -m pip install --quiet --disable-pip-version-check $(PY_RUFF)
	touch $@

lint-python: $(PY_VENV)/.ruff ## lint the Python face: rustfmt, clippy, ruff check, ruff format --check
	cd $(PY_DIR) && $(CARGO) fmt -- --check
	cd $(PY_DIR) && $(PY_CARGO_ENV) $(CARGO) clippy --release --all-targets -- -D warnings
	cd $(PY_DIR) && RUFF_CACHE_DIR=$(PY_BUILD)/ruff-cache $(PY_VENV)/bin/ruff check .
	cd $(PY_DIR) && RUFF_CACHE_DIR=$(PY_BUILD)/ruff-cache $(PY_VENV)/bin/ruff format --check .

# Tests run from build/python so that `import tidewire` finds the installed wheel, never
# the source tree; stubtest checks the .pyi against the built module, mypy the package.
test-python: lint-python python-install proxy-tools ## Python face: lint, stubtest, mypy, pytest (proxy tests through tests/proxies.py)
	cd $(PY_BUILD) && $(PY) -m mypy.stubtest tidewire._tidewire
	cd $(PY_BUILD) && $(PY) -m mypy --no-incremental -p tidewire
	cd $(PY_BUILD) && TIDEWIRE_REQUIRE_PROXIES=1 $(PY) -m pytest -p no:cacheprovider -W error \
		--rootdir $(abspath $(PY_DIR)) -c $(abspath $(PY_DIR))/pyproject.toml \
		$(abspath $(PY_DIR))/tests

examples-python: python-install ## build/bin/{echo_server,autobahn_client}_{py,pysync}
	@mkdir -p $(BIN)
	@for prog in echo_server autobahn_client; do \
		printf '#!/bin/sh\nexec "%s" "%s" "$$@"\n' "$(PY)" \
			"$(abspath examples/python)/$$prog.py" > $(BIN)/$${prog}_py; \
		printf '#!/bin/sh\nexec "%s" "%s" --blocking "$$@"\n' "$(PY)" \
			"$(abspath examples/python)/$$prog.py" > $(BIN)/$${prog}_pysync; \
		chmod +x $(BIN)/$${prog}_py $(BIN)/$${prog}_pysync; \
	done

bench-python: python-install ## echo benchmark against websockets and picows
	$(PY) -m pip install --quiet --disable-pip-version-check picows
	$(PY) $(PY_DIR)/benchmarks/echo_bench.py
