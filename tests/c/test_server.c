/* Server decisions: upgrade requests accepted (subprotocol, extra headers) or rejected,
 * plain HTTP requests answered, origins and subprotocols chosen by the listener. */
#include "runner.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common.h"

struct session {
    tw_context *ctx[2]; /* server, client */
    tw_listener listener;
    uint16_t port;
    tw_conn client;
};

static bool session_start(struct session *s, const tw_listen_options *lo, const tw_connect_options *co,
                          const char *path) {
    char url[96];
    memset(s, 0, sizeof *s);
    return tc_ok(tw_context_new(NULL, &s->ctx[0]), "ctx") && tc_ok(tw_context_new(NULL, &s->ctx[1]), "ctx") &&
           tc_listen(s->ctx[0], lo, &s->listener, &s->port) &&
           tc_ok(tw_context_connect(s->ctx[1], tc_url(url, sizeof url, "ws", s->port, path), co, &s->client),
                 "connect");
}

static void session_end(struct session *s) {
    tw_context_free(s->ctx[0]);
    tw_context_free(s->ctx[1]);
}

struct decide {
    bool accept;
    bool bad;
    int marker;
    bool request_seen;
    /* client outcome */
    bool opened, failed;
    tw_status fail_status;
    uint16_t http_status;
    char subprotocol[32];
};

#define EXPECT(cond)                                        \
    do {                                                    \
        if (!(cond)) {                                      \
            fprintf(stderr, "    expected: %s\n", #cond);   \
            st->bad = true;                                 \
            return true;                                    \
        }                                                   \
    } while (0)

static bool on_decide(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    struct decide *st = state;
    if (which == 0 && ev->kind == TW_EVENT_REQUEST) {
        const tw_request *r = ev->request;
        tw_bytes b, name, value;
        size_t count = 0;
        st->request_seen = true;
        EXPECT(r != NULL && ev->listener != 0);
        EXPECT(tw_request_method(r, &b) == TW_STATUS_OK && tc_eq(b, "GET"));
        EXPECT(tw_request_path(r, &b) == TW_STATUS_OK && tc_eq(b, "/chat"));
        EXPECT(tw_request_query(r, &b) == TW_STATUS_OK && tc_eq(b, "room=1"));
        EXPECT(tw_request_header(r, "x-token", &b) == TW_STATUS_OK && tc_eq(b, "abc"));
        EXPECT(tw_request_header(r, "Origin", &b) == TW_STATUS_OK && tc_eq(b, "https://example.com"));
        EXPECT(tw_request_header(r, "X-Missing", &b) == TW_STATUS_NOT_FOUND);
        EXPECT(tw_request_header_count(r, &count) == TW_STATUS_OK && count >= 6);
        EXPECT(tw_request_header_at(r, 0, &name, &value) == TW_STATUS_OK && name.len > 0);
        EXPECT(tw_request_header_at(r, count, &name, &value) == TW_STATUS_NOT_FOUND);
        EXPECT(tw_request_subprotocol_count(r, &count) == TW_STATUS_OK && count == 2);
        EXPECT(tw_request_subprotocol_at(r, 0, &b) == TW_STATUS_OK && tc_eq(b, "v2.chat"));
        EXPECT(tw_request_subprotocol_at(r, 1, &b) == TW_STATUS_OK && tc_eq(b, "v1.chat"));
        EXPECT(tw_request_subprotocol_at(r, 2, &b) == TW_STATUS_NOT_FOUND);
        EXPECT(tw_conn_set_userdata(ctx, ev->conn, &st->marker) == TW_STATUS_OK);
        if (st->accept) {
            static const tw_header extra[] = {{"X-Server", "tidewire"}, {"Set-Cookie", "a=b"}};
            EXPECT(tw_conn_accept(ctx, ev->conn, "v1.chat", extra, 2) == TW_STATUS_OK);
            /* Open at once: sending is allowed before the OPEN event. */
            EXPECT(tw_conn_send_text(ctx, ev->conn, "welcome", 7) == TW_STATUS_OK);
            EXPECT(tw_conn_accept(ctx, ev->conn, NULL, NULL, 0) == TW_STATUS_INVALID_ARGUMENT);
        } else {
            static const tw_header extra[] = {{"Content-Type", "text/plain"}};
            EXPECT(tw_conn_reject(ctx, ev->conn, 403, extra, 1, (const uint8_t *)"go away", 7) == TW_STATUS_OK);
            void *ud = NULL;
            EXPECT(tw_conn_userdata(ctx, ev->conn, &ud) == TW_STATUS_STALE_ID);
        }
    }
    if (which == 0 && ev->kind == TW_EVENT_OPEN) {
        EXPECT(ev->userdata == &st->marker);
        EXPECT(tc_eq(ev->subprotocol, "v1.chat"));
    }
    if (which == 1) {
        if (ev->kind == TW_EVENT_OPEN) {
            st->opened = true;
            snprintf(st->subprotocol, sizeof st->subprotocol, "%.*s", (int)ev->subprotocol.len,
                     ev->subprotocol.data ? (const char *)ev->subprotocol.data : "");
        }
        if (ev->kind == TW_EVENT_MESSAGE) {
            EXPECT(tc_eq(ev->data, "welcome"));
            return true;
        }
        if (ev->kind == TW_EVENT_ERROR) {
            st->failed = true;
            st->fail_status = ev->status;
            st->http_status = ev->http_status;
            return true;
        }
    }
    return false;
}

static tw_connect_options *chat_options(void) {
    tw_connect_options *co = NULL;
    if (tw_connect_options_new(&co) != TW_STATUS_OK) return NULL;
    if (tw_connect_options_add_header(co, "X-Token", "abc") != TW_STATUS_OK ||
        tw_connect_options_set_origin(co, "https://example.com") != TW_STATUS_OK ||
        tw_connect_options_add_subprotocol(co, "v2.chat") != TW_STATUS_OK ||
        tw_connect_options_add_subprotocol(co, "v1.chat") != TW_STATUS_OK) {
        tw_connect_options_free(co);
        return NULL;
    }
    return co;
}

static void an_upgrade_can_be_rejected_with_a_status_headers_and_body(void) {
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_handle_requests(lo, true));
    tw_connect_options *co = chat_options();
    CHECK(co != NULL);
    struct session s;
    bool started = session_start(&s, lo, co, "/chat?room=1");
    tw_listen_options_free(lo);
    tw_connect_options_free(co);
    CHECK(started);
    struct decide st = {.accept = false};
    bool ended = tc_run(s.ctx, 2, 16, on_decide, &st, 5000);
    session_end(&s);
    CHECK(ended && !st.bad && st.request_seen);
    CHECK(st.failed && !st.opened);
    CHECK(st.fail_status == TW_STATUS_HANDSHAKE_REJECTED);
    CHECK(st.http_status == 403);
}

