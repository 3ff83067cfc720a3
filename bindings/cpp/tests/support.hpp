// What the C++ tests share: bounded poll loops and a loopback server/client pair.
// Loopback only, port 0, every wait bounded.
#ifndef TIDEWIRE_TESTS_SUPPORT_HPP
#define TIDEWIRE_TESTS_SUPPORT_HPP

#include <tidewire.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "doctest/doctest.h"

namespace tw_test {

using namespace std::chrono_literals;

// No single wait in a test takes longer than this.
constexpr auto kLimit = std::chrono::seconds(10);

// The TLS material of the C suite (tests/c/data), or $TW_TEST_DATA.
inline std::string data_path(const std::string &file) {
    const char *dir = std::getenv("TW_TEST_DATA");
    std::string base = dir != nullptr ? dir : TIDEWIRE_TEST_DATA;
    return base + "/" + file;
}

inline std::string slurp(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Polls every context in turn until `done` holds or the limit passes; each event goes to
// `on_event` with the index of its context. Returns whether `done` held.
inline bool drive(std::vector<tidewire::Context *> contexts,
                  const std::function<void(size_t, const tidewire::Event &)> &on_event,
                  const std::function<bool()> &done, std::chrono::milliseconds limit = kLimit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        for (size_t i = 0; i < contexts.size(); ++i) {
            for (const auto &ev : contexts[i]->poll(contexts.size() > 1 ? 5ms : 20ms)) {
                if (on_event) on_event(i, ev);
            }
        }
    }
    return true;
}

// Polls until `done` holds (callbacks do the work) or the limit passes.
inline bool drive(std::vector<tidewire::Context *> contexts, const std::function<bool()> &done,
                  std::chrono::milliseconds limit = kLimit) {
    return drive(std::move(contexts), nullptr, done, limit);
}

// A server context listening on 127.0.0.1:0 and a client context, both plain ws://.
struct Pair {
    tidewire::Context server;
    tidewire::Context client;
    tidewire::Listener listener;

    Pair() : listener(server.listen("127.0.0.1", 0)) {}
    Pair(const tidewire::Config &server_config, const tidewire::Config &client_config)
        : server(server_config), client(client_config), listener(server.listen("127.0.0.1", 0)) {}
    explicit Pair(const tidewire::ListenOptions &options) : listener(server.listen("127.0.0.1", 0, options)) {}

    std::string url(const std::string &path = "/") const {
        return "ws://127.0.0.1:" + std::to_string(listener.port()) + path;
    }
};

// Both ends of one open connection: returns them through the references.
inline bool open_pair(Pair &p, tidewire::Connection &server_side, tidewire::Connection &client_side,
                      const std::string &path = "/") {
    client_side = p.client.connect(p.url(path));
    bool server_open = false, client_open = false;
    return drive(
        {&p.server, &p.client},
        [&](size_t which, const tidewire::Event &ev) {
            if (const auto *o = std::get_if<tidewire::OpenEvent>(&ev)) {
                if (which == 0) {
                    server_side = o->conn;
                    server_open = true;
                } else {
                    client_open = o->conn == client_side;
                }
            }
        },
        [&] { return server_open && client_open; });
}

}  // namespace tw_test

#endif
