// Compiles <redlock/lock.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/lock.hpp>

static_assert(sizeof(redlock::Lock) > 0);
