#include "node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace redlock::detail {
namespace {

constexpr std::size_t kReadBufferSize = 64 * 1024;
// A node that stops reading (stalled, or a peer that never answers) must not
// make the client buffer without bound: past this many unanswered commands
// new commands fail at once as that node's "no".
constexpr std::size_t kMaxPending = 100000;

bool starts_with_any(const std::string& s, std::initializer_list<std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](std::string_view p) { return s.starts_with(p); });
}

Connection::Settings data_settings(const NodeContext& ctx) {
  const ClientOptions& o = ctx.options;
  return {o.connect_timeout, o.reconnect_min, o.reconnect_max, kReadBufferSize, ctx.tls};
}

Clock::rep ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

}  // namespace

// The replies to the clock check's TIME commands.
class Node::ClockOp final : public Operation {
 public:
  explicit ClockOp(Node& node) : node_(node) {}
  void on_reply(std::size_t, std::uint32_t, const Reply* reply, std::string_view) override {
    node_.on_time_reply(reply);
  }

 private:
  Node& node_;
};

Node::Node(const NodeContext& ctx, std::size_t index, NodeAddress address, Role role)
    : ctx_(ctx),
      index_(index),
      address_(std::move(address)),
      role_(role),
      vitals_(ctx, index, address_.display),
      conn_(ctx.loop, *this, data_settings(ctx)) {
  if (address_.kind == NodeAddress::Kind::kSentinel) {
    sentinel_ = std::make_unique<SentinelFollower>(ctx_, address_, address_.display, *this);
  }
}

Node::~Node() = default;

void Node::start() {
  if (sentinel_) sentinel_->start();
  conn_.start();
}

std::optional<Endpoint> Node::endpoint() {
  Endpoint e = credentials_endpoint(address_, ctx_.options.username, ctx_.options.password);
  e.db = address_.db;
  e.tls = address_.tls;
  switch (address_.kind) {
    case NodeAddress::Kind::kTcp:
      e.host = address_.host;
      e.port = address_.port;
      break;
    case NodeAddress::Kind::kUnix:
      e.kind = Endpoint::Kind::kUnix;
      e.path = address_.path;
      break;
    case NodeAddress::Kind::kCluster:  // a ClusterNode's, never a Node's
      return std::nullopt;
    case NodeAddress::Kind::kSentinel:
      if (!sentinel_->master()) {
        // Ask the sentinels; on_master_changed() connects once they answer.
        sentinel_->resolve();
        return std::nullopt;
      }
      e.host = sentinel_->master()->host;
      e.port = sentinel_->master()->port;
      break;
  }
  return e;
}

void Node::handshake(std::vector<std::string>& commands) {
  // In the order of Probe.
  static const std::string cluster_info = format_command({"INFO", "cluster"});
  static const std::string server_info = format_command({"INFO", "server"});
  commands.push_back(cluster_info);
  commands.push_back(server_info);
}

std::optional<Connection::Refusal> Node::on_handshake_reply(std::size_t index, const Reply& reply) {
  const auto probe = static_cast<Probe>(index);
  if (reply.is_error()) {
    // INFO refused (for example by an ACL without +info): not fatal, but
    // without run_id and uptime a restart cannot be noticed.
    if (probe == Probe::kServerInfo && ctx_.restart_grace.count() > 0) {
      ctx_.log.warn(
          "node {}: INFO server refused ({}): restarts of this node cannot be noticed, so "
          "restart-aware voting does not cover it",
          name(), reply.str);
    } else {
      ctx_.log.debug("node {}: INFO refused: {}", name(), reply.str);
    }
    return std::nullopt;
  }
  switch (probe) {
    case Probe::kClusterInfo: {
      const bool cluster = reply.str.find("cluster_enabled:1") != std::string::npos;
      if (cluster && role_ == Role::kIndependent) {
        return Connection::Refusal{
            "the node runs in Redis Cluster mode (cluster_enabled:1); name the cluster as one "
            "node with cluster://host:port,host:port,...",
            true};
      }
      if (!cluster && role_ == Role::kShard) {
        return Connection::Refusal{
            "the server is not in Redis Cluster mode, though the cluster map names it", true};
      }
      break;
    }
    case Probe::kServerInfo: {
      const auto run_id = info_field(reply.str, "run_id").value_or("");
      if (!run_id.empty()) {
        if (auto other = ctx_.events.same_server(index_, run_id)) {
          return Connection::Refusal{"the same server as node " + std::to_string(*other + 1) +
                                         " (run_id " + std::string(run_id.substr(0, 8)) +
                                         "); every node must be a server of its own",
                                     true};
        }
      }
      vitals_.on_server_info(reply.str, ctx_.loop.now());
      break;
    }
  }
  return std::nullopt;
}

