// The version of the compiled library, which may differ from the headers a
// program was built with when the shared library is swapped underneath it.
#include "redlock/version.hpp"

namespace redlock {

std::string_view version() noexcept { return REDLOCK_VERSION; }

}  // namespace redlock
