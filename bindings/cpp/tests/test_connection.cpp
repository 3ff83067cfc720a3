// tidewire::Connection: echo in both roles, every kind of send, close, fragments, ping,
// back-pressure as a return value, user data, upgrade requests, stale ids.
#include "support.hpp"

#include <type_traits>

using namespace std::chrono_literals;
using tidewire::Connection;

static_assert(std::is_trivially_copyable_v<Connection>);
static_assert(std::is_nothrow_default_constructible_v<Connection>);
static_assert(sizeof(Connection) == sizeof(void *) + sizeof(uint64_t));

// Echoes every message on `ctx` (the echo server of the docs/DESIGN.md contract, in callbacks).
static void echo_on(tidewire::Context &ctx) {
    ctx.on_message([](const tidewire::MessageEvent &m) { m.conn.send(m.kind, m.data); });
}

TEST_CASE("echo: the C++ client gets back text and binary from the C++ server") {
    tw_test::Pair p;
    echo_on(p.server);
    const auto client = p.client.connect(p.url());
    std::vector<std::pair<tidewire::MessageKind, std::string>> got;
    const std::string binary("\x00\xff\x10", 3);
    p.client.on_open([&](const tidewire::OpenEvent &o) {
        CHECK(o.conn == client);
        CHECK(o.conn.is_open());
        o.conn.send_text("héllo");
        o.conn.send_binary(binary);
        o.conn.send_text("");
    });
    p.client.on_message([&](const tidewire::MessageEvent &m) { got.emplace_back(m.kind, m.data.to_string()); });
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return got.size() == 3; }));
    CHECK(got[0] == std::make_pair(tidewire::MessageKind::text, std::string("héllo")));
    CHECK(got[1] == std::make_pair(tidewire::MessageKind::binary, binary));
    CHECK(got[2] == std::make_pair(tidewire::MessageKind::text, std::string()));
}

TEST_CASE("echo: the C++ server gets back what it sends to a C++ client that echoes") {
    tw_test::Pair p;
    echo_on(p.client);
    std::string got;
    p.server.on_open([](const tidewire::OpenEvent &o) { o.conn.send_text("from the server"); });
    p.server.on_message([&](const tidewire::MessageEvent &m) { got = m.text(); });
    (void)p.client.connect(p.url());
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return !got.empty(); }));
    CHECK(got == "from the server");
}

TEST_CASE("a large message survives the round trip unchanged") {
    tw_test::Pair p;
    echo_on(p.server);
    std::vector<uint8_t> big(3 * 1024 * 1024);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31 + 7);
    std::vector<uint8_t> got;
    p.client.on_open([&](const tidewire::OpenEvent &o) { o.conn.send_binary(big); });
    p.client.on_message([&](const tidewire::MessageEvent &m) { got = m.data.to_vector(); });
    (void)p.client.connect(p.url());
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return !got.empty(); }));
    CHECK(got == big);
}

TEST_CASE("close: code and reason reach the peer; a second close returns false") {
    tw_test::Pair p;
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    CHECK(c.close(4321, "bye now"));
    CHECK_FALSE(c.close());
    CHECK_THROWS_AS(c.send_text("too late"), tidewire::Error);
    std::optional<tidewire::CloseEvent> at_server;
    std::string reason;
    bool client_closed = false;
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (const auto *e = std::get_if<tidewire::CloseEvent>(&ev)) {
                if (which == 0) {
                    at_server = *e;
                    reason = std::string(e->reason);
                } else {
                    client_closed = true;
                }
            }
        },
        [&] { return at_server && client_closed; }));
    CHECK(at_server->conn == s);
    CHECK(at_server->code == 4321);
    CHECK(reason == "bye now");
    CHECK(at_server->clean);
    // Both ids are stale now: an Error, never a crash.
    try {
        (void)s.is_open();
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_STALE_ID);
    }
}

TEST_CASE("close refuses codes that may not be sent") {
    tw_test::Pair p;
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    try {
        (void)c.close(1005);
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_CLOSE_CODE);
    }
    CHECK(c.is_open());
}

TEST_CASE("sending before the open is refused with TW_STATUS_NOT_OPEN") {
    tw_test::Pair p;
    const auto c = p.client.connect(p.url());
    try {
        (void)c.send_text("early");
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_NOT_OPEN);
    }
}

TEST_CASE("invalid UTF-8 in a text message is an Error, and nothing is sent") {
    tw_test::Pair p;
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    CHECK_THROWS_AS(c.send_text(std::string_view("\xc3\x28", 2)), tidewire::Error);
    CHECK(c.is_open());
}

TEST_CASE("fragments make one message at the peer") {
    tw_test::Pair p;
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    c.begin_message(tidewire::MessageKind::text);
    CHECK_THROWS_AS(c.send_text("whole"), tidewire::Error);  // a message is in progress
    c.send_fragment("one, ", false);
    c.send_fragment("two, ", false);
    c.send_fragment("three", true);
    std::string got;
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev); m && which == 0) got = m->text();
        },
        [&] { return !got.empty(); }));
    CHECK(got == "one, two, three");
}

