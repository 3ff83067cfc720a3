/*
 * Autobahn|Testsuite client (the docs/DESIGN.md contract): asks the fuzzing server how many cases
 * it has, runs each one echoing every message with its own type, then asks it to write the
 * reports. Offers permessage-deflate, like the Rust one.
 *
 * Usage: autobahn_client_c URL [--agent NAME]     (URL like ws://127.0.0.1:9001)
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tidewire.h"

/* Longest a single case may take before we give up on it (the suite's own limits are
 * shorter; this only stops a hang). */
#define CASE_LIMIT_MS (120 * 1000)

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens `url`, echoes every message until the connection is over. When `count` is not NULL
 * the first text message is parsed into it. Returns 0 when the connection closed. */
static int session(tw_context *ctx, const tw_connect_options *options, const char *url, long *count) {
    tw_conn conn = 0;
    tw_status s = tw_context_connect(ctx, url, options, &conn);
    if (s != TW_STATUS_OK) {
        fprintf(stderr, "%s: %s (%s)\n", url, tw_status_str(s), tw_last_error());
        return -1;
    }
    int64_t start = now_ms();
    static tw_event events[64];
    for (;;) {
        if (now_ms() - start > CASE_LIMIT_MS) {
            (void)tw_conn_close(ctx, conn, 1000, NULL, 0);
            fprintf(stderr, "%s: no end after %d s\n", url, CASE_LIMIT_MS / 1000);
            return -1;
        }
        size_t n = 0;
        if ((s = tw_poll(ctx, events, 64, 500, &n)) != TW_STATUS_OK) {
            fprintf(stderr, "poll: %s (%s)\n", tw_status_str(s), tw_last_error());
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const tw_event *ev = &events[i];
            if (ev->conn != conn) continue;
            switch (ev->kind) {
            case TW_EVENT_MESSAGE:
                if (count != NULL && ev->message_kind == TW_MESSAGE_TEXT) {
                    char text[32];
                    snprintf(text, sizeof text, "%.*s", (int)ev->data.len, (const char *)ev->data.data);
                    *count = strtol(text, NULL, 10);
                }
                /* Refused sends (connection already closing) are part of some cases. */
                (void)tw_conn_send(ctx, conn, ev->message_kind, ev->data.data, ev->data.len);
                break;
            case TW_EVENT_CLOSE:
                return 0;
            case TW_EVENT_ERROR:
                fprintf(stderr, "%s: %s\n", url, (const char *)ev->data.data);
                return -1;
            default:
                break;
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: autobahn_client_c URL [--agent NAME]\n");
        return 2;
    }
    char base[512];
    snprintf(base, sizeof base, "%s", argv[1]);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') base[--blen] = '\0';
    const char *agent = "tidewire-c";
    for (int i = 2; i < argc; i += 2) {
        if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc) {
            agent = argv[i + 1];
        } else {
            fprintf(stderr, "usage: autobahn_client_c URL [--agent NAME]\n");
            return 2;
        }
    }

    tw_context *ctx = NULL;
    tw_connect_options *options = NULL;
    tw_deflate_config *deflate = NULL;
    if (tw_context_new(NULL, &ctx) != TW_STATUS_OK || tw_connect_options_new(&options) != TW_STATUS_OK ||
        tw_deflate_config_new(&deflate) != TW_STATUS_OK ||
        tw_connect_options_set_deflate(options, deflate) != TW_STATUS_OK) {
        fprintf(stderr, "autobahn_client_c: setup: %s\n", tw_last_error());
        return 1;
    }
    tw_deflate_config_free(deflate);

    int code = 1;
    char url[1024];
    long count = -1;
    snprintf(url, sizeof url, "%s/getCaseCount", base);
    if (session(ctx, options, url, &count) != 0 || count < 0) {
        fprintf(stderr, "autobahn_client_c: getCaseCount gave no number\n");
        goto done;
    }
    printf("%ld cases\n", count);
    fflush(stdout);
    for (long c = 1; c <= count; c++) {
        snprintf(url, sizeof url, "%s/runCase?case=%ld&agent=%s", base, c, agent);
        if (session(ctx, options, url, NULL) != 0) fprintf(stderr, "case %ld failed\n", c);
    }
    snprintf(url, sizeof url, "%s/updateReports?agent=%s", base, agent);
    if (session(ctx, options, url, NULL) != 0) goto done;
    printf("reports updated for agent %s\n", agent);
    code = 0;
done:
    tw_connect_options_free(options);
    tw_context_free(ctx);
    return code;
}
