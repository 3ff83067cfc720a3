// Server, Bus, ClusterOptions, Cluster: two workers on one port, a Bus::publish from a
// handler and Server::publish from the test thread reach every client once, shutdown closes
// with 1001 and rethrows a handler's exception; bad input; two servers joined through a real
// redis-server (started here on a free loopback port, stopped by PID) when it is installed.
#include "support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using tidewire::MessageKind;

namespace {

// The clients: one context, polled by the test thread.
struct Clients {
    tidewire::Context ctx;
    std::vector<tidewire::Connection> conns;
    std::map<tw_conn, bool> open;
    std::map<tw_conn, std::map<std::string, int>> got;
    std::map<tw_conn, uint16_t> closed;

    void connect(uint16_t port, size_t n) {
        for (size_t i = 0; i < n; ++i) conns.push_back(ctx.connect("ws://127.0.0.1:" + std::to_string(port) + "/"));
    }
    bool until(const std::function<bool()> &done, std::chrono::milliseconds limit = tw_test::kLimit) {
        return tw_test::drive(
            {&ctx},
            [&](size_t, const tidewire::Event &ev) {
                if (const auto *o = std::get_if<tidewire::OpenEvent>(&ev)) open[o->conn.id()] = true;
                if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) got[m->conn.id()][m->data.to_string()]++;
                if (const auto *c = std::get_if<tidewire::CloseEvent>(&ev)) closed[c->conn.id()] = c->code;
            },
            done, limit);
    }
    bool all_open() const { return open.size() == conns.size(); }
    // Every client got `text` exactly once (after a short wait for duplicates).
    bool got_once(const std::string &text) {
        auto all = [&] {
            for (const auto &c : conns) {
                if (got[c.id()][text] < 1) return false;
            }
            return true;
        };
        if (!until(all)) return false;
        until([] { return false; }, 200ms);
        for (const auto &c : conns) {
            if (got[c.id()][text] != 1) return false;
        }
        return true;
    }
};

// Subscribes every connection to "room"; "go" publishes "hello" through the bus; "boom"
// throws.
struct Handler {
    std::atomic<int> opens[2] = {0, 0};
    std::atomic<int> closes_1001{0};

    void operator()(tidewire::Bus &bus, const tidewire::Event &ev) {
        if (const auto *o = std::get_if<tidewire::OpenEvent>(&ev)) {
            bus.subscribe(o->conn, "room");
            opens[bus.worker() % 2]++;
        } else if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) {
            if (m->text() == "go") bus.publish("room", MessageKind::text, "hello");
            if (m->text() == "boom") throw std::runtime_error("boom");
        } else if (const auto *c = std::get_if<tidewire::CloseEvent>(&ev)) {
            if (c->code == 1001) closes_1001++;
        }
    }
    int total() const { return opens[0] + opens[1]; }
};

}  // namespace

TEST_CASE("Server: two workers share a port; publishes reach every client once; shutdown closes with 1001") {
    Handler h;
    tidewire::Server server("127.0.0.1", 0, tidewire::ServerOptions().threads(2),
                            [&h](tidewire::Bus &bus, const tidewire::Event &ev) { h(bus, ev); });
    CHECK(server.threads() == 2);
    CHECK(server.local_addr() == "127.0.0.1:" + std::to_string(server.port()));
    CHECK_FALSE(server.cluster_stats().has_value());
    CHECK_FALSE(server.cluster_connected());

    Clients clients;
    clients.connect(server.port(), 20);
    REQUIRE(clients.until([&] { return clients.all_open() && h.total() == 20; }));
    CHECK(h.opens[0] > 0);
    CHECK(h.opens[1] > 0);

    clients.conns[0].send_text("go");
    CHECK(clients.got_once("hello"));
    server.publish("room", MessageKind::text, "main");
    CHECK(clients.got_once("main"));
    server.sender(1).wake();
    CHECK_THROWS_AS(server.sender(2), tidewire::Error);

    // A handler's exception ends that event only; shutdown rethrows it.
    clients.conns[1].send_text("boom");
    server.publish("room", MessageKind::text, "after");
    CHECK(clients.got_once("after"));

    std::exception_ptr thrown;
    std::thread stopper([&] {
        try {
            server.shutdown(3s);
        } catch (...) {
            thrown = std::current_exception();
        }
    });
    const bool closed = clients.until([&] { return clients.closed.size() == clients.conns.size(); });
    stopper.join();
    CHECK(closed);
    for (const auto &c : clients.conns) CHECK(clients.closed[c.id()] == 1001);
    CHECK(h.closes_1001 == 20);
    REQUIRE(thrown);
    CHECK_THROWS_WITH_AS(std::rethrow_exception(thrown), "boom", std::runtime_error);
    try {
        server.publish("room", MessageKind::text, "late");
        FAIL("publish after shutdown");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_SHUTTING_DOWN);
    }
}

