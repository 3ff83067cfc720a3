/*
 * A small real-time game client on SDL2: a 60 Hz main loop moves a player square, sends its
 * position every frame to a relay server (examples/rust/relay_server.rs publishes every
 * position to all players through a topic) and draws every player it hears about. It
 * measures how long each frame's work takes (input, network, drawing; not the sleep until the
 * next frame) and prints the worst and the 99th-percentile frame time.
 *
 * Two ways to run the network, chosen with --mode:
 *   poll  the poll-per-frame model: a tw_context, tw_poll(..., 0) once per frame on this
 *         thread (TCP, TLS handshakes and compression run inside that call);
 *   bg    the background I/O thread: a tw_io; this thread only drains owned events with
 *         tw_io_poll(..., 0) and queues sends (TLS and compression run on the I/O thread).
 *
 * --storm N adds a wss:// reconnect storm underneath: N connections to --storm-url that the
 * server closes right after they open (1000), each reconnecting by itself under the library's
 * reconnect policy (tw_connect_options_set_reconnect: 1 ms to 20 ms, full jitter, unlimited).
 *
 * Usage: game_client_c --url ws://H:P/game [--mode poll|bg] [--seconds S] [--hz N]
 *                      [--bots N] [--storm N --storm-url wss://H:P2/storm] [--ca FILE]
 *                      [--headless]
 *   --bots      extra players on the same connection set, moving and sending like the
 *               player (default 3)
 *   --ca        extra CA certificate (PEM) to trust for wss://
 *   --headless  SDL's dummy video driver (what the tests use; also SDL_VIDEODRIVER=dummy)
 *
 * Prints one line:
 *   game_client mode=M storm=N frames=F worst_ms=W p99_ms=P mean_ms=A received=R
 *   players_seen=K storm_opens=O storm_retries=T
 * Exits 0 when the player's connection opened and positions came back through the relay
 * (and, with --storm, storm connections opened), 1 otherwise, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <SDL.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tidewire.h"

#define MAX_PLAYERS 64
#define MAX_STORM 256
#define MAX_BOTS 16
#define BATCH 64

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

/* ---- the network, in either mode ------------------------------------------------------- */

struct net {
    bool background;
    tw_context *ctx;          /* poll mode */
    tw_io *io;                /* background mode */
    tw_connect_options *opts;       /* the player and the bots */
    tw_connect_options *storm_opts; /* the storm: the same, plus a reconnect policy */
};

static tw_status net_connect(struct net *n, const char *url, const tw_connect_options *opts, tw_conn *out) {
    return n->background ? tw_io_connect(n->io, url, opts, out) : tw_context_connect(n->ctx, url, opts, out);
}

static tw_status net_send(struct net *n, tw_conn conn, const uint8_t *data, size_t len) {
    return n->background ? tw_io_send_binary(n->io, conn, data, len) : tw_conn_send_binary(n->ctx, conn, data, len);
}

static tw_status net_close(struct net *n, tw_conn conn) {
    return n->background ? tw_io_close(n->io, conn, 1000, "bye", 3) : tw_conn_close(n->ctx, conn, 1000, "bye", 3);
}

typedef void (*on_event_fn)(const tw_event *ev, void *state);

/* Hands every event available now to `on_event`, never waiting. */
static bool net_drain(struct net *n, on_event_fn on_event, void *state) {
    for (;;) {
        size_t count = 0;
        if (n->background) {
            tw_io_event evs[BATCH];
            if (tw_io_poll(n->io, evs, BATCH, 0, &count) != TW_STATUS_OK) return false;
            for (size_t i = 0; i < count; i++) on_event(&evs[i].event, state);
            tw_io_events_release(evs, count);
        } else {
            tw_event evs[BATCH];
            if (tw_poll(n->ctx, evs, BATCH, 0, &count) != TW_STATUS_OK) return false;
            for (size_t i = 0; i < count; i++) on_event(&evs[i], state);
        }
        if (count < BATCH) return true;
    }
}

/* ---- the game ---------------------------------------------------------------------------- */

