// The operations driven against a fake node set and a fake scheduler, with
// no Redis and no event loop: each test says what every node answers and
// when, and checks what the operation sent and decided (as spdlog tests its
// loggers with a counting sink).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>

#include "acquire_op.hpp"
#include "extend_op.hpp"
#include "keys.hpp"
#include "operation.hpp"
#include "release_op.hpp"

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Time stands still until advance() moves it; timers fire in order then.
class FakeScheduler final : public Scheduler {
 public:
  [[nodiscard]] Clock::time_point now() const override { return now_; }
  TimerId schedule(Clock::time_point when, std::function<void()> fn) override {
    const TimerId id = next_++;
    timers_.emplace(std::make_pair(when, id), std::move(fn));
    return id;
  }
  TimerId schedule(Clock::time_point when, std::weak_ptr<const void> owner,
                   std::function<void()> fn) override {
    return schedule(when, [owner = std::move(owner), fn = std::move(fn)] {
      if (const auto alive = owner.lock()) fn();
    });
  }
  void cancel(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second == id) {
        timers_.erase(it);
        return;
      }
    }
  }
  [[nodiscard]] double random_unit() override { return 0.5; }
  [[nodiscard]] Result<void> post(std::function<void()> task) override {
    posted_.push_back(std::move(task));
    return {};
  }

  void advance(Clock::duration d) {
    const auto until = now_ + d;
    while (!timers_.empty() && timers_.begin()->first.first <= until) {
      auto node = timers_.extract(timers_.begin());
      now_ = std::max(now_, node.key().first);
      node.mapped()();
    }
    now_ = until;
  }
  [[nodiscard]] std::size_t pending_timers() const { return timers_.size(); }

 private:
  Clock::time_point now_ = Clock::now();
  std::map<std::pair<Clock::time_point, TimerId>, std::function<void()>> timers_;
  TimerId next_ = 1;
  std::vector<std::function<void()>> posted_;
};

// N nodes that take every command while "connected" and answer only when the
// test says so, in order per node (like a pipelined connection).
class FakeNodes final : public NodeSet {
 public:
  struct Sent {
    std::string wire;
    std::shared_ptr<Operation> op;
    std::uint32_t tag;
  };

  explicit FakeNodes(std::size_t n) : names_(n), up_(n, true), queues_(n) {
    for (std::size_t i = 0; i < n; ++i) names_[i] = "node" + std::to_string(i + 1);
  }

  [[nodiscard]] std::size_t size() const override { return names_.size(); }
  [[nodiscard]] const std::string& name(std::size_t i) const override { return names_[i]; }
  [[nodiscard]] bool send(std::size_t i, Route, std::string_view wire,
                          const std::shared_ptr<Operation>& op, std::uint32_t tag,
                          const std::shared_ptr<const std::string>&) override {
    if (!up_[i]) return false;
    queues_[i].push_back({std::string(wire), op, tag});
    log_.push_back({i, std::string(wire)});
    return true;
  }
  [[nodiscard]] bool connected(std::size_t i, Route) const override { return up_[i]; }
  [[nodiscard]] std::string last_error(std::size_t i, Route) const override {
    return up_[i] ? "" : "connection refused";
  }
  [[nodiscard]] std::optional<std::string> vote_block(std::size_t, Route,
                                                      Clock::time_point) const override {
    return std::nullopt;
  }
  [[nodiscard]] bool announce_sharded(std::size_t) const override { return false; }
  [[nodiscard]] NodeHealth health(std::size_t i, Clock::time_point) const override {
    NodeHealth h;
    h.node = names_[i];
    h.reachable = h.answering = h.voting = up_[i];
    return h;
  }
  void remember_cleanup(std::size_t i, std::vector<std::string> resources, std::string,
                        Clock::time_point) override {
    cleanups_.push_back({i, resources.front()});
  }

  // Node i answers its oldest unanswered command.
  void answer(std::size_t i, const Reply& reply) {
    ASSERT_FALSE(queues_[i].empty()) << names_[i] << " has nothing to answer";
    auto sent = std::move(queues_[i].front());
    queues_[i].pop_front();
    sent.op->on_reply(i, sent.tag, &reply, {});
  }
  // Node i's connection fails under its oldest unanswered command.
  void fail(std::size_t i, std::string_view failure) {
    ASSERT_FALSE(queues_[i].empty()) << names_[i] << " has nothing to answer";
    auto sent = std::move(queues_[i].front());
    queues_[i].pop_front();
    sent.op->on_reply(i, sent.tag, nullptr, failure);
  }
  [[nodiscard]] std::size_t waiting(std::size_t i) const { return queues_[i].size(); }
  [[nodiscard]] const std::string& oldest(std::size_t i) const { return queues_[i].front().wire; }
  void set_up(std::size_t i, bool up) { up_[i] = up; }

