#include "subscriber.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "cluster_node.hpp"
#include "keys.hpp"

namespace redlock::detail {
namespace {

// Subscribed-mode traffic is small: channel names and empty payloads.
constexpr std::size_t kReadBufferSize = 16 * 1024;

Connection::Settings subscriber_settings(const NodeContext& ctx) {
  const ClientOptions& o = ctx.options;
  return {o.connect_timeout, o.reconnect_min, o.reconnect_max, kReadBufferSize, ctx.tls};
}

}  // namespace

Subscriber::Subscriber(const NodeContext& ctx, WakeHub& hub, LockNode& node)
    : ctx_(ctx), hub_(hub), node_(node), conn_(ctx.loop, *this, subscriber_settings(ctx)) {}

void Subscriber::subscribe(const std::string& channel) {
  switch (conn_.state()) {
    case Connection::State::kReady:
      for (auto& cmd : subscription_commands("SUBSCRIBE", {channel})) conn_.write(cmd);
      break;
    case Connection::State::kIdle:
      conn_.start();
      break;
    default:
      break;  // subscribes to the whole table once connected
  }
}

void Subscriber::unsubscribe(const std::string& channel) {
  if (!conn_.ready()) return;
  for (auto& cmd : subscription_commands("UNSUBSCRIBE", {channel})) conn_.write(cmd);
}

void Subscriber::node_ready() {
  if (hub_.table().empty()) return;
  const auto state = conn_.state();
  if (state == Connection::State::kIdle || state == Connection::State::kBackoff) {
    conn_.restart("the node is back");
    return;
  }
  // Connected or connecting: to where the node is now?
  const auto now = node_.endpoint_now();
  if (now && !same_place(*now, conn_.target())) conn_.restart("the node moved");
}

void Subscriber::close() { conn_.close(); }

std::optional<Endpoint> Subscriber::endpoint() {
  // Nothing to reach while the node itself is down: node_ready() starts
  // again when it is back. No SELECT: pub/sub channels are the same in every
  // database.
  if (!node_.reachable()) return std::nullopt;
  auto e = node_.endpoint_now();
  if (e) e->db = 0;
  return e;
}

void Subscriber::on_ready() {
  ctx_.log.debug("node {}: release subscription connected", node_.name());
  warned_denied_ = false;
  for (auto& cmd : subscription_commands("SUBSCRIBE", hub_.table().channels())) conn_.write(cmd);
}

void Subscriber::on_reply(Reply& reply) {
  const auto event = read_push(reply);
  switch (event.kind) {
    case PushEvent::Kind::kMessage:
      hub_.on_message(node_.index(), event.channel);
      break;
    case PushEvent::Kind::kError:
      if (event.error.starts_with("NOAUTH") || event.error.starts_with("WRONGPASS")) {
        conn_.fail("the node requires a password (" + event.error + ")", true);
      } else if (!warned_denied_) {
        // An ACL without the channel permission (or +subscribe): waiters on
        // this node keep their jittered retry. Said once per connection.
        warned_denied_ = true;
        ctx_.log.warn(
            "node {}: cannot subscribe to release announcements ({}); waiters fall back to "
            "their retry delay (docs/deployment.md lists the ACL the channel needs)",
            node_.name(), event.error);
      }
      break;
    default:
      break;
  }
}

void Subscriber::on_down(const std::string& why, bool permanent) {
  if (permanent && conn_.failures() == 0) {
    ctx_.log.warn("node {}: release subscription: {}", node_.name(), why);
  } else {
    ctx_.log.debug("node {}: release subscription: {}", node_.name(), why);
  }
  // Nobody listens: stay closed until somebody does.
  if (hub_.table().empty()) conn_.reset();
}

// ---------------------------------------------------------------------------

// One connection in subscribed mode to one shard master, SSUBSCRIBEd to the
// watched channels whose slots that master serves.
class ShardedSubscriber::Shard final : Connection::Owner {
 public:
  Shard(ShardedSubscriber& owner, Endpoint target)
      : owner_(owner),
        target_(std::move(target)),
        conn_(owner.ctx_.loop, *this, subscriber_settings(owner.ctx_)) {}