void Node::on_ready() {
  ready_ = true;
  if (failed_attempts_ > 0) {
    ctx_.log.info("node {} connected again after {} failed attempt(s)", name(), failed_attempts_);
  } else {
    ctx_.log.debug("node {} connected", name());
  }
  if (ever_connected_) ctx_.metrics.reconnect(index_);
  ever_connected_ = true;
  failed_attempts_ = 0;
  // Load the scripts up front so EVALSHA rarely meets NOSCRIPT (a node that
  // restarted empty has an empty script cache).
  for (const auto& script : kAllScripts) {
    (void)push(format_command({"SCRIPT", "LOAD", script.body}), discard_op(), 0, nullptr);
  }
  replay_cleanup();
  vitals_.on_connected();
  if (ctx_.options.clock_check_interval.count() > 0) sample_clock();
  ctx_.events.node_ready(index_);
  // connect() waits until the node can vote: its clock timed, if it must be.
  if (!vitals_.clock_pending()) report_attempt();
}

void Node::on_reply(Reply& r) {
  if (pending_.empty()) {
    conn_.fail("reply without a command (protocol out of step)");
    return;
  }
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  waiting_since_.store(pending_.empty() ? 0 : ticks(ctx_.loop.now()));
  if (p.fallback && r.is_error() && r.str.starts_with("NOSCRIPT")) {
    // The script cache was flushed under us: send the script's body. It runs
    // after whatever was pipelined behind the EVALSHA (rare: every
    // connection loads the scripts first).
    const std::string eval = eval_form(*p.fallback);
    if (!eval.empty() && send(eval, p.op, p.tag, nullptr)) return;
  }
  bool demoted = false;
  if (r.is_error()) {
    if (role_ == Role::kShard) {
      // Its ClusterNode follows MOVED and ASK; anything else is a "no".
    } else if (starts_with_any(r.str, {"MOVED", "ASK", "CROSSSLOT", "CLUSTERDOWN", "TRYAGAIN"})) {
      r.str = "the node is part of a Redis Cluster (" + r.str +
              "); a Redlock node must be an independent master";
    } else if (r.str.starts_with("READONLY")) {
      demoted = sentinel_ != nullptr;
    }
  }
  p.op->on_reply(index_, p.tag, &r, {});
  if (demoted && conn_.ready()) {
    // A failover made our master a replica: ask the sentinels again.
    sentinel_->forget();
    conn_.fail("the master became a replica (failover); asking the sentinels again");
  }
}

void Node::on_down(const std::string& why, bool permanent) {
  const bool was_connected = ready_.exchange(false);
  waiting_since_.store(0);
  // A sentinel-managed node asks the sentinels again after any failure: the
  // master may have moved.
  if (sentinel_ && was_connected) sentinel_->forget();
  // Fail what was waiting before anything else can be sent: the operations
  // count these as "no" votes, and the commands are never replayed.
  fail_pending("connection lost: " + why);
  ctx_.events.node_down(index_);
  const int failures = failed_attempts_++;
  if (permanent && failures == 0) {
    ctx_.log.error("node {}: {}", name(), why);
  } else if (was_connected || failures == 0) {
    ctx_.log.warn("node {}: {}", name(), why);
  } else {
    ctx_.log.debug("node {}: {} (attempt {})", name(), why, failures + 1);
  }
  report_attempt();
}

void Node::on_master_changed(const std::string& why) {
  if (closed_) return;
  // Connected elsewhere, or about to be: go to the master the sentinels name.
  conn_.restart(why);
}

void Node::on_sentinel_failed(const std::string& why) {
  ctx_.log.debug("node {}: {}", name(), why);
  report_attempt();
}

std::string Node::last_error() const {
  if (conn_.ready()) return {};
  if (sentinel_ && !sentinel_->master() && !sentinel_->last_error().empty()) {
    return sentinel_->last_error();
  }
  return conn_.last_error();
}

void Node::report_attempt() {
  if (reported_first_attempt_) return;
  reported_first_attempt_ = true;
  ctx_.events.node_attempted(index_);
}

bool Node::send(std::string_view wire, const std::shared_ptr<Operation>& op, std::uint32_t tag,
                const std::shared_ptr<const std::string>& fallback) {
  if (!conn_.ready() || pending_.size() >= kMaxPending) return false;
  return push(wire, op, tag, fallback);
}

