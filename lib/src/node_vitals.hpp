// node_vitals.hpp: what a node's answers say about whether it may vote.
//
// Restart-aware voting: the handshake's INFO server gives the node's run_id
// and uptime; a node that restarted, or that is younger than restart_grace,
// sits out the vote until the grace is over (rules.hpp: restart_rule).
// Clock sanity: the node's TIME, sampled every clock_check_interval, tells
// whether its clock runs at the client's rate (clock_check.hpp); a suspect
// clock is reported and, with exclude_suspect_clocks (the default), keeps it
// out of the vote. With exclusion, a server the client has not timed yet
// does not vote either: its first samples come in quick succession, and it
// votes once they span long enough to catch a clock running twice as fast
// (about 10 ms on a local network; a little over a round trip on a distant
// one). Smaller rate errors are caught over the window. NodeVitals keeps
// that state and logs and counts what changes; its Node does the I/O.
//
// Threading: the loop thread, except votes() (any thread).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "clock_check.hpp"
#include "node_context.hpp"
#include "protocol.hpp"

namespace redlock::detail {

// The gap between the first clock samples of a server not timed yet.
inline constexpr milliseconds kFirstClockGap{10};
// The rate error the first samples must be able to catch before the node
// votes: a clock running twice as fast.
inline constexpr double kFirstClockRateError = 1.0;

class NodeVitals {
 public:
  NodeVitals(const NodeContext& ctx, std::size_t index, const std::string& name);

  // The handshake's INFO server reply.
  void on_server_info(std::string_view info, Clock::time_point now);
  // Set while the node must not vote at `now`: why, and for how long. A
  // node that is not `connected` is not held back for a clock it could not
  // time (it votes "no" as disconnected anyway).
  [[nodiscard]] std::optional<std::string> vote_block(Clock::time_point now, bool connected) const;
  // The same as !vote_block(now), from any thread.
  [[nodiscard]] bool votes(Clock::time_point now) const noexcept;
  // From when the node may vote again after a restart.
  [[nodiscard]] Clock::time_point votes_from() const noexcept { return votes_from_; }
  [[nodiscard]] const std::string& run_id() const noexcept { return run_id_; }
  [[nodiscard]] const std::string& version() const noexcept { return version_; }
  // The node's uptime now, as the last handshake implies it.
  [[nodiscard]] std::optional<std::chrono::seconds> uptime(Clock::time_point now) const;

  // A connection is ready: the clock samples carry over a reconnect to the
  // same server, not to another one (a restart, a failover).
  void on_connected();
  // Whether a TIME should be sent now (and if so, it counts as sent at
  // `now`): not while one is outstanding or TIME was refused.
  [[nodiscard]] bool want_time_sample(Clock::time_point now);
  // The TIME reply (null: the connection failed first).
  void on_time_reply(const Reply* reply, Clock::time_point now);
  [[nodiscard]] const ClockCheck& clock() const noexcept { return clock_; }
  // The clock still has to be timed before the node votes: its Node samples
  // it again soon (kFirstClockGap) rather than at the next interval.
  [[nodiscard]] bool clock_pending() const noexcept;

 private:
  void reset_clock();

  const NodeContext& ctx_;
  std::size_t index_;
  const std::string& name_;
  // Restart-aware voting.
  std::string run_id_;
  std::string version_;
  std::optional<std::chrono::seconds> uptime_;  // at handshake_at_
  Clock::time_point handshake_at_{};
  Clock::time_point votes_from_{};  // no vote before this
  std::string not_voting_why_;      // what set votes_from_
  // Clock sanity.
  ClockCheck clock_;
  std::string clock_run_id_;  // the run_id the samples are from
  Clock::time_point time_sent_{};
  bool time_outstanding_ = false;
  bool time_refused_ = false;  // on this connection
  bool time_refusal_reported_ = false;
  bool clock_checked_ = false;  // long enough to catch a clock twice as fast
  // For votes(), from any thread.
  std::atomic<Clock::rep> votes_from_any_{0};
  std::atomic<bool> clock_excluded_{false};  // suspect, or not timed yet
};

}  // namespace redlock::detail
