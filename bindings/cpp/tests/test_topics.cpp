// Topics: Context::subscribe / unsubscribe / publish / broadcast / subscriber_count,
// Sender::publish, ListenOptions::slow_subscriber and PublishReport. Server and clients live
// in one context (a client's id differs from the server side of the same connection).
#include "support.hpp"

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using tidewire::Connection;
using tidewire::MessageKind;
using tidewire::PublishReport;

namespace {

// A context listening on 127.0.0.1:0 with `n` clients connected to it: clients[i] asked
// for "/i", servers[i] is the server side of the same connection.
struct Room {
    tidewire::Context ctx;
    std::vector<Connection> clients, servers;
    std::map<tw_conn, std::vector<std::string>> got;  // what each client received, in order
    std::map<tw_conn, uint16_t> closed;               // close code of each ended client

    explicit Room(size_t n, const tidewire::ListenOptions &options = {}) : servers(n) {
        const auto l = ctx.listen("127.0.0.1", 0, options);
        const std::string base = "ws://127.0.0.1:" + std::to_string(l.port()) + "/";
        for (size_t i = 0; i < n; ++i) clients.push_back(ctx.connect(base + std::to_string(i)));
        size_t opened = 0;
        REQUIRE(tw_test::drive(
            {&ctx},
            [&](size_t, const tidewire::Event &ev) {
                if (const auto *o = std::get_if<tidewire::OpenEvent>(&ev)) {
                    ++opened;
                    if (o->listener) servers.at(std::stoul(std::string(o->path.substr(1)))) = o->conn;
                }
                if (const auto *e = std::get_if<tidewire::ErrorEvent>(&ev)) FAIL(std::string(e->message));
            },
            [&] { return opened == 2 * n; }));
    }

    void on_event(const tidewire::Event &ev) {
        if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) {
            got[m->conn.id()].push_back((m->is_text() ? "t:" : "b:") + m->data.to_string());
        } else if (const auto *c = std::get_if<tidewire::CloseEvent>(&ev)) {
            closed[c->conn.id()] = c->code;
        }
    }

    // Polls until `done` holds.
    bool until(const std::function<bool()> &done) {
        return tw_test::drive({&ctx}, [&](size_t, const tidewire::Event &ev) { on_event(ev); }, done);
    }

    size_t received(Connection c) { return got[c.id()].size(); }
};

tidewire::ListenOptions without_deflate() {
    tidewire::DeflateConfig off;
    off.enabled(false);
    tidewire::ListenOptions lo;
    lo.deflate(off);
    return lo;
}

}  // namespace

TEST_CASE("subscriptions follow subscribe, unsubscribe and the end of a connection") {
    Room r(3);
    auto &ctx = r.ctx;
    const Connection a = r.servers[0], b = r.servers[1], c = r.servers[2];
    CHECK(ctx.subscribe(a, "room"));
    CHECK_FALSE(ctx.subscribe(a, "room"));
    CHECK(ctx.subscribe(b, "room"));
    CHECK(ctx.subscribe(c, "room"));
    CHECK(ctx.subscribe(a, std::vector<uint8_t>{0, 0xff}));  // a topic is any bytes
    CHECK(ctx.subscribe(b, tidewire::Bytes()));               // the empty topic too
    CHECK(ctx.topic_count() == 3);
    CHECK(ctx.subscriber_count("room") == 3);
    CHECK(ctx.unsubscribe(c, "room"));
    CHECK_FALSE(ctx.unsubscribe(c, "room"));
    CHECK_FALSE(ctx.unsubscribe(c, "never"));
    CHECK(ctx.subscriber_count("room") == 2);
    CHECK(ctx.subscriber_count("nobody") == 0);

    const PublishReport rep = ctx.publish("room", MessageKind::text, "hello");
    CHECK(rep.delivered == 2);
    CHECK(rep.not_open + rep.skipped_slow + rep.closed_slow == 0);
    REQUIRE(r.until([&] { return r.received(r.clients[0]) == 1 && r.received(r.clients[1]) == 1; }));
    CHECK(r.received(r.clients[2]) == 0);
    CHECK(r.got[r.clients[0].id()][0] == "t:hello");

    // a ends: it leaves "room" and the binary topic (which is then gone).
    r.clients[0].close(1000, "bye");
    REQUIRE(r.until([&] { return r.closed.count(r.clients[0].id()) == 1; }));
    REQUIRE(r.until([&] { return ctx.subscriber_count("room") == 1; }));
    CHECK(ctx.subscriber_count(std::vector<uint8_t>{0, 0xff}) == 0);
    CHECK(ctx.topic_count() == 2);
    try {
        ctx.subscribe(a, "room");
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_STALE_ID);
    }
    CHECK(ctx.publish("nobody", MessageKind::binary, "x").delivered == 0);
}

