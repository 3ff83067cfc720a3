// tidewire::Request: upgrade requests answered by the application (accept / reject) and
// plain HTTP requests answered with respond.
#include "support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;

// A blocking HTTP/1.1 exchange over loopback (bounded by socket timeouts): the raw answer.
static std::string http_get(uint16_t port, const std::string &target) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return "";
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
        const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test: yes\r\n\r\n";
        if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
            char buf[4096];
            ssize_t n;
            while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
        }
    }
    ::close(fd);
    return out;
}

TEST_CASE("an upgrade request is readable and accepted with a subprotocol and a header") {
    tidewire::ListenOptions lo;
    lo.handle_requests(true);
    tw_test::Pair p(lo);
    tidewire::ConnectOptions co;
    co.add_subprotocol("chat.v2").add_subprotocol("chat.v1").add_header("X-Token", "abc").origin("http://localhost");
    (void)p.client.connect(p.url("/room/7?user=ann"), co);
    std::string method, path, query, token, origin;
    std::vector<std::string> offered;
    size_t header_count = 0;
    std::optional<std::string> client_proto;
    p.server.on_request([&](const tidewire::RequestEvent &r) {
        method = r.request.method();
        path = r.request.path();
        query = r.request.query().value_or("<none>");
        token = r.request.header("x-token").value_or("");
        origin = r.request.header(std::string("Origin")).value_or("");
        CHECK_FALSE(r.request.header("X-Missing").has_value());
        header_count = r.request.headers().size();
        for (auto s : r.request.subprotocols()) offered.emplace_back(s);
        r.conn.accept("chat.v1", {{"X-Room", "7"}});
    });
    p.client.on_open([&](const tidewire::OpenEvent &o) { client_proto = std::string(o.subprotocol.value_or("")); });
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return client_proto.has_value(); }));
    CHECK(method == "GET");
    CHECK(path == "/room/7");
    CHECK(query == "user=ann");
    CHECK(token == "abc");
    CHECK(origin == "http://localhost");
    CHECK(header_count >= 6);
    CHECK(offered == std::vector<std::string>{"chat.v2", "chat.v1"});
    CHECK(*client_proto == "chat.v1");
}

TEST_CASE("a rejected upgrade ends the client with an ErrorEvent carrying the HTTP status") {
    tidewire::ListenOptions lo;
    lo.handle_requests(true);
    tw_test::Pair p(lo);
    p.server.on_request([](const tidewire::RequestEvent &r) {
        CHECK_FALSE(r.request.query().has_value());
        r.conn.reject(403, {{"Content-Type", "text/plain"}}, "go away");
    });
    (void)p.client.connect(p.url("/private"));
    std::optional<tidewire::ErrorEvent> error;
    p.client.on_error([&](const tidewire::ErrorEvent &e) { error = e; });
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return error.has_value(); }));
    CHECK(error->status == TW_STATUS_HANDSHAKE_REJECTED);
    CHECK(error->http_status == 403);
}

TEST_CASE("the listener's rules run before RequestEvent, which carries the selected subprotocol") {
    tidewire::ListenOptions lo;
    lo.handle_requests(true).add_subprotocol("chat.v2").add_subprotocol("chat.v1").require_subprotocol(true);
    tw_test::Pair p(lo);
    int requests = 0;
    std::string selected;
    p.server.on_request([&](const tidewire::RequestEvent &r) {
        ++requests;
        selected = std::string(r.subprotocol);
        r.conn.accept(r.subprotocol);
    });
    tidewire::ConnectOptions good;
    good.add_subprotocol("chat.v1").add_subprotocol("chat.v2");
    (void)p.client.connect(p.url("/"), good);
    tidewire::ConnectOptions none;  // offers nothing: refused with 400 before the application
    (void)p.client.connect(p.url("/"), none);
    std::optional<std::string> opened;
    std::optional<tidewire::ErrorEvent> error;
    p.client.on_open([&](const tidewire::OpenEvent &o) { opened = std::string(o.subprotocol.value_or("")); });
    p.client.on_error([&](const tidewire::ErrorEvent &e) { error = e; });
    REQUIRE(tw_test::drive({&p.server, &p.client}, [&] { return opened.has_value() && error.has_value(); }));
    CHECK(requests == 1);
    CHECK(selected == "chat.v2");  // the server's preference
    CHECK(*opened == "chat.v2");
    CHECK(error->status == TW_STATUS_HANDSHAKE_REJECTED);
    CHECK(error->http_status == 400);
}

TEST_CASE("a plain HTTP request is answered with respond") {
    tidewire::ListenOptions lo;
    lo.handle_http(true);
    tw_test::Pair p(lo);
    std::string seen_path, seen_header;
    p.server.on_http_request([&](const tidewire::HttpRequestEvent &r) {
        seen_path = r.request.path();
        seen_header = r.request.header("X-Test").value_or("");
        CHECK(r.listener == p.listener);
        r.conn.respond(200, {{"Content-Type", "text/plain; charset=utf-8"}}, "hello over http\n");
    });
    std::atomic<bool> done{false};
    std::string answer;
    std::thread client([&] {
        answer = http_get(p.listener.port(), "/index.html");
        done = true;
    });
    const bool finished = tw_test::drive({&p.server}, [&] { return done.load(); });
    client.join();
    REQUIRE(finished);
    CHECK(seen_path == "/index.html");
    CHECK(seen_header == "yes");
    CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(answer.find("Content-Length: 16") != std::string::npos);
    CHECK(answer.find("\r\n\r\nhello over http\n") != std::string::npos);
}
