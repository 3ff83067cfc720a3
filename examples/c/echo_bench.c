/*
 * A small load generator for echo servers: N connections, each keeping K messages of S
 * bytes in flight, for T seconds; prints echoed messages per second. Used to put the C and
 * Rust echo servers side by side with the same tool and command.
 *
 * Usage: echo_bench_c URL [--conns N] [--inflight K] [--size S] [--seconds T] [--binary] [--deflate]
 *   defaults: 50 connections, 8 in flight, 64 bytes, 5 seconds, text messages, no
 *   permessage-deflate offered (--deflate offers it with RFC 7692's defaults)
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tidewire.h"

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage(void) {
    fprintf(stderr,
            "usage: echo_bench_c URL [--conns N] [--inflight K] [--size S] [--seconds T] [--binary] [--deflate]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *url = argv[1];
    long conns = 50, inflight = 8, size = 64;
    double seconds = 5;
    tw_message_kind kind = TW_MESSAGE_TEXT;
    bool deflate = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--binary") == 0) {
            kind = TW_MESSAGE_BINARY;
            continue;
        }
        if (strcmp(argv[i], "--deflate") == 0) {
            deflate = true;
            continue;
        }
        if (i + 1 >= argc) return usage();
        if (strcmp(argv[i], "--conns") == 0) conns = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--inflight") == 0) inflight = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--size") == 0) size = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = strtod(argv[++i], NULL);
        else return usage();
    }
    if (conns <= 0 || inflight <= 0 || size < 0 || seconds <= 0) return usage();

    uint8_t *payload = malloc((size_t)size + 1);
    if (payload == NULL) return 1;
    memset(payload, 'x', (size_t)size);

    tw_context *ctx = NULL;
    tw_connect_options *options = NULL;
    tw_deflate_config *offer = NULL;
    if (tw_context_new(NULL, &ctx) != TW_STATUS_OK || tw_connect_options_new(&options) != TW_STATUS_OK ||
        tw_deflate_config_new(&offer) != TW_STATUS_OK || tw_deflate_config_set_enabled(offer, deflate) != TW_STATUS_OK ||
        tw_connect_options_set_deflate(options, offer) != TW_STATUS_OK) {
        fprintf(stderr, "echo_bench_c: %s\n", tw_last_error());
        return 1;
    }
    tw_deflate_config_free(offer);
    for (long c = 0; c < conns; c++) {
        tw_conn id = 0;
        if (tw_context_connect(ctx, url, options, &id) != TW_STATUS_OK) {
            fprintf(stderr, "echo_bench_c: connect: %s\n", tw_last_error());
            return 1;
        }
    }

    static tw_event events[512];
    long opened = 0, failed = 0, echoed = 0;
    int64_t start = 0, end = 0, setup_deadline = now_ms() + 10000;
    bool measuring = false;
    for (;;) {
        int64_t now = now_ms();
        if (!measuring && (opened + failed == conns || now > setup_deadline)) {
            if (opened == 0) break;
            measuring = true;
            start = now;
            end = start + (int64_t)(seconds * 1000);
        }
        if (measuring && now >= end) break;
        size_t n = 0;
        if (tw_poll(ctx, events, 512, 50, &n) != TW_STATUS_OK) break;
        for (size_t i = 0; i < n; i++) {
            const tw_event *ev = &events[i];
            if (ev->kind == TW_EVENT_OPEN) {
                opened++;
                for (long k = 0; k < inflight; k++) (void)tw_conn_send(ctx, ev->conn, kind, payload, (size_t)size);
            } else if (ev->kind == TW_EVENT_MESSAGE) {
                if (measuring) echoed++;
                (void)tw_conn_send(ctx, ev->conn, kind, payload, (size_t)size);
            } else if (ev->kind == TW_EVENT_ERROR || ev->kind == TW_EVENT_CLOSE) {
                failed++;
            }
        }
    }
    double secs = (double)(now_ms() - start) / 1000.0;
    if (!measuring || secs <= 0) {
        fprintf(stderr, "echo_bench_c: no connection opened\n");
        return 1;
    }
    printf("%ld connections (%ld failed), %ld in flight, %ld-byte %s%s: %.0f msg/s, %.1f MB/s each way\n", opened,
           failed, inflight, size, kind == TW_MESSAGE_TEXT ? "text" : "binary", deflate ? ", deflate" : "",
           (double)echoed / secs, (double)echoed * (double)size / secs / 1e6);
    (void)tw_context_shutdown(ctx, 1000);
    int64_t deadline = now_ms() + 2000;
    size_t left = 1;
    while (left > 0 && now_ms() < deadline) {
        size_t n = 0;
        if (tw_poll(ctx, events, 512, 50, &n) != TW_STATUS_OK) break;
        if (tw_context_connection_count(ctx, &left) != TW_STATUS_OK) break;
    }
    tw_connect_options_free(options);
    tw_context_free(ctx);
    free(payload);
    return 0;
}
