# Soak (issue 16): thousands of tidewire client connections (tests/soak, spread over 8
# loopback source addresses, deflate on a third, TLS on a tenth) echo verified messages of
# random sizes through the Rust echo_server (a ws:// and a wss:// process) for a while.
# Fails on any lost or corrupted message, any dropped connection, or a server whose memory
# grows by more than 5 % after warm-up; prints the echo latency (p50, p99, max).
#
#   make soak         10,000 connections for 10 minutes (SOAK_CONNS, SOAK_SECONDS)
#   make test-soak    the short variant in `make test`: 1,000 connections for 60 s (30 s warm-up);
#                     its memory check allows 10 % (the servers' buffers still reach their
#                     high-water marks in so short a run)

SLOW_TEST_TARGETS += test-soak

SOAK_CONNS ?= 10000
SOAK_SECONDS ?= 600
SOAK_BIN = $(abspath $(or $(CARGO_TARGET_DIR),target))/release/tidewire-soak

.PHONY: soak test-soak soak-build

soak-build: ## build the soak client (tests/soak)
	$(CARGO) build --release -p tidewire-soak

soak: examples-rust soak-build ## 10,000 connections for 10 minutes (SOAK_CONNS, SOAK_SECONDS)
	tests/soak/run.sh $(BIN) $(SOAK_BIN) --conns $(SOAK_CONNS) --seconds $(SOAK_SECONDS) --warmup 60

test-soak: examples-rust soak-build ## the short soak of make test: 1,000 connections for 60 s
	tests/soak/run.sh $(BIN) $(SOAK_BIN) --conns 1000 --seconds 60 --warmup 30 \
		--rss-tolerance 10
