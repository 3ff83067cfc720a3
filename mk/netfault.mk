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

.PHONY: test-netfault test-netfault-long test-netfault-proxy netfault-tools

# iproute2's `ip` makes the namespaces; installed when missing (root only: otherwise the
# script says SKIPPED).
netfault-tools: ## install iproute2 when missing (root only)
	@command -v ip >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
	  echo "== installing iproute2"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; }

test-netfault: examples-rust netfault-tools ## a 3 s link cut between network namespaces
	CARGO="$(CARGO)" ECHO_SERVER=$(BIN)/echo_server tests/netfault/linkcut.sh \
		--down 3 --ping-ms 400 --idle-ms 1500

test-netfault-long: examples-rust netfault-tools ## the link down for 30 s (keepalive, idle timeout)
	CARGO="$(CARGO)" ECHO_SERVER=$(BIN)/echo_server tests/netfault/linkcut.sh \
		--down 30 --ping-ms 3000 --idle-ms 10000

test-netfault-proxy: ## only the fault-injecting proxy tests (crates/net/tests/faults.rs)
	$(CARGO) test -p tidewire-net --test faults -- --nocapture
