/* Every pointer argument of every function, given NULL: TW_STATUS_NULL_ARGUMENT, the name of
 * the argument in tw_last_error(), and outputs left untouched. */
#include "runner.h"

#include "common.h"

/* The call must answer NULL_ARGUMENT and name `arg` in the thread's last error. */
#define CHECK_NULL(call, arg)                                                       \
    do {                                                                            \
        CHECK_STATUS(call, TW_STATUS_NULL_ARGUMENT);                                \
        if (strstr(tw_last_error(), "`" arg "`") == NULL) {                         \
            TR_FAIL_("%s: last error \"%s\" does not name `%s`", #call,             \
                     tw_last_error(), arg);                                         \
            return;                                                                 \
        }                                                                           \
    } while (0)

static void config_and_deflate_functions_refuse_null(void) {
    CHECK_NULL(tw_config_new(NULL), "out_config");
    CHECK_NULL(tw_config_set_max_message_size(NULL, 1), "config");
    CHECK_NULL(tw_config_set_max_frame_size(NULL, 1), "config");
    CHECK_NULL(tw_config_set_max_handshake_bytes(NULL, 4096), "config");
    CHECK_NULL(tw_config_set_max_handshake_headers(NULL, 16), "config");
    CHECK_NULL(tw_config_set_handshake_timeout_ms(NULL, 1), "config");
    CHECK_NULL(tw_config_set_connect_timeout_ms(NULL, 1), "config");
    CHECK_NULL(tw_config_set_close_timeout_ms(NULL, 1), "config");
    CHECK_NULL(tw_config_set_ping_interval_ms(NULL, 1), "config");
    CHECK_NULL(tw_config_set_idle_timeout_ms(NULL, 1), "config");
    CHECK_NULL(tw_config_set_high_water_mark(NULL, 1), "config");
    CHECK_NULL(tw_config_set_low_water_mark(NULL, 1), "config");
    CHECK_NULL(tw_config_set_max_buffered(NULL, 1), "config");
    CHECK_NULL(tw_config_set_max_connections(NULL, 1), "config");
    CHECK_NULL(tw_config_set_receive_buffer_size(NULL, 1 << 20), "config");
    CHECK_NULL(tw_config_set_sender_queue_limit(NULL, 1), "config");
    CHECK_NULL(tw_config_set_resolver_threads(NULL, 1), "config");

    CHECK_NULL(tw_deflate_config_new(NULL), "out_deflate");
    CHECK_NULL(tw_deflate_config_set_enabled(NULL, true), "deflate");
    CHECK_NULL(tw_deflate_config_set_level(NULL, 1), "deflate");
    CHECK_NULL(tw_deflate_config_set_mem_level(NULL, 8), "deflate");
    CHECK_NULL(tw_deflate_config_set_threshold(NULL, 1), "deflate");
    CHECK_NULL(tw_deflate_config_set_server_max_window_bits(NULL, 10), "deflate");
    CHECK_NULL(tw_deflate_config_set_client_max_window_bits(NULL, 10), "deflate");
    CHECK_NULL(tw_deflate_config_set_server_no_context_takeover(NULL, true), "deflate");
    CHECK_NULL(tw_deflate_config_set_client_no_context_takeover(NULL, true), "deflate");
}

