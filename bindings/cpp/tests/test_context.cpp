// tidewire::Context: RAII, move semantics, the two ways to drive it (poll loop and
// callbacks), run/stop, host loops, shutdown, and destruction with open connections.
#include "support.hpp"

#include <fcntl.h>
#include <poll.h>

#include <atomic>
#include <thread>
#include <type_traits>
#include <utility>

using namespace std::chrono_literals;
using tidewire::Context;

static_assert(!std::is_copy_constructible_v<Context>);
static_assert(!std::is_copy_assignable_v<Context>);
static_assert(std::is_nothrow_move_constructible_v<Context>);
static_assert(std::is_nothrow_move_assignable_v<Context>);
static_assert(std::is_nothrow_swappable_v<Context>);

TEST_CASE("a Context frees its handle; a moved-from one holds nothing and throws on use") {
    Context a;
    tw_context *raw = a.handle();
    REQUIRE(raw != nullptr);
    Context b(std::move(a));
    CHECK(b.handle() == raw);
    CHECK(a.handle() == nullptr);  // NOLINT(bugprone-use-after-move)
    CHECK_THROWS_AS(a.poll(0ms), tidewire::Error);
    CHECK_THROWS_AS(a.listen("127.0.0.1", 0), tidewire::Error);
    a.stop();  // harmless on an empty context
    Context c;
    c = std::move(b);  // the context c held is freed here
    CHECK(c.handle() == raw);
}

TEST_CASE("connections and listeners keep working after their Context was moved") {
    tw_test::Pair p;
    tidewire::Connection server_side, client_side;
    REQUIRE(tw_test::open_pair(p, server_side, client_side));
    Context moved_server(std::move(p.server));
    Context moved_client;
    moved_client = std::move(p.client);
    CHECK(p.listener.port() > 0);
    CHECK(client_side.send_text("after the move"));
    std::string got;
    REQUIRE(tw_test::drive(
        {&moved_server, &moved_client},
        [&](size_t which, const tidewire::Event &ev) {
            if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev); m != nullptr && which == 0) {
                got = m->text();
                CHECK(m->conn == server_side);
            }
        },
        [&] { return !got.empty(); }));
    CHECK(got == "after the move");
}

TEST_CASE("poll style: events come back as a range of std::variant") {
    tw_test::Pair p;
    const auto client = p.client.connect(p.url("/chat?x=1"));
    std::vector<std::string> seen;
    bool closed = false;
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            std::visit(tidewire::overloaded{
                           [&](const tidewire::OpenEvent &o) {
                               seen.push_back(which == 0 ? "server open" : "client open");
                               if (which == 0) {
                                   CHECK(o.path == "/chat");
                                   CHECK(o.listener == p.listener);
                               } else {
                                   CHECK_FALSE(o.listener);
                                   o.conn.send_binary(std::vector<uint8_t>{0, 1, 2});
                               }
                           },
                           [&](const tidewire::MessageEvent &m) {
                               seen.push_back(which == 0 ? "server message" : "client message");
                               if (which == 0) {
                                   CHECK_FALSE(m.is_text());
                                   CHECK(m.data == tidewire::Bytes(std::vector<uint8_t>{0, 1, 2}));
                                   m.conn.close(4000, "done");
                               }
                           },
                           [&](const tidewire::CloseEvent &c) {
                               if (which == 1) {
                                   CHECK(c.conn == client);
                                   CHECK(c.code == 4000);
                                   CHECK(c.reason == "done");
                                   CHECK(c.clean);
                                   closed = true;
                               }
                           },
                           [&](const auto &) {},
                       },
                       ev);
        },
        [&] { return closed; }));
    CHECK(std::find(seen.begin(), seen.end(), "server message") != seen.end());
}

TEST_CASE("the events of one poll form a contiguous, indexable range") {
    tw_test::Pair p;
    for (int i = 0; i < 3; ++i) (void)p.client.connect(p.url());
    size_t opens = 0;
    const auto deadline = std::chrono::steady_clock::now() + tw_test::kLimit;
    while (opens < 3 && std::chrono::steady_clock::now() < deadline) {
        (void)p.client.poll(5ms);
        const tidewire::Events events = p.server.poll(5ms);
        CHECK(events.size() == static_cast<size_t>(events.end() - events.begin()));
        for (size_t i = 0; i < events.size(); ++i) {
            if (std::holds_alternative<tidewire::OpenEvent>(events[i])) ++opens;
        }
    }
    CHECK(opens == 3);
}

