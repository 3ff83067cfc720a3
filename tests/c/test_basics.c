/* Version, status names, last error, config and options setters, _free(NULL), sizes. */
#include "runner.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>

#include "common.h"

/* The layout C programs compile against; a change here is an ABI change (bump the SONAME). */
#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(sizeof(tw_bytes) == 16, "tw_bytes is {pointer, size_t}");
_Static_assert(sizeof(tw_header) == 16, "tw_header is two pointers");
_Static_assert(sizeof(tw_event) == 128, "tw_event layout changed");
_Static_assert(offsetof(tw_event, conn) == 8, "tw_event.conn");
_Static_assert(offsetof(tw_event, data) == 32, "tw_event.data");
_Static_assert(offsetof(tw_event, message_kind) == 104, "tw_event.message_kind");
_Static_assert(offsetof(tw_event, clean) == 112, "tw_event.clean");
_Static_assert(offsetof(tw_event, attempt) == 116, "tw_event.attempt");
_Static_assert(offsetof(tw_event, delay_ms) == 120, "tw_event.delay_ms");
#endif
_Static_assert(sizeof(tw_status) == 4, "tw_status is uint32_t");
_Static_assert(sizeof(tw_event_kind) == 4, "tw_event_kind is uint32_t");
_Static_assert(sizeof(tw_message_kind) == 4, "tw_message_kind is uint32_t");
_Static_assert(sizeof(tw_conn) == 8 && sizeof(tw_listener) == 8, "ids are 64-bit");
_Static_assert(alignof(tw_event) == alignof(uint64_t), "tw_event alignment");

static void version_matches_the_header_macros(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", TW_VERSION_MAJOR, TW_VERSION_MINOR, TW_VERSION_PATCH);
    CHECK(strcmp(tw_version(), want) == 0);
}

static void every_status_has_a_name_and_unknown_ones_too(void) {
    static const tw_status all[] = {
        TW_STATUS_OK, TW_STATUS_AGAIN, TW_STATUS_NULL_ARGUMENT, TW_STATUS_INVALID_ARGUMENT,
        TW_STATUS_INVALID_UTF8, TW_STATUS_STALE_ID, TW_STATUS_BUFFER_TOO_SMALL,
        TW_STATUS_NOT_FOUND, TW_STATUS_NOT_OPEN, TW_STATUS_BUFFER_FULL,
        TW_STATUS_TOO_MANY_CONNECTIONS, TW_STATUS_SHUTTING_DOWN, TW_STATUS_CONTEXT_GONE,
        TW_STATUS_ABORTED, TW_STATUS_INVALID_URL, TW_STATUS_RESOLVE, TW_STATUS_CONNECT,
        TW_STATUS_CONNECT_TIMEOUT, TW_STATUS_TIMEOUT, TW_STATUS_PROXY, TW_STATUS_PROXY_TIMEOUT,
        TW_STATUS_HANDSHAKE,
        TW_STATUS_HANDSHAKE_REJECTED, TW_STATUS_HANDSHAKE_EOF, TW_STATUS_HANDSHAKE_TIMEOUT,
        TW_STATUS_HANDSHAKE_EXTENSION, TW_STATUS_TLS, TW_STATUS_PROTOCOL,
        TW_STATUS_PAYLOAD_TOO_LONG, TW_STATUS_INVALID_CLOSE_CODE, TW_STATUS_MESSAGE_IN_PROGRESS,
        TW_STATUS_NO_MESSAGE_IN_PROGRESS, TW_STATUS_COMPRESSION_FAILED, TW_STATUS_IO,
        TW_STATUS_INTERNAL,
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *name = tw_status_str(all[i]);
        CHECK(name != NULL && name[0] != '\0');
        CHECK(strcmp(name, "unknown status") != 0);
    }
    CHECK(strcmp(tw_status_str(TW_STATUS_OK), "ok") == 0);
    CHECK(strcmp(tw_status_str(12345), "unknown status") == 0);
}

