// redlock/tools/text.hpp: bytes as the tools show them. Resource names,
// tokens and what nodes answer are bytes, not necessarily UTF-8; JSON and
// terminals want text. These turn one into the other without losing
// anything or failing.
//
// Pure functions: thread-safe, no I/O, never throw (but std::bad_alloc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace redlock::tools {

// Decodes the UTF-8 sequence at `pos` and moves `pos` past it. Overlong
// forms, surrogates (U+D800-U+DFFF), code points beyond U+10FFFF and
// truncated sequences are not UTF-8: nullopt, `pos` unchanged.
[[nodiscard]] std::optional<std::uint32_t> decode_utf8(std::string_view text, std::size_t& pos);

// Whether every byte of `text` belongs to a valid UTF-8 sequence.
[[nodiscard]] bool is_valid_utf8(std::string_view text);

// Lower-case hexadecimal, two digits per byte: "z\xff" -> "7aff".
[[nodiscard]] std::string to_hex(std::string_view bytes);

// For messages on a terminal: valid UTF-8 as it is, except that control
// characters (C0, DEL, C1), backslashes and double quotes are escaped the way
// bash's $'...' and C read them (\n, \t, \\, \", \xNN; C1 as \u0085), and
// every byte that is not part of valid UTF-8 is \xNN. Lossless: distinct
// inputs give distinct outputs.
[[nodiscard]] std::string escape_bytes(std::string_view bytes);

// `bytes` between double quotes, escaped as escape_bytes() does.
[[nodiscard]] std::string quoted(std::string_view bytes);

// For a message that may carry such bytes (a library error naming a
// resource): control characters other than newline and tab, and bytes that
// are not valid UTF-8, as escape_bytes() writes them; everything else,
// quotes and backslashes included, as it is.
[[nodiscard]] std::string printable(std::string_view text);

}  // namespace redlock::tools