  std::vector<std::pair<std::size_t, std::string>> log_;       // every command sent
  std::vector<std::pair<std::size_t, std::string>> cleanups_;  // remembered releases

 private:
  std::vector<std::string> names_;
  std::vector<bool> up_;
  std::vector<std::deque<Sent>> queues_;
};

// Release announcements the test makes: announce(i) is node i's, heard by
// the watches in watch order, as WakeHub calls them.
class FakeWatch final : public ReleaseWatch {
 public:
  [[nodiscard]] WatchId watch(const std::vector<std::string>&,
                              std::weak_ptr<ReleaseListener> listener) override {
    watches_.emplace(next_, std::move(listener));
    return next_++;
  }
  void unwatch(WatchId id, const std::vector<std::string>&) override { watches_.erase(id); }
  [[nodiscard]] bool heard_since(const std::vector<std::string>&,
                                 Clock::time_point) const override {
    return false;
  }
  void announce(std::size_t node) {
    std::vector<WatchId> ids;
    for (const auto& [id, fn] : watches_) ids.push_back(id);
    bool gated = false;
    for (const auto id : ids) {
      auto it = watches_.find(id);
      if (it == watches_.end()) continue;
      const auto listener = it->second.lock();  // the call may unwatch
      if (listener) gated = listener->on_release_announced(node, gated) || gated;
    }
  }
  [[nodiscard]] bool watching() const { return !watches_.empty(); }

 private:
  std::map<WatchId, std::weak_ptr<ReleaseListener>> watches_;
  WatchId next_ = 1;
};

Reply integer(long long v) {
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = v;
  return r;
}
Reply nil() { return Reply{}; }
std::size_t count_status(const std::vector<NodeResult>& nodes, NodeStatus status) {
  return static_cast<std::size_t>(std::count_if(
      nodes.begin(), nodes.end(), [&](const NodeResult& r) { return r.status == status; }));
}

bool is_release(const std::string& wire) {
  return wire.find(std::string(kReleaseScript.sha)) != std::string::npos;
}
bool is_raise(const std::string& wire) {
  return wire.find(std::string(kRaiseFenceScript.sha)) != std::string::npos;
}
bool is_fenced_acquire(const std::string& wire) {
  return wire.find(std::string(kFencedAcquireScript.sha)) != std::string::npos ||
         wire.find(std::string(kFencedAcquireOneScript.sha)) != std::string::npos;
}

class OperationsTest : public ::testing::Test {
 protected:
  OperationsTest() {
    options_.nodes = {"a:1", "b:1", "c:1", "d:1", "e:1"};
    options_.drift_factor = 0.01;
  }

  // Operations hold their context by reference, as the engine's outlives
  // them: the fixture's do.
  const OpContext& context() const { return ctx_; }

  // Starts an acquire of `resource`; its outcome lands in outcome_.
  void acquire(const std::string& resource, AcquireOptions how = {}) {
    how.wake_on_release = false;
    auto op = std::make_shared<AcquireOp>(context(), std::vector<std::string>{resource}, "tok", 10s,
                                          how, [this](Result<Lock> r) { outcome_ = std::move(r); });
    op->start();
  }

  // Starts an acquire of `resource` that listens to wake_ for announcements;
  // its outcome lands in `outcome` (outcome_ by default).
  void acquire_listening(const std::string& resource, AcquireOptions how,
                         std::optional<Result<Lock>>* outcome = nullptr) {
    if (outcome == nullptr) outcome = &outcome_;
    auto op =
        std::make_shared<AcquireOp>(listening_ctx_, std::vector<std::string>{resource}, "tok", 10s,
                                    how, [outcome](Result<Lock> r) { *outcome = std::move(r); });
    op->start();
  }

  // The commands sent since `from` in log_, by node.
  [[nodiscard]] std::vector<std::size_t> sent_to(std::size_t from) const {
    std::vector<std::size_t> to;
    for (std::size_t k = from; k < nodes_.log_.size(); ++k) to.push_back(nodes_.log_[k].first);
    return to;
  }