static void last_error_names_the_null_argument(void) {
    CHECK(tw_last_error() != NULL);
    CHECK_STATUS(tw_config_new(NULL), TW_STATUS_NULL_ARGUMENT);
    CHECK(strstr(tw_last_error(), "out_config") != NULL);
    /* A success leaves the detail of the last failure alone. */
    tw_config *c = NULL;
    CHECK_OK(tw_config_new(&c));
    CHECK(strstr(tw_last_error(), "out_config") != NULL);
    tw_config_free(c);
}

static void free_of_null_is_a_no_op(void) {
    tw_config_free(NULL);
    tw_deflate_config_free(NULL);
    tw_listen_options_free(NULL);
    tw_connect_options_free(NULL);
    tw_context_free(NULL);
    tw_sender_free(NULL);
}

static void config_setters_check_their_range(void) {
    tw_config *c = NULL;
    CHECK_OK(tw_config_new(&c));
    CHECK_OK(tw_config_set_max_message_size(c, 1 << 20));
    CHECK_STATUS(tw_config_set_max_message_size(c, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_max_frame_size(c, 1 << 20));
    CHECK_STATUS(tw_config_set_max_frame_size(c, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_max_handshake_bytes(c, 4096));
    CHECK_STATUS(tw_config_set_max_handshake_bytes(c, 10), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_max_handshake_headers(c, 32));
    CHECK_STATUS(tw_config_set_max_handshake_headers(c, 1), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_handshake_timeout_ms(c, 3000));
    CHECK_STATUS(tw_config_set_handshake_timeout_ms(c, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_connect_timeout_ms(c, 3000));
    CHECK_STATUS(tw_config_set_connect_timeout_ms(c, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_close_timeout_ms(c, 1000));
    CHECK_STATUS(tw_config_set_close_timeout_ms(c, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_ping_interval_ms(c, 0));
    CHECK_OK(tw_config_set_ping_interval_ms(c, 15000));
    CHECK_OK(tw_config_set_idle_timeout_ms(c, 0));
    CHECK_OK(tw_config_set_idle_timeout_ms(c, 60000));
    CHECK_OK(tw_config_set_high_water_mark(c, 1 << 20));
    CHECK_OK(tw_config_set_low_water_mark(c, 1 << 10));
    CHECK_OK(tw_config_set_max_buffered(c, 1 << 24));
    CHECK_STATUS(tw_config_set_max_buffered(c, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_max_connections(c, 10));
    CHECK_STATUS(tw_config_set_max_connections(c, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_receive_buffer_size(c, 64 << 10));
    CHECK_STATUS(tw_config_set_receive_buffer_size(c, 100), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_sender_queue_limit(c, 1 << 20));
    CHECK_STATUS(tw_config_set_sender_queue_limit(c, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_config_set_resolver_threads(c, 1));
    CHECK_STATUS(tw_config_set_resolver_threads(c, 0), TW_STATUS_INVALID_ARGUMENT);

    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(c, &ctx));
    tw_context_free(ctx);

    /* A low water mark above the high one is refused when the context is made. */
    CHECK_OK(tw_config_set_low_water_mark(c, 2 << 20));
    ctx = (tw_context *)0x1;
    CHECK_STATUS(tw_context_new(c, &ctx), TW_STATUS_INVALID_ARGUMENT);
    CHECK(ctx == (tw_context *)0x1); /* outputs are written only on success */
    tw_config_free(c);
}

static void deflate_setters_check_their_range(void) {
    tw_deflate_config *d = NULL;
    CHECK_OK(tw_deflate_config_new(&d));
    CHECK_OK(tw_deflate_config_set_enabled(d, true));
    CHECK_OK(tw_deflate_config_set_level(d, 9));
    CHECK_STATUS(tw_deflate_config_set_level(d, 10), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_deflate_config_set_mem_level(d, 1));
    CHECK_STATUS(tw_deflate_config_set_mem_level(d, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_deflate_config_set_mem_level(d, 10), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_deflate_config_set_threshold(d, 0));
    CHECK_OK(tw_deflate_config_set_server_max_window_bits(d, 8));
    CHECK_OK(tw_deflate_config_set_server_max_window_bits(d, 0));
    CHECK_STATUS(tw_deflate_config_set_server_max_window_bits(d, 16), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_deflate_config_set_client_max_window_bits(d, 15));
    CHECK_STATUS(tw_deflate_config_set_client_max_window_bits(d, 7), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_deflate_config_set_server_no_context_takeover(d, true));
    CHECK_OK(tw_deflate_config_set_client_no_context_takeover(d, true));
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_deflate(lo, d));
    tw_connect_options *co = NULL;
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_set_deflate(co, d));
    tw_deflate_config_free(d); /* the options keep their copies */
    tw_listen_options_free(lo);
    tw_connect_options_free(co);
}

static void listen_and_connect_options_check_their_input(void) {
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_reuse_port(lo, true));
    CHECK_OK(tw_listen_options_set_backlog(lo, 128));
    CHECK_STATUS(tw_listen_options_set_backlog(lo, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_listen_options_set_backlog(lo, 70000), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_listen_options_set_max_connections_per_address(lo, 8));
    CHECK_OK(tw_listen_options_set_max_connections_per_address(lo, 0)); /* no limit */
    CHECK_OK(tw_listen_options_set_max_handshakes_per_address(lo, 16));
    CHECK_OK(tw_listen_options_set_max_handshakes(lo, 0));
    CHECK_OK(tw_listen_options_set_connection_rate(lo, 10.0, 20));
    CHECK_OK(tw_listen_options_set_connection_rate(lo, 0.0, 0)); /* off */
    CHECK_STATUS(tw_listen_options_set_connection_rate(lo, -1.0, 5), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_listen_options_set_connection_rate(lo, 1.0 / 0.0, 5), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_listen_options_set_connection_rate(lo, 5.0, 0), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_listen_options_add_subprotocol(lo, "chat"));
    CHECK_STATUS(tw_listen_options_add_subprotocol(lo, ""), TW_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tw_listen_options_add_subprotocol(lo, "\xff\xfe"), TW_STATUS_INVALID_UTF8);
    CHECK_OK(tw_listen_options_add_allowed_origin(lo, "https://example.com"));
    CHECK_OK(tw_listen_options_set_handle_requests(lo, true));
    CHECK_OK(tw_listen_options_set_handle_http(lo, true));
    static const uint8_t junk[] = "not a certificate";
    CHECK_STATUS(tw_listen_options_set_tls_pem(lo, junk, sizeof junk, junk, sizeof junk), TW_STATUS_TLS);
    CHECK_STATUS(tw_listen_options_set_tls_pem_files(lo, "/nonexistent/cert.pem", "/nonexistent/key.pem"),
                 TW_STATUS_TLS);
    tw_listen_options_free(lo);

    tw_connect_options *co = NULL;
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_connect_options_add_header(co, "X-Test", "1"));
    CHECK_STATUS(tw_connect_options_add_header(co, "", "1"), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_connect_options_set_origin(co, "https://example.com"));
    CHECK_OK(tw_connect_options_set_local_address(co, "127.0.0.9"));
    CHECK_OK(tw_connect_options_set_local_address(co, "::1"));
    CHECK_OK(tw_connect_options_set_local_address(co, NULL)); /* the system chooses */
    CHECK_OK(tw_connect_options_set_proxy(co, "socks5h://user:pw@127.0.0.1:1080"));
    CHECK_OK(tw_connect_options_set_proxy(co, "http://proxy.example:3128"));
    CHECK_STATUS(tw_connect_options_set_proxy(co, "ftp://proxy.example"),
                 TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_connect_options_set_proxy(co, "https://u:p@proxy.example:3129")); /* TLS to the proxy */
    CHECK_STATUS(tw_connect_options_set_proxy(co, "http://a%3Ab:c@proxy.example"),
                 TW_STATUS_INVALID_ARGUMENT); /* Basic auth cannot carry ':' in the user */
    CHECK_OK(tw_connect_options_set_proxy(co, "")); /* no proxy */
    CHECK_OK(tw_connect_options_set_proxy(co, NULL)); /* the environment */
    CHECK_STATUS(tw_connect_options_set_local_address(co, "localhost"), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_connect_options_add_subprotocol(co, "chat"));
    CHECK_OK(tw_connect_options_set_connect_timeout_ms(co, 2000));
    CHECK_OK(tw_connect_options_set_tls_use_system_roots(co, false));
    CHECK_OK(tw_connect_options_add_tls_ca_pem(co, junk, sizeof junk));
    CHECK_OK(tw_connect_options_set_tls_ca_file(co, "/nonexistent/ca.pem"));
    CHECK_OK(tw_connect_options_dangerous_skip_verification(co, false));
    /* Bad TLS settings surface when they are used. */
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_conn conn = 7;
    CHECK_STATUS(tw_context_connect(ctx, "wss://127.0.0.1:1/", co, &conn), TW_STATUS_TLS);
    CHECK(conn == 7);
    CHECK_STATUS(tw_context_connect(ctx, "http://127.0.0.1:1/", NULL, &conn), TW_STATUS_INVALID_URL);
    CHECK_STATUS(tw_context_connect(ctx, "ws://127.0.0.1:1/\xff", NULL, &conn), TW_STATUS_INVALID_UTF8);
    tw_context_free(ctx);
    tw_connect_options_free(co);
}

static void context_reports_fd_timeout_and_counts(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    int fd = -1;
    CHECK_OK(tw_context_fd(ctx, &fd));
    CHECK(fd >= 0);
    int32_t ms = 12345;
    CHECK_OK(tw_context_next_timeout_ms(ctx, &ms));
    CHECK(ms == -1); /* nothing armed */
    size_t count = 99;
    CHECK_OK(tw_context_connection_count(ctx, &count));
    CHECK(count == 0);
    tw_event ev[4];
    size_t n = 99;
    int64_t t0 = tc_now_ms();
    CHECK_OK(tw_poll(ctx, ev, 4, 0, &n));
    CHECK(n == 0);
    CHECK_OK(tw_poll(ctx, ev, 4, 30, &n));
    CHECK(n == 0);
    CHECK(tc_now_ms() - t0 >= 25);
    CHECK_STATUS(tw_poll(ctx, ev, 0, 0, &n), TW_STATUS_INVALID_ARGUMENT);
    CHECK_OK(tw_context_shutdown(ctx, 100));
    tw_listener l = 0;
    CHECK_STATUS(tw_context_listen(ctx, "127.0.0.1", 0, NULL, &l), TW_STATUS_SHUTTING_DOWN);
    tw_context_free(ctx);
}

static void listener_reports_its_address(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, NULL, &l, &port));
    CHECK(l != 0 && port != 0);
    char addr[64];
    size_t len = 0;
    CHECK_OK(tw_listener_local_addr(ctx, l, addr, sizeof addr, &len));
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
    CHECK(strcmp(addr, want) == 0 && len == strlen(want));
    char tiny[4] = "abc";
    len = 77;
    CHECK_STATUS(tw_listener_local_addr(ctx, l, tiny, sizeof tiny, &len), TW_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 77 && strcmp(tiny, "abc") == 0);
    CHECK_OK(tw_listener_close(ctx, l));
    CHECK_STATUS(tw_listener_port(ctx, l, &port), TW_STATUS_STALE_ID);
    CHECK_STATUS(tw_listener_close(ctx, l), TW_STATUS_STALE_ID);
    /* The port is free again. */
    tw_listener again = 0;
    CHECK_OK(tw_context_listen(ctx, "127.0.0.1", port, NULL, &again));
    /* ... and can be shared with SO_REUSEPORT only when both ask. */
    tw_listener clash = 0;
    CHECK_STATUS(tw_context_listen(ctx, "127.0.0.1", port, NULL, &clash), TW_STATUS_IO);
    tw_context_free(ctx);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(version_matches_the_header_macros),
        TR_CASE(every_status_has_a_name_and_unknown_ones_too),
        TR_CASE(last_error_names_the_null_argument),
        TR_CASE(free_of_null_is_a_no_op),
        TR_CASE(config_setters_check_their_range),
        TR_CASE(deflate_setters_check_their_range),
        TR_CASE(listen_and_connect_options_check_their_input),
        TR_CASE(context_reports_fd_timeout_and_counts),
        TR_CASE(listener_reports_its_address),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