TEST_CASE("ping: the peer sees the ping and we get the pong") {
    tw_test::Pair p;
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    CHECK_FALSE(c.latency().has_value());
    c.ping("are you there");
    std::string ping, pong;
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (const auto *e = std::get_if<tidewire::PingEvent>(&ev); e && which == 0) ping = e->data.to_string();
            if (const auto *e = std::get_if<tidewire::PongEvent>(&ev); e && which == 1) pong = e->data.to_string();
        },
        [&] { return !pong.empty(); }));
    CHECK(ping == "are you there");
    CHECK(pong == "are you there");
    CHECK_THROWS_AS(c.ping(std::string(126, 'x')), tidewire::Error);
    // The pong measured the round trip.
    const auto rtt = c.latency();
    REQUIRE(rtt.has_value());
    CHECK(rtt->count() > 0);
    CHECK(*rtt < std::chrono::seconds(1));
}

TEST_CASE("latency: keepalive pings measure it without any ping() call") {
    tidewire::Config fast;
    fast.ping_interval(std::chrono::milliseconds(50));
    tw_test::Pair p(tidewire::Config(), fast);
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    REQUIRE(tw_test::drive(
        {&p.server, &p.client}, [&] { return c.latency().has_value(); }));
    CHECK(c.latency()->count() > 0);
    CHECK(*c.latency() < std::chrono::seconds(1));
}

TEST_CASE("back-pressure is a false return value, then a WritableEvent") {
    tidewire::Config small;
    small.high_water_mark(64 * 1024).low_water_mark(16 * 1024).max_buffered(64 * 1024 * 1024);
    tw_test::Pair p(tidewire::Config(), small);
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    const std::string chunk(16 * 1024, 'b');
    int sent = 0;
    bool under = true;
    while (under && sent < 10000) {
        under = c.send_binary(chunk);
        ++sent;
    }
    CHECK_FALSE(under);
    CHECK(c.buffered_amount() > 64 * 1024);
    int received = 0;
    bool writable = false;
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (which == 0 && std::holds_alternative<tidewire::MessageEvent>(ev)) ++received;
            if (const auto *w = std::get_if<tidewire::WritableEvent>(&ev); w && which == 1) {
                CHECK(w->conn == c);
                writable = true;
            }
        },
        [&] { return writable && received == sent; }));
    CHECK(c.buffered_amount() <= 16 * 1024);
}

TEST_CASE("user data comes back in every event about the connection") {
    tw_test::Pair p;
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    int tag = 42;
    s.set_userdata(&tag);
    CHECK(s.userdata() == &tag);
    c.send_text("x");
    c.close();
    void *on_message = nullptr, *on_close = nullptr;
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (which != 0) return;
            if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) on_message = m->userdata;
            if (const auto *e = std::get_if<tidewire::CloseEvent>(&ev)) on_close = e->userdata;
        },
        [&] { return on_close != nullptr; }));
    CHECK(on_message == &tag);
    CHECK(on_close == &tag);
}

TEST_CASE("peer_address names the loopback peer") {
    tw_test::Pair p;
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    CHECK(s.peer_address().rfind("127.0.0.1:", 0) == 0);
    CHECK(c.peer_address() == "127.0.0.1:" + std::to_string(p.listener.port()));
}

TEST_CASE("Connection values compare, order and hash by context and id") {
    tw_test::Pair p;
    const auto a = p.client.connect(p.url());
    const auto b = p.client.connect(p.url());
    CHECK(a != b);
    CHECK(a == Connection(p.client.handle(), a.id()));
    CHECK(a != Connection(p.server.handle(), a.id()));
    CHECK(((a < b) != (b < a)));
    CHECK(std::hash<Connection>()(a) == std::hash<Connection>()(Connection(p.client.handle(), a.id())));
    CHECK_FALSE(Connection());
    CHECK(a);
}

TEST_CASE("a client connection that cannot connect ends with a terminal ErrorEvent") {
    tidewire::Context server;
    const auto l = server.listen("127.0.0.1", 0);
    const std::string url = "ws://127.0.0.1:" + std::to_string(l.port()) + "/";
    l.close();  // nobody listens there any more
    tidewire::Context client;
    const auto c = client.connect(url);
    std::optional<tidewire::ErrorEvent> error;
    REQUIRE(tw_test::drive(
        {&client},
        [&](size_t, const tidewire::Event &ev) {
            if (const auto *e = std::get_if<tidewire::ErrorEvent>(&ev)) error = *e;
        },
        [&] { return error.has_value(); }));
    CHECK(error->conn == c);
    CHECK(error->status == TW_STATUS_CONNECT);
    CHECK_FALSE(error->message.empty());
}

TEST_CASE("flush: the bytes leave without a poll of the sender") {
    tw_test::Pair p;
    Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    std::string got;
    p.server.on_message([&](const tidewire::MessageEvent &m) { got = m.text(); });
    c.send_text("now");
    CHECK(c.flush());
    // Only the server is driven: the client is never polled after the send.
    REQUIRE(tw_test::drive({&p.server}, [&] { return !got.empty(); }));
    CHECK(got == "now");
    CHECK_THROWS_AS(Connection().flush(), tidewire::Error);
}
