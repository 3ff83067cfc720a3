// tidewire::Config: a move-only owner of tw_config with checked fluent setters.
#include "support.hpp"

#include <type_traits>
#include <utility>

using namespace std::chrono_literals;
using tidewire::Config;

static_assert(!std::is_copy_constructible_v<Config>);
static_assert(!std::is_copy_assignable_v<Config>);
static_assert(std::is_nothrow_move_constructible_v<Config>);
static_assert(std::is_nothrow_move_assignable_v<Config>);
static_assert(std::is_nothrow_swappable_v<Config>);

TEST_CASE("Config owns its handle and moves it") {
    Config a;
    tw_config *raw = a.handle();
    REQUIRE(raw != nullptr);
    Config b(std::move(a));
    CHECK(b.handle() == raw);
    CHECK(a.handle() == nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    Config c;
    c = std::move(b);
    CHECK(c.handle() == raw);
    tw_config *released = c.release();
    CHECK(released == raw);
    CHECK(c.handle() == nullptr);
    tw_config_free(released);
}

TEST_CASE("Config setters chain and a context takes the settings") {
    Config config;
    config.max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .max_handshake_bytes(4096)
        .max_handshake_headers(32)
        .handshake_timeout(2s)
        .connect_timeout(2s)
        .close_timeout(1s)
        .ping_interval(0ms)
        .idle_timeout(0ms)
        .high_water_mark(64 * 1024)
        .low_water_mark(16 * 1024)
        .max_buffered(1 << 20)
        .max_connections(100)
        .receive_buffer_size(64 * 1024)
        .sender_queue_limit(1 << 20)
        .resolver_threads(1);
    tidewire::Context ctx(config);
    CHECK(ctx.connection_count() == 0);
}

TEST_CASE("Config refuses values out of range with TW_STATUS_INVALID_ARGUMENT") {
    Config config;
    try {
        config.receive_buffer_size(1);
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_ARGUMENT);
    }
    CHECK_THROWS_AS(config.handshake_timeout(-1ms), tidewire::Error);
    CHECK_THROWS_AS(config.resolver_threads(0), tidewire::Error);
}

TEST_CASE("a context refuses a low water mark above the high water mark") {
    Config config;
    config.high_water_mark(1000).low_water_mark(2000);
    try {
        tidewire::Context ctx(config);
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_ARGUMENT);
    }
}

TEST_CASE("using a moved-from Config throws instead of crashing") {
    Config a;
    Config b(std::move(a));
    CHECK_THROWS_AS(a.max_message_size(10), tidewire::Error);  // NOLINT(bugprone-use-after-move)
}
