// tidewire::ReconnectPolicy, ConnectOptions::reconnect, ReconnectingEvent,
// Connection::stop_reconnecting: a server dropped and re-created on the same port, a 403
// not retried, a 503's Retry-After honoured, stopping mid-backoff, the ranges.
#include "support.hpp"

#include <optional>

using namespace std::chrono_literals;
using tidewire::ConnectOptions;
using tidewire::ReconnectPolicy;

namespace {

ConnectOptions reconnecting(std::chrono::milliseconds initial, std::chrono::milliseconds max) {
    ConnectOptions co;
    co.reconnect(ReconnectPolicy{initial, max, 0, 10s});
    return co;
}

}  // namespace

TEST_CASE("a server dropped and re-created on the same port: the same Connection opens again") {
    std::optional<tidewire::Context> server(std::in_place);
    const uint16_t port = server->listen("127.0.0.1", 0).port();
    const std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/";
    tidewire::Context client;
    int marker = 0;
    const tidewire::Connection conn = client.connect(url, reconnecting(20ms, 80ms));

    int opens = 0;
    std::vector<tidewire::ReconnectingEvent> attempts;
    client.on_open([&](const tidewire::OpenEvent &e) {
        CHECK(e.conn == conn);
        if (opens == 0) {
            e.conn.set_userdata(&marker);
        } else {
            CHECK(e.userdata == &marker);
        }
        ++opens;
    });
    client.on_reconnecting([&](const tidewire::ReconnectingEvent &e) {
        CHECK(e.conn == conn);
        CHECK(e.userdata == &marker);
        attempts.push_back(e);
        attempts.back().message = {};
    });
    client.on_close([&](const tidewire::CloseEvent &) { FAIL("no CloseEvent while reconnecting"); });
    client.on_error([&](const tidewire::ErrorEvent &) { FAIL("no ErrorEvent while reconnecting"); });

    REQUIRE(tw_test::drive({&*server, &client}, [&] { return opens == 1; }));
    server.reset();  // every socket closed at once
    REQUIRE(tw_test::drive({&client}, [&] { return attempts.size() >= 3; }));
    CHECK(attempts[0].close_code == 1006);
    CHECK(attempts[0].status == TW_STATUS_OK);
    for (size_t i = 0; i < attempts.size(); ++i) {
        CHECK(attempts[i].attempt == i + 1);
        const auto ceiling = std::min<std::chrono::milliseconds>(20ms * (1 << i), 80ms);
        CHECK(attempts[i].delay <= ceiling);
        if (i > 0) CHECK(attempts[i].status == TW_STATUS_CONNECT);
    }

    server.emplace();
    CHECK(server->listen("127.0.0.1", port).port() == port);
    REQUIRE(tw_test::drive({&*server, &client}, [&] { return opens == 2; }));
    CHECK(conn.is_open());

    // The application's close is final.
    bool closed = false;
    client.on_close([&](const tidewire::CloseEvent &e) { closed = e.conn == conn; });
    conn.close(1000, "bye");
    REQUIRE(tw_test::drive({&*server, &client}, [&] { return closed; }));
    const size_t seen = attempts.size();
    (void)client.poll(100ms);
    CHECK(attempts.size() == seen);
}

TEST_CASE("a 403 is final; a 503 waits its Retry-After; stop_reconnecting ends the wait") {
    tidewire::ListenOptions lo;
    lo.handle_requests(true);
    tw_test::Pair p(lo);
    uint16_t status = 403;
    int requests = 0;
    p.server.on_request([&](const tidewire::RequestEvent &e) {
        ++requests;
        e.conn.reject(status, {{"Retry-After", "1"}});
    });

    std::optional<tidewire::Status> ended;
    std::optional<tidewire::ReconnectingEvent> seen;
    p.client.on_error([&](const tidewire::ErrorEvent &e) { ended = e.status; });
    p.client.on_reconnecting([&](const tidewire::ReconnectingEvent &e) {
        seen = e;
        seen->message = {};
        e.conn.stop_reconnecting();
    });

    (void)p.client.connect(p.url(), reconnecting(10ms, 20ms));
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return ended.has_value(); }));
    CHECK(*ended == TW_STATUS_HANDSHAKE_REJECTED);
    CHECK_FALSE(seen.has_value());
    CHECK(requests == 1);

    status = 503;
    ended.reset();
    const auto t0 = std::chrono::steady_clock::now();
    (void)p.client.connect(p.url(), reconnecting(10ms, 20ms));
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return ended.has_value(); }));
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    REQUIRE(seen.has_value());
    CHECK(seen->attempt == 1);
    CHECK(seen->delay == 1000ms);  // Retry-After: 1 over a 10 ms ceiling
    CHECK(seen->status == TW_STATUS_HANDSHAKE_REJECTED);
    CHECK(seen->http_status == 503);
    CHECK(*ended == TW_STATUS_ABORTED);
    (void)tw_test::drive({&p.server, &p.client}, [] { return false; }, 300ms);
    CHECK(requests == 2);
    CHECK(p.client.connection_count() == 0);
}

TEST_CASE("ReconnectPolicy ranges are the library's") {
    ConnectOptions co;
    CHECK_NOTHROW(co.reconnect(ReconnectPolicy{}));
    CHECK_NOTHROW(co.no_reconnect());
    CHECK_THROWS_AS(co.reconnect(ReconnectPolicy{0ms, 10ms, 0, 1s}), tidewire::Error);
    CHECK_THROWS_AS(co.reconnect(ReconnectPolicy{100ms, 50ms, 0, 1s}), tidewire::Error);
    CHECK_THROWS_AS(co.reconnect(ReconnectPolicy{100ms, 200ms, 0, -1ms}), tidewire::Error);
}
