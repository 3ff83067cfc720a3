/* Client connections through real proxies (tw_connect_options_set_proxy): tinyproxy (HTTP
 * CONNECT, with and without Basic auth), stunnel in front of tinyproxy (an HTTPS proxy), danted
 * (SOCKS5, with and without username auth), and fake proxies answering garbage or nothing.
 * ws:// and wss:// through each; every failure is TW_STATUS_PROXY (305) or
 * TW_STATUS_PROXY_TIMEOUT (306) with a message saying what failed, within the timeout.
 *
 * The proxies come from tests/proxies.py --serve (started once by main with popen, stopped
 * by its PID at the end; $TW_PROXIES_SCRIPT overrides the path). When it cannot start them,
 * the file is skipped, unless TIDEWIRE_REQUIRE_PROXIES=1 (`make proxy-tools` installs them). */
#include "runner.h"

#include "common.h"

#include <signal.h>

/* ---- the launcher's answers ------------------------------------------------------------ */

#define MAX_VARS 16
static char var_names[MAX_VARS][32];
static char var_values[MAX_VARS][256];
static size_t var_count;

static const char *proxy_var(const char *name) {
    for (size_t i = 0; i < var_count; i++) {
        if (strcmp(var_names[i], name) == 0) return var_values[i];
    }
    return NULL;
}

static FILE *launcher;
static pid_t launcher_pid;

/* Starts tests/proxies.py --serve and reads its NAME=VALUE lines up to READY. */
static bool start_proxies(char *why, size_t cap) {
    char script[512];
    const char *env = getenv("TW_PROXIES_SCRIPT");
    if (env != NULL) {
        snprintf(script, sizeof script, "%s", env);
    } else {
        /* This file is tests/c/test_proxy.c (relative to where it was compiled): the
         * launcher is tests/proxies.py. */
        snprintf(script, sizeof script, "%s", __FILE__);
        char *slash = strrchr(script, '/');
        if (slash != NULL) {
            *slash = '\0';
            slash = strrchr(script, '/');
        }
        if (slash != NULL) {
            snprintf(slash + 1, sizeof script - (size_t)(slash + 1 - script), "proxies.py");
        } else {
            snprintf(script, sizeof script, "tests/proxies.py");
        }
    }
    char cmd[640];
    snprintf(cmd, sizeof cmd, "exec python3 '%s' --serve", script);
    fflush(stdout);
    fflush(stderr);
    launcher = popen(cmd, "r");
    if (launcher == NULL) {
        snprintf(why, cap, "popen: cannot run %.300s", script);
        return false;
    }
    char line[512];
    while (fgets(line, sizeof line, launcher) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "READY") == 0) return launcher_pid > 0;
        char *eq = strchr(line, '=');
        if (eq == NULL) continue;
        *eq = '\0';
        if (strcmp(line, "ERROR") == 0) {
            snprintf(why, cap, "%.400s", eq + 1);
            return false;
        }
        if (strcmp(line, "TW_PROXIES_PID") == 0) {
            launcher_pid = (pid_t)atol(eq + 1);
        } else if (var_count < MAX_VARS) {
            snprintf(var_names[var_count], sizeof var_names[0], "%.31s", line);
            snprintf(var_values[var_count], sizeof var_values[0], "%.255s", eq + 1);
            var_count++;
        }
    }
    snprintf(why, cap, "%.300s ended without READY", script);
    return false;
}

static void stop_proxies(void) {
    if (launcher_pid > 0) kill(launcher_pid, SIGTERM);
    if (launcher != NULL) pclose(launcher);
}

/* ---- one session through a proxy -------------------------------------------------------- */

static const char *data_path(char *buf, size_t cap, const char *file) {
    const char *dir = getenv("TW_TEST_DATA");
    snprintf(buf, cap, "%s/%s", dir ? dir : "tests/c/data", file);
    return buf;
}

