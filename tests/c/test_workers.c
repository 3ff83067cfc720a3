/* tw_server: worker threads sharing a port, the handler's lent tw_context, tw_bus_publish
 * from a handler and tw_server_publish from the main thread reaching every client once,
 * shutdown closing every client with 1001, bad input; then two servers joined through a
 * real redis-server (started here on a free loopback port, stopped by PID): a publish
 * crosses once, Redis dies (interrupted), comes back on the same port (resumed), a publish
 * crosses again. The clients live in one context polled by the test's main thread. */
#include "runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common.h"

#define MAX_CLIENTS 64
#define TOPIC "room"

/* --- the server side ---------------------------------------------------------------------- */

/* Shared by every worker's handler (hence atomics). */
struct srv {
    atomic_int opens[4];        /* opened and subscribed, per worker */
    atomic_int closes_1001;     /* server-side closes with 1001 seen by the handlers */
    atomic_int bad;             /* something a handler checked went wrong */
    atomic_int publishes;       /* tw_bus_publish calls that succeeded */
    atomic_int poll_refused;    /* tw_poll on the worker's context was refused */
    _Atomic(tw_context *) ctx_of[4]; /* each worker's ctx pointer (stable across calls) */
};

static void report(struct srv *s, const char *what, tw_status st) {
    fprintf(stderr, "    handler: %s -> %s: %s\n", what, tw_status_str(st), tw_last_error());
    atomic_fetch_add(&s->bad, 1);
}

static void on_event(tw_context *ctx, const tw_bus *bus, const tw_event *ev, void *user) {
    struct srv *s = user;
    size_t worker = 99, workers = 0;
    tw_status st = tw_bus_worker(bus, &worker, &workers);
    if (st != TW_STATUS_OK || worker >= 4 || workers == 0) {
        report(s, "bus_worker", st);
        return;
    }
    if (atomic_load(&s->ctx_of[worker]) == NULL) atomic_store(&s->ctx_of[worker], ctx); /* only this worker writes it */
    if (atomic_load(&s->ctx_of[worker]) != ctx) report(s, "ctx pointer changed", TW_STATUS_OK);
    switch (ev->kind) {
    case TW_EVENT_OPEN: {
        if ((st = tw_conn_subscribe(ctx, ev->conn, (const uint8_t *)TOPIC, strlen(TOPIC), NULL)) != TW_STATUS_OK) {
            report(s, "subscribe", st);
            return;
        }
        /* The worker's thread polls its context: tw_poll is refused, the rest works. */
        tw_event evs[1];
        size_t n = 0;
        if (tw_poll(ctx, evs, 1, 0, &n) == TW_STATUS_INVALID_ARGUMENT) atomic_fetch_add(&s->poll_refused, 1);
        atomic_fetch_add(&s->opens[worker], 1);
        break;
    }
    case TW_EVENT_MESSAGE:
        if (tc_eq(ev->data, "go")) {
            tw_publish_report r;
            memset(&r, 0, sizeof r);
            static const char hello[] = "hello";
            st = tw_bus_publish(bus, ctx, (const uint8_t *)TOPIC, strlen(TOPIC), TW_MESSAGE_TEXT,
                                (const uint8_t *)hello, sizeof hello - 1, &r);
            if (st != TW_STATUS_OK) {
                report(s, "bus_publish", st);
                return;
            }
            atomic_fetch_add(&s->publishes, 1);
        }
        break;
    case TW_EVENT_CLOSE:
        if (ev->close_code == 1001) atomic_fetch_add(&s->closes_1001, 1);
        break;
    default:
        break;
    }
}

