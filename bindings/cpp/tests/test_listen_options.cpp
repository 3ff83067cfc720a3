// tidewire::ListenOptions: wss:// from files and from memory, subprotocols, origins.
#include "support.hpp"

#include <type_traits>

using namespace std::chrono_literals;
using tidewire::ListenOptions;

static_assert(!std::is_copy_constructible_v<ListenOptions>);
static_assert(std::is_nothrow_move_constructible_v<ListenOptions>);
static_assert(std::is_nothrow_swappable_v<ListenOptions>);

// A wss:// echo: server with `lo`, client trusting the test CA; returns what came back.
static std::string wss_echo(const ListenOptions &lo, const std::string &text) {
    tidewire::Context server, client;
    const auto l = server.listen("127.0.0.1", 0, lo);
    server.on_message([](const tidewire::MessageEvent &m) { m.conn.send(m.kind, m.data); });
    tidewire::ConnectOptions co;
    co.tls_use_system_roots(false).add_tls_ca_pem(tw_test::slurp(tw_test::data_path("ca.pem")));
    std::string got;
    client.on_open([&](const tidewire::OpenEvent &o) { o.conn.send_text(text); });
    client.on_message([&](const tidewire::MessageEvent &m) { got = m.text(); });
    client.on_error([&](const tidewire::ErrorEvent &e) { FAIL_CHECK("client error: " << std::string(e.message)); });
    (void)client.connect("wss://localhost:" + std::to_string(l.port()) + "/", co);
    CHECK(tw_test::drive({&server, &client}, [&] { return !got.empty(); }));
    return got;
}

TEST_CASE("wss echo with the certificate and key read from files") {
    ListenOptions lo;
    lo.tls_pem_files(tw_test::data_path("server.pem"), tw_test::data_path("server.key"));
    CHECK(wss_echo(lo, "secret over files") == "secret over files");
}

TEST_CASE("wss echo with the certificate and key given in memory") {
    ListenOptions lo;
    lo.tls_pem(tw_test::slurp(tw_test::data_path("server.pem")), tw_test::slurp(tw_test::data_path("server.key")));
    CHECK(wss_echo(lo, "secret in memory") == "secret in memory");
}

TEST_CASE("unusable TLS material is an Error with TW_STATUS_TLS") {
    ListenOptions lo;
    try {
        lo.tls_pem("not a certificate", "not a key");
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_TLS);
    }
    CHECK_THROWS_AS(lo.tls_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem"), tidewire::Error);
}

TEST_CASE("the server selects its first subprotocol that the client offered") {
    ListenOptions lo;
    lo.add_subprotocol("b").add_subprotocol("a").backlog(16).reuse_port(false);
    tw_test::Pair p(lo);
    tidewire::ConnectOptions co;
    co.add_subprotocol("a").add_subprotocol("b");
    (void)p.client.connect(p.url(), co);
    std::optional<std::string> chosen;
    p.client.on_open([&](const tidewire::OpenEvent &o) { chosen = std::string(o.subprotocol.value_or("")); });
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return chosen.has_value(); }));
    CHECK(*chosen == "b");
    CHECK_THROWS_AS(lo.add_subprotocol(""), tidewire::Error);
}

TEST_CASE("an Origin outside the allowed list is rejected with 403") {
    ListenOptions lo;
    lo.add_allowed_origin("https://good.example");
    tw_test::Pair p(lo);
    tidewire::ConnectOptions bad, good;
    bad.origin("https://evil.example");
    good.origin("https://GOOD.example");
    const auto refused = p.client.connect(p.url(), bad);
    const auto allowed = p.client.connect(p.url(), good);
    std::optional<uint16_t> refused_status;
    bool allowed_open = false;
    p.client.on_error([&](const tidewire::ErrorEvent &e) {
        if (e.conn == refused) refused_status = e.http_status;
    });
    p.client.on_open([&](const tidewire::OpenEvent &o) { allowed_open |= o.conn == allowed; });
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return refused_status.has_value() && allowed_open; }));
    CHECK(*refused_status == 403);
}

TEST_CASE("peer limits: set, chained, and a bad rate is an Error with TW_STATUS_INVALID_ARGUMENT") {
    ListenOptions lo;
    lo.max_connections_per_address(2).max_handshakes_per_address(8).max_handshakes(64).connection_rate(100, 10);
    try {
        lo.connection_rate(-1, 10);
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_ARGUMENT);
    }
    // The limits reach the listener: a third connection from 127.0.0.1 is turned away.
    tw_test::Pair p(lo);
    int opened = 0, failed = 0;
    p.client.on_open([&](const tidewire::OpenEvent &) { ++opened; });
    p.client.on_error([&](const tidewire::ErrorEvent &) { ++failed; });
    for (int i = 0; i < 3; ++i) (void)p.client.connect(p.url());
    CHECK(tw_test::drive({&p.server, &p.client}, [&] { return opened + failed == 3; }));
    CHECK(opened == 2);
    CHECK(failed == 1);
}