static void option_functions_refuse_null(void) {
    tw_listen_options *lo = NULL;
    tw_connect_options *co = NULL;
    tw_deflate_config *d = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_connect_options_new(&co));
    CHECK_OK(tw_deflate_config_new(&d));
    static const uint8_t pem[] = "pem";

    CHECK_NULL(tw_listen_options_new(NULL), "out_options");
    CHECK_NULL(tw_listen_options_set_reuse_port(NULL, true), "options");
    CHECK_NULL(tw_listen_options_set_backlog(NULL, 10), "options");
    CHECK_NULL(tw_listen_options_set_max_connections_per_address(NULL, 1), "options");
    CHECK_NULL(tw_listen_options_set_max_handshakes_per_address(NULL, 1), "options");
    CHECK_NULL(tw_listen_options_set_max_handshakes(NULL, 1), "options");
    CHECK_NULL(tw_listen_options_set_connection_rate(NULL, 1.0, 1), "options");
    CHECK_NULL(tw_listen_options_set_tls_pem(NULL, pem, 3, pem, 3), "options");
    CHECK_NULL(tw_listen_options_set_tls_pem(lo, NULL, 3, pem, 3), "cert_pem");
    CHECK_NULL(tw_listen_options_set_tls_pem(lo, pem, 3, NULL, 3), "key_pem");
    CHECK_NULL(tw_listen_options_set_tls_pem_files(NULL, "c", "k"), "options");
    CHECK_NULL(tw_listen_options_set_tls_pem_files(lo, NULL, "k"), "cert_path");
    CHECK_NULL(tw_listen_options_set_tls_pem_files(lo, "c", NULL), "key_path");
    CHECK_NULL(tw_listen_options_add_subprotocol(NULL, "x"), "options");
    CHECK_NULL(tw_listen_options_add_subprotocol(lo, NULL), "name");
    CHECK_NULL(tw_listen_options_add_allowed_origin(NULL, "x"), "options");
    CHECK_NULL(tw_listen_options_add_allowed_origin(lo, NULL), "origin");
    CHECK_NULL(tw_listen_options_set_handle_requests(NULL, true), "options");
    CHECK_NULL(tw_listen_options_set_handle_http(NULL, true), "options");
    CHECK_NULL(tw_listen_options_set_slow_subscriber(NULL, 1, TW_SLOW_SKIP), "options");
    CHECK_NULL(tw_listen_options_set_deflate(NULL, d), "options");
    CHECK_NULL(tw_listen_options_set_deflate(lo, NULL), "deflate");

    CHECK_NULL(tw_connect_options_new(NULL), "out_options");
    CHECK_NULL(tw_connect_options_add_header(NULL, "a", "b"), "options");
    CHECK_NULL(tw_connect_options_add_header(co, NULL, "b"), "name");
    CHECK_NULL(tw_connect_options_add_header(co, "a", NULL), "value");
    CHECK_NULL(tw_connect_options_set_origin(NULL, "o"), "options");
    CHECK_NULL(tw_connect_options_set_origin(co, NULL), "origin");
    CHECK_NULL(tw_connect_options_set_local_address(NULL, "127.0.0.1"), "options");
    CHECK_NULL(tw_connect_options_add_subprotocol(NULL, "x"), "options");
    CHECK_NULL(tw_connect_options_add_subprotocol(co, NULL), "name");
    CHECK_NULL(tw_connect_options_set_connect_timeout_ms(NULL, 1), "options");
    CHECK_NULL(tw_connect_options_set_deflate(NULL, d), "options");
    CHECK_NULL(tw_connect_options_set_deflate(co, NULL), "deflate");
    CHECK_NULL(tw_connect_options_set_tls_use_system_roots(NULL, true), "options");
    CHECK_NULL(tw_connect_options_add_tls_ca_pem(NULL, pem, 3), "options");
    CHECK_NULL(tw_connect_options_add_tls_ca_pem(co, NULL, 3), "pem");
    CHECK_NULL(tw_connect_options_set_tls_ca_file(NULL, "f"), "options");
    CHECK_NULL(tw_connect_options_set_tls_ca_file(co, NULL), "path");
    CHECK_NULL(tw_connect_options_dangerous_skip_verification(NULL, true), "options");

    tw_listen_options_free(lo);
    tw_connect_options_free(co);
    tw_deflate_config_free(d);
}

