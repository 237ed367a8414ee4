// text.hpp: bytes made safe to print.
//
// Resource names and server replies are bytes. Anything that puts them in a
// message, a log line or JSON goes through quote_bytes(): valid UTF-8 is kept as
// it is (so names in any script read naturally), while control characters,
// quotes, backslashes and bytes that are not valid UTF-8 are escaped, so a
// message is always valid UTF-8 and names that differ print differently.
#pragma once

#include <string>
#include <string_view>

namespace redlock::detail {

// "name", with \" \\ \n \r \t and \xNN escapes.
[[nodiscard]] std::string quote_bytes(std::string_view bytes);

// Whether `bytes` is valid UTF-8 (no overlong forms, no surrogates).
[[nodiscard]] bool valid_utf8(std::string_view bytes) noexcept;

}  // namespace redlock::detail
