#include "validation.hpp"

#include <cstdint>

namespace redlock::chatroom {
namespace {

// Decodes one UTF-8 sequence at `pos`, rejecting overlong forms, surrogates
// and code points beyond U+10FFFF. Returns the code point and advances pos,
// or nullopt.
std::optional<std::uint32_t> decode(std::string_view s, std::size_t& pos) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
  const std::uint8_t b0 = byte(pos);
  std::size_t len = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1Fu;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0Fu;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07u;
    min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (pos + len > s.size()) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    const std::uint8_t b = byte(pos + k);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  pos += len;
  return cp;
}

std::optional<std::string> check(std::string_view what, std::string_view value, std::size_t max,
                                 bool allow_layout, bool allow_slash) {
  if (value.empty()) return std::string(what) + " is empty";
  if (value.size() > max) {
    return std::string(what) + " is longer than " + std::to_string(max) + " bytes";
  }
  std::size_t pos = 0;
  while (pos < value.size()) {
    const auto cp = decode(value, pos);
    if (!cp) return std::string(what) + " is not valid UTF-8";
    const bool layout = *cp == '\n' || *cp == '\t' || *cp == '\r';
    if ((*cp < 0x20 && !(allow_layout && layout)) || (*cp >= 0x7F && *cp <= 0x9F)) {
      return std::string(what) + " contains a control character";
    }
    if (*cp == '/' && !allow_slash) return std::string(what) + " contains '/'";
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> room_name_problem(std::string_view name) {
  return check("name", name, kMaxNameBytes, false, false);
}

std::optional<std::string> author_problem(std::string_view author) {
  return check("author", author, kMaxAuthorBytes, false, true);
}

std::optional<std::string> text_problem(std::string_view text) {
  return check("text", text, kMaxTextBytes, true, true);
}

}  // namespace redlock::chatroom
