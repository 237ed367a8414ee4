// Node addresses as users type them (--nodes, config files,
// ClientOptions::nodes): parse_node (lib/src/address.hpp) must accept or
// refuse anything without crashing, and what it accepts must be usable: a
// host, a socket path, sentinels. And a password never shows: the input is
// also taken as the parts around a known password, and when the parser
// reads that password, its display form must not contain it.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "address.hpp"
#include "redlock/options.hpp"
#include "validate.hpp"

namespace {

// Unlikely to come out of the rest of a URL by chance, and with no
// character a URL parser treats specially.
constexpr std::string_view kSecret = "Zq7vSecretPw94xK";

void check_usable(const redlock::detail::NodeAddress& node) {
  using Kind = redlock::detail::NodeAddress::Kind;
  switch (node.kind) {
    case Kind::kTcp:
      if (node.host.empty()) std::abort();
      break;
    case Kind::kUnix:
      if (node.path.empty()) std::abort();
      break;
    case Kind::kSentinel:
      if (node.sentinels.empty() || node.master.empty()) std::abort();
      break;
  }
}

std::string without_secret(std::string text) {
  for (auto at = text.find(kSecret); at != std::string::npos; at = text.find(kSecret)) {
    text.erase(at, kSecret.size());
  }
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto node = redlock::detail::parse_node(text)) {
    check_usable(*node);
  } else if (node.error().code() != redlock::ErrorCode::kInvalidArgument) {
    std::abort();
  }
  // The same text as a client's whole node list.
  redlock::ClientOptions options;
  options.nodes = {std::string(text)};
  (void)redlock::detail::validate_client_options(options);

  // A URL with the secret as its password, the rest from the input.
  FuzzedDataProvider in(data, size);
  const bool sentinel = in.ConsumeBool();
  const std::string user = without_secret(in.ConsumeRandomLengthString(64));
  const std::string rest = without_secret(in.ConsumeRemainingBytesAsString());
  const std::string url = std::string(sentinel ? "sentinel://" : "redis://") + user + ":" +
                          std::string(kSecret) + "@" + rest;
  if (auto node = redlock::detail::parse_node(url)) {
    check_usable(*node);
    if (node->password == kSecret && node->display.find(kSecret) != std::string::npos) {
      std::abort();
    }
    // Nor in an error about it.
  } else if (node.error().message().find(kSecret) != std::string::npos) {
    std::abort();
  }
  return 0;
}
