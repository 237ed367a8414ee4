// cluster_node.cpp: longer than most files here (about 650 lines) because
// a Redis Cluster node is a small client of its own: the slot map and its
// refreshes, one connection per shard master, MOVED/ASK/TRYAGAIN, and the
// shard-level vote and health. The pure part (slot map parsing) is in
// slot_map.cpp.
#include "cluster_node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace redlock::detail {
namespace {

std::string ms_text(Clock::duration d) {
  return std::to_string(std::chrono::ceil<milliseconds>(d).count()) + " ms";
}

}  // namespace

// A command on its way to its slot's master: what it takes to send it again
// where a MOVED or ASK points.
class ClusterNode::Command final : public Operation {
 public:
  Command(ClusterNode& owner, Route route, std::string_view wire, std::shared_ptr<Operation> op,
          std::uint32_t tag, std::shared_ptr<const std::string> fallback)
      : owner_(owner),
        route_(route),
        wire_(wire),
        op_(std::move(op)),
        tag_(tag),
        fallback_(std::move(fallback)) {}

  void on_reply(std::size_t, std::uint32_t, const Reply* reply, std::string_view failure) override {
    if (reply != nullptr && reply->is_error()) {
      std::string why;
      if (owner_.follow(*this, *reply, why)) return;
      if (!why.empty()) {
        // Never a vote: the operation sees the error, and why it stopped.
        Reply told = *reply;
        told.str += " (" + why + ")";
        op_->on_reply(owner_.index_, tag_, &told, failure);
        return;
      }
    }
    op_->on_reply(owner_.index_, tag_, reply, failure);
  }

  Route route() const noexcept { return route_; }
  const std::string& wire() const noexcept { return wire_; }
  std::uint32_t tag() const noexcept { return tag_; }
  const std::shared_ptr<const std::string>& fallback() const noexcept { return fallback_; }
  // Not sent again: the operation has its answer, a failure.
  void fail(const std::string& why) { op_->on_reply(owner_.index_, tag_, nullptr, why); }
  int hops = 0;
  int tries = 0;  // TRYAGAIN answers so far

 private:
  ClusterNode& owner_;
  Route route_;
  std::string wire_;
  std::shared_ptr<Operation> op_;
  std::uint32_t tag_;
  std::shared_ptr<const std::string> fallback_;
};

// The connection the map is asked on: to a seed first, then to any node the
// map names, the next one after each failure.
class ClusterNode::Topology final : public Connection::Owner {
 public:
  Topology(ClusterNode& owner, const Connection::Settings& settings)
      : owner_(owner), conn_(owner.ctx_.loop, *this, settings) {}

  Connection& conn() noexcept { return conn_; }

  std::optional<Endpoint> endpoint() override {
    if (owner_.closed_) return std::nullopt;
    // The map's nodes (masters, then replicas), then the seeds.
    std::vector<const HostPort*> seeds;
    std::vector<ClusterPeer> known;
    for (const auto& s : owner_.map_.shards()) known.push_back(s.master);
    for (const auto& s : owner_.map_.shards()) {
      known.insert(known.end(), s.replicas.begin(), s.replicas.end());
    }
    const std::size_t total = known.size() + owner_.address_.seeds.size();
    const std::size_t i = next_++ % total;
    Endpoint e = owner_.shard_endpoint_base();
    if (i < known.size()) {
      e.host = known[i].host;
      e.port = known[i].port;
    } else {
      const auto& seed = owner_.address_.seeds[i - known.size()];
      e.host = seed.host;
      e.port = seed.port;
    }
    return e;
  }
  void on_ready() override { owner_.query(); }
  void on_reply(Reply& reply) override { owner_.on_map_reply(reply, conn_.target().host); }
  void on_down(const std::string& why, bool /*permanent*/) override { owner_.on_map_failed(why); }

 private:
  ClusterNode& owner_;
  std::size_t next_ = 0;
  Connection conn_;
};

