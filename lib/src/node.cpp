#include <spdlog/spdlog.h>

#include <charconv>
#include <cstring>
#include <sstream>

#include "engine.hpp"

namespace redlock::detail {
namespace {

constexpr std::size_t kReadBufferSize = 64 * 1024;
// A node that stops reading (stalled, or a peer that never answers) must not
// make the client buffer without bound: past this many unanswered commands
// new commands fail at once as that node's "no".
constexpr std::size_t kMaxPending = 100000;
constexpr std::size_t kMaxCleanup = 10000;

std::shared_ptr<Operation> discard_op() {
  struct Discard final : Operation {
    void on_reply(std::size_t, std::uint32_t, const Reply*, std::string_view) override {}
  };
  static const auto op = std::make_shared<Discard>();
  return op;
}

bool starts_with_any(const std::string& s, std::initializer_list<std::string_view> prefixes) {
  for (auto p : prefixes) {
    if (s.starts_with(p)) return true;
  }
  return false;
}

}  // namespace

// A connection over TCP or a Unix socket. It outlives its Node's interest in
// it: once detached (node == nullptr) its callbacks do nothing, and it frees
// itself when closed.
struct Node::Conn {
  union Handle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  uv_shutdown_t shutdown_req{};
  Node* node = nullptr;
  bool watch = false;   // the sentinel subscription, not the data connection
  std::string writing;  // the bytes of the write in flight
  bool write_in_flight = false;

  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&h); }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }

  static void on_close(uv_handle_t* handle) { delete static_cast<Conn*>(handle->data); }
  void close() {
    node = nullptr;
    if (uv_is_closing(handle()) == 0) uv_close(handle(), on_close);
  }
};

// Replies to the connection's own commands: the sentinel query and the
// handshake. Tag = the step.
class Node::SetupOp final : public Operation {
 public:
  explicit SetupOp(Node& node) : node_(node) {}
  void on_reply(std::size_t, std::uint32_t tag, const Reply* reply,
                std::string_view failure) override {
    if (tag == kSentinelQuery) {
      node_.on_sentinel_reply(reply, failure);
    } else {
      node_.on_handshake_reply(tag, reply, failure);
    }
  }
  static constexpr std::uint32_t kSentinelQuery = 1000;

 private:
  Node& node_;
};

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

Node::Node(Engine& engine, std::size_t index, NodeAddress address,
           std::vector<sockaddr_storage> addrs)
    : engine_(engine),
      index_(index),
      address_(std::move(address)),
      addrs_(std::move(addrs)),
      clock_(engine.options().drift_factor,
             engine.options().clock_check_interval * kClockWindowIntervals) {
  if (address_.has_credentials) {
    username_ = address_.username;
    password_ = address_.password;
  } else {
    username_ = engine_.options().username;
    password_ = engine_.options().password;
  }
  uv_timer_init(engine_.loop(), &timer_);
  timer_.data = this;
  uv_timer_init(engine_.loop(), &watch_timer_);
  watch_timer_.data = this;
  read_buf_.resize(kReadBufferSize);
}

Node::~Node() = default;

void Node::start() {
  if (address_.kind == NodeAddress::Kind::kSentinel) start_watch();
  connect();
}

void Node::start_watch() {
  if (state_ == State::kClosed) return;
  auto* c = new Conn;
  c->watch = true;
  if (uv_tcp_init(engine_.loop(), &c->h.tcp) != 0) {
    delete c;
    fail_watch("cannot create socket");
    return;
  }
  c->handle()->data = c;
  c->node = this;
  c->connect_req.data = c;
  watch_ = c;
  const auto& addr = addrs_[watch_sentinel_ % addrs_.size()];
  if (int rc = uv_tcp_connect(&c->connect_req, &c->h.tcp, reinterpret_cast<const sockaddr*>(&addr),
                              on_connect_cb);
      rc != 0) {
    fail_watch(std::string("connect failed: ") + uv_strerror(rc));
  }
}

