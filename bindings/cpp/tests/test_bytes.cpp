// tidewire::Bytes: a borrowed byte view built from strings and contiguous byte ranges.
#include "support.hpp"

#include <array>
#include <cstddef>
#include <type_traits>

using tidewire::Bytes;

static_assert(std::is_trivially_copyable_v<Bytes>);
static_assert(std::is_convertible_v<std::string, Bytes>);
static_assert(std::is_convertible_v<std::string_view, Bytes>);
static_assert(std::is_convertible_v<std::vector<uint8_t>, Bytes>);
static_assert(std::is_convertible_v<std::array<std::byte, 4>, Bytes>);
static_assert(!std::is_convertible_v<std::vector<int>, Bytes>);

TEST_CASE("Bytes views strings and byte containers without copying") {
    const std::string s = "hello";
    const Bytes a = s;
    CHECK(a.data() == reinterpret_cast<const uint8_t *>(s.data()));
    CHECK(a.size() == 5);
    const std::vector<uint8_t> v{1, 2, 3};
    const Bytes b = v;
    CHECK(b.data() == v.data());
    CHECK(b.size() == 3);
    CHECK(b[2] == 3);
    const std::array<std::byte, 2> arr{std::byte{9}, std::byte{8}};
    CHECK(Bytes(arr).size() == 2);
}

TEST_CASE("a string literal gives its characters without the NUL") {
    const Bytes lit = "abc";
    CHECK(lit.size() == 3);
    CHECK(lit.as_string_view() == "abc");
    const uint8_t raw[4] = {0, 1, 2, 3};
    CHECK(Bytes(raw).size() == 4);
}

TEST_CASE("Bytes compares by content and copies only on request") {
    const std::string s = "same";
    CHECK(Bytes(s) == Bytes("same"));
    CHECK(Bytes(s) != Bytes("other"));
    CHECK(Bytes().empty());
    CHECK(Bytes(s).to_string() == "same");
    CHECK(Bytes(s).to_vector() == std::vector<uint8_t>{'s', 'a', 'm', 'e'});
#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
    CHECK(Bytes(s).as_span().size() == 4);
    const std::span<const uint8_t> span = Bytes(s).as_span();
    CHECK(Bytes(span).as_string_view() == "same");
#endif
}
