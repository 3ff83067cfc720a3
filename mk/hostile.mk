# Hostile peers (issues 12 and 16): tests/hostile attacks the echo server of every face over
# raw sockets (no WebSocket library on the attacking side) and checks that each one stays up,
# keeps echoing, and keeps its memory and accepting bounded. Runs in the Python test venv
# (mk/python.mk); HOSTILE_FACES=rust,c limits it to some faces.

SLOW_TEST_TARGETS += test-hostile

.PHONY: test-hostile

test-hostile: examples python-venv ## hostile peers on raw sockets against every face's echo server
	cd $(BUILD) && TIDEWIRE_BIN=$(BIN) TIDEWIRE_HOSTILE_REPORT=$(abspath $(BUILD))/hostile-report.md $(PY) -m pytest -p no:cacheprovider -W error \
		--rootdir $(abspath tests/hostile) $(abspath tests/hostile)
