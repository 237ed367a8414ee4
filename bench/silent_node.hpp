// silent_node.hpp: SilentNode, a listening socket on 127.0.0.1 that accepts
// connections and never reads from or writes to them: a Redis node that is
// reachable but never answers (scenario d of redlock-bench).
//
// Threading: one thread of its own accepts; start() and stop() from any one
// thread. Connections stay open until stop() (or the destructor) closes them.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <tl/expected.hpp>
#include <vector>

namespace redlock::bench {

class SilentNode {
 public:
  // Listens on a free port of 127.0.0.1. Error: the reason, from errno.
  [[nodiscard]] static tl::expected<std::unique_ptr<SilentNode>, std::string> start();

  ~SilentNode();  // stop()
  SilentNode(const SilentNode&) = delete;
  SilentNode& operator=(const SilentNode&) = delete;

  // Joins the accepting thread and closes every socket. Idempotent.
  void stop() noexcept;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Connections accepted so far.
  [[nodiscard]] int accepted() const noexcept { return accepted_.load(); }

 private:
  SilentNode(int listen_fd, int wake_fd, int port);
  void run();

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() wakes the accepting thread with it
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::vector<int> conns_;  // accepting thread only, until joined
  std::thread thread_;
};

}  // namespace redlock::bench
