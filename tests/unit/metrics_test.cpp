// The engine's counters fed directly (no client, no network): histogram
// bucket placement, per-event counters, the sink hook, and the Prometheus text
// rendering checked line by line with a small parser.
#include "metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

std::size_t idx(ErrorCode code) { return static_cast<std::size_t>(code); }

// ------------------------------------------------------- AtomicHistogram

TEST(AtomicHistogram, EmptySnapshotHasOneZeroBucketPerBoundPlusInf) {
  const std::vector<double> bounds = {1, 2, 5};
  const AtomicHistogram h(bounds);
  const Histogram s = h.snapshot();
  EXPECT_EQ(s.upper_bounds, bounds);
  EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{0, 0, 0, 0}));
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.sum, 0.0);
}

TEST(AtomicHistogram, ValueEqualToABoundGoesInThatBucket) {
  const std::vector<double> bounds = {1, 2, 5};
  AtomicHistogram h(bounds);
  h.observe(1);
  h.observe(2);
  h.observe(5);
  const Histogram s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{1, 1, 1, 0}));
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.sum, 8.0);
}

TEST(AtomicHistogram, PlacementCountAndSum) {
  const std::vector<double> bounds = {1, 2, 5};
  AtomicHistogram h(bounds);
  for (const double v : {-3.0, 0.0, 0.5, 1.0, 1.5, 2.0, 4.75, 5.0, 5.25, 1000.0}) h.observe(v);
  const Histogram s = h.snapshot();
  // (-inf, 1]: -3, 0, 0.5, 1; (1, 2]: 1.5, 2; (2, 5]: 4.75, 5; (5, +Inf): 5.25, 1000.
  EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{4, 2, 2, 2}));
  EXPECT_EQ(s.count, 10u);
  EXPECT_EQ(s.sum, 1017.0);
  EXPECT_EQ(s.upper_bounds, bounds);
}

TEST(AtomicHistogram, AboveTheLastBoundGoesToInf) {
  const std::vector<double> bounds = {10};
  AtomicHistogram h(bounds);
  h.observe(10.000001);
  h.observe(1e18);
  const Histogram s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{0, 2}));
  EXPECT_EQ(s.count, 2u);
}

TEST(AtomicHistogram, NoBoundsIsASingleInfBucket) {
  const std::vector<double> bounds;
  AtomicHistogram h(bounds);
  h.observe(7);
  const Histogram s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.sum, 7.0);
}

// --------------------------------------------------------------- Metrics

const std::vector<std::string> kNames = {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"};
const std::vector<Metrics::NodeState> kConnected = {{true, true}, {false, false}, {true, false}};

TEST(Metrics, FreshSnapshotIsAllZero) {
  const Metrics m(3, nullptr);
  const MetricsSnapshot s = m.snapshot(kNames, kConnected, true);
  EXPECT_EQ(s.acquires_granted, 0u);
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
    EXPECT_EQ(s.acquires_failed[i], 0u) << static_cast<ErrorCode>(i);
  }
  EXPECT_EQ(s.acquire_latency_us.count, 0u);
  EXPECT_EQ(s.acquire_latency_us.counts.size(), s.acquire_latency_us.upper_bounds.size() + 1);
  EXPECT_EQ(s.rounds_per_acquire.counts.size(), s.rounds_per_acquire.upper_bounds.size() + 1);
  EXPECT_EQ(s.contended_rounds, 0u);
  EXPECT_EQ(s.extensions, 0u);
  EXPECT_EQ(s.extensions_failed, 0u);
  EXPECT_EQ(s.locks_lost, 0u);
  EXPECT_EQ(s.late_replies_released, 0u);
  EXPECT_EQ(s.wakeups, 0u);
  ASSERT_EQ(s.nodes.size(), 3u);
  for (const auto& n : s.nodes) {
    EXPECT_EQ(n.reconnects, 0u) << n.node;
    EXPECT_EQ(n.timeouts, 0u) << n.node;
    EXPECT_EQ(n.errors, 0u) << n.node;
    EXPECT_EQ(n.rtt_us.count, 0u) << n.node;
    EXPECT_EQ(n.rtt_us.counts.size(), n.rtt_us.upper_bounds.size() + 1) << n.node;
  }
}

