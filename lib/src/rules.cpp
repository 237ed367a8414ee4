#include "rules.hpp"

#include <algorithm>
#include <cmath>

namespace redlock::detail {

microseconds drift_allowance(milliseconds ttl, double drift_factor) noexcept {
  const double drift_us = std::ceil(static_cast<double>(ttl.count()) * 1000.0 * drift_factor);
  return microseconds(static_cast<microseconds::rep>(drift_us)) + milliseconds(2);
}

microseconds validity(milliseconds ttl, Clock::duration elapsed, double drift_factor) noexcept {
  // Round elapsed time up: a validity must never be overstated.
  const auto elapsed_us = std::chrono::ceil<microseconds>(elapsed);
  return std::chrono::duration_cast<microseconds>(ttl) - elapsed_us -
         drift_allowance(ttl, drift_factor);
}

milliseconds effective_node_timeout(milliseconds configured, milliseconds ttl) noexcept {
  if (configured.count() > 0) return configured;
  return std::clamp(ttl / 200, kMinAutoNodeTimeout, kMaxAutoNodeTimeout);
}

Round::Round(std::size_t n, Clock::time_point start, milliseconds ttl, double drift_factor,
             milliseconds min_validity, ErrorCode refused)
    : votes_(n, NodeStatus::kPending),
      start_(start),
      ttl_(ttl),
      drift_factor_(drift_factor),
      min_validity_(min_validity),
      quorum_(quorum(n)),
      refused_code_(refused) {}

void Round::vote(std::size_t node, NodeStatus status, Clock::time_point now) {
  if (decided() || node >= votes_.size() || votes_[node] != NodeStatus::kPending ||
      status == NodeStatus::kPending) {
    return;
  }
  votes_[node] = status;
  if (status == NodeStatus::kOk) {
    ++yes_;
  } else {
    ++no_;
    if (status == NodeStatus::kRefused) ++refused_;
  }
  decide(now);
}

void Round::expire(Clock::time_point now) {
  if (decided()) return;
  for (auto& v : votes_) {
    if (v == NodeStatus::kPending) {
      v = NodeStatus::kTimeout;
      ++no_;
    }
  }
  decide(now);
}

void Round::decide(Clock::time_point now) {
  const std::size_t n = votes_.size();
  if (yes_ >= quorum_) {
    validity_ = validity(ttl_, now - start_, drift_factor_);
    if (validity_ >= min_validity_) {
      state_ = State::kGranted;
      valid_until_ = start_ + std::chrono::duration_cast<microseconds>(ttl_) -
                     drift_allowance(ttl_, drift_factor_);
    } else {
      state_ = State::kFailed;
      failure_ = ErrorCode::kValidityExhausted;
    }
    return;
  }
  if (no_ > n - quorum_) {
    state_ = State::kFailed;
    failure_ = refused_ > 0 ? refused_code_ : ErrorCode::kNoQuorum;
  }
}

milliseconds reconnect_delay(int failures, milliseconds min, milliseconds max,
                             double unit_random) noexcept {
  failures = std::clamp(failures, 0, 30);
  const double nominal = std::min(static_cast<double>(max.count()),
                                  static_cast<double>(min.count()) * std::pow(2.0, failures));
  unit_random = std::clamp(unit_random, 0.0, 1.0);
  const double d = nominal / 2.0 + nominal / 2.0 * unit_random;
  return milliseconds(std::max<milliseconds::rep>(1, static_cast<milliseconds::rep>(d)));
}

VotingDecision restart_rule(std::string_view previous_run_id, std::string_view run_id,
                            std::optional<std::chrono::seconds> uptime, milliseconds grace,
                            Clock::time_point now, Clock::time_point current_votes_from) noexcept {
  VotingDecision d{current_votes_from, false};
  if (grace.count() <= 0) return {Clock::time_point{}, false};
  if (!previous_run_id.empty() && !run_id.empty() && run_id != previous_run_id) {
    // Seen restarting: the whole grace from now (the restart happened at
    // most a reconnect ago, and may have been just now).
    d.votes_from = std::max(current_votes_from, now + grace);
    d.restarted = true;
    return d;
  }
  if (previous_run_id.empty() && uptime) {
    // First sight: the process started at most `uptime` (+ < 1 s, as INFO
    // rounds down) ago, so it may vote once `grace` has passed since then.
    // Counting from the rounded-down uptime errs on the side of waiting.
    if (*uptime < grace) {
      d.votes_from = std::max(current_votes_from,
                              now + (grace - std::chrono::duration_cast<milliseconds>(*uptime)));
    }
  }
  return d;
}

std::optional<std::string_view> info_field(std::string_view info, std::string_view field) noexcept {
  std::size_t pos = 0;
  while (pos < info.size()) {
    auto end = info.find('\n', pos);
    if (end == std::string_view::npos) end = info.size();
    auto line = info.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > field.size() && line.starts_with(field) && line[field.size()] == ':') {
      return line.substr(field.size() + 1);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace redlock::detail
