#include "engine.hpp"

#include <netdb.h>
#include <pthread.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstring>

#include "token.hpp"
#include "wake.hpp"

namespace redlock::detail {
namespace {

constexpr std::chrono::milliseconds kShutdownGrace{1000};

std::string format_ms(Clock::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(us) / 1000.0);
  return buf;
}

// A user callback must not take the loop thread down with it.
template <typename Callback, typename Value>
void invoke_user(spdlog::logger& log, Callback& callback, Value&& value) {
  if (!callback) return;
  auto cb = std::move(callback);
  callback = nullptr;
  try {
    cb(std::forward<Value>(value));
  } catch (const std::exception& e) {
    log.error("a redlock callback threw: {}", e.what());
  } catch (...) {
    log.error("a redlock callback threw a non-standard exception");
  }
}

NodeResult node_result(const std::string& name, NodeStatus status, std::string detail = {},
                       std::chrono::microseconds rtt = std::chrono::microseconds(0)) {
  return NodeResult{name, status, std::move(detail), rtt};
}

Result<sockaddr_storage> resolve(const NodeAddress& node, const std::string& host,
                                 std::uint16_t port_number) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(port_number);
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res) {
    return Unexpected(Error(ErrorCode::kInvalidArgument, "node \"" + node.display +
                                                             "\": cannot resolve host \"" + host +
                                                             "\": " + gai_strerror(rc)));
  }
  sockaddr_storage out{};
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  return out;
}

// ---------------------------------------------------------------------------
// Release: compare-and-delete of a set of keys on a set of nodes.

class ReleaseOp final : public Operation {
 public:
  ReleaseOp(Engine& engine, std::vector<std::string> keys, std::string token,
            Clock::time_point key_expiry, std::vector<bool> targets, ReleaseCallback callback,
            bool announce)
      : engine_(engine),
        keys_(std::move(keys)),
        token_(std::move(token)),
        key_expiry_(key_expiry),
        targets_(std::move(targets)),
        callback_(std::move(callback)),
        announce_(announce) {}

  void start() {
    auto& nodes = engine_.nodes();
    if (targets_.empty()) targets_.assign(nodes.size(), true);
    report_.nodes.reserve(nodes.size());
    for (auto& n : nodes) report_.nodes.push_back(node_result(n->name(), NodeStatus::kPending));
    started_ = Clock::now();
    const std::string_view announce = announce_ ? "1" : "0";
    const std::string cmd = script_command(kReleaseScript, true, keys_, {token_, announce});
    const auto fallback = std::make_shared<const std::string>(
        script_command(kReleaseScript, false, keys_, {token_, announce}));
    // Count every target before sending: a node that fails at once must not
    // complete the release while others have not been asked yet.
    outstanding_ = static_cast<std::size_t>(std::count(targets_.begin(), targets_.end(), true));
    if (outstanding_ == 0) {
      complete();
      return;
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (!targets_[i]) {
        report_.nodes[i].status = NodeStatus::kRefused;
        report_.nodes[i].detail = "not asked";
        continue;
      }
      if (!nodes[i]->send(cmd, shared_from_this(), 0, fallback)) {
        nodes[i]->remember_cleanup(keys_, token_, key_expiry_);
        answer(i, NodeStatus::kDisconnected, "not connected; released when it reconnects");
      }
    }
    if (done_) return;
    if (callback_) {
      engine_.add_active(shared_from_this());
      auto weak = weak_from_this();
      timer_ = engine_.schedule(started_ + engine_.options().release_timeout, [weak] {
        if (auto self = weak.lock()) static_cast<ReleaseOp*>(self.get())->on_timeout();
      });
    }
  }

  void on_reply(std::size_t node, std::uint32_t, const Reply* reply,
                std::string_view failure) override {
    if (reply == nullptr) {
      engine_.nodes()[node]->remember_cleanup(keys_, token_, key_expiry_);
      answer(node, NodeStatus::kDisconnected, std::string(failure));
    } else if (reply->type == Reply::Type::kInteger) {
      answer(node, reply->integer > 0 ? NodeStatus::kOk : NodeStatus::kRefused, {});
    } else if (reply->is_error()) {
      answer(node, NodeStatus::kError, reply->str);
    } else {
      answer(node, NodeStatus::kError, "unexpected reply to the release script");
    }
  }

  void abort() override { complete(); }

 private:
  void answer(std::size_t node, NodeStatus status, std::string detail) {
    if (done_ || report_.nodes[node].status != NodeStatus::kPending) return;
    auto& r = report_.nodes[node];
    r.status = status;
    r.detail = std::move(detail);
    r.rtt = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
    engine_.metrics().node_reply(node, status, r.rtt);
    if (status == NodeStatus::kOk) ++report_.deleted;
    if (--outstanding_ == 0) complete();
  }

  void on_timeout() {
    if (done_) return;
    for (std::size_t i = 0; i < report_.nodes.size(); ++i) {
      auto& r = report_.nodes[i];
      if (r.status == NodeStatus::kPending) {
        r.status = NodeStatus::kTimeout;
        r.detail = "no answer within release_timeout";
        engine_.metrics().node_reply(i, NodeStatus::kTimeout, {});
      }
    }
    complete();
  }

  void complete() {
    if (done_) return;
    done_ = true;
    engine_.cancel(timer_);
    if (callback_) {
      invoke_user(engine_.log(), callback_, Result<ReleaseReport>(std::move(report_)));
      engine_.remove_active(this);
    }
  }

  Engine& engine_;
  std::vector<std::string> keys_;
  std::string token_;
  Clock::time_point key_expiry_;
  std::vector<bool> targets_;
  ReleaseCallback callback_;
  bool announce_;  // publish each deleted key's release (wake-on-release)
  ReleaseReport report_;
  Clock::time_point started_{};
  std::size_t outstanding_ = 0;
  Engine::TimerId timer_ = 0;
  bool done_ = false;
};

// ---------------------------------------------------------------------------
// One command to every node, the answers tallied by a Round: decided at the
// first majority of yes votes, as soon as a majority is impossible, or at the
// round's deadline. Acquire and extend are both made of such rounds.

class QuorumOp : public Operation {
 protected:
  QuorumOp(Engine& engine, milliseconds node_timeout)
      : engine_(engine), node_timeout_(node_timeout) {}

