# Network faults (issue 16, section 4).
#
#   crates/net/tests/faults.rs   a tidewire client and server through the fault-injecting proxy
#                                of tests/netfault/proxy.rs (latency, bandwidth cap, tiny
#                                segments, a stalled direction, a reset mid-message,
#                                half-close); part of `cargo test --workspace` (test-rust)
#   tests/netfault/linkcut.sh    a real link cut between two network namespaces (root only;
#                                prints SKIPPED otherwise)
#
#   make test-netfault        the short link cut (3 s down, short keepalive); in `make test`
#   make test-netfault-long   the link down for 30 s (keepalive: ping 3 s, idle timeout 10 s)
#   make test-netfault-proxy  only the proxy tests

TEST_TARGETS += test-netfault

.PHONY: test-netfault test-netfault-long test-netfault-proxy

test-netfault: examples-rust
	CARGO="$(CARGO)" ECHO_SERVER=$(BIN)/echo_server tests/netfault/linkcut.sh \
		--down 3 --ping-ms 400 --idle-ms 1500

test-netfault-long: examples-rust
	CARGO="$(CARGO)" ECHO_SERVER=$(BIN)/echo_server tests/netfault/linkcut.sh \
		--down 30 --ping-ms 3000 --idle-ms 10000

test-netfault-proxy:
	$(CARGO) test -p tidewire-net --test faults -- --nocapture
