// tidewire.h compiled as C++ (-std=c++11 and -std=c++17, -Wall -Wextra -Wpedantic -Werror):
// the declarations, enums and struct layout must be the same as in C.
#include "tidewire.h"

#include <cstdio>
#include <cstring>
#include <type_traits>

static_assert(sizeof(tw_status) == 4, "tw_status is 32-bit in C++ too");
static_assert(std::is_same<std::underlying_type<tw_status>::type, uint32_t>::value, "uint32_t enum");
static_assert(std::is_same<std::underlying_type<tw_event_kind>::type, uint32_t>::value, "uint32_t enum");
static_assert(sizeof(tw_message_kind) == 4, "tw_message_kind is 32-bit");
static_assert(std::is_standard_layout<tw_event>::value, "tw_event is a C struct");
static_assert(std::is_trivially_copyable<tw_event>::value, "tw_event is a C struct");
static_assert(sizeof(tw_bytes) == 2 * sizeof(void *), "tw_bytes is {pointer, size_t}");
#if UINTPTR_MAX == 0xffffffffffffffffu
static_assert(sizeof(tw_event) == 128, "tw_event layout matches C");
#endif
static_assert(TW_STATUS_OK == 0, "ok is 0");

int main() {
    int passed = 0, failed = 0;
    char want[32];
    std::snprintf(want, sizeof want, "%d.%d.%d", TW_VERSION_MAJOR, TW_VERSION_MINOR, TW_VERSION_PATCH);
    (std::strcmp(tw_version(), want) == 0 ? passed : failed)++;

    tw_context *ctx = nullptr;
    tw_status s = tw_context_new(nullptr, &ctx);
    (s == TW_STATUS_OK && ctx != nullptr ? passed : failed)++;
    tw_event events[4];
    size_t n = 99;
    s = tw_poll(ctx, events, 4, 0, &n);
    (s == TW_STATUS_OK && n == 0 ? passed : failed)++;
    (tw_conn_send_text(ctx, 1, "x", 1) == TW_STATUS_STALE_ID ? passed : failed)++;
    tw_context_free(ctx);

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