static void context_listener_and_poll_functions_refuse_null(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    int fd = -7;
    int32_t ms = -7;
    size_t count = 77, n = 77, len = 77;
    tw_listener l = 77;
    tw_conn c = 77;
    tw_sender *sender = (tw_sender *)&fd;
    uint16_t port = 77;
    char buf[64];
    tw_event ev[2];

    CHECK_NULL(tw_context_new(NULL, NULL), "out_ctx");
    CHECK_NULL(tw_context_fd(NULL, &fd), "ctx");
    CHECK_NULL(tw_context_fd(ctx, NULL), "out_fd");
    CHECK_NULL(tw_context_next_timeout_ms(NULL, &ms), "ctx");
    CHECK_NULL(tw_context_next_timeout_ms(ctx, NULL), "out_ms");
    CHECK_NULL(tw_context_shutdown(NULL, 10), "ctx");
    CHECK_NULL(tw_context_connection_count(NULL, &count), "ctx");
    CHECK_NULL(tw_context_connection_count(ctx, NULL), "out_count");
    CHECK_NULL(tw_context_listener_count(NULL, &count), "ctx");
    CHECK_NULL(tw_context_listener_count(ctx, NULL), "out_count");
    CHECK_NULL(tw_connect_options_prepare_tls(NULL), "options");
    CHECK_NULL(tw_context_listen(NULL, "127.0.0.1", 0, NULL, &l), "ctx");
    CHECK_NULL(tw_context_listen(ctx, NULL, 0, NULL, &l), "host");
    CHECK_NULL(tw_context_listen(ctx, "127.0.0.1", 0, NULL, NULL), "out_listener");
    CHECK_NULL(tw_context_connect(NULL, "ws://127.0.0.1:1/", NULL, &c), "ctx");
    CHECK_NULL(tw_context_connect(ctx, NULL, NULL, &c), "url");
    CHECK_NULL(tw_context_connect(ctx, "ws://127.0.0.1:1/", NULL, NULL), "out_conn");
    CHECK_NULL(tw_context_sender(NULL, &sender), "ctx");
    CHECK_NULL(tw_context_sender(ctx, NULL), "out_sender");
    CHECK_NULL(tw_poll(NULL, ev, 2, 0, &n), "ctx");
    CHECK_NULL(tw_poll(ctx, NULL, 2, 0, &n), "events");
    CHECK_NULL(tw_poll(ctx, ev, 2, 0, NULL), "out_count");

    CHECK_OK(tw_context_listen(ctx, "127.0.0.1", 0, NULL, &l));
    CHECK_NULL(tw_listener_port(NULL, l, &port), "ctx");
    CHECK_NULL(tw_listener_port(ctx, l, NULL), "out_port");
    CHECK_NULL(tw_listener_local_addr(NULL, l, buf, sizeof buf, &len), "ctx");
    CHECK_NULL(tw_listener_local_addr(ctx, l, NULL, sizeof buf, &len), "buf");
    CHECK_NULL(tw_listener_local_addr(ctx, l, buf, sizeof buf, NULL), "out_len");
    CHECK_NULL(tw_listener_close(NULL, l), "ctx");

    /* Outputs were never written. */
    CHECK(fd == -7 && ms == -7 && count == 77 && n == 77 && len == 77 && port == 77 && c == 77);
    CHECK(sender == (tw_sender *)&fd);
    tw_context_free(ctx);
}

