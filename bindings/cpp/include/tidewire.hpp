// tidewire.hpp: the C++ face of tidewire, a WebSocket library (RFC 6455, RFC 7692) for
// clients and servers, ws:// and wss://, driven by the caller's own loop.
//
// Header-only, C++17 (and later), over the C API of tidewire.h: every function here checks,
// converts and calls one C function; there is no protocol logic in this file.
//
// Conventions:
//
// - Owners are move-only and free their handle in the destructor: Config, DeflateConfig,
//   ListenOptions, ConnectOptions, Context. handle() borrows the C handle, release() gives
//   it up. A moved-from owner holds nothing; using it throws Error (null argument).
// - Connection and Listener are small values (the context's handle and a 64-bit id) whose
//   member functions forward to the context. Copy them freely; they must not outlive their
//   Context. An id that ended (its CloseEvent or terminal ErrorEvent was delivered) gives
//   Error with TW_STATUS_STALE_ID, never undefined behaviour.
// - Errors: one exception type, tidewire::Error, with the tw_status and the library's
//   detail text. Back-pressure and "nothing there" are return values (bool, std::optional);
//   a closed connection is a CloseEvent, never an exception.
// - Views: message payloads, reasons, paths and requests are views (std::string_view,
//   tidewire::Bytes) into the context's memory, valid until the next poll() on that context
//   (or its destruction). Nothing is copied unless you ask (Bytes::to_string, ...).
// - Threads: a Context and everything reached through it belong to one thread at a time.
//   Only Sender (copyable) and Context::stop() may be used from other threads.
//
// Two ways to drive a context, which can be mixed:
//
//     tidewire::Context ctx;
//     auto listener = ctx.listen("127.0.0.1", 0);
//     for (;;) {                                           // 1. a poll loop over events
//         for (const auto& ev : ctx.poll(std::chrono::milliseconds(100))) {
//             if (auto* m = std::get_if<tidewire::MessageEvent>(&ev))
//                 m->conn.send(m->kind, m->data);
//         }
//     }
//
//     ctx.on_message([](const tidewire::MessageEvent& m) { m.conn.send(m.kind, m.data); });
//     ctx.run();                                           // 2. callbacks, until stop()
//
// Callbacks run only inside poll() / run() / shutdown(), on the calling thread. poll()
// invokes the registered callbacks and also returns every event of the cycle.
//
// A host loop (game engine, epoll, libuv) waits on fd() with the deadline of
// next_timeout() and then calls poll(std::chrono::milliseconds(0)), which never blocks.

#ifndef TIDEWIRE_HPP
#define TIDEWIRE_HPP

#if __cplusplus < 201703L
#error "tidewire.hpp needs C++17 or newer (-std=c++17)"
#endif

#include <tidewire.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#if __cplusplus >= 202002L && __has_include(<span>)
#include <span>
#endif

namespace tidewire {

// ---------------------------------------------------------------------------------------
// Status, version, Error
// ---------------------------------------------------------------------------------------

// The C status (an enum with uint32_t underneath in C++): TW_STATUS_OK, TW_STATUS_TLS, ...
using Status = tw_status;

// Static text naming a status ("ok", "stale id", ...).
inline const char *status_str(Status status) noexcept { return tw_status_str(status); }

// The version of the library this program runs with, "MAJOR.MINOR.PATCH".
inline std::string_view version() noexcept { return tw_version(); }

// The one exception of tidewire: a C call failed. status() is its tw_status, detail() the
// library's explanation (tw_last_error() at the time of the failure), what() both with the
// operation: "listen: io: Address already in use (os error 98)".
class Error : public std::runtime_error {
public:
    Error(Status status, std::string_view operation, std::string_view detail)
        : std::runtime_error(format(status, operation, detail)),
          status_(status),
          detail_(detail) {}

    Status status() const noexcept { return status_; }
    const std::string &detail() const noexcept { return detail_; }

private:
    static std::string format(Status status, std::string_view operation, std::string_view detail) {
        std::string text(operation);
        text += ": ";
        text += tw_status_str(status);
        if (!detail.empty()) {
            text += ": ";
            text += detail;
        }
        return text;
    }

    Status status_;
    std::string detail_;
};

// A client connection failed on its way through a proxy: TW_STATUS_PROXY (unreachable,
// refused with an HTTP status, a bad SOCKS reply naming its field, "TLS to the proxy
// failed: ...": detail() says which) or TW_STATUS_PROXY_TIMEOUT (timed_out()). Thrown by
// ErrorEvent::raise() and by any call that fails with one of these statuses; catch it
// before Error.
class ProxyError : public Error {
public:
    ProxyError(Status status, std::string_view operation, std::string_view detail)
        : Error(status, operation, detail) {}

    bool timed_out() const noexcept { return status() == TW_STATUS_PROXY_TIMEOUT; }

    static bool is_proxy_status(Status status) noexcept {
        return status == TW_STATUS_PROXY || status == TW_STATUS_PROXY_TIMEOUT;
    }
};

namespace detail {

// Throws Error (ProxyError for a proxy status) with `detail`.
[[noreturn]] inline void raise(Status status, const char *operation, std::string_view detail) {
    if (ProxyError::is_proxy_status(status)) throw ProxyError(status, operation, detail);
    throw Error(status, operation, detail);
}

// Throws Error for a failed C call, with this thread's detail text.
[[noreturn]] inline void fail(Status status, const char *operation) {
    const char *text = tw_last_error();
    raise(status, operation, text != nullptr ? text : "");
}

inline void check(Status status, const char *operation) {
    if (status != TW_STATUS_OK) fail(status, operation);
}

// A unique_ptr deleter calling the C `_free` function.
template <auto Free>
struct deleter {
    template <class T>
    void operator()(T *p) const noexcept {
        Free(p);
    }
};

template <class T, auto Free>
using owner = std::unique_ptr<T, deleter<Free>>;

inline std::string_view view(tw_bytes b) noexcept {
    if (b.data == nullptr) return {};
    return {reinterpret_cast<const char *>(b.data), b.len};
}

inline std::optional<std::string_view> optional_view(tw_bytes b) noexcept {
    if (b.data == nullptr) return std::nullopt;
    return view(b);
}

// A poll timeout for C: negative waits without limit, longer than int32 is clamped.
inline int32_t poll_ms(std::chrono::milliseconds timeout) noexcept {
    const auto ms = timeout.count();
    if (ms < 0) return -1;
    if (ms > std::numeric_limits<int32_t>::max()) return std::numeric_limits<int32_t>::max();
    return static_cast<int32_t>(ms);
}

// A setting in milliseconds for C; negative durations are refused like C refuses nonsense.
inline uint64_t setting_ms(std::chrono::milliseconds d, const char *operation) {
    if (d.count() < 0) throw Error(TW_STATUS_INVALID_ARGUMENT, operation, "negative duration");
    return static_cast<uint64_t>(d.count());
}

template <class T>
inline constexpr bool is_byte_v = std::is_same_v<T, char> || std::is_same_v<T, signed char> ||
                                  std::is_same_v<T, unsigned char> || std::is_same_v<T, std::byte>;

template <class C, class = void>
struct is_byte_range : std::false_type {};

// Contiguous ranges of bytes (std::string, std::vector<uint8_t>, std::array, std::span,
// uint8_t arrays); char arrays are left to the string_view constructor, so that a string
// literal does not bring its NUL along.
template <class C>
struct is_byte_range<C, std::void_t<decltype(std::data(std::declval<const C &>())),
                                    decltype(std::size(std::declval<const C &>()))>>
    : std::bool_constant<
          is_byte_v<std::remove_cv_t<std::remove_pointer_t<decltype(std::data(std::declval<const C &>()))>>> &&
          !(std::is_array_v<C> && std::is_same_v<std::remove_cv_t<std::remove_extent_t<C>>, char>)> {};

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Bytes, MessageKind, Header
// ---------------------------------------------------------------------------------------

// A borrowed, read-only view of bytes (what std::span<const uint8_t> is in C++20). Built
// from a pointer and a size, a std::string_view or any contiguous range of bytes; events
// hand out Bytes that point into the context's memory (valid until the next poll()).
class Bytes {
public:
    using value_type = uint8_t;
    using const_iterator = const uint8_t *;
    using iterator = const_iterator;

    constexpr Bytes() noexcept = default;
    constexpr Bytes(const uint8_t *data, size_t size) noexcept : data_(data), size_(size) {}
    Bytes(const void *data, size_t size) noexcept : data_(static_cast<const uint8_t *>(data)), size_(size) {}
    Bytes(std::string_view text) noexcept  // NOLINT(google-explicit-constructor): views convert
        : data_(reinterpret_cast<const uint8_t *>(text.data())), size_(text.size()) {}
    Bytes(const char *text) noexcept  // NOLINT(google-explicit-constructor): "literal" without its NUL
        : Bytes(text != nullptr ? std::string_view(text) : std::string_view()) {}
    template <class C, std::enable_if_t<detail::is_byte_range<C>::value, int> = 0>
    Bytes(const C &range) noexcept  // NOLINT(google-explicit-constructor)
        : data_(reinterpret_cast<const uint8_t *>(std::data(range))), size_(std::size(range)) {}

    constexpr const uint8_t *data() const noexcept { return data_; }
    constexpr size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const uint8_t *begin() const noexcept { return data_; }
    constexpr const uint8_t *end() const noexcept { return data_ + size_; }
    constexpr uint8_t operator[](size_t i) const noexcept { return data_[i]; }

    // The same bytes seen as characters (no copy, no UTF-8 check).
    std::string_view as_string_view() const noexcept {
        return {reinterpret_cast<const char *>(data_), size_};
    }
    // Copies, for data that must outlive the next poll().
    std::string to_string() const { return std::string(as_string_view()); }
    std::vector<uint8_t> to_vector() const { return std::vector<uint8_t>(begin(), end()); }

#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
    std::span<const uint8_t> as_span() const noexcept { return {data_, size_}; }
#endif

private:
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

inline bool operator==(Bytes a, Bytes b) noexcept { return a.as_string_view() == b.as_string_view(); }
inline bool operator!=(Bytes a, Bytes b) noexcept { return !(a == b); }

enum class MessageKind : uint32_t {
    text = TW_MESSAGE_TEXT,
    binary = TW_MESSAGE_BINARY,
};

// What Context::publish and broadcast do with a connection that does not keep up (its
// output already holds the listener's slow-subscriber limit): skip it for this message, or
// close it with 1008 (slow_close_code).
enum class SlowAction : uint32_t {
    skip = TW_SLOW_SKIP,
    close = TW_SLOW_CLOSE,
};

// The close code a slow subscriber gets under SlowAction::close.
inline constexpr uint16_t slow_close_code = TW_SLOW_CLOSE_CODE;

// What one Context::publish or broadcast did. Every connection it addressed is counted in
// exactly one of delivered, skipped_slow, closed_slow and not_open.
struct PublishReport {
    size_t delivered = 0;     // queued or written
    size_t skipped_slow = 0;  // slow, missed the message (SlowAction::skip)
    size_t closed_slow = 0;   // slow, closed with 1008 instead (SlowAction::close)
    size_t not_open = 0;      // not open yet, closing, mid-fragment, or (broadcast) stale
    size_t compressions = 0;  // times the payload was compressed (once per parameter set)
};

// One HTTP header given to the library (accept, reject, respond). Copied during the call.
struct Header {
    std::string_view name;
    std::string_view value;
};

namespace detail {

// The C API takes NUL-terminated header fields: copies of the views, kept for one call.
class c_headers {
public:
    explicit c_headers(const std::vector<Header> &headers) {
        strings_.reserve(headers.size() * 2);
        for (const Header &h : headers) {
            strings_.emplace_back(h.name);
            strings_.emplace_back(h.value);
        }
        fields_.reserve(headers.size());
        for (size_t i = 0; i < headers.size(); ++i) {
            fields_.push_back(tw_header{strings_[2 * i].c_str(), strings_[2 * i + 1].c_str()});
        }
    }
    const tw_header *data() const noexcept { return fields_.empty() ? nullptr : fields_.data(); }
    size_t size() const noexcept { return fields_.size(); }

private:
    std::vector<std::string> strings_;
    std::vector<tw_header> fields_;
};

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Settings: Config, DeflateConfig, ListenOptions, ConnectOptions (move-only owners)
// ---------------------------------------------------------------------------------------

// Settings of a context (limits, timeouts, buffers). Context copies it: one Config may
// serve many contexts. Every setter returns *this, and throws Error for a value the
// library refuses (TW_STATUS_INVALID_ARGUMENT).
class Config {
public:
    Config() {
        tw_config *raw = nullptr;
        detail::check(tw_config_new(&raw), "config");
        handle_.reset(raw);
    }

