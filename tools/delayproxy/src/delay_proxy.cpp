#include "redlock/delayproxy/delay_proxy.hpp"

#include <arpa/inet.h>
#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <list>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace redlock::delayproxy {
namespace {

constexpr int kBacklog = 128;
constexpr std::size_t kReadBufferSize = 64 * 1024;
constexpr std::uint64_t kNsPerMs = 1'000'000;

struct Session;

struct Chunk {
  std::uint64_t due_ns = 0;  // uv_hrtime() at which it may leave
  std::string data;
  bool eof = false;  // the source ended: shut the destination down
};

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

// One direction of a connection pair: chunks read from `src` wait in `queue`
// until they are due, then are written to `dst` in order.
struct Pipe {
  Session* session = nullptr;
  uv_stream_t* src = nullptr;
  uv_stream_t* dst = nullptr;
  uv_timer_t timer{};
  uv_shutdown_t shutdown_req{};
  std::deque<Chunk> queue;
  std::size_t queued_bytes = 0;
  bool dst_ready = false;  // the destination is connected
  bool done = false;       // the end of stream was forwarded
};

struct Listener {
  DelayProxy::Impl* impl = nullptr;
  std::size_t route = 0;
  uv_tcp_t tcp{};
};

// An accepted client and its upstream connection. It owns four handles and
// frees itself in the last close callback.
struct Session {
  DelayProxy::Impl* impl = nullptr;
  std::uint64_t delay_ns = 0;
  uv_tcp_t client{};
  uv_tcp_t upstream{};
  uv_connect_t connect_req{};
  Pipe c2u;
  Pipe u2c;
  int open_handles = 0;
  bool closing = false;
  std::list<Session*>::iterator pos;
};

uv_handle_t* as_handle(uv_tcp_t* h) { return reinterpret_cast<uv_handle_t*>(h); }
uv_handle_t* as_handle(uv_timer_t* h) { return reinterpret_cast<uv_handle_t*>(h); }
uv_handle_t* as_handle(uv_async_t* h) { return reinterpret_cast<uv_handle_t*>(h); }
uv_stream_t* as_stream(uv_tcp_t* h) { return reinterpret_cast<uv_stream_t*>(h); }

}  // namespace

struct DelayProxy::Impl {
  std::vector<Route> routes;
  std::vector<int> ports;
  uv_loop_t loop{};
  uv_async_t stop_async{};
  std::vector<std::unique_ptr<Listener>> listeners;
  std::list<Session*> sessions;
  std::vector<char> read_buf = std::vector<char>(kReadBufferSize);
  std::thread thread;
  bool loop_ready = false;