  ClientOptions options_;
  FakeWatch wake_;
  FakeScheduler scheduler_;
  FakeNodes nodes_{5};
  Metrics metrics_{5, nullptr};
  std::shared_ptr<spdlog::logger> log_ =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_st>());
  const OpContext ctx_{nodes_, scheduler_, metrics_, *log_, options_, active_};
  const OpContext listening_ctx_{nodes_, scheduler_, metrics_, *log_, options_, active_, &wake_};
  ActiveOps active_;
  std::optional<Result<Lock>> outcome_;
};

TEST_F(OperationsTest, AFenceFewerThanAMajorityHoldIsRaisedOnAMajorityBeforeTheGrant) {
  acquire("res");
  for (std::size_t i = 0; i < 5; ++i) {
    ASSERT_EQ(nodes_.waiting(i), 1u);
    EXPECT_TRUE(is_fenced_acquire(nodes_.oldest(i)));
  }
  // A majority granted, but only one of them returned the largest fence: a
  // later majority might not share a node with it.
  nodes_.answer(0, integer(100));
  nodes_.answer(1, integer(100));
  nodes_.answer(2, integer(107));
  EXPECT_FALSE(outcome_.has_value()) << "handed out before the fence was durable";
  // The raise goes to every node, behind the acquires still in flight.
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(is_raise(nodes_.oldest(i))) << i;
  for (std::size_t i = 3; i < 5; ++i) EXPECT_EQ(nodes_.waiting(i), 2u) << i;
  EXPECT_NE(nodes_.log_.back().second.find("107"), std::string::npos);
  EXPECT_EQ(metrics_.snapshot({}, {}, false).fence_raises, 1u);
  // Late acquire replies of the granting round change nothing.
  nodes_.answer(3, integer(107));
  nodes_.answer(4, nil());
  EXPECT_FALSE(outcome_.has_value());
  nodes_.answer(0, integer(1));
  nodes_.answer(1, integer(1));
  ASSERT_FALSE(outcome_.has_value());
  nodes_.answer(3, integer(1));
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_TRUE(*outcome_) << outcome_->error();
  EXPECT_EQ((*outcome_)->fence(), 107u);
  // The votes are the granting round's, not the raise's.
  EXPECT_EQ((*outcome_)->votes()[2].status, NodeStatus::kOk);
  EXPECT_EQ(active_.size(), 0u);
}

TEST_F(OperationsTest, AFenceRaiseThatGetsNoMajorityFailsTheRoundAndReleases) {
  AcquireOptions how;
  how.max_attempts = 1;
  acquire("res", how);
  nodes_.answer(0, integer(5));
  nodes_.answer(1, integer(5));
  nodes_.answer(2, integer(9));
  // Nobody answers the raise within the node timeout.
  scheduler_.advance(1s);
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_FALSE(*outcome_);
  EXPECT_EQ(outcome_->error().code(), ErrorCode::kNoQuorum) << outcome_->error();
  EXPECT_THAT(outcome_->error().message(), HasSubstr("could not be made durable"));
  // Released wherever the acquire went.
  std::size_t releases = 0;
  for (const auto& [node, wire] : nodes_.log_) releases += is_release(wire) ? 1U : 0U;
  EXPECT_EQ(releases, 5u);
}

TEST_F(OperationsTest, AContestedRoundReleasesWhatItGotAndRetriesAfterTheDelay) {
  options_.fencing = false;
  AcquireOptions how;
  how.max_wait = 5s;
  how.retry_delay = 200ms;
  how.retry_jitter = 100ms;
  acquire("res", how);
  Reply ok;
  ok.type = Reply::Type::kStatus;
  ok.str = "OK";
  nodes_.answer(0, ok);
  nodes_.answer(1, nil());
  nodes_.answer(2, nil());
  nodes_.answer(3, nil());
  EXPECT_FALSE(outcome_.has_value());
  // The failed round released on every node it asked, node 1's key included.
  std::size_t releases = 0;
  for (const auto& [node, wire] : nodes_.log_) releases += is_release(wire) ? 1U : 0U;
  EXPECT_EQ(releases, 5u);
  EXPECT_EQ(metrics_.snapshot({}, {}, false).contended_rounds, 1u);
  // random_unit() is 0.5: the retry comes after exactly retry_delay.
  const auto sent_before = nodes_.log_.size();
  scheduler_.advance(199ms);
  EXPECT_EQ(nodes_.log_.size(), sent_before);
  scheduler_.advance(1ms);
  EXPECT_EQ(nodes_.log_.size(), sent_before + 5);
  // Node 4's answer to round 1 and the releases come first on each
  // connection; then round 2 is granted.
  nodes_.answer(4, nil());
  for (std::size_t i = 0; i < 5; ++i) nodes_.answer(i, integer(i == 0 ? 1 : 0));
  for (std::size_t i = 0; i < 3; ++i) nodes_.answer(i, ok);
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_TRUE(*outcome_) << outcome_->error();
  const auto m = metrics_.snapshot({}, {}, false);
  EXPECT_EQ(m.rounds_per_acquire.sum, 2.0);
}