static size_t slurp(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

struct outcome {
    bool echoed;
    bool failed;
    tw_status status;
    char message[512];
    int64_t took_ms;
};

static bool on_event(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    struct outcome *o = state;
    if (which == 0 && ev->kind == TW_EVENT_MESSAGE) {
        (void)tw_conn_send(ctx, ev->conn, ev->message_kind, ev->data.data, ev->data.len);
    }
    if (which == 1) {
        if (ev->kind == TW_EVENT_OPEN) {
            if (!tc_ok(tw_conn_send_text(ctx, ev->conn, "through", 7), "send")) return true;
        }
        if (ev->kind == TW_EVENT_MESSAGE) {
            o->echoed = tc_eq(ev->data, "through");
            return true;
        }
        if (ev->kind == TW_EVENT_ERROR) {
            o->failed = true;
            o->status = ev->status;
            size_t n = ev->data.len < sizeof o->message - 1 ? ev->data.len : sizeof o->message - 1;
            if (ev->data.data != NULL) memcpy(o->message, ev->data.data, n);
            o->message[n] = '\0';
            return true;
        }
    }
    return false;
}

enum trust { TRUST_ORIGIN, TRUST_ORIGIN_AND_PROXY };

/* Connects to a ws:// or wss:// listener of its own through `proxy`, sends one message and
 * waits for its echo, or for the client's error. */
static bool session(const char *proxy, bool secure, enum trust trust, uint64_t timeout_ms,
                    struct outcome *o) {
    tw_context *ctx[2] = {NULL, NULL};
    tw_listen_options *lo = NULL;
    tw_connect_options *co = NULL;
    bool ran = false;
    tw_listener l = 0;
    uint16_t port = 0;
    char url[64], path[256], cert[256], key[256];
    tw_conn c = 0;
    memset(o, 0, sizeof *o);
    if (!tc_ok(tw_listen_options_new(&lo), "listen options") || !tc_ok(tw_connect_options_new(&co), "options")) {
        goto done;
    }
    if (secure && !tc_ok(tw_listen_options_set_tls_pem_files(lo, data_path(cert, sizeof cert, "server.pem"),
                                                            data_path(key, sizeof key, "server.key")),
                         "tls files")) {
        goto done;
    }
    /* The proxy's TLS trusts what the connection trusts: the origin's CA, and the HTTPS
     * proxy's when asked. */
    if (!tc_ok(tw_connect_options_set_tls_use_system_roots(co, false), "roots") ||
        !tc_ok(tw_connect_options_set_tls_ca_file(co, data_path(path, sizeof path, "ca.pem")), "ca file") ||
        !tc_ok(tw_connect_options_set_proxy(co, proxy), "set_proxy") ||
        !tc_ok(tw_connect_options_set_connect_timeout_ms(co, timeout_ms), "timeout")) {
        goto done;
    }
    if (trust == TRUST_ORIGIN_AND_PROXY) {
        static uint8_t pem[8192];
        const char *ca = proxy_var("TW_PROXY_HTTPS_CA");
        size_t n = ca ? slurp(ca, pem, sizeof pem) : 0;
        if (n == 0 || !tc_ok(tw_connect_options_add_tls_ca_pem(co, pem, n), "proxy ca")) goto done;
    }
    if (!tc_ok(tw_context_new(NULL, &ctx[0]), "ctx") || !tc_ok(tw_context_new(NULL, &ctx[1]), "ctx") ||
        !tc_listen(ctx[0], lo, &l, &port)) {
        goto done;
    }
    int64_t started = tc_now_ms();
    if (!tc_ok(tw_context_connect(ctx[1], tc_url(url, sizeof url, secure ? "wss" : "ws", port, "/p"), co, &c),
               "connect")) {
        goto done;
    }
    ran = tc_run(ctx, 2, 16, on_event, o, 10000);
    o->took_ms = tc_now_ms() - started;
done:
    tw_listen_options_free(lo);
    tw_connect_options_free(co);
    tw_context_free(ctx[0]);
    tw_context_free(ctx[1]);
    return ran;
}

/* Echo through `var`'s proxy, ws:// and wss://. */
#define CHECK_ECHO_THROUGH(var, trust)                                                      \
    do {                                                                                    \
        const char *p_ = proxy_var(var);                                                    \
        CHECK(p_ != NULL);                                                                  \
        for (int secure = 0; secure < 2; secure++) {                                       \
            struct outcome o_;                                                              \
            CHECK(session(p_, secure, trust, 5000, &o_));                                   \
            if (o_.failed) TR_FAIL_("%s via %s: %s", secure ? "wss" : "ws", var, o_.message); \
            CHECK(!o_.failed && o_.echoed);                                                 \
        }                                                                                   \
    } while (0)

static void ws_and_wss_through_tinyproxy(void) { CHECK_ECHO_THROUGH("TW_PROXY_HTTP", TRUST_ORIGIN); }

static void ws_and_wss_through_tinyproxy_with_basic_auth(void) {
    CHECK_ECHO_THROUGH("TW_PROXY_HTTP_AUTH", TRUST_ORIGIN);
}

static void ws_and_wss_through_the_https_proxy(void) {
    CHECK_ECHO_THROUGH("TW_PROXY_HTTPS", TRUST_ORIGIN_AND_PROXY);
}

static void ws_and_wss_through_danted(void) {
    CHECK_ECHO_THROUGH("TW_PROXY_SOCKS", TRUST_ORIGIN);
    /* socks5://: the client resolves the target itself. */
    char url[128];
    snprintf(url, sizeof url, "socks5://%s", proxy_var("TW_PROXY_SOCKS") + strlen("socks5h://"));
    struct outcome o;
    CHECK(session(url, true, TRUST_ORIGIN, 5000, &o));
    CHECK(!o.failed && o.echoed);
}

static void ws_and_wss_through_danted_with_username_auth(void) {
    if (proxy_var("TW_PROXY_SOCKS_AUTH") == NULL) {
        printf("SKIPPED danted with auth: not root, no system user for dante\n");
        return;
    }
    CHECK_ECHO_THROUGH("TW_PROXY_SOCKS_AUTH", TRUST_ORIGIN);
}

/* The URL of `var` with its password replaced by "wrong". */
static const char *with_wrong_password(char *buf, size_t cap, const char *var) {
    const char *url = proxy_var(var);
    const char *colon = url ? strchr(strstr(url, "://") + 3, ':') : NULL;
    const char *at = url ? strchr(url, '@') : NULL;
    if (colon == NULL || at == NULL) return NULL;
    snprintf(buf, cap, "%.*s:wrong%s", (int)(colon - url), url, at);
    return buf;
}

static void a_failure_is_proxy_status_with_a_message(const char *proxy, bool secure, const char *want) {
    struct outcome o;
    CHECK(session(proxy, secure, TRUST_ORIGIN, 5000, &o));
    printf("    %s: %s (%s)\n", proxy, o.message, tw_status_str(o.status));
    CHECK(o.failed && !o.echoed);
    CHECK(o.status == TW_STATUS_PROXY);
    if (strstr(o.message, want) == NULL) TR_FAIL_("wanted %s in: %s", want, o.message);
    CHECK(strstr(o.message, want) != NULL);
    CHECK(strstr(o.message, "wrong") == NULL); /* never the password */
    CHECK(o.took_ms < 4000);
}

static void wrong_http_credentials(void) {
    char url[256];
    CHECK(with_wrong_password(url, sizeof url, "TW_PROXY_HTTP_AUTH") != NULL);
    /* tinyproxy 1.11 answers 401 to wrong Basic credentials (407 without any). */
    a_failure_is_proxy_status_with_a_message(url, true, "40");
}

static void wrong_socks_credentials(void) {
    char url[256];
    if (proxy_var("TW_PROXY_SOCKS_AUTH") == NULL) {
        printf("SKIPPED wrong SOCKS credentials: not root\n");
        return;
    }
    CHECK(with_wrong_password(url, sizeof url, "TW_PROXY_SOCKS_AUTH") != NULL);
    a_failure_is_proxy_status_with_a_message(url, false, "rejected the username");
}

static void a_refusing_proxy_gives_403(void) {
    a_failure_is_proxy_status_with_a_message(proxy_var("TW_PROXY_REFUSING"), false, "403");
}

static void a_proxy_answering_garbage(void) {
    a_failure_is_proxy_status_with_a_message(proxy_var("TW_PROXY_GARBAGE"), false, "proxy");
}

static void an_untrusted_https_proxy_is_a_proxy_tls_error(void) {
    /* The connection trusts the origin's CA only. */
    a_failure_is_proxy_status_with_a_message(proxy_var("TW_PROXY_HTTPS"), true, "TLS to the proxy failed");
}

static void a_silent_proxy_times_out_within_the_connect_timeout(void) {
    struct outcome o;
    CHECK(session(proxy_var("TW_PROXY_SILENT"), true, TRUST_ORIGIN, 700, &o));
    printf("    silent: %s after %lld ms\n", o.message, (long long)o.took_ms);
    CHECK(o.failed && o.status == TW_STATUS_PROXY_TIMEOUT);
    CHECK(o.took_ms >= 650 && o.took_ms < 2700);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(ws_and_wss_through_tinyproxy),
        TR_CASE(ws_and_wss_through_tinyproxy_with_basic_auth),
        TR_CASE(ws_and_wss_through_the_https_proxy),
        TR_CASE(ws_and_wss_through_danted),
        TR_CASE(ws_and_wss_through_danted_with_username_auth),
        TR_CASE(wrong_http_credentials),
        TR_CASE(wrong_socks_credentials),
        TR_CASE(a_refusing_proxy_gives_403),
        TR_CASE(a_proxy_answering_garbage),
        TR_CASE(an_untrusted_https_proxy_is_a_proxy_tls_error),
        TR_CASE(a_silent_proxy_times_out_within_the_connect_timeout),
    };
    char why[512] = "";
    if (!start_proxies(why, sizeof why)) {
        stop_proxies();
        const char *req = getenv("TIDEWIRE_REQUIRE_PROXIES");
        if (req != NULL && strcmp(req, "1") == 0) {
            printf("FAIL proxies: %s\n0 passed, 1 failed\n", why);
            return 1;
        }
        printf("SKIPPED test_proxy: %s (`make proxy-tools`)\n0 passed, 0 failed\n", why);
        return 0;
    }
    int rc = tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
    stop_proxies();
    return rc;
}