    tw_config *handle() const noexcept { return handle_.get(); }
    tw_config *release() noexcept { return handle_.release(); }

    Config &max_message_size(size_t bytes) { return set(tw_config_set_max_message_size(h(), bytes), "max_message_size"); }
    Config &max_frame_size(size_t bytes) { return set(tw_config_set_max_frame_size(h(), bytes), "max_frame_size"); }
    Config &max_handshake_bytes(size_t bytes) {
        return set(tw_config_set_max_handshake_bytes(h(), bytes), "max_handshake_bytes");
    }
    Config &max_handshake_headers(size_t count) {
        return set(tw_config_set_max_handshake_headers(h(), count), "max_handshake_headers");
    }
    Config &handshake_timeout(std::chrono::milliseconds d) {
        return set(tw_config_set_handshake_timeout_ms(h(), detail::setting_ms(d, "handshake_timeout")),
                   "handshake_timeout");
    }
    Config &connect_timeout(std::chrono::milliseconds d) {
        return set(tw_config_set_connect_timeout_ms(h(), detail::setting_ms(d, "connect_timeout")), "connect_timeout");
    }
    Config &close_timeout(std::chrono::milliseconds d) {
        return set(tw_config_set_close_timeout_ms(h(), detail::setting_ms(d, "close_timeout")), "close_timeout");
    }
    // A keepalive ping after this long without receiving anything; its pong also measures
    // Connection::latency. Default 20 s; 0 turns it off.
    Config &ping_interval(std::chrono::milliseconds d) {
        return set(tw_config_set_ping_interval_ms(h(), detail::setting_ms(d, "ping_interval")), "ping_interval");
    }
    // Drops a connection (CloseEvent with 1006) after this long without receiving anything.
    // Default 60 s; 0 turns it off.
    Config &idle_timeout(std::chrono::milliseconds d) {
        return set(tw_config_set_idle_timeout_ms(h(), detail::setting_ms(d, "idle_timeout")), "idle_timeout");
    }
    Config &high_water_mark(size_t bytes) { return set(tw_config_set_high_water_mark(h(), bytes), "high_water_mark"); }
    Config &low_water_mark(size_t bytes) { return set(tw_config_set_low_water_mark(h(), bytes), "low_water_mark"); }
    Config &max_buffered(size_t bytes) { return set(tw_config_set_max_buffered(h(), bytes), "max_buffered"); }
    Config &max_connections(size_t count) { return set(tw_config_set_max_connections(h(), count), "max_connections"); }
    Config &receive_buffer_size(size_t bytes) {
        return set(tw_config_set_receive_buffer_size(h(), bytes), "receive_buffer_size");
    }
    Config &sender_queue_limit(size_t bytes) {
        return set(tw_config_set_sender_queue_limit(h(), bytes), "sender_queue_limit");
    }
    Config &resolver_threads(size_t count) { return set(tw_config_set_resolver_threads(h(), count), "resolver_threads"); }

private:
    tw_config *h() const noexcept { return handle_.get(); }
    Config &set(Status status, const char *operation) {
        detail::check(status, operation);
        return *this;
    }

    detail::owner<tw_config, tw_config_free> handle_;
};

// permessage-deflate settings (defaults: enabled, level 1). ListenOptions and
// ConnectOptions copy them.
class DeflateConfig {
public:
    DeflateConfig() {
        tw_deflate_config *raw = nullptr;
        detail::check(tw_deflate_config_new(&raw), "deflate_config");
        handle_.reset(raw);
    }

    tw_deflate_config *handle() const noexcept { return handle_.get(); }
    tw_deflate_config *release() noexcept { return handle_.release(); }

    DeflateConfig &enabled(bool on) { return set(tw_deflate_config_set_enabled(h(), on), "deflate enabled"); }
    DeflateConfig &level(uint32_t level) { return set(tw_deflate_config_set_level(h(), level), "deflate level"); }
    DeflateConfig &mem_level(uint8_t level) {
        return set(tw_deflate_config_set_mem_level(h(), level), "deflate mem_level");
    }
    DeflateConfig &threshold(size_t bytes) {
        return set(tw_deflate_config_set_threshold(h(), bytes), "deflate threshold");
    }
    // 8 to 15, or 0 for "not set".
    DeflateConfig &server_max_window_bits(uint8_t bits) {
        return set(tw_deflate_config_set_server_max_window_bits(h(), bits), "server_max_window_bits");
    }
    DeflateConfig &client_max_window_bits(uint8_t bits) {
        return set(tw_deflate_config_set_client_max_window_bits(h(), bits), "client_max_window_bits");
    }
    DeflateConfig &server_no_context_takeover(bool on) {
        return set(tw_deflate_config_set_server_no_context_takeover(h(), on), "server_no_context_takeover");
    }
    DeflateConfig &client_no_context_takeover(bool on) {
        return set(tw_deflate_config_set_client_no_context_takeover(h(), on), "client_no_context_takeover");
    }

private:
    tw_deflate_config *h() const noexcept { return handle_.get(); }
    DeflateConfig &set(Status status, const char *operation) {
        detail::check(status, operation);
        return *this;
    }

    detail::owner<tw_deflate_config, tw_deflate_config_free> handle_;
};

// Options of one listener (TLS, subprotocols, origins, request handling, compression).
// Context::listen copies them.
class ListenOptions {
public:
    ListenOptions() {
        tw_listen_options *raw = nullptr;
        detail::check(tw_listen_options_new(&raw), "listen_options");
        handle_.reset(raw);
    }

    tw_listen_options *handle() const noexcept { return handle_.get(); }
    tw_listen_options *release() noexcept { return handle_.release(); }

    ListenOptions &reuse_port(bool on) { return set(tw_listen_options_set_reuse_port(h(), on), "reuse_port"); }
    ListenOptions &backlog(uint32_t backlog) { return set(tw_listen_options_set_backlog(h(), backlog), "backlog"); }
    // Limits per peer address (IPv6 by /64); 0 means no limit. A connection over one is
    // closed right after accept, before anything is read: no answer, no event. Defaults:
    // connections per address none, handshakes in progress 4096 per address and 16384 in
    // all, connection rate none.
    ListenOptions &max_connections_per_address(size_t count) {
        return set(tw_listen_options_set_max_connections_per_address(h(), count), "max_connections_per_address");
    }
    ListenOptions &max_handshakes_per_address(size_t count) {
        return set(tw_listen_options_set_max_handshakes_per_address(h(), count), "max_handshakes_per_address");
    }
    ListenOptions &max_handshakes(size_t count) {
        return set(tw_listen_options_set_max_handshakes(h(), count), "max_handshakes");
    }
    // New connections per address: a bucket of `burst`, refilled at `per_second` (0: off).
    ListenOptions &connection_rate(double per_second, uint32_t burst) {
        return set(tw_listen_options_set_connection_rate(h(), per_second, burst), "connection_rate");
    }
    // wss:// with a certificate chain (leaf first) and its key, PEM text in memory.
    ListenOptions &tls_pem(Bytes cert_pem, Bytes key_pem) {
        return set(tw_listen_options_set_tls_pem(h(), cert_pem.data(), cert_pem.size(), key_pem.data(), key_pem.size()),
                   "tls_pem");
    }
    // wss:// with a certificate chain and key read from PEM files (reads them now).
    ListenOptions &tls_pem_files(const std::string &cert_path, const std::string &key_path) {
        return set(tw_listen_options_set_tls_pem_files(h(), cert_path.c_str(), key_path.c_str()), "tls_pem_files");
    }
    ListenOptions &add_subprotocol(const std::string &name) {
        return set(tw_listen_options_add_subprotocol(h(), name.c_str()), "add_subprotocol");
    }
    ListenOptions &add_allowed_origin(const std::string &origin) {
        return set(tw_listen_options_add_allowed_origin(h(), origin.c_str()), "add_allowed_origin");
    }
    // Refuse (400) a client that offers none of the subprotocols added.
    ListenOptions &require_subprotocol(bool on) {
        return set(tw_listen_options_set_require_subprotocol(h(), on), "require_subprotocol");
    }
    // With allowed origins, refuse (403) a request without Origin.
    ListenOptions &require_origin(bool on) {
        return set(tw_listen_options_set_require_origin(h(), on), "require_origin");
    }
    // Deliver each upgrade request as RequestEvent, answered by Connection::accept/reject.
    ListenOptions &handle_requests(bool on) {
        return set(tw_listen_options_set_handle_requests(h(), on), "handle_requests");
    }
    // Deliver plain HTTP requests as HttpRequestEvent, answered by Connection::respond.
    ListenOptions &handle_http(bool on) { return set(tw_listen_options_set_handle_http(h(), on), "handle_http"); }
    // What publish and broadcast do with a connection of this listener whose output holds
    // `limit` bytes or more (at least 1; default 1 MiB, SlowAction::skip).
    ListenOptions &slow_subscriber(size_t limit, SlowAction action) {
        return set(tw_listen_options_set_slow_subscriber(h(), limit, static_cast<uint32_t>(action)), "slow_subscriber");
    }
    // Accept permessage-deflate when a client offers it.
    ListenOptions &deflate(const DeflateConfig &config) {
        return set(tw_listen_options_set_deflate(h(), config.handle()), "deflate");
    }

private:
    tw_listen_options *h() const noexcept { return handle_.get(); }
    ListenOptions &set(Status status, const char *operation) {
        detail::check(status, operation);
        return *this;
    }