TEST(Metrics, AcquireCountsGrantedAndFailedByCode) {
  Metrics m(3, nullptr);
  const Error held(ErrorCode::kHeldByAnother, "taken");
  const Error no_quorum(ErrorCode::kNoQuorum, "1 of 3");
  const Error timeout(ErrorCode::kLockWaitTimeout, "gave up");
  const Error lost(ErrorCode::kLockLost, "lost");
  m.acquire(100us, 1, nullptr);
  m.acquire(200us, 1, nullptr);
  m.acquire(300us, 2, &held);
  m.acquire(400us, 3, &no_quorum);
  m.acquire(500us, 4, &no_quorum);
  m.acquire(600us, 7, &timeout);
  m.acquire(700us, 200, &lost);
  const MetricsSnapshot s = m.snapshot(kNames, kConnected, true);

  EXPECT_EQ(s.acquires_granted, 2u);
  std::array<std::uint64_t, kErrorCodeCount> expected{};
  expected[idx(ErrorCode::kHeldByAnother)] = 1;
  expected[idx(ErrorCode::kNoQuorum)] = 2;
  expected[idx(ErrorCode::kLockWaitTimeout)] = 1;
  expected[idx(ErrorCode::kLockLost)] = 1;
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
    EXPECT_EQ(s.acquires_failed[i], expected[i]) << static_cast<ErrorCode>(i);
  }

  // Every acquire, granted or not, is in the latency and rounds histograms.
  EXPECT_EQ(s.acquire_latency_us.count, 7u);
  EXPECT_EQ(s.acquire_latency_us.sum, 2800.0);
  EXPECT_EQ(s.rounds_per_acquire.count, 7u);
  EXPECT_EQ(s.rounds_per_acquire.sum, 218.0);
  // Rounds bounds 1, 2, 3, 5, 10, 20, 50, 100 (+Inf).
  EXPECT_EQ(s.rounds_per_acquire.upper_bounds, (std::vector<double>{1, 2, 3, 5, 10, 20, 50, 100}));
  EXPECT_EQ(s.rounds_per_acquire.counts, (std::vector<std::uint64_t>{2, 1, 1, 1, 1, 0, 0, 0, 1}));
  // Latency bounds start 50, 100, 250, 500, 1000 (microseconds).
  ASSERT_GE(s.acquire_latency_us.upper_bounds.size(), 5u);
  EXPECT_EQ(s.acquire_latency_us.upper_bounds[0], 50.0);
  EXPECT_EQ(s.acquire_latency_us.upper_bounds[1], 100.0);
  EXPECT_EQ(s.acquire_latency_us.upper_bounds[2], 250.0);
  EXPECT_EQ(s.acquire_latency_us.upper_bounds[3], 500.0);
  EXPECT_EQ(s.acquire_latency_us.upper_bounds[4], 1000.0);
  EXPECT_EQ(s.acquire_latency_us.counts[0], 0u);
  EXPECT_EQ(s.acquire_latency_us.counts[1], 1u);  // 100
  EXPECT_EQ(s.acquire_latency_us.counts[2], 1u);  // 200
  EXPECT_EQ(s.acquire_latency_us.counts[3], 3u);  // 300, 400, 500
  EXPECT_EQ(s.acquire_latency_us.counts[4], 2u);  // 600, 700 in (500, 1000]
}

TEST(Metrics, NodeReplyCountsTimeoutsAndErrorsPerNodeAndRttOnlyForAnswers) {
  Metrics m(3, nullptr);
  m.node_reply(0, NodeStatus::kOk, 100us);
  m.node_reply(0, NodeStatus::kRefused, 200us);
  m.node_reply(0, NodeStatus::kTimeout, 5000us);
  m.node_reply(0, NodeStatus::kError, 300us);
  m.node_reply(0, NodeStatus::kDisconnected, 0us);
  m.node_reply(1, NodeStatus::kTimeout, 0us);
  m.node_reply(1, NodeStatus::kTimeout, 0us);
  m.node_reply(1, NodeStatus::kError, 40us);
  m.node_reply(1, NodeStatus::kPending, 40us);
  m.node_reply(2, NodeStatus::kOk, 60us);
  const MetricsSnapshot s = m.snapshot(kNames, kConnected, true);
  ASSERT_EQ(s.nodes.size(), 3u);

  EXPECT_EQ(s.nodes[0].timeouts, 1u);
  EXPECT_EQ(s.nodes[0].errors, 2u);  // the error reply and the disconnection
  EXPECT_EQ(s.nodes[0].rtt_us.count, 2u);
  EXPECT_EQ(s.nodes[0].rtt_us.sum, 300.0);

  EXPECT_EQ(s.nodes[1].timeouts, 2u);
  EXPECT_EQ(s.nodes[1].errors, 1u);
  EXPECT_EQ(s.nodes[1].rtt_us.count, 0u);
  EXPECT_EQ(s.nodes[1].rtt_us.sum, 0.0);

  EXPECT_EQ(s.nodes[2].timeouts, 0u);
  EXPECT_EQ(s.nodes[2].errors, 0u);
  EXPECT_EQ(s.nodes[2].rtt_us.count, 1u);
  EXPECT_EQ(s.nodes[2].rtt_us.sum, 60.0);
  // 60 us is in (50, 100].
  EXPECT_EQ(s.nodes[2].rtt_us.counts[1], 1u);

  // Node replies are not acquires.
  EXPECT_EQ(s.acquires_granted, 0u);
  EXPECT_EQ(s.acquire_latency_us.count, 0u);
}

