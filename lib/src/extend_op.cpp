#include "extend_op.hpp"

#include "keys.hpp"

namespace redlock::detail {
namespace {

class ExtendOp final : public QuorumOp {
 public:
  ExtendOp(const OpContext& ctx, Lock lock, milliseconds ttl, const ExtendOptions& options,
           AcquireCallback callback)
      : QuorumOp(ctx,
                 effective_node_timeout(options.node_timeout.count() > 0 ? options.node_timeout
                                                                         : ctx.options.node_timeout,
                                        ttl),
                 Route::of(lock.resources())),
        lock_(std::move(lock)),
        ttl_(ttl),
        options_(options),
        callback_(std::move(callback)) {
    const std::string ttl_ms = std::to_string(ttl.count());
    const std::string_view recreate = options.recreate_missing ? "1" : "0";
    const auto keys = lock_keys(lock_.resources());
    wire_ = std::make_shared<const std::string>(
        script_command(kExtendScript, true, keys, {lock_.token(), ttl_ms, recreate}));
  }

  void start() {
    ctx_.active.add(shared_from_this());
    if (now() >= lock_.valid_until()) {
      complete(Unexpected(expired_error("before the extension started")));
      return;
    }
    start_round(*wire_, wire_, ttl_, options_.min_validity, ErrorCode::kNotOwner,
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
      complete(Lock(lock_.resources(), lock_.token(), round_->valid_until(), round_->results, ttl_,
                    lock_.fence()));
      return;
    }
    const auto n = round_->results.size();
    const auto& what = lock_.resources();
    std::string msg;
    switch (round_->failure()) {
      case ErrorCode::kNotOwner:
        msg = describe(what) + ": no longer the owner on enough nodes (" +
              std::to_string(round_->yes()) + " of " + std::to_string(n) + " extended, " +
              std::to_string(quorum(n)) + " needed)";
        break;
      case ErrorCode::kValidityExhausted:
        msg = describe(what) + ": a majority extended it too late to leave min_validity";
        break;
      default:
        msg = describe(what) + ": only " + std::to_string(round_->yes()) + " of " +
              std::to_string(n) + " nodes extended, " + std::to_string(quorum(n)) + " needed";
        break;
    }
    complete(Unexpected(Error(round_->failure(), std::move(msg), round_->results)));
  }

  [[nodiscard]] Error expired_error(std::string_view when) const {
    return Error(ErrorCode::kExpired,
                 describe(lock_.resources()) + ": the lock's validity ended " + std::string(when),
                 round_ ? round_->results : std::vector<NodeResult>{});
  }

  void complete(Result<Lock> result) {
    if (done_) return;
    done_ = true;
    ctx_.metrics.extend(result.has_value());
    invoke_user(ctx_.log, callback_, std::move(result));
    ctx_.active.remove(this);
  }

  Lock lock_;
  milliseconds ttl_;
  ExtendOptions options_;
  AcquireCallback callback_;
  std::shared_ptr<const std::string> wire_;  // EVALSHA: also its own NOSCRIPT fallback
};

}  // namespace

void start_extend(const OpContext& ctx, const Lock& lock, milliseconds ttl,
                  const ExtendOptions& options, AcquireCallback callback) {
  auto op = std::make_shared<ExtendOp>(ctx, lock, ttl, options, std::move(callback));
  op->start();
}

}  // namespace redlock::detail
