#include "redlock/error.hpp"

#include <ostream>

namespace redlock {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kHeldByAnother:
      return "held by another";
    case ErrorCode::kNoQuorum:
      return "no quorum";
    case ErrorCode::kValidityExhausted:
      return "validity exhausted";
    case ErrorCode::kLockWaitTimeout:
      return "lock wait timeout";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kShuttingDown:
      return "shutting down";
    case ErrorCode::kWrongThread:
      return "wrong thread";
    case ErrorCode::kInternal:
      return "internal error";
    case ErrorCode::kNotOwner:
      return "not owner";
    case ErrorCode::kExpired:
      return "expired";
    case ErrorCode::kLockLost:
      return "lock lost";
  }
  return "unknown error";
}

std::string_view to_string(NodeStatus status) noexcept {
  switch (status) {
    case NodeStatus::kOk:
      return "ok";
    case NodeStatus::kRefused:
      return "refused";
    case NodeStatus::kError:
      return "error";
    case NodeStatus::kTimeout:
      return "timeout";
    case NodeStatus::kDisconnected:
      return "disconnected";
    case NodeStatus::kPending:
      return "pending";
    case NodeStatus::kNotVoting:
      return "not voting";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, ErrorCode code) { return os << to_string(code); }
std::ostream& operator<<(std::ostream& os, NodeStatus status) { return os << to_string(status); }

std::string to_string(const Error& error) {
  std::string out(to_string(error.code()));
  if (!error.message().empty()) {
    out += ": ";
    out += error.message();
  }
  if (!error.nodes().empty()) {
    out += " [";
    bool first = true;
    for (const auto& n : error.nodes()) {
      if (!first) out += ", ";
      first = false;
      out += n.node;
      out += '=';
      out += to_string(n.status);
      if (!n.detail.empty()) {
        out += '(';
        out += n.detail;
        out += ')';
      }
    }
    out += ']';
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const Error& error) { return os << to_string(error); }

}  // namespace redlock
