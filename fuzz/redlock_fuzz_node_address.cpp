// Node addresses as users type them (--nodes, config files,
// ClientOptions::nodes): parse_node must accept or refuse anything without
// crashing, and what it accepts must be usable: a display form without the
// password, a port, a socket path, sentinels.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "address.hpp"
#include "redlock/options.hpp"
#include "validate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto node = redlock::detail::parse_node(text);
  if (node) {
    using Kind = redlock::detail::NodeAddress::Kind;
    switch (node->kind) {
      case Kind::kTcp:
        if (node->host.empty()) std::abort();
        break;
      case Kind::kUnix:
        if (node->path.empty()) std::abort();
        break;
      case Kind::kSentinel:
        if (node->sentinels.empty() || node->master.empty()) std::abort();
        break;
    }
    // A password long enough not to turn up by chance must not show.
    const auto at = text.find(node->password);
    if (node->password.size() >= 12 && at != std::string_view::npos &&
        at == text.rfind(node->password) &&
        node->display.find(node->password) != std::string::npos) {
      std::abort();
    }
  } else if (node.error().code() != redlock::ErrorCode::kInvalidArgument) {
    std::abort();
  }
  // The same text as a client's whole node list.
  redlock::ClientOptions options;
  options.nodes = {std::string(text)};
  (void)redlock::detail::validate_client_options(options);
  return 0;
}
