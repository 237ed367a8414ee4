// connection.cpp: longer than most files here (about 600 lines) because it
// is the whole transport in one place: resolve, connect with a deadline, the
// TLS handshake, the AUTH/SELECT/owner steps, reads into the reply parser,
// the write queue, backoff and a close that frees in its close callback.
// Split, each part would need the others' state.
#include "connection.hpp"

#include <algorithm>

#include "tsan.hpp"

namespace redlock::detail {

// One socket, for one attempt. Detached (conn == nullptr) when its Connection
// gives it up; frees itself in its close callback, after libuv has completed
// (cancelled) its requests.
struct Connection::Socket {
  union Handle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  uv_shutdown_t shutdown_req{};
  Connection* conn = nullptr;
  std::string writing;  // the bytes of the write in flight
  bool write_in_flight = false;
  sockaddr_storage addr{};  // kTcp: where it connects

  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&h); }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }

  void close() {
    conn = nullptr;
    if (uv_is_closing(handle()) == 0) {
      uv_close(handle(), [](uv_handle_t* hd) { delete static_cast<Socket*>(hd->data); });
    }
  }
};

// A name lookup on libuv's thread pool. Detached like a Socket; deletes
// itself when the lookup is done (or was cancelled).
struct Connection::ResolveJob {
  uv_work_t req{};
  Connection* conn = nullptr;
  std::string host;
  std::uint16_t port = 0;
  Result<std::vector<sockaddr_storage>> result;
};

Connection::Connection(Loop& loop, Owner& owner, Settings settings)
    : loop_(loop), owner_(owner), settings_(settings) {}

Connection::~Connection() {
  cancel_timer();
  detach_socket();
  if (resolving_ != nullptr) {
    resolving_->conn = nullptr;
    resolving_ = nullptr;
  }
}

void Connection::start() {
  if (state_ != State::kIdle && state_ != State::kBackoff) return;
  cancel_timer();
  connect_next();
}

void Connection::connect_next() {
  auto endpoint = owner_.endpoint();
  if (!endpoint) {
    state_ = State::kIdle;
    return;
  }
  endpoint_ = std::move(*endpoint);
  addrs_.clear();
  addr_index_ = 0;
  attempt_errors_.clear();
  if (endpoint_.kind == Endpoint::Kind::kUnix) {
    state_ = State::kConnecting;
    try_address();
    return;
  }
  if (auto literal = literal_address(endpoint_.host, endpoint_.port)) {
    addrs_.push_back(*literal);
    state_ = State::kConnecting;
    try_address();
    return;
  }
  // A host name: looked up on every attempt, so a name that moves (a
  // container that came back with a new address) is followed.
  state_ = State::kResolving;
  auto* job = new ResolveJob;
  job->req.data = job;
  job->conn = this;
  job->host = endpoint_.host;
  job->port = endpoint_.port;
  resolving_ = job;
  arm_deadline();
  tsan_release(&job->req);
  const int rc = uv_queue_work(
      loop_.uv(), &job->req,
      [](uv_work_t* req) {
        tsan_acquire(req);
        auto* j = static_cast<ResolveJob*>(req->data);
        j->result = resolve(j->host, j->port);
        tsan_release(req);
      },
      [](uv_work_t* req, int status) {
        tsan_acquire(req);
        auto* j = static_cast<ResolveJob*>(req->data);
        Connection* conn = j->conn;
        if (conn != nullptr && status == 0) {
          conn->resolving_ = nullptr;
          conn->on_resolved(std::move(j->result));
          conn->loop_.note_activity();
        } else if (conn != nullptr) {
          conn->resolving_ = nullptr;
        }
        delete j;
      });
  if (rc != 0) {
    resolving_ = nullptr;
    delete job;
    drop(std::string("cannot look up \"") + endpoint_.host + "\": " + uv_strerror(rc), false, true,
         false);
  }
}

void Connection::on_resolved(Result<std::vector<sockaddr_storage>> addrs) {
  if (state_ != State::kResolving) return;
  if (!addrs) {
    drop(addrs.error().message(), false, true, false);
    return;
  }
  if (addrs->empty()) {
    drop("cannot resolve \"" + endpoint_.host + "\": no address", false, true, false);
    return;
  }
  addrs_ = std::move(*addrs);
  state_ = State::kConnecting;
  try_address();
}

