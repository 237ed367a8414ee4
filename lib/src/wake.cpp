#include "wake.hpp"

#include <algorithm>

namespace redlock::detail {

std::string release_channel(std::string_view key) {
  std::string out;
  out.reserve(kReleaseChannelPrefix.size() + key.size());
  out.append(kReleaseChannelPrefix);
  out.append(key);
  return out;
}

bool ChannelTable::add(const std::string& channel, ListenerId listener) {
  auto [it, created] = map_.try_emplace(channel);
  it->second.insert(listener);
  return created;
}

bool ChannelTable::remove(const std::string& channel, ListenerId listener) {
  auto it = map_.find(channel);
  if (it == map_.end() || it->second.erase(listener) == 0) return false;
  if (!it->second.empty()) return false;
  map_.erase(it);
  return true;
}

std::vector<ChannelTable::ListenerId> ChannelTable::listeners(const std::string& channel) const {
  auto it = map_.find(channel);
  if (it == map_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> ChannelTable::channels() const {
  std::vector<std::string> out;
  out.reserve(map_.size());
  for (const auto& [channel, _] : map_) out.push_back(channel);
  return out;
}

bool ChannelTable::contains(const std::string& channel) const { return map_.contains(channel); }

PushEvent read_push(const Reply& reply) {
  PushEvent e;
  if (reply.is_error()) {
    e.kind = PushEvent::Kind::kError;
    e.error = reply.str;
    return e;
  }
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 3) return e;
  const auto& kind = reply.elements[0];
  const auto& channel = reply.elements[1];
  if (kind.type != Reply::Type::kString || channel.type != Reply::Type::kString) return e;
  if (kind.str == "message") {
    e.kind = PushEvent::Kind::kMessage;
  } else if (kind.str == "subscribe") {
    e.kind = PushEvent::Kind::kSubscribe;
  } else if (kind.str == "unsubscribe") {
    e.kind = PushEvent::Kind::kUnsubscribe;
  } else {
    return e;
  }
  e.channel = channel.str;
  return e;
}

std::vector<std::string> subscription_commands(std::string_view verb,
                                               const std::vector<std::string>& channels,
                                               std::size_t per_command) {
  std::vector<std::string> out;
  per_command = std::max<std::size_t>(per_command, 1);
  for (std::size_t i = 0; i < channels.size(); i += per_command) {
    const std::size_t end = std::min(channels.size(), i + per_command);
    std::vector<std::string_view> argv;
    argv.reserve(1 + end - i);
    argv.push_back(verb);
    for (std::size_t j = i; j < end; ++j) argv.push_back(channels[j]);
    out.push_back(format_command(argv));
  }
  return out;
}

milliseconds contest_window(int k, Clock::duration round_took, milliseconds retry_delay) noexcept {
  const auto four =
      std::chrono::ceil<milliseconds>(4 * std::max(round_took, Clock::duration::zero()));
  auto window = std::max(kContestMinWindow, four);
  for (int i = 0; i < k && window < retry_delay; ++i) window *= 2;
  return std::min(window, retry_delay);
}

RetryPlan plan_retry(const RetryDecision& next, bool listening, int contest_left,
                     const FailedRound& round, milliseconds retry_delay, double unit_random,
                     Clock::time_point now, Clock::time_point deadline) noexcept {
  RetryPlan plan;
  const bool waits_for_wake = !next.delay && next.wait_exhausted && listening && now < deadline;
  if (!next.delay && !waits_for_wake) return plan;
  if (listening && contest_left > 0 && (round.woken || round.saw_free)) {
    const int k = kContestRetries - std::min(contest_left, kContestRetries);
    const auto window = contest_window(k, round.took, retry_delay);
    const double u = std::clamp(unit_random, 0.0, 1.0);
    auto at =
        now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(
                  static_cast<double>(window.count()) * u));
    if (next.delay) at = std::min(at, now + *next.delay);
    if (at < deadline) {
      plan.retry_at = at;
      plan.contest = true;
      return plan;
    }
  }
  if (next.delay) {
    plan.retry_at = now + *next.delay;
  } else {
    plan.give_up_at = deadline;
  }
  return plan;
}

Clock::time_point wait_deadline(Clock::time_point call_start, milliseconds max_wait) noexcept {
  if (max_wait.count() <= 0) return Clock::time_point::max();
  const auto room = std::chrono::duration_cast<milliseconds>(Clock::time_point::max() - call_start);
  if (max_wait >= room) return Clock::time_point::max();
  return call_start + max_wait;
}

}  // namespace redlock::detail