  ~Impl() {
    if (!loop_ready) return;
    // Only after the loop thread ended (or never started): close what is left.
    uv_walk(
        &loop,
        [](uv_handle_t* h, void*) {
          if (uv_is_closing(h) == 0) uv_close(h, nullptr);
        },
        nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};

namespace {

void close_session(Session* s);
void deliver(Pipe& p);

void on_session_handle_closed(uv_handle_t* h) {
  // The sockets point at their Session, the timers at their Pipe.
  Session* s =
      h->type == UV_TIMER ? static_cast<Pipe*>(h->data)->session : static_cast<Session*>(h->data);
  if (--s->open_handles > 0) return;
  s->impl->sessions.erase(s->pos);
  delete s;
}

void close_session(Session* s) {
  if (s->closing) return;
  s->closing = true;
  s->c2u.queue.clear();
  s->u2c.queue.clear();
  uv_close(as_handle(&s->client), on_session_handle_closed);
  uv_close(as_handle(&s->upstream), on_session_handle_closed);
  uv_close(as_handle(&s->c2u.timer), on_session_handle_closed);
  uv_close(as_handle(&s->u2c.timer), on_session_handle_closed);
}

void on_pipe_timer(uv_timer_t* t) { deliver(*static_cast<Pipe*>(t->data)); }

// Arms the pipe's timer for its oldest chunk.
void arm(Pipe& p) {
  if (p.queue.empty()) {
    uv_timer_stop(&p.timer);
    return;
  }
  const std::uint64_t now = uv_hrtime();
  const std::uint64_t due = p.queue.front().due_ns;
  const std::uint64_t wait_ns = due > now ? due - now : 0;
  const std::uint64_t ms = (wait_ns + kNsPerMs - 1) / kNsPerMs;
  uv_update_time(p.timer.loop);
  uv_timer_start(&p.timer, on_pipe_timer, ms, 0);
}

void on_write(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* s = static_cast<Session*>(req->handle->data);
  delete w;
  if (status < 0 && status != UV_ECANCELED) close_session(s);
}

void on_shutdown(uv_shutdown_t* req, int status) {
  auto* p = static_cast<Pipe*>(req->data);
  Session* s = p->session;
  if (s->closing) return;
  p->done = true;
  if (status < 0 || (s->c2u.done && s->u2c.done)) close_session(s);
}

// Writes every chunk that is due, in order, then re-arms the timer.
void deliver(Pipe& p) {
  Session* s = p.session;
  if (s->closing) return;
  const std::uint64_t now = uv_hrtime();
  while (p.dst_ready && !p.queue.empty() && p.queue.front().due_ns <= now) {
    Chunk c = std::move(p.queue.front());
    p.queue.pop_front();
    if (c.eof) {
      p.shutdown_req.data = &p;
      if (uv_shutdown(&p.shutdown_req, p.dst, on_shutdown) != 0) {
        close_session(s);
        return;
      }
      continue;
    }
    p.queued_bytes -= c.data.size();
    auto* w = new WriteReq;
    w->data = std::move(c.data);
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, p.dst, &buf, 1, on_write) != 0) {
      delete w;
      close_session(s);
      return;
    }
  }
  arm(p);
}

void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
  auto* s = static_cast<Session*>(h->data);
  auto& rb = s->impl->read_buf;
  *buf = uv_buf_init(rb.data(), static_cast<unsigned>(rb.size()));
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* s = static_cast<Session*>(stream->data);
  if (s->closing || nread == 0) return;
  Pipe& p = stream == as_stream(&s->client) ? s->c2u : s->u2c;
  const bool was_empty = p.queue.empty();
  const std::uint64_t due = uv_hrtime() + s->delay_ns;
  if (nread == UV_EOF) {
    uv_read_stop(stream);
    p.queue.push_back(Chunk{due, {}, true});
  } else if (nread < 0) {
    close_session(s);
    return;
  } else {
    const auto n = static_cast<std::size_t>(nread);
    p.queue.push_back(Chunk{due, std::string(buf->base, n), false});
    p.queued_bytes += n;
    if (p.queued_bytes + uv_stream_get_write_queue_size(p.dst) > DelayProxy::kMaxQueuedBytes) {
      close_session(s);
      return;
    }
  }
  if (was_empty) arm(p);
}

void on_upstream_connected(uv_connect_t* req, int status) {
  auto* s = static_cast<Session*>(req->data);
  if (s->closing) return;
  if (status < 0 || uv_read_start(as_stream(&s->upstream), on_alloc, on_read) != 0) {
    close_session(s);
    return;
  }
  s->c2u.dst_ready = true;
  deliver(s->c2u);
}

void on_connection(uv_stream_t* server, int status) {
  auto* l = static_cast<Listener*>(server->data);
  if (status < 0) return;
  DelayProxy::Impl& impl = *l->impl;
  const Route& route = impl.routes[l->route];
  auto* s = new Session;
  s->impl = &impl;
  s->delay_ns = static_cast<std::uint64_t>(route.delay.count()) * 1000;
  uv_loop_t* loop = &impl.loop;
  uv_tcp_init(loop, &s->client);
  uv_tcp_init(loop, &s->upstream);
  uv_timer_init(loop, &s->c2u.timer);
  uv_timer_init(loop, &s->u2c.timer);
  s->open_handles = 4;
  s->client.data = s;
  s->upstream.data = s;
  s->c2u.timer.data = &s->c2u;
  s->u2c.timer.data = &s->u2c;
  s->c2u.session = s;
  s->c2u.src = as_stream(&s->client);
  s->c2u.dst = as_stream(&s->upstream);
  s->u2c.session = s;
  s->u2c.src = as_stream(&s->upstream);
  s->u2c.dst = as_stream(&s->client);
  s->u2c.dst_ready = true;
  impl.sessions.push_front(s);
  s->pos = impl.sessions.begin();
  if (uv_accept(server, as_stream(&s->client)) != 0) {
    close_session(s);
    return;
  }
  // Nagle would add its own delay on top of ours.
  uv_tcp_nodelay(&s->client, 1);
  uv_tcp_nodelay(&s->upstream, 1);
  sockaddr_in target{};
  uv_ip4_addr("127.0.0.1", route.target_port, &target);
  s->connect_req.data = s;
  if (uv_tcp_connect(&s->connect_req, &s->upstream, reinterpret_cast<const sockaddr*>(&target),
                     on_upstream_connected) != 0 ||
      uv_read_start(as_stream(&s->client), on_alloc, on_read) != 0) {
    close_session(s);
  }
}

