// redlock/tools/redis_connection.hpp: RedisConnection, one blocking
// connection to one Redis server for one-off commands (PING, INFO, DBSIZE,
// SCAN, SHUTDOWN, DEBUG SLEEP, ...), over hiredis's blocking API (the subset
// that hiredis 0.14 and 1.x share). Not for locks: those go through
// redlock::Client.
//
// Every call is bounded by the timeout given to open(), for the connect and
// for each reply. SIGPIPE is blocked on the calling thread while a
// connection exists, so a server that dies under it is an error, never a
// signal that kills the process.
//
// Threading: a RedisConnection is used by one thread (the one that opened
// it: the SIGPIPE mask is per thread). Functions on replies are pure.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace redlock::tools {

// A reply, converted from hiredis's redisReply.
struct RedisReply {
  enum class Type { kString, kStatus, kInteger, kNil, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // string, status and error replies
  long long integer = 0;
  std::vector<RedisReply> elements;

  [[nodiscard]] bool is_error() const noexcept { return type == Type::kError; }
};

class RedisConnection {
 public:
  // Connects to host:port (TCP) within `timeout`, which then also bounds
  // each reply. Error: "connect: <why>" ("Connection refused", "timed out").
  [[nodiscard]] static tl::expected<RedisConnection, std::string> open(
      const std::string& host, int port, std::chrono::milliseconds timeout);

  RedisConnection(RedisConnection&&) noexcept;
  RedisConnection& operator=(RedisConnection&&) noexcept;
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();

  // Sends the command and waits for its reply. A Redis error reply is a
  // reply (type kError), not an error: the error side is for I/O ("timed out
  // after N ms", "connection closed by the server", ...). After an I/O error
  // the connection is unusable.
  [[nodiscard]] tl::expected<RedisReply, std::string> run(const std::vector<std::string>& argv);

  // Writes the command out without reading any reply (DEBUG SLEEP, SHUTDOWN:
  // the server stalls or goes away instead of answering).
  [[nodiscard]] tl::expected<void, std::string> send(const std::vector<std::string>& argv);

 private:
  struct State;
  explicit RedisConnection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The reply as text: status, string and error replies as they are, integers
// in decimal, nil as "(nil)", arrays one element per line.
[[nodiscard]] std::string reply_text(const RedisReply& reply);

// The value of `field` in an INFO reply ("field:value" lines, "\r\n" or
// "\n"); nullopt if the field is not there.
[[nodiscard]] std::optional<std::string> info_field(std::string_view info, std::string_view field);

}  // namespace redlock::tools
