#include "redlock/tools/ttl_check.hpp"

#include <algorithm>

#include "redlock/tools/duration.hpp"

namespace redlock::tools {

std::optional<std::string> ttl_problem(std::chrono::milliseconds ttl,
                                       std::chrono::milliseconds max_ttl,
                                       std::optional<std::chrono::milliseconds> node_timeout,
                                       const TtlFlags& flags) {
  using std::chrono::milliseconds;
  const std::string ttl_text = std::string(flags.ttl) + " " + format_duration(ttl);
  if (ttl > max_ttl) {
    return ttl_text + " is longer than " + std::string(flags.max_ttl) + " " +
           format_duration(max_ttl) + ": raise " + std::string(flags.max_ttl) +
           " (every client of these lock nodes should use the same)";
  }
  // The library's rules (lib/src/rules.cpp, validate.cpp): each node gets
  // node_timeout to answer, ttl / 200 within [10 ms, 250 ms] by default, and
  // a grant loses 1% of the ttl plus 2 ms to clock drift. A ttl must outlast
  // both, with at least a millisecond of validity left.
  const milliseconds answer =
      node_timeout.value_or(std::clamp(ttl / 200, milliseconds(10), milliseconds(250)));
  const milliseconds drift = ttl / 100 + milliseconds(2);
  if (ttl <= answer + drift) {
    return ttl_text + " is too short: it must be longer than the " +
           std::to_string(answer.count()) + " ms each node gets to answer (" +
           (node_timeout ? std::string(flags.node_timeout)
                         : "the default for this ttl; see " + std::string(flags.node_timeout)) +
           ") plus the " + std::to_string(drift.count()) +
           " ms allowed for clock drift (2 ms + 1% of the ttl)";
  }
  return std::nullopt;
}

}  // namespace redlock::tools
