// Echo server (the docs/DESIGN.md contract), callback style: echoes every message with its own
// type, answers pings (the library does), negotiates permessage-deflate when a client offers
// it, and exits 0 on SIGINT or SIGTERM after closing its connections with 1001.
//
// Usage: echo_server_cpp --host H --port P [--tls-cert F --tls-key F]
//
// Prints "listening on ws://H:P" (or wss://) once ready, with the real port when 0 was asked.

#include <tidewire.hpp>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

namespace {

// Errors that only say the connection is closing or gone (its close, failure or end is in
// the same batch of events): nobody is left to answer, which is not a server error.
bool gone(const tidewire::Error &e) {
    return e.status() == TW_STATUS_NOT_OPEN || e.status() == TW_STATUS_STALE_ID;
}

struct Args {
    std::string host = "127.0.0.1";
    long port = -1;
    std::optional<std::string> cert, key;
};

std::optional<Args> parse_args(int argc, char **argv) {
    Args args;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) return std::nullopt;
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--host") {
            args.host = value;
        } else if (flag == "--port") {
            char *end = nullptr;
            args.port = std::strtol(value.c_str(), &end, 10);
            if (*end != '\0' || args.port < 0 || args.port > 65535) return std::nullopt;
        } else if (flag == "--tls-cert") {
            args.cert = value;
        } else if (flag == "--tls-key") {
            args.key = value;
        } else {
            return std::nullopt;
        }
    }
    if (args.port < 0 || args.cert.has_value() != args.key.has_value()) return std::nullopt;
    return args;
}

}  // namespace

int main(int argc, char **argv) {
    const auto args = parse_args(argc, argv);
    if (!args) {
        std::fprintf(stderr, "usage: echo_server_cpp --host H --port P [--tls-cert F --tls-key F]\n");
        return 2;
    }

    // Blocked before any thread exists (every thread inherits the mask) and taken by an
    // ordinary thread, which may then call Context::stop (not async-signal-safe).
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    try {
        tidewire::Context ctx;
        tidewire::ListenOptions options;
        options.deflate(tidewire::DeflateConfig());
        if (args->cert) options.tls_pem_files(*args->cert, *args->key);
        const auto listener = ctx.listen(args->host, static_cast<uint16_t>(args->port), options);
        std::printf("listening on %s://%s\n", args->cert ? "wss" : "ws", listener.local_address().c_str());
        std::fflush(stdout);

        // Back-pressure: once a connection's output passes the high water mark (send
        // returns false), stop reading from it until it drains (WritableEvent), so that a
        // peer that sends without reading is slowed down by TCP instead of losing echoes.
        // The rest of the batch still fits: sends are refused only at the hard cap.
        ctx.on_message([](const tidewire::MessageEvent &m) {
            try {
                if (!m.conn.send(m.kind, m.data)) m.conn.pause_reading();
            } catch (const tidewire::Error &e) {
                if (e.status() == TW_STATUS_BUFFER_FULL) {
                    // Over the hard cap all the same: close with a reason, never drop an
                    // echo silently.
                    m.conn.close(1008, "output buffer full");
                } else if (!gone(e)) {
                    throw;
                }
            }
        });
        ctx.on_writable([](const tidewire::WritableEvent &w) {
            try {
                w.conn.resume_reading();
            } catch (const tidewire::Error &e) {
                if (!gone(e)) throw;
            }
        });

        std::thread waiter([&ctx, &signals] {
            int sig = 0;
            if (sigwait(&signals, &sig) == 0) ctx.stop();
        });
        try {
            ctx.run();
        } catch (...) {
            waiter.detach();  // blocked in sigwait; ends with the process
            throw;
        }
        waiter.join();
        // Close handshakes get two seconds; then whatever is left is dropped.
        ctx.shutdown(std::chrono::milliseconds(2000));
    } catch (const tidewire::Error &e) {
        std::fprintf(stderr, "echo_server_cpp: %s\n", e.what());
        return 1;
    }
    return 0;
}
