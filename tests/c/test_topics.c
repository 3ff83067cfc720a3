/* Topics, publish and broadcast: subscriptions that follow subscribe, unsubscribe and the
 * end of a connection; every subscriber gets every message exactly once (text and binary,
 * with and without permessage-deflate, compressed once per publish); a broadcast counts a
 * stale id; a slow subscriber under each policy; tw_sender_publish from another thread; bad
 * input. Server and clients live in one context: a client's id is distinct from the server
 * side of the same connection. */
#include "runner.h"

#include <pthread.h>

#include "common.h"

#define MAX_CLIENTS 200

/* One context with a listener and `n` clients connected to it: clients[i] connected to
 * "/i", servers[i] is the server side of the same connection. */
struct room {
    tw_context *ctx;
    size_t n;
    tw_conn clients[MAX_CLIENTS];
    tw_conn servers[MAX_CLIENTS];
    /* What each client received: messages, the next expected sequence number, whether one
     * came out of order or with the wrong kind or body. */
    int got[MAX_CLIENTS];
    bool bad;
    bool closed[MAX_CLIENTS];
    uint16_t close_code[MAX_CLIENTS];
};

static size_t client_index(const struct room *r, tw_conn conn) {
    for (size_t i = 0; i < r->n; i++) {
        if (r->clients[i] == conn) return i;
    }
    return r->n;
}

/* Listens with `deflate` on or off (and the given slow-subscriber policy when `slow_limit`
 * is not 0), connects `n` clients and waits until all 2n ends are open. */
static bool room_open(struct room *r, size_t n, bool deflate, size_t slow_limit, tw_slow_action action) {
    memset(r, 0, sizeof *r);
    r->n = n;
    if (!tc_ok(tw_context_new(NULL, &r->ctx), "context")) return false;
    tw_listen_options *lo = NULL;
    if (!tc_ok(tw_listen_options_new(&lo), "listen options")) return false;
    bool ok = true;
    if (!deflate) {
        tw_deflate_config *d = NULL;
        ok = tc_ok(tw_deflate_config_new(&d), "deflate") && tc_ok(tw_deflate_config_set_enabled(d, false), "off") &&
             tc_ok(tw_listen_options_set_deflate(lo, d), "set deflate");
        tw_deflate_config_free(d);
    }
    if (ok && slow_limit > 0) {
        ok = tc_ok(tw_listen_options_set_slow_subscriber(lo, slow_limit, action), "slow subscriber");
    }
    tw_listener l = 0;
    uint16_t port = 0;
    ok = ok && tc_listen(r->ctx, lo, &l, &port);
    tw_listen_options_free(lo);
    if (!ok) return false;
    for (size_t i = 0; i < n; i++) {
        char path[32], url[64];
        snprintf(path, sizeof path, "/%zu", i);
        if (!tc_ok(tw_context_connect(r->ctx, tc_url(url, sizeof url, "ws", port, path), NULL, &r->clients[i]),
                   "connect")) {
            return false;
        }
    }
    size_t opened = 0;
    int64_t deadline = tc_now_ms() + 15000;
    tw_event ev[64];
    while (opened < 2 * n && tc_now_ms() < deadline) {
        size_t count = 0;
        if (!tc_ok(tw_poll(r->ctx, ev, 64, 5, &count), "poll")) return false;
        for (size_t i = 0; i < count; i++) {
            if (ev[i].kind == TW_EVENT_ERROR) {
                fprintf(stderr, "    error event: %s\n", (const char *)ev[i].data.data);
                return false;
            }
            if (ev[i].kind != TW_EVENT_OPEN) continue;
            opened++;
            if (ev[i].listener == 0) continue; /* a client end */
            /* The server end: the path says which client it belongs to. */
            char path[16] = {0};
            if (ev[i].path.len > 1 && ev[i].path.len < sizeof path) memcpy(path, ev[i].path.data, ev[i].path.len);
            unsigned long k = strtoul(path + 1, NULL, 10);
            if (k >= n || (deflate != tc_contains(ev[i].extensions, "permessage-deflate"))) {
                fprintf(stderr, "    unexpected open: path %.*s\n", (int)ev[i].path.len, (const char *)ev[i].path.data);
                return false;
            }
            r->servers[k] = ev[i].conn;
        }
    }
    if (opened < 2 * n) fprintf(stderr, "    only %zu of %zu ends opened\n", opened, 2 * n);
    return opened == 2 * n;
}

