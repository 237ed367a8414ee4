#include "inspect_op.hpp"

#include <algorithm>
#include <functional>

#include "keys.hpp"
#include "protocol.hpp"

namespace redlock::detail {
namespace {

class InspectOp final : public Operation {
 public:
  InspectOp(const OpContext& ctx, std::string resource, milliseconds timeout,
            InspectCallback callback)
      : ctx_(ctx),
        resource_(std::move(resource)),
        timeout_(timeout),
        callback_(std::move(callback)) {}

  void start() {
    auto& nodes = ctx_.nodes;
    const auto now = ctx_.scheduler.now();
    started_ = now;
    quorum_ = quorum(nodes.size());
    results_.resize(nodes.size());
    const auto self = shared_from_this();
    ctx_.active.add(self);
    const std::string wire = format_command({"PTTL", lock_key(resource_)});
    const auto route = Route::of({resource_});
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      results_[i].node = nodes.name(i);
      if (auto why = nodes.vote_block(i, route, now)) {
        // A node sitting out a restart may have lost the key: its "none"
        // would not be evidence.
        results_[i].status = NodeStatus::kNotVoting;
        results_[i].detail = *why;
      } else if (nodes.send(i, route, wire, self, 0, nullptr)) {
        ++outstanding_;
      } else {
        results_[i].status = NodeStatus::kDisconnected;
        results_[i].detail = nodes.last_error(i, route);
      }
    }
    if (decide()) return;
    timer_ = ctx_.scheduler.schedule(started_ + timeout_, weak_from_this(),
                                     [this] { give_up("not all answered in time"); });
  }

  void on_reply(std::size_t node, std::uint32_t, const Reply* reply,
                std::string_view failure) override {
    if (done_) return;
    --outstanding_;
    NodeResult& r = results_[node];
    r.rtt = std::chrono::duration_cast<microseconds>(ctx_.scheduler.now() - started_);
    if (reply == nullptr) {
      r.status = NodeStatus::kDisconnected;
      r.detail = std::string(failure);
    } else if (reply->type == Reply::Type::kInteger && reply->integer == -2) {
      r.status = NodeStatus::kRefused;  // no lock key: it does not hold one
      ++free_;
    } else if (reply->type == Reply::Type::kInteger && reply->integer >= -1) {
      r.status = NodeStatus::kOk;
      ttls_.push_back(reply->integer == -1 ? milliseconds::max() : milliseconds(reply->integer));
    } else {
      r.status = NodeStatus::kError;
      r.detail = reply->is_error() ? reply->str : "unexpected reply to PTTL";
    }
    decide();
  }

  void abort() override {
    if (done_) return;
    finish(Unexpected(Error(ErrorCode::kShuttingDown, "the client is shutting down")));
  }

 private:
  // Completes once the answers settle it; returns whether it did.
  bool decide() {
    const std::size_t n = results_.size();
    if (ttls_.size() >= quorum_) {
      LockState state;
      state.held = true;
      state.holding = ttls_.size();
      state.free = free_;
      std::sort(ttls_.begin(), ttls_.end(), std::greater<>());
      state.ttl = ttls_[quorum_ - 1];
      finish(state);
      return true;
    }
    if (free_ > n - quorum_) {
      LockState state;
      state.holding = ttls_.size();
      state.free = free_;
      finish(state);
      return true;
    }
    if (outstanding_ == 0) {
      give_up("too few voting nodes answered");
      return true;
    }
    return false;
  }

  void give_up(const std::string& why) {
    if (done_) return;
    for (auto& r : results_) {
      if (r.status == NodeStatus::kPending) {
        r.status = NodeStatus::kTimeout;
        r.detail = "no answer within " + std::to_string(timeout_.count()) + " ms";
      }
    }
    finish(Unexpected(Error(ErrorCode::kNoQuorum,
                            describe({resource_}) + ": cannot tell whether it is locked: " + why +
                                " (" + std::to_string(ttls_.size()) + " hold it, " +
                                std::to_string(free_) + " do not, a majority is " +
                                std::to_string(quorum_) + ")",
                            results_)));
  }

  void finish(Result<LockState> result) {
    done_ = true;
    ctx_.scheduler.cancel(timer_);
    invoke_user(ctx_.log, callback_, std::move(result));
    ctx_.active.remove(this);
  }

  const OpContext& ctx_;  // the engine's: outlives every operation
  std::string resource_;
  milliseconds timeout_;
  InspectCallback callback_;
  std::vector<NodeResult> results_;
  std::vector<milliseconds> ttls_;  // of the nodes that hold it
  std::size_t free_ = 0;
  std::size_t quorum_ = 0;
  int outstanding_ = 0;
  Clock::time_point started_{};
  Scheduler::TimerId timer_ = 0;
  bool done_ = false;
};

}  // namespace

void start_inspect(const OpContext& ctx, std::string resource, milliseconds timeout,
                   InspectCallback callback) {
  auto op = std::make_shared<InspectOp>(ctx, std::move(resource), timeout, std::move(callback));
  op->start();
}

}  // namespace redlock::detail