TEST(Metrics, EventCounters) {
  Metrics m(3, nullptr);
  for (int i = 0; i < 3; ++i) m.contended_round();
  m.extend(true);
  m.extend(true);
  m.extend(false);
  m.lock_lost();
  m.late_reply_released(2);
  m.late_reply_released(0);
  m.wakeup();
  m.wakeup();
  m.reconnect(1);
  m.reconnect(1);
  m.reconnect(1);
  m.reconnect(0);
  const MetricsSnapshot s = m.snapshot(kNames, kConnected, true);
  EXPECT_EQ(s.contended_rounds, 3u);
  EXPECT_EQ(s.extensions, 2u);
  EXPECT_EQ(s.extensions_failed, 1u);
  EXPECT_EQ(s.locks_lost, 1u);
  EXPECT_EQ(s.late_replies_released, 2u);
  EXPECT_EQ(s.wakeups, 2u);
  ASSERT_EQ(s.nodes.size(), 3u);
  EXPECT_EQ(s.nodes[0].reconnects, 1u);
  EXPECT_EQ(s.nodes[1].reconnects, 3u);
  EXPECT_EQ(s.nodes[2].reconnects, 0u);
}

TEST(Metrics, SnapshotCarriesNamesAndConnectedFlags) {
  const Metrics m(3, nullptr);
  const MetricsSnapshot s = m.snapshot(kNames, kConnected, true);
  ASSERT_EQ(s.nodes.size(), 3u);
  EXPECT_EQ(s.nodes[0].node, "127.0.0.1:7001");
  EXPECT_EQ(s.nodes[1].node, "127.0.0.1:7002");
  EXPECT_EQ(s.nodes[2].node, "127.0.0.1:7003");
  EXPECT_TRUE(s.nodes[0].connected);
  EXPECT_FALSE(s.nodes[1].connected);
  EXPECT_TRUE(s.nodes[2].connected);
  EXPECT_TRUE(s.nodes[0].voting);
  EXPECT_FALSE(s.nodes[1].voting);
  EXPECT_FALSE(s.nodes[2].voting);
  EXPECT_TRUE(s.quorum_available);

  // Short name and flag lists: the rest are unnamed and not connected.
  const MetricsSnapshot partial = m.snapshot({"a:1"}, {{true, true}}, false);
  ASSERT_EQ(partial.nodes.size(), 3u);
  EXPECT_EQ(partial.nodes[0].node, "a:1");
  EXPECT_TRUE(partial.nodes[0].connected);
  EXPECT_EQ(partial.nodes[1].node, "");
  EXPECT_FALSE(partial.nodes[1].connected);
  EXPECT_FALSE(partial.nodes[2].connected);
}

// Records every call it receives.
class RecordingSink : public MetricsSink {
 public:
  struct Acquire {
    std::chrono::microseconds latency;
    int rounds;
    bool has_error;
    ErrorCode code;
    std::string message;
  };
  struct Reply {
    std::size_t node;
    NodeStatus status;
    std::chrono::microseconds rtt;
  };

  void on_acquire(std::chrono::microseconds latency, int rounds, const Error* error) override {
    acquires.push_back({latency, rounds, error != nullptr,
                        error != nullptr ? error->code() : ErrorCode::kInternal,
                        error != nullptr ? error->message() : std::string()});
  }
  void on_node_reply(std::size_t node, NodeStatus status, std::chrono::microseconds rtt) override {
    replies.push_back({node, status, rtt});
  }
  void on_contended_round() override { ++contended; }
  void on_extend(bool ok) override { extends.push_back(ok); }
  void on_lock_lost() override { ++lost; }
  void on_late_reply_released(std::size_t node) override { late.push_back(node); }
  void on_wakeup() override { ++wakeups; }
  void on_reconnect(std::size_t node) override { reconnects.push_back(node); }
  void on_node_clock(std::size_t node, bool suspect, std::string_view reason) override {
    clocks.push_back({node, suspect, std::string(reason)});
  }

  struct ClockEvent {
    std::size_t node;
    bool suspect;
    std::string reason;
  };
  std::vector<ClockEvent> clocks;
  std::vector<Acquire> acquires;
  std::vector<Reply> replies;
  int contended = 0;
  std::vector<bool> extends;
  int lost = 0;
  std::vector<std::size_t> late;
  int wakeups = 0;
  std::vector<std::size_t> reconnects;
};

