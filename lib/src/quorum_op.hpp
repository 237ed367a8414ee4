// quorum_op.hpp: one command to every node, the answers tallied by a Round.
//
// A round is decided at the first majority of yes votes, as soon as a
// majority is impossible, or at its deadline (the node timeout). Acquire and
// extend are made of such rounds; each says what a reply means (classify)
// and what a decided round leads to (on_decided).
//
// A gated round (gate_) asks one node first and the others only once that
// node said yes, or could not answer; a gate that refuses ends the round with
// the others not asked. Contenders that gate on the same node are ordered by
// it, so that they cannot split the vote (AcquireOp says when).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "operation.hpp"

namespace redlock::detail {

class QuorumOp : public Operation {
 public:
  void on_reply(std::size_t node, std::uint32_t tag, const Reply* reply,
                std::string_view failure) final;

 protected:
  // `route`: where the commands on the operation's resources go (their slot).
  QuorumOp(const OpContext& ctx, milliseconds node_timeout, Route route)
      : ctx_(ctx), node_timeout_(node_timeout), route_(route) {}

  // What a node's reply means for this operation.
  virtual NodeStatus classify(const Reply& reply, std::string& detail) const = 0;
  // The round was decided (round_->decided()).
  virtual void on_decided(Clock::time_point now) = 0;
  // A reply of the current round, after classify() judged it `status`.
  virtual void on_answer(std::size_t /*node*/, const Reply& /*reply*/, NodeStatus /*status*/) {}
  // A reply for a round already decided, or an older one.
  virtual void on_late_reply(std::size_t /*node*/, std::uint32_t /*tag*/, const Reply& /*reply*/) {}

  // Sends `wire` to every node that votes and tallies the answers. Nodes left
  // out of the vote (restart grace, suspect clock) and nodes that are down
  // vote "no" at once. `deadline` bounds the round besides the node timeout.
  // With gate_ set, and the gate node voting and connected, the round is
  // gated: `wire` goes to the gate first, and `fallback` must be `wire`
  // itself (it is what goes to the others later). The round's validity is
  // timed from before the gate's send; the others get their own node timeout.
  void start_round(const std::string& wire, const std::shared_ptr<const std::string>& fallback,
                   milliseconds ttl, milliseconds min_validity, ErrorCode refused,
                   std::optional<Clock::time_point> deadline = std::nullopt);

  [[nodiscard]] bool round_open() const noexcept { return round_ && !round_->decided(); }
  // Frees what only a decided round needs (its votes and answers) while the
  // operation waits for its next one; a late reply then finds no round.
  void drop_round() { round_.reset(); }
  [[nodiscard]] Clock::time_point now() const { return ctx_.scheduler.now(); }

  const OpContext& ctx_;  // the engine's: outlives every operation
  milliseconds node_timeout_;
  Route route_;
  std::uint32_t tag_ = 0;
  // A round and what only it needs, from start_round to drop_round: an
  // operation that waits for its next round keeps none of it.
  struct RoundState : Round {
    using Round::Round;
    std::vector<NodeResult> results;  // one per node, filled as answers come
    std::vector<bool> sent;           // nodes the round's command went to
    // While a gated round waits for its gate: the command the others get.
    std::shared_ptr<const std::string> gated_wire;
    Clock::time_point deadline = Clock::time_point::max();  // start_round's
  };
  std::unique_ptr<RoundState> round_;  // the open or last decided round (none while waiting)
  Scheduler::TimerId round_timer_ = 0;
  static constexpr std::size_t kNoGate = static_cast<std::size_t>(-1);
  // Set before start_round: the node the round asks first (kNoGate: every
  // node at once). start_round clears it when the gate cannot answer now.
  std::size_t gate_ = kNoGate;
  bool done_ = false;

 private:
  void on_round_timeout();
  void decide(Clock::time_point now);
  // Sends the round's command to node i (or votes it down, not connected).
  void send_to(std::size_t i, const std::string& wire,
               const std::shared_ptr<const std::string>& fallback, Clock::time_point now,
               const std::shared_ptr<Operation>& self);
  // The gate said yes or could not answer: the others are asked now.
  void pass_gate(Clock::time_point now);
  // The gate refused: the round ends; the others vote no, not asked.
  void shut_gate(Clock::time_point now);
  void arm_round_timer(Clock::time_point when);
};

}  // namespace redlock::detail