static void an_upgrade_can_be_accepted_with_a_subprotocol_and_headers(void) {
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_handle_requests(lo, true));
    tw_connect_options *co = chat_options();
    CHECK(co != NULL);
    struct session s;
    bool started = session_start(&s, lo, co, "/chat?room=1");
    tw_listen_options_free(lo);
    tw_connect_options_free(co);
    CHECK(started);
    struct decide st = {.accept = true};
    bool ended = tc_run(s.ctx, 2, 16, on_decide, &st, 5000);
    session_end(&s);
    CHECK(ended && !st.bad && st.request_seen);
    CHECK(st.opened && !st.failed);
    CHECK(strcmp(st.subprotocol, "v1.chat") == 0);
}

struct auto_pick {
    char subprotocol[32];
    bool opened, failed;
    tw_status status;
    uint16_t http_status;
};

static bool on_auto(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    (void)ctx;
    struct auto_pick *st = state;
    if (which != 1) return false;
    if (ev->kind == TW_EVENT_OPEN) {
        st->opened = true;
        snprintf(st->subprotocol, sizeof st->subprotocol, "%.*s", (int)ev->subprotocol.len,
                 ev->subprotocol.data ? (const char *)ev->subprotocol.data : "(none)");
        return true;
    }
    if (ev->kind == TW_EVENT_ERROR) {
        st->failed = true;
        st->status = ev->status;
        st->http_status = ev->http_status;
        return true;
    }
    return false;
}

