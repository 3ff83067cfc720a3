// tidewire::Sender: copyable, usable from any thread; a full queue is a false return value,
// a destroyed context an Error.
#include "support.hpp"

#include <atomic>
#include <set>
#include <thread>
#include <type_traits>

using namespace std::chrono_literals;
using tidewire::Sender;

static_assert(std::is_copy_constructible_v<Sender>);
static_assert(std::is_copy_assignable_v<Sender>);
static_assert(std::is_nothrow_move_constructible_v<Sender>);

TEST_CASE("senders on four threads deliver every message") {
    tw_test::Pair p;
    tidewire::Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    const Sender sender = p.server.sender();
    constexpr int kThreads = 4, kEach = 250;
    std::vector<std::thread> threads;
    std::atomic<int> refused{0};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([sender, s, t, &refused] {  // each thread has its own copy
            for (int i = 0; i < kEach; ++i) {
                const std::string text = std::to_string(t) + ":" + std::to_string(i);
                if (!sender.send_text(s, text)) ++refused;
            }
        });
    }
    std::set<std::string> got;
    bool bad_order = false;
    std::vector<int> last(kThreads, -1);
    const bool all = tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev); m && which == 1) {
                const std::string text(m->text());
                const auto colon = text.find(':');
                const int t = std::stoi(text.substr(0, colon)), i = std::stoi(text.substr(colon + 1));
                bad_order |= i <= last[static_cast<size_t>(t)];  // per thread, order is kept
                last[static_cast<size_t>(t)] = i;
                got.insert(text);
            }
        },
        [&] { return static_cast<int>(got.size()) + refused == kThreads * kEach; });
    for (auto &t : threads) t.join();
    REQUIRE(all);
    CHECK(refused == 0);
    CHECK(got.size() == static_cast<size_t>(kThreads * kEach));
    CHECK_FALSE(bad_order);
}

TEST_CASE("a sender closes and pings from another thread") {
    tw_test::Pair p;
    tidewire::Connection s, c;
    REQUIRE(tw_test::open_pair(p, s, c));
    Sender sender = p.client.sender();
    std::thread t([sender, c] {
        sender.ping(c, "hi");
        sender.send_binary(c, std::vector<uint8_t>{1, 2});
        sender.close(c, 4001, "from a thread");
    });
    t.join();
    int code = 0;
    bool pinged = false, binary = false;
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (which != 0) return;
            pinged |= std::holds_alternative<tidewire::PingEvent>(ev);
            binary |= std::holds_alternative<tidewire::MessageEvent>(ev);
            if (const auto *e = std::get_if<tidewire::CloseEvent>(&ev)) code = e->code;
        },
        [&] { return code != 0; }));
    CHECK(pinged);
    CHECK(binary);
    CHECK(code == 4001);
}

TEST_CASE("a command that cannot be applied comes back as SendFailedEvent") {
    tidewire::Context ctx;
    const Sender sender = ctx.sender();
    const tidewire::Connection nobody(ctx.handle(), 0x7777);
    CHECK(sender.send_text(nobody, "lost"));
    std::optional<tidewire::Status> status;
    ctx.on_send_failed([&](const tidewire::SendFailedEvent &e) { status = e.status; });
    REQUIRE(tw_test::drive({&ctx}, [&] { return status.has_value(); }));
    CHECK(*status == TW_STATUS_STALE_ID);
}

TEST_CASE("a full sender queue is a false return value, not an exception") {
    tidewire::Config config;
    config.sender_queue_limit(1000);
    tidewire::Context ctx(config);
    const Sender sender = ctx.sender();
    const tidewire::Connection nobody(ctx.handle(), 0x7777);
    const std::string chunk(400, 'q');
    CHECK(sender.send_text(nobody, chunk));
    CHECK(sender.send_text(nobody, chunk));
    CHECK_FALSE(sender.send_text(nobody, chunk));
    (void)ctx.poll(0ms);  // applies (and refuses) the queued commands, freeing the queue
    CHECK(sender.send_text(nobody, chunk));
}

TEST_CASE("a sender outlives its context and then throws TW_STATUS_CONTEXT_GONE") {
    Sender sender;
    CHECK_FALSE(sender);
    {
        tidewire::Context ctx;
        sender = ctx.sender();
        CHECK(sender);
    }
    try {
        sender.wake();
        FAIL("no throw");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_CONTEXT_GONE);
    }
    CHECK_THROWS_AS(sender.send_text(tidewire::Connection(nullptr, 1), "x"), tidewire::Error);
}

TEST_CASE("wake from another thread ends a poll that waits without limit") {
    tidewire::Context ctx;
    const Sender sender = ctx.sender();
    std::thread t([sender] {
        std::this_thread::sleep_for(30ms);
        sender.wake();
    });
    bool woke = false;
    const auto deadline = std::chrono::steady_clock::now() + tw_test::kLimit;
    while (!woke && std::chrono::steady_clock::now() < deadline) {
        for (const auto &ev : ctx.poll(1000ms)) woke |= std::holds_alternative<tidewire::WakeEvent>(ev);
    }
    t.join();
    CHECK(woke);
}
