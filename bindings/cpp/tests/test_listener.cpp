// tidewire::Listener: port 0, the bound address, close, stale ids.
#include "support.hpp"

#include <type_traits>

using tidewire::Listener;

static_assert(std::is_trivially_copyable_v<Listener>);

TEST_CASE("a listener on port 0 reports the real port and address") {
    tidewire::Context ctx;
    const Listener l = ctx.listen("127.0.0.1", 0);
    CHECK(l);
    CHECK(l.port() != 0);
    CHECK(l.local_address() == "127.0.0.1:" + std::to_string(l.port()));
}

TEST_CASE("a listener on ::1 reports a bracketed address") {
    tidewire::Context ctx;
    Listener l;
    try {
        l = ctx.listen("::1", 0);
    } catch (const tidewire::Error &e) {
        MESSAGE("no IPv6 loopback here: " << e.what());
        return;
    }
    CHECK(l.local_address() == "[::1]:" + std::to_string(l.port()));
}

TEST_CASE("a closed listener is stale and takes no connections") {
    tidewire::Context ctx;
    const Listener l = ctx.listen("127.0.0.1", 0);
    const auto port = l.port();
    l.close();
    try {
        (void)l.port();
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_STALE_ID);
    }
    CHECK_THROWS_AS(l.close(), tidewire::Error);
    tidewire::Context client;
    (void)client.connect("ws://127.0.0.1:" + std::to_string(port) + "/");
    bool failed = false;
    REQUIRE(tw_test::drive(
        {&ctx, &client},
        [&](size_t which, const tidewire::Event &ev) {
            CHECK_FALSE((which == 0 && std::holds_alternative<tidewire::OpenEvent>(ev)));
            failed |= which == 1 && std::holds_alternative<tidewire::ErrorEvent>(ev);
        },
        [&] { return failed; }));
}

TEST_CASE("listening on a port in use is an Error with TW_STATUS_IO") {
    tidewire::Context ctx;
    const Listener l = ctx.listen("127.0.0.1", 0);
    try {
        (void)ctx.listen("127.0.0.1", l.port());
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_IO);
        CHECK_FALSE(e.detail().empty());
    }
}

TEST_CASE("listeners compare by context and id") {
    tidewire::Context ctx;
    const Listener a = ctx.listen("127.0.0.1", 0);
    const Listener b = ctx.listen("127.0.0.1", 0);
    CHECK(a != b);
    CHECK(a == Listener(ctx.handle(), a.id()));
    CHECK(std::hash<Listener>()(a) == std::hash<Listener>()(Listener(ctx.handle(), a.id())));
    CHECK_FALSE(Listener());
}
