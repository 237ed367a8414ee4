#include "metrics.hpp"

#include <cmath>
#include <cstdio>

namespace redlock::detail {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

static_assert(static_cast<std::size_t>(ErrorCode::kLockLost) + 1 == kErrorCodeCount,
              "kErrorCodeCount must count every ErrorCode");

// Microseconds: from a loopback round trip to a stalled multi-second wait.
const std::vector<double>& latency_bounds() {
  static const std::vector<double> b = {50,     100,   250,   500,   1000,   2500,
                                        5000,   10000, 25000, 50000, 100000, 250000,
                                        500000, 1e6,   2.5e6, 5e6,   10e6};
  return b;
}

const std::vector<double>& rounds_bounds() {
  static const std::vector<double> b = {1, 2, 3, 5, 10, 20, 50, 100};
  return b;
}

}  // namespace

AtomicHistogram::AtomicHistogram(const std::vector<double>& upper_bounds)
    : bounds_(upper_bounds),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(upper_bounds.size() + 1)) {}

void AtomicHistogram::observe(double value) noexcept {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, kRelaxed);
  count_.fetch_add(1, kRelaxed);
  // One writer (the loop thread): a load and a store, no compare-exchange.
  sum_.store(sum_.load(kRelaxed) + value, kRelaxed);
}

Histogram AtomicHistogram::snapshot() const {
  Histogram h;
  h.upper_bounds = bounds_;
  h.counts.resize(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) h.counts[i] = counts_[i].load(kRelaxed);
  h.count = count_.load(kRelaxed);
  h.sum = sum_.load(kRelaxed);
  return h;
}

Metrics::PerNode::PerNode() : rtt(latency_bounds()) {}

Metrics::Metrics(std::size_t nodes, std::shared_ptr<MetricsSink> sink)
    : sink_(std::move(sink)), acquire_latency_(latency_bounds()), rounds_(rounds_bounds()) {
  for (std::size_t i = 0; i < nodes; ++i) nodes_.push_back(std::make_unique<PerNode>());
}

void Metrics::acquire(std::chrono::microseconds latency, int rounds, const Error* error) {
  acquire_latency_.observe(static_cast<double>(latency.count()));
  rounds_.observe(rounds);
  if (error == nullptr) {
    granted_.fetch_add(1, kRelaxed);
  } else {
    const auto code = static_cast<std::size_t>(error->code());
    if (code < failed_.size()) failed_[code].fetch_add(1, kRelaxed);
  }
  if (sink_) sink_->on_acquire(latency, rounds, error);
}

void Metrics::node_reply(std::size_t node, NodeStatus status, std::chrono::microseconds rtt) {
  auto& n = *nodes_[node];
  if (status == NodeStatus::kTimeout) {
    n.timeouts.fetch_add(1, kRelaxed);
  } else if (status == NodeStatus::kError || status == NodeStatus::kDisconnected) {
    n.errors.fetch_add(1, kRelaxed);
  }
  if (status == NodeStatus::kOk || status == NodeStatus::kRefused) {
    n.rtt.observe(static_cast<double>(rtt.count()));
  }
  if (sink_) sink_->on_node_reply(node, status, rtt);
}

void Metrics::contended_round() {
  contended_.fetch_add(1, kRelaxed);
  if (sink_) sink_->on_contended_round();
}

void Metrics::extend(bool ok) {
  (ok ? extensions_ : extensions_failed_).fetch_add(1, kRelaxed);
  if (sink_) sink_->on_extend(ok);
}

void Metrics::lock_lost() {
  lost_.fetch_add(1, kRelaxed);
  if (sink_) sink_->on_lock_lost();
}

void Metrics::late_reply_released(std::size_t node) {
  late_released_.fetch_add(1, kRelaxed);
  if (sink_) sink_->on_late_reply_released(node);
}

void Metrics::wakeup() {
  wakeups_.fetch_add(1, kRelaxed);
  if (sink_) sink_->on_wakeup();
}

void Metrics::reconnect(std::size_t node) {
  nodes_[node]->reconnects.fetch_add(1, kRelaxed);
  if (sink_) sink_->on_reconnect(node);
}

void Metrics::restart(std::size_t node) {
  nodes_[node]->restarts.fetch_add(1, kRelaxed);
  if (sink_) sink_->on_node_restart(node);
}

void Metrics::fence_raise() { fence_raises_.fetch_add(1, kRelaxed); }

