#include "quorum_op.hpp"

namespace redlock::detail {

void QuorumOp::start_round(const std::string& wire,
                           const std::shared_ptr<const std::string>& fallback, milliseconds ttl,
                           milliseconds min_validity, ErrorCode refused,
                           std::optional<Clock::time_point> deadline) {
  ++tag_;
  auto& nodes = ctx_.nodes;
  const std::size_t n = nodes.size();
  const auto start = now();
  round_ =
      std::make_unique<RoundState>(n, start, ttl, ctx_.options.drift_factor, min_validity, refused);
  auto& results = round_->results;
  results.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    results.push_back(node_result(nodes.name(i), NodeStatus::kPending));
  }
  round_->sent.assign(n, false);
  if (deadline) round_->deadline = *deadline;
  const auto self = shared_from_this();
  // Gated only where the gate can answer now: else every node at once.
  const bool gated = gate_ < n && fallback && fallback.get() == &wire &&
                     nodes.connected(gate_, route_) && !nodes.vote_block(gate_, route_, start);
  for (std::size_t i = 0; i < n; ++i) {
    if (auto why = nodes.vote_block(i, route_, start)) {
      // Restart-aware voting, clock exclusion: not asked, and counted as a "no".
      round_->results[i].status = NodeStatus::kNotVoting;
      round_->results[i].detail = std::move(*why);
      round_->vote(i, NodeStatus::kNotVoting, start);
      continue;
    }
    // Once decided, send nothing more, but still say why a node that is
    // down could not vote.
    if (round_->decided() && nodes.connected(i, route_)) continue;
    if (gated && i != gate_) continue;  // asked once the gate lets the round through
    send_to(i, wire, fallback, start, self);
  }
  if (gated) {
    round_->gated_wire = fallback;
    // The gate failed at once: the others are asked now.
    if (!round_->sent[gate_]) pass_gate(start);
  } else {
    gate_ = kNoGate;
  }
  if (round_->decided()) {
    decide(now());
    return;
  }
  if (round_timer_ == 0) arm_round_timer(start + node_timeout_);
}

void QuorumOp::send_to(std::size_t i, const std::string& wire,
                       const std::shared_ptr<const std::string>& fallback, Clock::time_point t,
                       const std::shared_ptr<Operation>& self) {
  auto& nodes = ctx_.nodes;
  if (!round_->decided() && nodes.send(i, route_, wire, self, tag_, fallback)) {
    round_->sent[i] = true;
    return;
  }
  const auto error = nodes.last_error(i, route_);
  round_->results[i].status = NodeStatus::kDisconnected;
  round_->results[i].detail =
      error.empty() ? std::string("not connected") : "not connected: " + error;
  ctx_.metrics.node_reply(i, NodeStatus::kDisconnected, {});
  round_->vote(i, NodeStatus::kDisconnected, t);
}

void QuorumOp::arm_round_timer(Clock::time_point when) {
  ctx_.scheduler.cancel(round_timer_);
  round_timer_ = ctx_.scheduler.schedule(std::min(when, round_->deadline), weak_from_this(),
                                         [this] { on_round_timeout(); });
}

void QuorumOp::pass_gate(Clock::time_point t) {
  const auto wire = std::move(round_->gated_wire);
  const auto self = shared_from_this();
  for (std::size_t i = 0; i < round_->results.size(); ++i) {
    if (round_->sent[i] || round_->votes()[i] != NodeStatus::kPending) continue;
    send_to(i, *wire, wire, t, self);
  }
  // The others get a node timeout of their own; validity still counts from
  // the round's start.
  if (!round_->decided()) arm_round_timer(t + node_timeout_);
}

void QuorumOp::shut_gate(Clock::time_point t) {
  round_->gated_wire.reset();
  const auto why = "not asked: " + ctx_.nodes.name(gate_) + ", asked first, refused";
  for (std::size_t i = 0; i < round_->results.size(); ++i) {
    if (round_->sent[i] || round_->results[i].status != NodeStatus::kPending) continue;
    round_->results[i].status = NodeStatus::kRefused;
    round_->results[i].detail = why;
    round_->vote(i, NodeStatus::kRefused, t);
  }
}

void QuorumOp::on_reply(std::size_t node, std::uint32_t tag, const Reply* reply,
                        std::string_view failure) {
  // A round decided, an older one, or a gate that already voted for want of
  // an answer in time.
  if (done_ || tag != tag_ || !round_open() || round_->votes()[node] != NodeStatus::kPending) {
    if (reply != nullptr) on_late_reply(node, tag, *reply);
    return;
  }
  const auto t = now();
  auto& r = round_->results[node];
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
  if (round_->gated_wire && node == gate_ && !round_->decided()) {
    if (r.status == NodeStatus::kRefused) {
      shut_gate(t);
    } else {
      pass_gate(t);  // a yes, or an error that says nothing of the key
    }
  }
  if (round_->decided()) decide(t);
}

void QuorumOp::on_round_timeout() {
  round_timer_ = 0;
  if (done_ || !round_open()) return;
  const auto t = now();
  if (round_->gated_wire && t < round_->deadline) {
    // The gate did not answer in time: it votes no, and the others are
    // asked after all.
    round_->results[gate_].status = NodeStatus::kTimeout;
    round_->results[gate_].detail =
        "no answer within " + std::to_string(node_timeout_.count()) + " ms";
    ctx_.metrics.node_reply(gate_, NodeStatus::kTimeout, {});
    round_->vote(gate_, NodeStatus::kTimeout, t);
    pass_gate(t);
    if (round_->decided()) decide(t);
    return;
  }
  round_->expire(t);
  decide(t);
}

void QuorumOp::decide(Clock::time_point t) {
  ctx_.scheduler.cancel(round_timer_);
  round_timer_ = 0;
  round_->gated_wire.reset();
  for (std::size_t i = 0; i < round_->results.size(); ++i) {
    if (round_->votes()[i] == NodeStatus::kTimeout &&
        round_->results[i].status == NodeStatus::kPending) {
      round_->results[i].status = NodeStatus::kTimeout;
      round_->results[i].detail =
          round_->sent[i]
              ? "no answer within " + std::to_string(node_timeout_.count()) + " ms"
              : std::string("not asked: the round's deadline came while its gate was asked");
      ctx_.metrics.node_reply(i, NodeStatus::kTimeout, {});
    }
  }
  on_decided(t);
}

}  // namespace redlock::detail
