// Chat server on topics, callback style: serves a small chat page at / over plain HTTP and
// WebSockets at /chat (the room "lobby") and /chat/NAME (the room NAME) on the same port.
// Each client subscribes to its room when it opens; every message it sends is published to
// the room (with its own type), framed once for all members, not looped over by hand. A
// member that stops reading is closed with 1008 once 1 MiB waits for it (it reconnects and
// misses nothing silently), so one slow reader never holds up or bloats the room. Exits 0
// on SIGINT or SIGTERM after closing its connections with 1001.
//
// Usage: chat_server_cpp [--host H] [--port P]      (default 127.0.0.1:8080)
//
// Prints "tidewire chat: open http://H:P/ in a browser" once ready (the real port when 0 was
// asked). The page joins the room named after "#" in its URL (http://H:P/#games).

#include <tidewire.hpp>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

namespace {

constexpr const char *kPage = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tidewire chat (C++)</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #log { border: 1px solid #ccc; border-radius: 6px; height: 20rem; overflow-y: auto; padding: .5rem; }
  #log p { margin: .2rem 0; }
  .sys { color: #777; font-style: italic; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  input { flex: 1; padding: .4rem; }
</style>
</head>
<body>
<h1>tidewire chat</h1>
<p>Every message goes to the server over a WebSocket and comes back to every tab in the same
room. Open this page in a second tab to chat with yourself; add <code>#name</code> to the URL
for another room.</p>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something" autofocus>
<button>Send</button></form>
<script>
const log = document.getElementById("log");
function show(text, cls) {
  const p = document.createElement("p");
  p.textContent = text;
  if (cls) p.className = cls;
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
}
const scheme = location.protocol === "https:" ? "wss" : "ws";
const room = decodeURIComponent(location.hash.slice(1));
const ws = new WebSocket(`${scheme}://${location.host}/chat` + (room ? "/" + encodeURIComponent(room) : ""));
ws.onopen = () => show(`connected to ${room || "lobby"}`, "sys");
ws.onmessage = (e) => show(typeof e.data === "string" ? e.data : "(binary message)");
ws.onclose = (e) => show(`disconnected (${e.code})`, "sys");
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  if (input.value && ws.readyState === WebSocket.OPEN) ws.send(input.value);
  input.value = "";
};
</script>
</body>
</html>
)page";

// The room of a WebSocket path: "/chat" is the lobby, "/chat/NAME" the room NAME (the
// bytes as the client sent them); anything else is no room.
std::optional<std::string> room_of(std::string_view path) {
    path = path.substr(0, path.find('?'));
    constexpr std::string_view prefix = "/chat";
    if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
    path.remove_prefix(prefix.size());
    if (path.empty() || path == "/") return std::string("lobby");
    if (path.front() != '/') return std::nullopt;
    return std::string(path.substr(1));
}

void log_error(const char *what, const tidewire::Error &e) {
    std::fprintf(stderr, "chat_server_cpp: %s: %s\n", what, e.what());
}

int usage() {
    std::fprintf(stderr, "usage: chat_server_cpp [--host H] [--port P]\n");
    return 2;
}

}  // namespace

int main(int argc, char **argv) {
    std::string host = "127.0.0.1";
    long port = 8080;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) return usage();
        const std::string flag = argv[i];
        if (flag == "--host") {
            host = argv[i + 1];
        } else if (flag == "--port") {
            char *end = nullptr;
            port = std::strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) return usage();
        } else {
            return usage();
        }
    }

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    try {
        // A chat line is small: a client that sends more is failed with 1009.
        tidewire::Config config;
        config.max_message_size(64 << 10);
        tidewire::Context ctx(config);
        tidewire::ListenOptions options;
        options.handle_http(true).slow_subscriber(1 << 20, tidewire::SlowAction::close);
        const auto listener = ctx.listen(host, static_cast<uint16_t>(port), options);
        std::printf("tidewire chat: open http://%s/ in a browser (Ctrl-C to stop)\n",
                    listener.local_address().c_str());
        std::fflush(stdout);

        // Which room each member is in (the context knows who is in each room).
        std::unordered_map<tidewire::Connection, std::string> rooms;

        ctx.on_http_request([](const tidewire::HttpRequestEvent &r) {
            try {
                const auto path = r.request.path();
                if (path == "/" || path == "/index.html") {
                    r.conn.respond(200, {{"Content-Type", "text/html; charset=utf-8"}}, kPage);
                } else {
                    r.conn.respond(404, {{"Content-Type", "text/plain; charset=utf-8"}}, "not found\n");
                }
            } catch (const tidewire::Error &e) {
                log_error("respond", e);
            }
        });
        ctx.on_open([&ctx, &rooms](const tidewire::OpenEvent &o) {
            if (!o.listener) return;  // not ours: this program makes no client connections
            try {
                auto room = room_of(o.path);
                if (!room) {
                    (void)o.conn.close(1008, "no such path: use /chat or /chat/ROOM");
                    return;
                }
                (void)ctx.subscribe(o.conn, *room);
                std::printf("%s joined %s (%zu here)\n", o.conn.peer_address().c_str(), room->c_str(),
                            ctx.subscriber_count(*room));
                std::fflush(stdout);
                rooms.emplace(o.conn, std::move(*room));
            } catch (const tidewire::Error &e) {
                log_error("join", e);
            }
        });
        ctx.on_message([&ctx, &rooms](const tidewire::MessageEvent &m) {
            const auto member = rooms.find(m.conn);
            if (member == rooms.end()) return;  // closed before it joined
            try {
                // One frame for the whole room; members that do not keep up are closed with
                // 1008 by the listener's slow-subscriber policy instead of growing without
                // bound (the report counts them).
                const tidewire::PublishReport report = ctx.publish(member->second, m.kind, m.data);
                if (report.closed_slow > 0) {
                    std::printf("%zu slow member(s) of %s closed\n", report.closed_slow, member->second.c_str());
                    std::fflush(stdout);
                }
            } catch (const tidewire::Error &e) {
                log_error("publish", e);
            }
        });
        ctx.on_close([&ctx, &rooms](const tidewire::CloseEvent &c) {
            // The context already took the connection out of its room.
            const auto member = rooms.find(c.conn);
            if (member == rooms.end()) return;
            std::printf("someone left %s (%u; %zu here)\n", member->second.c_str(), static_cast<unsigned>(c.code),
                        ctx.subscriber_count(member->second));
            std::fflush(stdout);
            rooms.erase(member);
        });
        ctx.on_error([](const tidewire::ErrorEvent &e) {
            std::fprintf(stderr, "chat_server_cpp: %s: %.*s\n", tidewire::status_str(e.status),
                         static_cast<int>(e.message.size()), e.message.data());
        });

        std::thread waiter([&ctx, &signals] {
            int sig = 0;
            if (sigwait(&signals, &sig) == 0) ctx.stop();
        });
        try {
            ctx.run();
        } catch (...) {
            waiter.detach();
            throw;
        }
        waiter.join();
        ctx.shutdown(std::chrono::milliseconds(2000));
    } catch (const tidewire::Error &e) {
        std::fprintf(stderr, "chat_server_cpp: %s\n", e.what());
        return 1;
    }
    return 0;
}
