// acquire_op.hpp: an acquire, from its first round to its outcome.
//
// Rounds of SET NX PX (one resource, fencing off), the all-or-none script
// (several) or the fenced acquire script (fencing on) go to every node,
// retried with jitter until granted, cancelled or out of budget. A failed
// round releases whatever it set. With fencing, a grant whose fence fewer
// than a majority hold is made durable by a raise round before it is handed
// out. A waiter listens for release announcements of its resources and
// retries at once when one comes (wake-on-release). Once its resources' gate
// node said the lock is held, the rounds an announcement or a contest starts
// are gated on that node (AcquireOptions::contest_gate, QuorumOp).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "quorum_op.hpp"
#include "redlock/callbacks.hpp"
#include "token.hpp"

namespace redlock::detail {

class AcquireOp final : public QuorumOp, public ReleaseListener {
 public:
  // `resources` and `options` were validated by the caller.
  AcquireOp(const OpContext& ctx, std::vector<std::string> resources, std::string_view token,
            milliseconds ttl, const AcquireOptions& options, AcquireDone done);

  // Loop thread: the first round.
  void start();
  // Where the outcome was to go, for an acquire that was never started
  // (its post was refused): the caller's again.
  [[nodiscard]] AcquireDone take_done() { return std::move(deliver_to_); }
  void abort() override;

 private:
  void next_round() { begin_round(false); }       // to every node at once
  void next_gated_round() { begin_round(true); }  // gated when gate_held_
  void begin_round(bool gated);
  void cancel();
  NodeStatus classify(const Reply& reply, std::string& detail) const override;
  void on_answer(std::size_t node, const Reply& reply, NodeStatus status) override;
  void on_late_reply(std::size_t node, std::uint32_t tag, const Reply& reply) override;
  // Whether a refusal says that another token holds the key (rather than
  // this acquire's own, left by an earlier round).
  [[nodiscard]] bool held_by_another(const Reply& refusal) const;
  void on_decided(Clock::time_point now) override;
  // The round's command, made afresh for each round.
  [[nodiscard]] std::shared_ptr<const std::string> make_wire() const;
  void start_raise();
  void on_raise_decided(Clock::time_point now);
  [[nodiscard]] Error raise_error(std::string_view why) const;
  [[nodiscard]] ErrorCode durable_code() const;
  void fail_round(Clock::time_point now, Error error);
  void watch_releases();
  // Whether this acquire now has a gated round on its way to the announcing
  // node.
  bool on_release_announced(std::size_t node, bool gated) override;
  // The node contested rounds on these resources ask first.
  [[nodiscard]] std::size_t gate_node() const noexcept;
  // What a retry timer starts.
  enum class Step : std::uint8_t { kRound, kGatedRound, kGiveUp };
  void schedule_retry(Clock::time_point when, Step step);
  void give_up();
  [[nodiscard]] Error wait_timeout(const Error& last) const;
  [[nodiscard]] Error round_error(Clock::time_point now);
  void release_round();
  void complete(Result<Lock> result);
  // The round failed and the acquire waits: what only a round needs goes.
  void drop_round_state();
  [[nodiscard]] std::vector<std::string> round_keys() const;

  // Runs on whichever thread requests the stop: hands the cancel to the loop.
  struct StopRelay {
    Scheduler* scheduler;
    std::weak_ptr<Operation> op;
    void operator()() const;
  };
  // A grant whose fence is being made durable (start_raise).
  struct Raise {
    Clock::time_point valid_until;   // of the grant
    std::vector<NodeResult> votes;   // the granting round's
    std::vector<bool> acquire_sent;  // where the granting round's command went
  };

  std::vector<std::string> resources_;
  milliseconds ttl_;
  AcquireOptions options_;
  AcquireDone deliver_to_;
  Clock::time_point call_start_;
  int attempts_ = 0;
  std::uint32_t granted_tag_ = 0;
  std::uint32_t raise_tag_ = 0;
  const bool fenced_;  // ClientOptions::fencing
  InlineToken token_;  // 1-aligned: fills what the fields around it leave
  Scheduler::TimerId retry_timer_ = 0;
  ReleaseWatch::WatchId watch_ = 0;  // listening for release announcements
  int contest_left_ = 0;             // contest retries left since the last announcement
  bool woken_ = false;               // one came while a round was open
  bool contest_pause_ = false;       // retry_timer_ is a contest pause
  // The last round found another token's key on gate_node(): only its
  // announcements wake this acquire, and they start gated rounds.
  bool gate_held_ = false;
  bool gate_grace_ = false;            // retry_timer_ is the grace before asking a silent gate
  Clock::time_point gate_heard_at_{};  // the gate's last announcement
  std::unique_ptr<Error> last_error_;  // while waiting only for an announcement
  // Behind a pointer: most acquires have no stop token, and a stop_callback
  // is 80 bytes that a waiting acquire would keep for nothing.
  std::unique_ptr<std::stop_callback<StopRelay>> stop_callback_;
  // Per node, for the open round (fenced): the fence its acquire returned,
  // and whether it found the key held by another token, so that a failed
  // round has nothing of this acquire's to release there.
  struct FencedAnswer {
    std::uint64_t fence = 0;
    bool foreign = false;
  };
  std::vector<FencedAnswer> answers_;
  std::uint64_t fence_ = 0;       // the grant's fence: the largest of them
  std::unique_ptr<Raise> raise_;  // while the fence is being made durable
};

}  // namespace redlock::detail