/* Message number k: text "text-k" for even k, binary "binary-k" padded with a pattern for
 * odd k. Long enough (and repetitive enough) to be compressed. */
static size_t message(int k, uint8_t *buf, size_t cap, tw_message_kind *kind) {
    *kind = (k % 2 == 0) ? TW_MESSAGE_TEXT : TW_MESSAGE_BINARY;
    int len = snprintf((char *)buf, cap, "%s-%d:", *kind == TW_MESSAGE_TEXT ? "text" : "binary", k);
    size_t n = (size_t)len;
    while (n < 600 && n < cap) {
        buf[n] = (uint8_t)('a' + (n % 13));
        n++;
    }
    return n;
}

/* Checks one message event against the expected sequence for its client. */
static void room_receive(struct room *r, const tw_event *ev) {
    size_t i = client_index(r, ev->conn);
    if (i == r->n) {
        fprintf(stderr, "    a server end received a message\n");
        r->bad = true;
        return;
    }
    uint8_t want[700];
    tw_message_kind kind;
    size_t len = message(r->got[i], want, sizeof want, &kind);
    if (ev->message_kind != kind || ev->data.len != len || memcmp(ev->data.data, want, len) != 0) {
        fprintf(stderr, "    client %zu: message %d is wrong or out of order: %.*s\n", i, r->got[i],
                (int)(ev->data.len < 20 ? ev->data.len : 20), (const char *)ev->data.data);
        r->bad = true;
        return;
    }
    r->got[i]++;
}

/* Polls until every client in [0, upto) got `want` messages (then 50 ms more, so that a
 * duplicate would show) or the deadline passes. */
static bool room_wait(struct room *r, size_t upto, int want, int timeout_ms) {
    int64_t deadline = tc_now_ms() + timeout_ms;
    int64_t settle = 0;
    tw_event ev[64];
    while (!r->bad && tc_now_ms() < deadline) {
        size_t count = 0;
        if (!tc_ok(tw_poll(r->ctx, ev, 64, 2, &count), "poll")) return false;
        for (size_t i = 0; i < count; i++) {
            if (ev[i].kind == TW_EVENT_MESSAGE) room_receive(r, &ev[i]);
            if (ev[i].kind == TW_EVENT_CLOSE) {
                size_t k = client_index(r, ev[i].conn);
                if (k < r->n) {
                    r->closed[k] = true;
                    r->close_code[k] = ev[i].close_code;
                }
            }
        }
        bool all = true;
        for (size_t i = 0; i < upto; i++) {
            if (r->got[i] < want) all = false;
            if (r->got[i] > want) r->bad = true;
        }
        if (all && settle == 0) settle = tc_now_ms() + 50;
        if (all && tc_now_ms() >= settle) return !r->bad;
    }
    return false;
}