    detail::owner<tw_listen_options, tw_listen_options_free> handle_;
};

// How a client connection reconnects (ConnectOptions::reconnect): exponential backoff with
// full jitter, each delay drawn from 0 to initial_delay * 2^(attempt-1), at most max_delay;
// max_attempts attempts in a row (0: unlimited); a connection that stayed open reset_after
// starts again at attempt 1. Retried: network failures, timeouts, a 5xx or 429 answer
// (honouring Retry-After), an open connection that ended without the application closing
// it. Never: a 4xx, a TLS failure, the application's own close. The ranges are the C
// library's (tw_connect_options_set_reconnect).
struct ReconnectPolicy {
    std::chrono::milliseconds initial_delay{1000};
    std::chrono::milliseconds max_delay{30000};
    uint32_t max_attempts = 0;
    std::chrono::milliseconds reset_after{10000};
};

// ConnectOptions::proxy without a URL: read the environment (the default), or none.
enum class ProxyMode { environment, direct };

// Options of client connections (headers, subprotocols, TLS trust, compression, proxy).
// Context::connect copies what it needs; one object may serve many connects.
class ConnectOptions {
public:
    ConnectOptions() {
        tw_connect_options *raw = nullptr;
        detail::check(tw_connect_options_new(&raw), "connect_options");
        handle_.reset(raw);
    }

    tw_connect_options *handle() const noexcept { return handle_.get(); }
    tw_connect_options *release() noexcept { return handle_.release(); }

    ConnectOptions &add_header(const std::string &name, const std::string &value) {
        return set(tw_connect_options_add_header(h(), name.c_str(), value.c_str()), "add_header");
    }
    ConnectOptions &origin(const std::string &origin) {
        return set(tw_connect_options_set_origin(h(), origin.c_str()), "origin");
    }
    // Connect from this local IP address (an IPv4 or IPv6 literal); throws Error
    // (TW_STATUS_INVALID_ARGUMENT) for anything else.
    ConnectOptions &local_address(const std::string &address) {
        return set(tw_connect_options_set_local_address(h(), address.c_str()), "local_address");
    }
    // Which proxy connections go through, as tw_connect_options_set_proxy:
    // ProxyMode::environment (the default: no_proxy, then wss_proxy/https_proxy or
    // ws_proxy/http_proxy, then all_proxy, lower case before upper case),
    // ProxyMode::direct (no proxy whatever the environment says), or a proxy URL:
    // http://[user:password@]host:port, https://... (TLS to the proxy, trusting what these
    // options trust), socks5://... (the target resolved here), socks5h://... (resolved by
    // the proxy); "" is direct. Throws Error (TW_STATUS_INVALID_ARGUMENT) for a URL that
    // is not a usable proxy. A failing proxy ends the connection with an ErrorEvent of
    // status TW_STATUS_PROXY or TW_STATUS_PROXY_TIMEOUT (raise() throws it as ProxyError).
    ConnectOptions &proxy(ProxyMode mode) {
        return set(tw_connect_options_set_proxy(h(), mode == ProxyMode::direct ? "" : nullptr), "proxy");
    }
    ConnectOptions &proxy(const std::string &url) {
        return set(tw_connect_options_set_proxy(h(), url.c_str()), "proxy");
    }
    ConnectOptions &add_subprotocol(const std::string &name) {
        return set(tw_connect_options_add_subprotocol(h(), name.c_str()), "add_subprotocol");
    }
    // 0 means the context's setting.
    ConnectOptions &connect_timeout(std::chrono::milliseconds d) {
        return set(tw_connect_options_set_connect_timeout_ms(h(), detail::setting_ms(d, "connect_timeout")),
                   "connect_timeout");
    }
    // Reconnect after a retryable failure or end (see ReconnectPolicy). The connection keeps
    // its id (and user data) across attempts; each attempt is a ReconnectingEvent.
    ConnectOptions &reconnect(const ReconnectPolicy &policy) {
        if (policy.initial_delay.count() <= 0) {
            throw Error(TW_STATUS_INVALID_ARGUMENT, "reconnect", "initial_delay must be positive");
        }
        return set(tw_connect_options_set_reconnect(h(), detail::setting_ms(policy.initial_delay, "reconnect"),
                                                    detail::setting_ms(policy.max_delay, "reconnect"),
                                                    policy.max_attempts,
                                                    detail::setting_ms(policy.reset_after, "reconnect")),
                   "reconnect");
    }
    // Turns reconnecting off again (the default).
    ConnectOptions &no_reconnect() { return set(tw_connect_options_set_reconnect(h(), 0, 0, 0, 0), "reconnect"); }
    // Offer permessage-deflate.
    ConnectOptions &deflate(const DeflateConfig &config) {
        return set(tw_connect_options_set_deflate(h(), config.handle()), "deflate");
    }
    ConnectOptions &tls_use_system_roots(bool on) {
        return set(tw_connect_options_set_tls_use_system_roots(h(), on), "tls_use_system_roots");
    }
    // Trust the CA certificates in this PEM text as well.
    ConnectOptions &add_tls_ca_pem(Bytes pem) {
        return set(tw_connect_options_add_tls_ca_pem(h(), pem.data(), pem.size()), "add_tls_ca_pem");
    }
    ConnectOptions &tls_ca_file(const std::string &path) {
        return set(tw_connect_options_set_tls_ca_file(h(), path.c_str()), "tls_ca_file");
    }
    // Builds the TLS setup now instead of at the first wss:// connect.
    ConnectOptions &prepare_tls() { return set(tw_connect_options_prepare_tls(h()), "prepare_tls"); }
    // Dangerous: accept any server certificate for any name (tests only).
    ConnectOptions &dangerous_skip_verification(bool on) {
        return set(tw_connect_options_dangerous_skip_verification(h(), on), "dangerous_skip_verification");
    }

private:
    tw_connect_options *h() const noexcept { return handle_.get(); }
    ConnectOptions &set(Status status, const char *operation) {
        detail::check(status, operation);
        return *this;
    }

    detail::owner<tw_connect_options, tw_connect_options_free> handle_;
};

// ---------------------------------------------------------------------------------------
// Connection, Listener, Request (non-owning values)
// ---------------------------------------------------------------------------------------

// A connection of a context: the context's handle and the connection's id. Every member
// forwards to the context (on its thread). Sends copy the data, so it may be a view into an
// event of the current poll.
class Connection {
public:
    constexpr Connection() noexcept = default;
    // Wraps a connection id of a context (for ids obtained from the C API).
    constexpr Connection(tw_context *ctx, tw_conn id) noexcept : ctx_(ctx), id_(id) {}

    constexpr tw_conn id() const noexcept { return id_; }
    constexpr tw_context *context_handle() const noexcept { return ctx_; }
    // False for the empty connection (events that are not about one).
    constexpr explicit operator bool() const noexcept { return id_ != 0; }

    // Queues a message. Returns true when the output buffer is under its high-water mark,
    // false when it is above (the message is queued all the same: stop sending to this
    // connection until its WritableEvent). Throws Error when the message was not queued:
    // TW_STATUS_NOT_OPEN (not open yet, or closing), TW_STATUS_BUFFER_FULL (the hard cap),
    // TW_STATUS_STALE_ID, TW_STATUS_INVALID_UTF8, TW_STATUS_MESSAGE_IN_PROGRESS.
    bool send_text(std::string_view text) const {
        return sent(tw_conn_send_text(ctx_, id_, text.data(), text.size()), "send_text");
    }
    bool send_binary(Bytes data) const {
        return sent(tw_conn_send_binary(ctx_, id_, data.data(), data.size()), "send_binary");
    }
    bool send(MessageKind kind, Bytes data) const {
        return sent(tw_conn_send(ctx_, id_, static_cast<uint32_t>(kind), data.data(), data.size()), "send");
    }
    // A ping with up to 125 bytes; the answer comes as PongEvent. Returns as send_text.
    bool ping(Bytes data = {}) const { return sent(tw_conn_ping(ctx_, id_, data.data(), data.size()), "ping"); }

    // Starts the closing handshake (1000 normal, 1001 going away, 3000-4999 for
    // applications; reason up to 123 bytes of UTF-8). The connection ends with its
    // CloseEvent. Returns false when it was already closing. A connection not open yet is
    // dropped instead and ends with an ErrorEvent (TW_STATUS_ABORTED).
    bool close(uint16_t code = 1000, std::string_view reason = {}) const {
        const Status s = tw_conn_close(ctx_, id_, code, reason.data(), reason.size());
        if (s == TW_STATUS_NOT_OPEN) return false;
        detail::check(s, "close");
        return true;
    }

    // A message sent in pieces: begin_message, then send_fragment(..., fin) until fin.
    void begin_message(MessageKind kind) const {
        detail::check(tw_conn_begin_message(ctx_, id_, static_cast<uint32_t>(kind)), "begin_message");
    }
    bool send_fragment(Bytes data, bool fin) const {
        return sent(tw_conn_send_fragment(ctx_, id_, data.data(), data.size(), fin), "send_fragment");
    }

    // Writes what is queued now instead of at the next poll (a request/response exchange
    // that should not wait for the end of the frame). True: everything went out and poll
    // has nothing left to do for this connection; false: call poll soon.
    bool flush() const {
        bool done = false;
        detail::check(tw_conn_flush(ctx_, id_, &done), "flush");
        return done;
    }
    // Stops reading from the connection (receive-side back-pressure): nothing more is
    // received, the kernel's buffer fills and TCP slows the peer down, until
    // resume_reading. Sending and timers go on. Throws Error (TW_STATUS_NOT_OPEN,
    // TW_STATUS_STALE_ID).
    void pause_reading() const { detail::check(tw_conn_pause_reading(ctx_, id_), "pause_reading"); }
    // Reads again from a paused connection; what arrived meanwhile comes with the next poll.
    void resume_reading() const { detail::check(tw_conn_resume_reading(ctx_, id_), "resume_reading"); }
    bool is_reading_paused() const {
        bool paused = false;
        detail::check(tw_conn_is_reading_paused(ctx_, id_, &paused), "is_reading_paused");
        return paused;
    }
    // Bytes queued for the peer and not yet written.
    size_t buffered_amount() const {
        size_t n = 0;
        detail::check(tw_conn_buffered_amount(ctx_, id_, &n), "buffered_amount");
        return n;
    }
    // The last round-trip time measured, from the pong of a keepalive ping or of one of
    // the latest few ping() calls (from when the ping was queued to the poll that read its
    // pong); std::nullopt before the first measurement.
    std::optional<std::chrono::microseconds> latency() const {
        uint64_t us = 0;
        bool known = false;
        detail::check(tw_conn_latency(ctx_, id_, &us, &known), "latency");
        if (!known) return std::nullopt;
        return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(us));
    }
    // Stops reconnecting (ConnectOptions::reconnect): an open connection stays open and its
    // end becomes final; one waiting for its next attempt ends with an ErrorEvent
    // (TW_STATUS_ABORTED) at the next poll. close() stops reconnecting as well.
    void stop_reconnecting() const { detail::check(tw_conn_stop_reconnecting(ctx_, id_), "stop_reconnecting"); }
    // Handshake done and no close frame sent or received.
    bool is_open() const {
        bool open = false;
        detail::check(tw_conn_is_open(ctx_, id_, &open), "is_open");
        return open;
    }
    // "127.0.0.1:50312" or "[::1]:50312".
    std::string peer_address() const {
        char buf[64];
        size_t len = 0;
        detail::check(tw_conn_peer_addr(ctx_, id_, buf, sizeof buf, &len), "peer_address");
        return std::string(buf, len);
    }

