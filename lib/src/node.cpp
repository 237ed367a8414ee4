#include <spdlog/spdlog.h>

#include <cstring>

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

}  // namespace

// A TCP connection. It outlives its Node's interest in it: once detached
// (node == nullptr) its callbacks do nothing, and it frees itself when closed.
struct Node::Conn {
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  uv_shutdown_t shutdown_req{};
  Node* node = nullptr;
  std::string writing;  // the bytes of the write in flight
  bool write_in_flight = false;

  static void on_close(uv_handle_t* h) { delete static_cast<Conn*>(h->data); }
  void close() {
    node = nullptr;
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp)) == 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_close);
    }
  }
};

Node::Node(Engine& engine, std::size_t index, NodeAddress address, const sockaddr_storage& addr)
    : engine_(engine), index_(index), address_(std::move(address)), sockaddr_(addr) {
  uv_timer_init(engine_.loop(), &timer_);
  timer_.data = this;
  read_buf_.resize(kReadBufferSize);
}

Node::~Node() = default;

void Node::start() { connect(); }

void Node::connect() {
  if (state_ == State::kClosed) return;
  auto* c = new Conn;
  c->tcp.data = c;
  if (int rc = uv_tcp_init(engine_.loop(), &c->tcp); rc != 0) {
    delete c;
    fail_connection(std::string("cannot create socket: ") + uv_strerror(rc));
    return;
  }
  c->node = this;
  c->connect_req.data = c;
  conn_ = c;
  state_ = State::kConnecting;
  uv_tcp_nodelay(&c->tcp, 1);
  const int rc = uv_tcp_connect(&c->connect_req, &c->tcp,
                                reinterpret_cast<const sockaddr*>(&sockaddr_), on_connect_cb);
  if (rc != 0) {
    fail_connection(std::string("connect failed: ") + uv_strerror(rc));
    return;
  }
  uv_timer_start(&timer_, on_timer_cb,
                 static_cast<std::uint64_t>(engine_.options().connect_timeout.count()), 0);
}

void Node::on_connect_cb(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  Node* self = c->node;
  if (self == nullptr) return;  // detached: timed out or shut down meanwhile
  uv_timer_stop(&self->timer_);
  if (status != 0) {
    self->fail_connection(std::string("connect failed: ") + uv_strerror(status));
  } else {
    self->on_connected();
  }
  self->engine_.flush_dirty();
}

void Node::on_connected() {
  state_ = State::kConnected;
  connected_flag_ = true;
  if (failures_ > 0) {
    engine_.log().info("node {} connected again after {} failed attempt(s)", name(), failures_);
  } else {
    engine_.log().debug("node {} connected", name());
  }
  if (ever_connected_) engine_.metrics().reconnect(index_);
  ever_connected_ = true;
  failures_ = 0;
  parser_ = std::make_unique<ReplyParser>();
  if (int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&conn_->tcp), on_alloc_cb, on_read_cb);
      rc != 0) {
    fail_connection(std::string("read failed: ") + uv_strerror(rc));
    return;
  }
  // Load the scripts up front so EVALSHA rarely meets NOSCRIPT (a node that
  // restarted empty has an empty script cache).
  static const std::string load = [] {
    std::string all;
    for (const auto& script : kAllScripts) all += format_command({"SCRIPT", "LOAD", script.body});
    return all;
  }();
  for (std::size_t i = 0; i < std::size(kAllScripts); ++i) {
    (void)send(i == 0 ? std::string_view(load) : std::string_view(), discard_op(), 0);
  }
  replay_cleanup();
  if (!reported_first_attempt_) {
    reported_first_attempt_ = true;
    engine_.report_first_attempt();
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
  if (cleanup_.size() >= kMaxCleanup) cleanup_.erase(cleanup_.begin());
  cleanup_.push_back({std::move(keys), std::move(token), until});
}

bool Node::send(std::string_view wire, std::shared_ptr<Operation> op, std::uint32_t tag,
                std::shared_ptr<const std::string> fallback) {
  if (state_ != State::kConnected || pending_.size() >= kMaxPending) return false;
  out_.append(wire);
  pending_.push_back({std::move(op), tag, std::move(fallback)});
  if (!dirty_) {
    dirty_ = true;
    engine_.mark_dirty(*this);
  }
  return true;
}

void Node::flush() {
  dirty_ = false;
  if (state_ != State::kConnected || conn_ == nullptr || out_.empty() || conn_->write_in_flight) {
    return;
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn_->tcp);
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
  if (status != 0) {
    self->fail_connection(std::string("write failed: ") + uv_strerror(status));
  } else if (!self->out_.empty()) {
    self->flush();
  }
  self->engine_.flush_dirty();
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
  self->on_read(nread, buf);
  self->engine_.flush_dirty();
}

void Node::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;
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
  while (conn_ == current && state_ == State::kConnected) {
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
    const Reply& r = **reply;
    if (p.fallback && r.is_error() && r.str.starts_with("NOSCRIPT")) {
      // The script cache was flushed under us: send the script's body. It
      // runs after whatever was pipelined behind the EVALSHA (rare: every
      // connection loads the scripts first).
      auto body = std::move(p.fallback);
      if (send(*body, p.op, p.tag, nullptr)) continue;
    }
    p.op->on_reply(index_, p.tag, &r, {});
  }
}

void Node::on_timer_cb(uv_timer_t* timer) {
  auto* self = static_cast<Node*>(timer->data);
  if (self->state_ == State::kConnecting) {
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
  out_.clear();
  parser_.reset();
}

void Node::fail_connection(const std::string& why) {
  if (state_ == State::kClosed) return;
  const bool was_connected = state_ == State::kConnected;
  state_ = State::kBackoff;
  drop_conn();
  uv_timer_stop(&timer_);

  // Fail what was waiting before anything else can be sent: the operations
  // count these as "no" votes, and the commands are never replayed.
  auto waiting = std::move(pending_);
  pending_.clear();
  const std::string failure = "connection lost: " + why;
  for (auto& p : waiting) p.op->on_reply(index_, p.tag, nullptr, failure);

  if (was_connected || failures_ == 0) {
    engine_.log().warn("node {}: {}", name(), why);
  } else {
    engine_.log().debug("node {}: {} (attempt {})", name(), why, failures_ + 1);
  }
  if (!reported_first_attempt_) {
    reported_first_attempt_ = true;
    engine_.report_first_attempt();
  }
  if (state_ != State::kBackoff) return;  // closed by an operation's callback
  const auto delay = reconnect_delay(failures_, engine_.options().reconnect_min,
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
  auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
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
