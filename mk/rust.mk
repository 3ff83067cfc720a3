# The Rust face: example programs and the demo.

EXAMPLE_TARGETS += examples-rust

RUST_EXAMPLES := echo_server autobahn_client chat_server ws_client

.PHONY: examples-rust demo bench-echo

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

# Interop with the Python `websockets` package, permessage-deflate on both sides (issue 5),
# and the chat demo (topics) driven by its clients.
TEST_TARGETS += test-interop
.PHONY: test-interop
test-interop: examples-rust ## interop with the Python websockets package, deflate on both sides
	tests/interop/run.sh $(BIN)
