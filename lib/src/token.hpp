// token.hpp: lock tokens, 128 bits from the operating system's CSPRNG.
#pragma once

#include <string>

#include "redlock/result.hpp"

namespace redlock::detail {

inline constexpr std::size_t kTokenBytes = 16;

// 32 lower-case hex characters. Errors: kInternal when getrandom(2) fails.
[[nodiscard]] Result<std::string> make_token();

}  // namespace redlock::detail
