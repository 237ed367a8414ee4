// Compiles <redlock/options.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/options.hpp>

static_assert(sizeof(redlock::ClientOptions) > 0);
static_assert(sizeof(redlock::AcquireOptions) > 0);
