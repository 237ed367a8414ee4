// health_op.hpp: each node's state as the engine knows it, completed by what
// each connected node says of itself (INFO; CONFIG GET appendfsync).
#pragma once

#include "operation.hpp"
#include "redlock/callbacks.hpp"

namespace redlock::detail {

// Starts a health report (`timeout` validated by the caller); the callback
// runs once, on the loop, after every node answered or `timeout` passed.
void start_health(const OpContext& ctx, milliseconds timeout, HealthCallback callback);

}  // namespace redlock::detail