  // What a node's reply means for this operation.
  virtual NodeStatus classify(const Reply& reply, std::string& detail) const = 0;
  // The round was decided (round_->decided()).
  virtual void on_decided(Clock::time_point now) = 0;
  // A reply of the current round, after classify() judged it `status`.
  virtual void on_answer(std::size_t /*node*/, const Reply& /*reply*/, NodeStatus /*status*/) {}
  // A reply for a round already decided, or an older one.
  virtual void on_late_reply(std::size_t /*node*/, std::uint32_t /*tag*/, const Reply& /*reply*/) {}

  void start_round(const std::string& wire, const std::shared_ptr<const std::string>& fallback,
                   milliseconds ttl, milliseconds min_validity, ErrorCode refused,
                   std::optional<Clock::time_point> deadline = std::nullopt) {
    ++tag_;
    auto& nodes = engine_.nodes();
    results_.clear();
    for (auto& n : nodes) results_.push_back(node_result(n->name(), NodeStatus::kPending));
    sent_.assign(nodes.size(), false);
    const auto start = Clock::now();
    round_.emplace(nodes.size(), start, ttl, engine_.options().drift_factor, min_validity, refused);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (auto why = nodes[i]->vote_block(start)) {
        // Restart-aware voting: not asked, and counted as a "no".
        results_[i].status = NodeStatus::kNotVoting;
        results_[i].detail = std::move(*why);
        round_->vote(i, NodeStatus::kNotVoting, start);
        continue;
      }
      // Once decided, send nothing more, but still say why a node that is
      // down could not vote.
      if (round_->decided() && nodes[i]->connected()) continue;
      if (!round_->decided() && nodes[i]->send(wire, shared_from_this(), tag_, fallback)) {
        sent_[i] = true;
      } else {
        results_[i].status = NodeStatus::kDisconnected;
        results_[i].detail = nodes[i]->last_error().empty()
                                 ? std::string("not connected")
                                 : "not connected: " + nodes[i]->last_error();
        engine_.metrics().node_reply(i, NodeStatus::kDisconnected, {});
        round_->vote(i, NodeStatus::kDisconnected, start);
      }
    }
    if (round_->decided()) {
      decide(Clock::now());
      return;
    }
    const auto when = std::min(start + node_timeout_, deadline.value_or(Clock::time_point::max()));
    auto weak = weak_from_this();
    round_timer_ = engine_.schedule(when, [weak] {
      if (auto self = weak.lock()) static_cast<QuorumOp*>(self.get())->on_round_timeout();
    });
  }

  [[nodiscard]] bool round_open() const noexcept { return round_ && !round_->decided(); }

 public:
  void on_reply(std::size_t node, std::uint32_t tag, const Reply* reply,
                std::string_view failure) final {
    if (done_ || tag != tag_ || !round_open()) {
      if (reply != nullptr) on_late_reply(node, tag, *reply);
      return;
    }
    const auto now = Clock::now();
    auto& r = results_[node];
    r.rtt = std::chrono::duration_cast<std::chrono::microseconds>(now - round_->start());
    if (reply == nullptr) {
      r.status = NodeStatus::kDisconnected;
      r.detail = std::string(failure);
    } else {
      r.status = classify(*reply, r.detail);
      on_answer(node, *reply, r.status);
    }
    engine_.metrics().node_reply(node, r.status, r.rtt);
    round_->vote(node, r.status, now);
    if (round_->decided()) decide(now);
  }

 private:
  void on_round_timeout() {
    round_timer_ = 0;
    if (done_ || !round_open()) return;
    const auto now = Clock::now();
    round_->expire(now);
    decide(now);
  }

  void decide(Clock::time_point now) {
    engine_.cancel(round_timer_);
    round_timer_ = 0;
    for (std::size_t i = 0; i < results_.size(); ++i) {
      if (round_->votes()[i] == NodeStatus::kTimeout &&
          results_[i].status == NodeStatus::kPending) {
        results_[i].status = NodeStatus::kTimeout;
        results_[i].detail = "no answer within " + std::to_string(node_timeout_.count()) + " ms";
        engine_.metrics().node_reply(i, NodeStatus::kTimeout, {});
      }
    }
    on_decided(now);
  }

 protected:
  Engine& engine_;
  milliseconds node_timeout_;
  std::uint32_t tag_ = 0;
  std::optional<Round> round_;
  std::vector<NodeResult> results_;
  std::vector<bool> sent_;  // nodes the current round's command went to
  Engine::TimerId round_timer_ = 0;
  bool done_ = false;
};

std::string describe(const std::vector<std::string>& resources) {
  if (resources.size() == 1) return "resource \"" + resources.front() + "\"";
  std::string out = "resources {";
  for (std::size_t i = 0; i < resources.size(); ++i) {
    out += (i > 0 ? ", \"" : "\"") + resources[i] + "\"";
  }
  return out + "}";
}

// ---------------------------------------------------------------------------
// Acquire: rounds of SET NX PX (one resource) or the all-or-none script
// (several) on every node, retried with jitter until granted, cancelled or
// out of budget.

class AcquireOp final : public QuorumOp {
 public:
  AcquireOp(Engine& engine, std::vector<std::string> resources, std::string token, milliseconds ttl,
            const AcquireOptions& options, AcquireCallback callback)
      : QuorumOp(engine, effective_node_timeout(options.node_timeout.count() > 0
                                                    ? options.node_timeout
                                                    : engine.options().node_timeout,
                                                ttl)),
        resources_(std::move(resources)),
        token_(std::move(token)),
        ttl_(ttl),
        options_(options),
        callback_(std::move(callback)),
        call_start_(Clock::now()),
        fenced_(engine.options().fencing) {
    const std::string ttl_ms = std::to_string(ttl.count());
    if (fenced_) {
      // KEYS: the resources, then their fencing counters.
      std::vector<std::string> keys = resources_;
      for (const auto& r : resources_) counters_.push_back(std::string(kFencePrefix) + r);
      keys.insert(keys.end(), counters_.begin(), counters_.end());
      wire_ = script_command(kFencedAcquireScript, true, keys, {token_, ttl_ms});
      fallback_ = std::make_shared<const std::string>(
          script_command(kFencedAcquireScript, false, keys, {token_, ttl_ms}));
    } else if (resources_.size() == 1) {
      wire_ = set_nx_px_command(resources_.front(), token_, ttl.count());
    } else {
      wire_ = script_command(kAcquireAllScript, true, resources_, {token_, ttl_ms});
      fallback_ = std::make_shared<const std::string>(
          script_command(kAcquireAllScript, false, resources_, {token_, ttl_ms}));
    }
  }

