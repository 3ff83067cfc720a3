/* Stale ids, sending before open and after close, text that is not UTF-8, refused close
 * codes and payloads, failed connects: every misuse gives a status, never a crash. */
#include "runner.h"

#include "common.h"

/* A server context and a client context with one open connection between them. */
struct pair {
    tw_context *ctx[2];
    tw_listener listener;
    uint16_t port;
    tw_conn client; /* in ctx[1] */
    tw_conn server; /* in ctx[0] */
};


static bool pair_open(struct pair *p) {
    char url[64];
    memset(p, 0, sizeof *p);
    if (!tc_ok(tw_context_new(NULL, &p->ctx[0]), "ctx0") || !tc_ok(tw_context_new(NULL, &p->ctx[1]), "ctx1"))
        return false;
    if (!tc_listen(p->ctx[0], NULL, &p->listener, &p->port)) return false;
    if (!tc_ok(tw_context_connect(p->ctx[1], tc_url(url, sizeof url, "ws", p->port, "/"), NULL, &p->client),
               "connect"))
        return false;
    /* Until both ends report open. */
    int opens = 0;
    tw_event ev[8];
    int64_t deadline = tc_now_ms() + 5000;
    while (opens < 2 && tc_now_ms() < deadline) {
        for (int k = 0; k < 2; k++) {
            size_t n = 0;
            if (!tc_ok(tw_poll(p->ctx[k], ev, 8, 5, &n), "poll")) return false;
            for (size_t i = 0; i < n; i++) {
                if (ev[i].kind == TW_EVENT_OPEN) {
                    opens++;
                    if (k == 0) p->server = ev[i].conn;
                }
            }
        }
    }
    return opens == 2;
}

static void pair_free(struct pair *p) {
    tw_context_free(p->ctx[0]);
    tw_context_free(p->ctx[1]);
}

/* Polls both contexts until `ctx[k]` delivers an event of `kind` for `conn`; copies it. */
static bool wait_event(struct pair *p, int k, tw_conn conn, tw_event_kind kind, tw_event *out) {
    tw_event ev[8];
    int64_t deadline = tc_now_ms() + 5000;
    while (tc_now_ms() < deadline) {
        for (int j = 0; j < 2; j++) {
            size_t n = 0;
            if (!tc_ok(tw_poll(p->ctx[j], ev, 8, 5, &n), "poll")) return false;
            for (size_t i = 0; i < n; i++) {
                if (j == k && ev[i].conn == conn && ev[i].kind == kind) {
                    *out = ev[i];
                    return true;
                }
            }
        }
    }
    fprintf(stderr, "    no event %u for connection\n", (unsigned)kind);
    return false;
}