void Node::on_watch_connected(int status) {
  if (status != 0) {
    fail_watch(std::string("connect failed: ") + uv_strerror(status));
    return;
  }
  watch_parser_ = std::make_unique<ReplyParser>();
  watch_->writing = format_command({"SUBSCRIBE", "+switch-master"});
  uv_buf_t buf = uv_buf_init(watch_->writing.data(), static_cast<unsigned>(watch_->writing.size()));
  watch_->write_req.data = watch_;
  if (uv_write(&watch_->write_req, watch_->stream(), &buf, 1, on_write_cb) != 0 ||
      uv_read_start(watch_->stream(), on_alloc_cb, on_read_cb) != 0) {
    fail_watch("cannot subscribe");
    return;
  }
  watch_->write_in_flight = true;
}

void Node::on_watch_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;
  if (nread < 0 || !watch_parser_->feed(buf->base, static_cast<std::size_t>(nread))) {
    fail_watch(nread < 0 ? "connection lost" : "protocol error");
    return;
  }
  for (;;) {
    auto reply = watch_parser_->next();
    if (!reply) {
      fail_watch(reply.error().message());
      return;
    }
    if (!reply->has_value()) return;
    const Reply& r = **reply;
    // ["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"]
    if (r.type != Reply::Type::kArray || r.elements.size() != 3 || r.elements[0].str != "message") {
      continue;
    }
    std::istringstream words(r.elements[2].str);
    std::string master_name, old_ip, old_port, new_ip, new_port;
    words >> master_name >> old_ip >> old_port >> new_ip >> new_port;
    if (master_name != address_.master) continue;
    sockaddr_storage addr{};
    int port = 0;
    std::from_chars(new_port.data(), new_port.data() + new_port.size(), port);
    if (uv_ip4_addr(new_ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(new_ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      continue;
    }
    engine_.log().info("node {}: +switch-master: master \"{}\" moved to {}:{}", name(),
                       address_.master, new_ip, new_port);
    if (state_ == State::kConnected || state_ == State::kHandshake ||
        state_ == State::kConnecting || state_ == State::kResolving) {
      fail_connection("failover: the sentinels switched the master to " + new_ip + ":" + new_port);
    }
    master_ = addr;
    if (state_ == State::kBackoff) {
      // Reconnect now rather than after the backoff.
      uv_timer_stop(&timer_);
      connect();
    }
  }
}

void Node::fail_watch(const std::string& why) {
  if (watch_ != nullptr) {
    watch_->close();
    watch_ = nullptr;
  }
  watch_parser_.reset();
  if (state_ == State::kClosed) return;
  engine_.log().debug("node {}: sentinel subscription: {}", name(), why);
  ++watch_sentinel_;
  const auto delay = reconnect_delay(1, engine_.options().reconnect_min,
                                     engine_.options().reconnect_max, engine_.random_unit());
  uv_timer_start(
      &watch_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Node*>(t->data);
        self->start_watch();
        self->engine_.flush_dirty();
      },
      static_cast<std::uint64_t>(delay.count()), 0);
}

void Node::connect() {
  if (state_ == State::kClosed) return;
  switch (address_.kind) {
    case NodeAddress::Kind::kTcp:
      state_ = State::kConnecting;
      open_conn(reinterpret_cast<const sockaddr*>(&addrs_.front()));
      break;
    case NodeAddress::Kind::kUnix:
      state_ = State::kConnecting;
      open_conn(nullptr);
      break;
    case NodeAddress::Kind::kSentinel:
      if (master_) {
        state_ = State::kConnecting;
        open_conn(reinterpret_cast<const sockaddr*>(&*master_));
      } else {
        state_ = State::kResolving;
        open_conn(reinterpret_cast<const sockaddr*>(&addrs_[sentinel_ % addrs_.size()]));
      }
      break;
  }
}

void Node::open_conn(const sockaddr* addr) {
  auto* c = new Conn;
  c->h.tcp.data = c;  // the first member of either handle type
  int rc = 0;
  if (addr == nullptr) {
    rc = uv_pipe_init(engine_.loop(), &c->h.pipe, 0);
  } else {
    rc = uv_tcp_init(engine_.loop(), &c->h.tcp);
  }
  if (rc != 0) {
    delete c;
    fail_connection(std::string("cannot create socket: ") + uv_strerror(rc));
    return;
  }
  c->handle()->data = c;
  c->node = this;
  c->connect_req.data = c;
  conn_ = c;
  if (addr == nullptr) {
    uv_pipe_connect(&c->connect_req, &c->h.pipe, address_.path.c_str(), on_connect_cb);
  } else {
    uv_tcp_nodelay(&c->h.tcp, 1);
    rc = uv_tcp_connect(&c->connect_req, &c->h.tcp, addr, on_connect_cb);
    if (rc != 0) {
      fail_connection(std::string("connect failed: ") + uv_strerror(rc));
      return;
    }
  }
  uv_timer_start(&timer_, on_timer_cb,
                 static_cast<std::uint64_t>(engine_.options().connect_timeout.count()), 0);
}