  void start() {
    engine_.add_active(shared_from_this());
    if (options_.stop.stop_possible()) {
      // Runs on whichever thread requests the stop: hand it to the loop.
      Engine* engine = &engine_;
      auto weak = weak_from_this();
      stop_callback_.emplace(options_.stop, [engine, weak] {
        (void)engine->post([weak] {
          if (auto self = weak.lock()) static_cast<AcquireOp*>(self.get())->cancel();
        });
      });
    }
    if (!done_) next_round();
  }

  void abort() override {
    if (done_) return;
    if (round_open()) release_round();
    complete(Unexpected(Error(ErrorCode::kShuttingDown, "the client is shutting down")));
  }

 private:
  void next_round() {
    retry_timer_ = 0;
    contest_pause_ = false;
    if (options_.stop.stop_requested()) {
      cancel();
      return;
    }
    ++attempts_;
    fences_.assign(engine_.nodes().size(), 0);
    start_round(wire_, fallback_, ttl_, options_.min_validity, ErrorCode::kHeldByAnother);
  }

  void cancel() {
    if (done_) return;
    if (round_open()) release_round();
    complete(Unexpected(
        Error(ErrorCode::kCancelled, describe(resources_) + ": acquire cancelled after " +
                                         std::to_string(attempts_) + " attempt(s)")));
  }

  NodeStatus classify(const Reply& reply, std::string& detail) const override {
    if (raising_) {
      if (reply.type == Reply::Type::kInteger && reply.integer == 1) return NodeStatus::kOk;
      detail = reply.is_error() ? reply.str : "unexpected reply to the fence raise";
      return NodeStatus::kError;
    }
    if (fenced_                  ? reply.type == Reply::Type::kInteger && reply.integer > 0
        : resources_.size() == 1 ? reply.is_status("OK")
                                 : reply.type == Reply::Type::kInteger && reply.integer == 1) {
      return NodeStatus::kOk;
    }
    if (reply.type == Reply::Type::kNil ||
        (reply.type == Reply::Type::kInteger && reply.integer == 0)) {
      detail = "held by another token";
      return NodeStatus::kRefused;
    }
    detail = reply.is_error() ? reply.str : "unexpected reply";
    return NodeStatus::kError;
  }

  void on_answer(std::size_t node, const Reply& reply, NodeStatus status) override {
    if (fenced_ && !raising_ && status == NodeStatus::kOk) {
      fences_[node] = static_cast<std::uint64_t>(reply.integer);
    }
  }

  void on_late_reply(std::size_t node, std::uint32_t tag, const Reply& reply) override {
    std::string ignored;
    if (raising_ || tag == raise_tag_) return;  // raise replies carry no key
    if (tag != granted_tag_ && classify(reply, ignored) == NodeStatus::kOk) {
      engine_.metrics().late_reply_released(node);  // its round's cleanup covers it
    }
  }

  void on_decided(Clock::time_point now) override {
    if (raising_) {
      on_raise_decided(now);
      return;
    }
    if (round_->state() == Round::State::kGranted) {
      granted_tag_ = tag_;
      if (!fenced_) {
        complete(Lock(resources_, token_, round_->valid_until(), results_, ttl_));
        return;
      }
      // The fence is the largest counter among the nodes that granted. It is
      // handed out only once a majority holds it, so that every later
      // majority (which shares a node with this one) counts up from it.
      fence_ = 0;
      std::size_t at_fence = 0;
      for (const auto& f : fences_) fence_ = std::max(fence_, f);
      for (std::size_t i = 0; i < fences_.size(); ++i) {
        at_fence += round_->votes()[i] == NodeStatus::kOk && fences_[i] == fence_ ? 1U : 0U;
      }
      if (at_fence >= quorum(fences_.size())) {
        complete(Lock(resources_, token_, round_->valid_until(), results_, ttl_, fence_));
        return;
      }
      start_raise();
      return;
    }
    fail_round(now, round_error(now));
  }

  // Compare-and-raise of the counters to fence_ on every node, decided within
  // the lock's validity.
  void start_raise() {
    raising_ = true;
    valid_until_ = round_->valid_until();
    grant_votes_ = results_;
    acquire_sent_ = sent_;
    engine_.metrics().fence_raise();
    const std::string fence = std::to_string(fence_);
    const auto remaining = std::chrono::floor<milliseconds>(valid_until_ - Clock::now());
    if (remaining < options_.min_validity) {
      raising_ = false;
      sent_ = acquire_sent_;
      fail_round(Clock::now(), raise_error("no validity left to make the fence durable"));
      return;
    }
    raise_wire_ = script_command(kRaiseFenceScript, true, counters_, {fence});
    auto fallback = std::make_shared<const std::string>(
        script_command(kRaiseFenceScript, false, counters_, {fence}));
    // The Round only tallies here: its ttl is what is left of the lock's.
    start_round(raise_wire_, fallback, remaining, milliseconds(1), ErrorCode::kNoQuorum,
                valid_until_);
    raise_tag_ = tag_;
  }

  void on_raise_decided(Clock::time_point now) {
    raising_ = false;
    const bool durable = round_->state() == Round::State::kGranted;
    sent_ = acquire_sent_;
    if (durable && now + options_.min_validity <= valid_until_) {
      complete(Lock(resources_, token_, valid_until_, std::move(grant_votes_), ttl_, fence_));
      return;
    }
    fail_round(now, raise_error(durable ? "the fence became durable too late to leave min_validity"
                                        : "the fence could not be made durable on a majority"));
  }

  Error raise_error(std::string_view why) const {
    return Error(durable_code(),
                 describe(resources_) + ": granted with fence " + std::to_string(fence_) +
                     ", but " + std::string(why),
                 results_);
  }
  ErrorCode durable_code() const {
    return round_ && round_->state() == Round::State::kGranted ? ErrorCode::kValidityExhausted
                                                               : ErrorCode::kNoQuorum;
  }