static void subscriptions_follow_subscribe_unsubscribe_and_close(void) {
    struct room r;
    CHECK(room_open(&r, 3, false, 0, TW_SLOW_SKIP));
    tw_context *ctx = r.ctx;
    tw_conn a = r.servers[0], b = r.servers[1], c = r.servers[2];
    bool added = false, removed = true;
    size_t count = 99;

    CHECK_OK(tw_context_topic_count(ctx, &count));
    CHECK(count == 0);
    CHECK_OK(tw_conn_subscribe(ctx, a, (const uint8_t *)"room", 4, &added));
    CHECK(added);
    CHECK_OK(tw_conn_subscribe(ctx, a, (const uint8_t *)"room", 4, &added));
    CHECK(!added); /* already subscribed */
    CHECK_OK(tw_conn_subscribe(ctx, b, (const uint8_t *)"room", 4, NULL)); /* the output is optional */
    CHECK_OK(tw_conn_subscribe(ctx, c, (const uint8_t *)"room", 4, NULL));
    CHECK_OK(tw_conn_subscribe(ctx, a, (const uint8_t *)"other", 5, &added));
    CHECK(added);
    /* NULL with length 0 is the empty topic, a topic like any other. */
    CHECK_OK(tw_conn_subscribe(ctx, b, NULL, 0, &added));
    CHECK(added);
    CHECK_OK(tw_context_subscriber_count(ctx, (const uint8_t *)"", 0, &count));
    CHECK(count == 1);
    CHECK_OK(tw_context_topic_count(ctx, &count));
    CHECK(count == 3);
    CHECK_OK(tw_context_subscriber_count(ctx, (const uint8_t *)"room", 4, &count));
    CHECK(count == 3);

    CHECK_OK(tw_conn_unsubscribe(ctx, c, (const uint8_t *)"room", 4, &removed));
    CHECK(removed);
    CHECK_OK(tw_conn_unsubscribe(ctx, c, (const uint8_t *)"room", 4, &removed));
    CHECK(!removed);
    removed = true;
    CHECK_OK(tw_conn_unsubscribe(ctx, c, (const uint8_t *)"never", 5, &removed));
    CHECK(!removed);
    CHECK_OK(tw_conn_unsubscribe(ctx, b, NULL, 0, NULL));
    CHECK_OK(tw_context_subscriber_count(ctx, NULL, 0, &count));
    CHECK(count == 0);
    CHECK_OK(tw_context_subscriber_count(ctx, (const uint8_t *)"room", 4, &count));
    CHECK(count == 2);

    /* A publish reaches a and b only. */
    tw_publish_report rep;
    memset(&rep, 0xab, sizeof rep);
    uint8_t buf[700];
    tw_message_kind kind;
    size_t len = message(0, buf, sizeof buf, &kind);
    CHECK_OK(tw_context_publish(ctx, (const uint8_t *)"room", 4, kind, buf, len, &rep));
    CHECK(rep.delivered == 2 && rep.skipped_slow == 0 && rep.closed_slow == 0 && rep.not_open == 0);
    CHECK(rep.compressions == 0);
    CHECK(room_wait(&r, 2, 1, 5000));
    CHECK(r.got[0] == 1 && r.got[1] == 1 && r.got[2] == 0);

    /* A topic nobody subscribed to: not an error, nothing delivered. */
    memset(&rep, 0xab, sizeof rep);
    CHECK_OK(tw_context_publish(ctx, (const uint8_t *)"nobody", 6, TW_MESSAGE_BINARY, NULL, 0, &rep));
    CHECK(rep.delivered == 0 && rep.skipped_slow == 0 && rep.closed_slow == 0 && rep.not_open == 0 &&
          rep.compressions == 0);

    /* Closing a (from the client side) takes it out of both of its topics; b stays. */
    CHECK_OK(tw_conn_close(ctx, r.clients[0], 1000, "bye", 3));
    bool a_over = false;
    int64_t deadline = tc_now_ms() + 5000;
    while (!a_over && tc_now_ms() < deadline) {
        tw_event ev[16];
        size_t n = 0;
        CHECK_OK(tw_poll(ctx, ev, 16, 5, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_CLOSE && ev[i].conn == a) a_over = true;
        }
    }
    CHECK(a_over);
    CHECK_OK(tw_context_subscriber_count(ctx, (const uint8_t *)"room", 4, &count));
    CHECK(count == 1);
    CHECK_OK(tw_context_subscriber_count(ctx, (const uint8_t *)"other", 5, &count));
    CHECK(count == 0);
    CHECK_OK(tw_context_topic_count(ctx, &count));
    CHECK(count == 1); /* a topic without subscribers is gone */
    /* The ended id is stale: refused, outputs untouched. */
    added = true;
    CHECK_STATUS(tw_conn_subscribe(ctx, a, (const uint8_t *)"room", 4, &added), TW_STATUS_STALE_ID);
    CHECK(added);
    CHECK_STATUS(tw_conn_unsubscribe(ctx, a, (const uint8_t *)"room", 4, &added), TW_STATUS_STALE_ID);
    CHECK(added);
    CHECK_STATUS(tw_conn_subscribe(ctx, 0, (const uint8_t *)"room", 4, NULL), TW_STATUS_STALE_ID);
    tw_context_free(ctx);
}

