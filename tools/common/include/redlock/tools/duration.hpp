// redlock/tools/duration.hpp: durations and lists as the tools read them from
// command lines, environment variables and config files.
//
// Pure functions on values: thread-safe, no I/O. Errors are messages meant
// for the user, naming the text that was refused.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace redlock::tools {

// The largest duration parse_duration() accepts: 365 days.
inline constexpr std::chrono::milliseconds kMaxDuration{365LL * 24 * 3600 * 1000};

// A non-negative decimal number followed by a unit: "500ms", "10s", "2m",
// "1h", "1.5s". The unit is required; the value must come to a whole number
// of milliseconds and at most kMaxDuration. Surrounding spaces are ignored.
[[nodiscard]] tl::expected<std::chrono::milliseconds, std::string> parse_duration(
    std::string_view text);

// The shortest exact spelling parse_duration() reads back: "0s", "500ms",
// "10s", "1500ms", "2m", "1h".
[[nodiscard]] std::string format_duration(std::chrono::milliseconds duration);

// Splits at commas, trims spaces around each item and drops empty items:
// " a, b,,c " -> {"a", "b", "c"}.
[[nodiscard]] std::vector<std::string> split_list(std::string_view text);

// A list of lock nodes, as split_list() splits it, except that the host list
// of a sentinel:// or cluster:// node stays one item: the items after one
// (up to a sentinel node's "/master") belong to it, until an item that is a
// node of its own ("scheme://..." or "unix:..."). So
// "cluster://a:1,b:2,redis://c:3" -> {"cluster://a:1,b:2", "redis://c:3"}.
[[nodiscard]] std::vector<std::string> split_node_list(std::string_view text);

}  // namespace redlock::tools