ClusterNode::ClusterNode(const NodeContext& ctx, std::size_t index, NodeAddress address)
    : ctx_(ctx),
      index_(index),
      address_(std::move(address)),
      shard_ctx_{ctx.loop, ctx.options, ctx.restart_grace, ctx.log, ctx.metrics, *this} {
  const auto& o = ctx_.options;
  topology_ = std::make_unique<Topology>(
      *this, Connection::Settings{o.connect_timeout, o.reconnect_min, o.reconnect_max, 16 * 1024});
}

ClusterNode::~ClusterNode() = default;

Endpoint ClusterNode::shard_endpoint_base() const {
  return credentials_endpoint(address_, ctx_.options.username, ctx_.options.password);
}

NodeAddress ClusterNode::shard_address(const ClusterPeer& master) const {
  NodeAddress a;
  a.kind = NodeAddress::Kind::kTcp;
  a.host = master.host;
  a.port = master.port;
  const auto e = shard_endpoint_base();
  a.username = e.username;
  a.password = e.password;
  a.has_credentials = true;
  a.display = "shard " + master.where() + " of " + address_.display;
  a.text = a.display;
  return a;
}

void ClusterNode::start() {
  request_refresh("starting");
  schedule_periodic();
}

void ClusterNode::close() {
  if (closed_) return;
  closed_ = true;
  for (auto id : {refresh_timer_, periodic_timer_, reply_timer_, retired_timer_}) {
    ctx_.loop.cancel(id);
  }
  refresh_timer_ = periodic_timer_ = reply_timer_ = retired_timer_ = 0;
  auto waiting = std::move(try_again_);
  try_again_.clear();
  for (auto& [id, command] : waiting) {
    ctx_.loop.cancel(id);
    command->fail("connection closed: shutting down");
  }
  all_ready_ = false;
  topology_->conn().close();
  for (auto& s : shards_) s.node->close();
  retired_.clear();
}

// ---------------------------------------------------------------------------
// Routing.

std::optional<std::size_t> ClusterNode::shard_index(Route route) const {
  if (route.is_shard()) {
    const auto k = route.shard_index();
    if (k < shards_.size()) return k;
    return std::nullopt;
  }
  if (!moved_.empty()) {
    if (auto it = moved_.find(route.slot_number()); it != moved_.end()) return it->second;
  }
  return map_.shard_of(route.slot_number());
}

bool ClusterNode::send(Route route, std::string_view wire, const std::shared_ptr<Operation>& op,
                       std::uint32_t tag, const std::shared_ptr<const std::string>& fallback) {
  const auto k = shard_index(route);
  if (!k) return false;
  Node& node = *shards_[*k].node;
  if (!node.connected()) return false;
  // Keyless commands (INFO, TIME) are answered where they are sent: the
  // shard Node reports them under this node's index.
  if (route.is_shard()) return node.send(wire, op, tag, fallback);
  return node.send(wire, std::make_shared<Command>(*this, route, wire, op, tag, fallback), tag,
                   fallback);
}

bool ClusterNode::follow(Command& command, const Reply& reply, std::string& why) {
  if (reply.str.starts_with("CLUSTERDOWN")) {
    request_refresh("CLUSTERDOWN");
    return false;
  }
  if (reply.str.starts_with("TRYAGAIN")) return try_again(command, why);
  const auto redirect = parse_redirect(reply.str);
  if (!redirect) return false;
  if (redirect->kind == Redirect::Kind::kMoved) request_refresh("MOVED");
  if (closed_) return false;
  if (++command.hops > kClusterMaxRedirects) {
    why = "not followed: " + std::to_string(kClusterMaxRedirects) + " redirects already";
    return false;
  }
  // Only to a master of the map: a MOVED to a replica of the map (a
  // failover) or to a node it does not know waits for the next map, which
  // tells whether that master may lack keys.
  const auto k = map_.shard_at(redirect->host, redirect->port);
  if (!k) {
    why = "not followed: not a master of the cluster map yet; the map is asked for again";
    request_refresh("a redirect to an unknown master");
    return false;
  }
  Shard& shard = shards_[*k];
  if (!shard.node->connected()) {
    why = "not followed: " + shard.node->last_error();
    return false;
  }
  if (auto block = shard_block(shard, ctx_.loop.now())) {
    why = "not followed: " + *block;
    return false;
  }
  auto self = std::static_pointer_cast<Command>(command.shared_from_this());
  if (redirect->kind == Redirect::Kind::kMoved) {
    moved_[redirect->slot] = *k;
  } else {
    static const std::string asking = format_command({"ASKING"});
    if (!shard.node->send(asking, discard_op(), 0, nullptr)) {
      why = "not followed: the target is too far behind";
      return false;
    }
  }
  if (!shard.node->send(command.wire(), self, command.tag(), command.fallback())) {
    why = "not followed: the target is too far behind";
    return false;
  }
  return true;
}

