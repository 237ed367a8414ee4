#include "subscriber.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

#include "engine.hpp"

namespace redlock::detail {
namespace {

// Subscribed-mode traffic is small: channel names and empty payloads.
constexpr std::size_t kReadBufferSize = 16 * 1024;

bool same_endpoint(const Endpoint& a, const Endpoint& b) {
  if (a.tcp.has_value() != b.tcp.has_value()) return false;
  if (!a.tcp) return a.unix_path == b.unix_path;
  return same_address(*a.tcp, *b.tcp);
}

}  // namespace

// Kept with the subscriber, its only user: where the node's commands go now.
std::optional<Endpoint> Node::endpoint() const {
  Endpoint e;
  e.username = username_;
  e.password = password_;
  switch (address_.kind) {
    case NodeAddress::Kind::kTcp:
      if (addrs_.empty()) return std::nullopt;
      e.tcp = addrs_.front();
      break;
    case NodeAddress::Kind::kUnix:
      e.unix_path = address_.path;
      break;
    case NodeAddress::Kind::kSentinel:
      if (!master_) return std::nullopt;
      e.tcp = *master_;
      break;
  }
  return e;
}

// One subscribed-mode connection. Detached (owner == nullptr) when its
// Subscriber gives it up; frees itself in its close callback. Writes in
// flight are completed (cancelled) by libuv before that callback runs.
struct Subscriber::Conn {
  union Handle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h{};
  uv_connect_t connect_req{};
  Subscriber* owner = nullptr;

  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&h); }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }

  static void on_close(uv_handle_t* handle) { delete static_cast<Conn*>(handle->data); }
  void close() {
    owner = nullptr;
    if (uv_is_closing(handle()) == 0) uv_close(handle(), on_close);
  }
};

namespace {

struct WriteReq {
  uv_write_t req{};
  std::string bytes;
};

}  // namespace

Subscriber::Subscriber(Engine& engine, WakeHub& hub, Node& node)
    : engine_(engine), hub_(hub), node_(node) {
  uv_timer_init(engine_.loop(), &timer_);
  timer_.data = this;
}

Subscriber::~Subscriber() = default;

void Subscriber::subscribe(const std::string& channel) {
  switch (state_) {
    case State::kReady:
      for (auto& cmd : subscription_commands("SUBSCRIBE", {channel})) write(std::move(cmd));
      break;
    case State::kIdle:
      connect();
      break;
    default:
      break;  // subscribes to the whole table once connected
  }
}

void Subscriber::unsubscribe(const std::string& channel) {
  if (state_ != State::kReady) return;
  for (auto& cmd : subscription_commands("UNSUBSCRIBE", {channel})) write(std::move(cmd));
}

void Subscriber::node_ready() {
  if (state_ == State::kClosed || hub_.table().empty()) return;
  if (state_ == State::kIdle || state_ == State::kBackoff) {
    uv_timer_stop(&timer_);
    failures_ = 0;
    connect();
    return;
  }
  // Connected or connecting: to where the node is now? (A Sentinel failover
  // moves it.)
  const auto now = node_.endpoint();
  if (now && endpoint_ && !same_endpoint(*now, *endpoint_)) {
    fail("the node moved");
    uv_timer_stop(&timer_);
    failures_ = 0;
    connect();
  }
}

void Subscriber::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  if (conn_ != nullptr) {
    conn_->close();
    conn_ = nullptr;
  }
  parser_.reset();
}