static void publish_to_many(bool deflate) {
    constexpr size_t kSubscribers = 40;
    constexpr int kMessages = 10;
    Room r(kSubscribers, deflate ? tidewire::ListenOptions() : without_deflate());
    for (const Connection &s : r.servers) REQUIRE(r.ctx.subscribe(s, "feed"));
    std::vector<std::string> sent;
    for (int k = 0; k < kMessages; ++k) {
        const std::string body = "message " + std::to_string(k) + " " + std::string(500, static_cast<char>('a' + k));
        const MessageKind kind = k % 2 == 0 ? MessageKind::text : MessageKind::binary;
        sent.push_back((kind == MessageKind::text ? "t:" : "b:") + body);
        const PublishReport rep = r.ctx.publish("feed", kind, body);
        CHECK(rep.delivered == kSubscribers);
        CHECK(rep.compressions == (deflate ? 1u : 0u));
    }
    const auto all = [&] {
        for (const Connection &c : r.clients) {
            if (r.received(c) < sent.size()) return false;
        }
        return true;
    };
    REQUIRE(r.until(all));
    (void)r.ctx.poll(50ms);  // a duplicate would show now
    for (const Connection &c : r.clients) CHECK(r.got[c.id()] == sent);
}

TEST_CASE("every subscriber gets every message once") { publish_to_many(false); }

TEST_CASE("with permessage-deflate each publish is compressed once for all subscribers") { publish_to_many(true); }

TEST_CASE("broadcast reaches a list and counts an ended connection as not open") {
    Room r(3, without_deflate());
    r.servers[2].close();
    REQUIRE(r.until([&] { return r.closed.count(r.clients[2].id()) == 1; }));
    REQUIRE(r.until([&] { return r.ctx.connection_count() == 4; }));
    const PublishReport rep = r.ctx.broadcast(r.servers, MessageKind::binary, std::vector<uint8_t>{1, 2, 3});
    CHECK(rep.delivered == 2);
    CHECK(rep.not_open == 1);
    REQUIRE(r.until([&] { return r.received(r.clients[0]) == 1 && r.received(r.clients[1]) == 1; }));
    CHECK(r.ctx.broadcast({}, MessageKind::text, "nobody").delivered == 0);
}