/* Every function that takes a connection id, with `id`: all must say STALE_ID. */
static bool all_say_stale(tw_context *ctx, tw_conn id) {
    bool open = false;
    size_t n = 0;
    uint64_t us = 0;
    void *ud = NULL;
    char buf[64];
    static const tw_header h = {"X-A", "b"};
    struct {
        const char *what;
        tw_status got;
    } calls[] = {
        {"send", tw_conn_send(ctx, id, TW_MESSAGE_TEXT, (const uint8_t *)"x", 1)},
        {"send_text", tw_conn_send_text(ctx, id, "x", 1)},
        {"send_binary", tw_conn_send_binary(ctx, id, (const uint8_t *)"x", 1)},
        {"ping", tw_conn_ping(ctx, id, NULL, 0)},
        {"close", tw_conn_close(ctx, id, 1000, NULL, 0)},
        {"begin_message", tw_conn_begin_message(ctx, id, TW_MESSAGE_BINARY)},
        {"send_fragment", tw_conn_send_fragment(ctx, id, NULL, 0, true)},
        {"buffered_amount", tw_conn_buffered_amount(ctx, id, &n)},
        {"latency", tw_conn_latency(ctx, id, &us, &open)},
        {"flush", tw_conn_flush(ctx, id, &open)},
        {"is_open", tw_conn_is_open(ctx, id, &open)},
        {"peer_addr", tw_conn_peer_addr(ctx, id, buf, sizeof buf, &n)},
        {"send_uncompressed", tw_conn_send_uncompressed(ctx, id, TW_MESSAGE_BINARY, NULL, 0)},
        {"local_addr", tw_conn_local_addr(ctx, id, buf, sizeof buf, &n)},
        {"pause_reading", tw_conn_pause_reading(ctx, id)},
        {"resume_reading", tw_conn_resume_reading(ctx, id)},
        {"is_reading_paused", tw_conn_is_reading_paused(ctx, id, &open)},
        {"set_userdata", tw_conn_set_userdata(ctx, id, buf)},
        {"userdata", tw_conn_userdata(ctx, id, &ud)},
        {"accept", tw_conn_accept(ctx, id, NULL, &h, 1)},
        {"reject", tw_conn_reject(ctx, id, 403, NULL, 0, NULL, 0)},
        {"respond", tw_conn_respond(ctx, id, 200, NULL, 0, (const uint8_t *)"x", 1)},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        if (calls[i].got != TW_STATUS_STALE_ID) {
            fprintf(stderr, "    %s(%llx) -> %s\n", calls[i].what, (unsigned long long)id, tw_status_str(calls[i].got));
            ok = false;
        }
    }
    return ok && ud == NULL;
}

static void ids_that_never_existed_are_stale(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    CHECK(all_say_stale(ctx, 0));
    CHECK(all_say_stale(ctx, 1));
    CHECK(all_say_stale(ctx, 0x0000000100000000ull));
    CHECK(all_say_stale(ctx, 0xdeadbeefcafef00dull));
    CHECK(all_say_stale(ctx, UINT64_MAX));
    uint16_t port = 0;
    CHECK_STATUS(tw_listener_port(ctx, 0, &port), TW_STATUS_STALE_ID);
    CHECK_STATUS(tw_listener_close(ctx, 12345), TW_STATUS_STALE_ID);
    tw_context_free(ctx);
}

static void ids_are_stale_after_their_terminal_event_even_when_the_slot_is_reused(void) {
    struct pair p;
    CHECK(pair_open(&p));
    tw_conn old_client = p.client, old_server = p.server;
    CHECK_OK(tw_conn_close(p.ctx[1], p.client, 1000, NULL, 0));
    tw_event ev;
    /* The server sees the close first (it answers it), then the client. */
    CHECK(wait_event(&p, 0, old_server, TW_EVENT_CLOSE, &ev));
    CHECK(wait_event(&p, 1, old_client, TW_EVENT_CLOSE, &ev));
    CHECK(ev.close_code == 1000 && ev.clean);
    CHECK(all_say_stale(p.ctx[1], old_client));
    CHECK(all_say_stale(p.ctx[0], old_server));
    /* A new connection may take the same slot: the old ids still name nothing. */
    char url[64];
    CHECK_OK(tw_context_connect(p.ctx[1], tc_url(url, sizeof url, "ws", p.port, "/"), NULL, &p.client));
    CHECK(p.client != old_client);
    CHECK(wait_event(&p, 1, p.client, TW_EVENT_OPEN, &ev));
    CHECK(all_say_stale(p.ctx[1], old_client));
    CHECK_OK(tw_conn_send_text(p.ctx[1], p.client, "fine", 4));
    pair_free(&p);
}