void Metrics::clock_state(std::size_t node, std::optional<double> rate, bool suspect,
                          const std::string& reason) {
  auto& n = *nodes_[node];
  std::lock_guard lk(n.clock_mutex);
  n.clock_rate = rate;
  n.clock_suspect = suspect;
  if (n.clock_reason != reason) n.clock_reason = reason;
}

void Metrics::clock_changed(std::size_t node, bool suspect, const std::string& reason) {
  if (suspect) nodes_[node]->clock_alarms.fetch_add(1, kRelaxed);
  if (sink_) sink_->on_node_clock(node, suspect, reason);
}

MetricsSnapshot Metrics::snapshot(const std::vector<std::string>& names,
                                  const std::vector<NodeState>& states,
                                  bool quorum_available) const {
  MetricsSnapshot s;
  s.quorum_available = quorum_available;
  s.acquire_latency_us = acquire_latency_.snapshot();
  s.rounds_per_acquire = rounds_.snapshot();
  s.acquires_granted = granted_.load(kRelaxed);
  for (std::size_t i = 0; i < failed_.size(); ++i) s.acquires_failed[i] = failed_[i].load(kRelaxed);
  s.contended_rounds = contended_.load(kRelaxed);
  s.extensions = extensions_.load(kRelaxed);
  s.extensions_failed = extensions_failed_.load(kRelaxed);
  s.locks_lost = lost_.load(kRelaxed);
  s.late_replies_released = late_released_.load(kRelaxed);
  s.fence_raises = fence_raises_.load(kRelaxed);
  s.wakeups = wakeups_.load(kRelaxed);
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    NodeMetrics n;
    n.node = i < names.size() ? names[i] : std::string();
    n.connected = i < states.size() && states[i].connected;
    n.voting = i < states.size() && states[i].voting;
    n.reconnects = nodes_[i]->reconnects.load(kRelaxed);
    n.restarts = nodes_[i]->restarts.load(kRelaxed);
    n.timeouts = nodes_[i]->timeouts.load(kRelaxed);
    n.errors = nodes_[i]->errors.load(kRelaxed);
    n.rtt_us = nodes_[i]->rtt.snapshot();
    n.clock_alarms = nodes_[i]->clock_alarms.load(kRelaxed);
    {
      std::lock_guard lk(nodes_[i]->clock_mutex);
      n.clock_suspect = nodes_[i]->clock_suspect;
      n.clock_reason = nodes_[i]->clock_reason;
      n.clock_rate = nodes_[i]->clock_rate;
    }
    s.nodes.push_back(std::move(n));
  }
  return s;
}

}  // namespace redlock::detail

