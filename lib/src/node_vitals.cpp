#include "node_vitals.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

namespace redlock::detail {

NodeVitals::NodeVitals(const NodeContext& ctx, std::size_t index, const std::string& name)
    : ctx_(ctx),
      index_(index),
      name_(name),
      clock_(ctx.options.drift_factor, ctx.options.clock_check_interval * kClockWindowIntervals) {}

void NodeVitals::on_server_info(std::string_view info, Clock::time_point now) {
  const auto run_id = info_field(info, "run_id").value_or("");
  version_ = std::string(info_field(info, "redis_version").value_or(""));
  std::optional<std::chrono::seconds> uptime;
  if (auto text = info_field(info, "uptime_in_seconds")) {
    long long v = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec == std::errc() && end == text->data() + text->size() && v >= 0) {
      uptime = std::chrono::seconds(v);
    }
  }
  const auto grace = ctx_.restart_grace;
  const auto d = restart_rule(run_id_, run_id, uptime, grace, now, votes_from_);
  if (d.restarted) {
    ctx_.metrics.restart(index_);
    not_voting_why_ = "restarted (run_id " + run_id_.substr(0, 8) + " -> " +
                      std::string(run_id.substr(0, 8)) + ")";
    ctx_.log.warn(
        "node {} restarted (run_id changed); it may have lost its keys, so it does not vote for "
        "{} ms",
        name_, grace.count());
  } else if (d.votes_from > votes_from_) {
    not_voting_why_ = "up for only " + std::to_string(uptime ? uptime->count() : 0) + " s";
    ctx_.log.warn(
        "node {} has been up for only {} s; it does not vote for another {} ms (restart_grace {} "
        "ms)",
        name_, uptime ? uptime->count() : 0,
        std::chrono::ceil<milliseconds>(d.votes_from - now).count(), grace.count());
  }
  votes_from_ = d.votes_from;
  votes_from_any_.store(votes_from_.time_since_epoch().count());
  uptime_ = uptime;
  handshake_at_ = now;
  if (!run_id.empty()) run_id_ = std::string(run_id);
}

bool NodeVitals::clock_pending() const noexcept {
  return ctx_.options.exclude_suspect_clocks && ctx_.options.clock_check_interval.count() > 0 &&
         !time_refused_ && !clock_checked_;
}

std::optional<std::string> NodeVitals::vote_block(Clock::time_point now, bool connected) const {
  if (ctx_.options.exclude_suspect_clocks && clock_.suspect()) return clock_.reason();
  // A restart's grace before a clock not yet timed: it is the cause, and it
  // lasts longer (a new connection's clock is timed within a few samples).
  if (now < votes_from_) {
    return not_voting_why_ + "; votes again in " +
           std::to_string(std::chrono::ceil<milliseconds>(votes_from_ - now).count()) + " ms";
  }
  if (connected && clock_pending()) return std::string("its clock has not been timed yet");
  return std::nullopt;
}

bool NodeVitals::votes(Clock::time_point now) const noexcept {
  return !clock_excluded_.load() &&
         now >= Clock::time_point(Clock::duration(votes_from_any_.load()));
}

std::optional<std::chrono::seconds> NodeVitals::uptime(Clock::time_point now) const {
  if (!uptime_) return std::nullopt;
  return *uptime_ + std::chrono::floor<std::chrono::seconds>(now - handshake_at_);
}

void NodeVitals::on_connected() {
  if (run_id_.empty() || run_id_ != clock_run_id_) reset_clock();
  clock_run_id_ = run_id_;
  time_refused_ = false;
  time_outstanding_ = false;
  clock_excluded_.store(clock_pending() ||
                        (ctx_.options.exclude_suspect_clocks && clock_.suspect()));
}

bool NodeVitals::want_time_sample(Clock::time_point now) {
  if (time_outstanding_ || time_refused_) return false;
  time_outstanding_ = true;
  time_sent_ = now;
  return true;
}

void NodeVitals::on_time_reply(const Reply* reply, Clock::time_point now) {
  time_outstanding_ = false;
  if (reply == nullptr) return;  // the connection failed
  if (reply->is_error()) {
    // Until the next connection: an ACL without +time, most likely. The
    // clock cannot be timed, so it cannot keep the node out of the vote.
    time_refused_ = true;
    clock_excluded_.store(false);
    if (!time_refusal_reported_) {
      time_refusal_reported_ = true;
      ctx_.log.warn("node {}: TIME refused ({}): its clock cannot be checked (grant +time)", name_,
                    reply->str);
    }
    return;
  }
  std::optional<std::int64_t> node_us;
  if (reply->type == Reply::Type::kArray && reply->elements.size() == 2) {
    node_us = time_reply_us(reply->elements[0].str, reply->elements[1].str);
  }
  if (!node_us) {
    ctx_.log.debug("node {}: unexpected reply to TIME", name_);
    return;
  }
  const bool was_suspect = clock_.suspect();
  const bool changed = clock_.add({time_sent_, now, *node_us});
  if (!clock_checked_ && clock_.would_catch(kFirstClockRateError)) clock_checked_ = true;
  clock_excluded_.store(clock_pending() ||
                        (ctx_.options.exclude_suspect_clocks && clock_.suspect()));
  // Logged before the metrics say it: whoever reads them finds the log line
  // already written.
  if (changed && clock_.suspect()) {
    ctx_.log.warn(
        "node {}: {}; Redlock assumes every node's clock runs at the client's rate (drift_factor "
        "{}){}",
        name_, clock_.reason(), ctx_.options.drift_factor,
        ctx_.options.exclude_suspect_clocks ? ": it does not vote" : "");
  } else if (changed) {
    ctx_.log.info("node {}: clock looks sane again (rate {:.4f} over the last {} samples)", name_,
                  clock_.rate().value_or(1.0), clock_.samples());
  }
  ctx_.metrics.clock_state(index_, clock_.rate(), clock_.suspect(), clock_.reason());
  if (!changed) return;
  if (!clock_.suspect()) {
    ctx_.metrics.clock_changed(index_, false, {});
  } else if (!was_suspect) {
    ctx_.metrics.clock_changed(index_, true, clock_.reason());
  }
}

void NodeVitals::reset_clock() {
  const bool was_suspect = clock_.suspect();
  clock_.reset();
  clock_checked_ = false;
  clock_excluded_.store(clock_pending());
  ctx_.metrics.clock_state(index_, std::nullopt, false, {});
  if (was_suspect) {
    ctx_.log.info("node {}: another server (run_id {}): its clock is checked afresh", name_,
                  run_id_.empty() ? std::string("unknown") : run_id_.substr(0, 8));
    ctx_.metrics.clock_changed(index_, false, {});
  }
}

}  // namespace redlock::detail