void Node::on_connect_cb(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  Node* self = c->node;
  if (self == nullptr) return;  // detached: timed out or shut down meanwhile
  if (c->watch) {
    self->on_watch_connected(status);
    return;
  }
  uv_timer_stop(&self->timer_);
  if (status != 0) {
    self->fail_connection(std::string("connect failed: ") + uv_strerror(status));
  } else {
    self->on_connected();
  }
}

bool Node::push(std::string_view wire, std::shared_ptr<Operation> op, std::uint32_t tag,
                std::shared_ptr<const std::string> fallback) {
  out_.append(wire);
  if (pending_.empty()) waiting_since_.store(Clock::now().time_since_epoch().count());
  pending_.push_back({std::move(op), tag, std::move(fallback)});
  if (!dirty_) {
    dirty_ = true;
    engine_.mark_dirty(*this);
  }
  return true;
}

void Node::on_connected() {
  parser_ = std::make_unique<ReplyParser>();
  if (int rc = uv_read_start(conn_->stream(), on_alloc_cb, on_read_cb); rc != 0) {
    fail_connection(std::string("read failed: ") + uv_strerror(rc));
    return;
  }
  auto setup = std::make_shared<SetupOp>(*this);
  if (state_ == State::kResolving) {
    (void)push(format_command({"SENTINEL", "get-master-addr-by-name", address_.master}), setup,
               SetupOp::kSentinelQuery, nullptr);
    return;
  }
  // The handshake runs before any other command: credentials first (sent on
  // every connect, so a restarted node or a failover target gets them too),
  // then the database, then a check that the node is not a Redis Cluster
  // shard (a Redlock node must be an independent master).
  state_ = State::kHandshake;
  handshake_left_ = 0;
  if (!password_.empty()) {
    (void)push(username_.empty() ? format_command({"AUTH", password_})
                                 : format_command({"AUTH", username_, password_}),
               setup, 0, nullptr);
    ++handshake_left_;
  }
  if (address_.db != 0) {
    (void)push(format_command({"SELECT", std::to_string(address_.db)}), setup, 1, nullptr);
    ++handshake_left_;
  }
  (void)push(format_command({"INFO", "cluster"}), setup, 2, nullptr);
  ++handshake_left_;
  // run_id and uptime, for restart-aware voting.
  (void)push(format_command({"INFO", "server"}), setup, 3, nullptr);
  ++handshake_left_;
}

void Node::on_sentinel_reply(const Reply* reply, std::string_view failure) {
  if (state_ != State::kResolving) return;
  const std::string sentinel = addrs_.empty() ? "" : std::to_string(sentinel_ % addrs_.size() + 1);
  if (reply == nullptr) {
    ++sentinel_;
    fail_connection("sentinel " + sentinel + ": " + std::string(failure));
    return;
  }
  if (reply->type != Reply::Type::kArray || reply->elements.size() != 2) {
    ++sentinel_;
    fail_connection("sentinel " + sentinel + " does not know master \"" + address_.master + "\"" +
                    (reply->is_error() ? ": " + reply->str : std::string()));
    return;
  }
  const std::string& ip = reply->elements[0].str;
  int port = 0;
  try {
    port = std::stoi(reply->elements[1].str);
  } catch (...) {
    port = 0;
  }
  sockaddr_storage addr{};
  if (port <= 0 || port > 65535 ||
      (uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
       uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)) {
    ++sentinel_;
    fail_connection("sentinel " + sentinel + " gave an unusable address " + ip + ":" +
                    std::to_string(port));
    return;
  }
  engine_.log().info("node {}: the sentinels name {}:{} as master \"{}\"", name(), ip, port,
                     address_.master);
  master_ = addr;
  // Done with the sentinel: connect to the master in its place.
  drop_conn();
  uv_timer_stop(&timer_);
  state_ = State::kConnecting;
  open_conn(reinterpret_cast<const sockaddr*>(&*master_));
}