    // The caller's pointer, handed back in every later event about this connection (for
    // the last time in its CloseEvent or terminal ErrorEvent). Never freed by tidewire.
    void set_userdata(void *userdata) const {
        detail::check(tw_conn_set_userdata(ctx_, id_, userdata), "set_userdata");
    }
    void *userdata() const {
        void *p = nullptr;
        detail::check(tw_conn_userdata(ctx_, id_, &p), "userdata");
        return p;
    }

    // Answers a RequestEvent: accept with a subprotocol the client offered (empty: none)
    // and extra response headers; the OpenEvent follows with the next poll.
    void accept(std::string_view subprotocol = {}, const std::vector<Header> &headers = {}) const {
        const std::string proto(subprotocol);
        const detail::c_headers h(headers);
        detail::check(tw_conn_accept(ctx_, id_, subprotocol.empty() ? nullptr : proto.c_str(), h.data(), h.size()),
                      "accept");
    }
    // Answers a RequestEvent with an HTTP error status; no further event comes for it.
    void reject(uint16_t status, const std::vector<Header> &headers = {}, Bytes body = {}) const {
        const detail::c_headers h(headers);
        detail::check(tw_conn_reject(ctx_, id_, status, h.data(), h.size(), body.data(), body.size()), "reject");
    }
    // Answers an HttpRequestEvent (Content-Length is added); no further event comes for it.
    void respond(uint16_t status, const std::vector<Header> &headers = {}, Bytes body = {}) const {
        const detail::c_headers h(headers);
        detail::check(tw_conn_respond(ctx_, id_, status, h.data(), h.size(), body.data(), body.size()), "respond");
    }

    friend constexpr bool operator==(Connection a, Connection b) noexcept {
        return a.ctx_ == b.ctx_ && a.id_ == b.id_;
    }
    friend constexpr bool operator!=(Connection a, Connection b) noexcept { return !(a == b); }
    friend bool operator<(Connection a, Connection b) noexcept {
        return a.ctx_ != b.ctx_ ? std::less<tw_context *>()(a.ctx_, b.ctx_) : a.id_ < b.id_;
    }

private:
    static bool sent(Status status, const char *operation) {
        if (status == TW_STATUS_OK) return true;
        if (status == TW_STATUS_AGAIN) return false;
        detail::fail(status, operation);
    }

    tw_context *ctx_ = nullptr;
    tw_conn id_ = 0;
};

// A listening socket of a context.
class Listener {
public:
    constexpr Listener() noexcept = default;
    constexpr Listener(tw_context *ctx, tw_listener id) noexcept : ctx_(ctx), id_(id) {}

    constexpr tw_listener id() const noexcept { return id_; }
    constexpr tw_context *context_handle() const noexcept { return ctx_; }
    constexpr explicit operator bool() const noexcept { return id_ != 0; }

    // The port it is bound to (the real one when 0 was asked).
    uint16_t port() const {
        uint16_t port = 0;
        detail::check(tw_listener_port(ctx_, id_, &port), "listener port");
        return port;
    }
    // "127.0.0.1:9001" or "[::1]:9001".
    std::string local_address() const {
        char buf[64];
        size_t len = 0;
        detail::check(tw_listener_local_addr(ctx_, id_, buf, sizeof buf, &len), "listener local_address");
        return std::string(buf, len);
    }
    // Stops accepting; accepted connections go on. The id is stale afterwards.
    void close() const { detail::check(tw_listener_close(ctx_, id_), "listener close"); }

    friend constexpr bool operator==(Listener a, Listener b) noexcept { return a.ctx_ == b.ctx_ && a.id_ == b.id_; }
    friend constexpr bool operator!=(Listener a, Listener b) noexcept { return !(a == b); }
    friend bool operator<(Listener a, Listener b) noexcept {
        return a.ctx_ != b.ctx_ ? std::less<tw_context *>()(a.ctx_, b.ctx_) : a.id_ < b.id_;
    }

private:
    tw_context *ctx_ = nullptr;
    tw_listener id_ = 0;
};

// An HTTP request (upgrade or plain) borrowed from the current poll: it and every view read
// from it are valid until the next poll() on the context that delivered it.
class Request {
public:
    constexpr Request() noexcept = default;
    constexpr explicit Request(const tw_request *request) noexcept : request_(request) {}

    constexpr const tw_request *handle() const noexcept { return request_; }

    std::string_view method() const { return get(tw_request_method, "request method"); }
    // The target up to '?'.
    std::string_view path() const { return get(tw_request_path, "request path"); }
    // What follows the first '?', or nullopt when there is none.
    std::optional<std::string_view> query() const {
        tw_bytes b{nullptr, 0};
        detail::check(tw_request_query(request_, &b), "request query");
        return detail::optional_view(b);
    }
    // The first header called `name` (ASCII case-insensitive), or nullopt.
    std::optional<std::string_view> header(const char *name) const {
        tw_bytes b{nullptr, 0};
        const Status s = tw_request_header(request_, name, &b);
        if (s == TW_STATUS_NOT_FOUND) return std::nullopt;
        detail::check(s, "request header");
        return detail::view(b);
    }
    std::optional<std::string_view> header(const std::string &name) const { return header(name.c_str()); }
    // Every header field in the order received (the vector is a copy of the views).
    std::vector<Header> headers() const {
        size_t n = 0;
        detail::check(tw_request_header_count(request_, &n), "request headers");
        std::vector<Header> out;
        out.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            tw_bytes name{nullptr, 0}, value{nullptr, 0};
            detail::check(tw_request_header_at(request_, i, &name, &value), "request headers");
            out.push_back(Header{detail::view(name), detail::view(value)});
        }
        return out;
    }
    // The subprotocols the client offered, in its order of preference.
    std::vector<std::string_view> subprotocols() const {
        size_t n = 0;
        detail::check(tw_request_subprotocol_count(request_, &n), "request subprotocols");
        std::vector<std::string_view> out;
        out.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            tw_bytes name{nullptr, 0};
            detail::check(tw_request_subprotocol_at(request_, i, &name), "request subprotocols");
            out.push_back(detail::view(name));
        }
        return out;
    }

private:
    std::string_view get(Status (*fn)(const tw_request *, tw_bytes *), const char *operation) const {
        tw_bytes b{nullptr, 0};
        detail::check(fn(request_, &b), operation);
        return detail::view(b);
    }

    const tw_request *request_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------
// Every view in an event is valid until the next poll() on its context. `userdata` is the
// pointer attached with Connection::set_userdata (or nullptr).

// The opening handshake completed (server side: `listener` is set; client side: it is empty).
struct OpenEvent {
    Connection conn;
    Listener listener;
    std::optional<std::string_view> subprotocol;  // the selected one, if any
    std::optional<std::string_view> extensions;   // negotiated Sec-WebSocket-Extensions
    std::string_view path;
    void *userdata = nullptr;
};

// A whole message; text is valid UTF-8.
struct MessageEvent {
    Connection conn;
    MessageKind kind = MessageKind::binary;
    Bytes data;
    void *userdata = nullptr;

    bool is_text() const noexcept { return kind == MessageKind::text; }
    std::string_view text() const noexcept { return data.as_string_view(); }
};

// Terminal: the connection is over. Close is never an error: `code` is the peer's (1005 when
// it sent none), the one we failed the connection with (1002, 1007, 1009, ...), or 1006
// when the transport ended without a close frame.
struct CloseEvent {
    Connection conn;
    uint16_t code = 0;
    std::string_view reason;
    bool clean = false;  // the closing handshake completed
    void *userdata = nullptr;
    // `code` and `reason` are the peer's (false: ours, e.g. we failed the connection because
    // the peer broke the protocol, or 1006).
    bool remote = false;
};

// Something failed. With `conn`: terminal, the connection never opened (`http_status` is
// set when the server answered the upgrade with another status). With `listener` only: a
// report, the listener goes on.
struct ErrorEvent {
    Connection conn;
    Listener listener;
    Status status = TW_STATUS_OK;
    std::string_view message;
    uint16_t http_status = 0;
    void *userdata = nullptr;

    // A proxy failed (TW_STATUS_PROXY, TW_STATUS_PROXY_TIMEOUT).
    bool is_proxy_error() const noexcept { return ProxyError::is_proxy_status(status); }
    // Throws this failure: ProxyError for a proxy status, Error otherwise (detail() is
    // `message`).
    [[noreturn]] void raise(const char *operation = "connect") const { detail::raise(status, operation, message); }
};

// An upgrade request on a listener with handle_requests, that passed the listener's Origin
// and subprotocol rules: answer with conn.accept() (usually with `subprotocol`, what the
// rules selected; empty: none) or conn.reject().
struct RequestEvent {
    Connection conn;
    Listener listener;
    Request request;
    void *userdata = nullptr;
    std::string_view subprotocol;
};

// A plain HTTP request on a listener with handle_http: answer with conn.respond().
struct HttpRequestEvent {
    Connection conn;
    Listener listener;
    Request request;
    void *userdata = nullptr;
};

// A ping arrived (the pong is already queued).
struct PingEvent {
    Connection conn;
    Bytes data;
    void *userdata = nullptr;
};

struct PongEvent {
    Connection conn;
    Bytes data;
    void *userdata = nullptr;
};

// The output buffer drained to the low-water mark after a send returned false.
struct WritableEvent {
    Connection conn;
    void *userdata = nullptr;
};

// A command of a Sender could not be applied (connection gone or closing, buffer full,
// invalid payload). Not terminal.
struct SendFailedEvent {
    Connection conn;
    Status status = TW_STATUS_OK;
    std::string_view message;
    void *userdata = nullptr;
};

// Sender::wake() or Context::stop() was called.
struct WakeEvent {};

// A client connection with ConnectOptions::reconnect failed or ended and tries again:
// attempt number `attempt` (1, 2, ... since the last reset) starts after `delay`. Not
// terminal: it comes instead of the CloseEvent or ErrorEvent, `conn` (the same id) stays
// valid and keeps its user data; next comes an OpenEvent, another ReconnectingEvent or a
// terminal ErrorEvent. The cause: `close_code` when an open connection ended (1006 when the
// transport broke; `status` is then TW_STATUS_OK), otherwise `status`, `message` and
// `http_status` as an ErrorEvent would carry them.
struct ReconnectingEvent {
    Connection conn;
    uint32_t attempt = 0;
    std::chrono::milliseconds delay{0};
    Status status = TW_STATUS_OK;
    std::string_view message;
    uint16_t http_status = 0;
    uint16_t close_code = 0;
    void *userdata = nullptr;
};

using Event = std::variant<OpenEvent, MessageEvent, CloseEvent, ErrorEvent, RequestEvent, HttpRequestEvent,
                           PingEvent, PongEvent, WritableEvent, SendFailedEvent, WakeEvent, ReconnectingEvent>;

// For std::visit with lambdas: std::visit(tidewire::overloaded{[](const MessageEvent&) {...},
// [](const auto&) {}}, ev).
template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

// The events of one poll(): a contiguous range, valid until the next poll() on the context.
class Events {
public:
    using value_type = Event;
    using const_iterator = const Event *;
    using iterator = const_iterator;

