// Autobahn|Testsuite client (the docs/DESIGN.md contract), poll style: asks the fuzzing server how
// many cases it has, runs each one echoing every message with its own type, then asks it to
// write the reports. Offers permessage-deflate, like the Rust and C ones.
//
// Usage: autobahn_client_cpp URL [--agent NAME]     (URL like ws://127.0.0.1:9001)

#include <tidewire.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <variant>

namespace {

using namespace std::chrono_literals;

// Longest a single case may take before we give up on it (the suite's own limits are
// shorter; this only stops a hang).
constexpr auto kCaseLimit = std::chrono::seconds(120);

// Opens `url` and echoes every message until the connection is over. When `count` is given
// the first text message is parsed into it. Returns true when the connection closed.
bool session(tidewire::Context &ctx, const tidewire::ConnectOptions &options, const std::string &url,
             std::optional<long> *count = nullptr) {
    const auto conn = ctx.connect(url, options);
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        if (std::chrono::steady_clock::now() - start > kCaseLimit) {
            (void)conn.close();
            std::fprintf(stderr, "%s: no end after %lld s\n", url.c_str(),
                         static_cast<long long>(kCaseLimit.count()));
            return false;
        }
        for (const auto &ev : ctx.poll(500ms)) {
            if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) {
                if (m->conn != conn) continue;
                if (count != nullptr && !count->has_value() && m->is_text()) {
                    try {
                        *count = std::stol(std::string(m->text()));
                    } catch (const std::exception &) {
                        // Not a number: getCaseCount went wrong, reported by the caller.
                    }
                }
                try {
                    (void)m->conn.send(m->kind, m->data);
                } catch (const tidewire::Error &) {
                    // Refused sends (connection already closing) are part of some cases.
                }
            } else if (const auto *c = std::get_if<tidewire::CloseEvent>(&ev)) {
                if (c->conn == conn) return true;
            } else if (const auto *e = std::get_if<tidewire::ErrorEvent>(&ev)) {
                if (e->conn == conn) {
                    std::fprintf(stderr, "%s: %.*s\n", url.c_str(), static_cast<int>(e->message.size()),
                                 e->message.data());
                    return false;
                }
            }
        }
    }
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: autobahn_client_cpp URL [--agent NAME]\n");
        return 2;
    }
    std::string base = argv[1];
    while (!base.empty() && base.back() == '/') base.pop_back();
    std::string agent = "tidewire-cpp";
    for (int i = 2; i < argc; i += 2) {
        if (std::string(argv[i]) == "--agent" && i + 1 < argc) {
            agent = argv[i + 1];
        } else {
            std::fprintf(stderr, "usage: autobahn_client_cpp URL [--agent NAME]\n");
            return 2;
        }
    }

    try {
        tidewire::Context ctx;
        tidewire::ConnectOptions options;
        options.deflate(tidewire::DeflateConfig());

        std::optional<long> count;
        if (!session(ctx, options, base + "/getCaseCount", &count) || !count) {
            std::fprintf(stderr, "autobahn_client_cpp: getCaseCount gave no number\n");
            return 1;
        }
        std::printf("%ld cases\n", *count);
        std::fflush(stdout);
        for (long c = 1; c <= *count; ++c) {
            const std::string url = base + "/runCase?case=" + std::to_string(c) + "&agent=" + agent;
            if (!session(ctx, options, url)) std::fprintf(stderr, "case %ld failed\n", c);
        }
        if (!session(ctx, options, base + "/updateReports?agent=" + agent)) return 1;
        std::printf("reports updated for agent %s\n", agent.c_str());
    } catch (const tidewire::Error &e) {
        std::fprintf(stderr, "autobahn_client_cpp: %s\n", e.what());
        return 1;
    }
    return 0;
}
