// engine.hpp: the event loop, the node connections and the operations.
//
// Threading: everything here runs on the engine's loop thread, except the
// Engine methods marked "any thread". Only the wake-up eventfd crosses
// threads (written by post() and shutdown(), under the engine's mutex).
// Ownership: the Engine owns the loop and the Nodes; a Node owns its uv
// handles (a connection frees itself in its close callback); operations are
// shared by the Engine (while they have a user callback pending) and by the
// nodes' reply queues (while a reply is outstanding), so a late reply always
// finds its operation alive and is dropped there.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "clock_check.hpp"
#include "metrics.hpp"
#include "protocol.hpp"
#include "redlock/client.hpp"
#include "rules.hpp"
#include "subscriber.hpp"
#include "validate.hpp"

namespace spdlog {
class logger;
}

namespace redlock::detail {

class Engine;

// Something that waits for node replies.
class Operation : public std::enable_shared_from_this<Operation> {
 public:
  virtual ~Operation() = default;
  // The reply to a command sent with `tag` to node `node`. `reply` is null
  // when the command got no answer because the connection failed (`failure`
  // says why). Called exactly once per command sent.
  virtual void on_reply(std::size_t node, std::uint32_t tag, const Reply* reply,
                        std::string_view failure) = 0;
  // The engine is shutting down: complete with kShuttingDown.
  virtual void abort() {}
};

// One persistent connection to one Redis node, reconnected with capped
// exponential backoff. Commands are pipelined: replies come back in the order
// the commands were sent, so a release sent after a SET always runs after it.
class Node {
 public:
  // `addrs`: the node's address (kTcp), each sentinel's (kSentinel), none
  // (kUnix). `username`/`password`: the credentials to send on connect.
  Node(Engine& engine, std::size_t index, NodeAddress address, std::vector<sockaddr_storage> addrs);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void start();
  // Queues a command. Returns false, and never calls back, when the node is
  // not connected (and ready): commands are never held for a later
  // connection. `fallback`, for EVALSHA: the EVAL form, sent instead of
  // delivering a NOSCRIPT error.
  [[nodiscard]] bool send(std::string_view wire, std::shared_ptr<Operation> op, std::uint32_t tag,
                          std::shared_ptr<const std::string> fallback = nullptr);
  // Hands queued bytes to the socket; the engine calls this once per callback.
  void flush();
  // Shutdown: writes what is queued, then closes every handle.
  void close();

  // A key this client may have left on the node while it was unreachable; it
  // is released (compare-and-delete) when the node is connected again.
  void remember_cleanup(std::vector<std::string> keys, std::string token, Clock::time_point until);

  [[nodiscard]] bool connected() const noexcept { return state_ == State::kConnected; }
  [[nodiscard]] bool connected_any_thread() const noexcept { return connected_flag_.load(); }
  // Connected, and no command has waited longer than kStallThreshold for its
  // reply (a stopped or overloaded node is connected but not answering).
  // Any thread.
  [[nodiscard]] bool answering(Clock::time_point now) const noexcept;
  // How long the oldest unanswered command has waited without any reply
  // coming in (0 when nothing waits). Any thread.
  [[nodiscard]] Clock::duration waiting_for(Clock::time_point now) const noexcept;
  // Answering and not left out of the vote (restart grace, suspect clock).
  // Any thread.
  [[nodiscard]] bool voting(Clock::time_point now) const noexcept;
  // The node's redis_version, and its uptime now as the last handshake
  // implies it (unset when unknown).
  [[nodiscard]] const std::string& version() const noexcept { return version_; }
  [[nodiscard]] std::optional<std::chrono::seconds> uptime(Clock::time_point now) const;
  // The address with any password hidden: safe for logs and errors.
  [[nodiscard]] const std::string& name() const noexcept { return address_.display; }
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  // Why the node is not connected, if it is not ("" otherwise).
  [[nodiscard]] const std::string& last_error() const noexcept { return last_error_; }
  // Set when the node must not count toward a majority at `now` (restart-
  // aware voting): why, and for how long, for the round's per-node detail.
  [[nodiscard]] std::optional<std::string> vote_block(Clock::time_point now) const;
  // From when the node may vote again after a restart (restart grace).
  [[nodiscard]] Clock::time_point votes_from() const noexcept { return votes_from_; }
  // The node's run_id as its last handshake reported it ("" if unknown).
  [[nodiscard]] const std::string& run_id() const noexcept { return run_id_; }
  // Clock sanity: asks the node for its TIME, unless it is not connected,
  // refused TIME on this connection, or has not answered the last one.
  void sample_clock();
  [[nodiscard]] const ClockCheck& clock() const noexcept { return clock_; }
  // Where the node's commands go now and with which credentials, for its
  // release subscriber (subscriber.cpp). Unset while a Sentinel-managed
  // node's master is not known.
  [[nodiscard]] std::optional<Endpoint> endpoint() const;