static void the_listener_picks_its_preferred_subprotocol_and_checks_origins(void) {
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_add_subprotocol(lo, "v1.chat"));
    CHECK_OK(tw_listen_options_add_subprotocol(lo, "v2.chat"));
    CHECK_OK(tw_listen_options_add_allowed_origin(lo, "https://EXAMPLE.com"));
    tw_connect_options *co = chat_options();
    CHECK(co != NULL);
    struct session s;
    CHECK(session_start(&s, lo, co, "/"));
    struct auto_pick st = {{0}, false, false, TW_STATUS_OK, 0};
    CHECK(tc_run(s.ctx, 2, 16, on_auto, &st, 5000));
    CHECK(st.opened);
    CHECK(strcmp(st.subprotocol, "v1.chat") == 0); /* the server's preference wins */
    session_end(&s);

    /* Another origin is refused with 403. */
    CHECK_OK(tw_connect_options_set_origin(co, "https://evil.example"));
    CHECK(session_start(&s, lo, co, "/"));
    struct auto_pick st2 = {{0}, false, false, TW_STATUS_OK, 0};
    CHECK(tc_run(s.ctx, 2, 16, on_auto, &st2, 5000));
    session_end(&s);
    tw_listen_options_free(lo);
    tw_connect_options_free(co);
    CHECK(st2.failed && st2.status == TW_STATUS_HANDSHAKE_REJECTED && st2.http_status == 403);
}

/* With require_subprotocol, a client offering none of the listener's subprotocols gets 400;
 * with require_origin, a client without Origin gets 403. */
static void required_subprotocol_and_origin_refuse_clients_without_them(void) {
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_add_subprotocol(lo, "v3.chat"));
    CHECK_OK(tw_listen_options_set_require_subprotocol(lo, true));
    tw_connect_options *co = chat_options(); /* offers v2.chat and v1.chat */
    CHECK(co != NULL);
    struct session s;
    CHECK(session_start(&s, lo, co, "/"));
    struct auto_pick st = {{0}, false, false, TW_STATUS_OK, 0};
    CHECK(tc_run(s.ctx, 2, 16, on_auto, &st, 5000));
    session_end(&s);
    CHECK(st.failed && st.status == TW_STATUS_HANDSHAKE_REJECTED && st.http_status == 400);

    tw_listen_options *lo2 = NULL;
    CHECK_OK(tw_listen_options_new(&lo2));
    CHECK_OK(tw_listen_options_add_allowed_origin(lo2, "https://example.com"));
    CHECK_OK(tw_listen_options_set_require_origin(lo2, true));
    tw_connect_options *plain = NULL;
    CHECK_OK(tw_connect_options_new(&plain));
    CHECK(session_start(&s, lo2, plain, "/"));
    struct auto_pick st2 = {{0}, false, false, TW_STATUS_OK, 0};
    CHECK(tc_run(s.ctx, 2, 16, on_auto, &st2, 5000));
    session_end(&s);
    CHECK(st2.failed && st2.status == TW_STATUS_HANDSHAKE_REJECTED && st2.http_status == 403);

    /* Bad values are refused by the runtime's own checks, leaving the options unchanged. */
    CHECK(tw_listen_options_add_subprotocol(lo, "") == TW_STATUS_INVALID_ARGUMENT);
    CHECK(tw_listen_options_add_subprotocol(lo, "two words") == TW_STATUS_INVALID_ARGUMENT);
    CHECK(tw_listen_options_add_subprotocol(lo, "v3.chat") == TW_STATUS_INVALID_ARGUMENT);
    CHECK(tw_connect_options_add_header(plain, "Sec-WebSocket-Key", "x") == TW_STATUS_INVALID_ARGUMENT);
    CHECK(tw_connect_options_add_header(plain, "", "x") == TW_STATUS_INVALID_ARGUMENT);
    tw_listen_options_free(lo);
    tw_listen_options_free(lo2);
    tw_connect_options_free(co);
    tw_connect_options_free(plain);
}

