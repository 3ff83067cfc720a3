// A client for the example smoke tests (examples_test.sh), built on tidewire.hpp.
//
//   ws_check echo URL [--ca FILE]   text and binary come back with their own type
//   ws_check chat URL               two clients; what one sends reaches both
//
// Exits 0 on success, 1 on failure (with the reason on stderr); every run ends within 10 s.
#include <tidewire.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

namespace {

using namespace std::chrono_literals;

bool fail(const std::string &why) {
    std::fprintf(stderr, "ws_check: %s\n", why.c_str());
    return false;
}

bool echo(const std::string &url, const char *ca) {
    tidewire::Context ctx;
    tidewire::ConnectOptions options;
    if (ca != nullptr) options.tls_use_system_roots(false).tls_ca_file(ca);
    const auto conn = ctx.connect(url, options);
    const std::string binary("\x00\x01\xfe\xff", 4);
    bool text_back = false, binary_back = false;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        for (const auto &ev : ctx.poll(50ms)) {
            if (std::holds_alternative<tidewire::OpenEvent>(ev)) {
                conn.send_text("hello from C++");
                conn.send_binary(binary);
            } else if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) {
                text_back |= m->is_text() && m->text() == "hello from C++";
                binary_back |= !m->is_text() && m->data.as_string_view() == binary;
                if (text_back && binary_back) conn.close();
            } else if (const auto *c = std::get_if<tidewire::CloseEvent>(&ev)) {
                if (text_back && binary_back) return true;
                return fail("closed early with " + std::to_string(c->code));
            } else if (const auto *e = std::get_if<tidewire::ErrorEvent>(&ev)) {
                return fail(std::string(e->message));
            }
        }
    }
    return fail("no echo within 10 s");
}

bool chat(const std::string &url) {
    tidewire::Context ctx;
    const auto a = ctx.connect(url), b = ctx.connect(url);
    int open = 0, got = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        for (const auto &ev : ctx.poll(50ms)) {
            if (std::holds_alternative<tidewire::OpenEvent>(ev) && ++open == 2) a.send_text("hi all");
            if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) {
                if (m->text() != "hi all") return fail("unexpected message");
                if (++got == 2) return true;
            }
            if (const auto *e = std::get_if<tidewire::ErrorEvent>(&ev)) return fail(std::string(e->message));
            if (std::holds_alternative<tidewire::CloseEvent>(ev)) return fail("closed early");
        }
    }
    (void)b;
    return fail("the message did not reach both clients within 10 s");
}

}  // namespace

int main(int argc, char **argv) {
    try {
        const std::vector<std::string> args(argv + 1, argv + argc);
        if (args.size() == 2 && args[0] == "echo") return echo(args[1], nullptr) ? 0 : 1;
        if (args.size() == 4 && args[0] == "echo" && args[2] == "--ca") return echo(args[1], argv[4]) ? 0 : 1;
        if (args.size() == 2 && args[0] == "chat") return chat(args[1]) ? 0 : 1;
    } catch (const tidewire::Error &e) {
        std::fprintf(stderr, "ws_check: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: ws_check echo URL [--ca FILE] | ws_check chat URL\n");
    return 2;
}
