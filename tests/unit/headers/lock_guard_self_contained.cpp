// Compiles <redlock/lock_guard.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/lock_guard.hpp>

static_assert(sizeof(redlock::LockGuard) > 0);