  [[nodiscard]] const Endpoint& target() const noexcept { return target_; }
  [[nodiscard]] Connection& conn() noexcept { return conn_; }

  void subscribe(const std::string& channel) {
    switch (conn_.state()) {
      case Connection::State::kReady:
        for (auto& cmd : subscription_commands("SSUBSCRIBE", {channel})) conn_.write(cmd);
        break;
      case Connection::State::kIdle:
        conn_.start();
        break;
      default:
        break;  // subscribes to its part of the table once connected
    }
  }
  void unsubscribe(const std::string& channel) {
    if (!conn_.ready()) return;
    for (auto& cmd : subscription_commands("SUNSUBSCRIBE", {channel})) conn_.write(cmd);
  }

 private:
  // Still a master serving a watched channel's slot: there. Otherwise idle.
  [[nodiscard]] std::vector<std::string> mine() const {
    std::vector<std::string> out;
    for (const auto& channel : owner_.hub_.table().channels()) {
      const auto at = owner_.node_.slot_endpoint(key_slot(channel));
      if (at && same_place(*at, target_)) out.push_back(channel);
    }
    return out;
  }
  std::optional<Endpoint> endpoint() override {
    if (owner_.closed_ || mine().empty()) return std::nullopt;
    return target_;
  }
  void on_ready() override {
    // One command per channel: a cluster takes several shard channels in
    // one SSUBSCRIBE only when they share a slot.
    for (auto& cmd : subscription_commands("SSUBSCRIBE", mine(), 1)) conn_.write(cmd);
  }
  void on_reply(Reply& reply) override {
    const auto event = read_push(reply);
    if (event.kind == PushEvent::Kind::kMessage) {
      owner_.hub_.on_message(owner_.node_.index(), event.channel);
    } else if (event.kind == PushEvent::Kind::kError) {
      if (event.error.starts_with("MOVED")) {
        owner_.node_.refresh_soon("a release subscription was redirected");
      } else {
        owner_.ctx_.log.debug("node {}: release subscription on {}: {}", owner_.node_.name(),
                              target_.where(), event.error);
      }
    }
  }
  void on_down(const std::string& why, bool) override {
    owner_.ctx_.log.debug("node {}: release subscription on {}: {}", owner_.node_.name(),
                          target_.where(), why);
    if (owner_.hub_.table().empty()) conn_.reset();
  }

