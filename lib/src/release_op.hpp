// release_op.hpp: compare-and-delete of a lock's keys on a set of nodes.
#pragma once

#include <string>
#include <vector>

#include "operation.hpp"
#include "redlock/callbacks.hpp"

namespace redlock::detail {

// Deletes the keys of `resources` that still hold `token` on the nodes in
// `targets` (every node when empty), reporting to `callback` once each node
// answered or release_timeout passed, or, with ClientOptions::release_wait
// kMajority, as soon as a majority of all the nodes deleted them (nothing is
// reported when it is null). The operation lives on until every node asked
// has answered.
// A node that is down remembers the release and runs it when it is back,
// until `key_expiry`. `announce`: each node publishes the release of what it
// deleted, waking its waiters; only for a lock's release, never for a failed
// round's cleanup (the waiter would wake itself, and a key held by a
// majority elsewhere is not free).
void start_release(const OpContext& ctx, std::vector<std::string> resources, std::string token,
                   Clock::time_point key_expiry, std::vector<bool> targets,
                   ReleaseCallback callback, bool announce = false);

}  // namespace redlock::detail