/* A server on 127.0.0.1, port 0, `threads` workers, with `cluster` (may be NULL). */
static bool start_server(struct srv *s, size_t threads, const tw_cluster_options *cluster, tw_server **out,
                         uint16_t *port) {
    memset(s, 0, sizeof *s);
    tw_server_options *o = NULL;
    if (!tc_ok(tw_server_options_new(&o), "server options")) return false;
    bool ok = tc_ok(tw_server_options_set_threads(o, threads), "threads") &&
              tc_ok(tw_server_options_set_cluster(o, cluster), "cluster") &&
              tc_ok(tw_server_new("127.0.0.1", 0, o, on_event, s, out), "server_new") &&
              tc_ok(tw_server_local_port(*out, port), "local_port");
    tw_server_options_free(o);
    return ok;
}

static int total_opens(struct srv *s) {
    int n = 0;
    for (int i = 0; i < 4; i++) n += atomic_load(&s->opens[i]);
    return n;
}

/* --- the client side ---------------------------------------------------------------------- */

static const char *const labels[] = {"hello", "main", "cross-1", "cross-2"};
#define N_LABELS 4

struct client {
    tw_conn conn;
    bool open, closed;
    uint16_t code;
    int got[N_LABELS];
    int other; /* messages with another text */
};

struct clients {
    tw_context *ctx;
    size_t n;
    struct client c[MAX_CLIENTS];
};

static bool connect_clients(struct clients *cs, uint16_t port, size_t n) {
    char url[64];
    tc_url(url, sizeof url, "ws", port, "/");
    for (size_t i = 0; i < n; i++) {
        struct client *c = &cs->c[cs->n];
        if (!tc_ok(tw_context_connect(cs->ctx, url, NULL, &c->conn), "connect")) return false;
        if (!tc_ok(tw_conn_set_userdata(cs->ctx, c->conn, c), "userdata")) return false;
        cs->n++;
    }
    return true;
}

static void on_client_event(const tw_event *ev) {
    struct client *c = ev->userdata;
    if (c == NULL) return;
    switch (ev->kind) {
    case TW_EVENT_OPEN:
        c->open = true;
        break;
    case TW_EVENT_MESSAGE: {
        bool known = false;
        for (int i = 0; i < N_LABELS; i++) {
            if (tc_eq(ev->data, labels[i])) {
                c->got[i]++;
                known = true;
            }
        }
        if (!known) c->other++;
        break;
    }
    case TW_EVENT_CLOSE:
        c->closed = true;
        c->code = ev->close_code;
        break;
    case TW_EVENT_ERROR:
        fprintf(stderr, "    client error: %s: %s\n", tw_status_str(ev->status), (const char *)ev->data.data);
        c->closed = true;
        break;
    default:
        break;
    }
}

typedef bool (*done_fn)(struct clients *cs, void *arg);

/* Polls the clients until `done` (true) or `timeout_ms` (false). `done` NULL: just polls
 * for `timeout_ms` and returns true. */
static bool pump(struct clients *cs, done_fn done, void *arg, int timeout_ms) {
    int64_t deadline = tc_now_ms() + timeout_ms;
    tw_event evs[64];
    while (tc_now_ms() < deadline) {
        size_t n = 0;
        if (!tc_ok(tw_poll(cs->ctx, evs, 64, 10, &n), "client poll")) return false;
        for (size_t i = 0; i < n; i++) on_client_event(&evs[i]);
        if (done != NULL && done(cs, arg)) return true;
    }
    if (done != NULL) fprintf(stderr, "    pump: not done after %d ms\n", timeout_ms);
    return done == NULL;
}

static bool all_open(struct clients *cs, void *arg) {
    (void)arg;
    for (size_t i = 0; i < cs->n; i++) {
        if (!cs->c[i].open) return false;
    }
    return true;
}

/* Every client got message `*(int *)arg` at least once. */
static bool all_got(struct clients *cs, void *arg) {
    int label = *(int *)arg;
    for (size_t i = 0; i < cs->n; i++) {
        if (cs->c[i].got[label] < 1) return false;
    }
    return true;
}

static bool all_closed(struct clients *cs, void *arg) {
    (void)arg;
    for (size_t i = 0; i < cs->n; i++) {
        if (!cs->c[i].closed) return false;
    }
    return true;
}