/* A raw TCP client for plain HTTP. */
static int raw_connect(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends `request`, drives `ctx` (answering HTTP requests with `answer` when set) and reads
 * the whole response into buf until the server closes. */
static bool http_exchange(tw_context *ctx, uint16_t port, const char *request, bool answer, char *buf, size_t cap) {
    int fd = raw_connect(port);
    if (fd < 0) return false;
    bool ok = send(fd, request, strlen(request), 0) == (ssize_t)strlen(request);
    size_t used = 0;
    bool eof = false;
    int64_t deadline = tc_now_ms() + 5000;
    while (ok && !eof && tc_now_ms() < deadline) {
        tw_event ev[4];
        size_t n = 0;
        if (!tc_ok(tw_poll(ctx, ev, 4, 5, &n), "poll")) ok = false;
        for (size_t i = 0; i < n && ok; i++) {
            if (ev[i].kind != TW_EVENT_HTTP_REQUEST || !answer) continue;
            tw_bytes path, query, hv;
            ok = tw_request_path(ev[i].request, &path) == TW_STATUS_OK && tc_eq(path, "/status") &&
                 tw_request_query(ev[i].request, &query) == TW_STATUS_OK && tc_eq(query, "x=1") &&
                 tw_request_header(ev[i].request, "X-A", &hv) == TW_STATUS_OK && tc_eq(hv, "b");
            static const tw_header h[] = {{"Content-Type", "text/plain"}};
            if (ok) ok = tc_ok(tw_conn_respond(ctx, ev[i].conn, 200, h, 1, (const uint8_t *)"alive", 5), "respond");
            tw_bytes b;
            /* The request stays readable until the next poll, even after the answer. */
            if (ok) ok = tw_request_method(ev[i].request, &b) == TW_STATUS_OK && tc_eq(b, "GET");
        }
        ssize_t got = recv(fd, buf + used, cap - 1 - used, MSG_DONTWAIT);
        if (got > 0) used += (size_t)got;
        if (got == 0) eof = true;
        if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) eof = true;
        if (used == cap - 1) eof = true;
    }
    buf[used] = '\0';
    close(fd);
    return ok && eof;
}

static void a_plain_http_request_gets_the_applications_answer(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_handle_http(lo, true));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, lo, &l, &port));
    tw_listen_options_free(lo);
    char buf[2048];
    CHECK(http_exchange(ctx, port, "GET /status?x=1 HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n\r\n", true, buf,
                        sizeof buf));
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(buf, "Content-Type: text/plain\r\n") != NULL);
    CHECK(strstr(buf, "\r\n\r\nalive") != NULL);
    /* The answered connection goes away once the client has closed too. */
    size_t count = 9;
    int64_t deadline = tc_now_ms() + 5000;
    while (count != 0 && tc_now_ms() < deadline) {
        tw_event ev[4];
        size_t n = 0;
        CHECK_OK(tw_poll(ctx, ev, 4, 5, &n));
        CHECK(n == 0); /* no event ever comes for an answered request */
        CHECK_OK(tw_context_connection_count(ctx, &count));
    }
    CHECK(count == 0);
    tw_context_free(ctx);
}

