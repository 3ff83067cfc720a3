// Chat server, callback style: serves a small chat page at / over plain HTTP and a WebSocket
// at /chat on the same port; every message a client sends goes to every connected client
// (with its own type). Exits 0 on SIGINT or SIGTERM after closing its connections with 1001.
//
// Usage: chat_server_cpp [--host H] [--port P]      (default 127.0.0.1:8080)
//
// Prints "tidewire chat: open http://H:P/ in a browser" once ready (the real port when 0 was
// asked).

#include <tidewire.hpp>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>

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
<p>Every message goes to the server over a WebSocket and comes back to every open tab.
Open this page in a second tab to chat with yourself.</p>
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
const ws = new WebSocket(`${scheme}://${location.host}/chat`);
ws.onopen = () => show("connected", "sys");
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
        tidewire::Context ctx;
        tidewire::ListenOptions options;
        options.handle_http(true);
        const auto listener = ctx.listen(host, static_cast<uint16_t>(port), options);
        std::printf("tidewire chat: open http://%s/ in a browser (Ctrl-C to stop)\n",
                    listener.local_address().c_str());
        std::fflush(stdout);

        std::set<tidewire::Connection> members;
        ctx.on_http_request([](const tidewire::HttpRequestEvent &r) {
            const auto path = r.request.path();
            if (path == "/" || path == "/index.html") {
                r.conn.respond(200, {{"Content-Type", "text/html; charset=utf-8"}}, kPage);
            } else {
                r.conn.respond(404, {{"Content-Type", "text/plain; charset=utf-8"}}, "not found\n");
            }
        });
        ctx.on_open([&members](const tidewire::OpenEvent &o) {
            members.insert(o.conn);
            std::printf("%s joined (%zu here)\n", o.conn.peer_address().c_str(), members.size());
            std::fflush(stdout);
        });
        ctx.on_message([&members](const tidewire::MessageEvent &m) {
            for (const auto &member : members) {
                try {
                    (void)member.send(m.kind, m.data);
                } catch (const tidewire::Error &) {
                    // Closing or not reading: this one misses the message, the others get it.
                }
            }
        });
        ctx.on_close([&members](const tidewire::CloseEvent &c) {
            members.erase(c.conn);
            std::printf("someone left (%zu here)\n", members.size());
            std::fflush(stdout);
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