/* Server-side opens reached a count (the handlers subscribed them all). */
struct opens_goal {
    struct srv *s[2];
    int want;
};
static bool opens_reached(struct clients *cs, void *arg) {
    (void)cs;
    struct opens_goal *g = arg;
    int n = 0;
    for (int i = 0; i < 2; i++) {
        if (g->s[i] != NULL) n += total_opens(g->s[i]);
    }
    return n >= g->want;
}

/* Waits until every client got `label`, then a little more, and checks it came once. */
static bool got_once(struct clients *cs, int label) {
    if (!pump(cs, all_got, &label, 8000)) return false;
    pump(cs, NULL, NULL, 200);
    for (size_t i = 0; i < cs->n; i++) {
        if (cs->c[i].got[label] != 1 || cs->c[i].other != 0) {
            fprintf(stderr, "    client %zu got '%s' %d times (%d others)\n", i, labels[label], cs->c[i].got[label],
                    cs->c[i].other);
            return false;
        }
    }
    return true;
}

struct shutdown_job {
    tw_server *server;
    uint64_t grace_ms;
    tw_status status;
};

static void *shutdown_thread(void *arg) {
    struct shutdown_job *j = arg;
    j->status = tw_server_shutdown(j->server, j->grace_ms);
    return NULL;
}

/* --- tests -------------------------------------------------------------------------------- */

static void test_two_workers_one_port(void) {
    static struct srv s;
    static struct clients cs;
    memset(&cs, 0, sizeof cs);
    tw_server *server = NULL;
    uint16_t port = 0;
    CHECK(start_server(&s, 2, NULL, &server, &port));
    size_t threads = 0;
    CHECK_OK(tw_server_threads(server, &threads));
    CHECK(threads == 2);
    char addr[64];
    size_t len = 0;
    CHECK_OK(tw_server_local_addr(server, addr, sizeof addr, &len));
    CHECK(len == strlen(addr) && strncmp(addr, "127.0.0.1:", 10) == 0);

    CHECK_OK(tw_context_new(NULL, &cs.ctx));
    CHECK(connect_clients(&cs, port, 40));
    CHECK(pump(&cs, all_open, NULL, 8000));
    struct opens_goal goal = {{&s, NULL}, 40};
    CHECK(pump(&cs, opens_reached, &goal, 8000));
    /* The kernel spread the connections over both workers. */
    CHECK(atomic_load(&s.opens[0]) > 0 && atomic_load(&s.opens[1]) > 0);
    CHECK(atomic_load(&s.poll_refused) == 40);
    /* Each worker has its own context. */
    tw_context *c0 = atomic_load(&s.ctx_of[0]), *c1 = atomic_load(&s.ctx_of[1]);
    CHECK(c0 != NULL && c1 != NULL && c0 != c1);

    /* One client asks its worker's handler to publish: every client, on both workers, gets
     * it exactly once. */
    CHECK_OK(tw_conn_send_text(cs.ctx, cs.c[0].conn, "go", 2));
    CHECK(got_once(&cs, 0));
    CHECK(atomic_load(&s.publishes) == 1);

    /* A publish from the main thread. */
    CHECK_OK(tw_server_publish(server, (const uint8_t *)TOPIC, strlen(TOPIC), TW_MESSAGE_TEXT,
                               (const uint8_t *)"main", 4));
    CHECK(got_once(&cs, 1));

    /* A sender on worker 1, and worker numbers out of range. */
    tw_sender *sender = NULL;
    CHECK_OK(tw_server_sender(server, 1, &sender));
    CHECK_OK(tw_sender_wake(sender));
    tw_sender *none = NULL;
    CHECK_STATUS(tw_server_sender(server, 2, &none), TW_STATUS_NOT_FOUND);
    CHECK(none == NULL);
    tw_cluster_stats stats;
    CHECK_STATUS(tw_server_cluster_stats(server, &stats, NULL), TW_STATUS_NOT_FOUND);

    /* Shutdown (on another thread, while the clients answer the closes): 1001 to all. */
    struct shutdown_job job = {server, 3000, TW_STATUS_INTERNAL};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, shutdown_thread, &job) == 0);
    bool closed = pump(&cs, all_closed, NULL, 8000);
    pthread_join(t, NULL);
    CHECK(closed);
    CHECK_OK(job.status);
    for (size_t i = 0; i < cs.n; i++) CHECK(cs.c[i].code == 1001);
    CHECK(atomic_load(&s.closes_1001) == 40);
    CHECK(atomic_load(&s.bad) == 0);

    /* After the shutdown. */
    CHECK_STATUS(tw_server_shutdown(server, 0), TW_STATUS_SHUTTING_DOWN);
    CHECK_STATUS(tw_server_publish(server, NULL, 0, TW_MESSAGE_TEXT, (const uint8_t *)"x", 1),
                 TW_STATUS_SHUTTING_DOWN);
    CHECK_STATUS(tw_sender_wake(sender), TW_STATUS_CONTEXT_GONE);
    CHECK_OK(tw_server_local_port(server, &port)); /* plain facts stay readable */
    tw_sender_free(sender);
    tw_server_free(server);
    tw_context_free(cs.ctx);
}

