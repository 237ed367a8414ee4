#include "release_op.hpp"

#include <algorithm>

#include "keys.hpp"

namespace redlock::detail {
namespace {

class ReleaseOp final : public Operation {
 public:
  ReleaseOp(const OpContext& ctx, std::vector<std::string> resources, std::string token,
            Clock::time_point key_expiry, std::vector<bool> targets, ReleaseCallback callback,
            bool announce)
      : ctx_(ctx),
        resources_(std::move(resources)),
        token_(std::move(token)),
        key_expiry_(key_expiry),
        targets_(std::move(targets)),
        callback_(std::move(callback)),
        announce_(announce) {}

  void start() {
    auto& nodes = ctx_.nodes;
    const std::size_t n = nodes.size();
    if (targets_.empty()) targets_.assign(n, true);
    report_.nodes.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      report_.nodes.push_back(node_result(nodes.name(i), NodeStatus::kPending));
    }
    started_ = ctx_.scheduler.now();
    const auto keys = lock_keys(resources_);
    const auto route = Route::of(resources_);
    // ARGV: the token, whether and how to announce, then each key's release
    // channel. A Redis Cluster node announces with sharded pub/sub: a
    // PUBLISH would be broadcast to every node of the cluster.
    std::vector<std::string> channels;
    std::vector<std::string_view> args{token_, announce_ ? "1" : "0"};
    if (announce_) {
      channels = release_channels(resources_);
      args.insert(args.end(), channels.begin(), channels.end());
    }
    // EVALSHA commands, each also its own NOSCRIPT fallback (eval_form).
    const auto cmd =
        std::make_shared<const std::string>(script_command(kReleaseScript, true, keys, args));
    std::shared_ptr<const std::string> sharded_cmd;
    const auto sharded = [&](std::size_t i) {
      if (!announce_ || !nodes.announce_sharded(i)) return false;
      if (!sharded_cmd) {
        args[1] = "2";
        sharded_cmd =
            std::make_shared<const std::string>(script_command(kReleaseScript, true, keys, args));
      }
      return true;
    };
    // Count every target before sending: a node that fails at once must not
    // complete the release while others have not been asked yet.
    outstanding_ = static_cast<std::size_t>(std::count(targets_.begin(), targets_.end(), true));
    if (outstanding_ == 0) {
      complete();
      return;
    }
    const auto self = shared_from_this();
    for (std::size_t i = 0; i < n; ++i) {
      if (!targets_[i]) {
        report_.nodes[i].status = NodeStatus::kRefused;
        report_.nodes[i].detail = "not asked";
        continue;
      }
      const bool by_shard = sharded(i);
      const auto& wire = by_shard ? sharded_cmd : cmd;
      if (!nodes.send(i, route, *wire, self, 0, wire)) {
        nodes.remember_cleanup(i, resources_, token_, key_expiry_);
        answer(i, NodeStatus::kDisconnected, "not connected; released when it reconnects");
      }
    }
    if (done_) return;
    if (callback_) {
      ctx_.active.add(self);
      timer_ = ctx_.scheduler.schedule(started_ + ctx_.options.release_timeout, weak_from_this(),
                                       [this] { on_timeout(); });
    }
  }

  void on_reply(std::size_t node, std::uint32_t, const Reply* reply,
                std::string_view failure) override {
    if (reply == nullptr) {
      ctx_.nodes.remember_cleanup(node, resources_, token_, key_expiry_);
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
    if (done_) return;
    const auto rtt = std::chrono::duration_cast<microseconds>(ctx_.scheduler.now() - started_);
    ctx_.metrics.node_reply(node, status, rtt);
    if (!reported_) {
      auto& r = report_.nodes[node];
      r.status = status;
      r.detail = std::move(detail);
      r.rtt = rtt;
      if (status == NodeStatus::kOk) ++report_.deleted;
    }
    if (--outstanding_ == 0) {
      complete();
    } else if (!reported_ && ctx_.options.release_wait == ClientOptions::ReleaseWait::kMajority &&
               static_cast<std::size_t>(report_.deleted) >= quorum(report_.nodes.size())) {
      // The lock is free: report now; the others' answers still count in
      // the metrics, and a node that fails remembers the release.
      for (auto& r : report_.nodes) {
        if (r.status == NodeStatus::kPending) r.detail = "no answer yet; the delete is on its way";
      }
      report();
    }
  }

  void on_timeout() {
    timer_ = 0;
    if (done_ || reported_) return;
    for (std::size_t i = 0; i < report_.nodes.size(); ++i) {
      auto& r = report_.nodes[i];
      if (r.status == NodeStatus::kPending) {
        r.status = NodeStatus::kTimeout;
        r.detail = "no answer within release_timeout";
        ctx_.metrics.node_reply(i, NodeStatus::kTimeout, {});
      }
    }
    complete();
  }

  // Every node answered (or the engine shuts down, or release_timeout
  // passed, with nobody left to report to afterwards).
  void complete() {
    if (done_) return;
    done_ = true;
    report();
  }

  // Hands the report to the caller, once. Must be the last thing a caller of
  // it does: the operation may be gone afterwards.
  void report() {
    if (reported_) return;
    reported_ = true;
    ctx_.scheduler.cancel(timer_);
    timer_ = 0;
    if (callback_) {
      invoke_user(ctx_.log, callback_, Result<ReleaseReport>(std::move(report_)));
      ctx_.active.remove(this);
    }
  }

  const OpContext& ctx_;  // the engine's: outlives every operation
  std::vector<std::string> resources_;
  std::string token_;
  Clock::time_point key_expiry_;
  std::vector<bool> targets_;
  ReleaseCallback callback_;
  bool announce_;
  ReleaseReport report_;
  Clock::time_point started_{};
  std::size_t outstanding_ = 0;
  Scheduler::TimerId timer_ = 0;
  bool reported_ = false;  // the callback has its report
  bool done_ = false;      // every node answered, or nobody waits any longer
};

}  // namespace

void start_release(const OpContext& ctx, std::vector<std::string> resources, std::string token,
                   Clock::time_point key_expiry, std::vector<bool> targets,
                   ReleaseCallback callback, bool announce) {
  auto op = std::make_shared<ReleaseOp>(ctx, std::move(resources), std::move(token), key_expiry,
                                        std::move(targets), std::move(callback), announce);
  op->start();
}

}  // namespace redlock::detail
