# The Rust face: example programs and the demo.

EXAMPLE_TARGETS += examples-rust

RUST_EXAMPLES := echo_server autobahn_client chat_server ws_client relay_server

.PHONY: examples-rust demo bench-echo bench-fanout bench-cluster test-bench-fanout-smoke

examples-rust: ## Rust examples: build/bin/{echo_server,autobahn_client,chat_server,ws_client}
	$(CARGO) build --release -p tidewire-net --examples
	@mkdir -p $(BIN)
	@# Through a rename, so a program running from build/bin (a soak) does not block the copy.
	@dir=$$($(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples; \
	for p in $(RUST_EXAMPLES); do \
	  cmp -s "$$dir/$$p" $(BIN)/$$p || { cp -f "$$dir/$$p" $(BIN)/$$p.tmp.$$$$ && mv -f $(BIN)/$$p.tmp.$$$$ $(BIN)/$$p; } || exit 1; \
	done

# A chat/echo page on http://127.0.0.1:8080/ (every open tab sees every message).
demo: examples-rust ## the demo chat page on http://127.0.0.1:8080/
	$(BIN)/chat_server --host 127.0.0.1 --port 8080

# Echo throughput of echo_server next to a raw TCP echo and tokio-tungstenite (issue 3).
bench-echo: examples-rust ## echo_server vs raw TCP echo vs tokio-tungstenite
	crates/net/bench/run.sh

# Fan-out (issue 14): one publisher, 1,000 and 10,000 verifying subscribers; publish vs a loop
# of send vs tokio-tungstenite's broadcast channel, with and without deflate (~3 minutes).
bench-fanout: ## fan-out to 1k/10k subscribers: publish vs send loop vs tokio-tungstenite
	crates/net/bench/fanout.sh

# Cluster (issue 14): publish-to-delivery latency between two nodes through a real Redis.
bench-cluster: redis-tools ## cluster bridge latency through Redis at 1,000 messages/s (p50, p99)
	crates/net/bench/cluster.sh

# The same with 200 subscribers and 1 s per case: a smoke test (not in TEST_TARGETS yet).
test-bench-fanout-smoke: ## fan-out benchmark, 200 subscribers, 1 s per case (smoke test)
	crates/net/bench/fanout.sh --quick

# Interop with the Python `websockets` package, permessage-deflate on both sides (issue 5),
# and the chat demo (topics) driven by its clients.
TEST_TARGETS += test-interop
.PHONY: test-interop
test-interop: examples-rust ## interop with the Python websockets package, deflate on both sides
	tests/interop/run.sh $(BIN)