/* Freeing a running server shuts it down (1 s grace) without a leak or a hang. */
static void test_free_without_shutdown(void) {
    static struct srv s;
    tw_server *server = NULL;
    uint16_t port = 0;
    CHECK(start_server(&s, 1, NULL, &server, &port));
    CHECK_OK(tw_server_publish(server, (const uint8_t *)TOPIC, strlen(TOPIC), TW_MESSAGE_BINARY, NULL, 0));
    tw_server_free(server);
    tw_server_free(NULL);
}

static void noop_handler(tw_context *ctx, const tw_bus *bus, const tw_event *ev, void *user) {
    (void)ctx, (void)bus, (void)ev, (void)user;
}

static void test_bad_input(void) {
    tw_server *server = NULL;
    CHECK_STATUS(tw_server_new(NULL, 0, NULL, noop_handler, NULL, &server), TW_STATUS_NULL_ARGUMENT);
    CHECK(strstr(tw_last_error(), "host") != NULL);
    CHECK_STATUS(tw_server_new("127.0.0.1", 0, NULL, NULL, NULL, &server), TW_STATUS_NULL_ARGUMENT);
    CHECK(strstr(tw_last_error(), "handler") != NULL);
    CHECK_STATUS(tw_server_new("127.0.0.1", 0, NULL, noop_handler, NULL, NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK(strstr(tw_last_error(), "out_server") != NULL);
    CHECK_STATUS(tw_server_new("\xff", 0, NULL, noop_handler, NULL, &server), TW_STATUS_INVALID_UTF8);
    CHECK(server == NULL);

    CHECK_STATUS(tw_server_options_new(NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_server_options_set_threads(NULL, 2), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_server_options_set_config(NULL, NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_server_options_set_listen_options(NULL, NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_server_options_set_cluster(NULL, NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_server_shutdown(NULL, 0), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_server_publish(NULL, NULL, 0, TW_MESSAGE_TEXT, NULL, 0), TW_STATUS_NULL_ARGUMENT);
    uint16_t port = 0;
    CHECK_STATUS(tw_server_local_port(NULL, &port), TW_STATUS_NULL_ARGUMENT);
    size_t n = 0;
    CHECK_STATUS(tw_bus_worker(NULL, &n, &n), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_bus_publish(NULL, NULL, NULL, 0, TW_MESSAGE_TEXT, NULL, 0, NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK(strstr(tw_last_error(), "bus") != NULL);
    CHECK_STATUS(tw_cluster_options_set_url(NULL, "redis://x/"), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_cluster_new(NULL, NULL, 0, NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(tw_cluster_publish(NULL, NULL, 0, TW_MESSAGE_TEXT, NULL, 0), TW_STATUS_NULL_ARGUMENT);

    /* Cluster settings the runtime refuses when the bridge starts. */
    tw_server_options *o = NULL;
    tw_cluster_options *co = NULL;
    CHECK_OK(tw_server_options_new(&o));
    CHECK_OK(tw_cluster_options_new(&co));
    /* More threads than the runtime allows: refused at the setter, the options unchanged. */
    CHECK_STATUS(tw_server_options_set_threads(o, SIZE_MAX), TW_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(tw_last_error(), "threads must be at most 4096") != NULL);
    CHECK_STATUS(tw_server_options_set_threads(o, 4097), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_server_options_set_threads(o, 4096));
    CHECK_OK(tw_server_options_set_threads(o, 1));
    /* Options without a URL: refused when the bridge would start. */
    CHECK_OK(tw_server_options_set_cluster(o, co));
    CHECK_STATUS(tw_server_new("127.0.0.1", 0, o, noop_handler, NULL, &server), TW_STATUS_INVALID_URL);
    CHECK(server == NULL);
    tw_cluster *cluster = NULL;
    CHECK_STATUS(tw_cluster_new(co, NULL, 0, &cluster), TW_STATUS_INVALID_URL);
    CHECK(cluster == NULL);
    /* Each setter lets the runtime check its value; a refused one changes nothing. */
    CHECK_STATUS(tw_cluster_options_set_url(co, "http://not-redis"), TW_STATUS_INVALID_URL);
    CHECK(strstr(tw_last_error(), "http://not-redis") != NULL);
    CHECK_OK(tw_cluster_options_set_url(co, "redis://127.0.0.1:1/"));
    CHECK_STATUS(tw_cluster_options_set_queue_limit(co, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(tw_last_error(), "queue_limit") != NULL);
    CHECK_STATUS(tw_cluster_options_set_channel(co, ""), TW_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(tw_last_error(), "channel") != NULL);
    CHECK_STATUS(tw_cluster_options_set_backoff_ms(co, 0, 100), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_cluster_options_set_backoff_ms(co, 200, 100), TW_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(tw_last_error(), "backoff_max") != NULL);
    CHECK_STATUS(tw_cluster_options_set_connect_timeout_ms(co, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_cluster_options_set_backoff_ms(co, 100, 100));
    CHECK_OK(tw_cluster_options_set_queue_limit(co, 1));
    /* Still the valid URL and settings: the bridge starts (Redis unreachable is not an
     * error; it keeps trying). */
    CHECK_OK(tw_cluster_new(co, NULL, 0, &cluster));
    CHECK(cluster != NULL);
    tw_cluster_free(cluster);
    cluster = NULL;
    CHECK(server == NULL);
    tw_cluster_options_free(co);
    tw_server_options_free(o);
    tw_cluster_options_free(NULL);
    tw_server_options_free(NULL);
    tw_cluster_free(NULL);
}

/* --- Redis ---------------------------------------------------------------------------------- */

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct redis {
    pid_t pid;
    uint16_t port;
};

static uint16_t free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) close(fd);
    return port;
}

static bool port_accepts(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static bool redis_start(struct redis *r) {
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)r->port);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 500; i++) {
        if (port_accepts(r->port)) return true;
        sleep_ms(10);
    }
    fprintf(stderr, "    redis-server did not start on port %u\n", (unsigned)r->port);
    return false;
}

static void redis_stop(struct redis *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

static bool have_redis(void) {
    return system("command -v redis-server >/dev/null 2>&1") == 0;
}

/* What one server's status callback heard (called on a bridge thread). */
struct heard {
    atomic_int connected, interrupted, resumed, bad;
};

static void on_status(tw_cluster_status status, const char *reason, void *user) {
    struct heard *h = user;
    if (reason == NULL) {
        atomic_fetch_add(&h->bad, 1);
        return;
    }
    switch (status) {
    case TW_CLUSTER_CONNECTED:
        atomic_fetch_add(&h->connected, 1);
        break;
    case TW_CLUSTER_INTERRUPTED:
        if (reason[0] == '\0') atomic_fetch_add(&h->bad, 1);
        atomic_fetch_add(&h->interrupted, 1);
        break;
    case TW_CLUSTER_RESUMED:
        atomic_fetch_add(&h->resumed, 1);
        break;
    default:
        atomic_fetch_add(&h->bad, 1);
    }
}

struct heard_goal {
    struct heard *h[2];
    int which; /* 0 connected, 1 interrupted, 2 resumed */
};
static bool both_heard(struct clients *cs, void *arg) {
    (void)cs;
    struct heard_goal *g = arg;
    for (int i = 0; i < 2; i++) {
        atomic_int *c = g->which == 0 ? &g->h[i]->connected : g->which == 1 ? &g->h[i]->interrupted : &g->h[i]->resumed;
        if (atomic_load(c) < 1) return false;
    }
    return true;
}

static void cluster_body(struct redis *r, struct clients *cs, tw_server **servers) {
    static struct srv s[2];
    static struct heard h[2];
    memset(h, 0, sizeof h);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u/", (unsigned)r->port);
    uint16_t ports[2];
    for (int i = 0; i < 2; i++) {
        tw_cluster_options *co = NULL;
        CHECK_OK(tw_cluster_options_new(&co));
        bool ok = tc_ok(tw_cluster_options_set_url(co, url), "url") &&
                  tc_ok(tw_cluster_options_set_channel(co, "tw-c-test"), "channel") &&
                  tc_ok(tw_cluster_options_set_backoff_ms(co, 50, 300), "backoff") &&
                  tc_ok(tw_cluster_options_set_status_callback(co, on_status, &h[i]), "callback") &&
                  start_server(&s[i], 1, co, &servers[i], &ports[i]);
        tw_cluster_options_free(co);
        CHECK(ok);
    }
    struct heard_goal heard = {{&h[0], &h[1]}, 0};
    CHECK(pump(cs, both_heard, &heard, 8000));

    /* Three clients on each server. */
    CHECK(connect_clients(cs, ports[0], 3));
    CHECK(connect_clients(cs, ports[1], 3));
    CHECK(pump(cs, all_open, NULL, 8000));
    struct opens_goal goal = {{&s[0], &s[1]}, 6};
    CHECK(pump(cs, opens_reached, &goal, 8000));

    /* A publish on server 0 reaches its own clients and, through Redis, server 1's: once. */
    CHECK_OK(tw_server_publish(servers[0], (const uint8_t *)TOPIC, strlen(TOPIC), TW_MESSAGE_TEXT,
                               (const uint8_t *)"cross-1", 7));
    CHECK(got_once(cs, 2));
    tw_cluster_stats stats;
    bool connected = false;
    CHECK_OK(tw_server_cluster_stats(servers[0], &stats, &connected));
    CHECK(connected && stats.sent == 1 && stats.received == 0);
    CHECK_OK(tw_server_cluster_stats(servers[1], &stats, NULL));
    CHECK(stats.received == 1 && stats.sent == 0);

    /* Redis dies: both hear of it. It comes back on the same port: both resume. */
    redis_stop(r);
    heard.which = 1;
    CHECK(pump(cs, both_heard, &heard, 10000));
    CHECK_OK(tw_server_cluster_stats(servers[1], &stats, &connected));
    CHECK(!connected);
    CHECK(redis_start(r));
    heard.which = 2;
    CHECK(pump(cs, both_heard, &heard, 10000));

    /* A publish crosses again, the other way. */
    CHECK_OK(tw_server_publish(servers[1], (const uint8_t *)TOPIC, strlen(TOPIC), TW_MESSAGE_TEXT,
                               (const uint8_t *)"cross-2", 7));
    CHECK(got_once(cs, 3));
    for (int i = 0; i < 2; i++) {
        CHECK(atomic_load(&h[i].connected) == 1 && atomic_load(&h[i].bad) == 0);
        CHECK(atomic_load(&s[i].bad) == 0);
    }
}

static void test_cluster_through_redis(void) {
    if (!have_redis()) {
        fprintf(stderr, "    SKIPPED: redis-server is not installed (make redis-tools)\n");
        return;
    }
    struct redis r = {0, free_port()};
    CHECK(r.port != 0);
    CHECK(redis_start(&r));
    static struct clients cs;
    memset(&cs, 0, sizeof cs);
    tw_server *servers[2] = {NULL, NULL};
    if (tc_ok(tw_context_new(NULL, &cs.ctx), "client context")) {
        cluster_body(&r, &cs, servers);
    }
    for (int i = 0; i < 2; i++) {
        if (servers[i] != NULL) {
            /* The clients are not polled meanwhile: a short grace. */
            tw_status s = tw_server_shutdown(servers[i], 100);
            if (s != TW_STATUS_OK) TR_FAIL_("shutdown: %s", tw_status_str(s));
            tw_server_free(servers[i]);
        }
    }
    tw_context_free(cs.ctx);
    redis_stop(&r);
}

/* A single-context program with its own bridge: tw_cluster_new with the context's sender. */
static void test_context_bridge(void) {
    if (!have_redis()) {
        fprintf(stderr, "    SKIPPED: redis-server is not installed (make redis-tools)\n");
        return;
    }
    struct redis r = {0, free_port()};
    CHECK(r.port != 0);
    CHECK(redis_start(&r));
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u/", (unsigned)r.port);
    tw_context *ctx = NULL;
    tw_sender *sender = NULL;
    tw_cluster_options *co = NULL;
    tw_cluster *a = NULL, *b = NULL;
    bool ok = tc_ok(tw_context_new(NULL, &ctx), "context") && tc_ok(tw_context_sender(ctx, &sender), "sender") &&
              tc_ok(tw_cluster_options_new(&co), "options") && tc_ok(tw_cluster_options_set_url(co, url), "url") &&
              tc_ok(tw_cluster_new(co, (const tw_sender *const *)&sender, 1, &a), "cluster a") &&
              tc_ok(tw_cluster_new(co, NULL, 0, &b), "cluster b");
    bool connected = false;
    uint64_t id_a = 0, id_b = 0;
    for (int i = 0; ok && i < 500 && !connected; i++) {
        bool ca = false, cb = false;
        ok = tc_ok(tw_cluster_is_connected(a, &ca), "connected") && tc_ok(tw_cluster_is_connected(b, &cb), "connected");
        connected = ca && cb;
        sleep_ms(10);
    }
    ok = ok && connected && tc_ok(tw_cluster_node_id(a, &id_a), "id") && tc_ok(tw_cluster_node_id(b, &id_b), "id") &&
         id_a != id_b;
    /* b publishes; a hands it to the context, which publishes it at its next poll (nobody is
     * subscribed here: the counters tell). */
    ok = ok && tc_ok(tw_cluster_publish(b, (const uint8_t *)TOPIC, 4, TW_MESSAGE_TEXT, (const uint8_t *)"x", 1),
                     "publish");
    tw_cluster_stats st = {0, 0, 0, 0};
    for (int i = 0; ok && i < 500 && st.received == 0; i++) {
        ok = tc_ok(tw_cluster_get_stats(a, &st), "stats");
        sleep_ms(10);
    }
    CHECK_STATUS(tw_cluster_publish(b, NULL, 0, TW_MESSAGE_TEXT, (const uint8_t *)"\xff", 1), TW_STATUS_INVALID_UTF8);
    tw_cluster_free(a);
    tw_cluster_free(b);
    tw_cluster_options_free(co);
    tw_sender_free(sender);
    tw_context_free(ctx);
    redis_stop(&r);
    CHECK(ok);
    CHECK(st.received == 1);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(test_two_workers_one_port),
        TR_CASE(test_free_without_shutdown),
        TR_CASE(test_bad_input),
        TR_CASE(test_cluster_through_redis),
        TR_CASE(test_context_bridge),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