TEST_CASE("callback style: callbacks run inside poll on the calling thread") {
    tw_test::Pair p;
    const auto caller = std::this_thread::get_id();
    int opens = 0, messages = 0, closes = 0;
    bool wrong_thread = false;
    p.server.on_open([&](const tidewire::OpenEvent &) { ++opens; })
        .on_message([&](const tidewire::MessageEvent &m) {
            ++messages;
            wrong_thread |= std::this_thread::get_id() != caller;
            m.conn.send(m.kind, m.data);
        })
        .on_close([&](const tidewire::CloseEvent &) { ++closes; });
    std::string echoed;
    p.client.on_open([](const tidewire::OpenEvent &o) { o.conn.send_text("ping me back"); })
        .on_message([&](const tidewire::MessageEvent &m) {
            echoed = m.text();
            m.conn.close();
        });
    (void)p.client.connect(p.url());
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return closes == 1; }));
    CHECK(opens == 1);
    CHECK(messages == 1);
    CHECK(echoed == "ping me back");
    CHECK_FALSE(wrong_thread);
}

TEST_CASE("an empty function removes a callback") {
    tw_test::Pair p;
    int opens = 0;
    p.server.on_open([&](const tidewire::OpenEvent &) { ++opens; });
    p.server.on_open(nullptr);
    bool open = false;
    (void)p.client.connect(p.url());
    REQUIRE(tw_test::drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) { open |= which == 0 && std::holds_alternative<tidewire::OpenEvent>(ev); },
        [&] { return open; }));
    CHECK(opens == 0);
}

TEST_CASE("an exception from a callback leaves poll, and the next poll delivers the rest") {
    Context ctx;
    auto sender = ctx.sender();
    for (int i = 0; i < 3; ++i) sender.wake();
    int calls = 0;
    ctx.on_wake([&](const tidewire::WakeEvent &) {
        if (++calls == 1) throw std::runtime_error("from the callback");
    });
    // Wakes may be coalesced into fewer events; the first one throws either way.
    CHECK_THROWS_WITH(ctx.poll(1000ms), "from the callback");
    CHECK(calls == 1);
    const auto rest = ctx.poll(0ms);
    CHECK(calls == 1 + static_cast<int>(rest.size()));
}

TEST_CASE("poll from inside a callback is refused") {
    Context ctx;
    ctx.sender().wake();
    bool refused = false;
    ctx.on_wake([&](const tidewire::WakeEvent &) {
        try {
            (void)ctx.poll(0ms);
        } catch (const tidewire::Error &e) {
            refused = e.status() == TW_STATUS_INVALID_ARGUMENT;
        }
    });
    (void)ctx.poll(1000ms);
    CHECK(refused);
}

