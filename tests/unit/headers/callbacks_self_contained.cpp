// Compiles <redlock/callbacks.hpp> with nothing included before it: a public
// header must bring in everything it uses.
#include <redlock/callbacks.hpp>

static_assert(sizeof(redlock::AcquireCallback) > 0);
static_assert(sizeof(redlock::ReleaseCallback) > 0);
static_assert(sizeof(redlock::HealthCallback) > 0);