void Connection::try_address() {
  auto* s = new Socket;
  int rc = 0;
  if (endpoint_.kind == Endpoint::Kind::kUnix) {
    rc = uv_pipe_init(loop_.uv(), &s->h.pipe, 0);
  } else {
    rc = uv_tcp_init(loop_.uv(), &s->h.tcp);
  }
  if (rc != 0) {
    delete s;
    drop(std::string("cannot create a socket: ") + uv_strerror(rc), false, true, false);
    return;
  }
  s->handle()->data = s;
  s->conn = this;
  s->connect_req.data = s;
  socket_ = s;
  arm_deadline();
  const auto on_connect = [](uv_connect_t* req, int status) {
    auto* sock = static_cast<Socket*>(req->data);
    if (sock->conn != nullptr) sock->conn->on_connected(status);
  };
  if (endpoint_.kind == Endpoint::Kind::kUnix) {
    uv_pipe_connect(&s->connect_req, &s->h.pipe, endpoint_.path.c_str(), on_connect);
    return;
  }
  s->addr = addrs_[addr_index_];
  uv_tcp_nodelay(&s->h.tcp, 1);
  rc = uv_tcp_connect(&s->connect_req, &s->h.tcp, reinterpret_cast<const sockaddr*>(&s->addr),
                      on_connect);
  if (rc != 0) on_connected(rc);
}