void Node::on_handshake_reply(std::size_t step, const Reply* reply, std::string_view failure) {
  if (state_ != State::kHandshake) return;
  if (reply == nullptr) {
    fail_connection(std::string(failure));
    return;
  }
  if (reply->is_error()) {
    if (step == 0) {
      // Wrong password or user: say so, and do not hammer the node.
      fail_connection("authentication failed: " + reply->str, true);
    } else if (step == 1) {
      fail_connection("SELECT " + std::to_string(address_.db) + " failed: " + reply->str, true);
    } else if (reply->str.starts_with("NOAUTH")) {
      fail_connection("the node requires a password (" + reply->str + ")", true);
    } else {
      // INFO refused (for example by an ACL without +info): not fatal, but
      // without run_id and uptime a restart cannot be noticed.
      if (step == 3 && engine_.restart_grace().count() > 0) {
        engine_.log().warn(
            "node {}: INFO server refused ({}): restarts of this node cannot be noticed, so "
            "restart-aware voting does not cover it",
            name(), reply->str);
      } else {
        engine_.log().debug("node {}: INFO refused: {}", name(), reply->str);
      }
      if (--handshake_left_ == 0) on_ready();
    }
    return;
  }
  if (step == 3) note_server_info(reply->str);
  if (step == 2 && reply->str.find("cluster_enabled:1") != std::string::npos) {
    fail_connection(
        "the node runs in Redis Cluster mode; a Redlock node must be an independent master "
        "(cluster_enabled:1)",
        true);
    return;
  }
  if (--handshake_left_ == 0) on_ready();
}

void Node::note_server_info(std::string_view info) {
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
  const auto now = Clock::now();
  const auto grace = engine_.restart_grace();
  const auto d = restart_rule(run_id_, run_id, uptime, grace, now, votes_from_);
  if (d.restarted) {
    engine_.metrics().restart(index_);
    not_voting_why_ = "restarted (run_id " + run_id_.substr(0, 8) + " -> " +
                      std::string(run_id.substr(0, 8)) + ")";
    engine_.log().warn(
        "node {} restarted (run_id changed); it may have lost its keys, so it "
        "does not vote for {} ms",
        name(), grace.count());
  } else if (d.votes_from > votes_from_) {
    not_voting_why_ = "up for only " + std::to_string(uptime ? uptime->count() : 0) + " s";
    engine_.log().warn(
        "node {} has been up for only {} s; it does not vote for another {} ms "
        "(restart_grace {} ms)",
        name(), uptime ? uptime->count() : 0,
        std::chrono::ceil<milliseconds>(d.votes_from - now).count(), grace.count());
  }
  votes_from_ = d.votes_from;
  votes_from_any_.store(votes_from_.time_since_epoch().count());
  uptime_ = uptime;
  handshake_at_ = now;
  if (!run_id.empty()) run_id_ = std::string(run_id);
}

Clock::duration Node::waiting_for(Clock::time_point now) const noexcept {
  const auto since = waiting_since_.load();
  if (since == 0) return Clock::duration::zero();
  return std::max(Clock::duration::zero(), now - Clock::time_point(Clock::duration(since)));
}

bool Node::answering(Clock::time_point now) const noexcept {
  return connected_flag_.load() && waiting_for(now) < kStallThreshold;
}

bool Node::voting(Clock::time_point now) const noexcept {
  return answering(now) && !clock_excluded_.load() &&
         now >= Clock::time_point(Clock::duration(votes_from_any_.load()));
}

std::optional<std::chrono::seconds> Node::uptime(Clock::time_point now) const {
  if (!uptime_) return std::nullopt;
  return *uptime_ + std::chrono::floor<std::chrono::seconds>(now - handshake_at_);
}

std::optional<std::string> Node::vote_block(Clock::time_point now) const {
  if (engine_.options().exclude_suspect_clocks && clock_.suspect()) return clock_.reason();
  if (now >= votes_from_) return std::nullopt;
  return not_voting_why_ + "; votes again in " +
         std::to_string(std::chrono::ceil<milliseconds>(votes_from_ - now).count()) + " ms";
}

