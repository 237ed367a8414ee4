// Compiles <redlock/health.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/health.hpp>

static_assert(sizeof(redlock::HealthReport) > 0);
static_assert(sizeof(redlock::NodeHealth) > 0);
static_assert(sizeof(redlock::ShardHealth) > 0);
