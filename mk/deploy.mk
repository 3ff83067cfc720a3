# Behind a reverse proxy (issue 14): nginx in front of two chat_server processes joined
# through Redis (examples/deploy/). Included by the root Makefile.

TEST_TARGETS += test-deploy

.PHONY: deploy-tools chat-cluster test-deploy

deploy-tools: redis-tools ## install nginx (and redis-server) from Debian when missing
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  echo "== installing nginx"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }

chat-cluster: deploy-tools examples-rust ## Redis, two chat servers and nginx on one machine; prints the URL (PORT=8080)
	PATH="$$PATH:/usr/sbin" examples/deploy/chat_cluster.sh $(BIN)

test-deploy: deploy-tools examples-rust ## clients through nginx reach both chat_server processes; lines cross through Redis
	PATH="$$PATH:/usr/sbin" tests/deploy/run.sh $(BIN)
