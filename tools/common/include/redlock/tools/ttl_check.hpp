// redlock/tools/ttl_check.hpp: whether a lock ttl can work with the client's
// settings, checked before the library is asked, so that a tool refuses a
// ttl in the terms of its own flags rather than the library's fields.
//
// Pure function: thread-safe, no I/O.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace redlock::tools {

// How the tool calls the settings involved.
struct TtlFlags {
  std::string_view ttl = "--ttl";
  std::string_view max_ttl = "--max-ttl";
  std::string_view node_timeout = "--node-timeout";
};

// Why `ttl` cannot be used with `max_ttl` and `node_timeout` (unset: the
// library's default, ttl / 200 within 10 ms to 250 ms), with the default
// drift allowance (1% + 2 ms), in `flags`' terms; nullopt if it can. Every
// ttl this lets through, Client::acquire accepts (tested).
[[nodiscard]] std::optional<std::string> ttl_problem(
    std::chrono::milliseconds ttl, std::chrono::milliseconds max_ttl,
    std::optional<std::chrono::milliseconds> node_timeout, const TtlFlags& flags = {});

}  // namespace redlock::tools