void Node::on_ready() {
  state_ = State::kConnected;
  connected_flag_ = true;
  last_error_.clear();
  if (failures_ > 0) {
    engine_.log().info("node {} connected again after {} failed attempt(s)", name(), failures_);
  } else {
    engine_.log().debug("node {} connected", name());
  }
  if (ever_connected_) engine_.metrics().reconnect(index_);
  ever_connected_ = true;
  failures_ = 0;
  // Load the scripts up front so EVALSHA rarely meets NOSCRIPT (a node that
  // restarted empty has an empty script cache).
  for (const auto& script : kAllScripts) {
    (void)push(format_command({"SCRIPT", "LOAD", script.body}), discard_op(), 0, nullptr);
  }
  replay_cleanup();
  // Clock samples carry over a reconnect to the same server, not to another
  // one (a restart, a failover) nor when the server is not known.
  if (run_id_.empty() || run_id_ != clock_run_id_) reset_clock();
  clock_run_id_ = run_id_;
  time_refused_ = false;
  if (engine_.options().clock_check_interval.count() > 0) sample_clock();
  engine_.node_ready(index_);
  if (!reported_first_attempt_) {
    reported_first_attempt_ = true;
    engine_.report_first_attempt();
  }
}

void Node::sample_clock() {
  if (state_ != State::kConnected || time_outstanding_ || time_refused_) return;
  static const std::string wire = format_command({"TIME"});
  if (!clock_op_) clock_op_ = std::make_shared<ClockOp>(*this);
  time_sent_ = Clock::now();
  time_outstanding_ = send(wire, clock_op_, 0);
}

void Node::on_time_reply(const Reply* reply) {
  time_outstanding_ = false;
  if (reply == nullptr) return;  // the connection failed
  const auto now = Clock::now();
  if (reply->is_error()) {
    // Until the next connection: an ACL without +time, most likely.
    time_refused_ = true;
    if (!time_refusal_reported_) {
      time_refusal_reported_ = true;
      engine_.log().warn("node {}: TIME refused ({}): its clock cannot be checked (grant +time)",
                         name(), reply->str);
    }
    return;
  }
  std::optional<std::int64_t> node_us;
  if (reply->type == Reply::Type::kArray && reply->elements.size() == 2) {
    node_us = time_reply_us(reply->elements[0].str, reply->elements[1].str);
  }
  if (!node_us) {
    engine_.log().debug("node {}: unexpected reply to TIME", name());
    return;
  }
  const bool was_suspect = clock_.suspect();
  const bool changed = clock_.add({time_sent_, now, *node_us});
  clock_excluded_.store(engine_.options().exclude_suspect_clocks && clock_.suspect());
  engine_.metrics().clock_state(index_, clock_.rate(), clock_.suspect(), clock_.reason());
  if (!changed) return;
  if (clock_.suspect()) {
    engine_.log().warn(
        "node {}: {}; Redlock assumes every node's clock runs at the client's rate (drift_factor "
        "{}){}",
        name(), clock_.reason(), engine_.options().drift_factor,
        engine_.options().exclude_suspect_clocks ? ": it does not vote" : "");
    if (!was_suspect) engine_.metrics().clock_changed(index_, true, clock_.reason());
  } else {
    engine_.log().info("node {}: clock looks sane again (rate {:.4f} over the last {} samples)",
                       name(), clock_.rate().value_or(1.0), clock_.samples());
    engine_.metrics().clock_changed(index_, false, {});
  }
}

void Node::reset_clock() {
  const bool was_suspect = clock_.suspect();
  clock_.reset();
  clock_excluded_.store(false);
  engine_.metrics().clock_state(index_, std::nullopt, false, {});
  if (was_suspect) {
    engine_.log().info("node {}: another server (run_id {}): its clock is checked afresh", name(),
                       run_id_.empty() ? std::string("unknown") : run_id_.substr(0, 8));
    engine_.metrics().clock_changed(index_, false, {});
  }
}

void Node::replay_cleanup() {
  if (cleanup_.empty()) return;
  auto entries = std::move(cleanup_);
  cleanup_.clear();
  const auto now = Clock::now();
  std::vector<bool> only_me(engine_.nodes().size(), false);
  only_me[index_] = true;
  for (auto& e : entries) {
    if (e.until <= now) continue;
    engine_.start_release(std::move(e.keys), std::move(e.token), e.until, only_me, nullptr);
  }
}

void Node::remember_cleanup(std::vector<std::string> keys, std::string token,
                            Clock::time_point until) {
  if (state_ == State::kClosed || until <= Clock::now()) return;
  if (cleanup_.size() >= kMaxCleanup) cleanup_.pop_front();
  cleanup_.push_back({std::move(keys), std::move(token), until});
}

