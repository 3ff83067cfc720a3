# The game loop of issue 15 section 6: examples/c/game_client.c (SDL2) against
# examples/rust/relay_server.rs, headless, in both network modes (poll per frame; the
# background I/O thread), without and with a wss:// reconnect storm. Included by the root
# Makefile after mk/c.mk (lib-c, $(C_LIB)) and mk/rust.mk (examples-rust).
#
#   make game-client                       build/bin/game_client_c
#   make game-loop [GAME_SECONDS=10] [GAME_STORM=32]
#                                          the four runs, one frame-time line each
#   make test-game                         the same for 2 s each (part of `make test`)

TEST_TARGETS += test-game

.PHONY: game-tools game-client game-loop test-game

GAME_SECONDS ?= 10
GAME_STORM ?= 32
GAME_FLAGS := -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -g

game-tools: c-tools ## install libsdl2-dev from Debian when missing
	@pkg-config --exists sdl2 2>/dev/null || { \
	  echo "== installing libsdl2-dev"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsdl2-dev >/dev/null; }

game-client: game-tools lib-c ## build/bin/game_client_c (SDL2, static libtidewire)
	@mkdir -p $(BIN)
	$(CC) $(GAME_FLAGS) -Iinclude $$(pkg-config --cflags sdl2) examples/c/game_client.c \
	  -o $(BIN)/game_client_c $(C_LIB)/libtidewire.a $(C_LIBS_PRIVATE) $$(pkg-config --libs sdl2) -pthread

game-loop: game-client examples-rust ## the game loop headless for GAME_SECONDS in both modes, with and without a wss storm: frame times
	tests/c/game_test.sh $(BIN) tests/c/data $(GAME_SECONDS) $(GAME_STORM)

test-game: game-client examples-rust ## short game loop run (2 s per configuration)
	@mkdir -p $(C_BUILD)/results
	tests/c/game_test.sh $(BIN) tests/c/data 2 8 $(C_BUILD)/results/game.txt