  // A round failed (or its grant could not be completed): release, then
  // retry or report `error`.
  void fail_round(Clock::time_point now, Error error) {
    if (round_->refused() > 0) engine_.metrics().contended_round();
    // A failed round releases everywhere its command went, answered or not:
    // an OK still in flight must not leave a key behind, and on each
    // connection the release runs after the SET, so our own retry never
    // meets our own key.
    release_round();
    const RetryPolicy policy{options_.max_wait, options_.max_attempts, options_.retry_delay,
                             options_.retry_jitter};
    const auto next = next_retry(policy, attempts_, call_start_, now, engine_.random_unit());
    // Held by another and worth waiting for: listen for its release.
    if (round_->refused() > 0 && (next.delay || next.wait_exhausted)) watch_releases();
    const FailedRound failed{std::exchange(woken_, false), round_->yes() > 0,
                             now - round_->start()};
    const auto plan =
        plan_retry(next, watch_ != 0, contest_left_, failed, options_.retry_delay,
                   engine_.random_unit(), now, wait_deadline(call_start_, options_.max_wait));
    // A contest goes on while rounds say the lock may be free; a round that
    // finds it held again ends it.
    contest_left_ = plan.contest ? contest_left_ - 1 : 0;
    if (plan.retry_at) {
      if (plan.contest) engine_.metrics().wakeup();
      engine_.log().debug("acquire {}: round {} failed ({}), retrying in {} us",
                          describe(resources_), attempts_, to_string(error.code()),
                          std::chrono::duration_cast<microseconds>(*plan.retry_at - now).count());
      schedule_retry(*plan.retry_at, &AcquireOp::next_round);
      contest_pause_ = plan.contest;
      return;
    }
    if (plan.give_up_at) {
      // The jittered retry would start past max_wait: only an announced
      // release starts another round now.
      last_error_ = std::move(error);
      schedule_retry(*plan.give_up_at, &AcquireOp::give_up);
      return;
    }
    if (next.wait_exhausted) error = wait_timeout(error);
    complete(Unexpected(std::move(error)));
  }

  // Wake-on-release: listen for announcements of the resources' release
  // (once per acquire; complete() stops).
  void watch_releases() {
    if (!options_.wake_on_release || watch_ != 0) return;
    auto weak = weak_from_this();
    watch_ = engine_.watch_releases(resources_, [weak] {
      if (auto self = weak.lock()) static_cast<AcquireOp*>(self.get())->on_release_announced();
    });
  }

  void on_release_announced() {
    if (done_) return;
    // Other waiters may have been woken too: a contest (wake.hpp).
    if (contest_left_ == 0) contest_left_ = kContestRetries;
    if (retry_timer_ == 0 || contest_pause_) {
      // A round is open, or a contest pause runs (it stays random): if that
      // round fails, it is retried as a contest.
      woken_ = true;
      return;
    }
    // Waiting between rounds: start the next one now, as the retry timer
    // would have (so within max_attempts), but never past max_wait.
    if (Clock::now() >= wait_deadline(call_start_, options_.max_wait)) return;
    engine_.cancel(retry_timer_);
    engine_.metrics().wakeup();
    next_round();
  }

  void schedule_retry(Clock::time_point when, void (AcquireOp::*fn)()) {
    auto weak = weak_from_this();
    retry_timer_ = engine_.schedule(when, [weak, fn] {
      if (auto self = weak.lock()) (static_cast<AcquireOp*>(self.get())->*fn)();
    });
  }

  void give_up() {
    retry_timer_ = 0;
    if (done_ || !last_error_) return;
    complete(Unexpected(wait_timeout(*last_error_)));
  }

  Error wait_timeout(const Error& last) const {
    return Error(ErrorCode::kLockWaitTimeout,
                 describe(resources_) + " not acquired within " +
                     std::to_string(options_.max_wait.count()) + " ms (" +
                     std::to_string(attempts_) + " attempt(s); last: " +
                     std::string(to_string(last.code())) + ": " + last.message() + ")",
                 last.nodes());
  }

  Error round_error(Clock::time_point now) const {
    const auto n = results_.size();
    const auto need = quorum(n);
    std::string msg;
    switch (round_->failure()) {
      case ErrorCode::kValidityExhausted:
        msg = describe(resources_) + ": a majority agreed after " +
              format_ms(now - round_->start()) + ", leaving " +
              std::to_string(round_->validity_at_decision().count()) +
              " us of validity (min_validity " + std::to_string(options_.min_validity.count()) +
              " ms)";
        break;
      case ErrorCode::kHeldByAnother:
        msg = describe(resources_) + " is held by another owner (" + std::to_string(round_->yes()) +
              " of " + std::to_string(n) + " nodes granted, " + std::to_string(need) + " needed)";
        break;
      default:
        msg = describe(resources_) + ": only " + std::to_string(round_->yes()) + " of " +
              std::to_string(n) + " nodes granted, " + std::to_string(need) + " needed";
        break;
    }
    return Error(round_->failure(), std::move(msg), results_);
  }

  void release_round() {
    // While the fence is being raised, the keys are where the acquire went.
    auto& targets = raising_ ? acquire_sent_ : sent_;
    if (std::none_of(targets.begin(), targets.end(), [](bool b) { return b; })) return;
    engine_.start_release(resources_, token_, Clock::now() + ttl_, targets, nullptr);
    targets.assign(targets.size(), false);
  }

  void complete(Result<Lock> result) {
    if (done_) return;
    done_ = true;
    engine_.cancel(retry_timer_);
    retry_timer_ = 0;
    engine_.unwatch_releases(std::exchange(watch_, 0));
    stop_callback_.reset();
    engine_.metrics().acquire(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - call_start_),
        attempts_, result ? nullptr : &result.error());
    invoke_user(engine_.log(), callback_, std::move(result));
    engine_.remove_active(this);
  }

  std::vector<std::string> resources_;
  std::string token_;
  milliseconds ttl_;
  AcquireOptions options_;
  AcquireCallback callback_;
  std::string wire_;
  std::shared_ptr<const std::string> fallback_;
  Clock::time_point call_start_;
  int attempts_ = 0;
  std::uint32_t granted_tag_ = 0;
  Engine::TimerId retry_timer_ = 0;
  WakeHub::WatchId watch_ = 0;       // listening for release announcements
  bool woken_ = false;               // one came while a round was open
  int contest_left_ = 0;             // contest retries left since the last announcement
  bool contest_pause_ = false;       // retry_timer_ is a contest pause
  std::optional<Error> last_error_;  // while waiting only for an announcement
  std::optional<std::stop_callback<std::function<void()>>> stop_callback_;
  // Fencing (ClientOptions::fencing).
  bool fenced_;
  std::vector<std::string> counters_;  // the resources' counter keys
  std::vector<std::uint64_t> fences_;  // per node: the fence its acquire returned
  std::uint64_t fence_ = 0;            // the grant's fence: the largest of them
  bool raising_ = false;               // the raise round is open
  std::uint32_t raise_tag_ = 0;
  std::string raise_wire_;
  Clock::time_point valid_until_{};      // of the grant being made durable
  std::vector<NodeResult> grant_votes_;  // the granting round's votes
  std::vector<bool> acquire_sent_;       // where the granting round's command went
};