/* Publishes `messages` messages to `n` subscribers of "feed" and checks each report and
 * that every subscriber got every message once, in order. */
static void publish_to_many(bool deflate) {
    enum { N = 200, MESSAGES = 20 };
    static struct room r;
    CHECK(room_open(&r, N, deflate, 0, TW_SLOW_SKIP));
    for (size_t i = 0; i < N; i++) {
        bool added = false;
        CHECK_OK(tw_conn_subscribe(r.ctx, r.servers[i], (const uint8_t *)"feed", 4, &added));
        CHECK(added);
    }
    size_t count = 0;
    CHECK_OK(tw_context_subscriber_count(r.ctx, (const uint8_t *)"feed", 4, &count));
    CHECK(count == N);
    for (int k = 0; k < MESSAGES; k++) {
        uint8_t buf[700];
        tw_message_kind kind;
        size_t len = message(k, buf, sizeof buf, &kind);
        tw_publish_report rep;
        CHECK_OK(tw_context_publish(r.ctx, (const uint8_t *)"feed", 4, kind, buf, len, &rep));
        CHECK(rep.delivered == N);
        CHECK(rep.skipped_slow == 0 && rep.closed_slow == 0 && rep.not_open == 0);
        /* Compressed once for all 200 subscribers (they share one parameter set). */
        CHECK(rep.compressions == (deflate ? 1u : 0u));
        if (k % 5 == 4) { /* let some go out between publishes, some pile up */
            tw_event ev[64];
            size_t n = 0;
            CHECK_OK(tw_poll(r.ctx, ev, 64, 0, &n));
            for (size_t i = 0; i < n; i++) {
                if (ev[i].kind == TW_EVENT_MESSAGE) room_receive(&r, &ev[i]);
            }
        }
    }
    CHECK(room_wait(&r, N, MESSAGES, 15000));
    tw_context_free(r.ctx);
}

static void two_hundred_subscribers_get_every_message_exactly_once(void) { publish_to_many(false); }

static void with_deflate_each_publish_is_compressed_once(void) { publish_to_many(true); }

static void broadcast_counts_a_stale_id_as_not_open(void) {
    struct room r;
    CHECK(room_open(&r, 4, false, 0, TW_SLOW_SKIP));
    /* End the fourth connection and wait for both of its ends: its server id is stale. */
    CHECK_OK(tw_conn_close(r.ctx, r.servers[3], 1000, NULL, 0));
    int ends = 0;
    int64_t deadline = tc_now_ms() + 5000;
    while (ends < 2 && tc_now_ms() < deadline) {
        tw_event ev[16];
        size_t n = 0;
        CHECK_OK(tw_poll(r.ctx, ev, 16, 5, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_CLOSE) ends++;
        }
    }
    CHECK(ends == 2);
    tw_conn targets[4] = {r.servers[0], r.servers[1], r.servers[2], r.servers[3]};
    uint8_t buf[700];
    tw_message_kind kind;
    size_t len = message(0, buf, sizeof buf, &kind);
    tw_publish_report rep;
    CHECK_OK(tw_context_broadcast(r.ctx, targets, 4, kind, buf, len, &rep));
    CHECK(rep.delivered == 3 && rep.not_open == 1 && rep.skipped_slow == 0 && rep.closed_slow == 0);
    len = message(1, buf, sizeof buf, &kind);
    CHECK_OK(tw_context_broadcast(r.ctx, targets, 3, kind, buf, len, NULL)); /* the report is optional */
    CHECK(room_wait(&r, 3, 2, 5000));
    /* An empty list: NULL with a count of 0. */
    memset(&rep, 0xab, sizeof rep);
    CHECK_OK(tw_context_broadcast(r.ctx, NULL, 0, TW_MESSAGE_TEXT, (const uint8_t *)"x", 1, &rep));
    CHECK(rep.delivered == 0 && rep.not_open == 0);
    tw_context_free(r.ctx);
}