  ShardedSubscriber& owner_;
  Endpoint target_;
  Connection conn_;
};

ShardedSubscriber::ShardedSubscriber(const NodeContext& ctx, WakeHub& hub, ClusterNode& node)
    : ctx_(ctx), hub_(hub), node_(node) {}

ShardedSubscriber::~ShardedSubscriber() = default;

ShardedSubscriber::Shard* ShardedSubscriber::shard_for(unsigned slot) {
  const auto at = node_.slot_endpoint(slot);
  if (!at) return nullptr;  // node_ready() comes when it connects
  for (auto& s : shards_) {
    if (same_place(s->target(), *at)) return s.get();
  }
  shards_.push_back(std::make_unique<Shard>(*this, *at));
  return shards_.back().get();
}

void ShardedSubscriber::subscribe(const std::string& channel) {
  if (closed_) return;
  if (auto* s = shard_for(key_slot(channel))) s->subscribe(channel);
}

void ShardedSubscriber::unsubscribe(const std::string& channel) {
  if (closed_) return;
  const auto at = node_.slot_endpoint(key_slot(channel));
  if (!at) return;
  for (auto& s : shards_) {
    if (same_place(s->target(), *at)) s->unsubscribe(channel);
  }
}

void ShardedSubscriber::node_ready() {
  if (closed_ || hub_.table().empty()) return;
  if (node_.map_version() != map_version_) {
    // A new map: channels may have moved. Every connection subscribes
    // afresh to what its master serves now (or goes idle).
    map_version_ = node_.map_version();
    for (auto& s : shards_) {
      if (s->conn().state() != Connection::State::kIdle) s->conn().restart("the slot map changed");
    }
  }
  for (const auto& channel : hub_.table().channels()) {
    if (auto* s = shard_for(key_slot(channel))) {
      const auto state = s->conn().state();
      if (state == Connection::State::kIdle || state == Connection::State::kBackoff) {
        s->conn().start();
      }
    }
  }
}

void ShardedSubscriber::close() {
  closed_ = true;
  for (auto& s : shards_) s->conn().close();
}

// ---------------------------------------------------------------------------

WakeHub::WakeHub(const NodeContext& ctx, const std::vector<std::unique_ptr<LockNode>>& nodes)
    : ctx_(ctx),
      linger_(kChannelLinger + 2 * (ctx.options.node_timeout.count() > 0 ? ctx.options.node_timeout
                                                                         : kMaxAutoNodeTimeout)) {
  for (const auto& node : nodes) {
    if (auto* cluster = node->cluster()) {
      subscribers_.push_back(std::make_unique<ShardedSubscriber>(ctx, *this, *cluster));
    } else {
      subscribers_.push_back(std::make_unique<Subscriber>(ctx, *this, *node));
    }
  }
}

WakeHub::~WakeHub() = default;

ReleaseWatch::WatchId WakeHub::watch(const std::vector<std::string>& resources,
                                     std::weak_ptr<ReleaseListener> listener) {
  if (closed_ || resources.empty() || listener.expired()) return 0;
  const WatchId id = next_id_++;
  for (const auto& resource : resources) {
    const auto channel = release_channel(resource);
    if (table_.add(channel, id)) {
      for (auto& s : subscribers_) s->subscribe(channel);
    }
  }
  watches_.emplace(id, std::move(listener));
  return id;
}

void WakeHub::unwatch(WatchId id, const std::vector<std::string>& resources) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  watches_.erase(it);
  const auto now = ctx_.loop.now();
  // A name listed twice is removed once: the second finds no such listener.
  for (const auto& resource : resources) {
    const auto channel = release_channel(resource);
    if (table_.remove(channel, id, now, !closed_) && !closed_) {
      for (auto& s : subscribers_) s->unsubscribe(channel);
    }
  }
  if (!closed_ && table_.idle() > 0 && sweep_timer_ == 0) {
    sweep_timer_ = ctx_.loop.schedule(now + linger_, [this] {
      sweep_timer_ = 0;
      sweep();
    });
  }
}

bool WakeHub::heard_since(const std::vector<std::string>& resources,
                          Clock::time_point since) const {
  return std::any_of(resources.begin(), resources.end(), [&](const std::string& resource) {
    return table_.heard_since(release_channel(resource), since);
  });
}

void WakeHub::sweep() {
  if (closed_) return;
  const auto now = ctx_.loop.now();
  for (const auto& channel : table_.expire(now - linger_)) {
    for (auto& s : subscribers_) s->unsubscribe(channel);
  }
  if (table_.idle() > 0) {
    sweep_timer_ = ctx_.loop.schedule(now + linger_ / 4, [this] {
      sweep_timer_ = 0;
      sweep();
    });
  }
}

void WakeHub::node_ready(std::size_t node) {
  if (closed_ || node >= subscribers_.size()) return;
  subscribers_[node]->node_ready();
}

void WakeHub::close() {
  if (closed_) return;
  closed_ = true;
  ctx_.loop.cancel(std::exchange(sweep_timer_, 0));
  for (auto& s : subscribers_) s->close();
}

void WakeHub::on_message(std::size_t node, const std::string& channel) {
  if (closed_) return;
  table_.heard(channel, ctx_.loop.now());
  // The oldest watch first: of this client's gated waiters, the oldest
  // asks the gate, and the others wait for its next announcement.
  bool gated = false;
  for (const auto id : table_.listeners(channel)) {
    auto it = watches_.find(id);
    if (it == watches_.end()) continue;  // unwatched by an earlier wake-up
    // Locked first: the call may unwatch (and so destroy) this very watch.
    const auto listener = it->second.lock();
    if (listener) gated = listener->on_release_announced(node, gated) || gated;
  }
}

}  // namespace redlock::detail
