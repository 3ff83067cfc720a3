/* An event array smaller than the number of ready events: the rest wait for the next
 * tw_poll, none is lost or duplicated, and the next call does not wait for them. */
#include "runner.h"

#include "common.h"

#define COUNT 300

struct server_side {
    tw_conn conn;
    int next;       /* number expected in the next message */
    bool bad;
    bool closed;
    void *closed_userdata;
};

static void check_event(const tw_event *ev, struct server_side *st) {
    if (ev->kind == TW_EVENT_OPEN) {
        st->conn = ev->conn;
    } else if (ev->kind == TW_EVENT_MESSAGE) {
        char want[16];
        snprintf(want, sizeof want, "m%03d", st->next);
        if (!tc_eq(ev->data, want)) {
            fprintf(stderr, "    got %.*s, wanted %s\n", (int)ev->data.len, (const char *)ev->data.data, want);
            st->bad = true;
        }
        st->next++;
    } else if (ev->kind == TW_EVENT_CLOSE) {
        if (st->closed) st->bad = true; /* twice */
        st->closed = true;
        st->closed_userdata = ev->userdata;
    }
}

static void one_slot_array_gets_every_event_once_and_in_order(void) {
    tw_context *srv = NULL, *cli = NULL;
    CHECK_OK(tw_context_new(NULL, &srv));
    CHECK_OK(tw_context_new(NULL, &cli));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(srv, NULL, &l, &port));
    char url[64];
    tw_conn c = 0;
    CHECK_OK(tw_context_connect(cli, tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));

    struct server_side st = {0};
    int marker = 0;
    bool sent = false, marked = false;
    int64_t deadline = tc_now_ms() + 10000;
    int polls_with_leftovers = 0;
    while (!st.closed && !st.bad && tc_now_ms() < deadline) {
        tw_event ev[1];
        size_t n = 0;
        /* Client side: once open, send everything and close in one go. */
        tw_event cev[8];
        CHECK_OK(tw_poll(cli, cev, 8, 0, &n));
        for (size_t i = 0; i < n; i++) {
            if (cev[i].kind == TW_EVENT_OPEN && !sent) {
                for (int k = 0; k < COUNT; k++) {
                    char m[16];
                    int len = snprintf(m, sizeof m, "m%03d", k);
                    CHECK_OK(tw_conn_send_text(cli, c, m, (size_t)len));
                }
                CHECK_OK(tw_conn_close(cli, c, 1000, NULL, 0));
                sent = true;
            }
        }
        /* Server side: one event per call. */
        int32_t ms = -2;
        CHECK_OK(tw_context_next_timeout_ms(srv, &ms));
        bool leftovers = (ms == 0);
        int64_t t0 = tc_now_ms();
        CHECK_OK(tw_poll(srv, ev, 1, leftovers ? 2000 : 5, &n));
        if (leftovers) {
            polls_with_leftovers++;
            CHECK(n == 1);                  /* a waiting event is delivered ... */
            CHECK(tc_now_ms() - t0 < 1000); /* ... without waiting for the timeout */
        }
        CHECK(n <= 1);
        if (n == 1) {
            check_event(&ev[0], &st);
            if (st.conn != 0 && !marked) {
                CHECK_OK(tw_conn_set_userdata(srv, st.conn, &marker));
                marked = true;
            }
        }
    }
    CHECK(!st.bad);
    CHECK(st.next == COUNT);
    CHECK(st.closed && st.closed_userdata == &marker);
    CHECK(polls_with_leftovers > 10);
    size_t count = 1;
    CHECK_OK(tw_context_connection_count(srv, &count));
    CHECK(count == 0);
    tw_context_free(srv);
    tw_context_free(cli);
}

