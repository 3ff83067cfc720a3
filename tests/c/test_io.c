/* tw_io: a context on its own I/O thread. Ids at once, events in order and once each, sends
 * from several threads, shutdown that joins the thread, events that outlive the handle. */
#include "runner.h"

#include <pthread.h>

#include "common.h"

#define N_ORDER 1000
#define THREADS 4
#define PER_THREAD 250

/* Waits (bounded) for one event; returns false after the deadline. */
static bool next_event(tw_io *io, tw_io_event *ev) {
    size_t n = 0;
    int64_t deadline = tc_now_ms() + 15000;
    while (n == 0 && tc_now_ms() < deadline) {
        if (tw_io_poll(io, ev, 1, 100, &n) != TW_STATUS_OK) return false;
    }
    return n == 1;
}

/* Listens and connects on one handle; waits for both opens. */
static bool open_pair(tw_io *io, tw_conn *client, tw_conn *server) {
    tw_listener l = 0;
    uint16_t port = 0;
    if (!tc_ok(tw_io_listen(io, "127.0.0.1", 0, NULL, &l, &port), "listen")) return false;
    if (port == 0) return false;
    char url[64];
    if (!tc_ok(tw_io_connect(io, tc_url(url, sizeof url, "ws", port, "/io"), NULL, client), "connect"))
        return false;
    if (*client == 0) return false; /* the id came back at once */
    bool client_open = false;
    *server = 0;
    while (!client_open || *server == 0) {
        tw_io_event ev;
        if (!next_event(io, &ev)) return false;
        bool ok = ev.event.kind == TW_EVENT_OPEN;
        if (ok && ev.event.listener == 0) {
            ok = ev.event.conn == *client;
            client_open = true;
        } else if (ok) {
            *server = ev.event.conn;
        }
        tw_io_event_release(&ev);
        if (!ok) return false;
    }
    return true;
}

static void ids_at_once_and_echo_in_order(void) {
    tw_io *io = NULL;
    CHECK_OK(tw_io_new(NULL, 0, &io));
    tw_conn client = 0, server = 0;
    CHECK(open_pair(io, &client, &server));
    CHECK(client != server);
    for (int i = 0; i < N_ORDER; i++) {
        char m[32];
        int len = snprintf(m, sizeof m, "m%d", i);
        CHECK_OK(tw_io_send_text(io, client, m, (size_t)len));
    }
    int echoed = 0, back = 0;
    tw_io_event evs[16];
    int64_t deadline = tc_now_ms() + 15000;
    while (back < N_ORDER && tc_now_ms() < deadline) {
        size_t n = 0;
        CHECK_OK(tw_io_poll(io, evs, 16, 50, &n));
        bool bad = false;
        for (size_t i = 0; i < n; i++) {
            const tw_event *e = &evs[i].event;
            char want[32];
            if (e->kind != TW_EVENT_MESSAGE) {
                bad = true;
                continue;
            }
            int *count = e->conn == server ? &echoed : &back;
            int len = snprintf(want, sizeof want, "m%d", *count);
            if (e->data.len != (size_t)len || memcmp(e->data.data, want, (size_t)len) != 0) bad = true;
            (*count)++;
            if (e->conn == server) {
                /* Echo from the event's own buffer: valid until released. */
                if (tw_io_send(io, server, e->message_kind, e->data.data, e->data.len) != TW_STATUS_OK) bad = true;
            }
        }
        tw_io_events_release(evs, n);
        CHECK(!bad);
    }
    CHECK(echoed == N_ORDER);
    CHECK(back == N_ORDER);
    size_t pending = 1;
    CHECK_OK(tw_io_pending(io, &pending));
    CHECK(pending == 0);
    tw_io_free(io);
}

struct worker {
    tw_io *io;
    tw_conn conn;
    int index;
    tw_status failed;
};

static void *work(void *arg) {
    struct worker *w = arg;
    for (int k = 0; k < PER_THREAD; k++) {
        char m[32];
        int len = snprintf(m, sizeof m, "%d:%d", w->index, k);
        tw_status s;
        do {
            s = (k % 2 == 0) ? tw_io_send_text(w->io, w->conn, m, (size_t)len)
                             : tw_io_send_binary(w->io, w->conn, (const uint8_t *)m, (size_t)len);
        } while (s == TW_STATUS_BUFFER_FULL);
        if (s != TW_STATUS_OK && w->failed == TW_STATUS_OK) w->failed = s;
    }
    return NULL;
}

static void sends_from_several_threads_arrive_once_in_per_thread_order(void) {
    tw_io *io = NULL;
    CHECK_OK(tw_io_new(NULL, 0, &io));
    tw_conn client = 0, server = 0;
    CHECK(open_pair(io, &client, &server));
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){io, client, t, TW_STATUS_OK};
        CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0);
    }
    int next[THREADS] = {0};
    int got = 0;
    bool bad = false;
    int64_t deadline = tc_now_ms() + 15000;
    /* Drains while the threads send (this thread is the one that polls). */
    while (got < THREADS * PER_THREAD && !bad && tc_now_ms() < deadline) {
        tw_io_event evs[32];
        size_t n = 0;
        CHECK_OK(tw_io_poll(io, evs, 32, 20, &n));
        for (size_t i = 0; i < n; i++) {
            const tw_event *e = &evs[i].event;
            int t = -1, k = -1;
            char buf[32] = {0};
            if (e->kind != TW_EVENT_MESSAGE || e->conn != server || e->data.len >= sizeof buf) {
                bad = true;
                continue;
            }
            memcpy(buf, e->data.data, e->data.len);
            if (sscanf(buf, "%d:%d", &t, &k) != 2 || t < 0 || t >= THREADS || k != next[t]) bad = true;
            else next[t]++;
            got++;
        }
        tw_io_events_release(evs, n);
    }
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        CHECK(workers[t].failed == TW_STATUS_OK);
    }
    CHECK(!bad);
    CHECK(got == THREADS * PER_THREAD);
    tw_io_free(io);
}