namespace redlock {
namespace {

std::string number(double v) {
  if (std::isinf(v)) return "+Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, const std::string& name, std::string_view help,
            std::string_view type) {
  out += "# HELP " + name + " ";
  out += help;
  out += "\n# TYPE " + name + " ";
  out += type;
  out += "\n";
}

void histogram(std::string& out, const std::string& name, const std::string& labels,
               const Histogram& h) {
  std::uint64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : ",";
  // Every bound, then the +Inf bucket the format requires (even for a
  // histogram that was never filled in).
  for (std::size_t i = 0; i <= h.upper_bounds.size(); ++i) {
    cumulative += i < h.counts.size() ? h.counts[i] : 0;
    const double le = i < h.upper_bounds.size() ? h.upper_bounds[i] : INFINITY;
    out += name + "_bucket{" + labels + sep + "le=\"" + number(le) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(h.sum) + "\n";
  out += name + "_count" + braces + " " + std::to_string(h.count) + "\n";
}

}  // namespace

std::string to_prometheus(const MetricsSnapshot& s, std::string_view prefix) {
  const std::string p(prefix);
  std::string out;
  header(out, p + "_acquire_latency_microseconds", "Time from an acquire call to its outcome.",
         "histogram");
  histogram(out, p + "_acquire_latency_microseconds", "", s.acquire_latency_us);
  header(out, p + "_acquire_rounds", "Rounds (attempts) per acquire.", "histogram");
  histogram(out, p + "_acquire_rounds", "", s.rounds_per_acquire);
  header(out, p + "_acquires_total", "Acquires by outcome.", "counter");
  out += p + "_acquires_total{outcome=\"granted\"} " + std::to_string(s.acquires_granted) + "\n";
  for (std::size_t i = 0; i < s.acquires_failed.size(); ++i) {
    std::string code(to_string(static_cast<ErrorCode>(i)));
    for (auto& c : code) c = c == ' ' ? '_' : c;
    out += p + "_acquires_total{outcome=\"" + code + "\"} " + std::to_string(s.acquires_failed[i]) +
           "\n";
  }
  const auto counter = [&](const std::string& name, std::string_view help, std::uint64_t v) {
    header(out, p + name, help, "counter");
    out += p + name + " " + std::to_string(v) + "\n";
  };
  counter("_contended_rounds_total", "Rounds that found the resource held by another owner.",
          s.contended_rounds);
  counter("_extensions_total", "Successful extensions.", s.extensions);
  counter("_extensions_failed_total", "Failed extensions.", s.extensions_failed);
  counter("_locks_lost_total", "Auto-extended locks that were lost.", s.locks_lost);
  counter("_late_replies_released_total",
          "Yes votes that arrived after their round failed (released by its cleanup).",
          s.late_replies_released);
  counter("_fence_raises_total",
          "Grants whose fencing token was raised on a majority before being handed out.",
          s.fence_raises);
  counter("_wakeups_total",
          "Acquire retries started early because a release was announced (wake-on-release).",
          s.wakeups);

  header(out, p + "_quorum_available", "Whether a majority of the nodes votes now.", "gauge");
  out += p + "_quorum_available " + (s.quorum_available ? "1" : "0") + "\n";
  header(out, p + "_node_voting",
         "Whether the node counts toward a majority now (connected, answering, not sitting out "
         "a restart grace, clock not excluded).",
         "gauge");
  for (const auto& n : s.nodes) {
    out +=
        p + "_node_voting{node=\"" + escape_label(n.node) + "\"} " + (n.voting ? "1" : "0") + "\n";
  }
  header(out, p + "_node_connected",
         "Whether the node is connected and answering (no command unanswered for over 1 s).",
         "gauge");
  for (const auto& n : s.nodes) {
    out += p + "_node_connected{node=\"" + escape_label(n.node) + "\"} " +
           (n.connected ? "1" : "0") + "\n";
  }
  header(out, p + "_node_reconnects_total", "Connections established after the first.", "counter");
  for (const auto& n : s.nodes) {
    out += p + "_node_reconnects_total{node=\"" + escape_label(n.node) + "\"} " +
           std::to_string(n.reconnects) + "\n";
  }
  header(out, p + "_node_restarts_total", "Restarts seen (run_id changes).", "counter");
  for (const auto& n : s.nodes) {
    out += p + "_node_restarts_total{node=\"" + escape_label(n.node) + "\"} " +
           std::to_string(n.restarts) + "\n";
  }
  header(out, p + "_node_timeouts_total", "Commands not answered within the node timeout.",
         "counter");
  for (const auto& n : s.nodes) {
    out += p + "_node_timeouts_total{node=\"" + escape_label(n.node) + "\"} " +
           std::to_string(n.timeouts) + "\n";
  }
  header(out, p + "_node_errors_total", "Error replies and connection failures.", "counter");
  for (const auto& n : s.nodes) {
    out += p + "_node_errors_total{node=\"" + escape_label(n.node) + "\"} " +
           std::to_string(n.errors) + "\n";
  }
  header(out, p + "_node_clock_suspect",
         "Whether the node's clock runs off rate or jumped (clock sanity check).", "gauge");
  for (const auto& n : s.nodes) {
    out += p + "_node_clock_suspect{node=\"" + escape_label(n.node) + "\"} " +
           (n.clock_suspect ? "1" : "0") + "\n";
  }
  header(out, p + "_node_clock_rate",
         "The node's clock rate relative to the client's monotonic clock (1: the same).", "gauge");
  for (const auto& n : s.nodes) {
    if (!n.clock_rate) continue;
    out += p + "_node_clock_rate{node=\"" + escape_label(n.node) + "\"} " + number(*n.clock_rate) +
           "\n";
  }
  header(out, p + "_node_clock_alarms_total", "Times the node's clock became suspect.", "counter");
  for (const auto& n : s.nodes) {
    out += p + "_node_clock_alarms_total{node=\"" + escape_label(n.node) + "\"} " +
           std::to_string(n.clock_alarms) + "\n";
  }
  header(out, p + "_node_rtt_microseconds", "Round-trip time of each node's answers.", "histogram");
  for (const auto& n : s.nodes) {
    histogram(out, p + "_node_rtt_microseconds", "node=\"" + escape_label(n.node) + "\"", n.rtt_us);
  }
  return out;
}

}  // namespace redlock
