// redlock/delayproxy/delay_proxy.hpp: DelayProxy, a TCP relay on 127.0.0.1
// that delays every chunk by a fixed one-way delay, to emulate distant nodes.
//
// Each Route listens on 127.0.0.1:listen_port and, for every accepted client,
// opens one connection to 127.0.0.1:target_port. Bytes are forwarded in both
// directions; each chunk read from one side is written to the other `delay`
// after it was read, so a request/reply round trip costs 2 x delay plus the
// server's time. Chunks of one direction keep their order (the delay is the
// same for all of them, so they leave in the order they arrived). An end of
// stream is forwarded (after the same delay) as a shutdown of the other side.
// There is no flow control beyond a cap: a direction holding more than
// kMaxQueuedBytes not yet written closes its connection pair.
//
// Threading: all forwarding runs on one libuv loop on a thread of its own,
// started by start() and joined by stop() (or the destructor). start(),
// stop(), port() and the destructor may be called from any one thread; they
// are not meant to race each other.
//
// Timing: libuv timers have millisecond resolution; a chunk leaves between
// `delay` and `delay` + 1 ms after it arrived (plus scheduling).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <tl/expected.hpp>
#include <vector>

namespace redlock::delayproxy {

struct Route {
  int listen_port = 0;  // 0: a free port chosen by the OS (see DelayProxy::port)
  int target_port = 0;
  std::chrono::microseconds delay{0};  // one way
};

// "LISTEN:TARGET:DELAY_MS" (DELAY_MS may have a fraction, e.g. 0.5). Error: a
// message naming what is wrong.
[[nodiscard]] tl::expected<Route, std::string> parse_route(const std::string& text);

class DelayProxy {
 public:
  static constexpr std::size_t kMaxQueuedBytes = std::size_t{64} << 20;

  // Binds and listens on every route, then starts the loop thread. Error: a
  // route that cannot listen (port taken, bad port); nothing is left running.
  [[nodiscard]] static tl::expected<std::unique_ptr<DelayProxy>, std::string> start(
      std::vector<Route> routes);

  ~DelayProxy();  // stop()
  DelayProxy(const DelayProxy&) = delete;
  DelayProxy& operator=(const DelayProxy&) = delete;

  // Closes the listeners and every connection (queued chunks are dropped) and
  // joins the loop thread. Idempotent; never throws.
  void stop() noexcept;

  [[nodiscard]] std::size_t size() const noexcept;
  // The port route i listens on (the chosen one when listen_port was 0).
  // Throws std::out_of_range for i >= size().
  [[nodiscard]] int port(std::size_t i) const;
  [[nodiscard]] const Route& route(std::size_t i) const;

  struct Impl;

 private:
  explicit DelayProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace redlock::delayproxy