    constexpr Events() noexcept = default;
    constexpr Events(const Event *first, size_t count) noexcept : first_(first), count_(count) {}

    constexpr const Event *begin() const noexcept { return first_; }
    constexpr const Event *end() const noexcept { return first_ + count_; }
    constexpr size_t size() const noexcept { return count_; }
    constexpr bool empty() const noexcept { return count_ == 0; }
    constexpr const Event &operator[](size_t i) const noexcept { return first_[i]; }

private:
    const Event *first_ = nullptr;
    size_t count_ = 0;
};

namespace detail {

inline std::string_view error_text(tw_bytes b) noexcept {
    std::string_view s = view(b);
    while (!s.empty() && s.back() == '\0') s.remove_suffix(1);  // described as NUL-terminated
    return s;
}

// Appends the C event to `out`; kinds this header does not know (a newer library) are left
// out.
inline void append_event(tw_context *ctx, const tw_event &e, std::vector<Event> &out) {
    const Connection conn(ctx, e.conn);
    const Listener listener(ctx, e.listener);
    const Bytes data(e.data.data, e.data.len);
    switch (e.kind) {
        case TW_EVENT_OPEN:
            out.emplace_back(OpenEvent{conn, listener, optional_view(e.subprotocol),
                             optional_view(e.extensions), view(e.path), e.userdata});
            break;
        case TW_EVENT_MESSAGE:
            out.emplace_back(MessageEvent{conn, static_cast<MessageKind>(e.message_kind), data,
                             e.userdata});
            break;
        case TW_EVENT_CLOSE:
            out.emplace_back(CloseEvent{conn, e.close_code, view(e.data), e.clean, e.userdata, e.remote});
            break;
        case TW_EVENT_ERROR:
            out.emplace_back(ErrorEvent{e.conn != 0 ? conn : Connection(),
                             e.listener != 0 ? listener : Listener(), e.status, error_text(e.data), e.http_status,
                             e.userdata});
            break;
        case TW_EVENT_REQUEST:
            out.emplace_back(RequestEvent{conn, listener, Request(e.request), e.userdata, view(e.subprotocol)});
            break;
        case TW_EVENT_HTTP_REQUEST:
            out.emplace_back(HttpRequestEvent{conn, listener, Request(e.request), e.userdata});
            break;
        case TW_EVENT_PING:
            out.emplace_back(PingEvent{conn, data, e.userdata});
            break;
        case TW_EVENT_PONG:
            out.emplace_back(PongEvent{conn, data, e.userdata});
            break;
        case TW_EVENT_WRITABLE:
            out.emplace_back(WritableEvent{conn, e.userdata});
            break;
        case TW_EVENT_SEND_FAILED:
            out.emplace_back(SendFailedEvent{conn, e.status, error_text(e.data), e.userdata});
            break;
        case TW_EVENT_WAKE:
            out.emplace_back(WakeEvent{});
            break;
        case TW_EVENT_RECONNECTING:
            out.emplace_back(ReconnectingEvent{
                conn, e.attempt,
                std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(e.delay_ms)), e.status,
                error_text(e.data), e.http_status, e.close_code, e.userdata});
            break;
        default:
            break;
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Sender (copyable, thread-safe)
// ---------------------------------------------------------------------------------------

// A handle through which any thread may send to and close the connections of one context.
// Copies share one C sender; all of them may be used at once from any threads. Commands
// are queued and applied by the context's next poll(); one that cannot be applied there
// comes back as SendFailedEvent. A Sender may outlive its Context.
class Sender {
public:
    Sender() noexcept = default;
    // Takes ownership of a sender made by tw_context_sender.
    explicit Sender(tw_sender *owned) : handle_(owned, tw_sender_free) {}

    tw_sender *handle() const noexcept { return handle_.get(); }
    explicit operator bool() const noexcept { return handle_ != nullptr; }

    // Queues a message for `conn` (copied now). Returns false when the sender queue is full
    // (nothing queued; try again later). Throws Error: TW_STATUS_CONTEXT_GONE (the context
    // was destroyed), TW_STATUS_INVALID_UTF8, TW_STATUS_IO.
    bool send_text(Connection conn, std::string_view text) const {
        return queued(tw_sender_send_text(h(), conn.id(), text.data(), text.size()), "sender send_text");
    }
    bool send_binary(Connection conn, Bytes data) const {
        return queued(tw_sender_send_binary(h(), conn.id(), data.data(), data.size()), "sender send_binary");
    }
    bool send(Connection conn, MessageKind kind, Bytes data) const {
        return kind == MessageKind::text ? send_text(conn, data.as_string_view()) : send_binary(conn, data);
    }
    bool ping(Connection conn, Bytes data = {}) const {
        return queued(tw_sender_ping(h(), conn.id(), data.data(), data.size()), "sender ping");
    }
    bool close(Connection conn, uint16_t code = 1000, std::string_view reason = {}) const {
        return queued(tw_sender_close(h(), conn.id(), code, reason.data(), reason.size()), "sender close");
    }
    // Queues a publish to every subscriber of `topic` (Context::publish on the context's
    // thread, during its next poll(); the report is not sent back). Text is checked now.
    // Returns false when the sender queue is full (nothing queued). Throws Error:
    // TW_STATUS_CONTEXT_GONE, TW_STATUS_INVALID_UTF8, TW_STATUS_IO.
    bool publish(Bytes topic, MessageKind kind, Bytes data) const {
        return queued(tw_sender_publish(h(), topic.data(), topic.size(), static_cast<uint32_t>(kind), data.data(),
                                        data.size()),
                      "sender publish");
    }
    // The context's current or next poll() returns soon with a WakeEvent.
    void wake() const { detail::check(tw_sender_wake(h()), "sender wake"); }

private:
    tw_sender *h() const noexcept { return handle_.get(); }
    static bool queued(Status status, const char *operation) {
        if (status == TW_STATUS_OK) return true;
        if (status == TW_STATUS_BUFFER_FULL) return false;
        detail::fail(status, operation);
    }

    std::shared_ptr<tw_sender> handle_;
};

// ---------------------------------------------------------------------------------------
// Context
// ---------------------------------------------------------------------------------------

// The runtime: owns the sockets, TLS state and timers of its listeners and connections,
// and does all I/O inside poll() on the calling thread. Move-only; destroying it closes
// every socket at once (no close handshake: call shutdown() first for a clean end).
class Context {
public:
    template <class E>
    using Callback = std::function<void(const E &)>;

    // How many events one C poll hands over at most (more wait for the next poll).
    static constexpr size_t max_events_per_poll = 256;

    Context() : Context(nullptr) {}
    explicit Context(const Config &config) : Context(config.handle()) {}

    Context(Context &&) noexcept = default;
    Context &operator=(Context &&other) noexcept = default;
    Context(const Context &) = delete;
    Context &operator=(const Context &) = delete;
    ~Context() = default;

    tw_context *handle() const noexcept { return handle_.get(); }

    // Listens on host:port (IP literal or a name resolved now, blocking). Port 0 picks a
    // free one: read it with Listener::port().
    Listener listen(const std::string &host, uint16_t port) { return listen_with(host, port, nullptr); }
    Listener listen(const std::string &host, uint16_t port, const ListenOptions &options) {
        return listen_with(host, port, options.handle());
    }

    // Opens a ws:// or wss:// connection. Returns at once; the OpenEvent, or a terminal
    // ErrorEvent saying what failed, comes from a later poll().
    Connection connect(const std::string &url) { return connect_with(url, nullptr); }
    Connection connect(const std::string &url, const ConnectOptions &options) {
        return connect_with(url, options.handle());
    }

    // Drives the context once: flushes what was sent, waits up to `timeout` for readiness
    // (0: not at all; negative: until something happens), does all ready I/O, runs due
    // timers, invokes the registered callbacks, and returns the events of the cycle (valid
    // until the next poll). If a callback throws, the exception leaves poll() and the next
    // poll() first delivers the rest of that cycle's events (without waiting). Not to be
    // called from inside a callback.
    Events poll(std::chrono::milliseconds timeout) {
        State &st = state("poll");
        if (st.dispatching) throw Error(TW_STATUS_INVALID_ARGUMENT, "poll", "called from inside a callback");
        if (st.next_dispatch < st.events.size()) {
            const size_t from = st.next_dispatch;
            dispatch(st, from);
            return Events(st.events.data() + from, st.events.size() - from);
        }
        size_t n = 0;
        detail::check(tw_poll(handle_.get(), st.raw.data(), st.raw.size(), detail::poll_ms(timeout), &n), "poll");
        st.events.clear();
        for (size_t i = 0; i < n; ++i) detail::append_event(handle_.get(), st.raw[i], st.events);
        st.next_dispatch = 0;
        dispatch(st, 0);
        return Events(st.events.data(), st.events.size());
    }

    // Polls (invoking callbacks) until stop() is called.
    void run() {
        State &st = state("run");
        while (!st.stop_requested.exchange(false, std::memory_order_acq_rel)) {
            poll(std::chrono::milliseconds(-1));
        }
    }

    // Makes run() return after the current cycle. May be called from any thread (it wakes
    // the context), and from callbacks. A stop() with no run() going makes the next run()
    // return at once.
    void stop() noexcept {
        if (!state_) return;
        state_->stop_requested.store(true, std::memory_order_release);
        if (state_->waker != nullptr) (void)tw_sender_wake(state_->waker.get());
    }

    // A new thread-safe Sender for this context.
    Sender sender() const {
        tw_sender *raw = nullptr;
        detail::check(tw_context_sender(handle_.get(), &raw), "sender");
        return Sender(raw);
    }

    // The poller's descriptor, readable when poll(0ms) has work (for host loops).
    int fd() const {
        int fd = -1;
        detail::check(tw_context_fd(handle_.get(), &fd), "fd");
        return fd;
    }
    // How long a host loop may wait on fd() before polling again; nullopt: no deadline.
    std::optional<std::chrono::milliseconds> next_timeout() const {
        int32_t ms = -1;
        detail::check(tw_context_next_timeout_ms(handle_.get(), &ms), "next_timeout");
        if (ms < 0) return std::nullopt;
        return std::chrono::milliseconds(ms);
    }

    // Connections of every kind (connecting, open, closing) the context holds.
    size_t connection_count() const {
        size_t n = 0;
        detail::check(tw_context_connection_count(handle_.get(), &n), "connection_count");
        return n;
    }

    // Topics: any bytes ("room" or binary); a connection leaves all of its topics when it
    // ends, and a topic exists while it has subscribers. subscribe returns false when `conn`
    // already was subscribed, unsubscribe false when it was not. Both cost a hash lookup.
    // Throws Error (TW_STATUS_STALE_ID).
    bool subscribe(Connection conn, Bytes topic) {
        bool added = false;
        detail::check(tw_conn_subscribe(handle_.get(), conn.id(), topic.data(), topic.size(), &added), "subscribe");
        return added;
    }
    bool unsubscribe(Connection conn, Bytes topic) {
        bool removed = false;
        detail::check(tw_conn_unsubscribe(handle_.get(), conn.id(), topic.data(), topic.size(), &removed),
                      "unsubscribe");
        return removed;
    }
    // Sends one message to every subscriber of `topic`, framed (and compressed) once: O(the
    // subscribers). Slow subscribers are skipped or closed as their listener says
    // (ListenOptions::slow_subscriber); the report counts them. A topic without subscribers
    // is not an error. Throws Error: TW_STATUS_INVALID_UTF8 (nothing was sent).
    PublishReport publish(Bytes topic, MessageKind kind, Bytes data) {
        tw_publish_report r{};
        detail::check(tw_context_publish(handle_.get(), topic.data(), topic.size(), static_cast<uint32_t>(kind),
                                         data.data(), data.size(), &r),
                      "publish");
        return report(r);
    }
    // Sends one message to each of `conns`, as publish does for a topic. Connections that
    // are not open (or ended) are counted in not_open, not refused.
    PublishReport broadcast(const std::vector<Connection> &conns, MessageKind kind, Bytes data) {
        std::vector<tw_conn> ids;
        ids.reserve(conns.size());
        for (const Connection &c : conns) ids.push_back(c.id());
        tw_publish_report r{};
        detail::check(tw_context_broadcast(handle_.get(), ids.data(), ids.size(), static_cast<uint32_t>(kind),
                                           data.data(), data.size(), &r),
                      "broadcast");
        return report(r);
    }
    // Connections subscribed to `topic` (0 when none).
    size_t subscriber_count(Bytes topic) const {
        size_t n = 0;
        detail::check(tw_context_subscriber_count(handle_.get(), topic.data(), topic.size(), &n), "subscriber_count");
        return n;
    }
    // Topics with at least one subscriber.
    size_t topic_count() const {
        size_t n = 0;
        detail::check(tw_context_topic_count(handle_.get(), &n), "topic_count");
        return n;
    }

    // Starts shutting down (listeners stop, close 1001 on open connections, the others are
    // dropped) and returns; keep polling until connection_count() is 0.
    void begin_shutdown(std::chrono::milliseconds grace) {
        detail::check(tw_context_shutdown(handle_.get(), detail::setting_ms(grace, "shutdown")), "shutdown");
    }
    // begin_shutdown(grace), then polls (invoking callbacks) until no connection is left;
    // connections still there after `grace` are dropped (CloseEvent 1006).
    void shutdown(std::chrono::milliseconds grace) {
        begin_shutdown(grace);
        const auto deadline = std::chrono::steady_clock::now() + grace + std::chrono::seconds(1);
        while (connection_count() > 0 && std::chrono::steady_clock::now() < deadline) {
            poll(std::chrono::milliseconds(50));
        }
    }

    // Callbacks, invoked inside poll() / run() / shutdown() on the calling thread, in the
    // order of the events. Registering one replaces the previous of its kind; an empty
    // function removes it. Do not replace the callback that is running.
    Context &on_open(Callback<OpenEvent> fn) { return set(state("on_open").on_open, std::move(fn)); }
    Context &on_message(Callback<MessageEvent> fn) { return set(state("on_message").on_message, std::move(fn)); }
    Context &on_close(Callback<CloseEvent> fn) { return set(state("on_close").on_close, std::move(fn)); }
    Context &on_error(Callback<ErrorEvent> fn) { return set(state("on_error").on_error, std::move(fn)); }
    Context &on_request(Callback<RequestEvent> fn) { return set(state("on_request").on_request, std::move(fn)); }
    Context &on_http_request(Callback<HttpRequestEvent> fn) {
        return set(state("on_http_request").on_http_request, std::move(fn));
    }
    Context &on_ping(Callback<PingEvent> fn) { return set(state("on_ping").on_ping, std::move(fn)); }
    Context &on_pong(Callback<PongEvent> fn) { return set(state("on_pong").on_pong, std::move(fn)); }
    Context &on_writable(Callback<WritableEvent> fn) { return set(state("on_writable").on_writable, std::move(fn)); }
    Context &on_send_failed(Callback<SendFailedEvent> fn) {
        return set(state("on_send_failed").on_send_failed, std::move(fn));
    }
    Context &on_wake(Callback<WakeEvent> fn) { return set(state("on_wake").on_wake, std::move(fn)); }
    Context &on_reconnecting(Callback<ReconnectingEvent> fn) {
        return set(state("on_reconnecting").on_reconnecting, std::move(fn));
    }

private:
    // Everything besides the handle lives on the heap, so that moving a Context moves a
    // pointer: Connection values, callbacks and senders never see it change.
    struct State {
        std::vector<tw_event> raw = std::vector<tw_event>(max_events_per_poll);
        std::vector<Event> events;
        size_t next_dispatch = 0;  // events[next_dispatch..] still owed to the callbacks
        bool dispatching = false;
        std::atomic<bool> stop_requested{false};
        detail::owner<tw_sender, tw_sender_free> waker;  // for stop() from other threads
        Callback<OpenEvent> on_open;
        Callback<MessageEvent> on_message;
        Callback<CloseEvent> on_close;
        Callback<ErrorEvent> on_error;
        Callback<RequestEvent> on_request;
        Callback<HttpRequestEvent> on_http_request;
        Callback<PingEvent> on_ping;
        Callback<PongEvent> on_pong;
        Callback<WritableEvent> on_writable;
        Callback<SendFailedEvent> on_send_failed;
        Callback<WakeEvent> on_wake;
        Callback<ReconnectingEvent> on_reconnecting;
        size_t callbacks = 0;  // how many are set: dispatch is skipped when none
    };

    explicit Context(const tw_config *config) : state_(std::make_unique<State>()) {
        tw_context *raw = nullptr;
        detail::check(tw_context_new(config, &raw), "context");
        handle_.reset(raw);
        tw_sender *waker = nullptr;
        detail::check(tw_context_sender(raw, &waker), "context");
        state_->waker.reset(waker);
        state_->events.reserve(max_events_per_poll);
    }

    State &state(const char *operation) const {
        if (!state_) throw Error(TW_STATUS_NULL_ARGUMENT, operation, "the context was moved from");
        return *state_;
    }

    template <class E>
    Context &set(Callback<E> &slot, Callback<E> fn) {
        if (static_cast<bool>(slot) != static_cast<bool>(fn)) {
            if (fn) {
                ++state_->callbacks;
            } else {
                --state_->callbacks;
            }
        }
        slot = std::move(fn);
        return *this;
    }

    Listener listen_with(const std::string &host, uint16_t port, const tw_listen_options *options) {
        tw_listener id = 0;
        detail::check(tw_context_listen(handle_.get(), host.c_str(), port, options, &id), "listen");
        return Listener(handle_.get(), id);
    }

    static PublishReport report(const tw_publish_report &r) noexcept {
        return PublishReport{r.delivered, r.skipped_slow, r.closed_slow, r.not_open, r.compressions};
    }

    Connection connect_with(const std::string &url, const tw_connect_options *options) {
        tw_conn id = 0;
        detail::check(tw_context_connect(handle_.get(), url.c_str(), options, &id), "connect");
        return Connection(handle_.get(), id);
    }

    template <class E>
    static void call(const Callback<E> &fn, const E &ev) {
        if (fn) fn(ev);
    }

    void dispatch(State &st, size_t from) {
        if (st.callbacks == 0) {
            st.next_dispatch = st.events.size();
            return;
        }
        struct Guard {
            bool &flag;
            explicit Guard(bool &f) : flag(f) { flag = true; }
            ~Guard() { flag = false; }
            Guard(const Guard &) = delete;
            Guard &operator=(const Guard &) = delete;
        } guard(st.dispatching);
        for (size_t i = from; i < st.events.size(); ++i) {
            // Moved on before the call: an event whose callback threw is not delivered twice.
            st.next_dispatch = i + 1;
            std::visit(overloaded{
                           [&](const OpenEvent &e) { call(st.on_open, e); },
                           [&](const MessageEvent &e) { call(st.on_message, e); },
                           [&](const CloseEvent &e) { call(st.on_close, e); },
                           [&](const ErrorEvent &e) { call(st.on_error, e); },
                           [&](const RequestEvent &e) { call(st.on_request, e); },
                           [&](const HttpRequestEvent &e) { call(st.on_http_request, e); },
                           [&](const PingEvent &e) { call(st.on_ping, e); },
                           [&](const PongEvent &e) { call(st.on_pong, e); },
                           [&](const WritableEvent &e) { call(st.on_writable, e); },
                           [&](const SendFailedEvent &e) { call(st.on_send_failed, e); },
                           [&](const WakeEvent &e) { call(st.on_wake, e); },
                           [&](const ReconnectingEvent &e) { call(st.on_reconnecting, e); },
                       },
                       st.events[i]);
        }
    }

    // Declared first, destroyed last: the waker sender in State is freed before the context.
    detail::owner<tw_context, tw_context_free> handle_;
    std::unique_ptr<State> state_;
};


// ---------------------------------------------------------------------------------------
// Every core and several processes: Server, Bus, ClusterOptions, Cluster
// ---------------------------------------------------------------------------------------

// What a cluster status callback hears (see ClusterOptions::on_status).
enum class ClusterStatus : uint32_t {
    connected = TW_CLUSTER_CONNECTED,      // both links to Redis are up, the first time
    interrupted = TW_CLUSTER_INTERRUPTED,  // cross-process delivery stopped (reason says why)
    resumed = TW_CLUSTER_RESUMED,          // both links are up again
};

// Counters of a cluster bridge.
struct ClusterStats {
    uint64_t sent = 0;       // messages this process published to Redis
    uint64_t received = 0;   // messages from other processes handed to this process
    uint64_t dropped = 0;    // messages of this process lost for the others (link down, queue full)
    uint64_t malformed = 0;  // messages on the channel that were not tidewire's
};

// Where Redis is and how to reach it, for Server (ServerOptions::cluster) or Cluster. The
// runtime checks the settings when the bridge starts: a bad URL throws Error with
// TW_STATUS_INVALID_URL from the Server or Cluster constructor.
class ClusterOptions {
public:
    // Runs on a bridge thread (never a worker's), one call at a time; an exception it
    // throws is swallowed. `reason` is empty unless the status is interrupted.
    using StatusCallback = std::function<void(ClusterStatus status, std::string_view reason)>;

    // `url`: redis://[user:password@]host[:port][/db].
    explicit ClusterOptions(const std::string &url) {
        tw_cluster_options *raw = nullptr;
        detail::check(tw_cluster_options_new(&raw), "cluster options");
        handle_.reset(raw);
        detail::check(tw_cluster_options_set_url(raw, url.c_str()), "cluster url");
    }

    tw_cluster_options *handle() const noexcept { return handle_.get(); }

    // The Redis channel of this cluster (default "tidewire").
    ClusterOptions &channel(const std::string &name) {
        detail::check(tw_cluster_options_set_channel(handle_.get(), name.c_str()), "cluster channel");
        return *this;
    }
    // Reconnect delays: random up to `initial`, doubling per failure up to `max`.
    ClusterOptions &backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max) {
        detail::check(tw_cluster_options_set_backoff_ms(handle_.get(), detail::setting_ms(initial, "cluster backoff"),
                                                        detail::setting_ms(max, "cluster backoff")),
                      "cluster backoff");
        return *this;
    }
    ClusterOptions &connect_timeout(std::chrono::milliseconds d) {
        detail::check(tw_cluster_options_set_connect_timeout_ms(
                          handle_.get(), detail::setting_ms(d, "cluster connect_timeout")),
                      "cluster connect_timeout");
        return *this;
    }
    ClusterOptions &queue_limit(size_t messages) {
        detail::check(tw_cluster_options_set_queue_limit(handle_.get(), messages), "cluster queue_limit");
        return *this;
    }
    // Told when cross-process delivery starts, stops and resumes; an empty function: nothing.
    ClusterOptions &on_status(StatusCallback fn) {
        if (fn) {
            status_ = std::make_shared<StatusCallback>(std::move(fn));
            detail::check(tw_cluster_options_set_status_callback(handle_.get(), &trampoline, status_.get()),
                          "cluster on_status");
        } else {
            detail::check(tw_cluster_options_set_status_callback(handle_.get(), nullptr, nullptr), "cluster on_status");
            status_.reset();
        }
        return *this;
    }

    // The callback object the C options point to; whoever starts a bridge keeps it alive.
    const std::shared_ptr<StatusCallback> &status_callback() const noexcept { return status_; }

private:
    static void trampoline(tw_cluster_status status, const char *reason, void *user) noexcept {
        try {
            (*static_cast<StatusCallback *>(user))(static_cast<ClusterStatus>(status),
                                                   reason != nullptr ? reason : "");
        } catch (...) {
        }
    }

    detail::owner<tw_cluster_options, tw_cluster_options_free> handle_;
    std::shared_ptr<StatusCallback> status_;
};

// The bridge of a program that drives its own contexts: other processes' publishes go to the
// given senders (one per context), whose contexts publish them at their next poll(); this
// program publishes locally itself and calls publish() for the others. Move-only;
// destroying it stops its threads.
class Cluster {
public:
    Cluster(const ClusterOptions &options, const std::vector<Sender> &targets) : status_(options.status_callback()) {
        std::vector<const tw_sender *> raw;
        raw.reserve(targets.size());
        for (const Sender &s : targets) raw.push_back(s.handle());
        tw_cluster *c = nullptr;
        detail::check(tw_cluster_new(options.handle(), raw.data(), raw.size(), &c), "cluster");
        handle_.reset(c);
    }