TEST(Metrics, SinkReceivesEveryEventWithItsArguments) {
  auto sink = std::make_shared<RecordingSink>();
  Metrics m(3, sink);
  const Error held(ErrorCode::kHeldByAnother, "taken by someone");

  m.acquire(1500us, 1, nullptr);
  m.acquire(2500us, 4, &held);
  m.node_reply(2, NodeStatus::kOk, 120us);
  m.node_reply(0, NodeStatus::kTimeout, 10000us);
  m.node_reply(1, NodeStatus::kPending, 0us);
  m.contended_round();
  m.contended_round();
  m.extend(true);
  m.extend(false);
  m.lock_lost();
  m.late_reply_released(1);
  m.wakeup();
  m.reconnect(2);
  m.reconnect(0);

  ASSERT_EQ(sink->acquires.size(), 2u);
  EXPECT_EQ(sink->acquires[0].latency.count(), 1500);
  EXPECT_EQ(sink->acquires[0].rounds, 1);
  EXPECT_FALSE(sink->acquires[0].has_error);
  EXPECT_EQ(sink->acquires[1].latency.count(), 2500);
  EXPECT_EQ(sink->acquires[1].rounds, 4);
  ASSERT_TRUE(sink->acquires[1].has_error);
  EXPECT_EQ(sink->acquires[1].code, ErrorCode::kHeldByAnother) << sink->acquires[1].code;
  EXPECT_EQ(sink->acquires[1].message, "taken by someone");

  // Every reply is passed on, whatever its status.
  ASSERT_EQ(sink->replies.size(), 3u);
  EXPECT_EQ(sink->replies[0].node, 2u);
  EXPECT_EQ(sink->replies[0].status, NodeStatus::kOk);
  EXPECT_EQ(sink->replies[0].rtt.count(), 120);
  EXPECT_EQ(sink->replies[1].node, 0u);
  EXPECT_EQ(sink->replies[1].status, NodeStatus::kTimeout);
  EXPECT_EQ(sink->replies[1].rtt.count(), 10000);
  EXPECT_EQ(sink->replies[2].node, 1u);
  EXPECT_EQ(sink->replies[2].status, NodeStatus::kPending);

  EXPECT_EQ(sink->contended, 2);
  EXPECT_EQ(sink->extends, (std::vector<bool>{true, false}));
  EXPECT_EQ(sink->lost, 1);
  EXPECT_EQ(sink->late, (std::vector<std::size_t>{1}));
  EXPECT_EQ(sink->wakeups, 1);
  EXPECT_EQ(sink->reconnects, (std::vector<std::size_t>{2, 0}));

  // The engine's own counters are kept as well.
  const MetricsSnapshot s = m.snapshot(kNames, kConnected, true);
  EXPECT_EQ(s.acquires_granted, 1u);
  EXPECT_EQ(s.acquires_failed[idx(ErrorCode::kHeldByAnother)], 1u);
  EXPECT_EQ(s.contended_rounds, 2u);
  EXPECT_EQ(s.extensions, 1u);
  EXPECT_EQ(s.extensions_failed, 1u);
  EXPECT_EQ(s.locks_lost, 1u);
  EXPECT_EQ(s.late_replies_released, 1u);
  EXPECT_EQ(s.wakeups, 1u);
  EXPECT_EQ(s.nodes[0].timeouts, 1u);
  EXPECT_EQ(s.nodes[2].reconnects, 1u);
  EXPECT_EQ(s.nodes[2].rtt_us.count, 1u);
}

TEST(Metrics, ClockStateAndAlarms) {
  auto sink = std::make_shared<RecordingSink>();
  Metrics m(3, sink);
  // Fresh: nothing measured, nothing suspect.
  auto s = m.snapshot(kNames, kConnected, true);
  for (const auto& n : s.nodes) {
    EXPECT_FALSE(n.clock_suspect);
    EXPECT_EQ(n.clock_reason, "");
    EXPECT_FALSE(n.clock_rate.has_value());
    EXPECT_EQ(n.clock_alarms, 0u);
  }
  m.clock_state(0, 1.0001, false, "");
  m.clock_state(2, std::nullopt, true, "clock jumped +500 ms");
  m.clock_changed(2, true, "clock jumped +500 ms");
  m.clock_state(2, 1.5, true, "clock runs fast (1.50x) over 2.0 s");
  s = m.snapshot(kNames, kConnected, true);
  EXPECT_EQ(s.nodes[0].clock_rate, 1.0001);
  EXPECT_FALSE(s.nodes[0].clock_suspect);
  EXPECT_FALSE(s.nodes[1].clock_rate.has_value());
  EXPECT_TRUE(s.nodes[2].clock_suspect);
  EXPECT_EQ(s.nodes[2].clock_reason, "clock runs fast (1.50x) over 2.0 s");
  EXPECT_EQ(s.nodes[2].clock_rate, 1.5);
  EXPECT_EQ(s.nodes[2].clock_alarms, 1u);
  // Sane again: the reason goes, the alarm count stays.
  m.clock_state(2, 1.0, false, "");
  m.clock_changed(2, false, "");
  s = m.snapshot(kNames, kConnected, true);
  EXPECT_FALSE(s.nodes[2].clock_suspect);
  EXPECT_EQ(s.nodes[2].clock_reason, "");
  EXPECT_EQ(s.nodes[2].clock_alarms, 1u);

  ASSERT_EQ(sink->clocks.size(), 2u);
  EXPECT_EQ(sink->clocks[0].node, 2u);
  EXPECT_TRUE(sink->clocks[0].suspect);
  EXPECT_EQ(sink->clocks[0].reason, "clock jumped +500 ms");
  EXPECT_FALSE(sink->clocks[1].suspect);
  EXPECT_EQ(sink->clocks[1].reason, "");
}

