/* Reconnecting clients (tw_connect_options_set_reconnect): the server's context dropped and
 * re-created on the same port (the id and its user data kept, the delays within the
 * schedule), a 403 not retried, a 503's Retry-After honoured, stopping mid-backoff, the
 * setter's ranges. */
#include "runner.h"

#include "common.h"

#define EXPECT(cond)                                        \
    do {                                                    \
        if (!(cond)) {                                      \
            fprintf(stderr, "    expected: %s\n", #cond);   \
            st->bad = true;                                 \
            return true;                                    \
        }                                                   \
    } while (0)

static tw_connect_options *reconnect_options(uint64_t initial, uint64_t max, uint32_t attempts) {
    tw_connect_options *co = NULL;
    if (tw_connect_options_new(&co) != TW_STATUS_OK) return NULL;
    if (tw_connect_options_set_proxy(co, "") != TW_STATUS_OK ||
        tw_connect_options_set_reconnect(co, initial, max, attempts, 10000) != TW_STATUS_OK) {
        tw_connect_options_free(co);
        return NULL;
    }
    return co;
}

/* The ceiling of attempt n's delay: initial * 2^(n-1), at most max. */
static uint64_t ceiling(uint64_t initial, uint64_t max, uint32_t n) {
    uint64_t c = initial;
    for (uint32_t i = 1; i < n && c < max; i++) c *= 2;
    return c < max ? c : max;
}

struct restart {
    bool bad;
    int marker;
    tw_conn conn;
    int phase; /* 0: open, echo; 1: reconnecting; 2: reopened */
    uint32_t attempts;
    bool reopened;
};

static bool on_restart(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    struct restart *st = state;
    if (which == 1) { /* the server: echo */
        if (ev->kind == TW_EVENT_MESSAGE) {
            tw_conn_send(ctx, ev->conn, ev->message_kind, ev->data.data, ev->data.len);
        }
        return false;
    }
    EXPECT(ev->conn == st->conn);
    switch (ev->kind) {
    case TW_EVENT_OPEN:
        if (st->phase == 0) {
            EXPECT(tw_conn_set_userdata(ctx, ev->conn, &st->marker) == TW_STATUS_OK);
        } else {
            EXPECT(ev->userdata == &st->marker); /* kept across attempts */
            st->reopened = true;
        }
        EXPECT(tw_conn_send_text(ctx, ev->conn, "hi", 2) == TW_STATUS_OK);
        return false;
    case TW_EVENT_MESSAGE:
        EXPECT(tc_eq(ev->data, "hi"));
        return true;
    case TW_EVENT_RECONNECTING:
        EXPECT(st->phase >= 1);
        EXPECT(ev->userdata == &st->marker);
        st->attempts++;
        EXPECT(ev->attempt == st->attempts);
        EXPECT(ev->delay_ms <= ceiling(20, 80, ev->attempt));
        if (ev->attempt == 1) {
            EXPECT(ev->close_code == 1006 && ev->status == TW_STATUS_OK);
        } else {
            EXPECT(ev->status == TW_STATUS_CONNECT && ev->close_code == 0);
            EXPECT(ev->data.data != NULL && ev->data.len > 0);
        }
        return st->phase == 1 && st->attempts >= 3;
    default:
        fprintf(stderr, "    unexpected event %u\n", (unsigned)ev->kind);
        st->bad = true;
        return true;
    }
}

static void the_server_dropped_and_recreated_on_the_same_port_is_reconnected_with_the_same_id(void) {
    tw_context *ctx[2] = {NULL, NULL}; /* client, server */
    tw_listener l = 0;
    uint16_t port = 0;
    char url[96];
    CHECK_OK(tw_context_new(NULL, &ctx[0]));
    CHECK_OK(tw_context_new(NULL, &ctx[1]));
    CHECK(tc_listen(ctx[1], NULL, &l, &port));
    tw_connect_options *co = reconnect_options(20, 80, 0);
    CHECK(co != NULL);
    struct restart st = {0};
    CHECK_OK(tw_context_connect(ctx[0], tc_url(url, sizeof url, "ws", port, "/"), co, &st.conn));
    tw_connect_options_free(co);
    CHECK(tc_run(ctx, 2, 16, on_restart, &st, 5000) && !st.bad);

    /* The server goes away: its context is dropped with every socket. */
    tw_context_free(ctx[1]);
    st.phase = 1;
    CHECK(tc_run(ctx, 1, 16, on_restart, &st, 5000) && !st.bad);

    /* Back on the same port. */
    CHECK_OK(tw_context_new(NULL, &ctx[1]));
    CHECK_OK(tw_context_listen(ctx[1], "127.0.0.1", port, NULL, &l));
    /* More RECONNECTING events may come before the open (numbered on). */
    st.phase = 2;
    CHECK(tc_run(ctx, 2, 16, on_restart, &st, 5000) && !st.bad);
    CHECK(st.reopened);

    /* The application's close is final. */
    CHECK_OK(tw_conn_close(ctx[0], st.conn, 1000, "bye", 3));
    tw_event events[16];
    size_t n = 0;
    bool closed = false;
    int64_t end = tc_now_ms() + 3000;
    while (!closed && tc_now_ms() < end) {
        CHECK_OK(tw_poll(ctx[0], events, 16, 5, &n));
        tw_poll(ctx[1], events + 8, 8, 0, &(size_t){0});
        for (size_t i = 0; i < n; i++) {
            CHECK(events[i].kind != TW_EVENT_RECONNECTING);
            closed |= events[i].kind == TW_EVENT_CLOSE;
        }
    }
    CHECK(closed);
    CHECK_STATUS(tw_conn_stop_reconnecting(ctx[0], st.conn), TW_STATUS_STALE_ID);
    tw_context_free(ctx[0]);
    tw_context_free(ctx[1]);
}

struct answer {
    bool bad;
    uint16_t status; /* what the server rejects with */
    int requests;
    tw_conn conn;
    bool stop; /* stop while waiting for the next attempt */
    bool reconnecting, ended;
    tw_event last; /* the client's last event */
};

static bool on_answer(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    struct answer *st = state;
    if (which == 1) {
        if (ev->kind == TW_EVENT_REQUEST) {
            st->requests++;
            static const tw_header retry[] = {{"Retry-After", "1"}};
            EXPECT(tw_conn_reject(ctx, ev->conn, st->status, retry, 1, NULL, 0) == TW_STATUS_OK);
        }
        return false;
    }
    EXPECT(ev->conn == st->conn);
    st->last = *ev;
    st->last.data = (tw_bytes){NULL, 0};
    if (ev->kind == TW_EVENT_RECONNECTING) {
        EXPECT(!st->reconnecting);
        st->reconnecting = true;
        if (st->stop) {
            EXPECT(tw_conn_stop_reconnecting(ctx, ev->conn) == TW_STATUS_OK);
        }
        return false;
    }
    EXPECT(ev->kind == TW_EVENT_ERROR);
    st->ended = true;
    return true;
}

static bool answer_run(struct answer *st, uint16_t status, bool stop) {
    tw_context *ctx[2] = {NULL, NULL};
    tw_listen_options *lo = NULL;
    tw_listener l = 0;
    uint16_t port = 0;
    char url[96];
    bool ok = tc_ok(tw_context_new(NULL, &ctx[0]), "ctx") && tc_ok(tw_context_new(NULL, &ctx[1]), "ctx") &&
              tc_ok(tw_listen_options_new(&lo), "lo") &&
              tc_ok(tw_listen_options_set_handle_requests(lo, true), "handle_requests") &&
              tc_listen(ctx[1], lo, &l, &port);
    tw_listen_options_free(lo);
    tw_connect_options *co = reconnect_options(10, 20, 0);
    memset(st, 0, sizeof *st);
    st->status = status;
    st->stop = stop;
    ok = ok && co != NULL &&
         tc_ok(tw_context_connect(ctx[0], tc_url(url, sizeof url, "ws", port, "/"), co, &st->conn), "connect") &&
         tc_run(ctx, 2, 16, on_answer, st, 5000);
    /* Nothing more for a while: no further attempt reaches the server. */
    int64_t end = tc_now_ms() + 300;
    tw_event events[8];
    size_t n = 0;
    while (ok && tc_now_ms() < end) {
        tw_poll(ctx[1], events, 8, 5, &n);
        for (size_t i = 0; i < n; i++) st->requests += events[i].kind == TW_EVENT_REQUEST;
        tw_poll(ctx[0], events, 8, 0, &n);
        if (n != 0) {
            fprintf(stderr, "    an event after the end\n");
            ok = false;
        }
    }
    tw_connect_options_free(co);
    tw_context_free(ctx[0]);
    tw_context_free(ctx[1]);
    return ok && !st->bad;
}

static void a_403_rejection_is_not_retried(void) {
    struct answer st;
    CHECK(answer_run(&st, 403, false));
    CHECK(!st.reconnecting && st.ended);
    CHECK(st.last.status == TW_STATUS_HANDSHAKE_REJECTED && st.last.http_status == 403);
    CHECK(st.requests == 1);
}

static void a_503_is_retried_after_its_retry_after_and_stopping_mid_backoff_ends_it(void) {
    struct answer st;
    int64_t t0 = tc_now_ms();
    CHECK(answer_run(&st, 503, true));
    CHECK(tc_now_ms() - t0 < 1000); /* stopped during the 1 s wait */
    CHECK(st.reconnecting && st.ended);
    CHECK(st.last.status == TW_STATUS_ABORTED);
    CHECK(st.requests == 1);
}

static bool on_retry_after(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    struct answer *st = state;
    if (which == 0 && ev->kind == TW_EVENT_RECONNECTING) {
        EXPECT(ev->attempt == 1 && ev->delay_ms == 1000); /* Retry-After: 1 over a 10 ms ceiling */
        EXPECT(ev->status == TW_STATUS_HANDSHAKE_REJECTED && ev->http_status == 503);
        st->reconnecting = true;
        return false;
    }
    if (which == 1 && ev->kind == TW_EVENT_REQUEST && st->requests == 1) {
        st->requests++;
        EXPECT(tw_conn_accept(ctx, ev->conn, NULL, NULL, 0) == TW_STATUS_OK);
        return false;
    }
    if (which == 0 && ev->kind == TW_EVENT_OPEN) {
        EXPECT(st->reconnecting && ev->conn == st->conn);
        st->ended = true;
        return true;
    }
    return on_answer(ctx, which, ev, state);
}

static void a_503_retry_after_delays_the_next_attempt(void) {
    tw_context *ctx[2] = {NULL, NULL};
    tw_listen_options *lo = NULL;
    tw_listener l = 0;
    uint16_t port = 0;
    char url[96];
    CHECK_OK(tw_context_new(NULL, &ctx[0]));
    CHECK_OK(tw_context_new(NULL, &ctx[1]));
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_handle_requests(lo, true));
    CHECK(tc_listen(ctx[1], lo, &l, &port));
    tw_listen_options_free(lo);
    tw_connect_options *co = reconnect_options(10, 10, 0);
    CHECK(co != NULL);
    struct answer st = {.status = 503};
    CHECK_OK(tw_context_connect(ctx[0], tc_url(url, sizeof url, "ws", port, "/"), co, &st.conn));
    tw_connect_options_free(co);
    int64_t t0 = tc_now_ms();
    CHECK(tc_run(ctx, 2, 16, on_retry_after, &st, 5000) && !st.bad);
    CHECK(tc_now_ms() - t0 >= 990);
    CHECK(st.ended && st.requests == 2);
    tw_context_free(ctx[0]);
    tw_context_free(ctx[1]);
}

static void the_reconnect_setter_checks_its_ranges(void) {
    tw_connect_options *co = NULL;
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_set_reconnect(co, 100, 30000, 0, 10000));
    CHECK_OK(tw_connect_options_set_reconnect(co, 0, 0, 0, 0)); /* off */
    CHECK_STATUS(tw_connect_options_set_reconnect(co, 100, 50, 0, 10000), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_connect_options_set_reconnect(co, 100, 200, 0, (uint64_t)2 * 24 * 3600 * 1000),
                 TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_connect_options_set_reconnect(NULL, 100, 200, 0, 0), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_conn_stop_reconnecting(NULL, 1), TW_STATUS_NULL_ARGUMENT);
    tw_connect_options_free(co);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(the_server_dropped_and_recreated_on_the_same_port_is_reconnected_with_the_same_id),
        TR_CASE(a_403_rejection_is_not_retried),
        TR_CASE(a_503_is_retried_after_its_retry_after_and_stopping_mid_backoff_ends_it),
        TR_CASE(a_503_retry_after_delays_the_next_attempt),
        TR_CASE(the_reconnect_setter_checks_its_ranges),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