void on_stop(uv_async_t* a) {
  auto* impl = static_cast<DelayProxy::Impl*>(a->data);
  for (auto& l : impl->listeners) uv_close(as_handle(&l->tcp), nullptr);
  // close_session never frees synchronously, so iterating is safe.
  for (Session* s : impl->sessions) close_session(s);
  uv_close(as_handle(&impl->stop_async), nullptr);
}

}  // namespace

tl::expected<Route, std::string> parse_route(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return tl::unexpected("bad route \"" + text + "\" (want LISTEN:TARGET:DELAY_MS): " + why);
  };
  const auto c1 = text.find(':');
  const auto c2 = c1 == std::string::npos ? c1 : text.find(':', c1 + 1);
  if (c2 == std::string::npos) return bad("two ':' needed");
  const auto port = [](const std::string& s, int& out) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0 || v < 0 || v > 65535) return false;
    out = static_cast<int>(v);
    return true;
  };
  Route r;
  if (!port(text.substr(0, c1), r.listen_port)) return bad("LISTEN is not a port (0-65535)");
  if (!port(text.substr(c1 + 1, c2 - c1 - 1), r.target_port) || r.target_port == 0) {
    return bad("TARGET is not a port (1-65535)");
  }
  const std::string d = text.substr(c2 + 1);
  char* end = nullptr;
  const double ms = std::strtod(d.c_str(), &end);
  if (d.empty() || *end != '\0' || !(ms >= 0) || ms > 3'600'000) {
    return bad("DELAY_MS is not a number of milliseconds in [0, 3600000]");
  }
  r.delay = std::chrono::microseconds(std::llround(ms * 1000.0));
  return r;
}

tl::expected<std::unique_ptr<DelayProxy>, std::string> DelayProxy::start(
    std::vector<Route> routes) {
  if (routes.empty()) return tl::unexpected(std::string("no route"));
  auto impl = std::make_unique<Impl>();
  impl->routes = std::move(routes);
  if (int rc = uv_loop_init(&impl->loop); rc != 0) {
    return tl::unexpected(std::string("uv_loop_init: ") + uv_strerror(rc));
  }
  impl->loop_ready = true;
  uv_async_init(&impl->loop, &impl->stop_async, on_stop);
  impl->stop_async.data = impl.get();
  for (std::size_t i = 0; i < impl->routes.size(); ++i) {
    const Route& r = impl->routes[i];
    auto l = std::make_unique<Listener>();
    l->impl = impl.get();
    l->route = i;
    uv_tcp_init(&impl->loop, &l->tcp);
    l->tcp.data = l.get();
    Listener* raw = l.get();
    impl->listeners.push_back(std::move(l));
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", r.listen_port, &addr);
    int rc = uv_tcp_bind(&raw->tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(as_stream(&raw->tcp), kBacklog, on_connection);
    if (rc != 0) {
      return tl::unexpected("route " + std::to_string(i + 1) + ": cannot listen on 127.0.0.1:" +
                            std::to_string(r.listen_port) + ": " + uv_strerror(rc));
    }
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&raw->tcp, reinterpret_cast<sockaddr*>(&bound), &len);
    impl->ports.push_back(ntohs(reinterpret_cast<const sockaddr_in&>(bound).sin_port));
  }
  Impl* p = impl.get();
  try {
    impl->thread = std::thread([p] { uv_run(&p->loop, UV_RUN_DEFAULT); });
  } catch (const std::system_error& e) {
    return tl::unexpected(std::string("cannot start the loop thread: ") + e.what());
  }
  return std::unique_ptr<DelayProxy>(new DelayProxy(std::move(impl)));
}

DelayProxy::DelayProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DelayProxy::~DelayProxy() { stop(); }

void DelayProxy::stop() noexcept {
  if (!impl_ || !impl_->thread.joinable()) return;
  uv_async_send(&impl_->stop_async);
  impl_->thread.join();
}

std::size_t DelayProxy::size() const noexcept { return impl_->routes.size(); }

int DelayProxy::port(std::size_t i) const { return impl_->ports.at(i); }

const Route& DelayProxy::route(std::size_t i) const { return impl_->routes.at(i); }

}  // namespace redlock::delayproxy