// ---------------------------------------------------------------------------
// Extend: one round of the compare-and-pexpire script, decided within the
// lock's remaining validity.

class ExtendOp final : public QuorumOp {
 public:
  ExtendOp(Engine& engine, Lock lock, milliseconds ttl, const ExtendOptions& options,
           AcquireCallback callback)
      : QuorumOp(engine, effective_node_timeout(options.node_timeout.count() > 0
                                                    ? options.node_timeout
                                                    : engine.options().node_timeout,
                                                ttl)),
        lock_(std::move(lock)),
        ttl_(ttl),
        options_(options),
        callback_(std::move(callback)) {
    const std::string ttl_ms = std::to_string(ttl.count());
    const std::string_view recreate = options.recreate_missing ? "1" : "0";
    wire_ =
        script_command(kExtendScript, true, lock_.resources(), {lock_.token(), ttl_ms, recreate});
    fallback_ = std::make_shared<const std::string>(
        script_command(kExtendScript, false, lock_.resources(), {lock_.token(), ttl_ms, recreate}));
  }

  void start() {
    engine_.add_active(shared_from_this());
    if (lock_.expired()) {
      complete(Unexpected(expired_error("before the extension started")));
      return;
    }
    start_round(wire_, fallback_, ttl_, options_.min_validity, ErrorCode::kNotOwner,
                lock_.valid_until());
  }

  void abort() override {
    complete(Unexpected(Error(ErrorCode::kShuttingDown, "the client is shutting down")));
  }

 private:
  NodeStatus classify(const Reply& reply, std::string& detail) const override {
    if (reply.type == Reply::Type::kInteger) {
      if (reply.integer == 1) return NodeStatus::kOk;
      detail = "the key is gone or holds another token";
      return NodeStatus::kRefused;
    }
    detail = reply.is_error() ? reply.str : "unexpected reply to the extend script";
    return NodeStatus::kError;
  }

  void on_decided(Clock::time_point now) override {
    // Whatever the round says, it had to be decided while the lock held: a
    // majority that agreed after the old validity ended extended a lock that
    // may have been someone else's meanwhile.
    if (now >= lock_.valid_until()) {
      complete(Unexpected(expired_error("before a majority extended it")));
      return;
    }
    if (round_->state() == Round::State::kGranted) {
      complete(Lock(lock_.resources(), lock_.token(), round_->valid_until(), results_, ttl_,
                    lock_.fence()));
      return;
    }
    const auto n = results_.size();
    std::string msg;
    switch (round_->failure()) {
      case ErrorCode::kNotOwner:
        msg = describe(lock_.resources()) + ": no longer the owner on enough nodes (" +
              std::to_string(round_->yes()) + " of " + std::to_string(n) + " extended, " +
              std::to_string(quorum(n)) + " needed)";
        break;
      case ErrorCode::kValidityExhausted:
        msg =
            describe(lock_.resources()) + ": a majority extended it too late to leave min_validity";
        break;
      default:
        msg = describe(lock_.resources()) + ": only " + std::to_string(round_->yes()) + " of " +
              std::to_string(n) + " nodes extended, " + std::to_string(quorum(n)) + " needed";
        break;
    }
    complete(Unexpected(Error(round_->failure(), std::move(msg), results_)));
  }

  Error expired_error(std::string_view when) const {
    return Error(ErrorCode::kExpired,
                 describe(lock_.resources()) + ": the lock's validity ended " + std::string(when),
                 results_);
  }

  void complete(Result<Lock> result) {
    if (done_) return;
    done_ = true;
    engine_.metrics().extend(result.has_value());
    invoke_user(engine_.log(), callback_, std::move(result));
    engine_.remove_active(this);
  }

  Lock lock_;
  milliseconds ttl_;
  ExtendOptions options_;
  AcquireCallback callback_;
  std::string wire_;
  std::shared_ptr<const std::string> fallback_;
};

// ---------------------------------------------------------------------------
// Health: each node's state as the engine knows it, and INFO and CONFIG GET
// appendfsync from each node that is connected.

class HealthOp final : public Operation {
 public:
  HealthOp(Engine& engine, milliseconds timeout, HealthCallback callback)
      : engine_(engine), timeout_(timeout), callback_(std::move(callback)) {}