static void send_before_open_and_after_close_is_refused(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, NULL, &l, &port));
    char url[64];
    tw_conn c = 0;
    CHECK_OK(tw_context_connect(ctx, tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));
    CHECK_STATUS(tw_conn_send_text(ctx, c, "early", 5), TW_STATUS_NOT_OPEN);
    CHECK_STATUS(tw_conn_ping(ctx, c, NULL, 0), TW_STATUS_NOT_OPEN);
    bool open = true;
    CHECK_OK(tw_conn_is_open(ctx, c, &open));
    CHECK(!open);
    tw_context_free(ctx);

    struct pair p;
    CHECK(pair_open(&p));
    CHECK_OK(tw_conn_is_open(p.ctx[1], p.client, &open));
    CHECK(open);
    CHECK_OK(tw_conn_close(p.ctx[1], p.client, 1000, "bye", 3));
    CHECK_STATUS(tw_conn_send_text(p.ctx[1], p.client, "late", 4), TW_STATUS_NOT_OPEN);
    CHECK_STATUS(tw_conn_send_binary(p.ctx[1], p.client, (const uint8_t *)"late", 4), TW_STATUS_NOT_OPEN);
    CHECK_STATUS(tw_conn_close(p.ctx[1], p.client, 1000, NULL, 0), TW_STATUS_NOT_OPEN);
    CHECK_OK(tw_conn_is_open(p.ctx[1], p.client, &open));
    CHECK(!open);
    tw_event ev;
    CHECK(wait_event(&p, 1, p.client, TW_EVENT_CLOSE, &ev));
    CHECK_STATUS(tw_conn_send_text(p.ctx[1], p.client, "later", 5), TW_STATUS_STALE_ID);
    pair_free(&p);
}

static void bad_text_codes_and_payloads_give_statuses_and_leave_the_connection_usable(void) {
    struct pair p;
    CHECK(pair_open(&p));
    tw_context *c = p.ctx[1];
    CHECK_STATUS(tw_conn_send_text(c, p.client, "\xff\xfe", 2), TW_STATUS_INVALID_UTF8);
    CHECK_STATUS(tw_conn_send_text(c, p.client, "\xe2\x82", 2), TW_STATUS_INVALID_UTF8); /* truncated */
    CHECK_STATUS(tw_conn_send(c, p.client, TW_MESSAGE_TEXT, (const uint8_t *)"\xc0\x80", 2), TW_STATUS_INVALID_UTF8);
    CHECK_STATUS(tw_conn_send(c, p.client, 3, (const uint8_t *)"x", 1), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_conn_send(c, p.client, TW_MESSAGE_NONE, (const uint8_t *)"x", 1), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_conn_begin_message(c, p.client, 99), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_conn_close(c, p.client, 1000, "\xff", 1), TW_STATUS_INVALID_UTF8);
    CHECK_STATUS(tw_conn_close(c, p.client, 1005, NULL, 0), TW_STATUS_INVALID_CLOSE_CODE);
    CHECK_STATUS(tw_conn_close(c, p.client, 999, NULL, 0), TW_STATUS_INVALID_CLOSE_CODE);
    char reason[124];
    memset(reason, 'r', sizeof reason);
    CHECK_STATUS(tw_conn_close(c, p.client, 1000, reason, sizeof reason), TW_STATUS_PAYLOAD_TOO_LONG);
    CHECK(strstr(tw_last_error(), "125") != NULL || strlen(tw_last_error()) > 0);
    /* Still open and working. */
    CHECK_OK(tw_conn_send_text(c, p.client, "still here", 10));
    tw_event ev;
    CHECK(wait_event(&p, 0, p.server, TW_EVENT_MESSAGE, &ev));
    CHECK(tc_eq(ev.data, "still here"));
    size_t buffered = 99;
    CHECK_OK(tw_conn_buffered_amount(c, p.client, &buffered));
    CHECK(buffered == 0);
    char addr[64];
    size_t len = 0;
    CHECK_OK(tw_conn_peer_addr(c, p.client, addr, sizeof addr, &len));
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)p.port);
    CHECK(strcmp(addr, want) == 0 && len == strlen(want));
    pair_free(&p);
}

