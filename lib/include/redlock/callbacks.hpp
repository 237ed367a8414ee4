// redlock/callbacks.hpp: the callback types of the asynchronous calls.
//
// Each runs exactly once, on the client's loop thread, never inline from the
// call that started the operation, and must not block (a blocking call made
// from it fails with ErrorCode::kWrongThread). A call that returns an error
// never calls back.
#pragma once

#include <functional>

#include "redlock/health.hpp"
#include "redlock/lock.hpp"
#include "redlock/result.hpp"

namespace redlock {

using AcquireCallback = std::function<void(Result<Lock>)>;
using ReleaseCallback = std::function<void(Result<ReleaseReport>)>;
using HealthCallback = std::function<void(Result<HealthReport>)>;
using InspectCallback = std::function<void(Result<LockState>)>;

}  // namespace redlock
