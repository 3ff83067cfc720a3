// tidewire::DeflateConfig: permessage-deflate settings; compression negotiated end to end.
#include "support.hpp"

#include <type_traits>

using namespace std::chrono_literals;
using tidewire::DeflateConfig;

static_assert(!std::is_copy_constructible_v<DeflateConfig>);
static_assert(std::is_nothrow_move_constructible_v<DeflateConfig>);
static_assert(std::is_nothrow_swappable_v<DeflateConfig>);

TEST_CASE("DeflateConfig checks its ranges") {
    DeflateConfig d;
    d.enabled(true).level(6).mem_level(8).threshold(0).server_max_window_bits(15).client_max_window_bits(0);
    d.server_no_context_takeover(false).client_no_context_takeover(true);
    CHECK_THROWS_AS(d.level(10), tidewire::Error);
    CHECK_THROWS_AS(d.server_max_window_bits(7), tidewire::Error);
    CHECK_THROWS_AS(d.mem_level(0), tidewire::Error);
}

TEST_CASE("deflate offered by the client and accepted by the server is negotiated, messages intact") {
    DeflateConfig deflate;
    deflate.threshold(0);
    tidewire::ListenOptions lo;
    lo.deflate(deflate);
    tw_test::Pair p(lo);
    tidewire::ConnectOptions co;
    co.deflate(deflate);
    const auto client = p.client.connect(p.url(), co);
    const std::string big(100000, 'z');
    std::optional<std::string> server_ext, client_ext;
    std::string echoed;
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (const auto *o = std::get_if<tidewire::OpenEvent>(&ev)) {
                (which == 0 ? server_ext : client_ext) = std::string(o->extensions.value_or(""));
                if (which == 1) o->conn.send_text(big);
            }
            if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) {
                if (which == 0) m->conn.send(m->kind, m->data);
                if (which == 1) echoed = m->data.to_string();
            }
        },
        [&] { return !echoed.empty(); }));
    CHECK(echoed == big);
    REQUIRE(client_ext.has_value());
    CHECK(client_ext->find("permessage-deflate") == 0);
    CHECK(server_ext == client_ext);
    (void)client;
}
