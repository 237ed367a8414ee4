// redlock/tools/lock_failure.hpp: why a lock could not be had, in the terms
// a tool reports to its user: the lock is busy (held by another, or
// contended), the nodes answer but too few of them may vote now, or too few
// answer at all. Read from the per-node statuses of the last round, so that a
// wait that ran out (kLockWaitTimeout) says which of these it was.
//
// Pure functions on values: thread-safe, no I/O.
#pragma once

#include <cstddef>

#include "redlock/error.hpp"

namespace redlock::tools {

enum class LockFailure {
  kBusy,         // a majority voted: another holder has the lock, or contenders split it
  kNotVoting,    // a majority answers, but too few may vote now (restart grace, suspect clocks)
  kUnavailable,  // fewer than a majority answered: down, stalled, or refusing with errors
  kOther,        // not a failure to get the lock: bad argument, cancelled, shutting down, ...
};

struct VoteCount {
  std::size_t voted = 0;       // answered yes or no (kOk, kRefused)
  std::size_t not_voting = 0;  // reachable, left out of the vote (kNotVoting)
  std::size_t other = 0;       // errors, timeouts, not connected, never asked
};

[[nodiscard]] VoteCount count_votes(const Error& error);

// The kind of failure of an acquire (or extend) that ended with `error`,
// for a cluster whose majority is `quorum`.
[[nodiscard]] LockFailure classify_lock_failure(const Error& error, std::size_t quorum);

}  // namespace redlock::tools
