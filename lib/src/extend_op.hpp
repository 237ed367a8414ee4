// extend_op.hpp: one round of the compare-and-pexpire script, decided within
// the lock's remaining validity.
#pragma once

#include "quorum_op.hpp"
#include "redlock/callbacks.hpp"
#include "redlock/lock.hpp"

namespace redlock::detail {

// Starts an extension of `lock` to `ttl` (validated by the caller); the
// callback runs once, on the loop.
void start_extend(const OpContext& ctx, const Lock& lock, milliseconds ttl,
                  const ExtendOptions& options, AcquireCallback callback);

}  // namespace redlock::detail
