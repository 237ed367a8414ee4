// Compiles <redlock/redlock.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/redlock.hpp>

static_assert(sizeof(redlock::Client*) > 0);
static_assert(sizeof(redlock::LockGuard) > 0);
