// Compiles <redlock/error.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/error.hpp>

static_assert(sizeof(redlock::Error) > 0);
static_assert(sizeof(redlock::NodeResult) > 0);