/* Two subscribers, the second paused on its client side; 16 KiB messages are published
 * until the policy has hit it. The fast one must get every message; the slow one, once it
 * reads again, exactly those delivered to it (and under TW_SLOW_CLOSE then the close). */
static void slow_subscriber(tw_slow_action action) {
    enum { PAYLOAD = 16 << 10, MAX_MESSAGES = 4000, AFTER = 20 };
    static uint8_t payload[PAYLOAD];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7 + 3);
    struct room r;
    CHECK(room_open(&r, 2, false, 64 << 10, action));
    tw_conn fast = r.clients[0], slow = r.clients[1];
    CHECK_OK(tw_conn_subscribe(r.ctx, r.servers[0], (const uint8_t *)"ticks", 5, NULL));
    CHECK_OK(tw_conn_subscribe(r.ctx, r.servers[1], (const uint8_t *)"ticks", 5, NULL));
    CHECK_OK(tw_conn_pause_reading(r.ctx, slow));

    tw_publish_report sum = {0, 0, 0, 0, 0};
    int published = 0, fast_got = 0, slow_got = 0, after = -1;
    bool slow_ended = false, bad = false;
    uint16_t slow_code = 0;
    int64_t deadline = tc_now_ms() + 15000;
    while (tc_now_ms() < deadline && !bad && (after != 0 || fast_got < published)) {
        if (after != 0 && published < MAX_MESSAGES) {
            tw_publish_report rep;
            CHECK_OK(tw_context_publish(r.ctx, (const uint8_t *)"ticks", 5, TW_MESSAGE_BINARY, payload, sizeof payload,
                                        &rep));
            CHECK(rep.delivered + rep.skipped_slow + rep.closed_slow + rep.not_open == 2);
            sum.delivered += rep.delivered;
            sum.skipped_slow += rep.skipped_slow;
            sum.closed_slow += rep.closed_slow;
            sum.not_open += rep.not_open;
            published++;
            bool hit = action == TW_SLOW_SKIP ? sum.skipped_slow > 0 : sum.closed_slow > 0;
            if (after < 0 && hit) after = AFTER; /* a few more, then stop */
            if (after > 0) after--;
        }
        tw_event ev[64];
        size_t n = 0;
        CHECK_OK(tw_poll(r.ctx, ev, 64, 1, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_MESSAGE && ev[i].conn == fast) {
                bad |= ev[i].data.len != sizeof payload || memcmp(ev[i].data.data, payload, sizeof payload) != 0;
                fast_got++;
            } else if (ev[i].kind == TW_EVENT_MESSAGE) {
                bad = true; /* the slow one is paused */
            } else if (ev[i].kind == TW_EVENT_CLOSE) {
                bad = true; /* nothing ends before the slow one reads again */
            }
        }
    }
    CHECK(!bad);
    CHECK(after == 0);
    CHECK(fast_got == published); /* the fast subscriber missed nothing */
    if (action == TW_SLOW_SKIP) {
        CHECK(sum.skipped_slow > 0);
        CHECK(sum.closed_slow == 0 && sum.not_open == 0);
        CHECK(sum.delivered + sum.skipped_slow == 2 * (size_t)published);
    } else {
        CHECK(sum.closed_slow == 1);
        CHECK(sum.skipped_slow == 0);
        /* After the close the slow one is closing: the later publishes count it there. */
        CHECK(sum.delivered + sum.closed_slow + sum.not_open == 2 * (size_t)published);
        CHECK(sum.not_open >= AFTER - 1);
    }

    /* The slow subscriber reads again: what was delivered to it, then (close policy) 1008. */
    CHECK_OK(tw_conn_resume_reading(r.ctx, slow));
    int want = (int)sum.delivered - fast_got;
    deadline = tc_now_ms() + 15000;
    while (tc_now_ms() < deadline && !bad &&
           !(slow_got == want && (action == TW_SLOW_SKIP || slow_ended))) {
        tw_event ev[64];
        size_t n = 0;
        CHECK_OK(tw_poll(r.ctx, ev, 64, 2, &n));
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_MESSAGE && ev[i].conn == slow) {
                bad |= slow_ended || ev[i].data.len != sizeof payload;
                slow_got++;
            } else if (ev[i].kind == TW_EVENT_CLOSE && ev[i].conn == slow) {
                slow_ended = true;
                slow_code = ev[i].close_code;
            }
        }
    }
    CHECK(!bad);
    CHECK(slow_got == want);
    if (action == TW_SLOW_CLOSE) {
        CHECK(slow_ended);
        CHECK(slow_code == TW_SLOW_CLOSE_CODE);
    } else {
        bool open = false;
        CHECK_OK(tw_conn_is_open(r.ctx, slow, &open));
        CHECK(open); /* skipped, not closed */
        /* Caught up: it receives the next publish again. */
        tw_publish_report rep;
        CHECK_OK(tw_context_publish(r.ctx, (const uint8_t *)"ticks", 5, TW_MESSAGE_BINARY, payload, 10, &rep));
        CHECK(rep.delivered == 2);
    }
    tw_context_free(r.ctx);
}

