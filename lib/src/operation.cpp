#include "operation.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "text.hpp"

namespace redlock::detail {

void ActiveOps::abort_all() {
  std::vector<std::shared_ptr<Abortable>> ops;
  ops.reserve(ops_.size());
  for (auto& [_, op] : ops_) ops.push_back(op);
  for (auto& op : ops) op->abort();
  ops_.clear();
}

void log_callback_exception(spdlog::logger& log, const char* what) {
  if (what != nullptr) {
    log.error("a redlock callback threw: {}", what);
  } else {
    log.error("a redlock callback threw a non-standard exception");
  }
}

void deliver(spdlog::logger& log, AcquireDone& to, Result<Lock> result) {
  if (auto* callback = std::get_if<AcquireCallback>(&to)) {
    invoke_user(log, *callback, std::move(result));
  } else {
    std::get<std::promise<Result<Lock>>>(to).set_value(std::move(result));
  }
}

std::shared_ptr<Operation> discard_op() {
  struct Discard final : Operation {
    void on_reply(std::size_t, std::uint32_t, const Reply*, std::string_view) override {}
  };
  static const auto op = std::make_shared<Discard>();
  return op;
}

std::string describe(const std::vector<std::string>& resources) {
  if (resources.size() == 1) return "resource " + quote_bytes(resources.front());
  std::string out = "resources {";
  for (std::size_t i = 0; i < resources.size(); ++i) {
    if (i > 0) out += ", ";
    out += quote_bytes(resources[i]);
  }
  return out + "}";
}

std::string format_ms(Clock::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(us) / 1000.0);
  return buf;
}

NodeResult node_result(const std::string& name, NodeStatus status, std::string detail,
                       std::chrono::microseconds rtt) {
  return NodeResult{name, status, std::move(detail), rtt};
}

}  // namespace redlock::detail