static void connection_functions_refuse_null_before_looking_at_the_id(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    const tw_conn c = 1; /* stale, but the pointers are checked first */
    size_t n = 77;
    bool open = true;
    void *ud = &n;
    char buf[64];
    static const tw_header bad_name = {NULL, "v"};
    static const tw_header bad_value = {"n", NULL};

    CHECK_NULL(tw_conn_send(NULL, c, TW_MESSAGE_TEXT, (const uint8_t *)"x", 1), "ctx");
    CHECK_NULL(tw_conn_send(ctx, c, TW_MESSAGE_TEXT, NULL, 1), "data");
    CHECK_NULL(tw_conn_send_text(NULL, c, "x", 1), "ctx");
    CHECK_NULL(tw_conn_send_text(ctx, c, NULL, 1), "text");
    CHECK_NULL(tw_conn_send_binary(NULL, c, (const uint8_t *)"x", 1), "ctx");
    CHECK_NULL(tw_conn_send_binary(ctx, c, NULL, 1), "data");
    CHECK_NULL(tw_conn_ping(NULL, c, NULL, 0), "ctx");
    CHECK_NULL(tw_conn_ping(ctx, c, NULL, 1), "data");
    CHECK_NULL(tw_conn_close(NULL, c, 1000, NULL, 0), "ctx");
    CHECK_NULL(tw_conn_close(ctx, c, 1000, NULL, 1), "reason");
    CHECK_NULL(tw_conn_begin_message(NULL, c, TW_MESSAGE_TEXT), "ctx");
    CHECK_NULL(tw_conn_send_fragment(NULL, c, NULL, 0, true), "ctx");
    CHECK_NULL(tw_conn_send_fragment(ctx, c, NULL, 1, true), "data");
    CHECK_NULL(tw_conn_buffered_amount(NULL, c, &n), "ctx");
    CHECK_NULL(tw_conn_buffered_amount(ctx, c, NULL), "out_bytes");
    uint64_t us = 0;
    CHECK_NULL(tw_conn_latency(NULL, c, &us, &open), "ctx");
    CHECK_NULL(tw_conn_latency(ctx, c, NULL, &open), "out_us");
    CHECK_NULL(tw_conn_latency(ctx, c, &us, NULL), "out_known");
    CHECK_NULL(tw_conn_is_open(NULL, c, &open), "ctx");
    CHECK_NULL(tw_conn_is_open(ctx, c, NULL), "out_open");
    CHECK_NULL(tw_conn_peer_addr(NULL, c, buf, sizeof buf, &n), "ctx");
    CHECK_NULL(tw_conn_peer_addr(ctx, c, NULL, sizeof buf, &n), "buf");
    CHECK_NULL(tw_conn_peer_addr(ctx, c, buf, sizeof buf, NULL), "out_len");
    CHECK_NULL(tw_conn_send_uncompressed(NULL, c, TW_MESSAGE_TEXT, (const uint8_t *)"x", 1), "ctx");
    CHECK_NULL(tw_conn_send_uncompressed(ctx, c, TW_MESSAGE_TEXT, NULL, 1), "data");
    CHECK_NULL(tw_conn_local_addr(NULL, c, buf, sizeof buf, &n), "ctx");
    CHECK_NULL(tw_conn_local_addr(ctx, c, NULL, sizeof buf, &n), "buf");
    CHECK_NULL(tw_conn_local_addr(ctx, c, buf, sizeof buf, NULL), "out_len");
    CHECK_NULL(tw_conn_pause_reading(NULL, c), "ctx");
    CHECK_NULL(tw_conn_subscribe(NULL, c, NULL, 0, &open), "ctx");
    CHECK_NULL(tw_conn_subscribe(ctx, c, NULL, 1, &open), "topic");
    CHECK_NULL(tw_conn_unsubscribe(NULL, c, NULL, 0, &open), "ctx");
    CHECK_NULL(tw_conn_unsubscribe(ctx, c, NULL, 1, &open), "topic");
    CHECK_NULL(tw_context_publish(NULL, NULL, 0, TW_MESSAGE_TEXT, NULL, 0, NULL), "ctx");
    CHECK_NULL(tw_context_publish(ctx, NULL, 1, TW_MESSAGE_TEXT, NULL, 0, NULL), "topic");
    CHECK_NULL(tw_context_publish(ctx, NULL, 0, TW_MESSAGE_TEXT, NULL, 1, NULL), "data");
    CHECK_NULL(tw_context_broadcast(NULL, NULL, 0, TW_MESSAGE_TEXT, NULL, 0, NULL), "ctx");
    CHECK_NULL(tw_context_broadcast(ctx, NULL, 1, TW_MESSAGE_TEXT, NULL, 0, NULL), "conns");
    CHECK_NULL(tw_context_broadcast(ctx, NULL, 0, TW_MESSAGE_TEXT, NULL, 1, NULL), "data");
    CHECK_NULL(tw_context_subscriber_count(NULL, NULL, 0, &n), "ctx");
    CHECK_NULL(tw_context_subscriber_count(ctx, NULL, 0, NULL), "out_count");
    CHECK_NULL(tw_context_subscriber_count(ctx, NULL, 1, &n), "topic");
    CHECK_NULL(tw_context_topic_count(NULL, &n), "ctx");
    CHECK_NULL(tw_context_topic_count(ctx, NULL), "out_count");
    CHECK_NULL(tw_conn_resume_reading(NULL, c), "ctx");
    CHECK_NULL(tw_conn_is_reading_paused(NULL, c, &open), "ctx");
    CHECK_NULL(tw_conn_is_reading_paused(ctx, c, NULL), "out_paused");
    CHECK_NULL(tw_conn_set_userdata(NULL, c, &n), "ctx");
    CHECK_NULL(tw_conn_userdata(NULL, c, &ud), "ctx");
    CHECK_NULL(tw_conn_userdata(ctx, c, NULL), "out_userdata");
    CHECK_NULL(tw_conn_accept(NULL, c, NULL, NULL, 0), "ctx");
    CHECK_NULL(tw_conn_accept(ctx, c, NULL, NULL, 1), "headers");
    CHECK_NULL(tw_conn_accept(ctx, c, NULL, &bad_name, 1), "headers[].name");
    CHECK_NULL(tw_conn_accept(ctx, c, NULL, &bad_value, 1), "headers[].value");
    CHECK_NULL(tw_conn_reject(NULL, c, 403, NULL, 0, NULL, 0), "ctx");
    CHECK_NULL(tw_conn_reject(ctx, c, 403, NULL, 2, NULL, 0), "headers");
    CHECK_NULL(tw_conn_reject(ctx, c, 403, NULL, 0, NULL, 5), "body");
    CHECK_NULL(tw_conn_respond(NULL, c, 200, NULL, 0, NULL, 0), "ctx");
    CHECK_NULL(tw_conn_respond(ctx, c, 200, &bad_name, 1, NULL, 0), "headers[].name");
    CHECK_NULL(tw_conn_respond(ctx, c, 200, NULL, 0, NULL, 5), "body");

    /* NULL with length 0 is an empty payload, not a missing one. */
    CHECK_STATUS(tw_conn_send_binary(ctx, c, NULL, 0), TW_STATUS_STALE_ID);
    CHECK(n == 77 && open && ud == &n);
    tw_context_free(ctx);
}

