// What the tools read from command lines and environment variables:
// durations (and --wait's "forever"), comma-separated lists, and the bytes
// they show back as text. Durations that parse must format and parse back to
// the same value; escaped text must be valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cli_support.hpp"
#include "redlock/tools/duration.hpp"
#include "redlock/tools/text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto d = redlock::tools::parse_duration(text)) {
    if (d->count() < 0 || *d > redlock::tools::kMaxDuration) std::abort();
    auto again = redlock::tools::parse_duration(redlock::tools::format_duration(*d));
    if (!again || *again != *d) std::abort();
  }
  (void)redlock::cli::parse_wait(text);
  for (const auto& item : redlock::tools::split_list(text)) {
    if (item.empty() || item.find(',') != std::string::npos) std::abort();
  }
  const std::string escaped = redlock::tools::escape_bytes(text);
  if (!redlock::tools::is_valid_utf8(escaped)) std::abort();
  if (!redlock::tools::is_valid_utf8(redlock::tools::printable(text))) std::abort();
  if (redlock::tools::to_hex(text).size() != 2 * text.size()) std::abort();
  nlohmann::json j;
  redlock::cli::put_bytes(j, "resource", text);
  const std::string dumped = redlock::cli::to_json_text(j);
  if (!redlock::tools::is_valid_utf8(dumped)) std::abort();
  return 0;
}