bool ClusterNode::try_again(Command& command, std::string& why) {
  if (closed_) return false;
  if (++command.tries > kClusterMaxTryAgain) {
    why = "not sent again: " + std::to_string(kClusterMaxTryAgain) + " TRYAGAIN already";
    return false;
  }
  // From the start: to the slot's master, which redirects it again as long
  // as the migration lasts.
  command.hops = 0;
  auto self = std::static_pointer_cast<Command>(command.shared_from_this());
  auto id = std::make_shared<Scheduler::TimerId>(0);
  *id = ctx_.loop.schedule(ctx_.loop.now() + kClusterTryAgainDelay, [this, id] {
    auto it = try_again_.find(*id);
    if (it == try_again_.end()) return;
    auto again = std::move(it->second);
    try_again_.erase(it);
    const auto k = shard_index(again->route());
    if (k && shards_[*k].node->connected() &&
        shards_[*k].node->send(again->wire(), again, again->tag(), again->fallback())) {
      return;
    }
    // The operation counts it as a "no" (or has finished already).
    again->fail("not sent again after TRYAGAIN: " + last_error(again->route()));
  });
  try_again_.emplace(*id, std::move(self));
  return true;
}

bool ClusterNode::ready(Route route) const {
  const auto k = shard_index(route);
  return k && shards_[*k].node->connected();
}

std::string ClusterNode::last_error(Route route) const {
  if (!have_map_) {
    return "no cluster map yet" + (map_error_.empty() ? std::string() : ": " + map_error_);
  }
  const auto k = shard_index(route);
  if (!k) {
    if (route.is_shard()) return "no such shard";
    return "slot " + std::to_string(route.slot_number()) + " has no master in the cluster map";
  }
  const Node& node = *shards_[*k].node;
  if (node.connected()) return {};
  const auto error = node.last_error();
  return "shard " + shards_[*k].map.master.where() + (error.empty() ? "" : ": " + error);
}

std::optional<std::string> ClusterNode::shard_block(const Shard& shard,
                                                    Clock::time_point now) const {
  // A failover's grace is named first: it is the cause, and it outlasts the
  // new master's own checks (a clock not yet timed, a young server).
  if (shard.fresh_until > now) {
    return "shard " + shard.map.master.where() +
           ": promoted to master by a failover (its replication may have lagged); votes again "
           "in " +
           ms_text(shard.fresh_until - now);
  }
  if (auto why = shard.node->vote_block(now)) {
    return "shard " + shard.map.master.where() + ": " + *why;
  }
  return std::nullopt;
}

std::optional<std::string> ClusterNode::vote_block(Route route, Clock::time_point now) const {
  const auto k = shard_index(route);
  if (!k) return std::nullopt;  // not sent, so counted as not connected
  return shard_block(shards_[*k], now);
}

bool ClusterNode::reachable() const {
  return std::any_of(shards_.begin(), shards_.end(),
                     [](const Shard& s) { return s.node->connected(); });
}

std::optional<Endpoint> ClusterNode::endpoint_now() const {
  for (const auto& s : shards_) {
    if (s.node->connected()) return s.node->endpoint_now();
  }
  return std::nullopt;
}

std::optional<Endpoint> ClusterNode::slot_endpoint(unsigned slot) const {
  const auto k = shard_index(Route::slot(slot));
  if (!k || !shards_[*k].node->connected()) return std::nullopt;
  return shards_[*k].node->endpoint_now();
}

bool ClusterNode::has_server(std::string_view run_id) const {
  return std::any_of(shards_.begin(), shards_.end(),
                     [&](const Shard& s) { return s.node->has_server(run_id); });
}