TEST_CASE("Server: bad input throws Error with the library's status") {
    CHECK_THROWS_AS(tidewire::Server("127.0.0.1", 0, nullptr), tidewire::Error);
    try {
        tidewire::Server s("127.0.0.1", 0, tidewire::ServerOptions().threads(1).cluster(tidewire::ClusterOptions("http://x")),
                           [](tidewire::Bus &, const tidewire::Event &) {});
        FAIL("a bad cluster URL was taken");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_URL);
        CHECK(e.detail().find("http://x") != std::string::npos);
    }
    CHECK_THROWS_AS(tidewire::ClusterOptions("redis://127.0.0.1/").backoff(-1ms, 1s), tidewire::Error);
    try {
        tidewire::Cluster c(tidewire::ClusterOptions("redis://127.0.0.1/").queue_limit(0), {});
        FAIL("queue limit 0 was taken");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_ARGUMENT);
    }
}

namespace {

uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

bool accepts(uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

// A redis-server on a free loopback port, without persistence; stopped by PID.
struct Redis {
    uint16_t port = free_port();
    pid_t pid = 0;

    bool start() {
        const std::string p = std::to_string(port);
        pid = fork();
        if (pid == 0) {
            const int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) {
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", static_cast<char *>(nullptr));
            _exit(127);
        }
        for (int i = 0; pid > 0 && i < 500; ++i) {
            if (accepts(port)) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }
    void stop() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            pid = 0;
        }
    }
    ~Redis() { stop(); }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port) + "/"; }
};

}  // namespace

TEST_CASE("Server: two servers joined through Redis; a publish crosses once, also after Redis restarts") {
    if (std::system("command -v redis-server >/dev/null 2>&1") != 0) {
        MESSAGE("SKIPPED: redis-server is not installed (make redis-tools)");
        return;
    }
    Redis redis;
    REQUIRE(redis.start());
    std::atomic<int> heard[2][4] = {};
    auto options = [&](int i) {
        tidewire::ServerOptions o;
        o.threads(1).cluster(
            tidewire::ClusterOptions(redis.url())
                .channel("tw-cpp-test")
                .backoff(50ms, 300ms)
                .on_status([&heard, i](tidewire::ClusterStatus s, std::string_view) {
                    heard[i][static_cast<uint32_t>(s)]++;
                }));
        return o;
    };
    Handler h0, h1;
    tidewire::Server a("127.0.0.1", 0, options(0), [&h0](tidewire::Bus &b, const tidewire::Event &e) { h0(b, e); });
    tidewire::Server b("127.0.0.1", 0, options(1), [&h1](tidewire::Bus &b, const tidewire::Event &e) { h1(b, e); });
    Clients clients;
    auto heard_all = [&](tidewire::ClusterStatus s) {
        return [&heard, s] { return heard[0][static_cast<uint32_t>(s)] > 0 && heard[1][static_cast<uint32_t>(s)] > 0; };
    };
    REQUIRE(clients.until(heard_all(tidewire::ClusterStatus::connected)));
    clients.connect(a.port(), 2);
    clients.connect(b.port(), 2);
    REQUIRE(clients.until([&] { return clients.all_open() && h0.total() == 2 && h1.total() == 2; }));

    a.publish("room", MessageKind::text, "cross-1");
    CHECK(clients.got_once("cross-1"));
    CHECK(a.cluster_stats()->sent == 1);
    CHECK(b.cluster_stats()->received == 1);

    redis.stop();
    REQUIRE(clients.until(heard_all(tidewire::ClusterStatus::interrupted)));
    REQUIRE(redis.start());
    REQUIRE(clients.until(heard_all(tidewire::ClusterStatus::resumed)));
    CHECK(b.cluster_connected());
    // From a handler this time: the bus carries it to the cluster too.
    clients.conns[2].send_text("go");
    CHECK(clients.got_once("hello"));

    a.shutdown(100ms);
    b.shutdown(100ms);
}
