// The RESP reply parser fed arbitrary bytes in arbitrary chunks, drained
// after each chunk: it must never crash, leak or read out of bounds, and
// once it reports an error it stays in error.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "protocol.hpp"

namespace {

// Touches every part of a reply, so that a bad one shows under ASan.
std::size_t weigh(const redlock::detail::Reply& reply, int depth = 0) {
  if (depth > 64) return 0;  // hiredis nests at most 7 levels; be safe
  std::size_t n = reply.str.size() + static_cast<std::size_t>(reply.integer & 1);
  for (const auto& e : reply.elements) n += weigh(e, depth + 1);
  (void)reply.is_error();
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  redlock::detail::ReplyParser parser;
  bool failed = false;
  while (in.remaining_bytes() > 0) {
    const auto chunk = in.ConsumeIntegralInRange<std::size_t>(1, 64);
    const std::string bytes = in.ConsumeBytesAsString(chunk);
    auto fed = parser.feed(bytes.data(), bytes.size());
    if (!fed) {
      failed = true;
      break;
    }
    for (int replies = 0; replies < 10000; ++replies) {
      auto next = parser.next();
      if (!next) {
        failed = true;
        break;
      }
      if (!*next) break;
      (void)weigh(**next);
    }
    if (failed) break;
  }
  // An error is sticky: feeding more must not bring the parser back.
  if (failed) {
    const char more[] = "+OK\r\n";
    auto fed = parser.feed(more, sizeof more - 1);
    if (fed) {
      auto next = parser.next();
      if (next && *next) std::abort();
    }
  }
  return 0;
}
