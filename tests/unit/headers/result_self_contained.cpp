// Compiles <redlock/result.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/result.hpp>

static_assert(sizeof(redlock::Result<int>) > 0);
static_assert(sizeof(redlock::Unexpected) > 0);
