// The consumer of the CMake package test (package_test.sh): a server and a client in one
// context over loopback, one echo, within 10 s.
#include <tidewire.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main() {
    using namespace std::chrono_literals;
    tidewire::Context ctx;
    const auto listener = ctx.listen("127.0.0.1", 0);
    const auto client = ctx.connect("ws://127.0.0.1:" + std::to_string(listener.port()) + "/");
    std::string echoed;
    ctx.on_open([&](const tidewire::OpenEvent &o) {
        if (o.conn == client) o.conn.send_text("through the package");
    });
    ctx.on_message([&](const tidewire::MessageEvent &m) {
        if (m.conn == client) {
            echoed = m.text();
        } else {
            (void)m.conn.send(m.kind, m.data);  // the server side echoes
        }
    });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (echoed.empty() && std::chrono::steady_clock::now() < deadline) (void)ctx.poll(50ms);
    std::printf("consumer: tidewire %s, echo %s\n", std::string(tidewire::version()).c_str(),
                echoed == "through the package" ? "ok" : "missing");
    return echoed == "through the package" ? 0 : 1;
}