static void sender_functions_refuse_null(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_sender *s = NULL;
    CHECK_OK(tw_context_sender(ctx, &s));
    CHECK_NULL(tw_sender_send_text(NULL, 1, "x", 1), "sender");
    CHECK_NULL(tw_sender_send_text(s, 1, NULL, 1), "text");
    CHECK_NULL(tw_sender_send_binary(NULL, 1, (const uint8_t *)"x", 1), "sender");
    CHECK_NULL(tw_sender_send_binary(s, 1, NULL, 1), "data");
    CHECK_NULL(tw_sender_ping(NULL, 1, NULL, 0), "sender");
    CHECK_NULL(tw_sender_ping(s, 1, NULL, 1), "data");
    CHECK_NULL(tw_sender_close(NULL, 1, 1000, NULL, 0), "sender");
    CHECK_NULL(tw_sender_close(s, 1, 1000, NULL, 1), "reason");
    CHECK_NULL(tw_sender_wake(NULL), "sender");
    CHECK_NULL(tw_sender_publish(NULL, NULL, 0, TW_MESSAGE_BINARY, NULL, 0), "sender");
    CHECK_NULL(tw_sender_publish(s, NULL, 1, TW_MESSAGE_BINARY, NULL, 0), "topic");
    CHECK_NULL(tw_sender_publish(s, NULL, 0, TW_MESSAGE_BINARY, NULL, 1), "data");
    tw_sender_free(s);
    tw_context_free(ctx);
}

/* A real request, to give its functions NULL outputs and names. */
static bool on_request(tw_context *ctx, size_t which, const tw_event *ev, void *state) {
    (void)ctx;
    (void)which;
    bool *ok = state;
    if (ev->kind != TW_EVENT_REQUEST) return false;
    const tw_request *r = ev->request;
    tw_bytes b = {NULL, 77}, b2 = {NULL, 77};
    size_t n = 77;
#define NUL(call, arg) (call == TW_STATUS_NULL_ARGUMENT && strstr(tw_last_error(), "`" arg "`") != NULL)
    *ok = NUL(tw_request_method(NULL, &b), "request") && NUL(tw_request_method(r, NULL), "out_method") &&
          NUL(tw_request_path(NULL, &b), "request") && NUL(tw_request_path(r, NULL), "out_path") &&
          NUL(tw_request_query(NULL, &b), "request") && NUL(tw_request_query(r, NULL), "out_query") &&
          NUL(tw_request_header_count(NULL, &n), "request") && NUL(tw_request_header_count(r, NULL), "out_count") &&
          NUL(tw_request_header_at(NULL, 0, &b, &b2), "request") &&
          NUL(tw_request_header_at(r, 0, NULL, &b2), "out_name") &&
          NUL(tw_request_header_at(r, 0, &b, NULL), "out_value") &&
          NUL(tw_request_header(NULL, "Host", &b), "request") && NUL(tw_request_header(r, NULL, &b), "name") &&
          NUL(tw_request_header(r, "Host", NULL), "out_value") &&
          NUL(tw_request_subprotocol_count(NULL, &n), "request") &&
          NUL(tw_request_subprotocol_count(r, NULL), "out_count") &&
          NUL(tw_request_subprotocol_at(NULL, 0, &b), "request") &&
          NUL(tw_request_subprotocol_at(r, 0, NULL), "out_name") && b.len == 77 && b2.len == 77 && n == 77;
#undef NUL
    return true;
}

static void request_functions_refuse_null(void) {
    tw_context *ctx = NULL;
    CHECK_OK(tw_context_new(NULL, &ctx));
    tw_listen_options *lo = NULL;
    CHECK_OK(tw_listen_options_new(&lo));
    CHECK_OK(tw_listen_options_set_handle_requests(lo, true));
    tw_listener l = 0;
    uint16_t port = 0;
    CHECK(tc_listen(ctx, lo, &l, &port));
    tw_listen_options_free(lo);
    char url[64];
    tw_conn c = 0;
    CHECK_OK(tw_context_connect(ctx, tc_url(url, sizeof url, "ws", port, "/"), NULL, &c));
    bool ok = false;
    CHECK(tc_run(&ctx, 1, 8, on_request, &ok, 5000));
    CHECK(ok);
    tw_context_free(ctx);
}

int main(int argc, char **argv) {
    static const struct tr_case cases[] = {
        TR_CASE(config_and_deflate_functions_refuse_null),
        TR_CASE(option_functions_refuse_null),
        TR_CASE(context_listener_and_poll_functions_refuse_null),
        TR_CASE(connection_functions_refuse_null_before_looking_at_the_id),
        TR_CASE(sender_functions_refuse_null),
        TR_CASE(request_functions_refuse_null),
    };
    return tr_run(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