    Cluster(Cluster &&) noexcept = default;
    // The bridge assigned to stops first (its threads still use its callback).
    Cluster &operator=(Cluster &&other) noexcept {
        if (this != &other) {
            handle_.reset();
            status_ = std::move(other.status_);
            handle_ = std::move(other.handle_);
        }
        return *this;
    }
    Cluster(const Cluster &) = delete;
    Cluster &operator=(const Cluster &) = delete;
    ~Cluster() = default;

    tw_cluster *handle() const noexcept { return handle_.get(); }

    // Queues a publish for the other processes. Returns false when the queue is full (the
    // message is dropped and counted). Throws Error: TW_STATUS_INVALID_UTF8.
    bool publish(Bytes topic, MessageKind kind, Bytes data) const {
        const Status s = tw_cluster_publish(handle_.get(), topic.data(), topic.size(), static_cast<uint32_t>(kind),
                                            data.data(), data.size());
        if (s == TW_STATUS_BUFFER_FULL) return false;
        detail::check(s, "cluster publish");
        return true;
    }
    ClusterStats stats() const {
        tw_cluster_stats r{};
        detail::check(tw_cluster_get_stats(handle_.get(), &r), "cluster stats");
        return ClusterStats{r.sent, r.received, r.dropped, r.malformed};
    }
    bool connected() const {
        bool up = false;
        detail::check(tw_cluster_is_connected(handle_.get(), &up), "cluster connected");
        return up;
    }
    uint64_t node_id() const {
        uint64_t id = 0;
        detail::check(tw_cluster_node_id(handle_.get(), &id), "cluster node_id");
        return id;
    }

private:
    // Declared first, destroyed last: the bridge (and its threads) go before the callback.
    std::shared_ptr<ClusterOptions::StatusCallback> status_;
    detail::owner<tw_cluster, tw_cluster_free> handle_;
};

// How a Server is set up: worker threads (0, the default: one per CPU), each worker's
// Config and listener options, and a cluster.
class ServerOptions {
public:
    ServerOptions() {
        tw_server_options *raw = nullptr;
        detail::check(tw_server_options_new(&raw), "server options");
        handle_.reset(raw);
    }

