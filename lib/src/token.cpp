#include "token.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace redlock::detail {

Result<std::string> make_token() {
  std::array<unsigned char, kTokenBytes> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unexpected(
          Error(ErrorCode::kInternal, std::string("getrandom failed: ") + std::strerror(errno)));
    }
    filled += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kTokenBytes * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0x0f];
  }
  return out;
}

}  // namespace redlock::detail