TEST_F(OperationsTest, AFailedFencedRoundReleasesOnlyWhereItMayHaveSetTheKey) {
  AcquireOptions how;
  how.max_attempts = 1;
  acquire("res", how);
  nodes_.answer(0, integer(41));  // granted: released
  nodes_.answer(1, integer(0));   // another token's key: nothing to release
  nodes_.answer(2, integer(-1));  // this token's, from a lost earlier release
  nodes_.answer(3, integer(0));   // the third "no": the round fails
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_FALSE(*outcome_);
  EXPECT_EQ(outcome_->error().code(), ErrorCode::kHeldByAnother) << outcome_->error();
  EXPECT_EQ(outcome_->error().nodes()[2].status, NodeStatus::kRefused);
  EXPECT_THAT(outcome_->error().nodes()[2].detail, HasSubstr("this acquire's token"));
  std::vector<std::size_t> released;
  for (const auto& [node, wire] : nodes_.log_) {
    if (is_release(wire)) released.push_back(node);
  }
  // Node 5 had not answered: released in case its acquire set the key.
  EXPECT_EQ(released, (std::vector<std::size_t>{0, 2, 4}));
}

TEST_F(OperationsTest, AFailedFencedRoundReleasesWhereTheAnswerIsStillOnItsWay) {
  AcquireOptions how;
  how.max_attempts = 1;
  acquire("res", how);
  for (std::size_t i = 0; i < 3; ++i) nodes_.answer(i, integer(0));
  ASSERT_TRUE(outcome_.has_value());
  std::vector<std::size_t> released;
  for (const auto& [node, wire] : nodes_.log_) {
    if (is_release(wire)) released.push_back(node);
  }
  EXPECT_EQ(released, (std::vector<std::size_t>{3, 4}));
}

TEST_F(OperationsTest, ALateOkAfterTheRoundFailedIsCoveredByItsCleanup) {
  options_.fencing = false;
  options_.node_timeout = 50ms;
  acquire("res");
  Reply ok;
  ok.type = Reply::Type::kStatus;
  ok.str = "OK";
  nodes_.answer(0, ok);
  nodes_.answer(1, ok);
  scheduler_.advance(50ms);  // the other three are silent: no quorum
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_FALSE(*outcome_);
  EXPECT_EQ(outcome_->error().code(), ErrorCode::kNoQuorum) << outcome_->error();
  EXPECT_EQ(outcome_->error().nodes()[2].status, NodeStatus::kTimeout);
  // The cleanup went to every node asked, the silent ones included: on each
  // connection it runs after the SET, so a late OK leaves no key.
  for (std::size_t i = 2; i < 5; ++i) {
    ASSERT_EQ(nodes_.waiting(i), 2u) << i;
  }
  nodes_.answer(2, ok);  // late
  EXPECT_EQ(metrics_.snapshot({}, {}, false).late_replies_released, 1u);
  EXPECT_TRUE(is_release(nodes_.oldest(2)));
}

TEST_F(OperationsTest, ANodeThatIsDownVotesNoAtOnceAndIsNeverQueued) {
  options_.fencing = false;
  nodes_.set_up(3, false);
  nodes_.set_up(4, false);
  acquire("res");
  EXPECT_EQ(nodes_.waiting(3), 0u);
  Reply ok;
  ok.type = Reply::Type::kStatus;
  ok.str = "OK";
  for (std::size_t i = 0; i < 3; ++i) nodes_.answer(i, ok);
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_TRUE(*outcome_) << outcome_->error();
  EXPECT_EQ((*outcome_)->votes()[3].status, NodeStatus::kDisconnected);
  EXPECT_THAT((*outcome_)->votes()[3].detail, HasSubstr("connection refused"));
}