 private:
  struct Conn;
  enum class State : std::uint8_t {
    kIdle,
    kResolving,   // asking a sentinel for the master's address
    kConnecting,  // TCP or Unix connect in progress
    kHandshake,   // AUTH, SELECT, mode check: not ready for commands yet
    kConnected,
    kBackoff,
    kClosed
  };
  struct Pending {
    std::shared_ptr<Operation> op;
    std::uint32_t tag;
    std::shared_ptr<const std::string> fallback;
  };
  struct Cleanup {
    std::vector<std::string> keys;
    std::string token;
    Clock::time_point until;
  };
  class SetupOp;
  class ClockOp;

  static void on_connect_cb(uv_connect_t* req, int status);
  static void on_alloc_cb(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write_cb(uv_write_t* req, int status);
  static void on_timer_cb(uv_timer_t* timer);

  void connect();
  void open_conn(const sockaddr* addr);
  void on_connected();
  void on_ready();
  void on_sentinel_reply(const Reply* reply, std::string_view failure);
  void on_handshake_reply(std::size_t step, const Reply* reply, std::string_view failure);
  void note_server_info(std::string_view info);
  void on_read(ssize_t nread, const uv_buf_t* buf);
  // kSentinel: a subscription to +switch-master on one sentinel, so a
  // failover is followed at once, not only when the old master fails.
  void start_watch();
  void on_watch_connected(int status);
  void on_watch_read(ssize_t nread, const uv_buf_t* buf);
  void fail_watch(const std::string& why);
  void fail_connection(const std::string& why, bool permanent = false);
  void drop_conn();
  void replay_cleanup();
  void on_time_reply(const Reply* reply);
  // Forgets the clock samples (another server, or one that restarted).
  void reset_clock();
  bool push(std::string_view wire, std::shared_ptr<Operation> op, std::uint32_t tag,
            std::shared_ptr<const std::string> fallback);

  Engine& engine_;
  std::size_t index_;
  NodeAddress address_;
  std::vector<sockaddr_storage> addrs_;
  std::string username_;
  std::string password_;
  std::optional<sockaddr_storage> master_;  // kSentinel: the master the sentinels named
  std::size_t sentinel_ = 0;                // kSentinel: which one to ask next
  std::size_t handshake_left_ = 0;
  State state_ = State::kIdle;
  std::atomic<bool> connected_flag_{false};
  // Read by any thread (Client::quorum_available, metrics): when the oldest
  // unanswered command was sent or last saw progress (0: nothing waits), and
  // from when the node may vote (restart grace; clock exclusion).
  std::atomic<Clock::rep> waiting_since_{0};
  std::atomic<Clock::rep> votes_from_any_{0};
  std::atomic<bool> clock_excluded_{false};
  std::string version_;
  std::optional<std::chrono::seconds> uptime_;  // at handshake_at_
  Clock::time_point handshake_at_{};
  bool reported_first_attempt_ = false;
  bool ever_connected_ = false;
  int failures_ = 0;
  std::string last_error_;
  std::string run_id_;
  Clock::time_point votes_from_{};  // restart-aware voting: no vote before this
  std::string not_voting_why_;      // what set votes_from_
  ClockCheck clock_;                // clock sanity: this node's TIME samples
  std::string clock_run_id_;        // the run_id the samples are from
  std::shared_ptr<Operation> clock_op_;
  Clock::time_point time_sent_{};
  bool time_outstanding_ = false;
  bool time_refused_ = false;  // on this connection
  bool time_refusal_reported_ = false;
  Conn* conn_ = nullptr;   // the live connection, or null
  uv_timer_t timer_{};     // connect deadline, then reconnect backoff
  Conn* watch_ = nullptr;  // kSentinel: the +switch-master subscription
  uv_timer_t watch_timer_{};
  std::unique_ptr<ReplyParser> watch_parser_;
  std::size_t watch_sentinel_ = 0;
  std::string out_;  // formatted commands not yet handed to the socket
  bool dirty_ = false;
  std::deque<Pending> pending_;  // sent or queued, awaiting replies, in order
  std::unique_ptr<ReplyParser> parser_;
  std::deque<Cleanup> cleanup_;  // oldest first; dropped from the front when full
  std::vector<char> read_buf_;

  friend class Engine;
};

// A node that leaves a command unanswered for this long is not "answering":
// health reports and metrics say so, and it does not count toward
// Client::quorum_available(). (Its votes fail by the node timeout anyway.)
inline constexpr std::chrono::milliseconds kStallThreshold{1000};

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Any thread. Validates, resolves the nodes, starts the loop thread and
  // waits up to connect_timeout for every node's first connection attempt.
  [[nodiscard]] static Result<std::shared_ptr<Engine>> start(ClientOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Any thread; idempotent. Refuses new work, completes pending operations
  // with kShuttingDown, closes the connections and joins the loop thread
  // (detaches it when called on the loop thread itself).
  void shutdown() noexcept;

  // Any thread. Errors (kInvalidArgument, kShuttingDown) are returned and
  // the callback is then never called; otherwise it runs once on the loop.
  [[nodiscard]] Result<void> post_acquire(std::vector<std::string> resources, milliseconds ttl,
                                          const AcquireOptions& options, AcquireCallback callback);
  [[nodiscard]] Result<void> post_extend(const Lock& lock, milliseconds ttl,
                                         const ExtendOptions& options, AcquireCallback callback);
  // A null callback makes a fire-and-forget release.
  [[nodiscard]] Result<void> post_release(const Lock& lock, ReleaseCallback callback);
  // Runs `task` on the loop thread. Error: kShuttingDown (then it never runs).
  [[nodiscard]] Result<void> post(std::function<void()> task);

  [[nodiscard]] bool on_loop_thread() const noexcept;
  [[nodiscard]] const ClientOptions& options() const noexcept { return options_; }
  // ClientOptions::restart_grace, resolved (0: restart-aware voting off).
  [[nodiscard]] milliseconds restart_grace() const noexcept { return restart_grace_; }
  // The nodes as ClientOptions::nodes gave them, passwords hidden.
  [[nodiscard]] const std::vector<std::string>& node_names() const noexcept { return node_names_; }
  [[nodiscard]] std::vector<bool> connected() const;
  // Any thread: whether a majority of the nodes votes now.
  [[nodiscard]] bool quorum_available() const;
  // Any thread. Errors (kInvalidArgument, kShuttingDown) are returned and
  // the callback is then never called.
  [[nodiscard]] Result<void> post_health(milliseconds timeout, HealthCallback callback);

  // Loop thread only, for nodes and operations.
  using TimerId = std::uint64_t;
  TimerId schedule(Clock::time_point when, std::function<void()> fn);
  void cancel(TimerId id);
  void mark_dirty(Node& node);
  // Something happened on the loop (a reply, a request, a write): busy
  // polling goes on for another ClientOptions::busy_poll.
  void note_activity() noexcept { ++activity_; }
  // Hands every dirty node's queued bytes to its socket. I/O callbacks leave
  // this to the check phase that follows them; timer callbacks, which run
  // before the loop polls, call it themselves.
  void flush_dirty();
  void add_active(const std::shared_ptr<Operation>& op);
  void remove_active(Operation* op);
  [[nodiscard]] double random_unit();
  [[nodiscard]] bool stopping() const noexcept { return stopping_loop_; }
  [[nodiscard]] uv_loop_t* loop() noexcept { return &loop_; }
  [[nodiscard]] std::vector<std::unique_ptr<Node>>& nodes() noexcept { return nodes_; }
  [[nodiscard]] spdlog::logger& log() const noexcept { return *logger_; }
  [[nodiscard]] Metrics& metrics() noexcept { return *metrics_; }
  [[nodiscard]] MetricsSnapshot metrics_snapshot() const;
  void report_first_attempt();
  // Wake-on-release (subscriber.hpp): `on_release` runs each time a node
  // announces the release of one of `keys`, until unwatch_releases(id).
  // 0: not watching (shutting down).
  [[nodiscard]] WakeHub::WatchId watch_releases(const std::vector<std::string>& keys,
                                                std::function<void()> on_release);
  void unwatch_releases(WakeHub::WatchId id);
  // Node `node` is connected (again): its release subscriber may follow.
  void node_ready(std::size_t node);
  // Sends the compare-and-delete for (keys, token) to the nodes in `targets`
  // (all when empty), reporting to `callback` unless it is null. `announce`:
  // each node publishes the keys it deleted, waking their waiters; only for a
  // lock's release, never for a failed round's cleanup (the waiter would wake
  // itself, and a key held by a majority elsewhere is not free).
  void start_release(std::vector<std::string> keys, std::string token, Clock::time_point key_expiry,
                     std::vector<bool> targets, ReleaseCallback callback, bool announce = false);
  // One extension round for `lock` (validated by the caller).
  void start_extend(const Lock& lock, milliseconds ttl, const ExtendOptions& options,
                    AcquireCallback callback);

 private:
  explicit Engine(ClientOptions options);
  void run();
  // uv_run, with ClientOptions::busy_poll: after each wake-up the loop polls
  // without sleeping until nothing happened for that long.
  void run_loop();
  void on_async();
  void wake() noexcept;  // with mutex_ held
  void on_timer();
  void arm_timer();
  void begin_shutdown();
  // Clock sanity: a TIME to every node, every clock_check_interval.
  void clock_tick();

  // Declaration order is destruction order: the nodes (and the operations
  // their queues keep alive) go before the loop they were registered with.
  ClientOptions options_;
  milliseconds restart_grace_{0};
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<Metrics> metrics_;
  uv_loop_t loop_{};
  // Wakes the loop for posted tasks and shutdown. Not a uv_async_t: before
  // libuv 1.45 (Debian 12 ships 1.44) the loop thread busy-waits in
  // uv__async_io until the posting thread has returned from its own eventfd
  // write, which takes long when that thread was preempted (libuv#2769,
  // removed by libuv#3879). An eventfd written under mutex_ and read by a
  // uv_poll_t has no such wait.
  int wake_fd_ = -1;
  uv_poll_t wake_poll_{};
  // Runs after each poll phase: writes what the I/O callbacks of that phase
  // queued, one write per node per loop iteration however many replies came
  // in. Unreferenced: it never keeps the loop alive.
  uv_check_t flush_check_{};
  uv_timer_t timer_{};           // the scheduler's single timer
  uv_timer_t shutdown_timer_{};  // forces handles closed if a shutdown stalls
  bool loop_ready_ = false;
  std::vector<std::string> node_names_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unique_ptr<WakeHub> wake_;  // refers to the nodes: destroyed first

  std::mutex mutex_;  // guards tasks_, stopping_, first_attempts_
  std::condition_variable cv_;
  std::vector<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::size_t first_attempts_ = 0;

  bool stopping_loop_ = false;  // loop thread's view
  std::map<std::pair<Clock::time_point, TimerId>, std::function<void()>> timers_;
  std::unordered_map<TimerId, Clock::time_point> timer_index_;
  TimerId next_timer_ = 1;
  std::uint64_t activity_ = 0;  // note_activity()'s count
  std::vector<Node*> dirty_;
  std::vector<Node*> spare_dirty_;                  // flush_dirty's, kept for its capacity
  std::vector<std::function<void()>> spare_tasks_;  // on_async's, likewise
  std::unordered_map<Operation*, std::shared_ptr<Operation>> active_;
  std::mt19937_64 rng_;

  std::thread thread_;
  std::atomic<std::thread::id> loop_thread_id_{};
};

}  // namespace redlock::detail