  void start() {
    auto& nodes = engine_.nodes();
    const auto now = Clock::now();
    started_ = now;
    report_.quorum = quorum(nodes.size());
    report_.nodes.resize(nodes.size());
    sent_.assign(nodes.size(), 0);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const Node& n = *nodes[i];
      NodeHealth& h = report_.nodes[i];
      h.node = n.name();
      h.reachable = n.connected();
      h.answering = n.answering(now);
      h.error = n.last_error();
      h.version = n.version();
      h.run_id = n.run_id();
      h.uptime = n.uptime(now);
      h.clock_suspect = n.clock().suspect();
      h.clock_reason = n.clock().suspect() ? n.clock().reason() : std::string();
      h.clock_rate = n.clock().rate();
      if (!h.reachable) {
        h.not_voting_reason =
            h.error.empty() ? std::string("not connected") : "not connected: " + h.error;
      } else if (!h.answering) {
        h.not_voting_reason =
            "not answering: a command has waited " +
            std::to_string(std::chrono::duration_cast<milliseconds>(n.waiting_for(now)).count()) +
            " ms";
      } else if (auto why = n.vote_block(now)) {
        h.not_voting_reason = std::move(*why);
        if (n.votes_from() > now) {
          h.votes_again_in = std::chrono::ceil<milliseconds>(n.votes_from() - now);
        }
      }
      h.voting = h.not_voting_reason.empty();
      report_.voting += h.voting ? 1U : 0U;
    }
    engine_.add_active(shared_from_this());
    static const std::string info = format_command({"INFO"});
    static const std::string fsync = format_command({"CONFIG", "GET", "appendfsync"});
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (!report_.nodes[i].reachable) continue;
      if (nodes[i]->send(info, shared_from_this(), kInfo)) ++sent_[i];
      if (nodes[i]->send(fsync, shared_from_this(), kFsync)) ++sent_[i];
      outstanding_ += sent_[i];
    }
    if (outstanding_ == 0) {
      complete();
      return;
    }
    auto weak = weak_from_this();
    timer_ = engine_.schedule(started_ + timeout_, [weak] {
      if (auto self = weak.lock()) static_cast<HealthOp*>(self.get())->complete();
    });
  }

  void on_reply(std::size_t node, std::uint32_t tag, const Reply* reply,
                std::string_view failure) override {
    if (done_) return;
    NodeHealth& h = report_.nodes[node];
    if (reply == nullptr) {
      if (h.error.empty()) h.error = std::string(failure);
    } else if (tag == kInfo && reply->type == Reply::Type::kString) {
      h.rtt = std::chrono::duration_cast<microseconds>(Clock::now() - started_);
      const std::string_view info = reply->str;
      if (auto v = info_field(info, "redis_version")) h.version = std::string(*v);
      if (auto v = info_field(info, "run_id")) h.run_id = std::string(*v);
      if (auto v = info_field(info, "uptime_in_seconds")) {
        long long secs = 0;
        const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), secs);
        if (ec == std::errc() && end == v->data() + v->size() && secs >= 0) {
          h.uptime = std::chrono::seconds(secs);
        }
      }
      if (auto v = info_field(info, "aof_enabled")) h.aof_enabled = *v == "1";
      if (auto v = info_field(info, "maxmemory_policy")) {
        h.maxmemory_policy = std::string(*v);
        h.eviction_can_drop_locks = h.maxmemory_policy != "noeviction";
      }
    } else if (tag == kFsync && reply->type == Reply::Type::kArray && reply->elements.size() == 2) {
      h.appendfsync = reply->elements[1].str;
    }
    if (--outstanding_ == 0) complete();
  }

  void abort() override {
    if (done_) return;
    done_ = true;
    engine_.cancel(timer_);
    invoke_user(engine_.log(), callback_,
                Result<HealthReport>(
                    Unexpected(Error(ErrorCode::kShuttingDown, "the client is shutting down"))));
    engine_.remove_active(this);
  }

 private:
  static constexpr std::uint32_t kInfo = 0;
  static constexpr std::uint32_t kFsync = 1;

  void complete() {
    if (done_) return;
    done_ = true;
    engine_.cancel(timer_);
    for (auto& h : report_.nodes) {
      if (h.reachable && !h.rtt && h.error.empty()) {
        h.error = "no answer to INFO within " + std::to_string(timeout_.count()) + " ms";
      }
    }
    invoke_user(engine_.log(), callback_, Result<HealthReport>(std::move(report_)));
    engine_.remove_active(this);
  }

  Engine& engine_;
  milliseconds timeout_;
  HealthCallback callback_;
  HealthReport report_;
  std::vector<int> sent_;
  int outstanding_ = 0;
  Clock::time_point started_{};
  Engine::TimerId timer_ = 0;
  bool done_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------
// Engine

