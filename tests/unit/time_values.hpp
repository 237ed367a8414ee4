// time_values.hpp: instants and durations as values for the pure-rule tests.
#pragma once

#include <chrono>
#include <ostream>

#include "rules.hpp"

namespace redlock::detail {

// Any fixed instant will do; offsets from it are the only times the tests use.
inline const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1000);

// GoogleTest cannot print std::chrono durations; compare through this wrapper
// so that a failure shows "102 ms" rather than a byte dump.
struct Dur {
  long long us;
  auto operator<=>(const Dur&) const = default;
};
inline std::ostream& operator<<(std::ostream& os, Dur d) {
  if (d.us % 1000 == 0) return os << d.us / 1000 << " ms";
  return os << d.us << " us";
}
template <typename Rep, typename Period>
Dur dur(std::chrono::duration<Rep, Period> d) {
  return Dur{std::chrono::duration_cast<microseconds>(d).count()};
}
// An instant as its offset from t0.
inline Dur at(Clock::time_point t) { return dur(t - t0); }

}  // namespace redlock::detail
