#include "redlock/tools/duration.hpp"

#include <cstdint>

namespace redlock::tools {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

tl::unexpected<std::string> bad(std::string_view text, std::string_view why) {
  return tl::make_unexpected("bad duration '" + std::string(text) + "': " + std::string(why));
}

}  // namespace

tl::expected<std::chrono::milliseconds, std::string> parse_duration(std::string_view text) {
  const std::string_view s = trim(text);
  constexpr std::string_view kExpected = "expected a number and a unit: 500ms, 10s, 2m, 1h";
  std::size_t pos = 0;
  // Integer part, then an optional fraction; at most 12 + 9 digits so that
  // the arithmetic below stays far from overflow.
  std::uint64_t whole = 0;
  std::size_t whole_digits = 0;
  while (pos < s.size() && is_digit(s[pos])) {
    if (++whole_digits > 12) return bad(text, "too large");
    whole = whole * 10 + static_cast<std::uint64_t>(s[pos] - '0');
    ++pos;
  }
  std::uint64_t fraction = 0;
  std::uint64_t fraction_scale = 1;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < s.size() && is_digit(s[pos])) {
      if (++digits > 9) return bad(text, "too many decimals");
      fraction = fraction * 10 + static_cast<std::uint64_t>(s[pos] - '0');
      fraction_scale *= 10;
      ++pos;
    }
    if (digits == 0) return bad(text, kExpected);
  }
  if (whole_digits == 0) return bad(text, kExpected);
  const std::string_view unit = s.substr(pos);
  std::uint64_t unit_ms = 0;
  if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60'000;
  } else if (unit == "h") {
    unit_ms = 3'600'000;
  } else if (unit.empty()) {
    return bad(text, "a unit is required (ms, s, m or h)");
  } else {
    return bad(text, "unknown unit '" + std::string(unit) + "' (ms, s, m or h)");
  }
  const auto max = static_cast<std::uint64_t>(kMaxDuration.count());
  if (whole > max / unit_ms) return bad(text, "longer than 365 days");
  const std::uint64_t fraction_ms = fraction * unit_ms;
  if (fraction_ms % fraction_scale != 0) return bad(text, "not a whole number of milliseconds");
  const std::uint64_t total = whole * unit_ms + fraction_ms / fraction_scale;
  if (total > max) return bad(text, "longer than 365 days");
  return std::chrono::milliseconds(static_cast<std::int64_t>(total));
}

std::string format_duration(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  while (true) {
    const auto comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::vector<std::string> split_node_list(std::string_view text) {
  std::vector<std::string> out;
  bool open_list = false;  // the last item is a host list that may go on
  for (auto& item : split_list(text)) {
    const bool own_node = item.find("://") != std::string::npos || item.starts_with("unix:");
    if (open_list && !own_node) {
      out.back() += "," + item;
      // A sentinel node's list ends with its master's name.
      if (item.find('/') != std::string::npos) open_list = false;
      continue;
    }
    open_list = (item.starts_with("cluster://") || item.starts_with("sentinel://") ||
                 item.starts_with("sentinels://")) &&
                item.find('/', item.find("://") + 3) == std::string::npos;
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace redlock::tools