static void a_slow_subscriber_is_skipped_under_tw_slow_skip(void) { slow_subscriber(TW_SLOW_SKIP); }

static void a_slow_subscriber_is_closed_with_1008_under_tw_slow_close(void) { slow_subscriber(TW_SLOW_CLOSE); }

struct publisher {
    tw_sender *sender;
    int messages;
    tw_status failed;    /* first unexpected status */
    tw_status bad_utf8;  /* what invalid UTF-8 got */
};

static void *publish_from_thread(void *arg) {
    struct publisher *p = arg;
    for (int k = 0; k < p->messages; k++) {
        uint8_t buf[700];
        tw_message_kind kind;
        size_t len = message(k, buf, sizeof buf, &kind);
        tw_status s = tw_sender_publish(p->sender, (const uint8_t *)"news", 4, kind, buf, len);
        if (s != TW_STATUS_OK && p->failed == TW_STATUS_OK) p->failed = s;
    }
    p->bad_utf8 = tw_sender_publish(p->sender, (const uint8_t *)"news", 4, TW_MESSAGE_TEXT, (const uint8_t *)"\xff", 1);
    return NULL;
}

static void another_thread_publishes_through_a_sender(void) {
    enum { N = 10, MESSAGES = 50 };
    struct room r;
    CHECK(room_open(&r, N, true, 0, TW_SLOW_SKIP));
    for (size_t i = 0; i < N; i++) {
        CHECK_OK(tw_conn_subscribe(r.ctx, r.servers[i], (const uint8_t *)"news", 4, NULL));
    }
    tw_sender *sender = NULL;
    CHECK_OK(tw_context_sender(r.ctx, &sender));
    struct publisher p = {sender, MESSAGES, TW_STATUS_OK, TW_STATUS_OK};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, publish_from_thread, &p) == 0);
    bool all = room_wait(&r, N, MESSAGES, 15000);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(all);
    CHECK(p.failed == TW_STATUS_OK);
    CHECK(p.bad_utf8 == TW_STATUS_INVALID_UTF8); /* refused at the call, on the calling thread */
    tw_context_free(r.ctx);
    /* The sender outlives its context and says so. */
    CHECK_STATUS(tw_sender_publish(sender, (const uint8_t *)"news", 4, TW_MESSAGE_BINARY, NULL, 0),
                 TW_STATUS_CONTEXT_GONE);
    tw_sender_free(sender);
}

/* The call must fail with `want` and mention `text` in the thread's last error. */
#define CHECK_FAILS(call, want, text)                                                \
    do {                                                                             \
        CHECK_STATUS(call, want);                                                    \
        if (strstr(tw_last_error(), text) == NULL) {                                 \
            TR_FAIL_("%s: last error \"%s\" does not mention \"%s\"", #call,         \
                     tw_last_error(), text);                                         \
            return;                                                                  \
        }                                                                            \
    } while (0)

