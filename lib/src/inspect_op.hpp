// inspect_op.hpp: whether a resource is locked, asked of the nodes without
// taking anything (PTTL of its lock key on each voting node).
#pragma once

#include <string>

#include "operation.hpp"
#include "redlock/callbacks.hpp"

namespace redlock::detail {

// Starts an inspection of `resource` (resource and `timeout` validated by the
// caller); the callback runs once, on the loop, as soon as the answers decide
// it, or when every node answered or `timeout` passed.
void start_inspect(const OpContext& ctx, std::string resource, milliseconds timeout,
                   InspectCallback callback);

}  // namespace redlock::detail