TEST_F(OperationsTest, AReleaseRemembersTheNodesThatAreDown) {
  options_.release_wait = ClientOptions::ReleaseWait::kEveryNode;
  nodes_.set_up(1, false);
  std::optional<Result<ReleaseReport>> report;
  start_release(context(), {"res"}, "tok", scheduler_.now() + 10s, {},
                [&](Result<ReleaseReport> r) { report = std::move(r); });
  ASSERT_EQ(nodes_.cleanups_.size(), 1u);
  EXPECT_EQ(nodes_.cleanups_[0].first, 1u);
  for (std::size_t i : {0u, 2u, 3u, 4u}) nodes_.answer(i, integer(i == 4 ? 0 : 1));
  ASSERT_TRUE(report.has_value());
  ASSERT_TRUE(*report);
  EXPECT_EQ((*report)->deleted, 3);
  EXPECT_EQ((*report)->nodes[1].status, NodeStatus::kDisconnected);
  EXPECT_EQ((*report)->nodes[4].status, NodeStatus::kRefused);
}

// ClientOptions::release_wait kMajority (the default): the lock is free once
// a majority deleted its key, and the caller hears so then; the others'
// deletes carry on, and one whose connection fails is remembered.
TEST_F(OperationsTest, AReleaseReportsOnceAMajorityDeletedAndTheRestCarryOn) {
  std::optional<Result<ReleaseReport>> report;
  start_release(context(), {"res"}, "tok", scheduler_.now() + 10s, {},
                [&](Result<ReleaseReport> r) { report = std::move(r); });
  EXPECT_EQ(active_.size(), 1u);
  nodes_.answer(3, integer(1));
  nodes_.answer(0, integer(0));  // nothing to delete there: not a delete
  nodes_.answer(1, integer(1));
  EXPECT_FALSE(report.has_value()) << "two deletes are not a majority of five";
  scheduler_.advance(3ms);
  nodes_.answer(4, integer(1));
  ASSERT_TRUE(report.has_value());
  ASSERT_TRUE(*report) << report->error();
  EXPECT_EQ((*report)->deleted, 3);
  EXPECT_EQ((*report)->nodes[0].status, NodeStatus::kRefused);
  EXPECT_EQ((*report)->nodes[4].status, NodeStatus::kOk);
  EXPECT_EQ((*report)->nodes[4].rtt, 3ms);
  EXPECT_EQ((*report)->nodes[2].status, NodeStatus::kPending);
  EXPECT_THAT((*report)->nodes[2].detail, HasSubstr("on its way"));
  EXPECT_EQ(active_.size(), 0u) << "the caller no longer waits for it";
  // No timeout is left behind to report again.
  scheduler_.advance(options_.release_timeout + 1s);
  // The last node's connection fails under the delete: remembered, to be
  // replayed when it is back.
  EXPECT_TRUE(nodes_.cleanups_.empty());
  nodes_.fail(2, "connection reset");
  ASSERT_EQ(nodes_.cleanups_.size(), 1u);
  EXPECT_EQ(nodes_.cleanups_[0].first, 2u);
  EXPECT_EQ(nodes_.cleanups_[0].second, "res");
}

TEST_F(OperationsTest, AReleaseWithoutAMajorityOfDeletesWaitsForEveryNode) {
  std::optional<Result<ReleaseReport>> report;
  start_release(context(), {"res"}, "tok", scheduler_.now() + 10s, {},
                [&](Result<ReleaseReport> r) { report = std::move(r); });
  for (std::size_t i : {0u, 1u, 2u, 3u}) {
    nodes_.answer(i, integer(i % 2 == 0 ? 1 : 0));
    EXPECT_FALSE(report.has_value()) << "after node " << i;
  }
  nodes_.answer(4, integer(0));
  ASSERT_TRUE(report.has_value());
  ASSERT_TRUE(*report);
  EXPECT_EQ((*report)->deleted, 2);
  EXPECT_EQ(count_status((*report)->nodes, NodeStatus::kPending), 0u);
}

TEST_F(OperationsTest, AReleaseThatNoMajorityAnswersReportsAtReleaseTimeout) {
  std::optional<Result<ReleaseReport>> report;
  start_release(context(), {"res"}, "tok", scheduler_.now() + 10s, {},
                [&](Result<ReleaseReport> r) { report = std::move(r); });
  nodes_.answer(0, integer(1));
  nodes_.answer(1, integer(1));
  scheduler_.advance(options_.release_timeout - 1ms);
  EXPECT_FALSE(report.has_value());
  scheduler_.advance(1ms);
  ASSERT_TRUE(report.has_value());
  ASSERT_TRUE(*report);
  EXPECT_EQ((*report)->deleted, 2);
  EXPECT_EQ(count_status((*report)->nodes, NodeStatus::kTimeout), 3u);
  EXPECT_EQ(active_.size(), 0u);
  nodes_.answer(2, integer(1));  // late: nothing reported twice
}