TEST(Metrics, TheDefaultSinkMethodsDoNothing) {
  // A sink overriding nothing is accepted and every event still counts.
  Metrics m(1, std::make_shared<MetricsSink>());
  m.acquire(1us, 1, nullptr);
  m.node_reply(0, NodeStatus::kOk, 1us);
  m.contended_round();
  m.extend(true);
  m.lock_lost();
  m.late_reply_released(0);
  m.wakeup();
  m.reconnect(0);
  m.clock_changed(0, true, "clock jumped +1.0 s");
  const MetricsSnapshot s = m.snapshot({"n:1"}, {{true, true}}, true);
  EXPECT_EQ(s.acquires_granted, 1u);
  EXPECT_EQ(s.contended_rounds, 1u);
  EXPECT_EQ(s.nodes[0].reconnects, 1u);
}

// ------------------------------------------------------------- Prometheus

// One line of the text exposition format.
struct Line {
  bool comment = false;
  std::string keyword;  // HELP or TYPE
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // values unescaped
  std::string rest;                                         // comment text or value text
  double value = 0;
};

bool is_name_char(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  return first ? alpha : alpha || (c >= '0' && c <= '9');
}

// Parses `text` into `out`; returns "" or what is wrong with the line.
std::string parse_line(std::string_view text, Line& out) {
  out = Line{};
  if (text.empty()) return "empty line";
  if (text.front() == '#') {
    for (const std::string_view kw : {"# HELP ", "# TYPE "}) {
      if (text.substr(0, kw.size()) != kw) continue;
      out.comment = true;
      out.keyword = std::string(kw.substr(2, 4));
      text.remove_prefix(kw.size());
      const auto space = text.find(' ');
      if (space == std::string_view::npos || space == 0) return "comment without a metric name";
      out.name = std::string(text.substr(0, space));
      out.rest = std::string(text.substr(space + 1));
      for (std::size_t i = 0; i < out.name.size(); ++i) {
        if (!is_name_char(out.name[i], i == 0)) return "bad metric name in comment";
      }
      if (out.keyword == "TYPE") {
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (kTypes.count(out.rest) == 0) return "unknown type \"" + out.rest + "\"";
      } else if (out.rest.empty()) {
        return "empty help text";
      }
      return "";
    }
    return "a comment that is neither # HELP nor # TYPE";
  }
  std::size_t i = 0;
  while (i < text.size() && is_name_char(text[i], i == 0)) ++i;
  if (i == 0) return "no metric name";
  out.name = std::string(text.substr(0, i));
  if (i < text.size() && text[i] == '{') {
    ++i;
    while (true) {
      if (i >= text.size()) return "unterminated label set";
      if (text[i] == '}') {
        ++i;
        break;
      }
      const std::size_t start = i;
      while (i < text.size() && is_name_char(text[i], i == start)) ++i;
      if (i == start) return "no label name";
      std::string label_name(text.substr(start, i - start));
      if (i + 1 >= text.size() || text[i] != '=' || text[i + 1] != '"') {
        return "label without =\"";
      }
      i += 2;
      std::string value;
      while (true) {
        if (i >= text.size()) return "unterminated label value";
        const char c = text[i++];
        if (c == '"') break;
        if (c == '\n') return "raw newline in label value";
        if (c == '\\') {
          if (i >= text.size()) return "dangling backslash";
          const char e = text[i++];
          if (e == 'n') {
            value += '\n';
          } else if (e == '\\' || e == '"') {
            value += e;
          } else {
            return "unknown escape in label value";
          }
          continue;
        }
        value += c;
      }
      out.labels.emplace_back(std::move(label_name), std::move(value));
      if (i < text.size() && text[i] == ',') ++i;
    }
  }
  if (i >= text.size() || text[i] != ' ') return "no space before the value";
  out.rest = std::string(text.substr(i + 1));
  if (out.rest == "+Inf" || out.rest == "-Inf" || out.rest == "NaN") return "";
  if (out.rest.empty() || out.rest.find(' ') != std::string::npos) return "bad value";
  char* end = nullptr;
  out.value = std::strtod(out.rest.c_str(), &end);
  if (end != out.rest.c_str() + out.rest.size()) return "value is not a number";
  return "";
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<Line> parse_all(const std::string& text) {
  EXPECT_FALSE(text.empty());
  if (!text.empty()) {
    EXPECT_EQ(text.back(), '\n') << "the exposition ends with a newline";
  }
  std::vector<Line> out;
  for (const auto& raw : split_lines(text)) {
    Line line;
    const std::string problem = parse_line(raw, line);
    EXPECT_EQ(problem, "") << "line: " << raw;
    if (problem.empty()) out.push_back(std::move(line));
  }
  return out;
}

std::string label(const Line& l, std::string_view name) {
  for (const auto& [k, v] : l.labels) {
    if (k == name) return v;
  }
  return "<absent>";
}

std::string outcome_label(ErrorCode code) {
  std::string s(to_string(code));
  for (auto& c : s) c = c == ' ' ? '_' : c;
  return s;
}

// A snapshot with every kind of value set, from a real Metrics.
MetricsSnapshot busy_snapshot() {
  Metrics m(3, nullptr);
  const Error held(ErrorCode::kHeldByAnother, "taken");
  const Error no_quorum(ErrorCode::kNoQuorum, "1 of 3");
  for (int i = 0; i < 5; ++i) m.acquire(std::chrono::microseconds(100 * (i + 1)), 1, nullptr);
  for (int i = 0; i < 3; ++i) m.acquire(20ms, 3, &held);
  m.acquire(30s, 12, &no_quorum);
  m.node_reply(0, NodeStatus::kOk, 80us);
  m.node_reply(0, NodeStatus::kOk, 3000us);
  m.node_reply(0, NodeStatus::kTimeout, 0us);
  m.node_reply(0, NodeStatus::kTimeout, 0us);
  m.node_reply(1, NodeStatus::kError, 0us);
  m.node_reply(2, NodeStatus::kRefused, 200us);
  m.contended_round();
  m.extend(true);
  m.extend(false);
  m.lock_lost();
  m.late_reply_released(1);
  m.wakeup();
  m.wakeup();
  m.wakeup();
  m.reconnect(1);
  m.clock_state(0, 1.0, false, "");
  m.clock_state(1, 1.5, true, "clock runs fast (1.50x) over 3.0 s");
  m.clock_changed(1, true, "clock jumped +500 ms");
  return m.snapshot(kNames, kConnected, true);
}

TEST(ToPrometheus, EveryLineIsACommentOrASample) {
  const std::string text = to_prometheus(busy_snapshot());
  const auto lines = parse_all(text);
  EXPECT_EQ(lines.size(), split_lines(text).size()) << text;

  // Every sample belongs to a family declared by a # TYPE line before it,
  // and each family is declared once.
  std::map<std::string, std::string> types;
  for (const auto& l : lines) {
    if (l.comment) {
      if (l.keyword == "TYPE") {
        EXPECT_TRUE(types.emplace(l.name, l.rest).second) << l.name << " declared twice";
      }
      continue;
    }
    std::string family = l.name;
    for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      const auto n = family.size();
      if (n > suffix.size() && family.compare(n - suffix.size(), suffix.size(), suffix) == 0 &&
          types.count(family.substr(0, n - suffix.size())) != 0 &&
          types[family.substr(0, n - suffix.size())] == "histogram") {
        family = family.substr(0, n - suffix.size());
        break;
      }
    }
    EXPECT_EQ(types.count(family), 1u) << "sample " << l.name << " has no # TYPE before it";
    if (l.name.size() > 6 && l.name.compare(l.name.size() - 6, 6, "_total") == 0) {
      EXPECT_EQ(types[family], "counter") << l.name;
    }
  }
  EXPECT_EQ(types["redlock_acquires_total"], "counter");
  EXPECT_EQ(types["redlock_acquire_latency_microseconds"], "histogram");
  EXPECT_EQ(types["redlock_node_connected"], "gauge");
  EXPECT_EQ(types["redlock_node_rtt_microseconds"], "histogram");
}