void Subscriber::connect() {
  if (state_ == State::kClosed) return;
  auto endpoint = node_.endpoint();
  // Nothing to reach while the node itself is down: node_ready() starts
  // again when it is back.
  if (!endpoint || !node_.connected()) {
    state_ = State::kIdle;
    return;
  }
  auto* c = new Conn;
  int rc = endpoint->tcp ? uv_tcp_init(engine_.loop(), &c->h.tcp)
                         : uv_pipe_init(engine_.loop(), &c->h.pipe, 0);
  if (rc != 0) {
    delete c;
    state_ = State::kConnecting;
    fail(std::string("cannot create socket: ") + uv_strerror(rc));
    return;
  }
  c->handle()->data = c;
  c->owner = this;
  c->connect_req.data = c;
  conn_ = c;
  endpoint_ = std::move(endpoint);
  state_ = State::kConnecting;
  const auto on_connect = [](uv_connect_t* req, int status) {
    auto* conn = static_cast<Conn*>(req->data);
    if (conn->owner == nullptr) return;
    conn->owner->on_connected(status);
  };
  if (endpoint_->tcp) {
    uv_tcp_nodelay(&c->h.tcp, 1);
    rc = uv_tcp_connect(&c->connect_req, &c->h.tcp,
                        reinterpret_cast<const sockaddr*>(&*endpoint_->tcp), on_connect);
    if (rc != 0) {
      fail(std::string("connect failed: ") + uv_strerror(rc));
      return;
    }
  } else {
    uv_pipe_connect(&c->connect_req, &c->h.pipe, endpoint_->unix_path.c_str(), on_connect);
  }
  arm_timer(static_cast<std::uint64_t>(engine_.options().connect_timeout.count()));
}

void Subscriber::on_connected(int status) {
  if (status != 0) {
    fail(std::string("connect failed: ") + uv_strerror(status));
    return;
  }
  parser_ = std::make_unique<ReplyParser>();
  read_buf_.resize(kReadBufferSize);
  const auto on_alloc = [](uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
    auto* conn = static_cast<Conn*>(handle->data);
    if (conn->owner == nullptr) {
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    auto& rb = conn->owner->read_buf_;
    *buf = uv_buf_init(rb.data(), static_cast<unsigned>(rb.size()));
  };
  const auto on_read = [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* conn = static_cast<Conn*>(stream->data);
    if (conn->owner == nullptr) return;
    // A wake-up starts acquire rounds; the engine's check phase writes their
    // commands once this poll phase's callbacks have run.
    conn->owner->on_read(nread, buf);
  };
  if (int rc = uv_read_start(conn_->stream(), on_alloc, on_read); rc != 0) {
    fail(std::string("read failed: ") + uv_strerror(rc));
    return;
  }
  // Credentials as the node's own connection sends them. No SELECT:
  // pub/sub channels are the same in every database.
  if (!endpoint_->password.empty()) {
    state_ = State::kHandshake;
    write(endpoint_->username.empty()
              ? format_command({"AUTH", endpoint_->password})
              : format_command({"AUTH", endpoint_->username, endpoint_->password}));
    return;
  }
  on_authenticated();
}

void Subscriber::on_authenticated() {
  state_ = State::kReady;
  uv_timer_stop(&timer_);
  if (failures_ > 0) {
    engine_.log().debug("node {}: release subscription connected again", node_.name());
  }
  failures_ = 0;
  warned_denied_ = false;
  for (auto& cmd : subscription_commands("SUBSCRIBE", hub_.table().channels())) {
    write(std::move(cmd));
  }
}

void Subscriber::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;
  if (nread < 0) {
    fail(nread == UV_EOF ? std::string("connection closed by the server")
                         : std::string("read failed: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (auto fed = parser_->feed(buf->base, static_cast<std::size_t>(nread)); !fed) {
    fail(fed.error().message());
    return;
  }
  Conn* const current = conn_;
  while (conn_ == current && parser_) {
    auto reply = parser_->next();
    if (!reply) {
      fail(reply.error().message());
      return;
    }
    if (!reply->has_value()) return;
    on_reply(**reply);
  }
}

void Subscriber::on_reply(const Reply& reply) {
  if (state_ == State::kHandshake) {
    if (reply.is_error()) {
      fail("authentication failed: " + reply.str, true);
    } else {
      on_authenticated();
    }
    return;
  }
  const auto event = read_push(reply);
  switch (event.kind) {
    case PushEvent::Kind::kMessage:
      hub_.on_message(node_.index(), event.channel);
      break;
    case PushEvent::Kind::kError:
      if (event.error.starts_with("NOAUTH") || event.error.starts_with("WRONGPASS")) {
        fail("the node requires a password (" + event.error + ")", true);
      } else if (!warned_denied_) {
        // An ACL without &redlock:released:* (or +subscribe): waiters on
        // this node keep their jittered retry. Said once per connection.
        warned_denied_ = true;
        engine_.log().warn(
            "node {}: cannot subscribe to release announcements ({}); waiters fall back to "
            "their retry delay (the README's ACL section lists the channel permission)",
            node_.name(), event.error);
      }
      break;
    default:
      break;
  }
}

void Subscriber::write(std::string bytes) {
  if (conn_ == nullptr || bytes.empty()) return;
  auto* w = new WriteReq;
  w->bytes = std::move(bytes);
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  const auto on_write = [](uv_write_t* req, int status) {
    auto* conn = static_cast<Conn*>(req->handle->data);
    delete static_cast<WriteReq*>(req->data);
    if (status == 0 || conn->owner == nullptr) return;
    conn->owner->fail(std::string("write failed: ") + uv_strerror(status));
  };
  if (int rc = uv_write(&w->req, conn_->stream(), &buf, 1, on_write); rc != 0) {
    delete w;
    fail(std::string("write failed: ") + uv_strerror(rc));
  }
}

void Subscriber::fail(const std::string& why, bool permanent) {
  if (state_ == State::kClosed) return;
  if (conn_ != nullptr) {
    conn_->close();
    conn_ = nullptr;
  }
  parser_.reset();
  endpoint_.reset();
  uv_timer_stop(&timer_);
  if (permanent && failures_ == 0) {
    engine_.log().warn("node {}: release subscription: {}", node_.name(), why);
  } else {
    engine_.log().debug("node {}: release subscription: {}", node_.name(), why);
  }
  // Nobody listens: stay closed until somebody does.
  if (hub_.table().empty()) {
    state_ = State::kIdle;
    failures_ = 0;
    return;
  }
  state_ = State::kBackoff;
  const auto& o = engine_.options();
  const auto delay = permanent ? o.reconnect_max
                               : reconnect_delay(failures_, o.reconnect_min, o.reconnect_max,
                                                 engine_.random_unit());
  ++failures_;
  arm_timer(static_cast<std::uint64_t>(delay.count()));
}

void Subscriber::arm_timer(std::uint64_t ms) {
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Subscriber*>(t->data);
        self->on_timer();
        self->engine_.flush_dirty();
      },
      ms, 0);
}

