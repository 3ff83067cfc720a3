/* Built by install_test.sh against an installed tidewire found through pkg-config, once
 * shared and once static: a loopback echo in one context. Exits 0 on success. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>
#include <tidewire.h>

int main(void) {
    tw_context *ctx = NULL;
    tw_listener l = 0;
    tw_conn client = 0;
    uint16_t port = 0;
    char url[64];
    if (tw_context_new(NULL, &ctx) != TW_STATUS_OK || tw_context_listen(ctx, "127.0.0.1", 0, NULL, &l) != TW_STATUS_OK ||
        tw_listener_port(ctx, l, &port) != TW_STATUS_OK) {
        fprintf(stderr, "setup: %s\n", tw_last_error());
        return 1;
    }
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)port);
    if (tw_context_connect(ctx, url, NULL, &client) != TW_STATUS_OK) {
        fprintf(stderr, "connect: %s\n", tw_last_error());
        return 1;
    }
    int ok = 0;
    for (int round = 0; round < 500 && !ok; round++) {
        tw_event ev[16];
        size_t n = 0;
        if (tw_poll(ctx, ev, 16, 10, &n) != TW_STATUS_OK) return 1;
        for (size_t i = 0; i < n; i++) {
            if (ev[i].kind == TW_EVENT_OPEN && ev[i].conn == client) {
                (void)tw_conn_send_text(ctx, client, "installed", 9);
            } else if (ev[i].kind == TW_EVENT_MESSAGE && ev[i].conn != client) {
                (void)tw_conn_send(ctx, ev[i].conn, ev[i].message_kind, ev[i].data.data, ev[i].data.len);
            } else if (ev[i].kind == TW_EVENT_MESSAGE) {
                ok = ev[i].data.len == 9 && memcmp(ev[i].data.data, "installed", 9) == 0;
            }
        }
    }
    printf("tidewire %s: echo %s\n", tw_version(), ok ? "ok" : "FAILED");
    tw_context_free(ctx);
    return ok ? 0 : 1;
}
