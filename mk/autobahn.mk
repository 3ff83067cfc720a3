# Autobahn|Testsuite (issue 6): every face, both roles, strict, compared with the committed
# expected verdicts in tests/autobahn/expected-*.json. The Rust face runs every case; the
# other faces leave out the deflate sub-groups that only re-run the same engine code. py is
# the Python asyncio API, pysync the blocking one (the same example programs, --blocking).

SLOW_TEST_TARGETS += test-autobahn
AUTOBAHN_FACES := rust:full c:quick cpp:quick py:quick pysync:quick

.PHONY: autobahn-setup test-autobahn

autobahn-setup: ## install wstest (Python 2.7 venv under build/) once per machine
	tests/autobahn/setup.sh

test-autobahn: autobahn-setup examples ## Autobahn|Testsuite, every face, both roles, vs expected-*.json
	tests/autobahn/run_matrix.sh $(BIN) $(AUTOBAHN_FACES)
