#include "acquire_op.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <iterator>

#include "keys.hpp"
#include "release_op.hpp"
#include "retry.hpp"
#include "wake.hpp"

namespace redlock::detail {
namespace {

// For this long after the gate node announced a release, other nodes'
// announcements are taken for echoes of the same one.
constexpr milliseconds kGateEcho{10};

}  // namespace

AcquireOp::AcquireOp(const OpContext& ctx, std::vector<std::string> resources,
                     std::string_view token, milliseconds ttl, const AcquireOptions& options,
                     AcquireDone done)
    : QuorumOp(ctx,
               effective_node_timeout(options.node_timeout.count() > 0 ? options.node_timeout
                                                                       : ctx.options.node_timeout,
                                      ttl),
               Route::of(resources)),
      resources_(std::move(resources)),
      ttl_(ttl),
      options_(options),
      deliver_to_(std::move(done)),
      call_start_(ctx.scheduler.now()),
      fenced_(ctx.options.fencing),
      token_(token) {}

// KEYS: the lock keys, then (fenced) their counters. Made per round, like
// the command (make_wire): a waiter keeps only what it needs to make them
// again.
std::vector<std::string> AcquireOp::round_keys() const {
  auto keys = lock_keys(resources_);
  if (fenced_) {
    auto counters = fence_keys(resources_);
    keys.insert(keys.end(), std::make_move_iterator(counters.begin()),
                std::make_move_iterator(counters.end()));
  }
  return keys;
}

std::shared_ptr<const std::string> AcquireOp::make_wire() const {
  const auto keys = round_keys();
  char ttl_buf[24];
  const auto ttl_end = std::to_chars(ttl_buf, ttl_buf + sizeof ttl_buf, ttl_.count()).ptr;
  const std::string_view ttl_ms(ttl_buf, static_cast<std::size_t>(ttl_end - ttl_buf));
  if (fenced_) {
    // Seeded with this machine's clock plus the lead (kFencedAcquireScript),
    // afresh each round so that a long wait does not fall behind the nodes'
    // clocks and lose the agreement the seed is for.
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch() + kFenceSeedLead);
    char seed_buf[24];
    const auto seed_end = std::to_chars(seed_buf, seed_buf + sizeof seed_buf,
                                        std::max<std::int64_t>(micros.count(), 0))
                              .ptr;
    const std::string_view seed(seed_buf, static_cast<std::size_t>(seed_end - seed_buf));
    const Script& script = resources_.size() == 1 ? kFencedAcquireOneScript : kFencedAcquireScript;
    return std::make_shared<const std::string>(
        script_command(script, true, keys, {token_.view(), ttl_ms, seed}));
  }
  if (keys.size() == 1) {
    return std::make_shared<const std::string>(
        set_nx_px_command(keys.front(), token_.view(), ttl_.count()));
  }
  return std::make_shared<const std::string>(
      script_command(kAcquireAllScript, true, keys, {token_.view(), ttl_ms}));
}

void AcquireOp::start() {
  ctx_.active.add(shared_from_this());
  if (options_.stop.stop_possible()) {
    stop_callback_ = std::make_unique<std::stop_callback<StopRelay>>(
        options_.stop, StopRelay{&ctx_.scheduler, weak_from_this()});
  }
  if (!done_) next_round();
}

void AcquireOp::StopRelay::operator()() const {
  (void)scheduler->post([weak = op] {
    if (auto self = weak.lock()) static_cast<AcquireOp*>(self.get())->cancel();
  });
}

void AcquireOp::abort() {
  if (done_) return;
  if (round_open()) release_round();
  complete(Unexpected(Error(ErrorCode::kShuttingDown, "the client is shutting down")));
}

std::size_t AcquireOp::gate_node() const noexcept {
  return route_.slot_number() % ctx_.nodes.size();
}

