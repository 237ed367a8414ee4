// redlock/version.hpp (generated) compiles on its own.
#include <redlock/version.hpp>
#include <string_view>

static_assert(REDLOCK_VERSION_MAJOR >= 0);
static_assert(std::string_view(REDLOCK_VERSION).size() >= 5);
