#include "health_op.hpp"

#include <algorithm>
#include <charconv>

namespace redlock::detail {
namespace {

class HealthOp final : public Operation {
 public:
  HealthOp(const OpContext& ctx, milliseconds timeout, HealthCallback callback)
      : ctx_(ctx), timeout_(timeout), callback_(std::move(callback)) {}

  void start() {
    auto& nodes = ctx_.nodes;
    const auto now = ctx_.scheduler.now();
    started_ = now;
    report_.quorum = quorum(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      report_.nodes.push_back(nodes.health(i, now));
      report_.voting += report_.nodes.back().voting ? 1U : 0U;
    }
    const auto self = shared_from_this();
    ctx_.active.add(self);
    static const std::string info = format_command({"INFO"});
    static const std::string fsync = format_command({"CONFIG", "GET", "appendfsync"});
    // A Redis Cluster node is asked shard by shard (the tag carries the
    // shard); its report shows the weakest shard's settings.
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto& h = report_.nodes[i];
      const std::size_t shards = std::max<std::size_t>(h.shards.size(), 1);
      for (std::size_t k = 0; k < shards; ++k) {
        const auto route = Route::shard(k);
        if (!h.shards.empty() && !h.shards[k].reachable) continue;
        if (h.shards.empty() && !h.reachable) continue;
        const auto tag = static_cast<std::uint32_t>(k * 2);
        if (nodes.send(i, route, info, self, tag + kInfo, nullptr)) ++outstanding_;
        if (nodes.send(i, route, fsync, self, tag + kFsync, nullptr)) ++outstanding_;
      }
    }
    if (outstanding_ == 0) {
      complete();
      return;
    }
    timer_ = ctx_.scheduler.schedule(started_ + timeout_, weak_from_this(), [this] { complete(); });
  }

  void on_reply(std::size_t node, std::uint32_t tag, const Reply* reply,
                std::string_view failure) override {
    if (done_) return;
    NodeHealth& h = report_.nodes[node];
    const std::uint32_t what = tag % 2;
    const bool first = tag / 2 == 0;
    if (reply == nullptr) {
      if (h.error.empty()) h.error = std::string(failure);
    } else if (what == kInfo && reply->type == Reply::Type::kString) {
      const auto rtt = std::chrono::duration_cast<microseconds>(ctx_.scheduler.now() - started_);
      h.rtt = h.rtt ? std::max(*h.rtt, rtt) : rtt;
      read_info(reply->str, h, first);
    } else if (what == kFsync && reply->type == Reply::Type::kArray &&
               reply->elements.size() == 2) {
      // The weakest of the shards': always, then everysec, then no.
      const auto rank = [](const std::string& v) { return v == "always" ? 0 : v == "no" ? 2 : 1; };
      if (h.appendfsync.empty() || rank(reply->elements[1].str) > rank(h.appendfsync)) {
        h.appendfsync = reply->elements[1].str;
      }
    }
    if (--outstanding_ == 0) complete();
  }

  void abort() override {
    if (done_) return;
    done_ = true;
    ctx_.scheduler.cancel(timer_);
    invoke_user(ctx_.log, callback_,
                Result<HealthReport>(
                    Unexpected(Error(ErrorCode::kShuttingDown, "the client is shutting down"))));
    ctx_.active.remove(this);
  }

 private:
  static constexpr std::uint32_t kInfo = 0;
  static constexpr std::uint32_t kFsync = 1;

  // `first`: the node's reply, or its first shard's; the other shards'
  // only weaken the persistence and eviction fields.
  static void read_info(std::string_view info, NodeHealth& h, bool first) {
    if (!first) {
      if (auto v = info_field(info, "aof_enabled"); v && *v != "1") h.aof_enabled = false;
      if (auto v = info_field(info, "maxmemory_policy"); v && *v != "noeviction") {
        h.maxmemory_policy = std::string(*v);
        h.eviction_can_drop_locks = true;
      }
      return;
    }
    if (auto v = info_field(info, "redis_version")) h.version = std::string(*v);
    if (h.shards.empty()) {
      if (auto v = info_field(info, "run_id")) h.run_id = std::string(*v);
    }
    if (auto v = info_field(info, "uptime_in_seconds"); v && h.shards.empty()) {
      long long secs = 0;
      const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), secs);
      if (ec == std::errc() && end == v->data() + v->size() && secs >= 0) {
        h.uptime = std::chrono::seconds(secs);
      }
    }
    if (auto v = info_field(info, "aof_enabled"))
      h.aof_enabled = h.aof_enabled.value_or(true) && *v == "1";
    if (auto v = info_field(info, "maxmemory_policy");
        v && (h.maxmemory_policy.empty() || h.maxmemory_policy == "noeviction")) {
      h.maxmemory_policy = std::string(*v);
      // Lock keys carry a ttl, so volatile-* policies may pick them too.
      h.eviction_can_drop_locks = h.maxmemory_policy != "noeviction";
    }
  }

  void complete() {
    if (done_) return;
    done_ = true;
    ctx_.scheduler.cancel(timer_);
    for (auto& h : report_.nodes) {
      if (h.reachable && !h.rtt && h.error.empty()) {
        h.error = "no answer to INFO within " + std::to_string(timeout_.count()) + " ms";
      }
    }
    invoke_user(ctx_.log, callback_, Result<HealthReport>(std::move(report_)));
    ctx_.active.remove(this);
  }

  const OpContext& ctx_;  // the engine's: outlives every operation
  milliseconds timeout_;
  HealthCallback callback_;
  HealthReport report_;
  int outstanding_ = 0;
  Clock::time_point started_{};
  Scheduler::TimerId timer_ = 0;
  bool done_ = false;
};

}  // namespace

void start_health(const OpContext& ctx, milliseconds timeout, HealthCallback callback) {
  auto op = std::make_shared<HealthOp>(ctx, timeout, std::move(callback));
  op->start();
}

}  // namespace redlock::detail