TEST_F(OperationsTest, AReleaseWaitingForEveryNodeDoesNotReportAtAMajority) {
  options_.release_wait = ClientOptions::ReleaseWait::kEveryNode;
  std::optional<Result<ReleaseReport>> report;
  start_release(context(), {"res"}, "tok", scheduler_.now() + 10s, {},
                [&](Result<ReleaseReport> r) { report = std::move(r); });
  for (std::size_t i : {0u, 1u, 2u, 3u}) nodes_.answer(i, integer(1));
  EXPECT_FALSE(report.has_value());
  nodes_.answer(4, integer(1));
  ASSERT_TRUE(report.has_value());
  ASSERT_TRUE(*report);
  EXPECT_EQ((*report)->deleted, 5);
}

TEST_F(OperationsTest, AnExtensionDecidedAfterTheLockExpiredIsRefused) {
  const Lock lock(std::string("res"), "tok", scheduler_.now() + 30ms, {}, 10s, 0);
  std::optional<Result<Lock>> out;
  ExtendOptions how;
  how.node_timeout = 100ms;
  start_extend(context(), lock, 10s, how, [&](Result<Lock> r) { out = std::move(r); });
  nodes_.answer(0, integer(1));
  nodes_.answer(1, integer(1));
  scheduler_.advance(40ms);  // past the lock's validity before the third yes
  ASSERT_TRUE(out.has_value());
  ASSERT_FALSE(*out);
  EXPECT_EQ(out->error().code(), ErrorCode::kExpired) << out->error();
}

// Contest gating (AcquireOptions::contest_gate): the resource's gate node,
// and a waiter whose first round found the lock held everywhere.
class GateTest : public OperationsTest {
 protected:
  static constexpr std::size_t kN = 5;
  const std::size_t gate_ = Route::of({"res"}).slot_number() % kN;
  [[nodiscard]] std::size_t other() const { return (gate_ + 1) % kN; }

  static AcquireOptions waiting() {
    AcquireOptions how;
    how.contest_gate = true;
    how.max_wait = 60s;
    how.retry_delay = 5s;
    how.retry_jitter = 0ms;
    return how;
  }
  // Fenced (the default): 0 says another token holds the key, so the failed
  // round releases nothing.
  void start_held(AcquireOptions how = waiting()) {
    acquire_listening("res", how);
    refuse_first_rounds(1);
    ASSERT_FALSE(outcome_.has_value());
    ASSERT_TRUE(wake_.watching());
  }
  // Two such waiters of one client: the older one's outcome in outcome_.
  void start_two_held(std::optional<Result<Lock>>& younger) {
    acquire_listening("res", waiting());
    acquire_listening("res", waiting(), &younger);
    refuse_first_rounds(2);
  }
  // Every node refuses the first rounds of `n` acquires, the gate first;
  // then the failed rounds' releases (sent where the answer was still on its
  // way) are answered.
  void refuse_first_rounds(int n) {
    for (int k = 0; k < n; ++k) {
      nodes_.answer(gate_, integer(0));
      for (std::size_t i = 0; i < kN; ++i) {
        if (i != gate_) nodes_.answer(i, integer(0));
      }
    }
    for (std::size_t i = 0; i < kN; ++i) {
      while (nodes_.waiting(i) > 0) nodes_.answer(i, integer(0));
    }
  }
};

TEST_F(GateTest, AWokenWaiterAsksTheGateAloneAndTheOthersOnceItGranted) {
  start_held();
  const auto before = nodes_.log_.size();
  // Other nodes' announcements: the gate's is what says it is free there.
  wake_.announce(other());
  EXPECT_EQ(nodes_.log_.size(), before);
  wake_.announce(gate_);
  EXPECT_EQ(sent_to(before), std::vector<std::size_t>{gate_});
  const auto round_start = scheduler_.now();
  scheduler_.advance(3ms);
  nodes_.answer(gate_, integer(100));
  const auto asked = sent_to(before + 1);
  EXPECT_EQ(asked.size(), kN - 1);
  EXPECT_EQ(std::count(asked.begin(), asked.end(), gate_), 0);
  for (std::size_t k = 0; k < 2; ++k) nodes_.answer(asked[k], integer(100));
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_TRUE(*outcome_) << outcome_->error();
  EXPECT_EQ(outcome_->value().fence(), 100u);
  // Validity counts from before the gate's send.
  EXPECT_EQ(outcome_->value().valid_until(), round_start + 10s - 100ms - 2ms);
  EXPECT_FALSE(wake_.watching());
}

