// NodeVitals with an injected clock: which reason a node that may not vote
// gives, as its handshakes and TIME replies come in.
#include "node_vitals.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "time_values.hpp"

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Optional;

class NoEvents final : public NodeEvents {
 public:
  void node_ready(std::size_t) override {}
  void node_attempted(std::size_t) override {}
  void replay_release(std::size_t, std::vector<std::string>, std::string,
                      Clock::time_point) override {}
  [[nodiscard]] std::optional<std::size_t> same_server(std::size_t,
                                                       std::string_view) const override {
    return std::nullopt;
  }
};

std::string server_info(std::string_view run_id, long long uptime_s) {
  return "# Server\r\nredis_version:7.0.15\r\nrun_id:" + std::string(run_id) +
         "\r\nuptime_in_seconds:" + std::to_string(uptime_s) + "\r\n";
}

// TIME's reply for a node whose clock reads the client's.
Reply time_reply(Clock::time_point t) {
  const auto us = std::chrono::duration_cast<microseconds>(t.time_since_epoch()).count();
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements.resize(2);
  for (auto& e : r.elements) e.type = Reply::Type::kString;
  r.elements[0].str = std::to_string(us / 1'000'000);
  r.elements[1].str = std::to_string(us % 1'000'000);
  return r;
}

class NodeVitalsTest : public ::testing::Test {
 protected:
  // One TIME round trip answered at once, at `t`.
  void sample(Clock::time_point t) {
    ASSERT_TRUE(vitals_.want_time_sample(t));
    const Reply reply = time_reply(t);
    vitals_.on_time_reply(&reply, t);
  }

  ClientOptions options_;  // exclude_suspect_clocks and a 1 s clock check
  std::unique_ptr<Loop> loop_ = std::move(*Loop::create(0us));
  Metrics metrics_{1, nullptr};
  std::shared_ptr<spdlog::logger> log_ =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_st>());
  NoEvents events_;
  const NodeContext ctx_{*loop_, options_, 10s, *log_, metrics_, events_};
  const std::string name_ = "127.0.0.1:6379";
  NodeVitals vitals_{ctx_, 0, name_};
};

// A young or restarted server also has a new connection whose clock is not
// timed yet: the grace is named, as the cause, and it lasts longer.
TEST_F(NodeVitalsTest, AGraceIsNamedBeforeAClockNotYetTimed) {
  vitals_.on_server_info(server_info("aaaaaaaaaaaaaaaa", 2), t0);
  vitals_.on_connected();
  ASSERT_TRUE(vitals_.clock_pending());
  EXPECT_THAT(vitals_.vote_block(t0, true), Optional(HasSubstr("up for only 2 s")));
  EXPECT_THAT(vitals_.vote_block(t0, true), Optional(HasSubstr("votes again in 8000 ms")));

  // Past the grace, the clock still keeps it out until it has been timed.
  const auto after = t0 + 8s;
  EXPECT_EQ(vitals_.vote_block(after, true),
            std::optional<std::string>("its clock has not been timed yet"));
  // A node that is not connected is not held back for its clock.
  EXPECT_EQ(vitals_.vote_block(after, false), std::nullopt);
  sample(after);
  sample(after + 100ms);
  EXPECT_FALSE(vitals_.clock_pending());
  EXPECT_EQ(vitals_.vote_block(after + 100ms, true), std::nullopt);

  // A restart: a new run_id, and a new connection whose clock starts over.
  const auto restart = after + 1s;
  vitals_.on_server_info(server_info("bbbbbbbbbbbbbbbb", 0), restart);
  vitals_.on_connected();
  ASSERT_TRUE(vitals_.clock_pending());
  EXPECT_THAT(vitals_.vote_block(restart, true),
              Optional(HasSubstr("restarted (run_id aaaaaaaa -> bbbbbbbb)")));
  EXPECT_EQ(vitals_.vote_block(restart + 10s, true),
            std::optional<std::string>("its clock has not been timed yet"));
}

}  // namespace
}  // namespace redlock::detail
