// The CLI's config file ({"nodes": [...]}): any bytes are refused with a
// message or give a non-empty list of strings.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cli_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto nodes = redlock::cli::parse_config(text);
  if (nodes) {
    if (nodes->empty()) std::abort();
  } else if (nodes.error().empty()) {
    std::abort();
  }
  return 0;
}