void ClusterNode::sample_clock() {
  for (auto& s : shards_) s.node->sample_clock();
}

// ---------------------------------------------------------------------------
// State, for any thread.

bool ClusterNode::answering(Clock::time_point now) const noexcept {
  std::lock_guard lk(shards_mutex_);
  if (!all_ready_.load() || shards_.empty()) return false;
  return std::all_of(shards_.begin(), shards_.end(),
                     [&](const Shard& s) { return s.node->answering(now); });
}

bool ClusterNode::voting(Clock::time_point now) const noexcept {
  std::lock_guard lk(shards_mutex_);
  if (!all_ready_.load() || shards_.empty()) return false;
  return std::all_of(shards_.begin(), shards_.end(),
                     [&](const Shard& s) { return s.node->voting(now) && s.fresh_until <= now; });
}

void ClusterNode::update_summary() {
  const bool all = map_.covered() == kSlotCount && !shards_.empty() &&
                   std::all_of(shards_.begin(), shards_.end(),
                               [](const Shard& s) { return s.node->connected(); });
  all_ready_ = all && !closed_;
}

NodeHealth ClusterNode::health(Clock::time_point now) const {
  NodeHealth h;
  h.node = name();
  h.reachable = all_ready_.load();
  bool all_answering = !shards_.empty();
  for (const auto& s : shards_) {
    const NodeHealth n = s.node->health(now);
    ShardHealth sh;
    sh.master = s.map.master.where();
    sh.slots = ranges_text(s.map.ranges);
    sh.replicas = s.map.replicas.size();
    sh.reachable = n.reachable;
    sh.error = n.error;
    sh.not_voting_reason =
        s.fresh_until > now
            ? "promoted to master by a failover; votes again in " + ms_text(s.fresh_until - now)
            : n.not_voting_reason;
    sh.voting = sh.not_voting_reason.empty();
    all_answering = all_answering && n.answering;
    if (h.version.empty()) h.version = n.version;
    if (n.clock_suspect && !h.clock_suspect) {
      h.clock_suspect = true;
      h.clock_reason = "shard " + sh.master + ": " + n.clock_reason;
    }
    if (n.votes_again_in) {
      h.votes_again_in = std::max(h.votes_again_in.value_or(milliseconds(0)), *n.votes_again_in);
    }
    if (s.fresh_until > now) {
      h.votes_again_in = std::max(h.votes_again_in.value_or(milliseconds(0)),
                                  std::chrono::ceil<milliseconds>(s.fresh_until - now));
    }
    if (h.error.empty() && !n.error.empty()) h.error = "shard " + sh.master + ": " + n.error;
    if (h.not_voting_reason.empty() && !sh.voting) {
      h.not_voting_reason = "shard " + sh.master + ": " + sh.not_voting_reason;
    }
    h.shards.push_back(std::move(sh));
  }
  h.answering = h.reachable && all_answering;
  if (!have_map_) {
    h.not_voting_reason =
        "no cluster map yet" + (map_error_.empty() ? std::string() : ": " + map_error_);
    if (h.error.empty()) h.error = map_error_;
  } else if (map_.covered() < kSlotCount) {
    h.not_voting_reason = std::to_string(kSlotCount - map_.covered()) + " of " +
                          std::to_string(kSlotCount) + " slots have no master";
  }
  h.voting = h.not_voting_reason.empty();
  return h;
}

// ---------------------------------------------------------------------------
// Events from the shard Nodes.

void ClusterNode::node_ready(std::size_t) {
  if (closed_) return;
  update_summary();
  replay_cleanups();
  ctx_.events.node_ready(index_);
}

void ClusterNode::node_attempted(std::size_t) {
  if (reported_first_attempt_ || attempts_pending_ == 0) return;
  if (--attempts_pending_ == 0) report_attempt();
}

void ClusterNode::node_down(std::size_t) {
  if (closed_) return;
  update_summary();
  request_refresh("a shard's connection was lost");
}