// Two subscribers, the second paused on its client side; 16 KiB messages until the policy
// hit it. The fast one gets everything, the slow one what was delivered to it.
static void slow_subscriber(tidewire::SlowAction action) {
    tidewire::ListenOptions lo = without_deflate();
    lo.slow_subscriber(64 << 10, action);
    Room r(2, lo);
    const Connection fast = r.clients[0], slow = r.clients[1];
    for (const Connection &s : r.servers) r.ctx.subscribe(s, "ticks");
    slow.pause_reading();
    const std::string payload(16 << 10, 'x');
    PublishReport sum;
    size_t published = 0;
    int after = -1;
    const auto deadline = std::chrono::steady_clock::now() + tw_test::kLimit;
    while ((after != 0 || r.received(fast) < published) && std::chrono::steady_clock::now() < deadline) {
        if (after != 0 && published < 4000) {
            const PublishReport rep = r.ctx.publish("ticks", MessageKind::binary, payload);
            sum.delivered += rep.delivered;
            sum.skipped_slow += rep.skipped_slow;
            sum.closed_slow += rep.closed_slow;
            sum.not_open += rep.not_open;
            ++published;
            if (after < 0 && (sum.skipped_slow > 0 || sum.closed_slow > 0)) after = 10;
            if (after > 0) --after;
        }
        for (const auto &ev : r.ctx.poll(1ms)) r.on_event(ev);
    }
    REQUIRE(after == 0);
    CHECK(r.received(fast) == published);
    CHECK(r.received(slow) == 0);
    CHECK(r.closed.empty());
    slow.resume_reading();
    const size_t want = sum.delivered - published;
    if (action == tidewire::SlowAction::skip) {
        CHECK(sum.skipped_slow > 0);
        CHECK(sum.closed_slow == 0);
        CHECK(sum.delivered + sum.skipped_slow == 2 * published);
        REQUIRE(r.until([&] { return r.received(slow) == want; }));
        CHECK(slow.is_open());
    } else {
        CHECK(sum.closed_slow == 1);
        CHECK(sum.skipped_slow == 0);
        CHECK(sum.delivered + sum.closed_slow + sum.not_open == 2 * published);
        REQUIRE(r.until([&] { return r.closed.count(slow.id()) == 1; }));
        CHECK(r.received(slow) == want);
        CHECK(r.closed[slow.id()] == tidewire::slow_close_code);
    }
}

TEST_CASE("a slow subscriber is skipped under SlowAction::skip") { slow_subscriber(tidewire::SlowAction::skip); }

TEST_CASE("a slow subscriber is closed with 1008 under SlowAction::close") {
    slow_subscriber(tidewire::SlowAction::close);
}

TEST_CASE("another thread publishes through a Sender") {
    Room r(5);
    for (const Connection &s : r.servers) r.ctx.subscribe(s, "news");
    const tidewire::Sender sender = r.ctx.sender();
    constexpr int kMessages = 30;
    std::atomic<int> refused{0};
    std::optional<tidewire::Status> bad_text;
    std::thread t([&] {
        for (int k = 0; k < kMessages; ++k) {
            if (!sender.publish("news", k % 2 ? MessageKind::binary : MessageKind::text, std::to_string(k))) ++refused;
        }
        try {
            sender.publish("news", MessageKind::text, std::string("\xff"));
        } catch (const tidewire::Error &e) {
            bad_text = e.status();
        }
    });
    const bool all = r.until([&] {
        for (const Connection &c : r.clients) {
            if (r.received(c) < static_cast<size_t>(kMessages)) return false;
        }
        return true;
    });
    t.join();
    REQUIRE(all);
    CHECK(refused == 0);
    REQUIRE(bad_text.has_value());
    CHECK(*bad_text == TW_STATUS_INVALID_UTF8);
    for (const Connection &c : r.clients) {
        const auto &got = r.got[c.id()];
        REQUIRE(got.size() == static_cast<size_t>(kMessages));
        for (int k = 0; k < kMessages; ++k) {
            CHECK(got[static_cast<size_t>(k)] == (k % 2 ? "b:" : "t:") + std::to_string(k));
        }
    }
}

TEST_CASE("bad input is an Error with the library's status and detail") {
    tidewire::Context ctx;
    try {
        ctx.publish("t", MessageKind::text, std::string("ok\xff"));
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_UTF8);
    }
    CHECK_THROWS_AS(ctx.broadcast({}, MessageKind::text, std::string("\xff")), tidewire::Error);
    CHECK_THROWS_AS(ctx.subscribe(Connection(ctx.handle(), 12345), "t"), tidewire::Error);

    tidewire::ListenOptions lo;
    try {
        lo.slow_subscriber(0, tidewire::SlowAction::close);
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_ARGUMENT);
        CHECK(e.detail().find("slow_subscriber.limit must be at least 1") != std::string::npos);
    }
    CHECK_NOTHROW(lo.slow_subscriber(1, tidewire::SlowAction::close));

    tidewire::Context moved = std::move(ctx);
    try {
        (void)ctx.subscriber_count("t");  // NOLINT(bugprone-use-after-move): on purpose
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_NULL_ARGUMENT);
    }
    CHECK(moved.topic_count() == 0);
}
