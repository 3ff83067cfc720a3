/* A sender used from several threads at once; wake; refusals reported as events; a sender
 * that outlives its context. */
#include "runner.h"

#include <pthread.h>

#include "common.h"

#define THREADS 4
#define PER_THREAD 250

struct worker {
    tw_sender *sender;
    tw_conn conn;
    int index;
    tw_status failed; /* first non-OK status, if any */
};

static void *work(void *arg) {
    struct worker *w = arg;
    for (int k = 0; k < PER_THREAD; k++) {
        char m[32];
        int len = snprintf(m, sizeof m, "t%d-%03d", w->index, k);
        tw_status s = (k % 2 == 0) ? tw_sender_send_text(w->sender, w->conn, m, (size_t)len)
                                   : tw_sender_send_binary(w->sender, w->conn, (const uint8_t *)m, (size_t)len);
        if (s != TW_STATUS_OK && w->failed == TW_STATUS_OK) w->failed = s;
    }
    return NULL;
}

struct waker {
    tw_status status;
    tw_sender *sender;
};

static void *do_wake(void *arg) {
    struct waker *w = arg;
    w->status = tw_sender_wake(w->sender);
    return NULL;
}

static void messages_from_several_threads_all_arrive_in_per_thread_order(void) {
    tw_context *srv = NULL, *cli = NULL;
    CHECK_OK(tw_context_new(NULL, &srv));
    CHECK_OK(tw_context_new(NULL, &cli));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(srv, NULL, &l, &port));
    char url[64];
    tw_conn c = 0;
    CHECK_OK(tw_context_connect(cli, tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));
    tw_sender *sender = NULL;
    CHECK_OK(tw_context_sender(srv, &sender));

    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    bool started = false;
    int next[THREADS] = {0};
    int received = 0, wakes = 0;
    bool bad = false, client_closed = false, server_closed = false, close_sent = false;
    tw_conn server_conn = 0;
    int64_t deadline = tc_now_ms() + 15000;
    while (!(client_closed && server_closed) && !bad && tc_now_ms() < deadline) {
        tw_event ev[32];
        size_t n = 0;
        CHECK_OK(tw_poll(srv, ev, 32, 2, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_OPEN && !started) {
                server_conn = ev[i].conn;
                for (int t = 0; t < THREADS; t++) {
                    workers[t] = (struct worker){sender, server_conn, t, TW_STATUS_OK};
                    CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0);
                }
                started = true;
            }
            if (ev[i].kind == TW_EVENT_WAKE) wakes++;
            if (ev[i].kind == TW_EVENT_SEND_FAILED) bad = true;
            if (ev[i].kind == TW_EVENT_CLOSE) server_closed = true;
        }
        CHECK_OK(tw_poll(cli, ev, 32, 2, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_MESSAGE) {
                int t = -1, k = -1;
                char m[32];
                snprintf(m, sizeof m, "%.*s", (int)ev[i].data.len, (const char *)ev[i].data.data);
                if (sscanf(m, "t%d-%d", &t, &k) != 2 || t < 0 || t >= THREADS || k != next[t]) {
                    fprintf(stderr, "    out of order: %s (expected t%d-%03d)\n", m, t, t >= 0 && t < THREADS ? next[t] : -1);
                    bad = true;
                    continue;
                }
                tw_message_kind want = (k % 2 == 0) ? TW_MESSAGE_TEXT : TW_MESSAGE_BINARY;
                if (ev[i].message_kind != want) bad = true;
                next[t]++;
                received++;
            }
            if (ev[i].kind == TW_EVENT_CLOSE) {
                client_closed = true;
                if (ev[i].close_code != 4001 || !tc_eq(ev[i].data, "done")) bad = true;
            }
        }
        if (received == THREADS * PER_THREAD && !close_sent) {
            for (int t = 0; t < THREADS; t++) {
                CHECK(pthread_join(threads[t], NULL) == 0);
                CHECK(workers[t].failed == TW_STATUS_OK);
            }
            /* A wake and a close from another thread. */
            struct waker w = {TW_STATUS_INTERNAL, sender};
            pthread_t wt;
            CHECK(pthread_create(&wt, NULL, do_wake, &w) == 0);
            CHECK(pthread_join(wt, NULL) == 0);
            CHECK_OK(w.status);
            CHECK_OK(tw_sender_close(sender, server_conn, 4001, "done", 4));
            close_sent = true;
        }
    }
    CHECK(!bad);
    CHECK(received == THREADS * PER_THREAD);
    CHECK(wakes >= 1);
    CHECK(client_closed && server_closed);
    tw_sender_free(sender);
    tw_context_free(srv);
    tw_context_free(cli);
}

static void refusals_come_back_as_send_failed_events(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_sender *sender = NULL;
    CHECK_OK(tw_context_sender(ctx, &sender));
    /* Checked at once: UTF-8. Checked later, on the context's thread: the id. */
    CHECK_STATUS(tw_sender_send_text(sender, 42, "\xff", 1), TW_STATUS_INVALID_UTF8);
    CHECK_STATUS(tw_sender_close(sender, 42, 1000, "\xff", 1), TW_STATUS_INVALID_UTF8);
    CHECK_OK(tw_sender_send_text(sender, 42, "to nobody", 9));
    CHECK_OK(tw_sender_ping(sender, 43, NULL, 0));
    tw_event ev[8];
    size_t n = 0, failures = 0;
    int64_t deadline = tc_now_ms() + 5000;
    while (failures < 2 && tc_now_ms() < deadline) {
        CHECK_OK(tw_poll(ctx, ev, 8, 10, &n));
        for (size_t i = 0; i < n; i++) {
            CHECK(ev[i].kind == TW_EVENT_SEND_FAILED);
            CHECK(ev[i].status == TW_STATUS_STALE_ID);
            CHECK(ev[i].conn == 42 || ev[i].conn == 43);
            CHECK(ev[i].data.len > 0);
            failures++;
        }
    }
    CHECK(failures == 2);
    tw_context_free(ctx);
    /* The sender outlives its context and says so. */
    CHECK_STATUS(tw_sender_send_text(sender, 42, "late", 4), TW_STATUS_CONTEXT_GONE);
    CHECK_STATUS(tw_sender_wake(sender), TW_STATUS_CONTEXT_GONE);
    tw_sender_free(sender);
}

static void the_sender_queue_limit_refuses_with_buffer_full(void) {
    tw_config *cfg = NULL;
    CHECK_OK(tw_config_new(&cfg));
    CHECK_OK(tw_config_set_sender_queue_limit(cfg, 1000));
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(cfg, &ctx));
    tw_config_free(cfg);
    tw_sender *sender = NULL;
    CHECK_OK(tw_context_sender(ctx, &sender));
    static const uint8_t chunk[600] = {0};
    CHECK_OK(tw_sender_send_binary(sender, 1, chunk, sizeof chunk));
    CHECK_STATUS(tw_sender_send_binary(sender, 1, chunk, sizeof chunk), TW_STATUS_BUFFER_FULL);
    tw_sender_free(sender);
    tw_context_free(ctx);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(messages_from_several_threads_all_arrive_in_per_thread_order),
        TR_CASE(refusals_come_back_as_send_failed_events),
        TR_CASE(the_sender_queue_limit_refuses_with_buffer_full),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
