/* wss:// on both sides: certificates from files and from memory, a private CA, failed
 * verification, and the dangerous switch that skips it. Uses tests/c/data (or $TW_TEST_DATA). */
#include "runner.h"

#include "common.h"

static const char *data_path(char *buf, size_t cap, const char *file) {
    const char *dir = getenv("TW_TEST_DATA");
    snprintf(buf, cap, "%s/%s", dir ? dir : "tests/c/data", file);
    return buf;
}

/* Reads a whole (small) file; returns its length or 0. */
static size_t slurp(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

enum way { CERT_FILES, CERT_MEMORY };

static tw_listen_options *tls_listener(enum way way) {
    char cert[256], key[256];
    data_path(cert, sizeof cert, "server.pem");
    data_path(key, sizeof key, "server.key");
    tw_listen_options *lo = NULL;
    if (tw_listen_options_new(&lo) != TW_STATUS_OK) return NULL;
    tw_status s;
    if (way == CERT_FILES) {
        s = tw_listen_options_set_tls_pem_files(lo, cert, key);
    } else {
        static uint8_t c[8192], k[8192];
        size_t cn = slurp(cert, c, sizeof c), kn = slurp(key, k, sizeof k);
        s = tw_listen_options_set_tls_pem(lo, c, cn, k, kn);
    }
    if (!tc_ok(s, "set tls")) {
        tw_listen_options_free(lo);
        return NULL;
    }
    return lo;
}

struct outcome {
    bool echoed;
    bool failed;
    tw_status status;
};

static bool on_tls(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    struct outcome *o = state;
    if (which == 0 && ev->kind == TW_EVENT_MESSAGE) {
        (void)tw_conn_send(ctx, ev->conn, ev->message_kind, ev->data.data, ev->data.len);
    }
    if (which == 1) {
        if (ev->kind == TW_EVENT_OPEN) {
            if (!tc_ok(tw_conn_send_text(ctx, ev->conn, "secret", 6), "send")) return true;
        }
        if (ev->kind == TW_EVENT_MESSAGE) {
            o->echoed = tc_eq(ev->data, "secret");
            return true;
        }
        if (ev->kind == TW_EVENT_ERROR) {
            o->failed = true;
            o->status = ev->status;
            return true;
        }
    }
    return false;
}

/* One wss session; the connect itself may already fail (then its status is the outcome). */
static bool wss_session(enum way way, const tw_connect_options *co, struct outcome *o) {
    tw_context *ctx[2] = {NULL, NULL};
    tw_listen_options *lo = tls_listener(way);
    bool ran = false;
    tw_listener l = 0;
    uint16_t port = 0;
    char url[64];
    tw_conn c = 0;
    if (lo == NULL || !tc_ok(tw_context_new(NULL, &ctx[0]), "ctx") || !tc_ok(tw_context_new(NULL, &ctx[1]), "ctx") ||
        !tc_listen(ctx[0], lo, &l, &port)) {
        goto done;
    }
    tw_status s = tw_context_connect(ctx[1], tc_url(url, sizeof url, "wss", port, "/"), co, &c);
    if (s != TW_STATUS_OK) {
        o->failed = true;
        o->status = s;
        ran = true;
        goto done;
    }
    ran = tc_run(ctx, 2, 16, on_tls, o, 10000);
done:
    tw_listen_options_free(lo);
    tw_context_free(ctx[0]);
    tw_context_free(ctx[1]);
    return ran;
}

static void wss_echo_with_a_private_ca_in_memory(void) {
    char ca[256];
    static uint8_t pem[8192];
    size_t n = slurp(data_path(ca, sizeof ca, "ca.pem"), pem, sizeof pem);
    CHECK(n > 0);
    tw_connect_options *co = NULL;
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_set_tls_use_system_roots(co, false));
    CHECK_OK(tw_connect_options_add_tls_ca_pem(co, pem, n));
    struct outcome o = {0};
    bool ran = wss_session(CERT_FILES, co, &o);
    tw_connect_options_free(co);
    CHECK(ran);
    CHECK(!o.failed && o.echoed);
}

static void wss_echo_with_a_ca_file_and_a_certificate_from_memory(void) {
    char ca[256];
    tw_connect_options *co = NULL;
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_set_tls_ca_file(co, data_path(ca, sizeof ca, "ca.pem")));
    struct outcome o = {0};
    bool ran = wss_session(CERT_MEMORY, co, &o);
    /* The same options again: the TLS setup built the first time is reused. */
    struct outcome o2 = {0};
    bool ran2 = ran && wss_session(CERT_MEMORY, co, &o2);
    tw_connect_options_free(co);
    CHECK(ran && ran2);
    CHECK(!o.failed && o.echoed);
    CHECK(!o2.failed && o2.echoed);
}

static void an_unknown_ca_fails_the_connection_with_a_tls_status(void) {
    /* Default options: only the system's roots, which do not know our test CA. */
    struct outcome o = {0};
    CHECK(wss_session(CERT_FILES, NULL, &o));
    CHECK(o.failed && !o.echoed);
    CHECK(o.status == TW_STATUS_TLS);
}

static void skipping_verification_is_possible_but_named_dangerous(void) {
    tw_connect_options *co = NULL;
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_set_tls_use_system_roots(co, false));
    CHECK_OK(tw_connect_options_dangerous_skip_verification(co, true));
    struct outcome o = {0};
    bool ran = wss_session(CERT_FILES, co, &o);
    tw_connect_options_free(co);
    CHECK(ran);
    CHECK(!o.failed && o.echoed);
}

static void a_key_that_does_not_match_the_certificate_is_refused(void) {
    char cert[256], ca[256];
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    /* ca.pem has no key at all. */
    CHECK_STATUS(tw_listen_options_set_tls_pem_files(lo, data_path(cert, sizeof cert, "server.pem"),
                                                     data_path(ca, sizeof ca, "ca.pem")),
                 TW_STATUS_TLS);
    CHECK(strlen(tw_last_error()) > 0);
    tw_listen_options_free(lo);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(wss_echo_with_a_private_ca_in_memory),
        TR_CASE(wss_echo_with_a_ca_file_and_a_certificate_from_memory),
        TR_CASE(an_unknown_ca_fails_the_connection_with_a_tls_status),
        TR_CASE(skipping_verification_is_possible_but_named_dangerous),
        TR_CASE(a_key_that_does_not_match_the_certificate_is_refused),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
