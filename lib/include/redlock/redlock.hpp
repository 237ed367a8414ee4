// redlock/redlock.hpp: the umbrella header; includes the whole public API.
#pragma once

#include "redlock/callbacks.hpp"
#include "redlock/client.hpp"
#include "redlock/error.hpp"
#include "redlock/health.hpp"
#include "redlock/lock.hpp"
#include "redlock/lock_guard.hpp"
#include "redlock/metrics.hpp"
#include "redlock/options.hpp"
#include "redlock/result.hpp"
#include "redlock/version.hpp"