bool Node::send(std::string_view wire, std::shared_ptr<Operation> op, std::uint32_t tag,
                std::shared_ptr<const std::string> fallback) {
  if (state_ != State::kConnected || pending_.size() >= kMaxPending) return false;
  return push(wire, std::move(op), tag, std::move(fallback));
}

void Node::flush() {
  dirty_ = false;
  const bool live =
      state_ == State::kConnected || state_ == State::kHandshake || state_ == State::kResolving;
  if (!live || conn_ == nullptr || out_.empty() || conn_->write_in_flight) return;
  auto* stream = conn_->stream();
  uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
  const int n = uv_try_write(stream, &buf, 1);
  if (n >= 0 && static_cast<std::size_t>(n) == out_.size()) {
    out_.clear();
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    fail_connection(std::string("write failed: ") + uv_strerror(n));
    return;
  }
  // The socket took part of it (or none): hand the rest to an async write.
  const std::size_t written = n > 0 ? static_cast<std::size_t>(n) : 0;
  conn_->writing.assign(out_, written, std::string::npos);
  out_.clear();
  buf = uv_buf_init(conn_->writing.data(), static_cast<unsigned>(conn_->writing.size()));
  conn_->write_req.data = conn_;
  if (int rc = uv_write(&conn_->write_req, stream, &buf, 1, on_write_cb); rc != 0) {
    fail_connection(std::string("write failed: ") + uv_strerror(rc));
    return;
  }
  conn_->write_in_flight = true;
}

void Node::on_write_cb(uv_write_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  c->write_in_flight = false;
  c->writing.clear();
  Node* self = c->node;
  if (self == nullptr) return;
  if (c->watch) {
    if (status != 0) self->fail_watch(std::string("write failed: ") + uv_strerror(status));
    return;
  }
  if (status != 0) {
    self->fail_connection(std::string("write failed: ") + uv_strerror(status));
  } else if (!self->out_.empty()) {
    self->flush();
  }
}

void Node::on_alloc_cb(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(handle->data);
  if (c->node == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  auto& rb = c->node->read_buf_;
  *buf = uv_buf_init(rb.data(), static_cast<unsigned>(rb.size()));
}

void Node::on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(stream->data);
  Node* self = c->node;
  if (self == nullptr) return;
  if (c->watch) {
    self->on_watch_read(nread, buf);
  } else {
    self->on_read(nread, buf);
  }
  // What the replies queued is written once all of this poll phase's
  // callbacks ran (Engine::flush_check_).
}

