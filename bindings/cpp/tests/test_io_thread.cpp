// tidewire::IoThread and IoEvent: a context on its own I/O thread; events own their data.
#include "support.hpp"

#include <atomic>
#include <map>
#include <thread>
#include <type_traits>

using namespace std::chrono_literals;
using tidewire::IoEvent;
using tidewire::IoThread;

static_assert(!std::is_copy_constructible_v<IoThread>);
static_assert(std::is_nothrow_move_constructible_v<IoThread>);
static_assert(!std::is_copy_constructible_v<IoEvent>);
static_assert(std::is_nothrow_move_constructible_v<IoEvent>);

namespace {

// Waits (bounded) for the next event.
IoEvent next(const IoThread &io) {
    std::vector<IoEvent> one;
    const auto end = std::chrono::steady_clock::now() + tw_test::kLimit;
    while (one.empty() && std::chrono::steady_clock::now() < end) io.poll(one, 100ms, 1);
    REQUIRE(one.size() == 1);
    return std::move(one.front());
}

// A listener and a client of it on one IoThread: {client, server}.
std::pair<uint64_t, uint64_t> open_pair(const IoThread &io) {
    const auto [listener, port] = io.listen("127.0.0.1", 0);
    REQUIRE(listener != 0);
    const uint64_t client = io.connect("ws://127.0.0.1:" + std::to_string(port) + "/cpp");
    REQUIRE(client != 0);
    uint64_t server = 0;
    bool client_open = false;
    while (!client_open || server == 0) {
        IoEvent e = next(io);
        REQUIRE(e.kind() == IoEvent::Kind::open);
        if (e.listener() == 0) {
            CHECK(e.conn() == client);
            CHECK(e.path() == "/cpp");
            client_open = true;
        } else {
            server = e.conn();
        }
    }
    return {client, server};
}

}  // namespace

TEST_CASE("IoThread: messages from four threads arrive once each, in per-thread order") {
    IoThread io;
    const auto [client, server] = open_pair(io);
    constexpr int kThreads = 4, kEach = 250;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&io, client = client, t] {
            for (int i = 0; i < kEach; ++i) {
                const std::string text = std::to_string(t) + ":" + std::to_string(i);
                while (!io.send_text(client, text)) std::this_thread::yield();
            }
        });
    }
    std::map<int, int> next_of;
    std::vector<IoEvent> kept;  // held across polls: their data stays valid
    int got = 0;
    const auto end = std::chrono::steady_clock::now() + tw_test::kLimit;
    while (got < kThreads * kEach && std::chrono::steady_clock::now() < end) {
        std::vector<IoEvent> batch;
        io.poll(batch, 20ms);
        for (auto &e : batch) {
            REQUIRE(e.kind() == IoEvent::Kind::message);
            REQUIRE(e.conn() == server);
            const std::string text(e.text());
            const auto colon = text.find(':');
            const int t = std::stoi(text.substr(0, colon)), i = std::stoi(text.substr(colon + 1));
            CHECK(i == next_of[t]++);
            ++got;
            if (kept.size() < 10) kept.push_back(std::move(e));
        }
    }
    for (auto &th : threads) th.join();
    CHECK(got == kThreads * kEach);
    for (const auto &e : kept) CHECK(e.text().find(':') != std::string_view::npos);
}

TEST_CASE("IoThread: shutdown joins, events outlive the thread, later sends throw") {
    std::vector<IoEvent> events;
    {
        IoThread io;
        const auto [client, server] = open_pair(io);
        CHECK(io.send_text(server, "bye"));
        io.shutdown(5s);
        io.shutdown(0ms);  // again: nothing
        try {
            io.send_text(client, "late");
            FAIL("no exception");
        } catch (const tidewire::Error &e) {
            CHECK(e.status() == TW_STATUS_SHUTTING_DOWN);
        }
        io.poll(events, 0ms, 64);
    }
    REQUIRE(!events.empty());
    CHECK(events.back().kind() == IoEvent::Kind::stopped);
    CHECK(events.back().status() == TW_STATUS_OK);
    int closes = 0, byes = 0;
    for (const auto &e : events) {
        if (e.kind() == IoEvent::Kind::close) ++closes;
        if (e.kind() == IoEvent::Kind::message && e.text() == "bye") ++byes;
    }
    CHECK(closes == 2);
    CHECK(byes == 1);
}

TEST_CASE("IoThread: argument errors throw, connection failures are events") {
    IoThread io;
    CHECK_THROWS_AS(io.connect("http://x/"), tidewire::Error);
    const uint64_t c = io.connect("ws://127.0.0.1:1/");
    IoEvent e = next(io);
    CHECK(e.kind() == IoEvent::Kind::error);
    CHECK(e.conn() == c);
    CHECK(e.status() == TW_STATUS_CONNECT);
    CHECK(e.is_terminal());
    IoThread moved = std::move(io);
    CHECK(moved.pending() == 0);
    CHECK_THROWS_AS(io.pending(), tidewire::Error);  // NOLINT(bugprone-use-after-move): on purpose
}