struct player {
    uint32_t id;
    int32_t x, y;
};

struct game {
    struct net net;
    /* conns[0] is the player, then the bots. */
    tw_conn conns[1 + MAX_BOTS];
    bool open[1 + MAX_BOTS];
    int actors;
    struct player me[1 + MAX_BOTS];
    struct player seen[MAX_PLAYERS];
    int seen_count;
    long received;
    /* The storm. */
    const char *storm_url;
    tw_conn storm[MAX_STORM];
    bool storm_ended[MAX_STORM];
    int storm_count;
    long storm_opens;
    long storm_retries;
    bool failed;
};

static void remember(struct game *g, const struct player *p) {
    for (int i = 0; i < g->seen_count; i++) {
        if (g->seen[i].id == p->id) {
            g->seen[i] = *p;
            return;
        }
    }
    if (g->seen_count < MAX_PLAYERS) g->seen[g->seen_count++] = *p;
}

static void on_event(const tw_event *ev, void *state) {
    struct game *g = state;
    for (int i = 0; i < g->storm_count; i++) {
        if (ev->conn != 0 && ev->conn == g->storm[i]) {
            if (ev->kind == TW_EVENT_OPEN) g->storm_opens++;
            if (ev->kind == TW_EVENT_RECONNECTING) g->storm_retries++;
            /* Terminal (reconnecting gave up): opened again in the frame loop. */
            if (ev->kind == TW_EVENT_CLOSE || ev->kind == TW_EVENT_ERROR) g->storm_ended[i] = true;
            return;
        }
    }
    for (int a = 0; a < g->actors; a++) {
        if (ev->conn != g->conns[a]) continue;
        if (ev->kind == TW_EVENT_OPEN) g->open[a] = true;
        if (ev->kind == TW_EVENT_MESSAGE && ev->data.len == sizeof(struct player)) {
            struct player p;
            memcpy(&p, ev->data.data, sizeof p);
            if (a == 0) {
                g->received++;
                remember(g, &p);
            }
        }
        if (ev->kind == TW_EVENT_ERROR) {
            fprintf(stderr, "game_client: connection %d: %.*s\n", a, (int)ev->data.len, (const char *)ev->data.data);
            g->open[a] = false;
            g->failed = true;
        }
        if (ev->kind == TW_EVENT_CLOSE) g->open[a] = false;
        return;
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int usage(void) {
    fprintf(stderr,
            "usage: game_client_c --url ws://H:P/game [--mode poll|bg] [--seconds S] [--hz N] [--bots N]\n"
            "                     [--storm N --storm-url wss://H:P2/storm] [--ca FILE] [--headless]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *url = NULL, *mode = "poll", *ca = NULL, *storm_url = NULL;
    double seconds = 5;
    long hz = 60, bots = 3, storm = 0;
    bool headless = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--headless") == 0) {
            headless = true;
            continue;
        }
        if (i + 1 >= argc) return usage();
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--url") == 0) url = v;
        else if (strcmp(argv[i - 1], "--mode") == 0) mode = v;
        else if (strcmp(argv[i - 1], "--seconds") == 0) seconds = strtod(v, NULL);
        else if (strcmp(argv[i - 1], "--hz") == 0) hz = strtol(v, NULL, 10);
        else if (strcmp(argv[i - 1], "--bots") == 0) bots = strtol(v, NULL, 10);
        else if (strcmp(argv[i - 1], "--storm") == 0) storm = strtol(v, NULL, 10);
        else if (strcmp(argv[i - 1], "--storm-url") == 0) storm_url = v;
        else if (strcmp(argv[i - 1], "--ca") == 0) ca = v;
        else return usage();
    }
    bool background = strcmp(mode, "bg") == 0;
    if (url == NULL || (!background && strcmp(mode, "poll") != 0) || seconds <= 0 || hz <= 0 || hz > 1000 ||
        bots < 0 || bots > MAX_BOTS || storm < 0 || storm > MAX_STORM || (storm > 0 && storm_url == NULL)) {
        return usage();
    }

    if (headless) setenv("SDL_VIDEODRIVER", "dummy", 1);
    if (SDL_Init(SDL_INIT_VIDEO) != 0) {
        fprintf(stderr, "game_client: SDL_Init: %s\n", SDL_GetError());
        return 1;
    }
    SDL_Window *window = SDL_CreateWindow("tidewire game client", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED,
                                          640, 480, 0);
    SDL_Renderer *renderer = window != NULL ? SDL_CreateRenderer(window, -1, SDL_RENDERER_SOFTWARE) : NULL;
    if (renderer == NULL) {
        fprintf(stderr, "game_client: no renderer: %s\n", SDL_GetError());
        if (window != NULL) SDL_DestroyWindow(window);
        SDL_Quit();
        return 1;
    }

    static struct game g; /* large: not on the stack */
    g.net.background = background;
    g.actors = 1 + (int)bots;
    g.storm_url = storm_url;
    g.storm_count = (int)storm;
    tw_status s = background ? tw_io_new(NULL, 0, &g.net.io) : tw_context_new(NULL, &g.net.ctx);
    if (s == TW_STATUS_OK) s = tw_connect_options_new(&g.net.opts);
    if (s == TW_STATUS_OK && ca != NULL) s = tw_connect_options_set_tls_ca_file(g.net.opts, ca);
    /* Builds the TLS configuration now, at start-up, not in a frame. */
    if (s == TW_STATUS_OK && storm > 0) s = tw_connect_options_prepare_tls(g.net.opts);
    /* The storm reconnects by itself (the library's policy: full-jitter backoff from 1 ms up
     * to 20 ms, unlimited attempts): the server closes each connection at open (1000). */
    if (s == TW_STATUS_OK) s = tw_connect_options_new(&g.net.storm_opts);
    if (s == TW_STATUS_OK && ca != NULL) s = tw_connect_options_set_tls_ca_file(g.net.storm_opts, ca);
    if (s == TW_STATUS_OK) s = tw_connect_options_set_reconnect(g.net.storm_opts, 1, 20, 0, 60000);
    if (s == TW_STATUS_OK && storm > 0) s = tw_connect_options_prepare_tls(g.net.storm_opts);
    if (s != TW_STATUS_OK) {
        fprintf(stderr, "game_client: setup: %s: %s\n", tw_status_str(s), tw_last_error());
        return 1;
    }

    uint32_t base_id = (uint32_t)getpid() * 100u;
    for (int a = 0; a < g.actors; a++) {
        g.me[a] = (struct player){base_id + (uint32_t)a, 320, 240};
        if (net_connect(&g.net, url, g.net.opts, &g.conns[a]) != TW_STATUS_OK) {
            fprintf(stderr, "game_client: connect: %s\n", tw_last_error());
            return 1;
        }
    }
    for (int i = 0; i < g.storm_count; i++) {
        if (net_connect(&g.net, storm_url, g.net.storm_opts, &g.storm[i]) != TW_STATUS_OK) {
            fprintf(stderr, "game_client: storm connect: %s\n", tw_last_error());
            return 1;
        }
    }

    const int64_t frame_ns = 1000000000 / hz;
    const long max_frames = (long)(seconds * (double)hz) + 1;
    int64_t *times = calloc((size_t)max_frames, sizeof *times);
    if (times == NULL) return 1;
    long frames = 0;
    const int64_t start = now_ns();
    int64_t next = start;
    bool quit = false;
    while (!quit && frames < max_frames) {
        int64_t t0 = now_ns();
        /* Input. */
        SDL_Event e;
        while (SDL_PollEvent(&e)) {
            if (e.type == SDL_QUIT) quit = true;
        }
        const Uint8 *keys = SDL_GetKeyboardState(NULL);
        int dx = keys[SDL_SCANCODE_RIGHT] - keys[SDL_SCANCODE_LEFT];
        int dy = keys[SDL_SCANCODE_DOWN] - keys[SDL_SCANCODE_UP];
        /* Movement: the keys, or a circle when none is pressed (headless); bots circle. */
        for (int a = 0; a < g.actors; a++) {
            if (a == 0 && (dx != 0 || dy != 0)) {
                g.me[0].x += 4 * dx;
                g.me[0].y += 4 * dy;
            } else {
                double t = (double)frames / (double)hz + a;
                g.me[a].x = 320 + (int32_t)(150.0 * cos(t));
                g.me[a].y = 240 + (int32_t)(150.0 * sin(t));
            }
        }
        /* Network: what arrived, then this frame's positions. */
        if (!net_drain(&g.net, on_event, &g)) {
            fprintf(stderr, "game_client: poll: %s\n", tw_last_error());
            break;
        }
        for (int a = 0; a < g.actors; a++) {
            if (g.open[a]) net_send(&g.net, g.conns[a], (const uint8_t *)&g.me[a], sizeof g.me[a]);
        }
        for (int i = 0; i < g.storm_count; i++) {
            if (g.storm_ended[i]) {
                g.storm_ended[i] = false;
                if (net_connect(&g.net, storm_url, g.net.storm_opts, &g.storm[i]) != TW_STATUS_OK) g.storm[i] = 0;
            }
        }
        if (!background) {
            /* Poll mode: what was sent leaves now, not at the next frame. */
            if (!net_drain(&g.net, on_event, &g)) break;
        }
        /* Drawing. */
        SDL_SetRenderDrawColor(renderer, 16, 16, 24, 255);
        SDL_RenderClear(renderer);
        for (int i = 0; i < g.seen_count; i++) {
            bool mine = g.seen[i].id == g.me[0].id;
            SDL_SetRenderDrawColor(renderer, mine ? 80 : 220, mine ? 220 : 120, 80, 255);
            SDL_Rect r = {g.seen[i].x - 8, g.seen[i].y - 8, 16, 16};
            SDL_RenderFillRect(renderer, &r);
        }
        SDL_RenderPresent(renderer);

        times[frames++] = now_ns() - t0;
        next += frame_ns;
        sleep_until(next);
    }

    /* A clean end: close the players, then free (tw_io_free joins its thread). */
    for (int a = 0; a < g.actors; a++) {
        if (g.open[a]) net_close(&g.net, g.conns[a]);
    }
    if (background) {
        tw_io_shutdown(g.net.io, 1000);
        net_drain(&g.net, on_event, &g);
        tw_io_free(g.net.io);
    } else {
        tw_context_shutdown(g.net.ctx, 1000);
        size_t count = 1;
        for (int i = 0; i < 100 && count > 0; i++) {
            tw_event evs[BATCH];
            size_t n = 0;
            tw_poll(g.net.ctx, evs, BATCH, 10, &n);
            tw_context_connection_count(g.net.ctx, &count);
        }
        tw_context_free(g.net.ctx);
    }
    tw_connect_options_free(g.net.opts);
    tw_connect_options_free(g.net.storm_opts);

    int64_t total = 0;
    for (long i = 0; i < frames; i++) total += times[i];
    qsort(times, (size_t)frames, sizeof *times, cmp_i64);
    int64_t worst = frames > 0 ? times[frames - 1] : 0;
    long p99_index = frames > 0 ? (long)ceil(0.99 * (double)frames) - 1 : 0;
    int64_t p99 = frames > 0 ? times[p99_index < 0 ? 0 : p99_index] : 0;
    printf("game_client mode=%s storm=%ld frames=%ld worst_ms=%.3f p99_ms=%.3f mean_ms=%.3f received=%ld "
           "players_seen=%d storm_opens=%ld storm_retries=%ld\n",
           mode, storm, frames, (double)worst / 1e6, (double)p99 / 1e6,
           frames > 0 ? (double)total / (double)frames / 1e6 : 0.0, g.received, g.seen_count, g.storm_opens, g.storm_retries);
    free(times);
    SDL_DestroyRenderer(renderer);
    SDL_DestroyWindow(window);
    SDL_Quit();
    bool ok = !g.failed && g.received > 0 && (storm == 0 || g.storm_opens > 0);
    return ok ? 0 : 1;
}