void Connection::on_connected(int status) {
  if (status != 0) {
    const std::string err = uv_strerror(status);
    if (endpoint_.kind == Endpoint::Kind::kUnix) {
      drop("connect failed: " + err, false, true, false);
      return;
    }
    const std::string here = address_text(addrs_[addr_index_]);
    attempt_errors_ += (attempt_errors_.empty() ? "" : "; ") + here + ": " + err;
    // The next address of the name, if there is one.
    if (++addr_index_ < addrs_.size()) {
      detach_socket();
      state_ = State::kConnecting;
      try_address();
      return;
    }
    const bool several = addrs_.size() > 1;
    drop(several ? "connect failed on every address of \"" + endpoint_.host + "\" (" +
                       attempt_errors_ + ")"
                 : "connect failed: " + err,
         false, true, false);
    return;
  }
  parser_ = std::make_unique<ReplyParser>();
  read_buf_.resize(settings_.read_buffer);
  const auto on_alloc = [](uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
    auto* sock = static_cast<Socket*>(handle->data);
    if (sock->conn == nullptr) {
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    auto& rb = sock->conn->read_buf_;
    *buf = uv_buf_init(rb.data(), static_cast<unsigned>(rb.size()));
  };
  const auto on_read = [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* sock = static_cast<Socket*>(stream->data);
    if (sock->conn != nullptr) sock->conn->on_read(nread, buf);
    // What the replies queued is written once all of this poll phase's
    // callbacks ran (the loop's check phase).
  };
  if (int rc = uv_read_start(socket_->stream(), on_alloc, on_read); rc != 0) {
    drop(std::string("read failed: ") + uv_strerror(rc), false, true, false);
    return;
  }
  state_ = State::kHandshake;
  // Over TLS the Redis handshake waits for the TLS one: no byte of it, and
  // no on_ready, before the server's certificate has been verified.
  if (endpoint_.tls) {
    start_tls();
    return;
  }
  redis_handshake();
}

const std::string& Connection::tls_name() const noexcept {
  if (!endpoint_.server_name.empty()) return endpoint_.server_name;
  if (settings_.tls != nullptr && !settings_.tls->server_name().empty()) {
    return settings_.tls->server_name();
  }
  return endpoint_.host;
}

bool Connection::start_tls() {
  if (settings_.tls == nullptr) {
    drop("TLS is not set up for this connection", true, true, false);
    return false;
  }
  const std::string at =
      endpoint_.kind == Endpoint::Kind::kTcp ? address_text(socket_->addr) : endpoint_.where();
  auto session = TlsSession::create(*settings_.tls, tls_name(), at);
  if (!session) {
    drop(session.error().message(), false, true, false);
    return false;
  }
  tls_ = std::move(*session);
  if (auto failed = tls_->start()) {
    drop(failed->why, failed->permanent, true, false);
    return false;
  }
  loop_.defer_flush(*this);
  return true;
}

void Connection::redis_handshake() {
  // The handshake runs before any other command: credentials first (sent on
  // every connect, so a restarted node or a failover target gets them too),
  // then the database, then what the owner needs to know.
  state_ = State::kHandshake;
  steps_.clear();
  owner_step_ = 0;
  if (!endpoint_.password.empty()) {
    write(endpoint_.username.empty()
              ? format_command({"AUTH", endpoint_.password})
              : format_command({"AUTH", endpoint_.username, endpoint_.password}));
    steps_.push_back(Step::kAuth);
  }
  if (endpoint_.db != 0) {
    write(format_command({"SELECT", std::to_string(endpoint_.db)}));
    steps_.push_back(Step::kSelect);
  }
  std::vector<std::string> commands;
  owner_.handshake(commands);
  for (const auto& c : commands) {
    write(c);
    steps_.push_back(Step::kOwner);
  }
  // Steps are consumed from the front: keep them in reverse.
  std::reverse(steps_.begin(), steps_.end());
  if (steps_.empty()) {
    cancel_timer();
    state_ = State::kReady;
    failures_ = 0;
    last_error_.clear();
    owner_.on_ready();
  }
}

void Connection::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;
  loop_.note_activity();
  if (nread < 0) {
    drop(nread == UV_EOF ? std::string("connection closed by the server")
                         : std::string("read failed: ") + uv_strerror(static_cast<int>(nread)),
         false, true, false);
    return;
  }
  if (!tls_) {
    on_plaintext(buf->base, static_cast<std::size_t>(nread));
    return;
  }
  Socket* const current = socket_;
  const bool was_established = tls_->established();
  plain_.clear();
  auto failed = tls_->receive(buf->base, static_cast<std::size_t>(nread), plain_);
  if (failed) {
    drop(failed->why, failed->permanent, true, false);
    return;
  }
  // Handshake messages, or a reply to the server's key update.
  if (tls_->has_output()) loop_.defer_flush(*this);
  if (!was_established && tls_->established()) {
    redis_handshake();
    if (socket_ != current) return;  // the owner dropped it from on_ready
  }
  if (!plain_.empty()) on_plaintext(plain_.data(), plain_.size());
}

void Connection::on_plaintext(const char* data, std::size_t size) {
  if (auto fed = parser_->feed(data, size); !fed) {
    drop(fed.error().message(), false, true, false);
    return;
  }
  // The owner may drop or restart the connection from a reply: stop at once
  // when the socket this read came from is no longer ours.
  Socket* const current = socket_;
  while (socket_ == current && parser_) {
    auto reply = parser_->next();
    if (!reply) {
      drop(reply.error().message(), false, true, false);
      return;
    }
    if (!reply->has_value()) return;
    if (state_ == State::kHandshake) {
      on_handshake_reply(**reply);
    } else if (state_ == State::kReady) {
      owner_.on_reply(**reply);
    }
  }
}

void Connection::on_handshake_reply(Reply& reply) {
  if (steps_.empty()) {
    drop("reply without a command (protocol out of step)", false, true, false);
    return;
  }
  const Step step = steps_.back();
  steps_.pop_back();
  switch (step) {
    case Step::kAuth:
      if (reply.is_error()) {
        // Wrong password or user: say so, and do not hammer the server.
        drop("authentication failed: " + reply.str, true, true, false);
        return;
      }
      break;
    case Step::kSelect:
      if (reply.is_error()) {
        drop("SELECT " + std::to_string(endpoint_.db) + " failed: " + reply.str, true, true, false);
        return;
      }
      break;
    case Step::kOwner:
      if (reply.is_error() && reply.str.starts_with("NOAUTH")) {
        drop("the server requires a password (" + reply.str + ")", true, true, false);
        return;
      }
      if (auto refusal = owner_.on_handshake_reply(owner_step_++, reply)) {
        drop(refusal->why, refusal->permanent, true, false);
        return;
      }
      break;
  }
  if (!steps_.empty() || state_ != State::kHandshake) return;
  cancel_timer();
  state_ = State::kReady;
  failures_ = 0;
  last_error_.clear();
  owner_.on_ready();
}

