/* Loopback echo with a C server and a C client (both roles), close handshake, ping/pong,
 * fragmented sends, permessage-deflate, user data, and a host loop on tw_context_fd. */
#include "runner.h"

#include <poll.h>
#include <stdlib.h>

#include "common.h"

#define BIG_LEN (1u << 20)

/* The client sends these in order and expects each back with the same type. */
struct msg {
    tw_message_kind kind;
    const uint8_t *data;
    size_t len;
};

struct echo {
    tw_conn client;
    tw_conn server_conn;
    const struct msg *msgs;
    size_t count;
    size_t echoed;
    int marker; /* its address is the client's user data */
    bool bad;   /* something unexpected happened (reported already) */
    bool server_closed, client_closed;
    uint16_t server_code, client_code;
    char server_reason[32];
    bool client_clean;
    const char *want_extension; /* expected in both OPEN events, or NULL for none */
};

static bool fail(struct echo *st, const char *what) {
    fprintf(stderr, "    unexpected: %s\n", what);
    st->bad = true;
    return true; /* stop the loop */
}

static bool on_echo_event(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    struct echo *st = state;
    if (which == 0) { /* server */
        switch (ev->kind) {
        case TW_EVENT_OPEN:
            if (ev->listener == 0 || !tc_eq(ev->path, "/echo")) return fail(st, "server open");
            if (st->want_extension != NULL && !tc_contains(ev->extensions, st->want_extension))
                return fail(st, "server extension");
            st->server_conn = ev->conn;
            break;
        case TW_EVENT_MESSAGE: {
            tw_status s = tw_conn_send(ctx, ev->conn, ev->message_kind, ev->data.data, ev->data.len);
            if (s != TW_STATUS_OK && s != TW_STATUS_AGAIN) return fail(st, "server echo");
            break;
        }
        case TW_EVENT_CLOSE:
            st->server_closed = true;
            st->server_code = ev->close_code;
            snprintf(st->server_reason, sizeof st->server_reason, "%.*s", (int)ev->data.len,
                     (const char *)ev->data.data);
            break;
        case TW_EVENT_ERROR:
            return fail(st, ev->conn != 0 ? "server connection error" : "listener error");
        default:
            break;
        }
    } else { /* client */
        if (ev->conn != st->client) return fail(st, "event for another connection");
        if (ev->userdata != &st->marker) return fail(st, "client user data");
        switch (ev->kind) {
        case TW_EVENT_OPEN:
            if (ev->listener != 0 || !tc_eq(ev->path, "/echo")) return fail(st, "client open");
            if (st->want_extension == NULL ? ev->extensions.data != NULL
                                           : !tc_contains(ev->extensions, st->want_extension))
                return fail(st, "client extension");
            for (size_t i = 0; i < st->count; i++) {
                tw_status s = tw_conn_send(ctx, ev->conn, st->msgs[i].kind, st->msgs[i].data, st->msgs[i].len);
                if (s != TW_STATUS_OK && s != TW_STATUS_AGAIN) return fail(st, "client send");
            }
            break;
        case TW_EVENT_MESSAGE: {
            if (st->echoed >= st->count) return fail(st, "more echoes than messages");
            const struct msg *m = &st->msgs[st->echoed];
            if (ev->message_kind != m->kind || ev->data.len != m->len ||
                (m->len > 0 && memcmp(ev->data.data, m->data, m->len) != 0))
                return fail(st, "echo differs");
            if (ev->data.data == NULL) return fail(st, "empty payload with NULL data");
            if (++st->echoed == st->count) {
                if (tw_conn_close(ctx, ev->conn, 1000, "bye", 3) != TW_STATUS_OK) return fail(st, "close");
            }
            break;
        }
        case TW_EVENT_CLOSE:
            st->client_closed = true;
            st->client_code = ev->close_code;
            st->client_clean = ev->clean;
            break;
        case TW_EVENT_ERROR:
            return fail(st, "client error");
        default:
            break;
        }
    }
    return st->server_closed && st->client_closed;
}

/* Runs one echo session between two contexts with the given options. */
static bool echo_session(struct echo *st, const tw_listen_options *lo, const tw_connect_options *co) {
    tw_context *ctx[2] = {NULL, NULL};
    bool ok = false;
    tw_listener l = 0;
    uint16_t port = 0;
    char url[64];
    if (!tc_ok(tw_context_new(NULL, &ctx[0]), "server ctx") || !tc_ok(tw_context_new(NULL, &ctx[1]), "client ctx")) {
        goto done;
    }
    if (!tc_listen(ctx[0], lo, &l, &port)) goto done;
    if (!tc_ok(tw_context_connect(ctx[1], tc_url(url, sizeof url, "ws", port, "/echo"), co, &st->client), "connect"))
        goto done;
    if (!tc_ok(tw_conn_set_userdata(ctx[1], st->client, &st->marker), "set_userdata")) goto done;
    ok = tc_run(ctx, 2, 64, on_echo_event, st, 10000) && !st->bad;
    /* After its terminal event the id is stale everywhere. */
    if (ok) {
        void *ud = NULL;
        ok = tw_conn_userdata(ctx[1], st->client, &ud) == TW_STATUS_STALE_ID &&
             tw_conn_send_text(ctx[1], st->client, "x", 1) == TW_STATUS_STALE_ID;
    }
done:
    tw_context_free(ctx[0]);
    tw_context_free(ctx[1]);
    return ok;
}

