/*
 * A game-style client: a fixed-rate loop (60 Hz by default) that, every frame, sends one
 * message and calls tw_poll(..., 0), then sleeps until the next frame. It reports the worst
 * time a frame's network work took, which shows that nothing in the library blocks the
 * loop: not the connect, not name resolution (it runs on a helper thread), not the TLS
 * handshake.
 *
 * Usage: game_loop_c URL [--seconds S] [--hz N] [--ca FILE]
 *   URL        ws:// or wss:// address of an echo server (e.g. build/bin/echo_server_c)
 *   --seconds  how long to run (default 5)
 *   --hz       frames per second (default 60)
 *   --ca       extra CA certificate (PEM file) to trust for wss://
 *
 * Exits 0 when the connection opened and echoes came back.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tidewire.h"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t deadline_ns) {
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static int usage(void) {
    fprintf(stderr, "usage: game_loop_c URL [--seconds S] [--hz N] [--ca FILE]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *url = argv[1], *ca = NULL;
    double seconds = 5;
    long hz = 60;
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) return usage();
        if (strcmp(argv[i], "--seconds") == 0) {
            seconds = strtod(argv[i + 1], NULL);
        } else if (strcmp(argv[i], "--hz") == 0) {
            hz = strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--ca") == 0) {
            ca = argv[i + 1];
        } else {
            return usage();
        }
    }
    if (seconds <= 0 || hz <= 0 || hz > 10000) return usage();

    tw_context *ctx = NULL;
    tw_connect_options *options = NULL;
    if (tw_context_new(NULL, &ctx) != TW_STATUS_OK || tw_connect_options_new(&options) != TW_STATUS_OK ||
        (ca != NULL && tw_connect_options_set_tls_ca_file(options, ca) != TW_STATUS_OK)) {
        fprintf(stderr, "game_loop_c: setup: %s\n", tw_last_error());
        return 1;
    }
    /* Reading the system's root certificates is file I/O: do it at start-up, not in a frame. */
    if (strncmp(url, "wss:", 4) == 0 && tw_connect_options_prepare_tls(options) != TW_STATUS_OK) {
        fprintf(stderr, "game_loop_c: tls: %s\n", tw_last_error());
        return 1;
    }

    const int64_t frame_ns = 1000000000 / hz;
    const int64_t start = now_ns();
    const int64_t end = start + (int64_t)(seconds * 1e9);
    int64_t worst_ns = 0, total_ns = 0, open_after_ns = -1;
    long frames = 0, sent = 0, echoed = 0;
    bool open = false, over = false, closing = false;
    tw_conn conn = 0;
    tw_event events[64];

    int64_t next = start;
    while (!over) {
        int64_t t0 = now_ns();
        /* The frame's network work: start the connection, send one message, poll with 0. */
        if (conn == 0) {
            tw_status s = tw_context_connect(ctx, url, options, &conn);
            if (s != TW_STATUS_OK) {
                fprintf(stderr, "game_loop_c: connect: %s (%s)\n", tw_status_str(s), tw_last_error());
                break;
            }
        }
        if (open && !closing) {
            char msg[64];
            int len = snprintf(msg, sizeof msg, "frame %ld", frames);
            tw_status s = tw_conn_send_text(ctx, conn, msg, (size_t)len);
            if (s == TW_STATUS_OK || s == TW_STATUS_AGAIN) sent++;
        }
        size_t n = 0;
        if (tw_poll(ctx, events, 64, 0, &n) != TW_STATUS_OK) {
            fprintf(stderr, "game_loop_c: poll: %s\n", tw_last_error());
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const tw_event *ev = &events[i];
            if (ev->kind == TW_EVENT_OPEN) {
                open = true;
                open_after_ns = now_ns() - start;
            } else if (ev->kind == TW_EVENT_MESSAGE) {
                echoed++;
            } else if (ev->kind == TW_EVENT_CLOSE) {
                over = true;
            } else if (ev->kind == TW_EVENT_ERROR) {
                fprintf(stderr, "game_loop_c: %s\n", (const char *)ev->data.data);
                over = true;
            }
        }
        int64_t took = now_ns() - t0;
        if (took > worst_ns) worst_ns = took;
        total_ns += took;
        frames++;

        if (!closing && now_ns() >= end) {
            closing = true;
            if (!open || tw_conn_close(ctx, conn, 1000, "done", 4) != TW_STATUS_OK) over = true;
        }
        if (closing && now_ns() >= end + 2000000000) over = true; /* the peer never answered */
        next += frame_ns;
        sleep_until(next);
    }

    printf("frames %ld, sent %ld, echoed %ld, open after %.1f ms, worst frame %.3f ms, mean %.3f ms\n", frames,
           sent, echoed, open_after_ns < 0 ? -1.0 : (double)open_after_ns / 1e6, (double)worst_ns / 1e6,
           frames > 0 ? (double)total_ns / (double)frames / 1e6 : 0.0);
    tw_connect_options_free(options);
    tw_context_free(ctx);
    return (open && echoed > 0) ? 0 : 1;
}