void Connection::write(std::string_view bytes) {
  if (state_ != State::kHandshake && state_ != State::kReady) return;
  if (bytes.empty()) return;
  out_.append(bytes);
  loop_.defer_flush(*this);
}

void Connection::flush() {
  if (state_ != State::kHandshake && state_ != State::kReady) return;
  if (socket_ == nullptr || socket_->write_in_flight) return;
  // Plain text goes to the socket as it is; over TLS it is encrypted first
  // (and waits in out_ until the TLS handshake is done).
  std::string* bytes = &out_;
  if (tls_) {
    if (auto failed = tls_->encrypt(out_)) {
      drop(failed->why, failed->permanent, true, false);
      return;
    }
    bytes = &tls_->output();
  }
  if (bytes->empty()) return;
  auto* stream = socket_->stream();
  uv_buf_t buf = uv_buf_init(bytes->data(), static_cast<unsigned>(bytes->size()));
  const int n = uv_try_write(stream, &buf, 1);
  if (n >= 0 && static_cast<std::size_t>(n) == bytes->size()) {
    bytes->clear();
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    drop(std::string("write failed: ") + uv_strerror(n), false, true, false);
    return;
  }
  // The socket took part of it (or none): hand the rest to an async write.
  const std::size_t written = n > 0 ? static_cast<std::size_t>(n) : 0;
  socket_->writing.assign(*bytes, written, std::string::npos);
  bytes->clear();
  buf = uv_buf_init(socket_->writing.data(), static_cast<unsigned>(socket_->writing.size()));
  socket_->write_req.data = socket_;
  const auto on_write = [](uv_write_t* req, int status) {
    auto* sock = static_cast<Socket*>(req->data);
    sock->write_in_flight = false;
    sock->writing.clear();
    if (sock->conn != nullptr) sock->conn->on_write_done(status);
  };
  if (int rc = uv_write(&socket_->write_req, stream, &buf, 1, on_write); rc != 0) {
    drop(std::string("write failed: ") + uv_strerror(rc), false, true, false);
    return;
  }
  socket_->write_in_flight = true;
}

void Connection::on_write_done(int status) {
  if (status != 0) {
    drop(std::string("write failed: ") + uv_strerror(status), false, true, false);
  } else if (!out_.empty() || (tls_ && tls_->has_output())) {
    flush();
  }
}

std::optional<Endpoint> Connection::peer() const {
  if (state_ != State::kHandshake && state_ != State::kReady) return std::nullopt;
  Endpoint e = endpoint_;
  if (e.kind == Endpoint::Kind::kTcp && socket_ != nullptr) {
    // The address stands for the name: TLS still verifies the name.
    if (e.tls) e.server_name = tls_name();
    e.host = ip_text(socket_->addr);
  }
  return e;
}

void Connection::fail(const std::string& why, bool permanent) { drop(why, permanent, true, false); }

void Connection::restart(const std::string& why) {
  if (state_ == State::kClosed) return;
  failures_ = 0;
  if (state_ == State::kIdle || state_ == State::kBackoff) {
    cancel_timer();
    connect_next();
    return;
  }
  drop(why, false, true, true);
}

void Connection::reset() {
  if (state_ == State::kClosed) return;
  cancel_timer();
  detach_socket();
  if (resolving_ != nullptr) {
    resolving_->conn = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));
    resolving_ = nullptr;
  }
  out_.clear();
  parser_.reset();
  steps_.clear();
  failures_ = 0;
  state_ = State::kIdle;
}