bool Node::push(std::string_view wire, const std::shared_ptr<Operation>& op, std::uint32_t tag,
                const std::shared_ptr<const std::string>& fallback) {
  if (pending_.empty()) waiting_since_.store(ticks(ctx_.loop.now()));
  conn_.write(wire);
  pending_.push_back({op, tag, fallback});
  return true;
}

void Node::fail_pending(std::string_view failure) {
  auto waiting = std::move(pending_);
  pending_.clear();
  for (auto& p : waiting) p.op->on_reply(index_, p.tag, nullptr, failure);
}

void Node::sample_clock() {
  if (!conn_.ready()) return;
  static const std::string wire = format_command({"TIME"});
  if (!vitals_.want_time_sample(ctx_.loop.now())) return;
  if (!clock_op_) clock_op_ = std::make_shared<ClockOp>(*this);
  if (!send(wire, clock_op_, 0, nullptr)) vitals_.on_time_reply(nullptr, ctx_.loop.now());
}

void Node::on_time_reply(const Reply* reply) {
  vitals_.on_time_reply(reply, ctx_.loop.now());
  if (!vitals_.clock_pending()) {
    report_attempt();
    return;
  }
  // Not timed yet: the next sample soon, not at the next interval.
  if (!conn_.ready() || clock_burst_ != 0) return;
  clock_burst_ = ctx_.loop.schedule(ctx_.loop.now() + kFirstClockGap, [this] {
    clock_burst_ = 0;
    sample_clock();
  });
}

void Node::replay_cleanup() {
  if (cleanup_.empty()) return;
  auto entries = std::move(cleanup_);
  cleanup_.clear();
  const auto now = ctx_.loop.now();
  for (auto& e : entries) {
    if (e.until <= now) continue;
    ctx_.events.replay_release(index_, std::move(e.resources), std::move(e.token), e.until);
  }
}

void Node::remember_cleanup(std::vector<std::string> resources, std::string token,
                            Clock::time_point until) {
  if (closed_ || until <= ctx_.loop.now()) return;
  if (cleanup_.size() >= kMaxCleanup) cleanup_.pop_front();
  cleanup_.push_back({std::move(resources), std::move(token), until});
}

Clock::duration Node::waiting_for(Clock::time_point now) const noexcept {
  const auto since = waiting_since_.load();
  if (since == 0) return Clock::duration::zero();
  return std::max(Clock::duration::zero(), now - Clock::time_point(Clock::duration(since)));
}

bool Node::answering(Clock::time_point now) const noexcept {
  return ready_.load() && waiting_for(now) < kStallThreshold;
}

bool Node::voting(Clock::time_point now) const noexcept {
  return answering(now) && vitals_.votes(now);
}

NodeHealth Node::health(Clock::time_point now) const {
  NodeHealth h;
  h.node = name();
  h.reachable = connected();
  h.answering = answering(now);
  h.error = last_error();
  h.version = vitals_.version();
  h.run_id = vitals_.run_id();
  h.uptime = vitals_.uptime(now);
  const auto& clock = vitals_.clock();
  h.clock_suspect = clock.suspect();
  h.clock_reason = clock.suspect() ? clock.reason() : std::string();
  h.clock_rate = clock.rate();
  h.tls = address_.tls;
  if (const TlsPeer* tls = conn_.tls_peer()) {
    h.tls_protocol = tls->protocol;
    h.tls_cipher = tls->cipher;
    h.tls_peer_subject = tls->subject;
    h.tls_peer_not_after = tls->not_after;
    h.tls_resumed = tls->resumed;
  }
  if (!h.reachable) {
    h.not_voting_reason =
        h.error.empty() ? std::string("not connected") : "not connected: " + h.error;
  } else if (!h.answering) {
    h.not_voting_reason =
        "not answering: a command has waited " +
        std::to_string(std::chrono::duration_cast<milliseconds>(waiting_for(now)).count()) + " ms";
  } else if (auto why = vote_block(now)) {
    h.not_voting_reason = std::move(*why);
    if (vitals_.votes_from() > now) {
      h.votes_again_in = std::chrono::ceil<milliseconds>(vitals_.votes_from() - now);
    }
  }
  h.voting = h.not_voting_reason.empty();
  return h;
}

void Node::close() {
  if (closed_) return;
  closed_ = true;
  ctx_.loop.cancel(clock_burst_);
  clock_burst_ = 0;
  ready_ = false;
  if (sentinel_) sentinel_->close();
  fail_pending("connection closed: shutting down");
  // Releases written during shutdown (the aborted acquires' cleanups) reach
  // the node: a ready connection writes what is queued before it closes.
  conn_.close();
}

}  // namespace redlock::detail