TEST_F(GateTest, AGateRefusalThatCameAfterTheRoundFailedStillGates) {
  acquire_listening("res", waiting());
  for (std::size_t i = 0; i < kN; ++i) {
    if (i != gate_) nodes_.answer(i, integer(0));
  }
  ASSERT_FALSE(outcome_.has_value());
  // The round failed at the third refusal; then the gate's answer came (and
  // then the answer to the release sent in case its acquire had set the key).
  nodes_.answer(gate_, integer(0));
  nodes_.answer(gate_, integer(0));
  const auto before = nodes_.log_.size();
  wake_.announce(gate_);
  EXPECT_EQ(sent_to(before), std::vector<std::size_t>{gate_});
}

TEST_F(GateTest, AWaiterThatLosesAtTheGateLeavesTheOthersAloneAndWaitsForItsAnnouncement) {
  start_held();
  wake_.announce(gate_);
  const auto before = nodes_.log_.size();
  nodes_.answer(gate_, integer(0));  // another waiter got there first
  EXPECT_EQ(nodes_.log_.size(), before) << "no release, nothing to the other nodes";
  EXPECT_FALSE(outcome_.has_value());
  // Echoes of the same release from the other nodes change nothing.
  wake_.announce(other());
  scheduler_.advance(1s);
  EXPECT_EQ(nodes_.log_.size(), before);
  // The next holder's release, announced by the gate: asked again, alone.
  wake_.announce(gate_);
  EXPECT_EQ(sent_to(before), std::vector<std::size_t>{gate_});
  nodes_.answer(gate_, integer(0));
  // Its retry timer (5 s after its last round) asks every node at once.
  scheduler_.advance(5s);
  EXPECT_EQ(sent_to(before + 1).size(), kN);
}

TEST_F(GateTest, AGateRefusalSaysWhyTheOthersWereNotAsked) {
  auto how = waiting();
  how.max_wait = 0ms;
  how.max_attempts = 2;
  start_held(how);
  wake_.announce(gate_);
  nodes_.answer(gate_, integer(0));
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_FALSE(*outcome_);
  const auto& error = outcome_->error();
  EXPECT_EQ(error.code(), ErrorCode::kHeldByAnother) << error;
  EXPECT_EQ(error.nodes()[gate_].status, NodeStatus::kRefused);
  EXPECT_EQ(error.nodes()[other()].status, NodeStatus::kRefused);
  EXPECT_THAT(error.nodes()[other()].detail, HasSubstr("not asked"));
  EXPECT_THAT(error.nodes()[other()].detail, HasSubstr(nodes_.name(gate_)));
}

TEST_F(GateTest, AReleaseAnnouncedWhileTheGateIsAskedIsAskedAgainAtOnce) {
  start_held();
  wake_.announce(gate_);
  const auto before = nodes_.log_.size();
  wake_.announce(gate_);  // the gate freed the key again meanwhile
  nodes_.answer(gate_, integer(0));
  scheduler_.advance(0ms);
  EXPECT_EQ(sent_to(before), std::vector<std::size_t>{gate_});
}

TEST_F(GateTest, AnErrorFromTheGateLetsTheOthersVote) {
  start_held();
  wake_.announce(gate_);
  const auto before = nodes_.log_.size();
  Reply error;
  error.type = Reply::Type::kError;
  error.str = "OOM command not allowed";
  nodes_.answer(gate_, error);
  const auto asked = sent_to(before);
  ASSERT_EQ(asked.size(), kN - 1);
  for (std::size_t k = 0; k < 3; ++k) nodes_.answer(asked[k], integer(7));
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_TRUE(*outcome_) << outcome_->error();
  EXPECT_EQ(outcome_->value().votes()[gate_].status, NodeStatus::kError);
}

TEST_F(GateTest, AGateThatDoesNotAnswerInTimeLetsTheOthersVoteWithinTheValidity) {
  start_held();
  wake_.announce(gate_);
  const auto round_start = scheduler_.now();
  const auto before = nodes_.log_.size();
  scheduler_.advance(49ms);
  EXPECT_EQ(nodes_.log_.size(), before);
  scheduler_.advance(1ms);  // the node timeout: 10 s / 200
  const auto asked = sent_to(before);
  ASSERT_EQ(asked.size(), kN - 1);
  // They get a node timeout of their own; the gate's answer, now late,
  // changes nothing.
  scheduler_.advance(45ms);
  nodes_.answer(gate_, integer(7));
  for (std::size_t k = 0; k < 3; ++k) nodes_.answer(asked[k], integer(7));
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_TRUE(*outcome_) << outcome_->error();
  EXPECT_EQ(outcome_->value().votes()[gate_].status, NodeStatus::kTimeout);
  EXPECT_EQ(outcome_->value().valid_until(), round_start + 10s - 100ms - 2ms);
}

