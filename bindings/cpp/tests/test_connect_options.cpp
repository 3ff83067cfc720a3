// tidewire::ConnectOptions: TLS trust (private CA, CA file, failed verification, the
// dangerous switch), timeouts, headers.
#include "support.hpp"

#include <type_traits>

using namespace std::chrono_literals;
using tidewire::ConnectOptions;

static_assert(!std::is_copy_constructible_v<ConnectOptions>);
static_assert(std::is_nothrow_move_constructible_v<ConnectOptions>);
static_assert(std::is_nothrow_swappable_v<ConnectOptions>);

namespace {

struct TlsServer {
    tidewire::Context ctx;
    tidewire::Listener listener;
    TlsServer() {
        tidewire::ListenOptions lo;
        lo.tls_pem_files(tw_test::data_path("server.pem"), tw_test::data_path("server.key"));
        listener = ctx.listen("127.0.0.1", 0, lo);
    }
    std::string url(const std::string &host = "localhost") const {
        return "wss://" + host + ":" + std::to_string(listener.port()) + "/";
    }
};

// Connects with `co`; returns the status of the terminal error, or TW_STATUS_OK when it opened.
tidewire::Status outcome(TlsServer &server, const ConnectOptions &co, const std::string &url) {
    tidewire::Context client;
    (void)client.connect(url, co);
    std::optional<tidewire::Status> result;
    client.on_open([&](const tidewire::OpenEvent &) { result = TW_STATUS_OK; });
    client.on_error([&](const tidewire::ErrorEvent &e) { result = e.status; });
    CHECK(tw_test::drive({&server.ctx, &client}, [&] { return result.has_value(); }));
    return result.value_or(TW_STATUS_INTERNAL);
}

}  // namespace

TEST_CASE("wss with the test CA from a file opens") {
    TlsServer server;
    ConnectOptions co;
    co.tls_use_system_roots(false).tls_ca_file(tw_test::data_path("ca.pem")).prepare_tls();
    CHECK(outcome(server, co, server.url()) == TW_STATUS_OK);
    CHECK(outcome(server, co, server.url("127.0.0.1")) == TW_STATUS_OK);
}

TEST_CASE("wss against an unknown CA fails with TW_STATUS_TLS in an ErrorEvent") {
    TlsServer server;
    ConnectOptions co;  // system roots only: the test CA is not among them
    CHECK(outcome(server, co, server.url()) == TW_STATUS_TLS);
}

TEST_CASE("dangerous_skip_verification accepts an unknown CA") {
    TlsServer server;
    ConnectOptions co;
    co.dangerous_skip_verification(true);
    CHECK(outcome(server, co, server.url()) == TW_STATUS_OK);
}

TEST_CASE("bad CA settings are reported as TW_STATUS_TLS") {
    ConnectOptions co;
    co.tls_use_system_roots(false).tls_ca_file("/nonexistent/ca.pem");
    try {
        co.prepare_tls();
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_TLS);
    }
}

TEST_CASE("a connect timeout of 0 means the context's; negative durations are refused") {
    ConnectOptions co;
    co.connect_timeout(0ms).connect_timeout(500ms);
    CHECK_THROWS_AS(co.connect_timeout(-5ms), tidewire::Error);
    CHECK_THROWS_AS(co.add_header("", "x"), tidewire::Error);
}

TEST_CASE("a header the handshake sets itself is refused when it is added") {
    ConnectOptions co;
    CHECK_THROWS_AS(co.add_header("Sec-WebSocket-Key", "mine"), tidewire::Error);
    CHECK_THROWS_AS(co.add_header("X-Evil", "a\r\nb"), tidewire::Error);
    // The options are unchanged: a connection with them still starts.
    tidewire::Context ctx;
    CHECK_NOTHROW((void)ctx.connect("ws://127.0.0.1:9/", co));
}
