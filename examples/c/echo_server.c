/*
 * Echo server (the docs/DESIGN.md contract): echoes every message with its own type, answers
 * pings (the library does), negotiates permessage-deflate when a client offers it, and
 * exits 0 on SIGINT or SIGTERM after closing its connections with 1001.
 *
 * Usage: echo_server_c --host H --port P [--tls-cert F --tls-key F]
 *
 * Prints "listening on ws://H:P" (or wss://) once ready, with the real port when 0 was asked.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tidewire.h"

static atomic_bool stop;

struct signal_waiter {
    sigset_t set;
    tw_sender *sender;
};

/* Signals are blocked everywhere and taken here, so the handler is an ordinary thread that
 * may call tw_sender_wake (which is not async-signal-safe). */
static void *wait_for_signal(void *arg) {
    struct signal_waiter *w = arg;
    int sig = 0;
    if (sigwait(&w->set, &sig) == 0) {
        atomic_store(&stop, true);
        (void)tw_sender_wake(w->sender);
    }
    return NULL;
}

static int usage(void) {
    fprintf(stderr, "usage: echo_server_c --host H --port P [--tls-cert F --tls-key F]\n");
    return 2;
}

static int fail(const char *what, tw_status s) {
    fprintf(stderr, "echo_server_c: %s: %s (%s)\n", what, tw_status_str(s), tw_last_error());
    return 1;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Statuses that only say the connection is closing or gone (its close, failure or end is
 * in the same batch of events): nobody is left to answer, which is not a server error. */
static bool gone(tw_status s) {
    return s == TW_STATUS_NOT_OPEN || s == TW_STATUS_STALE_ID;
}

/* Echoes one message with back-pressure: once the connection's output passes the high
 * water mark (TW_STATUS_AGAIN), stop reading from it until it drains (TW_EVENT_WRITABLE), so
 * that a peer that sends without reading is slowed down by TCP instead of losing echoes.
 * The rest of the batch still fits: a send is refused only at the hard cap, far above. */
static tw_status echo(tw_context *ctx, const tw_event *ev) {
    tw_status s = tw_conn_send(ctx, ev->conn, ev->message_kind, ev->data.data, ev->data.len);
    if (s == TW_STATUS_AGAIN) return tw_conn_pause_reading(ctx, ev->conn);
    if (s == TW_STATUS_BUFFER_FULL) {
        /* Over the hard cap all the same: close with a reason, never drop an echo silently. */
        static const char reason[] = "output buffer full";
        return tw_conn_close(ctx, ev->conn, 1008, reason, sizeof reason - 1);
    }
    return s;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *cert = NULL, *key = NULL;
    long port = -1;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) return usage();
        if (strcmp(argv[i], "--host") == 0) {
            host = argv[i + 1];
        } else if (strcmp(argv[i], "--port") == 0) {
            char *end = NULL;
            port = strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) return usage();
        } else if (strcmp(argv[i], "--tls-cert") == 0) {
            cert = argv[i + 1];
        } else if (strcmp(argv[i], "--tls-key") == 0) {
            key = argv[i + 1];
        } else {
            return usage();
        }
    }
    if (port < 0 || (cert == NULL) != (key == NULL)) return usage();

    /* Block the signals before any thread exists: every thread inherits the mask. */
    struct signal_waiter waiter;
    sigemptyset(&waiter.set);
    sigaddset(&waiter.set, SIGINT);
    sigaddset(&waiter.set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &waiter.set, NULL);

    tw_context *ctx = NULL;
    tw_listen_options *options = NULL;
    tw_deflate_config *deflate = NULL;
    tw_status s;
    if ((s = tw_context_new(NULL, &ctx)) != TW_STATUS_OK) return fail("context", s);
    if ((s = tw_listen_options_new(&options)) != TW_STATUS_OK) return fail("options", s);
    if ((s = tw_deflate_config_new(&deflate)) != TW_STATUS_OK) return fail("deflate", s);
    if ((s = tw_listen_options_set_deflate(options, deflate)) != TW_STATUS_OK) return fail("deflate", s);
    tw_deflate_config_free(deflate);
    if (cert != NULL && (s = tw_listen_options_set_tls_pem_files(options, cert, key)) != TW_STATUS_OK)
        return fail("tls", s);
    tw_listener listener = 0;
    s = tw_context_listen(ctx, host, (uint16_t)port, options, &listener);
    tw_listen_options_free(options);
    if (s != TW_STATUS_OK) return fail("listen", s);
    char addr[64];
    size_t len = 0;
    if ((s = tw_listener_local_addr(ctx, listener, addr, sizeof addr, &len)) != TW_STATUS_OK)
        return fail("address", s);
    printf("listening on %s://%s\n", cert != NULL ? "wss" : "ws", addr);
    fflush(stdout);

    if ((s = tw_context_sender(ctx, &waiter.sender)) != TW_STATUS_OK) return fail("sender", s);
    pthread_t signal_thread;
    if (pthread_create(&signal_thread, NULL, wait_for_signal, &waiter) != 0) {
        fprintf(stderr, "echo_server_c: cannot start the signal thread\n");
        return 1;
    }

    static tw_event events[256];
    while (!atomic_load(&stop)) {
        size_t n = 0;
        if ((s = tw_poll(ctx, events, 256, -1, &n)) != TW_STATUS_OK) return fail("poll", s);
        for (size_t i = 0; i < n; i++) {
            const tw_event *ev = &events[i];
            tw_status r = TW_STATUS_OK;
            if (ev->kind == TW_EVENT_MESSAGE) {
                r = echo(ctx, ev);
            } else if (ev->kind == TW_EVENT_WRITABLE) {
                /* The peer read enough of its echoes: take its messages again. */
                r = tw_conn_resume_reading(ctx, ev->conn);
            }
            if (r != TW_STATUS_OK && !gone(r)) return fail("echo", r);
        }
    }

    /* Close handshakes get two seconds; then whatever is left is dropped. */
    (void)tw_context_shutdown(ctx, 2000);
    int64_t deadline = now_ms() + 3000;
    size_t left = 1;
    while (left > 0 && now_ms() < deadline) {
        size_t n = 0;
        if (tw_poll(ctx, events, 256, 100, &n) != TW_STATUS_OK) break;
        if (tw_context_connection_count(ctx, &left) != TW_STATUS_OK) break;
    }
    pthread_join(signal_thread, NULL);
    tw_sender_free(waiter.sender);
    tw_context_free(ctx);
    return 0;
}