static void echo_text_binary_empty_and_large_in_both_roles(void) {
    uint8_t *big = malloc(BIG_LEN);
    CHECK(big != NULL);
    for (size_t i = 0; i < BIG_LEN; i++) big[i] = (uint8_t)(i * 7 + (i >> 9));
    static const uint8_t bin[] = {0, 1, 2, 255};
    const struct msg msgs[] = {
        {TW_MESSAGE_TEXT, (const uint8_t *)"hello", 5},
        {TW_MESSAGE_BINARY, bin, sizeof bin},
        {TW_MESSAGE_TEXT, (const uint8_t *)"", 0},
        {TW_MESSAGE_BINARY, NULL, 0},
        {TW_MESSAGE_TEXT, (const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac", 11},
        {TW_MESSAGE_BINARY, big, BIG_LEN},
        {TW_MESSAGE_TEXT, (const uint8_t *)"last", 4},
    };
    /* Default options on both sides: permessage-deflate is negotiated. */
    struct echo st = {.msgs = msgs, .count = sizeof msgs / sizeof msgs[0], .want_extension = "permessage-deflate"};
    bool ok = echo_session(&st, NULL, NULL);
    free(big);
    CHECK(ok);
    CHECK(st.echoed == st.count);
    CHECK(st.server_code == 1000 && strcmp(st.server_reason, "bye") == 0);
    CHECK(st.client_code == 1000 && st.client_clean);
}

static void permessage_deflate_is_negotiated_and_echoes(void) {
    static char text[100000];
    for (size_t i = 0; i < sizeof text; i++) text[i] = "tidewire "[i % 9];
    const struct msg msgs[] = {
        {TW_MESSAGE_TEXT, (const uint8_t *)text, sizeof text},
        {TW_MESSAGE_TEXT, (const uint8_t *)"short", 5},
        {TW_MESSAGE_BINARY, (const uint8_t *)text, 1000},
    };
    tw_deflate_config *d = NULL;
    tw_listen_options *lo = NULL;
    tw_connect_options *co = NULL;
    CHECK_OK(tw_deflate_config_new(&d));
    CHECK_OK(tw_deflate_config_set_level(d, 6));
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_deflate(lo, d));
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_set_deflate(co, d));
    tw_deflate_config_free(d);
    struct echo st = {.msgs = msgs, .count = 3, .want_extension = "permessage-deflate"};
    bool ok = echo_session(&st, lo, co);
    tw_listen_options_free(lo);
    tw_connect_options_free(co);
    CHECK(ok);
    CHECK(st.echoed == 3);
}

static void deflate_turned_off_on_either_side_is_not_negotiated(void) {
    const struct msg msgs[] = {{TW_MESSAGE_TEXT, (const uint8_t *)"plain plain plain plain plain plain", 35}};
    tw_deflate_config *off = NULL;
    tw_listen_options *lo = NULL;
    tw_connect_options *co = NULL;
    CHECK_OK(tw_deflate_config_new(&off));
    CHECK_OK(tw_deflate_config_set_enabled(off, false));
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_deflate(lo, off));
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_set_deflate(co, off));
    tw_deflate_config_free(off);
    struct echo server_off = {.msgs = msgs, .count = 1, .want_extension = NULL};
    bool ok1 = echo_session(&server_off, lo, NULL);
    struct echo client_off = {.msgs = msgs, .count = 1, .want_extension = NULL};
    bool ok2 = echo_session(&client_off, NULL, co);
    tw_listen_options_free(lo);
    tw_connect_options_free(co);
    CHECK(ok1 && ok2);
}

/* One context holds both ends; the loop waits on the context's fd itself. */
struct hostloop {
    tw_conn client;
    int pongs, pings_seen, fragments_done, closes;
    uint64_t latency_us;
    bool latency_known;
    bool bad;
};