TEST(ToPrometheus, AcquiresByOutcome) {
  const std::string text = to_prometheus(busy_snapshot());
  EXPECT_THAT(text, HasSubstr("# TYPE redlock_acquires_total counter\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_acquires_total{outcome=\"granted\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_acquires_total{outcome=\"held_by_another\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_acquires_total{outcome=\"no_quorum\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_acquires_total{outcome=\"lock_wait_timeout\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_acquires_total{outcome=\"internal_error\"} 0\n"));

  // Exactly one series per error code plus "granted", none with a space.
  std::set<std::string> outcomes;
  for (const auto& l : parse_all(text)) {
    if (l.comment || l.name != "redlock_acquires_total") continue;
    const std::string o = label(l, "outcome");
    EXPECT_THAT(o, Not(HasSubstr(" ")));
    EXPECT_TRUE(outcomes.insert(o).second) << o << " twice";
  }
  EXPECT_EQ(outcomes.size(), kErrorCodeCount + 1);
  EXPECT_EQ(outcomes.count("granted"), 1u);
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
    const auto code = static_cast<ErrorCode>(i);
    EXPECT_EQ(outcomes.count(outcome_label(code)), 1u) << code;
  }
  EXPECT_EQ(outcomes.count("not_owner"), 1u);
  EXPECT_EQ(outcomes.count("lock_lost"), 1u);
}

