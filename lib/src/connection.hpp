// connection.hpp: one connection to a Redis server or a Sentinel, kept up.
//
// Every socket the engine opens is a Connection: a node's data connection,
// its release subscriber, and the Sentinel query and watch. A Connection
// resolves its owner's endpoint on every attempt (host names asynchronously,
// on libuv's thread pool; every address in order), connects within
// connect_timeout, sends the handshake (AUTH, SELECT, then the owner's own
// commands), and then hands each reply to its owner in order. Writes are
// queued and handed to the socket once per loop iteration (Loop::defer_flush).
// When anything fails it tells its owner and tries again after a capped
// exponential backoff (the slowest pace for refusals that will not go away by
// themselves, like a wrong password).
//
// An endpoint that says TLS gets a TLS handshake right after the TCP connect
// (a TlsSession between the socket and everything else, tls.hpp): the Redis
// handshake and every byte after it go through it, and a certificate that
// does not verify is a refusal like a wrong password. There is no plain-text
// fallback.
//
// Threading: the loop thread only. Ownership: the owner owns the Connection
// and outlives it; the Connection owns one socket at a time, and a socket
// frees itself in its close callback (once detached, its callbacks do
// nothing), so the Connection itself never waits for libuv.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "address.hpp"
#include "loop.hpp"
#include "protocol.hpp"
#include "redlock/result.hpp"
#include "tls.hpp"

namespace redlock::detail {

class Connection final : public Flushable {
 public:
  enum class State : std::uint8_t {
    kIdle,        // not connected, and not trying (start() connects)
    kResolving,   // looking up the endpoint's host name
    kConnecting,  // TCP or Unix connect in progress
    kHandshake,   // connected; AUTH, SELECT and the owner's commands sent
    kReady,       // the handshake is done: replies go to the owner
    kBackoff,     // failed; trying again when the backoff ends
    kClosed       // close() was called: never again
  };

  // The steps of the handshake, in the order they are sent.
  enum class Step : std::uint8_t { kAuth, kSelect, kOwner };

  // What the owner says of one of its handshake replies.
  struct Refusal {
    std::string why;
    bool permanent = false;  // retry at the slowest pace (reconnect_max)
  };

  class Owner {
   public:
    // Where to connect now. Unset: nowhere yet; the connection goes idle
    // until start() is called again.
    virtual std::optional<Endpoint> endpoint() = 0;
    // The owner's handshake commands, sent after AUTH and SELECT.
    virtual void handshake(std::vector<std::string>& commands) { (void)commands; }
    // The reply to the owner's handshake command `index`. A refusal fails
    // the connection.
    virtual std::optional<Refusal> on_handshake_reply(std::size_t index, const Reply& reply) {
      (void)index;
      (void)reply;
      return std::nullopt;
    }
    // The handshake is done: commands may be written.
    virtual void on_ready() = 0;
    // A reply after the handshake, in the order of the commands. The owner
    // may fail, restart or close the connection from here.
    virtual void on_reply(Reply& reply) = 0;
    // The connection failed, or was lost (never after close()). It tries
    // again by itself after the backoff.
    virtual void on_down(const std::string& why, bool permanent) = 0;

   protected:
    virtual ~Owner() = default;
  };

  struct Settings {
    milliseconds connect_timeout{1000};
    milliseconds reconnect_min{50};
    milliseconds reconnect_max{2000};
    std::size_t read_buffer = 16 * 1024;
    // For endpoints that say TLS; it outlives the connection. Without one
    // such an endpoint is refused.
    TlsContext* tls = nullptr;
  };

  Connection(Loop& loop, Owner& owner, Settings settings);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects now if idle or waiting out a backoff; otherwise nothing.
  void start();
  // Drops the connection (the owner hears on_down) and tries again after
  // the backoff.
  void fail(const std::string& why, bool permanent = false);
  // Drops the connection (the owner hears on_down) and connects again at
  // once, with the backoff reset: the endpoint moved.
  void restart(const std::string& why);
  // Drops the connection without a word to the owner, and stays idle.
  void reset();
  // For good. A ready connection first writes what is queued and shuts the
  // socket down gracefully.
  void close();

  // Queues bytes for the socket (written in the loop iteration's check
  // phase). Ignored unless connected (handshake or ready).
  void write(std::string_view bytes);
  void flush() override;

  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] bool ready() const noexcept { return state_ == State::kReady; }
  // Failed attempts since the last ready connection.
  [[nodiscard]] int failures() const noexcept { return failures_; }
  // Why the last attempt failed or the connection was lost ("" once ready).
  [[nodiscard]] const std::string& last_error() const noexcept { return last_error_; }
  // The endpoint of the current attempt or connection, with the address
  // connected to in place of a host name (so that a second connection goes
  // to the very same server). Unset unless connected.
  [[nodiscard]] std::optional<Endpoint> peer() const;
  // The endpoint of the current or last attempt, as the owner gave it.
  [[nodiscard]] const Endpoint& target() const noexcept { return endpoint_; }
  // What the TLS handshake of the current connection established; null
  // unless it is a TLS connection past its TLS handshake.
  [[nodiscard]] const TlsPeer* tls_peer() const noexcept {
    return tls_ && tls_->established() ? &tls_->peer() : nullptr;
  }

 private:
  struct Socket;
  struct ResolveJob;

  void connect_next();
  void on_resolved(Result<std::vector<sockaddr_storage>> addrs);
  void try_address();
  void on_connected(int status);
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void on_plaintext(const char* data, std::size_t size);
  bool start_tls();
  [[nodiscard]] const std::string& tls_name() const noexcept;
  void redis_handshake();
  void on_handshake_reply(Reply& reply);
  void on_write_done(int status);
  void drop(const std::string& why, bool permanent, bool tell_owner, bool retry_now);
  void arm_deadline();
  void cancel_timer();
  void detach_socket();

  Loop& loop_;
  Owner& owner_;
  Settings settings_;
  State state_ = State::kIdle;
  Endpoint endpoint_;  // of the current attempt
  std::vector<sockaddr_storage> addrs_;
  std::size_t addr_index_ = 0;
  std::string attempt_errors_;  // per address, for the failure message
  Socket* socket_ = nullptr;
  ResolveJob* resolving_ = nullptr;
  Scheduler::TimerId timer_ = 0;  // the stage's deadline, or the backoff
  std::unique_ptr<ReplyParser> parser_;
  std::vector<char> read_buf_;
  std::string out_;                  // bytes not yet handed to the socket (or to TLS)
  std::unique_ptr<TlsSession> tls_;  // TLS endpoints: the current attempt's
  std::string plain_;                // TLS endpoints: what a read decrypted
  std::vector<Step> steps_;          // handshake replies still awaited, in order
  std::size_t owner_step_ = 0;
  int failures_ = 0;
  std::string last_error_;
};

}  // namespace redlock::detail
