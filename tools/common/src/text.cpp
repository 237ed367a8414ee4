#include "redlock/tools/text.hpp"

#include <cstdio>

namespace redlock::tools {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void append_hex_byte(std::string& out, unsigned char byte) {
  out += "\\x";
  out += kHexDigits[byte >> 4];
  out += kHexDigits[byte & 0x0F];
}

}  // namespace

std::optional<std::uint32_t> decode_utf8(std::string_view s, std::size_t& pos) {
  if (pos >= s.size()) return std::nullopt;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
  const std::uint8_t b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  std::size_t len = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
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
  if (len > s.size() - pos) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    const std::uint8_t b = byte(pos + k);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  pos += len;
  return cp;
}

bool is_valid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!decode_utf8(text, pos)) return false;
  }
  return true;
}

std::string to_hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 0x0F];
  }
  return out;
}

namespace {

std::string escape(std::string_view bytes, bool everything) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::size_t start = pos;
    const auto cp = decode_utf8(bytes, pos);
    if (!cp) {
      append_hex_byte(out, static_cast<unsigned char>(bytes[pos]));
      ++pos;
      continue;
    }
    if (!everything && (*cp == '\n' || *cp == '\t' || *cp == '\\' || *cp == '"')) {
      out += static_cast<char>(*cp);
      continue;
    }
    switch (*cp) {
      case '\n':
        out += "\\n";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '"':
        out += "\\\"";
        continue;
      default:
        break;
    }
    if (*cp < 0x20 || *cp == 0x7F) {
      append_hex_byte(out, static_cast<unsigned char>(*cp));
    } else if (*cp >= 0x80 && *cp <= 0x9F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(*cp));
      out += buf;
    } else {
      out.append(bytes.substr(start, pos - start));
    }
  }
  return out;
}

}  // namespace

std::string escape_bytes(std::string_view bytes) { return escape(bytes, true); }

std::string printable(std::string_view text) { return escape(text, false); }

std::string quoted(std::string_view bytes) {
  // Appended, not `"\"" + std::string&&`: GCC 12 at -O3 takes that form for an
  // overlapping memcpy (-Wrestrict).
  std::string out = "\"";
  out.append(escape_bytes(bytes)).push_back('"');
  return out;
}

}  // namespace redlock::tools