void Subscriber::on_timer() {
  switch (state_) {
    case State::kConnecting:
    case State::kHandshake:
      fail("connect timed out after " + std::to_string(engine_.options().connect_timeout.count()) +
           " ms");
      break;
    case State::kBackoff:
      if (hub_.table().empty()) {
        state_ = State::kIdle;
      } else {
        connect();
      }
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------

WakeHub::WakeHub(Engine& engine) : engine_(engine) {
  for (auto& node : engine_.nodes()) {
    subscribers_.push_back(std::make_unique<Subscriber>(engine_, *this, *node));
  }
}

WakeHub::~WakeHub() = default;

WakeHub::WatchId WakeHub::watch(const std::vector<std::string>& keys,
                                std::function<void()> on_release) {
  if (closed_ || keys.empty() || !on_release) return 0;
  const WatchId id = next_id_++;
  Watch w;
  w.on_release = std::move(on_release);
  for (const auto& key : keys) {
    auto channel = release_channel(key);
    if (table_.add(channel, id)) {
      for (auto& s : subscribers_) s->subscribe(channel);
    }
    w.channels.push_back(std::move(channel));
  }
  watches_.emplace(id, std::move(w));
  return id;
}

void WakeHub::unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  auto channels = std::move(it->second.channels);
  watches_.erase(it);
  for (const auto& channel : channels) {
    if (table_.remove(channel, id) && !closed_) {
      for (auto& s : subscribers_) s->unsubscribe(channel);
    }
  }
}

void WakeHub::node_ready(std::size_t node) {
  if (closed_ || node >= subscribers_.size()) return;
  subscribers_[node]->node_ready();
}

void WakeHub::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& s : subscribers_) s->close();
}

void WakeHub::on_message(std::size_t, const std::string& channel) {
  if (closed_) return;
  for (const auto id : table_.listeners(channel)) {
    auto it = watches_.find(id);
    if (it == watches_.end()) continue;  // unwatched by an earlier wake-up
    // A copy: the call may unwatch (and so destroy) this very watch.
    auto on_release = it->second.on_release;
    on_release();
  }
}

}  // namespace redlock::detail
