// ConnectOptions::proxy and ProxyError through real proxies: tinyproxy (HTTP CONNECT, with
// and without Basic auth), stunnel in front of tinyproxy (HTTPS proxy), danted (SOCKS5, with
// and without username auth), and fakes answering garbage or nothing. The proxies come from
// tests/proxies.py --serve (started once with popen, stopped by its PID at exit;
// $TW_PROXIES_SCRIPT overrides the path). Without them the cases are skipped, unless
// TIDEWIRE_REQUIRE_PROXIES=1.
#include "support.hpp"

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>

#include <cstring>
#include <map>

using namespace tw_test;
using tidewire::ConnectOptions;
using tidewire::ProxyError;
using tidewire::ProxyMode;

namespace {

class Proxies {
public:
    Proxies() {
        std::string script;
        if (const char *env = std::getenv("TW_PROXIES_SCRIPT")) {
            script = env;
        } else {
            // TIDEWIRE_TEST_DATA is <repo>/tests/c/data.
            script = std::string(TIDEWIRE_TEST_DATA) + "/../../proxies.py";
        }
        const std::string cmd = "exec python3 '" + script + "' --serve";
        std::fflush(stdout);
        pipe_ = popen(cmd.c_str(), "r");
        if (pipe_ == nullptr) {
            why_ = "cannot run " + script;
            return;
        }
        char line[512];
        while (std::fgets(line, sizeof line, pipe_) != nullptr) {
            std::string l(line);
            while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
            if (l == "READY") {
                ready_ = pid_ > 0;
                return;
            }
            const auto eq = l.find('=');
            if (eq == std::string::npos) continue;
            const std::string k = l.substr(0, eq), v = l.substr(eq + 1);
            if (k == "ERROR") {
                why_ = v;
                return;
            }
            if (k == "TW_PROXIES_PID") {
                pid_ = static_cast<pid_t>(std::atol(v.c_str()));
            } else {
                vars_[k] = v;
            }
        }
        why_ = script + " ended without READY";
    }

    ~Proxies() {
        if (pid_ > 0) kill(pid_, SIGTERM);
        if (pipe_ != nullptr) pclose(pipe_);
    }

    Proxies(const Proxies &) = delete;
    Proxies &operator=(const Proxies &) = delete;

    // False (after a message, or a failed check when they are required) without proxies.
    bool ready() const {
        if (ready_) return true;
        const char *req = std::getenv("TIDEWIRE_REQUIRE_PROXIES");
        if (req != nullptr && std::string(req) == "1") {
            FAIL("proxies required (TIDEWIRE_REQUIRE_PROXIES=1): " << why_);
        }
        MESSAGE("SKIPPED: no proxies: " << why_ << " (`make proxy-tools`)");
        return false;
    }

    std::string get(const std::string &name) const {
        const auto it = vars_.find(name);
        return it == vars_.end() ? std::string() : it->second;
    }

private:
    FILE *pipe_ = nullptr;
    pid_t pid_ = 0;
    bool ready_ = false;
    std::string why_;
    std::map<std::string, std::string> vars_;
};

Proxies &proxies() {
    static Proxies p;
    return p;
}

struct Outcome {
    bool echoed = false;
    bool failed = false;
    tidewire::Status status = TW_STATUS_OK;
    std::string message;
    bool is_proxy_error = false;
    std::string thrown;  // what() of the ProxyError raise() threw
    bool timed_out = false;
    std::chrono::milliseconds took{0};
};

ConnectOptions options_for(const std::string &proxy, bool trust_proxy, std::chrono::milliseconds timeout) {
    ConnectOptions co;
    co.tls_use_system_roots(false).tls_ca_file(data_path("ca.pem")).connect_timeout(timeout);
    if (trust_proxy) co.add_tls_ca_pem(slurp(proxies().get("TW_PROXY_HTTPS_CA")));
    if (proxy == "direct") {
        co.proxy(ProxyMode::direct);
    } else {
        co.proxy(proxy);
    }
    return co;
}

// A ws:// or wss:// echo server of its own, one message through `proxy`, or the error.
Outcome through(const std::string &proxy, bool secure, bool trust_proxy = false,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    tidewire::ListenOptions lo;
    if (secure) lo.tls_pem_files(data_path("server.pem"), data_path("server.key"));
    tidewire::Context server, client;
    const auto listener = server.listen("127.0.0.1", 0, lo);
    const std::string url =
        std::string(secure ? "wss" : "ws") + "://127.0.0.1:" + std::to_string(listener.port()) + "/p";
    Outcome o;
    const auto started = std::chrono::steady_clock::now();
    const auto conn = client.connect(url, options_for(proxy, trust_proxy, timeout));
    const bool ended = drive(
        {&server, &client},
        [&](size_t which, const tidewire::Event &ev) {
            if (const auto *m = std::get_if<tidewire::MessageEvent>(&ev)) {
                if (which == 0) {
                    (void)m->conn.send(m->kind, m->data);
                } else {
                    o.echoed = m->data.as_string_view() == "through";
                }
            } else if (const auto *op = std::get_if<tidewire::OpenEvent>(&ev)) {
                if (which == 1) (void)op->conn.send_text("through");
            } else if (const auto *e = std::get_if<tidewire::ErrorEvent>(&ev)) {
                if (which == 1 && e->conn == conn) {
                    o.failed = true;
                    o.status = e->status;
                    o.message = std::string(e->message);
                    o.is_proxy_error = e->is_proxy_error();
                    try {
                        e->raise();
                    } catch (const ProxyError &pe) {
                        o.thrown = pe.what();
                        o.timed_out = pe.timed_out();
                    } catch (const tidewire::Error &) {
                    }
                }
            }
        },
        [&] { return o.echoed || o.failed; });
    o.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    REQUIRE(ended);
    return o;
}

void echo_through(const std::string &var, bool trust_proxy = false) {
    const std::string proxy = proxies().get(var);
    REQUIRE_FALSE(proxy.empty());
    for (const bool secure : {false, true}) {
        INFO(var << (secure ? " wss" : " ws"));
        const Outcome o = through(proxy, secure, trust_proxy);
        INFO(o.message);
        CHECK_FALSE(o.failed);
        CHECK(o.echoed);
    }
}

std::string with_wrong_password(const std::string &url) {
    const auto colon = url.find(':', url.find("://") + 3);
    const auto at = url.find('@');
    return url.substr(0, colon) + ":wrong" + url.substr(at);
}

void check_proxy_failure(const Outcome &o, const std::string &want) {
    INFO(o.message);
    CHECK(o.failed);
    CHECK(o.status == TW_STATUS_PROXY);
    CHECK(o.is_proxy_error);
    CHECK(o.message.find(want) != std::string::npos);
    CHECK(o.message.find("wrong") == std::string::npos);
    CHECK(o.thrown.find(want) != std::string::npos);
    CHECK(o.took < std::chrono::seconds(4));
}

}  // namespace