static void shutdown_joins_and_events_outlive_the_handle(void) {
    tw_io *io = NULL;
    CHECK_OK(tw_io_new(NULL, 0, &io));
    tw_conn client = 0, server = 0;
    CHECK(open_pair(io, &client, &server));
    CHECK_OK(tw_io_send_text(io, server, "last words", 10));
    CHECK_OK(tw_io_shutdown(io, 5000));
    CHECK_OK(tw_io_shutdown(io, 0)); /* again: nothing */
    CHECK_STATUS(tw_io_send_text(io, client, "late", 4), TW_STATUS_SHUTTING_DOWN);
    tw_conn c = 0;
    CHECK_STATUS(tw_io_connect(io, "ws://127.0.0.1:1/", NULL, &c), TW_STATUS_SHUTTING_DOWN);
    tw_io_event evs[16];
    size_t n = 0;
    CHECK_OK(tw_io_poll(io, evs, 16, 0, &n));
    tw_io_free(io); /* the events taken stay valid */
    int closes = 0, stops = 0, messages = 0;
    for (size_t i = 0; i < n; i++) {
        const tw_event *e = &evs[i].event;
        if (e->kind == TW_EVENT_CLOSE) closes++;
        if (e->kind == TW_EVENT_MESSAGE && e->data.len == 10 && memcmp(e->data.data, "last words", 10) == 0)
            messages++;
        if (e->kind == TW_EVENT_STOPPED) {
            stops++;
            CHECK(i == n - 1);
            CHECK(e->status == TW_STATUS_OK);
        }
    }
    tw_io_events_release(evs, n);
    tw_io_events_release(evs, n); /* released twice: a no-op */
    CHECK(closes == 2);
    CHECK(stops == 1);
    CHECK(messages == 1);
}

static void refused_sends_and_failed_connects_are_events(void) {
    tw_io *io = NULL;
    CHECK_OK(tw_io_new(NULL, 0, &io));
    tw_conn c = 0;
    /* Port 1 on loopback: nothing listens there. */
    CHECK_OK(tw_io_connect(io, "ws://127.0.0.1:1/", NULL, &c));
    CHECK(c != 0);
    CHECK_OK(tw_io_send_text(io, c, "too early", 9));
    /* Both come, in either order: the send is refused as "not open" when it is applied
     * before the connect fails, as "stale id" after. */
    bool send_failed = false, error = false;
    while (!error || !send_failed) {
        tw_io_event ev;
        CHECK(next_event(io, &ev));
        if (ev.event.kind == TW_EVENT_SEND_FAILED && ev.event.conn == c) send_failed = true;
        if (ev.event.kind == TW_EVENT_ERROR && ev.event.conn == c) {
            error = true;
            CHECK(ev.event.status == TW_STATUS_CONNECT);
            CHECK(ev.event.data.len > 0);
        }
        tw_io_event_release(&ev);
    }
    CHECK(send_failed);
    tw_io_free(io);
}

static void arguments_are_checked(void) {
    tw_io *io = NULL;
    CHECK_STATUS(tw_io_new(NULL, 0, NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_io_new(NULL, 1000, &io), TW_STATUS_INVALID_ARGUMENT);
    CHECK(io == NULL);
    CHECK_OK(tw_io_new(NULL, 1 << 20, &io));
    tw_conn c = 0;
    CHECK_STATUS(tw_io_connect(io, "http://x/", NULL, &c), TW_STATUS_INVALID_URL);
    CHECK_STATUS(tw_io_connect(io, NULL, NULL, &c), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_io_send_text(io, 1, "\xff", 1), TW_STATUS_INVALID_UTF8);
    CHECK_STATUS(tw_io_send(io, 1, 9, (const uint8_t *)"x", 1), TW_STATUS_INVALID_ARGUMENT);
    tw_io_event ev;
    size_t n = 0;
    CHECK_STATUS(tw_io_poll(io, &ev, 0, 0, &n), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_io_poll(io, NULL, 1, 0, &n), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_io_poll(NULL, &ev, 1, 0, &n), TW_STATUS_NULL_ARGUMENT);
    CHECK_OK(tw_io_poll(io, &ev, 1, 0, &n));
    CHECK(n == 0);
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_handle_requests(lo, true));
    tw_listener l = 0;
    CHECK_STATUS(tw_io_listen(io, "127.0.0.1", 0, lo, &l, NULL), TW_STATUS_INVALID_ARGUMENT);
    tw_listen_options_free(lo);
    tw_io_event_release(NULL);
    tw_io_events_release(NULL, 3);
    tw_io_free(io);
    tw_io_free(NULL);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(ids_at_once_and_echo_in_order),
        TR_CASE(sends_from_several_threads_arrive_once_in_per_thread_order),
        TR_CASE(shutdown_joins_and_events_outlive_the_handle),
        TR_CASE(refused_sends_and_failed_connects_are_events),
        TR_CASE(arguments_are_checked),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