TEST_CASE("run() returns after stop() from a callback") {
    tw_test::Pair p;
    std::string got;
    std::atomic<bool> got_it{false};
    p.server.on_message([&](const tidewire::MessageEvent &m) {
        got = m.text();
        got_it = true;
        p.server.stop();
    });
    std::thread client_thread([&] {
        tidewire::Context &c = p.client;
        c.on_open([](const tidewire::OpenEvent &o) { o.conn.send_text("stop now"); });
        (void)c.connect(p.url());
        const auto deadline = std::chrono::steady_clock::now() + tw_test::kLimit;
        while (!got_it && std::chrono::steady_clock::now() < deadline) (void)c.poll(10ms);
    });
    // The client thread gives up after the limit; run() would then hang, so bound it too.
    std::atomic<bool> returned{false};
    std::thread watchdog([&] {
        const auto deadline = std::chrono::steady_clock::now() + tw_test::kLimit;
        while (!returned && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
        if (!returned) p.server.stop();
    });
    p.server.run();
    returned = true;
    client_thread.join();
    watchdog.join();
    CHECK(got == "stop now");
}

TEST_CASE("stop() from another thread wakes a run() that waits without limit") {
    Context ctx;
    (void)ctx.listen("127.0.0.1", 0);
    std::thread stopper([&] {
        std::this_thread::sleep_for(50ms);
        ctx.stop();
    });
    const auto start = std::chrono::steady_clock::now();
    ctx.run();
    stopper.join();
    CHECK(std::chrono::steady_clock::now() - start < tw_test::kLimit);
}

TEST_CASE("a host loop waits on fd() with next_timeout() and polls with 0") {
    tw_test::Pair p;
    const int fd = p.server.fd();
    CHECK(fd >= 0);
    (void)p.client.connect(p.url());
    bool open = false;
    const auto deadline = std::chrono::steady_clock::now() + tw_test::kLimit;
    while (!open && std::chrono::steady_clock::now() < deadline) {
        (void)p.client.poll(0ms);
        const auto wait = p.server.next_timeout().value_or(20ms);
        pollfd pfd{fd, POLLIN, 0};
        (void)::poll(&pfd, 1, static_cast<int>(std::min<std::chrono::milliseconds>(wait, 20ms).count()));
        for (const auto &ev : p.server.poll(0ms)) open |= std::holds_alternative<tidewire::OpenEvent>(ev);
    }
    CHECK(open);
}

TEST_CASE("shutdown() closes open connections with 1001 and waits until none is left") {
    tw_test::Pair p;
    tidewire::Connection server_side, client_side;
    REQUIRE(tw_test::open_pair(p, server_side, client_side));
    // The client answers the close from its own thread while the server shuts down.
    std::atomic<int> client_code{0};
    std::atomic<bool> server_done{false};
    std::thread client_thread([&] {
        const auto deadline = std::chrono::steady_clock::now() + tw_test::kLimit;
        while (!server_done && std::chrono::steady_clock::now() < deadline) {
            for (const auto &ev : p.client.poll(10ms)) {
                if (const auto *c = std::get_if<tidewire::CloseEvent>(&ev)) client_code = c->code;
            }
        }
    });
    int server_closes = 0;
    p.server.on_close([&](const tidewire::CloseEvent &) { ++server_closes; });
    p.server.shutdown(2000ms);
    server_done = true;
    client_thread.join();
    CHECK(p.server.connection_count() == 0);
    CHECK(server_closes == 1);
    CHECK(client_code == 1001);
    CHECK_THROWS_AS(p.server.listen("127.0.0.1", 0), tidewire::Error);
}

TEST_CASE("destroying a context with open connections closes them (the peer sees 1006)") {
    Context client;
    tidewire::Connection client_side;
    {
        Context server;
        const auto listener = server.listen("127.0.0.1", 0);
        client_side = client.connect("ws://127.0.0.1:" + std::to_string(listener.port()) + "/");
        int open = 0;
        REQUIRE(tw_test::drive(
            {&server, &client},
            [&](size_t, const tidewire::Event &ev) { open += std::holds_alternative<tidewire::OpenEvent>(ev); },
            [&] { return open == 2; }));
        server.on_message([](const tidewire::MessageEvent &) {});  // callbacks freed too
        client_side.send_text("left unread");
    }  // the server context goes away here, its connection still open
    int code = 0;
    REQUIRE(tw_test::drive(
        {&client},
        [&](size_t, const tidewire::Event &ev) {
            if (const auto *c = std::get_if<tidewire::CloseEvent>(&ev)) code = c->code;
        },
        [&] { return code != 0; }));
    CHECK(code == 1006);
    CHECK(client.connection_count() == 0);
}

// Open descriptors of this process (the poller, its waker and sockets are descriptors).
static size_t open_fds() {
    size_t n = 0;
    for (int fd = 0; fd < 4096; ++fd) n += ::fcntl(fd, F_GETFD) != -1;
    return n;
}

TEST_CASE("contexts with listeners, connections and senders free every descriptor") {
    const size_t before = open_fds();
    for (int round = 0; round < 10; ++round) {
        tw_test::Pair p;
        tidewire::Connection s, c;
        REQUIRE(tw_test::open_pair(p, s, c));
        const auto sender = p.server.sender();
        sender.send_text(s, "bye");
    }
    CHECK(open_fds() == before);
}