/* Polls only ctx[k] until it delivers an event of `kind` for `conn`. */
static bool wait_event_on(struct pair *p, int k, tw_conn conn, tw_event_kind kind, tw_event *out) {
    tw_event ev[8];
    int64_t deadline = tc_now_ms() + 5000;
    while (tc_now_ms() < deadline) {
        size_t n = 0;
        if (!tc_ok(tw_poll(p->ctx[k], ev, 8, 5, &n), "poll")) return false;
        for (size_t i = 0; i < n; i++) {
            if (ev[i].conn == conn && ev[i].kind == kind) {
                *out = ev[i];
                return true;
            }
        }
    }
    return false;
}

static void flush_sends_without_a_poll_of_the_sender(void) {
    struct pair p;
    CHECK(pair_open(&p));
    tw_context *c = p.ctx[1];
    CHECK_OK(tw_conn_send_text(c, p.client, "now", 3));
    bool done = false;
    CHECK_OK(tw_conn_flush(c, p.client, &done));
    CHECK(done);
    tw_event ev;
    /* Only the server is polled: the client's bytes are already on the wire. */
    CHECK(wait_event_on(&p, 0, p.server, TW_EVENT_MESSAGE, &ev));
    CHECK(tc_eq(ev.data, "now"));
    CHECK_OK(tw_conn_flush(c, p.client, NULL)); /* out_done is optional */
    CHECK_STATUS(tw_conn_flush(NULL, p.client, &done), TW_STATUS_NULL_ARGUMENT);
    pair_free(&p);
}

static void a_refused_connect_ends_with_an_error_event_carrying_the_user_data(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, NULL, &l, &port));
    CHECK_OK(tw_listener_close(ctx, l)); /* nothing listens there now */
    char url[64];
    tw_conn c = 0;
    int marker = 0;
    CHECK_OK(tw_context_connect(ctx, tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));
    CHECK_OK(tw_conn_set_userdata(ctx, c, &marker));
    void *ud = NULL;
    CHECK_OK(tw_conn_userdata(ctx, c, &ud));
    CHECK(ud == &marker);
    tw_event ev[4];
    int64_t deadline = tc_now_ms() + 5000;
    bool ended = false;
    while (!ended && tc_now_ms() < deadline) {
        size_t n = 0;
        CHECK_OK(tw_poll(ctx, ev, 4, 10, &n));
        for (size_t i = 0; i < n; i++) {
            CHECK(ev[i].kind == TW_EVENT_ERROR && ev[i].conn == c);
            CHECK(ev[i].status == TW_STATUS_CONNECT);
            CHECK(ev[i].userdata == &marker);
            CHECK(ev[i].data.len > 0 && ev[i].data.data[ev[i].data.len] == '\0');
            ended = true;
        }
    }
    CHECK(ended);
    CHECK(all_say_stale(ctx, c));
    tw_context_free(ctx);
}

static void closing_a_connection_before_it_opens_aborts_it(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, NULL, &l, &port));
    char url[64];
    tw_conn c = 0;
    CHECK_OK(tw_context_connect(ctx, tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));
    CHECK_OK(tw_conn_close(ctx, c, 1000, NULL, 0));
    tw_event ev[8];
    int64_t deadline = tc_now_ms() + 5000;
    tw_status got = TW_STATUS_OK;
    while (got == TW_STATUS_OK && tc_now_ms() < deadline) {
        size_t n = 0;
        CHECK_OK(tw_poll(ctx, ev, 8, 10, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].conn == c) {
                CHECK(ev[i].kind == TW_EVENT_ERROR);
                got = ev[i].status;
            }
        }
    }
    CHECK(got == TW_STATUS_ABORTED);
    tw_context_free(ctx);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(ids_that_never_existed_are_stale),
        TR_CASE(ids_are_stale_after_their_terminal_event_even_when_the_slot_is_reused),
        TR_CASE(send_before_open_and_after_close_is_refused),
        TR_CASE(bad_text_codes_and_payloads_give_statuses_and_leave_the_connection_usable),
        TR_CASE(flush_sends_without_a_poll_of_the_sender),
        TR_CASE(a_refused_connect_ends_with_an_error_event_carrying_the_user_data),
        TR_CASE(closing_a_connection_before_it_opens_aborts_it),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
