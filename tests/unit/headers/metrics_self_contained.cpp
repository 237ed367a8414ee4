// Compiles <redlock/metrics.hpp> with nothing included before it: a public header
// must bring in everything it uses.
#include <redlock/metrics.hpp>

static_assert(sizeof(redlock::MetricsSnapshot) > 0);
static_assert(sizeof(redlock::Histogram) > 0);
static_assert(sizeof(redlock::NodeMetrics) > 0);

namespace {
// A sink overriding nothing is a complete type with a virtual destructor.
[[maybe_unused]] void use_metrics_header() {
  redlock::MetricsSink sink;
  static_cast<void>(sink);
  static_cast<void>(&redlock::to_prometheus);
}
}  // namespace