TEST_F(GateTest, AGateThatIsDownIsNotWaitedFor) {
  start_held();
  nodes_.set_up(gate_, false);
  const auto before = nodes_.log_.size();
  // Its announcement cannot come: another node's starts a round at once,
  // to every node that is up.
  wake_.announce(other());
  EXPECT_EQ(sent_to(before).size(), kN - 1);
}

TEST_F(GateTest, AnotherNodesAnnouncementAsksASilentGateAfterAShortGrace) {
  start_held();
  const auto before = nodes_.log_.size();
  wake_.announce(other());  // the gate's subscription may be down
  EXPECT_EQ(nodes_.log_.size(), before);
  scheduler_.advance(2ms);
  EXPECT_EQ(sent_to(before), std::vector<std::size_t>{gate_});
}

TEST_F(GateTest, OfOneClientsGatedWaitersTheOldestAsksTheGate) {
  std::optional<Result<Lock>> younger;
  start_two_held(younger);
  const auto before = nodes_.log_.size();
  wake_.announce(gate_);
  EXPECT_EQ(sent_to(before), std::vector<std::size_t>{gate_}) << "the older one only";
  nodes_.answer(gate_, integer(9));
  const auto asked = sent_to(before + 1);
  ASSERT_EQ(asked.size(), kN - 1);
  for (std::size_t k = 0; k < 2; ++k) nodes_.answer(asked[k], integer(9));
  ASSERT_TRUE(outcome_.has_value());
  ASSERT_TRUE(*outcome_) << outcome_->error();
  EXPECT_FALSE(younger.has_value());
  // Its release, announced by the gate: now the younger one asks.
  const auto later = nodes_.log_.size();
  wake_.announce(gate_);
  EXPECT_EQ(sent_to(later), std::vector<std::size_t>{gate_});
}

TEST_F(GateTest, AWaiterThatLeavesTheGateToAnOlderOneKeepsItsRetryTimer) {
  std::optional<Result<Lock>> younger;
  start_two_held(younger);
  // Another node's announcement first: both wait out a grace for the gate's.
  wake_.announce(other());
  const auto before = nodes_.log_.size();
  wake_.announce(gate_);
  EXPECT_EQ(sent_to(before), std::vector<std::size_t>{gate_});
  nodes_.answer(gate_, integer(0));  // the older one lost to a third client
  scheduler_.advance(1s);
  EXPECT_EQ(nodes_.log_.size(), before + 1) << "no grace round from the younger one";
  // The younger one's retry timer still runs (5 s after it stood back).
  scheduler_.advance(4s);
  std::size_t acquires = 0;
  for (std::size_t k = before + 1; k < nodes_.log_.size(); ++k) {
    acquires += is_fenced_acquire(nodes_.log_[k].second) ? 1U : 0U;
  }
  EXPECT_GE(acquires, kN);
  EXPECT_FALSE(younger.has_value());
}

TEST_F(GateTest, TheFirstRoundAndTheRetryTimersGoToEveryNode) {
  start_held();
  EXPECT_EQ(sent_to(0).size(), kN + 2);  // and two releases
  const auto before = nodes_.log_.size();
  scheduler_.advance(5s);
  EXPECT_EQ(sent_to(before).size(), kN);
}

TEST_F(GateTest, WithTheGateOffAWokenWaiterAsksEveryNode) {
  auto how = waiting();
  how.contest_gate = false;  // the default
  EXPECT_FALSE(AcquireOptions{}.contest_gate);
  start_held(how);
  const auto before = nodes_.log_.size();
  wake_.announce(gate_);
  EXPECT_EQ(sent_to(before).size(), kN);
}

TEST_F(GateTest, AWaiterWhoseLeftoverKeyHoldsTheGateDoesNotGate) {
  acquire_listening("res", waiting());
  for (std::size_t i = 0; i < kN; ++i) nodes_.answer(i, integer(i == gate_ ? -1 : 0));
  const auto before = nodes_.log_.size();
  ASSERT_GE(before, kN + 1);  // the leftover key is released
  wake_.announce(other());
  std::size_t acquires = 0;
  for (std::size_t k = before; k < nodes_.log_.size(); ++k) {
    acquires += is_fenced_acquire(nodes_.log_[k].second) ? 1U : 0U;
  }
  EXPECT_EQ(acquires, kN);
}

}  // namespace
}  // namespace redlock::detail