TEST_CASE("ConnectOptions::proxy takes the environment, direct, or a URL; a bad URL throws Error") {
    ConnectOptions co;
    CHECK_NOTHROW(co.proxy(ProxyMode::environment));
    CHECK_NOTHROW(co.proxy(ProxyMode::direct));
    CHECK_NOTHROW(co.proxy("socks5h://u:p@127.0.0.1:1080"));
    CHECK_NOTHROW(co.proxy("https://proxy.example:3129"));
    CHECK_THROWS_AS(co.proxy("ftp://127.0.0.1:21"), tidewire::Error);
    try {
        co.proxy("nope://x");
    } catch (const ProxyError &) {
        FAIL("a bad proxy URL is an argument error, not a ProxyError");
    } catch (const tidewire::Error &e) {
        CHECK(e.status() == TW_STATUS_INVALID_ARGUMENT);
    }
    static_assert(std::is_base_of_v<tidewire::Error, ProxyError>);
}

TEST_CASE("ws and wss through tinyproxy, with and without Basic auth") {
    if (!proxies().ready()) return;
    echo_through("TW_PROXY_HTTP");
    echo_through("TW_PROXY_HTTP_AUTH");
}

TEST_CASE("ws and wss through the HTTPS proxy (TLS inside TLS for wss)") {
    if (!proxies().ready()) return;
    echo_through("TW_PROXY_HTTPS", true);
}

TEST_CASE("ws and wss through danted, with and without username auth") {
    if (!proxies().ready()) return;
    echo_through("TW_PROXY_SOCKS");
    if (proxies().get("TW_PROXY_SOCKS_AUTH").empty()) {
        MESSAGE("SKIPPED danted with auth: not root");
        return;
    }
    echo_through("TW_PROXY_SOCKS_AUTH");
}

TEST_CASE("proxy failures are ProxyError with what failed, within the timeout") {
    if (!proxies().ready()) return;
    SUBCASE("wrong HTTP credentials: the status") {
        // tinyproxy 1.11 answers 401 to wrong Basic credentials.
        check_proxy_failure(through(with_wrong_password(proxies().get("TW_PROXY_HTTP_AUTH")), true), "40");
    }
    SUBCASE("wrong SOCKS credentials") {
        const std::string url = proxies().get("TW_PROXY_SOCKS_AUTH");
        if (!url.empty()) check_proxy_failure(through(with_wrong_password(url), false), "rejected the username");
    }
    SUBCASE("a refusing proxy: 403") { check_proxy_failure(through(proxies().get("TW_PROXY_REFUSING"), false), "403"); }
    SUBCASE("garbage") { check_proxy_failure(through(proxies().get("TW_PROXY_GARBAGE"), false), "malformed"); }
    SUBCASE("an untrusted HTTPS proxy: TLS to the proxy") {
        check_proxy_failure(through(proxies().get("TW_PROXY_HTTPS"), true), "TLS to the proxy failed");
    }
    SUBCASE("a silent proxy: ProxyError that timed out") {
        const Outcome o = through(proxies().get("TW_PROXY_SILENT"), true, false, std::chrono::milliseconds(700));
        CHECK(o.status == TW_STATUS_PROXY_TIMEOUT);
        CHECK(o.timed_out);
        CHECK(o.took >= std::chrono::milliseconds(650));
        CHECK(o.took < std::chrono::milliseconds(2700));
    }
}
