// redlock/result.hpp: Result<T>, the return type of every fallible call.
//
// Result<T> is tl::expected<T, Error> (Debian's libexpected-dev); switching to
// C++23 std::expected is a change of this one alias.
#pragma once

#include <tl/expected.hpp>

#include "redlock/error.hpp"

namespace redlock {

template <typename T>
using Result = tl::expected<T, Error>;

using Unexpected = tl::unexpected<Error>;

}  // namespace redlock