void AcquireOp::begin_round(bool gated) {
  retry_timer_ = 0;
  gate_ = gated && gate_held_ ? gate_node() : kNoGate;
  gate_grace_ = false;
  contest_pause_ = false;
  if (options_.stop.stop_requested()) {
    cancel();
    return;
  }
  ++attempts_;
  // Held by the nodes' queues (and a gated round) for as long as it is needed.
  const auto wire = make_wire();
  if (fenced_) answers_.assign(ctx_.nodes.size(), {});
  // The command is its own NOSCRIPT fallback (eval_form); SET never needs one.
  start_round(*wire, wire, ttl_, options_.min_validity, ErrorCode::kHeldByAnother);
}

void AcquireOp::cancel() {
  if (done_) return;
  if (round_open()) release_round();
  complete(
      Unexpected(Error(ErrorCode::kCancelled, describe(resources_) + ": acquire cancelled after " +
                                                  std::to_string(attempts_) + " attempt(s)")));
}

NodeStatus AcquireOp::classify(const Reply& reply, std::string& detail) const {
  if (raise_) {
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
  if (fenced_ && reply.type == Reply::Type::kInteger && reply.integer == -1) {
    detail = "held by this acquire's token since an earlier round, whose release did not arrive";
    return NodeStatus::kRefused;
  }
  detail = reply.is_error() ? reply.str : "unexpected reply";
  return NodeStatus::kError;
}

void AcquireOp::on_answer(std::size_t node, const Reply& reply, NodeStatus status) {
  if (!fenced_ || raise_) return;
  if (status == NodeStatus::kOk) {
    answers_[node].fence = static_cast<std::uint64_t>(reply.integer);
  } else if (status == NodeStatus::kRefused && resources_.size() == 1) {
    // Several resources' refusal may hide a key of this acquire's own, left
    // by an earlier round: their release goes out as before.
    answers_[node].foreign = held_by_another(reply);
  }
}

bool AcquireOp::held_by_another(const Reply& refusal) const {
  // Only the fenced acquire of one resource says whose the key is
  // (kFencedAcquireOneScript): 0 is another token's, -1 this acquire's own.
  return !fenced_ || resources_.size() > 1 ||
         (refusal.type == Reply::Type::kInteger && refusal.integer == 0);
}

void AcquireOp::on_late_reply(std::size_t node, std::uint32_t tag, const Reply& reply) {
  std::string ignored;
  if (raise_ || tag == raise_tag_) return;  // raise replies carry no key
  const auto status = tag != granted_tag_ ? classify(reply, ignored) : NodeStatus::kPending;
  if (status == NodeStatus::kOk) {
    ctx_.metrics.late_reply_released(node);  // its round's cleanup covers it
  } else if (status == NodeStatus::kRefused && tag == tag_ && !done_ && node == gate_node() &&
             options_.contest_gate && watch_ != 0 && !round_open()) {
    // The gate's refusal came after the last round failed without it.
    gate_held_ = gate_held_ || held_by_another(reply);
  }
}

void AcquireOp::on_decided(Clock::time_point now) {
  if (raise_) {
    on_raise_decided(now);
    return;
  }
  if (round_->state() == Round::State::kGranted) {
    granted_tag_ = tag_;
    if (!fenced_) {
      complete(
          Lock(resources_, token_.str(), round_->valid_until(), std::move(round_->results), ttl_));
      return;
    }
    // The fence is the largest counter among the nodes that granted. It is
    // handed out only once a majority holds it, so that every later
    // majority (which shares a node with this one) counts up from it.
    fence_ = 0;
    std::size_t at_fence = 0;
    for (const auto& a : answers_) fence_ = std::max(fence_, a.fence);
    for (std::size_t i = 0; i < answers_.size(); ++i) {
      at_fence += round_->votes()[i] == NodeStatus::kOk && answers_[i].fence == fence_ ? 1U : 0U;
    }
    if (at_fence >= quorum(answers_.size())) {
      complete(Lock(resources_, token_.str(), round_->valid_until(), std::move(round_->results),
                    ttl_, fence_));
      return;
    }
    start_raise();
    return;
  }
  fail_round(now, round_error(now));
}

// Compare-and-raise of the counters to fence_ on every node, decided within
// the lock's validity.
void AcquireOp::start_raise() {
  const auto valid_until = round_->valid_until();
  ctx_.metrics.fence_raise();
  const auto remaining = std::chrono::floor<milliseconds>(valid_until - now());
  if (remaining < options_.min_validity) {
    fail_round(now(), raise_error("no validity left to make the fence durable"));
    return;
  }
  raise_ = std::make_unique<Raise>(
      Raise{valid_until, std::move(round_->results), std::move(round_->sent)});
  gate_ = kNoGate;  // every node at once
  const std::string fence = std::to_string(fence_);
  const auto wire = std::make_shared<const std::string>(
      script_command(kRaiseFenceScript, true, fence_keys(resources_), {fence}));
  // The Round only tallies here: its ttl is what is left of the lock's.
  start_round(*wire, wire, remaining, milliseconds(1), ErrorCode::kNoQuorum, valid_until);
  raise_tag_ = tag_;
}

void AcquireOp::on_raise_decided(Clock::time_point now) {
  const auto raise = std::move(raise_);
  const bool durable = round_->state() == Round::State::kGranted;
  round_->sent = std::move(raise->acquire_sent);
  if (durable && now + options_.min_validity <= raise->valid_until) {
    complete(
        Lock(resources_, token_.str(), raise->valid_until, std::move(raise->votes), ttl_, fence_));
    return;
  }
  fail_round(now, raise_error(durable ? "the fence became durable too late to leave min_validity"
                                      : "the fence could not be made durable on a majority"));
}

Error AcquireOp::raise_error(std::string_view why) const {
  return Error(durable_code(),
               describe(resources_) + ": granted with fence " + std::to_string(fence_) + ", but " +
                   std::string(why),
               round_->results);
}

ErrorCode AcquireOp::durable_code() const {
  return round_ && round_->state() == Round::State::kGranted ? ErrorCode::kValidityExhausted
                                                             : ErrorCode::kNoQuorum;
}

// A round failed (or its grant could not be completed): release, then retry
// or report `error`.
void AcquireOp::fail_round(Clock::time_point now, Error error) {
  if (round_->refused() > 0) ctx_.metrics.contended_round();
  // A failed round releases everywhere its command went, answered or not
  // (but where another token holds the key: release_round): an OK still in
  // flight must not leave a key behind, and on each connection the release
  // runs after the SET, so our own retry never meets our own key.
  release_round();
  const RetryPolicy policy{options_.max_wait, options_.max_attempts, options_.retry_delay,
                           options_.retry_jitter};
  const auto next = next_retry(policy, attempts_, call_start_, now, ctx_.scheduler.random_unit());
  const bool gated = gate_ != kNoGate;
  // Held by another and worth waiting for: listen for its release.
  if (round_->refused() > 0 && (next.delay || next.wait_exhausted)) {
    watch_releases();
    // A release announced while this round was open, on a channel this
    // client was still subscribed to from an earlier wait: it may have come
    // after a node refused this round. As if it had woken this round. (A
    // gated round came after a watched one: woken_ says it all.)
    if (!gated && watch_ != 0 && ctx_.wake->heard_since(resources_, round_->start())) {
      if (contest_left_ == 0) contest_left_ = kContestRetries;
      woken_ = true;
    }
  }
  // Whether the gate node answered that another token holds the key (the
  // fenced acquire of one resource tells this acquire's own leftover key
  // apart). The gate is never a node left unasked.
  const auto g = gate_node();
  gate_held_ = options_.contest_gate && watch_ != 0 && ctx_.nodes.size() >= 2 &&
               round_->votes()[g] == NodeStatus::kRefused &&
               (!fenced_ || resources_.size() > 1 || answers_[g].foreign);
  const FailedRound failed{std::exchange(woken_, false), round_->yes() > 0, now - round_->start()};
  const auto deadline = wait_deadline(call_start_, options_.max_wait);
  if (gated && gate_held_) {
    // Refused at the gate: there is no split vote to undo, so no contest.
    contest_left_ = 0;
    if (failed.woken && (next.delay || next.wait_exhausted) && now < deadline) {
      // The gate announced a release while it was being asked: ask again.
      schedule_retry(now, Step::kGatedRound);
      drop_round_state();
      return;
    }
  }
  const auto plan = plan_retry(next, watch_ != 0, contest_left_, failed, options_.retry_delay,
                               ctx_.scheduler.random_unit(), now, deadline);
  // A contest goes on while rounds say the lock may be free; a round that
  // finds it held again ends it.
  contest_left_ = plan.contest ? contest_left_ - 1 : 0;
  if (plan.retry_at) {
    if (plan.contest) ctx_.metrics.wakeup();
    ctx_.log.debug("acquire {}: round {} failed ({}), retrying in {} us", describe(resources_),
                   attempts_, to_string(error.code()),
                   std::chrono::duration_cast<microseconds>(*plan.retry_at - now).count());
    // A contest's retry queues at the gate; the retry timer's goes everywhere.
    schedule_retry(*plan.retry_at, plan.contest ? Step::kGatedRound : Step::kRound);
    contest_pause_ = plan.contest;
    drop_round_state();
    return;
  }
  if (plan.give_up_at) {
    // The jittered retry would start past max_wait: only an announced
    // release starts another round now.
    last_error_ = std::make_unique<Error>(std::move(error));
    drop_round_state();
    schedule_retry(*plan.give_up_at, Step::kGiveUp);
    return;
  }
  if (next.wait_exhausted) error = wait_timeout(error);
  complete(Unexpected(std::move(error)));
}

// Wake-on-release: listen for announcements of the resources' release (once
// per acquire; complete() stops).
void AcquireOp::watch_releases() {
  if (!options_.wake_on_release || watch_ != 0 || ctx_.wake == nullptr) return;
  watch_ = ctx_.wake->watch(resources_, std::static_pointer_cast<AcquireOp>(shared_from_this()));
}

bool AcquireOp::on_release_announced(std::size_t node, bool gated) {
  if (done_) return false;
  if (gate_held_) {
    // The gate held the lock: its own announcement says it is free there.
    const auto t = now();
    if (node == gate_node()) {
      gate_heard_at_ = t;
      if (retry_timer_ == 0) {
        // A round is open (a gated one is on its way to the gate).
        if (contest_left_ == 0) contest_left_ = kContestRetries;
        woken_ = true;
        return gate_ != kNoGate;
      }
      if (gated) {
        // An older waiter of this client asks the gate for this release:
        // this one waits for the gate's next announcement (or its retry
        // timer, if a grace had replaced it).
        if (gate_grace_) {
          ctx_.scheduler.cancel(retry_timer_);
          gate_grace_ = false;
          schedule_retry(t + options_.retry_delay, Step::kRound);
        }
        return false;
      }
    } else if (retry_timer_ == 0 || gate_grace_ || t < gate_heard_at_ + kGateEcho) {
      // Another node's says nothing the gate's has not said (it echoes the
      // same release), or will not say to the open round or to the round a
      // grace already waits for.
      return false;
    } else if (ctx_.nodes.connected(gate_node(), route_)) {
      // The gate's own may not come (its subscription down, or denied):
      // ask it after a short grace, unless it comes first.
      const auto at = t + kContestMinWindow;
      if (at >= wait_deadline(call_start_, options_.max_wait)) return false;
      ctx_.scheduler.cancel(retry_timer_);
      schedule_retry(at, Step::kGatedRound);
      contest_pause_ = false;
      gate_grace_ = true;
      return false;
    }
    // The gate is not connected: this announcement starts a round, which
    // goes to every node at once (start_round cannot gate it).
  }
  // Other waiters may have been woken too: a contest (retry.hpp).
  if (contest_left_ == 0) contest_left_ = kContestRetries;
  // A contest pause is cut short only for a gated round, which cannot split.
  if (retry_timer_ == 0 || (contest_pause_ && !gate_held_)) {
    // A round is open, or a contest pause runs (it stays random): if that
    // round fails, it is retried as a contest.
    woken_ = true;
    return false;
  }
  // Waiting between rounds: start the next one now, as the retry timer
  // would have (so within max_attempts), but never past max_wait.
  if (now() >= wait_deadline(call_start_, options_.max_wait)) return false;
  ctx_.scheduler.cancel(retry_timer_);
  ctx_.metrics.wakeup();
  next_gated_round();
  return gate_ != kNoGate && round_open();
}

void AcquireOp::schedule_retry(Clock::time_point when, Step step) {
  // `this` and the step: kept in the function's own buffer, so a waiter's
  // timer allocates nothing (the scheduler holds the weak owner).
  retry_timer_ = ctx_.scheduler.schedule(when, weak_from_this(), [this, step] {
    switch (step) {
      case Step::kRound:
        next_round();
        break;
      case Step::kGatedRound:
        next_gated_round();
        break;
      case Step::kGiveUp:
        give_up();
        break;
    }
  });
}

void AcquireOp::give_up() {
  retry_timer_ = 0;
  if (done_ || !last_error_) return;
  complete(Unexpected(wait_timeout(*last_error_)));
}

Error AcquireOp::wait_timeout(const Error& last) const {
  return Error(ErrorCode::kLockWaitTimeout,
               describe(resources_) + " not acquired within " +
                   std::to_string(options_.max_wait.count()) + " ms (" + std::to_string(attempts_) +
                   " attempt(s); last: " + std::string(to_string(last.code())) + ": " +
                   last.message() + ")",
               last.nodes());
}

Error AcquireOp::round_error(Clock::time_point now) {
  const auto n = round_->results.size();
  const auto need = quorum(n);
  std::string msg;
  switch (round_->failure()) {
    case ErrorCode::kValidityExhausted:
      msg = describe(resources_) + ": a majority agreed after " + format_ms(now - round_->start()) +
            ", leaving " + std::to_string(round_->validity_at_decision().count()) +
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
  // The round's answers go with its error: nothing reads them after it.
  return Error(round_->failure(), std::move(msg), std::move(round_->results));
}

void AcquireOp::release_round() {
  // While the fence is being raised, the keys are where the acquire went.
  auto& targets = raise_ ? raise_->acquire_sent : round_->sent;
  // Where another token holds the key, this acquire set nothing: no release
  // there. With eight waiters woken by one release, that is most of what
  // the seven who lose would send.
  for (std::size_t i = 0; i < targets.size() && i < answers_.size(); ++i) {
    if (answers_[i].foreign) targets[i] = false;
  }
  if (std::none_of(targets.begin(), targets.end(), [](bool b) { return b; })) return;
  start_release(ctx_, resources_, token_.str(), now() + ttl_, targets, nullptr);
  targets.assign(targets.size(), false);
}

void AcquireOp::drop_round_state() {
  drop_round();
  // Not `answers_ = {}`: that is the initializer-list assignment, which
  // keeps the capacity.
  std::vector<FencedAnswer>().swap(answers_);
}

void AcquireOp::complete(Result<Lock> result) {
  if (done_) return;
  done_ = true;
  ctx_.scheduler.cancel(retry_timer_);
  retry_timer_ = 0;
  if (ctx_.wake != nullptr) ctx_.wake->unwatch(std::exchange(watch_, 0), resources_);
  stop_callback_.reset();
  ctx_.metrics.acquire(std::chrono::duration_cast<microseconds>(now() - call_start_), attempts_,
                       result ? nullptr : &result.error());
  deliver(ctx_.log, deliver_to_, std::move(result));
  ctx_.active.remove(this);
}

}  // namespace redlock::detail