    tw_server_options *handle() const noexcept { return handle_.get(); }

    ServerOptions &threads(size_t n) {
        detail::check(tw_server_options_set_threads(handle_.get(), n), "server threads");
        return *this;
    }
    // Each worker gets its own copy (limits apply per worker).
    ServerOptions &config(const Config &config) {
        detail::check(tw_server_options_set_config(handle_.get(), config.handle()), "server config");
        return *this;
    }
    ServerOptions &listen(const ListenOptions &options) {
        detail::check(tw_server_options_set_listen_options(handle_.get(), options.handle()), "server listen");
        return *this;
    }
    // Joins a cluster of processes over Redis: publishes then reach them too.
    ServerOptions &cluster(const ClusterOptions &options) {
        detail::check(tw_server_options_set_cluster(handle_.get(), options.handle()), "server cluster");
        status_ = options.status_callback();
        return *this;
    }

    const std::shared_ptr<ClusterOptions::StatusCallback> &status_callback() const noexcept { return status_; }

private:
    detail::owner<tw_server_options, tw_server_options_free> handle_;
    std::shared_ptr<ClusterOptions::StatusCallback> status_;
};

// A worker's view, given to the Server handler with each event: this worker's number, its
// context (Connection values in events use it: conn.send_text(...) works as usual) and the
// publish that reaches every worker. Valid during the handler call only, on its thread.
class Bus {
public:
    Bus(tw_context *ctx, const tw_bus *bus) noexcept : ctx_(ctx), bus_(bus) {}

    tw_context *context_handle() const noexcept { return ctx_; }
    const tw_bus *handle() const noexcept { return bus_; }

    // This worker's number, 0 to workers() - 1.
    size_t worker() const {
        size_t i = 0;
        detail::check(tw_bus_worker(bus_, &i, nullptr), "bus worker");
        return i;
    }
    size_t workers() const {
        size_t n = 0;
        detail::check(tw_bus_worker(bus_, nullptr, &n), "bus workers");
        return n;
    }
    // Publishes to every worker (this one now: the report is its own; the others at their
    // next poll) and, with a cluster, to the other processes. Throws Error:
    // TW_STATUS_INVALID_UTF8 (nothing was sent), TW_STATUS_BUFFER_FULL.
    PublishReport publish(Bytes topic, MessageKind kind, Bytes data) const {
        tw_publish_report r{};
        detail::check(tw_bus_publish(bus_, ctx_, topic.data(), topic.size(), static_cast<uint32_t>(kind), data.data(),
                                     data.size(), &r),
                      "bus publish");
        return PublishReport{r.delivered, r.skipped_slow, r.closed_slow, r.not_open, r.compressions};
    }
    // This worker's topics (as Context::subscribe / unsubscribe).
    bool subscribe(Connection conn, Bytes topic) const {
        bool added = false;
        detail::check(tw_conn_subscribe(ctx_, conn.id(), topic.data(), topic.size(), &added), "subscribe");
        return added;
    }
    bool unsubscribe(Connection conn, Bytes topic) const {
        bool removed = false;
        detail::check(tw_conn_unsubscribe(ctx_, conn.id(), topic.data(), topic.size(), &removed), "unsubscribe");
        return removed;
    }
    // Connections of this worker.
    size_t connection_count() const {
        size_t n = 0;
        detail::check(tw_context_connection_count(ctx_, &n), "connection_count");
        return n;
    }

private:
    tw_context *ctx_;
    const tw_bus *bus_;
};

// N event loops on N threads sharing one port (the kernel spreads the connections), with
// publishes that reach every worker and, with a cluster, every process. The handler runs
// on worker thread i for each event of worker i, one at a time per worker and workers in
// parallel: what it shares with other threads must be synchronised. Events and their views
// are valid during the call. An exception that leaves the handler ends that event only;
// the first one is rethrown by shutdown(). Move-only; destroying a running server shuts it
// down with a grace of 1 s (and drops any handler exception).
class Server {
public:
    using Handler = std::function<void(Bus &bus, const Event &event)>;

    Server(const std::string &host, uint16_t port, Handler handler) : Server(host, port, ServerOptions(), std::move(handler)) {}
    Server(const std::string &host, uint16_t port, const ServerOptions &options, Handler handler)
        : state_(std::make_unique<State>()) {
        if (!handler) throw Error(TW_STATUS_NULL_ARGUMENT, "server", "empty handler");
        state_->handler = std::move(handler);
        state_->status = options.status_callback();
        tw_server *raw = nullptr;
        detail::check(tw_server_new(host.c_str(), port, options.handle(), &trampoline, state_.get(), &raw), "server");
        handle_.reset(raw);
    }

    Server(Server &&) noexcept = default;
    // The server assigned to stops first (its workers still use its state).
    Server &operator=(Server &&other) noexcept {
        if (this != &other) {
            handle_.reset();
            state_ = std::move(other.state_);
            handle_ = std::move(other.handle_);
        }
        return *this;
    }
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    ~Server() = default;

    tw_server *handle() const noexcept { return handle_.get(); }

    uint16_t port() const {
        uint16_t p = 0;
        detail::check(tw_server_local_port(handle_.get(), &p), "server port");
        return p;
    }
    // "127.0.0.1:9001" or "[::1]:9001".
    std::string local_addr() const {
        char buf[64];
        size_t n = 0;
        detail::check(tw_server_local_addr(handle_.get(), buf, sizeof buf, &n), "server local_addr");
        return std::string(buf, n);
    }
    size_t threads() const {
        size_t n = 0;
        detail::check(tw_server_threads(handle_.get(), &n), "server threads");
        return n;
    }
    // From any thread (handlers included): every worker publishes it at its next poll, and
    // the cluster carries it to the other processes. Throws Error: TW_STATUS_INVALID_UTF8,
    // TW_STATUS_BUFFER_FULL, TW_STATUS_SHUTTING_DOWN.
    void publish(Bytes topic, MessageKind kind, Bytes data) const {
        detail::check(tw_server_publish(handle_.get(), topic.data(), topic.size(), static_cast<uint32_t>(kind),
                                        data.data(), data.size()),
                      "server publish");
    }
    // A Sender on worker `worker`'s context, for threads that are not workers.
    Sender sender(size_t worker) const {
        tw_sender *raw = nullptr;
        detail::check(tw_server_sender(handle_.get(), worker, &raw), "server sender");
        return Sender(raw);
    }
    // The cluster's counters; nullopt without a cluster.
    std::optional<ClusterStats> cluster_stats() const {
        tw_cluster_stats r{};
        const Status s = tw_server_cluster_stats(handle_.get(), &r, nullptr);
        if (s == TW_STATUS_NOT_FOUND) return std::nullopt;
        detail::check(s, "server cluster_stats");
        return ClusterStats{r.sent, r.received, r.dropped, r.malformed};
    }
    // Whether both links to Redis are up now (false without a cluster).
    bool cluster_connected() const {
        tw_cluster_stats r{};
        bool up = false;
        const Status s = tw_server_cluster_stats(handle_.get(), &r, &up);
        if (s == TW_STATUS_NOT_FOUND) return false;
        detail::check(s, "server cluster_connected");
        return up;
    }

