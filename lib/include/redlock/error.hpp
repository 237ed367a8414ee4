// redlock/error.hpp: the error type every redlock operation returns.
//
// An Error names what went wrong with one code (the most specific that
// applies), a human-readable message and, where nodes were asked, what each
// node answered. Errors are plain values: copy them, move them, print them.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "redlock/export.hpp"

namespace redlock {

enum class ErrorCode : std::uint8_t {
  kInvalidArgument,    // bad resource name, ttl, option or node address
  kHeldByAnother,      // a majority could not be had because another token holds the key
  kNoQuorum,           // too few nodes answered yes, for reasons other than a holder
  kValidityExhausted,  // a majority agreed, but too late: no useful validity was left
  kLockWaitTimeout,    // AcquireOptions::max_wait ran out before a lock was granted
  kCancelled,          // the caller cancelled the operation
  kShuttingDown,       // the client is shutting down or has shut down
  kWrongThread,        // a blocking call was made from the client's own loop thread
  kInternal,           // the engine itself failed (event loop, allocation)
  kNotOwner,           // extend: a majority no longer holds the lock's token
  kExpired,            // extend: the lock's validity had already ended
  kLockLost,           // with_lock: the lock was lost while the function ran
};

[[nodiscard]] REDLOCK_EXPORT std::string_view to_string(ErrorCode code) noexcept;
REDLOCK_EXPORT std::ostream& operator<<(std::ostream& os, ErrorCode code);

// What one node answered to one command.
enum class NodeStatus : std::uint8_t {
  kOk,            // did what was asked (SET succeeded, key deleted or extended)
  kRefused,       // answered, but no (SET NX found the key; release found another token)
  kError,         // answered with a Redis error
  kTimeout,       // no answer within the node timeout
  kDisconnected,  // not connected: failed at once, never queued
  kPending,       // the operation was decided before this node answered
  kNotVoting,     // left out of the vote: restarted too recently, or its clock is suspect
};

[[nodiscard]] REDLOCK_EXPORT std::string_view to_string(NodeStatus status) noexcept;
REDLOCK_EXPORT std::ostream& operator<<(std::ostream& os, NodeStatus status);

struct NodeResult {
  std::string node;  // "host:port", as given in ClientOptions::nodes
  NodeStatus status = NodeStatus::kPending;
  std::string detail;                // Redis error text or connection error, if any
  std::chrono::microseconds rtt{0};  // send to reply; 0 if there was no reply
};

class Error {
 public:
  Error() = default;
  Error(ErrorCode code, std::string message, std::vector<NodeResult> nodes = {})
      : code_(code), message_(std::move(message)), nodes_(std::move(nodes)) {}

  [[nodiscard]] ErrorCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  // Per-node detail of the last round, in ClientOptions::nodes order; empty
  // when no node was asked (bad argument, shutting down).
  [[nodiscard]] const std::vector<NodeResult>& nodes() const noexcept { return nodes_; }

 private:
  ErrorCode code_ = ErrorCode::kInternal;
  std::string message_;
  std::vector<NodeResult> nodes_;
};

// "<code>: <message> [node1=status(detail), ...]"
[[nodiscard]] REDLOCK_EXPORT std::string to_string(const Error& error);
REDLOCK_EXPORT std::ostream& operator<<(std::ostream& os, const Error& error);

}  // namespace redlock
