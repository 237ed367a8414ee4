// subscriber.hpp: wake-on-release, the connections.
//
// The WakeHub keeps who listens for which release announcements (a
// ChannelTable) and, per node, a Subscriber: a second connection to the node
// in subscribed mode, opened on the first listener (never before) and kept
// open after. Each Subscriber follows the table: SUBSCRIBE when a channel
// gets its first listener, UNSUBSCRIBE when it loses its last, everything
// again after a reconnect. A message on a channel wakes its listeners.
//
// Announcements are an optimisation, never needed for correctness: a
// subscriber that is down, stalled, denied by an ACL or not subscribed yet
// only means that the waiters fall back to their jittered retry.
//
// Threading: the engine's loop thread only. Ownership: the Engine owns the
// hub, the hub its Subscribers; a Subscriber's connection frees itself in its
// close callback, like a Node's.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol.hpp"
#include "wake.hpp"

namespace redlock::detail {

class Engine;
class Node;
class WakeHub;

// Where a subscriber connects, as its Node knows it now.
struct Endpoint {
  std::optional<sockaddr_storage> tcp;  // unset: the Unix socket `unix_path`
  std::string unix_path;
  std::string username;
  std::string password;
};

class Subscriber {
 public:
  Subscriber(Engine& engine, WakeHub& hub, Node& node);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // The table gave `channel` its first listener / took its last one.
  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);
  // The node's own connection is ready again (it may have restarted, or a
  // Sentinel failover moved it): connect now if there is something to hear.
  void node_ready();
  void close();

  // Subscribed mode reached (AUTH done, SUBSCRIBE sent).
  [[nodiscard]] bool ready() const noexcept { return state_ == State::kReady; }

 private:
  struct Conn;
  enum class State : std::uint8_t { kIdle, kConnecting, kHandshake, kReady, kBackoff, kClosed };

  void connect();
  void on_connected(int status);
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void on_reply(const Reply& reply);
  void on_authenticated();
  void write(std::string bytes);
  void fail(const std::string& why, bool permanent = false);
  void arm_timer(std::uint64_t ms);
  void on_timer();

  Engine& engine_;
  WakeHub& hub_;
  Node& node_;
  State state_ = State::kIdle;
  Conn* conn_ = nullptr;
  std::optional<Endpoint> endpoint_;  // where conn_ goes
  std::unique_ptr<ReplyParser> parser_;
  uv_timer_t timer_{};  // connect deadline, then reconnect backoff
  int failures_ = 0;
  bool warned_denied_ = false;  // NOPERM logged once per connection
  std::vector<char> read_buf_;
};

class WakeHub {
 public:
  using WatchId = std::uint64_t;

  explicit WakeHub(Engine& engine);
  ~WakeHub();
  WakeHub(const WakeHub&) = delete;
  WakeHub& operator=(const WakeHub&) = delete;

  // Calls `on_release` whenever a node announces the release of one of
  // `keys`, until unwatch(). Returns 0 (and never calls) once closed.
  [[nodiscard]] WatchId watch(const std::vector<std::string>& keys,
                              std::function<void()> on_release);
  void unwatch(WatchId id);

  void node_ready(std::size_t node);
  void close();

  // From the Subscribers.
  void on_message(std::size_t node, const std::string& channel);
  [[nodiscard]] const ChannelTable& table() const noexcept { return table_; }

 private:
  struct Watch {
    std::vector<std::string> channels;
    std::function<void()> on_release;
  };

  Engine& engine_;
  ChannelTable table_;
  std::unordered_map<WatchId, Watch> watches_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  WatchId next_id_ = 1;
  bool closed_ = false;
};

}  // namespace redlock::detail