static void bad_input_is_refused_with_its_status_and_outputs_stay_untouched(void) {
    const uint8_t *topic = (const uint8_t *)"t";
    bool flag = true;
    size_t count = 77;
    tw_publish_report rep;
    memset(&rep, 0xab, sizeof rep);
    tw_publish_report untouched = rep;

    /* NULL pointers, named. */
    CHECK_FAILS(tw_conn_subscribe(NULL, 1, topic, 1, &flag), TW_STATUS_NULL_ARGUMENT, "`ctx`");
    CHECK_FAILS(tw_conn_unsubscribe(NULL, 1, topic, 1, &flag), TW_STATUS_NULL_ARGUMENT, "`ctx`");
    CHECK_FAILS(tw_context_publish(NULL, topic, 1, TW_MESSAGE_TEXT, topic, 1, &rep), TW_STATUS_NULL_ARGUMENT, "`ctx`");
    CHECK_FAILS(tw_context_broadcast(NULL, NULL, 0, TW_MESSAGE_TEXT, topic, 1, &rep), TW_STATUS_NULL_ARGUMENT,
                "`ctx`");
    CHECK_FAILS(tw_context_subscriber_count(NULL, topic, 1, &count), TW_STATUS_NULL_ARGUMENT, "`ctx`");
    CHECK_FAILS(tw_context_topic_count(NULL, &count), TW_STATUS_NULL_ARGUMENT, "`ctx`");
    CHECK_FAILS(tw_sender_publish(NULL, topic, 1, TW_MESSAGE_TEXT, topic, 1), TW_STATUS_NULL_ARGUMENT, "`sender`");
    CHECK_FAILS(tw_listen_options_set_slow_subscriber(NULL, 1, TW_SLOW_SKIP), TW_STATUS_NULL_ARGUMENT, "`options`");
    CHECK(flag && count == 77 && memcmp(&rep, &untouched, sizeof rep) == 0);

    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_sender *sender = NULL;
    CHECK_OK(tw_context_sender(ctx, &sender));
    CHECK_FAILS(tw_conn_subscribe(ctx, 1, NULL, 1, &flag), TW_STATUS_NULL_ARGUMENT, "`topic`");
    CHECK_FAILS(tw_conn_unsubscribe(ctx, 1, NULL, 1, &flag), TW_STATUS_NULL_ARGUMENT, "`topic`");
    CHECK_FAILS(tw_context_publish(ctx, NULL, 1, TW_MESSAGE_TEXT, topic, 1, &rep), TW_STATUS_NULL_ARGUMENT, "`topic`");
    CHECK_FAILS(tw_context_publish(ctx, topic, 1, TW_MESSAGE_TEXT, NULL, 1, &rep), TW_STATUS_NULL_ARGUMENT, "`data`");
    CHECK_FAILS(tw_context_broadcast(ctx, NULL, 2, TW_MESSAGE_TEXT, topic, 1, &rep), TW_STATUS_NULL_ARGUMENT,
                "`conns`");
    CHECK_FAILS(tw_context_broadcast(ctx, NULL, 0, TW_MESSAGE_TEXT, NULL, 1, &rep), TW_STATUS_NULL_ARGUMENT, "`data`");
    CHECK_FAILS(tw_context_subscriber_count(ctx, NULL, 1, &count), TW_STATUS_NULL_ARGUMENT, "`topic`");
    CHECK_FAILS(tw_context_subscriber_count(ctx, topic, 1, NULL), TW_STATUS_NULL_ARGUMENT, "`out_count`");
    CHECK_FAILS(tw_context_topic_count(ctx, NULL), TW_STATUS_NULL_ARGUMENT, "`out_count`");
    CHECK_FAILS(tw_sender_publish(sender, NULL, 1, TW_MESSAGE_TEXT, topic, 1), TW_STATUS_NULL_ARGUMENT, "`topic`");
    CHECK_FAILS(tw_sender_publish(sender, topic, 1, TW_MESSAGE_TEXT, NULL, 1), TW_STATUS_NULL_ARGUMENT, "`data`");

    /* Text that is not UTF-8: refused before anything is sent, by net's check. */
    static const uint8_t bad[] = {'o', 'k', 0xff};
    CHECK_STATUS(tw_context_publish(ctx, topic, 1, TW_MESSAGE_TEXT, bad, sizeof bad, &rep), TW_STATUS_INVALID_UTF8);
    CHECK_STATUS(tw_context_broadcast(ctx, NULL, 0, TW_MESSAGE_TEXT, bad, sizeof bad, &rep), TW_STATUS_INVALID_UTF8);
    CHECK_STATUS(tw_sender_publish(sender, topic, 1, TW_MESSAGE_TEXT, bad, sizeof bad), TW_STATUS_INVALID_UTF8);
    /* The same bytes are a fine binary message, and a topic may be any bytes. */
    CHECK_OK(tw_context_publish(ctx, bad, sizeof bad, TW_MESSAGE_BINARY, bad, sizeof bad, NULL));
    CHECK_OK(tw_sender_publish(sender, bad, sizeof bad, TW_MESSAGE_BINARY, bad, sizeof bad));

    /* Unknown kinds. */
    CHECK_FAILS(tw_context_publish(ctx, topic, 1, 7, topic, 1, &rep), TW_STATUS_INVALID_ARGUMENT, "message kind 7");
    CHECK_FAILS(tw_context_broadcast(ctx, NULL, 0, TW_MESSAGE_NONE, topic, 1, &rep), TW_STATUS_INVALID_ARGUMENT,
                "message kind 0");
    CHECK_FAILS(tw_sender_publish(sender, topic, 1, 3, topic, 1), TW_STATUS_INVALID_ARGUMENT, "message kind 3");
    CHECK(memcmp(&rep, &untouched, sizeof rep) == 0);

    /* Ids that name nothing. */
    CHECK_STATUS(tw_conn_subscribe(ctx, 12345, topic, 1, &flag), TW_STATUS_STALE_ID);
    CHECK_STATUS(tw_conn_unsubscribe(ctx, 12345, topic, 1, &flag), TW_STATUS_STALE_ID);
    CHECK(flag);

    /* The slow-subscriber limit: 0 is refused by net's check (named in its words), an
     * unknown action by the face; both leave the options usable and unchanged. */
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_FAILS(tw_listen_options_set_slow_subscriber(lo, 0, TW_SLOW_SKIP), TW_STATUS_INVALID_ARGUMENT,
                "slow_subscriber.limit must be at least 1");
    CHECK_FAILS(tw_listen_options_set_slow_subscriber(lo, 0, TW_SLOW_CLOSE), TW_STATUS_INVALID_ARGUMENT,
                "slow_subscriber.limit must be at least 1");
    CHECK_FAILS(tw_listen_options_set_slow_subscriber(lo, 1024, 2), TW_STATUS_INVALID_ARGUMENT, "slow action 2");
    CHECK_OK(tw_listen_options_set_slow_subscriber(lo, 1, TW_SLOW_CLOSE));
    CHECK_OK(tw_listen_options_set_slow_subscriber(lo, SIZE_MAX, TW_SLOW_SKIP));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, lo, &l, &port));
    tw_listen_options_free(lo);

    tw_sender_free(sender);
    tw_context_free(ctx);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(subscriptions_follow_subscribe_unsubscribe_and_close),
        TR_CASE(two_hundred_subscribers_get_every_message_exactly_once),
        TR_CASE(with_deflate_each_publish_is_compressed_once),
        TR_CASE(broadcast_counts_a_stale_id_as_not_open),
        TR_CASE(a_slow_subscriber_is_skipped_under_tw_slow_skip),
        TR_CASE(a_slow_subscriber_is_closed_with_1008_under_tw_slow_close),
        TR_CASE(another_thread_publishes_through_a_sender),
        TR_CASE(bad_input_is_refused_with_its_status_and_outputs_stay_untouched),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