void Connection::drop(const std::string& why, bool permanent, bool tell_owner, bool retry_now) {
  if (state_ == State::kClosed || state_ == State::kIdle) return;
  if (state_ == State::kBackoff && !retry_now) return;
  cancel_timer();
  detach_socket();
  if (resolving_ != nullptr) {
    resolving_->conn = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));
    resolving_ = nullptr;
  }
  out_.clear();
  parser_.reset();
  steps_.clear();
  last_error_ = why;
  state_ = State::kBackoff;
  if (tell_owner) owner_.on_down(why, permanent);
  // The owner may have closed, reset or restarted the connection meanwhile.
  if (state_ != State::kBackoff) return;
  if (retry_now) {
    connect_next();
    return;
  }
  // A refusal that will not go away by itself (wrong password, a node of
  // the wrong kind) is retried at the slowest pace, in case the operator
  // fixes it.
  const auto delay = permanent ? settings_.reconnect_max
                               : reconnect_delay(failures_, settings_.reconnect_min,
                                                 settings_.reconnect_max, loop_.random_unit());
  ++failures_;
  timer_ = loop_.schedule(loop_.now() + delay, [this] {
    timer_ = 0;
    if (state_ == State::kBackoff) connect_next();
  });
}

void Connection::close() {
  if (state_ == State::kClosed) return;
  const bool was_ready = state_ == State::kReady;
  state_ = State::kClosed;
  cancel_timer();
  if (resolving_ != nullptr) {
    resolving_->conn = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));
    resolving_ = nullptr;
  }
  parser_.reset();
  Socket* s = socket_;
  socket_ = nullptr;
  // The TLS session goes with the connection, whatever the socket does.
  const std::unique_ptr<TlsSession> tls = std::move(tls_);
  if (s == nullptr) return;
  s->conn = nullptr;
  if (!was_ready) {
    s->close();
    return;
  }
  // Let what was written last (releases during shutdown) reach the server:
  // write what is queued (over TLS, encrypted, and a close_notify), then a
  // graceful shutdown, then close.
  auto* stream = s->stream();
  std::string* bytes = &out_;
  if (tls) {
    (void)tls->encrypt(out_);
    tls->close_notify();
    bytes = &tls->output();
  }
  if (!bytes->empty() && !s->write_in_flight) {
    s->writing = std::move(*bytes);
    uv_buf_t buf = uv_buf_init(s->writing.data(), static_cast<unsigned>(s->writing.size()));
    s->write_req.data = s;
    const auto on_write = [](uv_write_t* req, int) {
      auto* sock = static_cast<Socket*>(req->data);
      sock->write_in_flight = false;
    };
    if (uv_write(&s->write_req, stream, &buf, 1, on_write) == 0) s->write_in_flight = true;
  }
  out_.clear();
  s->shutdown_req.data = s;
  const int rc = uv_shutdown(&s->shutdown_req, stream, [](uv_shutdown_t* req, int) {
    static_cast<Socket*>(req->data)->close();
  });
  if (rc != 0) s->close();
}

void Connection::arm_deadline() {
  cancel_timer();
  timer_ = loop_.schedule(loop_.now() + settings_.connect_timeout, [this] {
    timer_ = 0;
    // A blackholed address: try the name's next one, if any.
    if (state_ == State::kConnecting && endpoint_.kind == Endpoint::Kind::kTcp &&
        addr_index_ + 1 < addrs_.size()) {
      attempt_errors_ +=
          (attempt_errors_.empty() ? "" : "; ") + address_text(addrs_[addr_index_]) + ": timed out";
      ++addr_index_;
      detach_socket();
      try_address();
      return;
    }
    if (state_ == State::kResolving || state_ == State::kConnecting ||
        state_ == State::kHandshake) {
      std::string where = endpoint_.where();
      drop((state_ == State::kResolving ? "looking up \"" + endpoint_.host + "\" timed out after "
                                        : "connect to " + where + " timed out after ") +
               std::to_string(settings_.connect_timeout.count()) + " ms",
           false, true, false);
    }
  });
}

void Connection::cancel_timer() {
  loop_.cancel(timer_);
  timer_ = 0;
}

void Connection::detach_socket() {
  tls_.reset();
  if (socket_ != nullptr) {
    socket_->close();
    socket_ = nullptr;
  }
}

}  // namespace redlock::detail
