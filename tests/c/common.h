/*
 * Helpers shared by the C tests: loopback listeners on port 0 and an event loop that runs
 * one or more contexts until a callback says it is done or a deadline passes.
 * Include after runner.h.
 */
#ifndef TIDEWIRE_TEST_COMMON_H
#define TIDEWIRE_TEST_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tidewire.h"

/* Prints a failed call with its status and detail; returns false so callers can CHECK it. */
static inline bool tc_ok(tw_status s, const char *what) {
    if (s != TW_STATUS_OK) {
        fprintf(stderr, "    %s -> %s: %s\n", what, tw_status_str(s), tw_last_error());
        return false;
    }
    return true;
}

static inline int64_t tc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Listens on 127.0.0.1 port 0 with `options` (may be NULL) and reads the real port back. */
static inline bool tc_listen(tw_context *ctx, const tw_listen_options *options, tw_listener *out_listener,
                      uint16_t *out_port) {
    tw_listener l = 0;
    if (!tc_ok(tw_context_listen(ctx, "127.0.0.1", 0, options, &l), "listen")) {
        return false;
    }
    if (!tc_ok(tw_listener_port(ctx, l, out_port), "listener_port")) {
        return false;
    }
    *out_listener = l;
    return true;
}

/* "ws://127.0.0.1:PORT/PATH" into buf. */
static inline const char *tc_url(char *buf, size_t cap, const char *scheme, uint16_t port, const char *path) {
    snprintf(buf, cap, "%s://127.0.0.1:%u%s", scheme, (unsigned)port, path);
    return buf;
}

/* Called for every event; returns true when the loop may stop. `which` is the index of
 * the context the event came from. Payloads are valid only during the call. */
typedef bool (*tc_on_event)(tw_context *ctx, size_t which, const tw_event *ev, void *state);

/* Polls every context in turn (max `batch` events each) until `cb` returns true (then
 * true) or `timeout_ms` passes (then false). */
static inline bool tc_run(tw_context **ctxs, size_t n, size_t batch, tc_on_event cb, void *state,
                   int timeout_ms) {
    tw_event events[64];
    if (batch == 0 || batch > 64) {
        batch = 64;
    }
    int64_t deadline = tc_now_ms() + timeout_ms;
    while (tc_now_ms() < deadline) {
        for (size_t c = 0; c < n; c++) {
            size_t count = 0;
            /* One context may wait a little; the others only collect what is ready. */
            int wait = (c == 0) ? 5 : 0;
            if (!tc_ok(tw_poll(ctxs[c], events, batch, wait, &count), "tw_poll")) {
                return false;
            }
            for (size_t i = 0; i < count; i++) {
                if (cb(ctxs[c], c, &events[i], state)) {
                    return true;
                }
            }
        }
    }
    fprintf(stderr, "    tc_run: no end after %d ms\n", timeout_ms);
    return false;
}

/* True when a byte view holds exactly the NUL-terminated `text`. */
static inline bool tc_eq(tw_bytes b, const char *text) {
    size_t n = strlen(text);
    return b.data != NULL && b.len == n && memcmp(b.data, text, n) == 0;
}

/* True when a byte view contains the NUL-terminated `text` somewhere. */
static inline bool tc_contains(tw_bytes b, const char *text) {
    size_t n = strlen(text);
    if (b.data == NULL || b.len < n) {
        return false;
    }
    for (size_t i = 0; i + n <= b.len; i++) {
        if (memcmp(b.data + i, text, n) == 0) {
            return true;
        }
    }
    return false;
}

#endif /* TIDEWIRE_TEST_COMMON_H */