    // Stops every worker (close 1001 to every connection, `grace` for the closing
    // handshakes; the handlers see the CloseEvents) and waits for them. Throws Error for a
    // worker that failed, then the first exception a handler let out. Not from a handler.
    void shutdown(std::chrono::milliseconds grace = std::chrono::seconds(1)) {
        detail::check(tw_server_shutdown(handle_.get(), detail::setting_ms(grace, "server shutdown")),
                      "server shutdown");
        std::exception_ptr first;
        {
            std::lock_guard<std::mutex> lock(state_->mutex);
            first = std::exchange(state_->first_error, nullptr);
        }
        if (first) std::rethrow_exception(first);
    }

private:
    struct State {
        Handler handler;
        std::shared_ptr<ClusterOptions::StatusCallback> status;
        std::mutex mutex;
        std::exception_ptr first_error;
    };

    static void trampoline(tw_context *ctx, const tw_bus *bus, const tw_event *event, void *user) noexcept {
        auto *st = static_cast<State *>(user);
        try {
            thread_local std::vector<Event> one;
            one.clear();
            detail::append_event(ctx, *event, one);
            if (one.empty()) return;  // a kind this header does not know
            Bus b(ctx, bus);
            st->handler(b, one.front());
        } catch (...) {
            std::lock_guard<std::mutex> lock(st->mutex);
            if (!st->first_error) st->first_error = std::current_exception();
        }
    }

    // Declared first, destroyed last: freeing the server stops the workers that use it.
    std::unique_ptr<State> state_;
    detail::owner<tw_server, tw_server_free> handle_;
};

// ---------------------------------------------------------------------------------------
// IoThread: a context on its own I/O thread (tw_io)
// ---------------------------------------------------------------------------------------

// One event of an IoThread. Move-only; owns its data (every view it hands out stays valid
// as long as the IoEvent lives, even after the IoThread is gone) and releases it when
// destroyed. Connection ids are the IoThread's own.
class IoEvent {
public:
    enum class Kind : uint32_t {
        open = TW_EVENT_OPEN,
        message = TW_EVENT_MESSAGE,
        ping = TW_EVENT_PING,
        pong = TW_EVENT_PONG,
        writable = TW_EVENT_WRITABLE,
        close = TW_EVENT_CLOSE,
        error = TW_EVENT_ERROR,
        send_failed = TW_EVENT_SEND_FAILED,
        stopped = TW_EVENT_STOPPED,
        // Not terminal: the connection (same id) tries again after delay() (see
        // ReconnectPolicy); the cause is status()/text() or close_code().
        reconnecting = TW_EVENT_RECONNECTING,
    };

    explicit IoEvent(const tw_io_event &taken) noexcept : e_(taken) {}
    IoEvent(IoEvent &&other) noexcept : e_(other.e_) { other.e_ = tw_io_event{}; }
    IoEvent &operator=(IoEvent &&other) noexcept {
        if (this != &other) {
            tw_io_event_release(&e_);
            e_ = other.e_;
            other.e_ = tw_io_event{};
        }
        return *this;
    }
    IoEvent(const IoEvent &) = delete;
    IoEvent &operator=(const IoEvent &) = delete;
    ~IoEvent() { tw_io_event_release(&e_); }

    Kind kind() const noexcept { return static_cast<Kind>(e_.event.kind); }
    // The connection (0 for listener errors and stopped).
    uint64_t conn() const noexcept { return e_.event.conn; }
    // The listener: server-side opens, listener errors; 0 otherwise.
    uint64_t listener() const noexcept { return e_.event.listener; }
    // error, send_failed, stopped, reconnecting: what failed (TW_STATUS_OK otherwise).
    Status status() const noexcept { return e_.event.status; }
    // Message, ping or pong payload; close reason; error description.
    Bytes data() const noexcept { return Bytes(e_.event.data.data, e_.event.data.len); }
    std::string_view text() const noexcept { return detail::view(e_.event.data); }
    MessageKind message_kind() const noexcept { return static_cast<MessageKind>(e_.event.message_kind); }
    uint16_t close_code() const noexcept { return e_.event.close_code; }
    bool clean() const noexcept { return e_.event.clean; }
    bool remote() const noexcept { return e_.event.remote; }
    uint16_t http_status() const noexcept { return e_.event.http_status; }
    // reconnecting: the attempt about to be made (1, 2, ...) and the wait before it.
    uint32_t attempt() const noexcept { return e_.event.attempt; }
    std::chrono::milliseconds delay() const noexcept { return std::chrono::milliseconds(e_.event.delay_ms); }
    std::string_view path() const noexcept { return detail::view(e_.event.path); }
    std::optional<std::string_view> subprotocol() const noexcept { return detail::optional_view(e_.event.subprotocol); }
    // The last event of its connection (close, or an error about a connection).
    bool is_terminal() const noexcept {
        return kind() == Kind::close || (kind() == Kind::error && conn() != 0);
    }
    const tw_event &raw() const noexcept { return e_.event; }

private:
    tw_io_event e_{};
};

// A context on its own I/O thread (IXWebSocket's and Unreal's model): TCP, TLS,
// compression and timers run there; the application's threads send (never waiting on the
// network) and drain events, typically once per frame with poll(0ms). Move-only;
// destroying it shuts down (1 s grace) and joins the thread.
class IoThread {
public:
    IoThread() : IoThread(nullptr, 0) {}
    // `event_queue_limit`: bytes of event payload queued before reading pauses (0: 16 MiB).
    explicit IoThread(const Config &config, size_t event_queue_limit = 0)
        : IoThread(config.handle(), event_queue_limit) {}

    IoThread(IoThread &&) noexcept = default;
    IoThread &operator=(IoThread &&) noexcept = default;
    IoThread(const IoThread &) = delete;
    IoThread &operator=(const IoThread &) = delete;
    ~IoThread() = default;

    tw_io *handle() const noexcept { return handle_.get(); }

    // Listens; a short round trip to the I/O thread (call it at start-up). Returns the
    // listener id and the bound port.
    std::pair<uint64_t, uint16_t> listen(const std::string &host, uint16_t port) const {
        return listen_with(host, port, nullptr);
    }
    std::pair<uint64_t, uint16_t> listen(const std::string &host, uint16_t port, const ListenOptions &options) const {
        return listen_with(host, port, options.handle());
    }
    void unlisten(uint64_t listener) const { detail::check(tw_io_unlisten(h(), listener), "io unlisten"); }

    // Opens a ws:// or wss:// connection; its id comes back at once, its open or failure
    // as an event.
    uint64_t connect(const std::string &url) const { return connect_with(url, nullptr); }
    uint64_t connect(const std::string &url, const ConnectOptions &options) const {
        return connect_with(url, options.handle());
    }

    // Queue a message (copied now). Return false when the command queue is full (nothing
    // queued; try again later). Refusals on the I/O thread come back as send_failed events.
    // Throw Error: TW_STATUS_SHUTTING_DOWN, TW_STATUS_INVALID_UTF8, ...
    bool send_text(uint64_t conn, std::string_view text) const {
        return queued(tw_io_send_text(h(), conn, text.data(), text.size()), "io send_text");
    }
    bool send_binary(uint64_t conn, Bytes data) const {
        return queued(tw_io_send_binary(h(), conn, data.data(), data.size()), "io send_binary");
    }
    bool send(uint64_t conn, MessageKind kind, Bytes data) const {
        return queued(tw_io_send(h(), conn, static_cast<uint32_t>(kind), data.data(), data.size()), "io send");
    }
    bool ping(uint64_t conn, Bytes data = {}) const {
        return queued(tw_io_ping(h(), conn, data.data(), data.size()), "io ping");
    }
    bool close(uint64_t conn, uint16_t code = 1000, std::string_view reason = {}) const {
        return queued(tw_io_close(h(), conn, code, reason.data(), reason.size()), "io close");
    }

    // Appends up to `max` events to `out`; waits at most `timeout` for the first one when
    // none is queued (0: never waits). Returns how many were appended.
    size_t poll(std::vector<IoEvent> &out, std::chrono::milliseconds timeout = std::chrono::milliseconds(0),
                size_t max = 256) const {
        std::vector<tw_io_event> raw(max == 0 ? 1 : max);
        size_t n = 0;
        detail::check(tw_io_poll(h(), raw.data(), raw.size(), detail::poll_ms(timeout), &n), "io poll");
        out.reserve(out.size() + n);
        for (size_t i = 0; i < n; ++i) out.emplace_back(raw[i]);
        return n;
    }

    size_t pending() const {
        size_t n = 0;
        detail::check(tw_io_pending(h(), &n), "io pending");
        return n;
    }

    // Closes every connection with 1001, waits up to `grace` for the close handshakes,
    // stops and joins the I/O thread. The close events and the final stopped event stay
    // readable with poll().
    void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(1000)) {
        detail::check(tw_io_shutdown(h(), detail::setting_ms(grace, "io shutdown")), "io shutdown");
    }

private:
    IoThread(const tw_config *config, size_t limit) {
        tw_io *raw = nullptr;
        detail::check(tw_io_new(config, limit, &raw), "io new");
        handle_.reset(raw);
    }

    tw_io *h() const {
        if (!handle_) throw Error(TW_STATUS_NULL_ARGUMENT, "io", "moved-from IoThread");
        return handle_.get();
    }

    std::pair<uint64_t, uint16_t> listen_with(const std::string &host, uint16_t port,
                                              const tw_listen_options *options) const {
        uint64_t id = 0;
        uint16_t bound = 0;
        detail::check(tw_io_listen(h(), host.c_str(), port, options, &id, &bound), "io listen");
        return {id, bound};
    }

    uint64_t connect_with(const std::string &url, const tw_connect_options *options) const {
        uint64_t id = 0;
        detail::check(tw_io_connect(h(), url.c_str(), options, &id), "io connect");
        return id;
    }

    static bool queued(Status status, const char *operation) {
        if (status == TW_STATUS_OK) return true;
        if (status == TW_STATUS_BUFFER_FULL) return false;
        detail::fail(status, operation);
    }

    detail::owner<tw_io, tw_io_free> handle_;
};

}  // namespace tidewire

namespace std {
template <>
struct hash<tidewire::Connection> {
    size_t operator()(tidewire::Connection c) const noexcept { return std::hash<uint64_t>()(c.id()); }
};
template <>
struct hash<tidewire::Listener> {
    size_t operator()(tidewire::Listener l) const noexcept { return std::hash<uint64_t>()(l.id()); }
};
}  // namespace std

#endif  // TIDEWIRE_HPP
