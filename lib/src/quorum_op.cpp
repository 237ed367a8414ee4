#include "quorum_op.hpp"

namespace redlock::detail {

void QuorumOp::start_round(const std::string& wire,
                           const std::shared_ptr<const std::string>& fallback, milliseconds ttl,
                           milliseconds min_validity, ErrorCode refused,
                           std::optional<Clock::time_point> deadline) {
  ++tag_;
  auto& nodes = ctx_.nodes;
  const std::size_t n = nodes.size();
  results_.clear();
  results_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    results_.push_back(node_result(nodes.name(i), NodeStatus::kPending));
  }
  sent_.assign(n, false);
  const auto start = now();
  round_ = std::make_unique<Round>(n, start, ttl, ctx_.options.drift_factor, min_validity, refused);
  const auto self = shared_from_this();
  for (std::size_t i = 0; i < n; ++i) {
    if (auto why = nodes.vote_block(i, route_, start)) {
      // Restart-aware voting, clock exclusion: not asked, and counted as a "no".
      results_[i].status = NodeStatus::kNotVoting;
      results_[i].detail = std::move(*why);
      round_->vote(i, NodeStatus::kNotVoting, start);
      continue;
    }
    // Once decided, send nothing more, but still say why a node that is
    // down could not vote.
    if (round_->decided() && nodes.connected(i, route_)) continue;
    if (!round_->decided() && nodes.send(i, route_, wire, self, tag_, fallback)) {
      sent_[i] = true;
    } else {
      const auto error = nodes.last_error(i, route_);
      results_[i].status = NodeStatus::kDisconnected;
      results_[i].detail = error.empty() ? std::string("not connected") : "not connected: " + error;
      ctx_.metrics.node_reply(i, NodeStatus::kDisconnected, {});
      round_->vote(i, NodeStatus::kDisconnected, start);
    }
  }
  if (round_->decided()) {
    decide(now());
    return;
  }
  const auto when = std::min(start + node_timeout_, deadline.value_or(Clock::time_point::max()));
  auto weak = weak_from_this();
  round_timer_ = ctx_.scheduler.schedule(when, [weak] {
    if (auto op = weak.lock()) static_cast<QuorumOp*>(op.get())->on_round_timeout();
  });
}

void QuorumOp::on_reply(std::size_t node, std::uint32_t tag, const Reply* reply,
                        std::string_view failure) {
  if (done_ || tag != tag_ || !round_open()) {
    if (reply != nullptr) on_late_reply(node, tag, *reply);
    return;
  }
  const auto t = now();
  auto& r = results_[node];
  r.rtt = std::chrono::duration_cast<microseconds>(t - round_->start());
  if (reply == nullptr) {
    r.status = NodeStatus::kDisconnected;
    r.detail = std::string(failure);
  } else {
    r.status = classify(*reply, r.detail);
    on_answer(node, *reply, r.status);
  }
  ctx_.metrics.node_reply(node, r.status, r.rtt);
  round_->vote(node, r.status, t);
  if (round_->decided()) decide(t);
}

void QuorumOp::on_round_timeout() {
  round_timer_ = 0;
  if (done_ || !round_open()) return;
  const auto t = now();
  round_->expire(t);
  decide(t);
}

void QuorumOp::decide(Clock::time_point t) {
  ctx_.scheduler.cancel(round_timer_);
  round_timer_ = 0;
  for (std::size_t i = 0; i < results_.size(); ++i) {
    if (round_->votes()[i] == NodeStatus::kTimeout && results_[i].status == NodeStatus::kPending) {
      results_[i].status = NodeStatus::kTimeout;
      results_[i].detail = "no answer within " + std::to_string(node_timeout_.count()) + " ms";
      ctx_.metrics.node_reply(i, NodeStatus::kTimeout, {});
    }
  }
  on_decided(t);
}

}  // namespace redlock::detail