Engine::Engine(ClientOptions options) : options_(std::move(options)), rng_(std::random_device{}()) {
  restart_grace_ = options_.restart_grace.value_or(
      options_.max_ttl +
      std::chrono::ceil<milliseconds>(drift_allowance(options_.max_ttl, options_.drift_factor)));
  logger_ = options_.logger;
  if (!logger_) {
    // A private logger: never registered, never the global default one.
    logger_ = std::make_shared<spdlog::logger>("redlock",
                                               std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger_->set_level(spdlog::level::warn);
  }
}

Result<std::shared_ptr<Engine>> Engine::start(ClientOptions options) {
  auto parsed = validate_client_options(options);
  if (!parsed) return Unexpected(parsed.error());
  // Names are resolved here, on the caller's thread (getaddrinfo blocks).
  std::vector<std::vector<sockaddr_storage>> addrs;
  for (std::size_t i = 0; i < parsed->size(); ++i) {
    const auto& node = (*parsed)[i];
    std::vector<sockaddr_storage> resolved;
    if (node.kind == NodeAddress::Kind::kTcp) {
      auto addr = resolve(node, node.host, node.port);
      if (!addr) return Unexpected(addr.error());
      for (std::size_t j = 0; j < i; ++j) {
        if ((*parsed)[j].kind == NodeAddress::Kind::kTcp && same_address(addrs[j].front(), *addr)) {
          return Unexpected(Error(ErrorCode::kInvalidArgument,
                                  "nodes \"" + (*parsed)[j].display + "\" and \"" + node.display +
                                      "\" are the same server; every node must be distinct"));
        }
      }
      resolved.push_back(*addr);
    } else if (node.kind == NodeAddress::Kind::kSentinel) {
      for (const auto& sentinel : node.sentinels) {
        auto addr = resolve(node, sentinel.host, sentinel.port);
        if (!addr) return Unexpected(addr.error());
        resolved.push_back(*addr);
      }
    }
    addrs.push_back(std::move(resolved));
  }

  std::shared_ptr<Engine> engine(new Engine(std::move(options)));
  Engine& e = *engine;
  e.wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e.wake_fd_ < 0) {
    return Unexpected(Error(ErrorCode::kInternal, std::string("eventfd: ") + std::strerror(errno)));
  }
  e.metrics_ = std::make_unique<Metrics>(parsed->size(), e.options_.metrics_sink);
  if (int rc = uv_loop_init(&e.loop_); rc != 0) {
    return Unexpected(Error(ErrorCode::kInternal, std::string("uv_loop_init: ") + uv_strerror(rc)));
  }
  e.loop_ready_ = true;
  e.loop_.data = &e;
  uv_poll_init(&e.loop_, &e.wake_poll_, e.wake_fd_);
  e.wake_poll_.data = &e;
  uv_poll_start(&e.wake_poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* self = static_cast<Engine*>(h->data);
    std::uint64_t count = 0;
    (void)!::read(self->wake_fd_, &count, sizeof count);
    self->on_async();
  });
  uv_check_init(&e.loop_, &e.flush_check_);
  e.flush_check_.data = &e;
  uv_check_start(&e.flush_check_,
                 [](uv_check_t* h) { static_cast<Engine*>(h->data)->flush_dirty(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(&e.flush_check_));
  uv_timer_init(&e.loop_, &e.timer_);
  e.timer_.data = &e;
  uv_timer_init(&e.loop_, &e.shutdown_timer_);
  e.shutdown_timer_.data = &e;
  for (std::size_t i = 0; i < parsed->size(); ++i) {
    e.node_names_.push_back((*parsed)[i].display);
    e.nodes_.push_back(std::make_unique<Node>(e, i, (*parsed)[i], std::move(addrs[i])));
  }
  e.wake_ = std::make_unique<WakeHub>(e);

  try {
    // The thread keeps the engine alive, so a shutdown started on the loop
    // thread itself (a Client destroyed in its own callback) can detach.
    e.thread_ = std::thread([self = engine] { self->run(); });
  } catch (const std::system_error& ex) {
    return Unexpected(
        Error(ErrorCode::kInternal, std::string("cannot start the loop thread: ") + ex.what()));
  }

  std::unique_lock lk(e.mutex_);
  e.cv_.wait_for(lk, e.options_.connect_timeout + milliseconds(100),
                 [&] { return e.first_attempts_ >= e.nodes_.size(); });
  return engine;
}

Engine::~Engine() {
  shutdown();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (loop_ready_) {
    // run() closed the loop; nothing is left on it here.
    wake_.reset();
    nodes_.clear();
  }
}

void Engine::run() {
  // A write to a node that has just gone away fails with EPIPE, and raises
  // SIGPIPE, which ends the process unless the application ignores it. With
  // the release subscribers this thread may write twice to a connection in
  // one loop iteration, the second time after the peer's reset. Blocked on
  // this thread only: the application's own SIGPIPE handling is untouched.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
  loop_thread_id_ = std::this_thread::get_id();
  for (auto& n : nodes_) n->start();
  if (options_.clock_check_interval.count() > 0) {
    schedule(Clock::now() + options_.clock_check_interval, [this] { clock_tick(); });
  }
  flush_dirty();
  run_loop();
  // Anything still open (only after a forced shutdown) is closed here.
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (uv_is_closing(h) == 0) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  wake_.reset();
  nodes_.clear();
  active_.clear();
  timers_.clear();
  if (int rc = uv_loop_close(&loop_); rc != 0) {
    logger_->error("event loop did not close cleanly: {}", uv_strerror(rc));
  }
  loop_ready_ = false;
  // Thread ids are reused: a later thread must not pass for the loop thread.
  loop_thread_id_ = std::thread::id();
}

void Engine::run_loop() {
  const auto budget = std::chrono::duration_cast<Clock::duration>(options_.busy_poll);
  if (budget.count() <= 0) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    return;
  }
  // A blocking caller, a node's reply or the next request of a pipeline
  // often comes within microseconds of the last event. Sleeping in epoll in
  // between costs two context switches and, when the other side runs on
  // another CPU, an inter-processor wake-up each way; polling instead finds
  // it at once. Yielding between polls keeps the CPU for whoever else needs
  // it (on a small machine: the servers themselves).
  bool alive = true;
  while (alive) {
    alive = uv_run(&loop_, UV_RUN_ONCE) != 0;  // sleeps until something happens
    auto last = Clock::now();
    std::uint64_t seen = activity_;
    while (alive) {
      std::this_thread::yield();
      alive = uv_run(&loop_, UV_RUN_NOWAIT) != 0;
      const auto now = Clock::now();
      if (activity_ != seen) {
        seen = activity_;
        last = now;
      } else if (now - last >= budget) {
        break;
      }
    }
  }
}

bool Engine::on_loop_thread() const noexcept {
  return loop_thread_id_.load() == std::this_thread::get_id();
}

void Engine::shutdown() noexcept {
  {
    std::lock_guard lk(mutex_);
    if (!stopping_) {
      stopping_ = true;
      wake();
    }
  }
  if (!thread_.joinable()) return;
  if (std::this_thread::get_id() == thread_.get_id()) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

Result<void> Engine::post(std::function<void()> task) {
  std::lock_guard lk(mutex_);
  if (stopping_) return Unexpected(Error(ErrorCode::kShuttingDown, "the client is shutting down"));
  const bool wake = tasks_.empty();
  tasks_.push_back(std::move(task));
  if (wake) this->wake();
  return {};
}

void Engine::wake() noexcept {
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void Engine::on_async() {
  // tasks_ takes the spare vector's capacity: posts do not allocate it anew.
  std::vector<std::function<void()>> batch = std::move(spare_tasks_);
  bool stop = false;
  {
    std::lock_guard lk(mutex_);
    batch.swap(tasks_);
    stop = stopping_;
  }
  note_activity();
  for (auto& t : batch) t();
  batch.clear();
  spare_tasks_ = std::move(batch);
  if (stop && !stopping_loop_) begin_shutdown();
  // The check phase writes what the tasks queued.
}

void Engine::begin_shutdown() {
  stopping_loop_ = true;
  // Complete every pending operation (an acquire in flight releases what it
  // may have set), then write what is queued and close the connections.
  std::vector<std::shared_ptr<Operation>> ops;
  ops.reserve(active_.size());
  for (auto& [_, op] : active_) ops.push_back(op);
  for (auto& op : ops) op->abort();
  active_.clear();
  flush_dirty();
  for (auto& n : nodes_) n->close();
  wake_->close();
  timers_.clear();
  timer_index_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&wake_poll_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_check_), nullptr);
  uv_timer_start(
      &shutdown_timer_,
      [](uv_timer_t* t) {
        uv_walk(
            t->loop,
            [](uv_handle_t* h, void*) {
              if (uv_is_closing(h) == 0) uv_close(h, nullptr);
            },
            nullptr);
      },
      static_cast<std::uint64_t>(kShutdownGrace.count()), 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&shutdown_timer_));
}

void Engine::clock_tick() {
  if (stopping_loop_) return;
  for (auto& n : nodes_) n->sample_clock();
  schedule(Clock::now() + options_.clock_check_interval, [this] { clock_tick(); });
}

