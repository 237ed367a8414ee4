// Compiles <redlock/client.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/client.hpp>

static_assert(sizeof(redlock::ReleaseReport) > 0);