TEST(ToPrometheus, Counters) {
  const std::string text = to_prometheus(busy_snapshot());
  EXPECT_THAT(text, HasSubstr("\nredlock_contended_rounds_total 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_extensions_total 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_extensions_failed_total 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_locks_lost_total 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_late_replies_released_total 1\n"));
  EXPECT_THAT(text, HasSubstr("\n# TYPE redlock_wakeups_total counter\nredlock_wakeups_total 3\n"));
}

TEST(ToPrometheus, HistogramExactLines) {
  MetricsSnapshot s;
  s.acquire_latency_us = Histogram{{1, 2.5, 10}, {1, 0, 3, 2}, 6, 30.5};
  s.rounds_per_acquire = Histogram{{1}, {4, 0}, 4, 4};
  const std::string text = to_prometheus(s);
  EXPECT_THAT(text, HasSubstr("# TYPE redlock_acquire_latency_microseconds histogram\n"
                              "redlock_acquire_latency_microseconds_bucket{le=\"1\"} 1\n"
                              "redlock_acquire_latency_microseconds_bucket{le=\"2.5\"} 1\n"
                              "redlock_acquire_latency_microseconds_bucket{le=\"10\"} 4\n"
                              "redlock_acquire_latency_microseconds_bucket{le=\"+Inf\"} 6\n"
                              "redlock_acquire_latency_microseconds_sum 30.5\n"
                              "redlock_acquire_latency_microseconds_count 6\n"));
  EXPECT_THAT(text, HasSubstr("redlock_acquire_rounds_bucket{le=\"1\"} 4\n"
                              "redlock_acquire_rounds_bucket{le=\"+Inf\"} 4\n"
                              "redlock_acquire_rounds_sum 4\n"
                              "redlock_acquire_rounds_count 4\n"));
}

TEST(ToPrometheus, HistogramBucketsAreCumulativeAndEndWithInfEqualToCount) {
  const std::string text = to_prometheus(busy_snapshot());
  // Per series (name + labels other than le): the bucket values in order.
  std::map<std::string, std::vector<std::pair<std::string, double>>> buckets;
  std::map<std::string, double> counts;
  for (const auto& l : parse_all(text)) {
    if (l.comment) continue;
    std::string key;
    for (const auto& [k, v] : l.labels) {
      if (k != "le") key += k + "=" + v + ";";
    }
    const auto strip = [](const std::string& name, std::string_view suffix) {
      return name.substr(0, name.size() - suffix.size());
    };
    if (l.name.ends_with("_bucket")) {
      buckets[strip(l.name, "_bucket") + "|" + key].emplace_back(label(l, "le"), l.value);
    } else if (l.name.ends_with("_count")) {
      counts[strip(l.name, "_count") + "|" + key] = l.value;
    }
  }
  // Two acquire histograms and one rtt histogram per node.
  ASSERT_EQ(buckets.size(), 5u);
  for (const auto& [series, values] : buckets) {
    ASSERT_FALSE(values.empty()) << series;
    for (std::size_t i = 1; i < values.size(); ++i) {
      EXPECT_LE(values[i - 1].second, values[i].second) << series << " le=" << values[i].first;
    }
    EXPECT_EQ(values.back().first, "+Inf") << series;
    ASSERT_EQ(counts.count(series), 1u) << series << " has no _count";
    EXPECT_EQ(values.back().second, counts[series]) << series;
  }
  EXPECT_EQ(counts["redlock_acquire_latency_microseconds|"], 9.0);
  EXPECT_EQ(counts["redlock_node_rtt_microseconds|node=127.0.0.1:7001;"], 2.0);
  // 30 s is above the last latency bound: only the +Inf bucket has all nine.
  const auto& latency = buckets["redlock_acquire_latency_microseconds|"];
  ASSERT_GE(latency.size(), 2u);
  EXPECT_EQ(latency[latency.size() - 2].second, 8.0);
  EXPECT_THAT(text, HasSubstr("\nredlock_acquire_latency_microseconds_sum 30061500\n"));
}