Result<void> Engine::post_acquire(std::vector<std::string> resources, milliseconds ttl,
                                  const AcquireOptions& options, AcquireCallback callback) {
  if (auto ok = validate_resources(resources); !ok) return ok;
  if (auto ok = validate_acquire(resources.front(), ttl, options, options_); !ok) return ok;
  if (!callback) return Unexpected(Error(ErrorCode::kInvalidArgument, "acquire callback is empty"));
  auto token = make_token();
  if (!token) return Unexpected(token.error());
  auto op = std::make_shared<AcquireOp>(*this, std::move(resources), std::move(*token), ttl,
                                        options, std::move(callback));
  return post([op] { op->start(); });
}

Result<void> Engine::post_extend(const Lock& lock, milliseconds ttl, const ExtendOptions& options,
                                 AcquireCallback callback) {
  if (auto ok = validate_resources(lock.resources()); !ok) return ok;
  if (auto ok = validate_lock_token(lock.token()); !ok) return ok;
  if (auto ok = validate_extend(ttl, options, options_); !ok) return ok;
  if (!callback) return Unexpected(Error(ErrorCode::kInvalidArgument, "extend callback is empty"));
  if (lock.expired()) {
    return Unexpected(Error(
        ErrorCode::kExpired,
        "the lock on \"" + lock.resource() + "\" has expired; it can only be acquired again"));
  }
  return post([this, lock, ttl, options, cb = std::move(callback)]() mutable {
    start_extend(lock, ttl, options, std::move(cb));
  });
}

void Engine::start_extend(const Lock& lock, milliseconds ttl, const ExtendOptions& options,
                          AcquireCallback callback) {
  auto op = std::make_shared<ExtendOp>(*this, lock, ttl, options, std::move(callback));
  op->start();
}

Result<void> Engine::post_release(const Lock& lock, ReleaseCallback callback) {
  if (auto ok = validate_resources(lock.resources()); !ok) return ok;
  if (auto ok = validate_lock_token(lock.token()); !ok) return ok;
  auto key_expiry = lock.valid_until() + std::chrono::seconds(1);
  return post([this, resources = lock.resources(), token = lock.token(), key_expiry,
               cb = std::move(callback)]() mutable {
    start_release(std::move(resources), std::move(token), key_expiry, {}, std::move(cb),
                  /*announce=*/true);
  });
}

void Engine::start_release(std::vector<std::string> keys, std::string token,
                           Clock::time_point key_expiry, std::vector<bool> targets,
                           ReleaseCallback callback, bool announce) {
  auto op = std::make_shared<ReleaseOp>(*this, std::move(keys), std::move(token), key_expiry,
                                        std::move(targets), std::move(callback), announce);
  op->start();
}

MetricsSnapshot Engine::metrics_snapshot() const {
  const auto now = Clock::now();
  std::vector<Metrics::NodeState> states;
  states.reserve(nodes_.size());
  std::size_t voting = 0;
  for (const auto& n : nodes_) {
    states.push_back({n->answering(now), n->voting(now)});
    voting += states.back().voting ? 1U : 0U;
  }
  return metrics_->snapshot(node_names_, states, voting >= quorum(nodes_.size()));
}

bool Engine::quorum_available() const {
  const auto now = Clock::now();
  std::size_t voting = 0;
  for (const auto& n : nodes_) voting += n->voting(now) ? 1U : 0U;
  return voting >= quorum(nodes_.size());
}

Result<void> Engine::post_health(milliseconds timeout, HealthCallback callback) {
  if (timeout.count() <= 0 || timeout > kMaxDelay) {
    return Unexpected(Error(
        ErrorCode::kInvalidArgument,
        "health timeout must be from 1 ms to 1 h, not " + std::to_string(timeout.count()) + " ms"));
  }
  if (!callback) return Unexpected(Error(ErrorCode::kInvalidArgument, "health callback is empty"));
  return post([this, timeout, cb = std::move(callback)]() mutable {
    auto op = std::make_shared<HealthOp>(*this, timeout, std::move(cb));
    op->start();
  });
}

std::vector<bool> Engine::connected() const {
  std::vector<bool> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n->connected_any_thread());
  return out;
}

void Engine::report_first_attempt() {
  std::lock_guard lk(mutex_);
  ++first_attempts_;
  cv_.notify_all();
}

Engine::TimerId Engine::schedule(Clock::time_point when, std::function<void()> fn) {
  const TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(when, id), std::move(fn));
  timer_index_.emplace(id, when);
  if (timers_.begin()->first.second == id) arm_timer();
  return id;
}

void Engine::cancel(TimerId id) {
  if (id == 0) return;
  auto it = timer_index_.find(id);
  if (it == timer_index_.end()) return;
  timers_.erase({it->second, id});
  timer_index_.erase(it);
}

void Engine::arm_timer() {
  if (stopping_loop_) return;
  if (timers_.empty()) {
    uv_timer_stop(&timer_);
    return;
  }
  const auto delta = timers_.begin()->first.first - Clock::now();
  const auto ms = std::max<std::int64_t>(0, std::chrono::ceil<milliseconds>(delta).count());
  uv_update_time(&loop_);
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<Engine*>(t->data)->on_timer(); },
      static_cast<std::uint64_t>(ms), 0);
}

void Engine::on_timer() {
  const auto now = Clock::now();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_index_.erase(node.key().second);
    node.mapped()();
  }
  arm_timer();
  flush_dirty();
}

void Engine::mark_dirty(Node& node) { dirty_.push_back(&node); }

void Engine::flush_dirty() {
  // The two vectors trade places and keep their capacity: no allocation per
  // loop iteration.
  std::vector<Node*> batch = std::move(spare_dirty_);
  if (!dirty_.empty()) note_activity();
  while (!dirty_.empty()) {
    batch.swap(dirty_);
    for (Node* n : batch) n->flush();
    batch.clear();
  }
  spare_dirty_ = std::move(batch);
}

WakeHub::WatchId Engine::watch_releases(const std::vector<std::string>& keys,
                                        std::function<void()> on_release) {
  return wake_ ? wake_->watch(keys, std::move(on_release)) : 0;
}

void Engine::unwatch_releases(WakeHub::WatchId id) {
  if (wake_ && id != 0) wake_->unwatch(id);
}

void Engine::node_ready(std::size_t node) {
  if (wake_) wake_->node_ready(node);
}

void Engine::add_active(const std::shared_ptr<Operation>& op) { active_.emplace(op.get(), op); }
void Engine::remove_active(Operation* op) { active_.erase(op); }

double Engine::random_unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

}  // namespace redlock::detail