void ClusterNode::replay_release(std::size_t, std::vector<std::string> resources, std::string token,
                                 Clock::time_point until) {
  // Shard Nodes keep no releases of their own (remember_cleanup comes here).
  ctx_.events.replay_release(index_, std::move(resources), std::move(token), until);
}

std::optional<std::size_t> ClusterNode::same_server(std::size_t, std::string_view run_id) const {
  return ctx_.events.same_server(index_, run_id);
}

void ClusterNode::report_attempt() {
  if (reported_first_attempt_) return;
  reported_first_attempt_ = true;
  ctx_.events.node_attempted(index_);
}

void ClusterNode::remember_cleanup(std::vector<std::string> resources, std::string token,
                                   Clock::time_point until) {
  if (closed_ || until <= ctx_.loop.now()) return;
  if (cleanup_.size() >= kMaxCleanup) cleanup_.pop_front();
  cleanup_.push_back({std::move(resources), std::move(token), until});
}

void ClusterNode::replay_cleanups() {
  if (cleanup_.empty()) return;
  const auto now = ctx_.loop.now();
  // Taken out first: a replay that cannot be sent is remembered again.
  std::vector<Cleanup> due;
  std::deque<Cleanup> keep;
  for (auto& c : cleanup_) {
    if (c.until <= now) continue;
    if (ready(Route::of(c.resources))) {
      due.push_back(std::move(c));
    } else {
      keep.push_back(std::move(c));
    }
  }
  cleanup_ = std::move(keep);
  for (auto& c : due) {
    ctx_.events.replay_release(index_, std::move(c.resources), std::move(c.token), c.until);
  }
}

// ---------------------------------------------------------------------------
// The map.

void ClusterNode::request_refresh(const std::string& why) {
  if (closed_) return;
  refresh_wanted_ = true;
  if (query_in_flight_ || refresh_timer_ != 0) return;
  const auto now = ctx_.loop.now();
  const auto earliest = last_query_ + kClusterMinRefreshGap;
  ctx_.log.debug("node {}: asking for the cluster map ({})", name(), why);
  if (now >= earliest) {
    query();
    return;
  }
  refresh_timer_ = ctx_.loop.schedule(earliest, [this] {
    refresh_timer_ = 0;
    query();
  });
}

void ClusterNode::query() {
  if (closed_ || !refresh_wanted_ || query_in_flight_) return;
  auto& conn = topology_->conn();
  if (!conn.ready()) {
    conn.start();  // on_ready() asks
    return;
  }
  static const std::string shards = format_command({"CLUSTER", "SHARDS"});
  static const std::string slots = format_command({"CLUSTER", "SLOTS"});
  conn.write(use_slots_ ? slots : shards);
  refresh_wanted_ = false;
  query_in_flight_ = true;
  last_query_ = ctx_.loop.now();
  reply_timer_ = ctx_.loop.schedule(last_query_ + ctx_.options.connect_timeout, [this] {
    reply_timer_ = 0;
    if (query_in_flight_) {
      topology_->conn().fail("no answer to the cluster map question within " +
                             std::to_string(ctx_.options.connect_timeout.count()) + " ms");
    }
  });
}

void ClusterNode::on_map_failed(const std::string& why) {
  ctx_.loop.cancel(reply_timer_);
  reply_timer_ = 0;
  if (query_in_flight_) refresh_wanted_ = true;
  query_in_flight_ = false;
  map_error_ = why;
  if (!have_map_) {
    ctx_.log.warn("node {}: cannot read the cluster map: {}", name(), why);
    report_attempt();
  } else {
    ctx_.log.debug("node {}: cluster map connection: {}", name(), why);
  }
}

void ClusterNode::on_map_reply(const Reply& reply, const std::string& host) {
  ctx_.loop.cancel(reply_timer_);
  reply_timer_ = 0;
  query_in_flight_ = false;
  if (reply.is_error()) {
    if (!use_slots_ && (reply.str.find("nknown subcommand") != std::string::npos ||
                        reply.str.find("unknown command") != std::string::npos)) {
      // Before Redis 7: CLUSTER SLOTS says the same.
      use_slots_ = true;
      refresh_wanted_ = true;
      query();
      return;
    }
    // A seed that is no cluster node, an ACL without +cluster: say so, try
    // the next node at the slowest pace.
    topology_->conn().fail("the cluster map question was refused: " + reply.str, true);
    return;
  }
  auto next = use_slots_ ? SlotMap::from_slots(reply, host) : SlotMap::from_shards(reply, host);
  if (!next) {
    topology_->conn().fail(next.error().message());
    return;
  }
  map_error_.clear();
  apply(std::move(*next));
  if (refresh_wanted_) request_refresh("asked again meanwhile");
}