void Node::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;
  engine_.note_activity();
  if (nread < 0) {
    fail_connection(nread == UV_EOF
                        ? std::string("connection closed by the server")
                        : std::string("read failed: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (auto fed = parser_->feed(buf->base, static_cast<std::size_t>(nread)); !fed) {
    fail_connection(fed.error().message());
    return;
  }
  Conn* const current = conn_;
  while (conn_ == current && parser_) {
    auto reply = parser_->next();
    if (!reply) {
      fail_connection(reply.error().message());
      return;
    }
    if (!reply->has_value()) return;
    if (pending_.empty()) {
      fail_connection("reply without a command (protocol out of step)");
      return;
    }
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    waiting_since_.store(pending_.empty() ? 0 : Clock::now().time_since_epoch().count());
    Reply& r = **reply;
    if (p.fallback && r.is_error() && r.str.starts_with("NOSCRIPT")) {
      // The script cache was flushed under us: send the script's body. It
      // runs after whatever was pipelined behind the EVALSHA (rare: every
      // connection loads the scripts first).
      auto body = std::move(p.fallback);
      if (send(*body, p.op, p.tag, nullptr)) continue;
    }
    bool demoted = false;
    if (r.is_error()) {
      if (starts_with_any(r.str, {"MOVED", "ASK", "CROSSSLOT", "CLUSTERDOWN", "TRYAGAIN"})) {
        r.str = "the node is part of a Redis Cluster (" + r.str +
                "); a Redlock node must be an independent master";
      } else if (r.str.starts_with("READONLY")) {
        demoted = address_.kind == NodeAddress::Kind::kSentinel;
      }
    }
    p.op->on_reply(index_, p.tag, &r, {});
    if (demoted && conn_ == current) {
      // A failover made our master a replica: ask the sentinels again.
      master_.reset();
      fail_connection("the master became a replica (failover); asking the sentinels again");
      return;
    }
  }
}

void Node::on_timer_cb(uv_timer_t* timer) {
  auto* self = static_cast<Node*>(timer->data);
  if (self->state_ == State::kConnecting || self->state_ == State::kResolving ||
      self->state_ == State::kHandshake) {
    if (self->state_ == State::kResolving) ++self->sentinel_;
    self->fail_connection("connect timed out after " +
                          std::to_string(self->engine_.options().connect_timeout.count()) + " ms");
  } else if (self->state_ == State::kBackoff) {
    self->connect();
  }
  self->engine_.flush_dirty();
}

void Node::drop_conn() {
  if (conn_ != nullptr) {
    conn_->close();
    conn_ = nullptr;
  }
  connected_flag_ = false;
  waiting_since_.store(0);
  out_.clear();
  parser_.reset();
}

void Node::fail_connection(const std::string& why, bool permanent) {
  if (state_ == State::kClosed) return;
  const bool was_connected = state_ == State::kConnected;
  state_ = State::kBackoff;
  drop_conn();
  uv_timer_stop(&timer_);
  last_error_ = why;
  // A sentinel-managed node asks the sentinels again after any failure: the
  // master may have moved.
  if (address_.kind == NodeAddress::Kind::kSentinel && was_connected) master_.reset();

  // Fail what was waiting before anything else can be sent: the operations
  // count these as "no" votes, and the commands are never replayed.
  auto waiting = std::move(pending_);
  pending_.clear();
  const std::string failure = "connection lost: " + why;
  for (auto& p : waiting) p.op->on_reply(index_, p.tag, nullptr, failure);

  if (permanent && failures_ == 0) {
    engine_.log().error("node {}: {}", name(), why);
  } else if (was_connected || failures_ == 0) {
    engine_.log().warn("node {}: {}", name(), why);
  } else {
    engine_.log().debug("node {}: {} (attempt {})", name(), why, failures_ + 1);
  }
  if (!reported_first_attempt_) {
    reported_first_attempt_ = true;
    engine_.report_first_attempt();
  }
  if (state_ != State::kBackoff) return;  // closed by an operation's callback
  // A refusal that will not go away by itself (wrong password, a cluster
  // node) is retried at the slowest pace, in case the operator fixes it.
  const auto delay = permanent
                         ? engine_.options().reconnect_max
                         : reconnect_delay(failures_, engine_.options().reconnect_min,
                                           engine_.options().reconnect_max, engine_.random_unit());
  ++failures_;
  uv_timer_start(&timer_, on_timer_cb, static_cast<std::uint64_t>(delay.count()), 0);
}

void Node::close() {
  if (state_ == State::kClosed) return;
  const bool was_connected = state_ == State::kConnected;
  state_ = State::kClosed;
  connected_flag_ = false;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  uv_timer_stop(&watch_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&watch_timer_), nullptr);
  if (watch_ != nullptr) {
    watch_->close();
    watch_ = nullptr;
  }

  auto waiting = std::move(pending_);
  pending_.clear();
  for (auto& p : waiting)
    p.op->on_reply(index_, p.tag, nullptr, "connection closed: shutting down");

  Conn* c = conn_;
  conn_ = nullptr;
  if (c == nullptr) return;
  c->node = nullptr;
  parser_.reset();
  if (!was_connected) {
    c->close();
    return;
  }
  // Let releases written during shutdown reach the node: write what is
  // queued, then a graceful shutdown, then close.
  auto* stream = c->stream();
  if (!out_.empty() && !c->write_in_flight) {
    c->writing = std::move(out_);
    uv_buf_t buf = uv_buf_init(c->writing.data(), static_cast<unsigned>(c->writing.size()));
    c->write_req.data = c;
    if (uv_write(&c->write_req, stream, &buf, 1, on_write_cb) == 0) c->write_in_flight = true;
  }
  out_.clear();
  c->shutdown_req.data = c;
  const int rc = uv_shutdown(&c->shutdown_req, stream, [](uv_shutdown_t* req, int) {
    static_cast<Conn*>(req->data)->close();
  });
  if (rc != 0) c->close();
}

}  // namespace redlock::detail