static void without_handle_http_a_plain_request_gets_426(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, NULL, &l, &port));
    char buf[2048];
    CHECK(http_exchange(ctx, port, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", false, buf, sizeof buf));
    CHECK(strncmp(buf, "HTTP/1.1 426", 12) == 0);
    tw_context_free(ctx);
}

/* Outcome of one client connection driven by tc_run: opened, or failed with a status. */
struct one_client {
    tw_conn conn;
    bool opened, failed, closed;
    tw_status status;
};

static bool on_one_client(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    (void)ctx;
    struct one_client *st = state;
    if (which == 0 && ev->kind == TW_EVENT_CLOSE) st->closed = true;
    if (which != 1 || ev->conn != st->conn) return st->closed;
    if (ev->kind == TW_EVENT_OPEN) st->opened = true;
    if (ev->kind == TW_EVENT_ERROR) {
        st->failed = true;
        st->status = ev->status;
    }
    return st->opened || st->failed;
}

/* A client over the server's max_connections is closed at once, before any answer: the
 * client sees the handshake end (EOF or reset), not a hang. The connection inside is
 * untouched, and once it leaves a new client gets in. */
static void a_client_over_max_connections_is_turned_away_at_once(void) {
    tw_config *cfg = NULL;
    CHECK_OK(tw_config_new(&cfg));
    CHECK_OK(tw_config_set_max_connections(cfg, 1));
    tw_context *ctx[2] = {NULL, NULL};
    CHECK_OK(tw_context_new(cfg, &ctx[0]));
    tw_config_free(cfg);
    CHECK_OK(tw_context_new(NULL, &ctx[1]));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx[0], NULL, &l, &port));
    char url[96];
    tc_url(url, sizeof url, "ws", port, "/");

    struct one_client first = {0, false, false, false, TW_STATUS_OK};
    CHECK_OK(tw_context_connect(ctx[1], url, NULL, &first.conn));
    CHECK(tc_run(ctx, 2, 16, on_one_client, &first, 5000) && first.opened);

    struct one_client over = {0, false, false, false, TW_STATUS_OK};
    int64_t start = tc_now_ms();
    CHECK_OK(tw_context_connect(ctx[1], url, NULL, &over.conn));
    CHECK(tc_run(ctx, 2, 16, on_one_client, &over, 5000) && over.failed);
    CHECK(tc_now_ms() - start < 2000);
    CHECK(over.status == TW_STATUS_HANDSHAKE_EOF || over.status == TW_STATUS_IO);
    size_t count = 0;
    CHECK_OK(tw_context_connection_count(ctx[0], &count));
    CHECK(count == 1);

    /* The first leaves; the server sees it close; a new client gets in. */
    CHECK_OK(tw_conn_close(ctx[1], first.conn, 1000, "", 0));
    first.opened = false;
    first.closed = false;
    CHECK(tc_run(ctx, 2, 16, on_one_client, &first, 5000) && first.closed);
    struct one_client again = {0, false, false, false, TW_STATUS_OK};
    CHECK_OK(tw_context_connect(ctx[1], url, NULL, &again.conn));
    CHECK(tc_run(ctx, 2, 16, on_one_client, &again, 5000) && again.opened);
    tw_context_free(ctx[0]);
    tw_context_free(ctx[1]);
}

/* Connects from `source` (an address of 127.0.0.0/8), sends an upgrade request and drives
 * `ctx` until the answer: true for a 101, false when the server closed or reset without one. */
static bool upgrade_from(tw_context *ctx, const char *source, uint16_t port, int *out_fd) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, source, &a.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) return false;
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return false;
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    (void)send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
    char buf[512];
    size_t used = 0;
    int64_t deadline = tc_now_ms() + 5000;
    while (tc_now_ms() < deadline) {
        tw_event ev[8];
        size_t n = 0;
        (void)tw_poll(ctx, ev, 8, 5, &n);
        ssize_t got = recv(fd, buf + used, sizeof buf - 1 - used, MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) break;
        if (got > 0) used += (size_t)got;
        buf[used] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL) {
            *out_fd = fd;
            return strncmp(buf, "HTTP/1.1 101", 12) == 0;
        }
    }
    close(fd);
    return false;
}

/* Per-address limits: a third connection from one address is closed at once, another
 * address is not affected. */
static void connections_per_address_are_limited(void) {
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_max_connections_per_address(lo, 2));
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, lo, &l, &port));
    tw_listen_options_free(lo);
    int fds[4] = {-1, -1, -1, -1};
    CHECK(upgrade_from(ctx, "127.0.0.2", port, &fds[0]));
    CHECK(upgrade_from(ctx, "127.0.0.2", port, &fds[1]));
    CHECK(!upgrade_from(ctx, "127.0.0.2", port, &fds[2]));
    CHECK(upgrade_from(ctx, "127.0.0.3", port, &fds[3]));
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0) close(fds[i]);
    tw_context_free(ctx);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(an_upgrade_can_be_rejected_with_a_status_headers_and_body),
        TR_CASE(an_upgrade_can_be_accepted_with_a_subprotocol_and_headers),
        TR_CASE(the_listener_picks_its_preferred_subprotocol_and_checks_origins),
        TR_CASE(required_subprotocol_and_origin_refuse_clients_without_them),
        TR_CASE(a_plain_http_request_gets_the_applications_answer),
        TR_CASE(without_handle_http_a_plain_request_gets_426),
        TR_CASE(a_client_over_max_connections_is_turned_away_at_once),
        TR_CASE(connections_per_address_are_limited),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