void ClusterNode::apply(SlotMap next) {
  if (closed_) return;
  const auto now = ctx_.loop.now();
  for (const auto& id : fresh_masters(map_, next)) {
    fresh_until_[id] = now + ctx_.restart_grace;
    const auto* shard = [&]() -> const ClusterShard* {
      for (const auto& s : next.shards()) {
        if (s.master.id == id) return &s;
      }
      return nullptr;
    }();
    ctx_.log.warn(
        "node {}: {} became the master of slots {} (a failover); replication is asynchronous, "
        "so it may lack the newest locks: it does not vote for those slots for {} ms",
        name(), shard != nullptr ? shard->master.where() : id,
        shard != nullptr ? ranges_text(shard->ranges) : std::string("?"),
        ctx_.restart_grace.count());
  }
  for (auto it = fresh_until_.begin(); it != fresh_until_.end();) {
    it = it->second <= now ? fresh_until_.erase(it) : std::next(it);
  }

  // Keep the Node of every master still there; connect to the new ones.
  // Under the lock from here: taking the Nodes out of shards_ changes what
  // voting() and answering() read from other threads.
  std::unique_lock shards_lock(shards_mutex_);
  std::vector<Shard> shards;
  std::vector<Node*> started;
  shards.reserve(next.shards().size());
  for (const auto& s : next.shards()) {
    Shard shard;
    shard.map = s;
    for (auto& old : shards_) {
      if (old.node && old.node->address().host == s.master.host &&
          old.node->address().port == s.master.port) {
        shard.node = std::move(old.node);
        break;
      }
    }
    if (!shard.node) {
      shard.node =
          std::make_unique<Node>(shard_ctx_, index_, shard_address(s.master), Node::Role::kShard);
      started.push_back(shard.node.get());
    }
    if (auto it = fresh_until_.find(s.master.id); it != fresh_until_.end()) {
      shard.fresh_until = it->second;
    }
    shards.push_back(std::move(shard));
  }
  std::vector<std::unique_ptr<Node>> gone;
  for (auto& old : shards_) {
    if (old.node) gone.push_back(std::move(old.node));
  }
  shards_ = std::move(shards);
  map_ = std::move(next);
  moved_.clear();
  shards_lock.unlock();
  ++map_version_;
  if (!have_map_) {
    have_map_ = true;
    attempts_pending_ = started.size();
    ctx_.log.info("node {}: cluster map: {} shard(s), {} of {} slots served", name(),
                  map_.shards().size(), map_.covered(), kSlotCount);
    if (started.empty()) report_attempt();
  }
  update_summary();
  // Started and retired once the new map is in place: what they call back
  // (a lost connection, failed commands) sees the map as it is now.
  for (auto* node : started) node->start();
  for (auto& node : gone) {
    ctx_.log.info("node {}: {} no longer serves slots", name(), node->address().display);
    node->close();
    retired_.push_back(std::move(node));
  }
  if (!retired_.empty() && retired_timer_ == 0) {
    retired_timer_ = ctx_.loop.schedule(now, [this] {
      retired_timer_ = 0;
      retired_.clear();
    });
  }
  update_summary();
  if (reachable()) ctx_.events.node_ready(index_);
  replay_cleanups();
}

void ClusterNode::schedule_periodic() {
  if (closed_) return;
  const auto every =
      map_.covered() < kSlotCount ? kClusterPartialRefreshInterval : kClusterRefreshInterval;
  periodic_timer_ = ctx_.loop.schedule(ctx_.loop.now() + every, [this] {
    periodic_timer_ = 0;
    request_refresh("periodic");
    schedule_periodic();
  });
}

}  // namespace redlock::detail