static void hostloop_event(tw_context *ctx, const tw_event *ev, struct hostloop *st) {
    switch (ev->kind) {
    case TW_EVENT_OPEN:
        if (ev->conn == st->client) {
            uint64_t us = 1;
            bool known = true;
            if (tw_conn_latency(ctx, ev->conn, &us, &known) != TW_STATUS_OK || known || us != 0)
                st->bad = true; /* nothing measured yet */
            if (tw_conn_ping(ctx, ev->conn, (const uint8_t *)"p1", 2) != TW_STATUS_OK) st->bad = true;
            uint8_t long_ping[126] = {0};
            if (tw_conn_ping(ctx, ev->conn, long_ping, sizeof long_ping) != TW_STATUS_PAYLOAD_TOO_LONG)
                st->bad = true;
            if (tw_conn_begin_message(ctx, ev->conn, TW_MESSAGE_TEXT) != TW_STATUS_OK) st->bad = true;
            if (tw_conn_send_fragment(ctx, ev->conn, (const uint8_t *)"hel", 3, false) != TW_STATUS_OK)
                st->bad = true;
            if (tw_conn_send_text(ctx, ev->conn, "x", 1) != TW_STATUS_MESSAGE_IN_PROGRESS) st->bad = true;
            if (tw_conn_send_fragment(ctx, ev->conn, (const uint8_t *)"lo", 2, true) != TW_STATUS_OK)
                st->bad = true;
            if (tw_conn_send_fragment(ctx, ev->conn, (const uint8_t *)"!", 1, true) !=
                TW_STATUS_NO_MESSAGE_IN_PROGRESS)
                st->bad = true;
        }
        break;
    case TW_EVENT_PING:
        if (ev->conn != st->client && tc_eq(ev->data, "p1")) st->pings_seen++;
        break;
    case TW_EVENT_PONG:
        if (ev->conn == st->client && tc_eq(ev->data, "p1")) {
            st->pongs++;
            /* The pong of "p1" measured the round trip: known, and plausible on loopback. */
            uint64_t us = 0;
            bool known = false;
            if (tw_conn_latency(ctx, ev->conn, &us, &known) != TW_STATUS_OK) st->bad = true;
            st->latency_us = us;
            st->latency_known = known;
        }
        break;
    case TW_EVENT_MESSAGE:
        if (ev->conn != st->client) {
            if (!tc_eq(ev->data, "hello") || ev->message_kind != TW_MESSAGE_TEXT) st->bad = true;
            st->fragments_done++;
            if (tw_conn_close(ctx, ev->conn, 4000, "done", 4) != TW_STATUS_OK) st->bad = true;
        }
        break;
    case TW_EVENT_CLOSE:
        if (ev->close_code != 4000) st->bad = true;
        st->closes++;
        break;
    case TW_EVENT_ERROR:
        fprintf(stderr, "    error event: %.*s\n", (int)ev->data.len, (const char *)ev->data.data);
        st->bad = true;
        break;
    default:
        break;
    }
}

static void host_loop_waits_on_the_fd_and_polls_with_zero(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, NULL, &l, &port));
    struct hostloop st = {0};
    char url[64];
    CHECK_OK(tw_context_connect(ctx, tc_url(url, sizeof url, "ws", port, "/"), NULL, &st.client));
    int fd = -1;
    CHECK_OK(tw_context_fd(ctx, &fd));
    int64_t deadline = tc_now_ms() + 10000;
    int64_t worst_poll = 0;
    while (st.closes < 2 && !st.bad && tc_now_ms() < deadline) {
        int32_t ms = 0;
        CHECK_OK(tw_context_next_timeout_ms(ctx, &ms));
        CHECK(ms >= -1);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        (void)poll(&p, 1, (ms < 0 || ms > 100) ? 100 : ms);
        tw_event ev[8];
        size_t n = 0;
        int64_t t0 = tc_now_ms();
        CHECK_OK(tw_poll(ctx, ev, 8, 0, &n));
        int64_t took = tc_now_ms() - t0;
        if (took > worst_poll) worst_poll = took;
        for (size_t i = 0; i < n; i++) hostloop_event(ctx, &ev[i], &st);
    }
    tw_context_free(ctx);
    CHECK(!st.bad);
    CHECK(st.pongs == 1 && st.pings_seen == 1);
    CHECK(st.latency_known);
    CHECK(st.latency_us > 0 && st.latency_us < 1000000);
    CHECK(st.fragments_done == 1);
    CHECK(st.closes == 2);
    CHECK(worst_poll < 500); /* tw_poll(..., 0) does not wait */
}

