// tidewire::Error: one exception type carrying the C status and the library's detail text.
#include "support.hpp"

#include <type_traits>

using tidewire::Error;

static_assert(std::is_base_of_v<std::runtime_error, Error>);
static_assert(std::is_nothrow_copy_constructible_v<Error> || std::is_copy_constructible_v<Error>);

TEST_CASE("Error carries the status, the status name and the detail in what()") {
    const Error e(TW_STATUS_STALE_ID, "send_text", "connection 7 ended");
    CHECK(e.status() == TW_STATUS_STALE_ID);
    CHECK(e.detail() == "connection 7 ended");
    CHECK(std::string(e.what()) == "send_text: stale id: connection 7 ended");
    CHECK(std::string(tidewire::status_str(TW_STATUS_OK)) == "ok");
}

TEST_CASE("a failed C call throws Error with its status and tw_last_error text") {
    tidewire::Context ctx;
    try {
        (void)ctx.connect("http://example.invalid/");
        FAIL("connect to an http:// URL did not throw");
    } catch (const Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_URL);
        CHECK_FALSE(e.detail().empty());
        CHECK(std::string(e.what()).find("connect: ") == 0);
    }
}

TEST_CASE("Error is caught as std::runtime_error and as std::exception") {
    tidewire::Config config;
    CHECK_THROWS_AS(config.max_message_size(0), std::runtime_error);
    CHECK_THROWS_AS(config.max_message_size(0), std::exception);
    CHECK_THROWS_WITH_AS(config.max_handshake_headers(1), doctest::Contains("invalid argument"), Error);
}

TEST_CASE("a stale connection id is an Error, not undefined behaviour") {
    tidewire::Context ctx;
    const tidewire::Connection bogus(ctx.handle(), 0x0123456789abcdefULL);
    try {
        (void)bogus.send_text("hello");
        FAIL("send on a bogus id did not throw");
    } catch (const Error &e) {
        CHECK(e.status() == TW_STATUS_STALE_ID);
    }
    CHECK_THROWS_AS((void)bogus.is_open(), Error);
}

TEST_CASE("the library version matches the header") {
    const std::string expected = std::to_string(TW_VERSION_MAJOR) + "." + std::to_string(TW_VERSION_MINOR) + "." +
                                 std::to_string(TW_VERSION_PATCH);
    CHECK(tidewire::version() == expected);
}
