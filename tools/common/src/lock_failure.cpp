#include "redlock/tools/lock_failure.hpp"

namespace redlock::tools {

VoteCount count_votes(const Error& error) {
  VoteCount out;
  for (const auto& node : error.nodes()) {
    switch (node.status) {
      case NodeStatus::kOk:
      case NodeStatus::kRefused:
        ++out.voted;
        break;
      case NodeStatus::kNotVoting:
        ++out.not_voting;
        break;
      case NodeStatus::kError:
      case NodeStatus::kTimeout:
      case NodeStatus::kDisconnected:
      case NodeStatus::kPending:
        ++out.other;
        break;
    }
  }
  return out;
}

LockFailure classify_lock_failure(const Error& error, std::size_t quorum) {
  switch (error.code()) {
    case ErrorCode::kHeldByAnother:
      return LockFailure::kBusy;
    case ErrorCode::kValidityExhausted:
      // A majority agreed, but too slowly to leave a useful lock.
      return LockFailure::kUnavailable;
    case ErrorCode::kNoQuorum:
    case ErrorCode::kLockWaitTimeout:
      break;
    default:
      return LockFailure::kOther;
  }
  // No round to tell: a wait that ran out is taken as busy, no quorum as
  // unavailable.
  if (error.nodes().empty()) {
    return error.code() == ErrorCode::kLockWaitTimeout ? LockFailure::kBusy
                                                       : LockFailure::kUnavailable;
  }
  const VoteCount votes = count_votes(error);
  // A majority voted: the nodes work, and the lock went to someone else or
  // to nobody (split votes, a grant that came too late).
  if (votes.voted >= quorum) return LockFailure::kBusy;
  if (votes.voted + votes.not_voting >= quorum) return LockFailure::kNotVoting;
  return LockFailure::kUnavailable;
}

}  // namespace redlock::tools
