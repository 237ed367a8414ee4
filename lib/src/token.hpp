// token.hpp: lock tokens, 128 bits from the operating system's CSPRNG.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "redlock/result.hpp"

namespace redlock::detail {

inline constexpr std::size_t kTokenBytes = 16;

// 32 lower-case hex characters. Errors: kInternal when getrandom(2) fails.
[[nodiscard]] Result<std::string> make_token();

// A token held in place, without a heap block: what a waiting acquire keeps
// for as long as it waits. At most 2 * kTokenBytes bytes (make_token's);
// longer throws std::length_error.
class InlineToken {
 public:
  explicit InlineToken(std::string_view token) {
    if (token.size() > bytes_.size()) throw std::length_error("redlock: token too long");
    std::copy(token.begin(), token.end(), bytes_.begin());
    size_ = static_cast<std::uint8_t>(token.size());
  }
  [[nodiscard]] std::string_view view() const noexcept { return {bytes_.data(), size_}; }
  [[nodiscard]] std::string str() const { return std::string(view()); }

 private:
  std::array<char, 2 * kTokenBytes> bytes_{};
  std::uint8_t size_ = 0;
};

}  // namespace redlock::detail
