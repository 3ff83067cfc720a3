// A client for the example smoke tests (examples_test.sh), built on tidewire.hpp.
//
//   ws_check echo URL [--ca FILE]   text and binary come back with their own type
//   ws_check chat URL               two clients; what one sends reaches both
//   ws_check rooms URL              the chat under load: 2 rooms of 30 clients each sending
//                                   20 messages; each client gets exactly its room's 600, in
//                                   each sender's order; meanwhile, in a third room, a member
//                                   that stops reading while 60 MB flow is closed with 1008
//
// Exits 0 on success, 1 on failure (with the reason on stderr); every run ends within 10 s.
#include <tidewire.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
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

bool rooms(const std::string &url) {
    constexpr int kPerRoom = 30, kEach = 20;
    tidewire::Config config;
    config.max_message_size(1 << 20);
    tidewire::Context ctx(config);
    struct Member {
        int room = 0, index = 0;
        int sent = 0;
        std::map<int, int> next;  // per sender of its room: the next sequence number expected
        int got = 0;
    };
    std::map<tw_conn, Member> members;
    for (int room = 0; room < 2; ++room) {
        for (int i = 0; i < kPerRoom; ++i) {
            const auto c = ctx.connect(url + "/room" + std::to_string(room));
            members[c.id()] = Member{room, i, 0, {}, 0};
        }
    }
    // A third room holds a flooder and a member that stops reading: the flooder sends 1000
    // messages of 60 KB that do not compress (60 MB: more than loopback's kernel buffers,
    // which may grow to 36 MB, and the server's 1 MiB limit) one at a time, each once its own copy came back so that the flooder never
    // falls behind. Then the paused member reads again: it must find what the server let
    // through before the limit, then a close with 1008.
    const auto flooder = ctx.connect(url + "/flood");
    const auto slow = ctx.connect(url + "/flood");
    int open = 0, done = 0;
    bool in_flight = false;
    constexpr int kRounds = 1000;
    int rounds = 0;
    std::optional<uint16_t> slow_code;
    std::string big(60000, '\0');
    uint32_t seed = 12345;
    for (char &b : big) {  // noise, so that permessage-deflate cannot shrink it
        seed = seed * 1664525u + 1013904223u;
        b = static_cast<char>(seed >> 24);
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        for (const auto &ev : ctx.poll(5ms)) {
            if (const auto *o = std::get_if<tidewire::OpenEvent>(&ev)) {
                if (o->conn == slow) slow.pause_reading();
                ++open;
            } else if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) {
                if (m->conn == slow) {
                    if (rounds < kRounds) return fail("the paused member received a message");
                    continue;
                }
                if (m->conn == flooder) {
                    if (m->data.size() != big.size()) return fail("the flood room got a chat message");
                    in_flight = false;
                    continue;
                }
                Member &me = members.at(m->conn.id());
                const std::string text(m->text());
                int room = -1, from = -1, seq = -1;
                if (std::sscanf(text.c_str(), "r%d s%d n%d", &room, &from, &seq) != 3 || room != me.room)
                    return fail("a message from another room or malformed: " + text);
                if (seq != me.next[from]++) return fail("out of order or duplicated: " + text);
                if (++me.got == kPerRoom * kEach) ++done;
            } else if (const auto *c = std::get_if<tidewire::CloseEvent>(&ev)) {
                if (c->conn != slow) return fail("a member was closed with " + std::to_string(c->code));
                slow_code = c->code;
            } else if (const auto *e = std::get_if<tidewire::ErrorEvent>(&ev)) {
                return fail(std::string(e->message));
            }
        }
        if (open < 2 * kPerRoom + 2) continue;
        for (auto &[id, me] : members) {  // everyone sends a little at every turn
            for (int k = 0; k < 2 && me.sent < kEach; ++k, ++me.sent) {
                const tidewire::Connection c(ctx.handle(), id);
                (void)c.send_text("r" + std::to_string(me.room) + " s" + std::to_string(me.index) + " n" +
                                  std::to_string(me.sent));
            }
        }
        if (rounds < kRounds && !in_flight) {
            (void)flooder.send_binary(big);
            in_flight = true;
            if (++rounds == kRounds) slow.resume_reading();
        }
        if (done == 2 * kPerRoom) {
            for (const auto &[id, me] : members) {
                if (me.got != kPerRoom * kEach) return fail("a member got more than its room's messages");
            }
            if (slow_code) {
                if (*slow_code != 1008) return fail("the slow member was closed with " + std::to_string(*slow_code));
                return true;
            }
        }
    }
    return fail("rooms: " + std::to_string(done) + " of " + std::to_string(2 * kPerRoom) +
                " members got everything; slow member " + (slow_code ? "closed" : "still open") + " within 10 s, after " + std::to_string(rounds) + " large messages");
}

}  // namespace

int main(int argc, char **argv) {
    try {
        const std::vector<std::string> args(argv + 1, argv + argc);
        if (args.size() == 2 && args[0] == "echo") return echo(args[1], nullptr) ? 0 : 1;
        if (args.size() == 4 && args[0] == "echo" && args[2] == "--ca") return echo(args[1], argv[4]) ? 0 : 1;
        if (args.size() == 2 && args[0] == "chat") return chat(args[1]) ? 0 : 1;
        if (args.size() == 2 && args[0] == "rooms") return rooms(args[1]) ? 0 : 1;
    } catch (const tidewire::Error &e) {
        std::fprintf(stderr, "ws_check: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: ws_check echo URL [--ca FILE] | ws_check chat URL | ws_check rooms URL\n");
    return 2;
}