static void shutdown_closes_open_connections_with_1001(void) {
    tw_context *ctx[2] = {NULL, NULL};
    CHECK_OK(tw_context_new(NULL, &ctx[0]));
    CHECK_OK(tw_context_new(NULL, &ctx[1]));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx[0], NULL, &l, &port));
    char url[64];
    tw_conn c = 0;
    CHECK_OK(tw_context_connect(ctx[1], tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));
    /* Wait for both opens, then shut the server down and poll until it is empty. */
    int opens = 0, client_code = 0;
    tw_event ev[16];
    int64_t deadline = tc_now_ms() + 10000;
    bool shut = false;
    size_t left = 1;
    while (tc_now_ms() < deadline && (left > 0 || client_code == 0)) {
        for (int k = 0; k < 2; k++) {
            size_t n = 0;
            CHECK_OK(tw_poll(ctx[k], ev, 16, 5, &n));
            for (size_t i = 0; i < n; i++) {
                if (ev[i].kind == TW_EVENT_OPEN) opens++;
                if (k == 1 && ev[i].kind == TW_EVENT_CLOSE) client_code = ev[i].close_code;
            }
        }
        if (opens == 2 && !shut) {
            CHECK_OK(tw_context_shutdown(ctx[0], 2000));
            shut = true;
        }
        if (shut) CHECK_OK(tw_context_connection_count(ctx[0], &left));
    }
    CHECK(shut && left == 0);
    CHECK(client_code == 1001);
    tw_conn other = 0;
    CHECK_STATUS(tw_context_connect(ctx[0], url, NULL, &other), TW_STATUS_SHUTTING_DOWN);
    tw_context_free(ctx[0]);
    tw_context_free(ctx[1]);
}

/* Paused reading holds messages back until resumed; addresses of both ends agree;
 * uncompressed sends on a compressed connection arrive like any other. */
static void paused_reading_holds_messages_until_resumed(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, NULL, &l, &port));
    size_t listeners = 0;
    CHECK_OK(tw_context_listener_count(ctx, &listeners));
    CHECK(listeners == 1);
    char url[64];
    tw_conn c = 0, s = 0;
    CHECK_OK(tw_context_connect(ctx, tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));
    enum { OPENING, PAUSED, RESUMED } phase = OPENING;
    int opens = 0, received = 0;
    int64_t sent_at = 0, deadline = tc_now_ms() + 10000;
    while (received < 3 && tc_now_ms() < deadline) {
        tw_event ev[8];
        size_t n = 0;
        CHECK_OK(tw_poll(ctx, ev, 8, 5, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_OPEN) {
                opens++;
                if (ev[i].conn != c) {
                    s = ev[i].conn;
                    CHECK_OK(tw_conn_pause_reading(ctx, s));
                    CHECK_OK(tw_conn_pause_reading(ctx, s)); /* twice is once */
                }
            }
            if (ev[i].kind == TW_EVENT_MESSAGE && ev[i].conn == s) {
                CHECK(phase == RESUMED); /* nothing while paused */
                received++;
            }
        }
        if (phase == OPENING && opens == 2) {
            bool paused = false;
            CHECK_OK(tw_conn_is_reading_paused(ctx, s, &paused));
            CHECK(paused);
            /* Compressible text, the same uncompressed, and binary uncompressed. */
            CHECK_OK(tw_conn_send_text(ctx, c, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40));
            CHECK_OK(tw_conn_send_uncompressed(ctx, c, TW_MESSAGE_TEXT,
                                               (const uint8_t *)"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40));
            CHECK_OK(tw_conn_send_uncompressed(ctx, c, TW_MESSAGE_BINARY, (const uint8_t *)"c", 1));
            CHECK_STATUS(tw_conn_send_uncompressed(ctx, c, 9, (const uint8_t *)"c", 1), TW_STATUS_INVALID_ARGUMENT);
            sent_at = tc_now_ms();
            phase = PAUSED;
        } else if (phase == PAUSED && tc_now_ms() - sent_at > 300) {
            CHECK_OK(tw_conn_resume_reading(ctx, s));
            bool paused = true;
            CHECK_OK(tw_conn_is_reading_paused(ctx, s, &paused));
            CHECK(!paused);
            phase = RESUMED;
        }
    }
    CHECK(phase == RESUMED && received == 3);
    char local[64], peer[64];
    size_t ll = 0, pl = 0;
    CHECK_OK(tw_conn_local_addr(ctx, c, local, sizeof local, &ll));
    CHECK_OK(tw_conn_peer_addr(ctx, s, peer, sizeof peer, &pl));
    CHECK(ll == pl && strcmp(local, peer) == 0); /* the client's end, seen from both sides */
    tw_context_free(ctx);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(echo_text_binary_empty_and_large_in_both_roles),
        TR_CASE(permessage_deflate_is_negotiated_and_echoes),
        TR_CASE(deflate_turned_off_on_either_side_is_not_negotiated),
        TR_CASE(paused_reading_holds_messages_until_resumed),
        TR_CASE(host_loop_waits_on_the_fd_and_polls_with_zero),
        TR_CASE(shutdown_closes_open_connections_with_1001),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
