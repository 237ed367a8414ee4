// clock_check.hpp: does a node's clock run at the rate of ours?
//
// Redlock assumes that every node's clock runs at nearly the rate of the
// client's: a key's ttl runs out on the node's clock while the lock's validity
// is counted on the client's. ClockCheck is fed samples of a node's TIME, each
// with the local steady-clock instants its command left and its reply came
// back, and says whether the node's clock is suspect, and why.
//
// The node read its clock at some local instant within [sent, replied]: each
// sample stands at the midpoint with an error bar of half the round trip.
// Between two samples the node's clock must have advanced by the local
// elapsed time, within tolerance * elapsed, the two error bars and a fixed
// slack (the Redlock spec's 2 ms, for clock granularity). Anything outside
// that band is a real difference, never noise: a slow reply only widens the
// band.
//
// Two checks, over the samples of the last `window` of local time:
//  - jump: one interval (two consecutive samples) outside twice its band
//    while the one before was within it: the clock stepped ("clock jumped
//    +5.2 s"). Two consecutive intervals outside their bands in the same
//    direction are not jumps but a rate: both count toward the rate check.
//  - rate: the intervals that are not jumps, taken together, outside the band
//    of their total ("clock runs 1.50x fast over 3.2 s"). A small rate error
//    that no single interval shows is caught once the window is long enough.
// The node is suspect while either holds. It recovers once the jump has left
// the window and the window's rate is back within the band: after a window of
// good samples, since a clock that stepped once may do so again.
//
// Pure: no clock reads, every instant is passed in (see rules.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "rules.hpp"

namespace redlock::detail {

// The smallest rate tolerance used, whatever drift_factor says: twice the
// most NTP slews a clock (500 ppm), so that a drift_factor of 0 does not
// report every disciplined clock.
inline constexpr double kMinClockTolerance = 0.001;
// How many sampling intervals the window spans.
inline constexpr int kClockWindowIntervals = 20;
// The fixed slack of every comparison: the drift allowance's 2 ms.
inline constexpr std::chrono::milliseconds kClockSlack{2};

struct ClockSample {
  Clock::time_point sent;     // the TIME command left (local steady clock)
  Clock::time_point replied;  // its reply arrived
  std::int64_t node_us = 0;   // the node's TIME: microseconds since the epoch
};

// A TIME reply's two fields (seconds and microseconds since the epoch) as
// microseconds; unset unless both are plain non-negative numbers and the
// microseconds are below 1000000.
[[nodiscard]] std::optional<std::int64_t> time_reply_us(std::string_view seconds,
                                                        std::string_view micros) noexcept;

class ClockCheck {
 public:
  enum class Kind : std::uint8_t { kNone, kJump, kRate };

  // `tolerance`: the relative rate error allowed (drift_factor; at least
  // kMinClockTolerance is used). `window`: how far back samples count.
  ClockCheck(double tolerance, Clock::duration window,
             Clock::duration slack = std::chrono::duration_cast<Clock::duration>(kClockSlack));

  // Adds the next sample (samples come in the order they were sent; one
  // whose reply came before it was sent, or sent before the last one, is
  // ignored). Returns true when kind() changed.
  bool add(const ClockSample& sample);
  // Forgets every sample (another server, or one that restarted).
  void reset();

  [[nodiscard]] bool suspect() const noexcept { return kind_ != Kind::kNone; }
  // What is wrong: a rate when the rate check fails, else a jump.
  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  // Why the clock is suspect ("" when it is not).
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }
  // The node's clock rate relative to ours over the window (1: same rate),
  // jumps left out; unset until two samples span a positive time.
  [[nodiscard]] std::optional<double> rate() const noexcept { return rate_; }
  [[nodiscard]] std::size_t samples() const noexcept { return samples_.size(); }
  [[nodiscard]] double tolerance() const noexcept { return tolerance_; }
  // Whether the samples so far would have caught a clock whose rate is off
  // by `rate_error` (1.0: twice as fast, or stopped): the span from the
  // first sample to the last is long enough that such an error would lie
  // outside the band. False with fewer than two samples.
  [[nodiscard]] bool would_catch(double rate_error) const noexcept;

 private:
  struct Entry {
    double mid_us;   // local midpoint, microseconds on the steady clock
    double half_us;  // half the round trip: the error bar
    double node_us;
    // The interval from the previous entry to this one (none for the first):
    // whether it is a jump, left out of the rate; whether it was outside its
    // band; its deviation (node elapsed - local elapsed).
    enum class Into : std::uint8_t { kNone, kCounted, kJump } into = Into::kNone;
    bool out = false;
    double deviation_us = 0;
  };

  void evaluate();

  double tolerance_;
  double window_us_;
  double slack_us_;
  std::deque<Entry> samples_;
  Clock::time_point last_sent_{};
  Kind kind_ = Kind::kNone;
  std::string reason_;
  std::optional<double> rate_;
};

}  // namespace redlock::detail