TEST(ToPrometheus, PerNodeSeries) {
  const std::string text = to_prometheus(busy_snapshot());
  EXPECT_THAT(text, HasSubstr("\nredlock_node_connected{node=\"127.0.0.1:7001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_connected{node=\"127.0.0.1:7002\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_connected{node=\"127.0.0.1:7003\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_timeouts_total{node=\"127.0.0.1:7001\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_timeouts_total{node=\"127.0.0.1:7002\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_errors_total{node=\"127.0.0.1:7002\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_reconnects_total{node=\"127.0.0.1:7002\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_reconnects_total{node=\"127.0.0.1:7001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_rtt_microseconds_bucket{node=\"127.0.0.1:7001\","
                              "le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_rtt_microseconds_sum{node=\"127.0.0.1:7001\"} "
                              "3080\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_rtt_microseconds_count{node=\"127.0.0.1:7003\"} "
                              "1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_rtt_microseconds_bucket{node=\"127.0.0.1:7001\","
                              "le=\"100\"} 1\n"));
}

TEST(ToPrometheus, ClockSeries) {
  const std::string text = to_prometheus(busy_snapshot());
  EXPECT_THAT(text, HasSubstr("\n# TYPE redlock_node_clock_suspect gauge\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_clock_suspect{node=\"127.0.0.1:7001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_clock_suspect{node=\"127.0.0.1:7002\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\n# TYPE redlock_node_clock_rate gauge\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_clock_rate{node=\"127.0.0.1:7001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_clock_rate{node=\"127.0.0.1:7002\"} 1.5\n"));
  // Not measured yet: no sample rather than a made-up value.
  EXPECT_THAT(text, Not(HasSubstr("redlock_node_clock_rate{node=\"127.0.0.1:7003\"}")));
  EXPECT_THAT(text, HasSubstr("\n# TYPE redlock_node_clock_alarms_total counter\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_clock_alarms_total{node=\"127.0.0.1:7002\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nredlock_node_clock_alarms_total{node=\"127.0.0.1:7003\"} 0\n"));
}

TEST(ToPrometheus, LabelValuesAreEscaped) {
  MetricsSnapshot s;
  NodeMetrics n;
  n.node = "we\"ird\\host\nname:1";
  n.connected = true;
  n.timeouts = 4;
  s.nodes.push_back(n);
  const std::string text = to_prometheus(s);
  EXPECT_THAT(text, HasSubstr("redlock_node_connected{node=\"we\\\"ird\\\\host\\nname:1\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("redlock_node_timeouts_total{node=\"we\\\"ird\\\\host\\nname:1\"} 4\n"));
  // The parser recovers the original value from every series.
  int node_series = 0;
  for (const auto& l : parse_all(text)) {
    if (l.comment || l.labels.empty() || l.labels.front().first != "node") continue;
    EXPECT_EQ(label(l, "node"), n.node) << l.name;
    ++node_series;
  }
  EXPECT_GT(node_series, 4);
}

TEST(ToPrometheus, CustomPrefixReplacesRedlock) {
  const std::string text = to_prometheus(busy_snapshot(), "myapp_locks");
  EXPECT_THAT(text, Not(HasSubstr("redlock")));
  EXPECT_THAT(text, HasSubstr("# TYPE myapp_locks_acquires_total counter\n"));
  EXPECT_THAT(text, HasSubstr("\nmyapp_locks_acquires_total{outcome=\"granted\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("\nmyapp_locks_node_connected{node=\"127.0.0.1:7001\"} 1\n"));
  for (const auto& l : parse_all(text)) {
    EXPECT_TRUE(l.name.starts_with("myapp_locks_")) << l.name;
  }
  // The same series as with the default prefix, line for line.
  EXPECT_EQ(split_lines(text).size(), split_lines(to_prometheus(busy_snapshot())).size());
}

TEST(ToPrometheus, TheLineParserRejectsMalformedLines) {
  Line l;
  EXPECT_NE(parse_line("", l), "");
  EXPECT_NE(parse_line("# random comment", l), "");
  EXPECT_NE(parse_line("# TYPE x bogus", l), "");
  EXPECT_NE(parse_line("x", l), "");
  EXPECT_NE(parse_line("x abc", l), "");
  EXPECT_NE(parse_line("x{a=\"b} 1", l), "");
  EXPECT_NE(parse_line("x{a=\"b\\q\"} 1", l), "");
  EXPECT_NE(parse_line("1x 1", l), "");
  EXPECT_EQ(parse_line("x{a=\"b\\\"c\",le=\"+Inf\"} 2.5", l), "");
  EXPECT_EQ(label(l, "a"), "b\"c");
  EXPECT_EQ(l.value, 2.5);
  EXPECT_EQ(parse_line("x_total 7", l), "");
  EXPECT_EQ(l.value, 7.0);
}

}  // namespace
}  // namespace redlock::detail