static void arrays_of_other_sizes_see_the_same_sequence(void) {
    static const size_t sizes[] = {2, 3, 7, 64};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        tw_context *ctx = NULL;
        CHECK_OK(tw_context_new(NULL, &ctx));
        tw_listener l = 0;
        uint16_t port = 0;
        CHECK(tc_listen(ctx, NULL, &l, &port));
        char url[64];
        tw_conn c = 0;
        CHECK_OK(tw_context_connect(ctx, tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));
        struct server_side st = {0};
        int64_t deadline = tc_now_ms() + 10000;
        while (!st.closed && !st.bad && tc_now_ms() < deadline) {
            tw_event ev[64];
            size_t n = 0;
            CHECK_OK(tw_poll(ctx, ev, sizes[s], 5, &n));
            CHECK(n <= sizes[s]);
            for (size_t i = 0; i < n; i++) {
                if (ev[i].conn == c) {
                    if (ev[i].kind == TW_EVENT_OPEN) {
                        for (int k = 0; k < COUNT; k++) {
                            char m[16];
                            int len = snprintf(m, sizeof m, "m%03d", k);
                            CHECK_OK(tw_conn_send_text(ctx, c, m, (size_t)len));
                        }
                        CHECK_OK(tw_conn_close(ctx, c, 1000, NULL, 0));
                    }
                } else {
                    check_event(&ev[i], &st);
                }
            }
        }
        CHECK(!st.bad && st.next == COUNT && st.closed);
        tw_context_free(ctx);
    }
}

/* Over the high water mark a send is queued but answers AGAIN; at the hard cap it is
 * refused with BUFFER_FULL; once the buffer drains to the low water mark, WRITABLE comes. */
static void back_pressure_says_again_then_writable_and_refuses_at_the_cap(void) {
    tw_config *cfg = NULL;
    CHECK_OK(tw_config_new(&cfg));
    CHECK_OK(tw_config_set_high_water_mark(cfg, 64 << 10));
    CHECK_OK(tw_config_set_low_water_mark(cfg, 16 << 10));
    CHECK_OK(tw_config_set_max_buffered(cfg, 100 << 10));
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(cfg, &ctx));
    tw_config_free(cfg);
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, NULL, &l, &port));
    /* Without compression, so that the buffered sizes are the message sizes. */
    tw_deflate_config *off = NULL;
    tw_connect_options *co = NULL;
    CHECK_OK(tw_deflate_config_new(&off));
    CHECK_OK(tw_deflate_config_set_enabled(off, false));
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_set_deflate(co, off));
    tw_deflate_config_free(off);
    char url[64];
    tw_conn c = 0;
    CHECK_OK(tw_context_connect(ctx, tc_url(url, sizeof url, "ws", port, "/"), co, &c));
    tw_connect_options_free(co);
    static uint8_t chunk[40 << 10];
    memset(chunk, 'b', sizeof chunk);
    bool opened = false, writable = false;
    int received = 0;
    int64_t deadline = tc_now_ms() + 10000;
    while ((!writable || received < 3) && tc_now_ms() < deadline) {
        tw_event ev[16];
        size_t n = 0;
        CHECK_OK(tw_poll(ctx, ev, 16, 5, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_OPEN && ev[i].conn == c) {
                opened = true;
                CHECK_OK(tw_conn_send_binary(ctx, c, chunk, sizeof chunk));             /* 40 KiB */
                CHECK_STATUS(tw_conn_send_binary(ctx, c, chunk, sizeof chunk), TW_STATUS_AGAIN); /* 80 */
                CHECK_STATUS(tw_conn_send_binary(ctx, c, chunk, sizeof chunk), TW_STATUS_AGAIN); /* 120 */
                size_t buffered = 0;
                CHECK_OK(tw_conn_buffered_amount(ctx, c, &buffered));
                CHECK(buffered >= 3 * sizeof chunk);
                CHECK_STATUS(tw_conn_send_binary(ctx, c, chunk, sizeof chunk), TW_STATUS_BUFFER_FULL);
            }
            if (ev[i].kind == TW_EVENT_WRITABLE) {
                CHECK(ev[i].conn == c);
                writable = true;
            }
            if (ev[i].kind == TW_EVENT_MESSAGE && ev[i].conn != c) {
                CHECK(ev[i].data.len == sizeof chunk);
                received++;
            }
        }
    }
    CHECK(opened && writable);
    CHECK(received == 3); /* the refused fourth never left */
    tw_context_free(ctx);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(one_slot_array_gets_every_event_once_and_in_order),
        TR_CASE(arrays_of_other_sizes_see_the_same_sequence),
        TR_CASE(back_pressure_says_again_then_writable_and_refuses_at_the_cap),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
