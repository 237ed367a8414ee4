// Redlock's rules fed with values: quorum, drift, validity, node timeouts, the
// round tally (with an injected clock: a fixed t0 plus offsets, never
// Clock::now() and never a sleep), reconnect backoff and restart voting.
#include "rules.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <optional>
#include <ostream>
#include <string_view>
#include <vector>

#include "time_values.hpp"

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;
using State = Round::State;

// ---------------------------------------------------------------- quorum

TEST(Quorum, StrictMajorityForOneToSevenNodes) {
  EXPECT_EQ(quorum(1), 1u);
  EXPECT_EQ(quorum(2), 2u);
  EXPECT_EQ(quorum(3), 2u);
  EXPECT_EQ(quorum(4), 3u);
  EXPECT_EQ(quorum(5), 3u);
  EXPECT_EQ(quorum(6), 4u);
  EXPECT_EQ(quorum(7), 4u);
  static_assert(quorum(5) == 3, "quorum is constexpr");
}

// ------------------------------------------------------ drift and validity

TEST(DriftAllowance, TtlTimesFactorPlusTwoMilliseconds) {
  EXPECT_EQ(dur(drift_allowance(10s, 0.01)), dur(102ms));
  EXPECT_EQ(dur(drift_allowance(1000ms, 0.01)), dur(12ms));
  EXPECT_EQ(dur(drift_allowance(30s, 0.01)), dur(302ms));
  EXPECT_EQ(dur(drift_allowance(10s, 0.0)), dur(2ms));
  EXPECT_EQ(dur(drift_allowance(1000ms, 0.25)), dur(252ms));
  EXPECT_EQ(dur(drift_allowance(1ms, 0.01)), dur(2010us));
}

TEST(DriftAllowance, RoundsUpToWholeMicroseconds) {
  // 1 ms * 0.0015 = 1.5 us: never understate the drift.
  EXPECT_EQ(dur(drift_allowance(1ms, 0.0015)), dur(2002us));
  // 3 ms * 0.0001 = 0.3 us.
  EXPECT_EQ(dur(drift_allowance(3ms, 0.0001)), dur(2001us));
}

TEST(Validity, TtlMinusElapsedMinusDrift) {
  EXPECT_EQ(dur(validity(10s, 0ms, 0.01)), dur(9898ms));
  EXPECT_EQ(dur(validity(10s, 100ms, 0.01)), dur(9798ms));
  EXPECT_EQ(dur(validity(1000ms, 0ms, 0.0)), dur(998ms));
  EXPECT_EQ(dur(validity(1000ms, 500ms, 0.01)), dur(488ms));
}

TEST(Validity, ElapsedRoundsUpToMicroseconds) {
  EXPECT_EQ(dur(validity(10s, 1ns, 0.01)), dur(9898ms - 1us));
  EXPECT_EQ(dur(validity(10s, 1500ns, 0.01)), dur(9898ms - 2us));
  EXPECT_EQ(dur(validity(10s, 2000ns, 0.01)), dur(9898ms - 2us));
  EXPECT_EQ(dur(validity(10s, 2001ns, 0.01)), dur(9898ms - 3us));
}

TEST(Validity, NegativeWhenTheGrantCameTooLate) {
  EXPECT_EQ(dur(validity(1000ms, 995ms, 0.01)), dur(-7ms));
  EXPECT_EQ(dur(validity(1000ms, 2s, 0.01)), dur(-1012ms));
  EXPECT_EQ(dur(validity(2ms, 0ms, 0.01)), dur(-20us));
}

// ---------------------------------------------------------- node timeout

TEST(EffectiveNodeTimeout, ConfiguredValueWins) {
  EXPECT_EQ(dur(effective_node_timeout(7ms, 10s)), dur(7ms));
  EXPECT_EQ(dur(effective_node_timeout(1ms, 1s)), dur(1ms));
  EXPECT_EQ(dur(effective_node_timeout(5000ms, 100s)), dur(5000ms));
}

TEST(EffectiveNodeTimeout, AutoIsTtlOver200WithinBounds) {
  EXPECT_EQ(dur(effective_node_timeout(0ms, 1s)), dur(10ms));  // 5 ms, raised to the floor
  EXPECT_EQ(dur(effective_node_timeout(0ms, 10s)), dur(50ms));
  EXPECT_EQ(dur(effective_node_timeout(0ms, 100s)), dur(250ms));  // 500 ms, cut to the ceiling
  EXPECT_EQ(dur(effective_node_timeout(0ms, 2s)), dur(10ms));
  EXPECT_EQ(dur(effective_node_timeout(0ms, 20s)), dur(100ms));
  EXPECT_EQ(dur(effective_node_timeout(0ms, 50s)), dur(250ms));
  EXPECT_EQ(dur(effective_node_timeout(0ms, 1ms)), dur(kMinAutoNodeTimeout));
  EXPECT_EQ(dur(effective_node_timeout(0ms, std::chrono::hours(24))), dur(kMaxAutoNodeTimeout));
}

// ----------------------------------------------------------------- Round

constexpr double kDrift = 0.01;

Round make_round(std::size_t n, std::chrono::milliseconds ttl = 10s,
                 std::chrono::milliseconds min_validity = 1ms) {
  return Round(n, t0, ttl, kDrift, min_validity);
}

TEST(Round, StartsOpenWithEveryVotePending) {
  Round r = make_round(5);
  EXPECT_EQ(r.state(), State::kOpen);
  EXPECT_FALSE(r.decided());
  EXPECT_EQ(r.start(), t0);
  EXPECT_EQ(r.yes(), 0u);
  EXPECT_EQ(r.no(), 0u);
  EXPECT_EQ(r.votes(), std::vector<NodeStatus>(5, NodeStatus::kPending));
}

TEST(Round, GrantsAtTheThirdYesOfFiveWithoutWaitingForTheRest) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kOk, t0 + 1ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(3, NodeStatus::kOk, t0 + 2ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(4, NodeStatus::kOk, t0 + 3ms);
  EXPECT_EQ(r.state(), State::kGranted);
  EXPECT_TRUE(r.decided());
  EXPECT_EQ(r.yes(), 3u);
  EXPECT_EQ(r.no(), 0u);
  EXPECT_EQ(r.votes(),
            (std::vector<NodeStatus>{NodeStatus::kOk, NodeStatus::kPending, NodeStatus::kPending,
                                     NodeStatus::kOk, NodeStatus::kOk}));
  // valid_until does not depend on when the deciding vote came...
  EXPECT_EQ(at(r.valid_until()), at(t0 + 10s - 102ms));
  // ...the validity at decision does: ttl - 3 ms elapsed - 102 ms drift.
  EXPECT_EQ(dur(r.validity_at_decision()), dur(10s - 3ms - 102ms));
}

TEST(Round, GrantsWithSomeNoVotesWhenAMajoritySaysYes) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kRefused, t0 + 1ms);
  r.vote(1, NodeStatus::kTimeout, t0 + 2ms);
  r.vote(2, NodeStatus::kOk, t0 + 3ms);
  r.vote(3, NodeStatus::kOk, t0 + 4ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(4, NodeStatus::kOk, t0 + 5ms);
  EXPECT_EQ(r.state(), State::kGranted);
  EXPECT_EQ(r.yes(), 3u);
  EXPECT_EQ(r.no(), 2u);
  EXPECT_EQ(at(r.valid_until()), at(t0 + 10s - 102ms));
}

TEST(Round, ValidUntilIsStartPlusTtlMinusDrift) {
  Round r(3, t0, 1000ms, 0.0, 1ms);
  r.vote(0, NodeStatus::kOk, t0 + 100ms);
  r.vote(1, NodeStatus::kOk, t0 + 200ms);
  ASSERT_EQ(r.state(), State::kGranted);
  EXPECT_EQ(at(r.valid_until()), at(t0 + 998ms));
  EXPECT_EQ(dur(r.validity_at_decision()), dur(798ms));
}

TEST(Round, FailsAsSoonAsAMajorityIsImpossibleHeldByAnother) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kRefused, t0 + 1ms);
  r.vote(1, NodeStatus::kTimeout, t0 + 2ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(2, NodeStatus::kError, t0 + 3ms);  // third no of five: 3 yes is out of reach
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kHeldByAnother) << r.failure();
  EXPECT_EQ(r.yes(), 0u);
  EXPECT_EQ(r.no(), 3u);
  EXPECT_EQ(r.votes()[3], NodeStatus::kPending);
  EXPECT_EQ(r.votes()[4], NodeStatus::kPending);
}

TEST(Round, AllRefusedIsHeldByAnother) {
  Round r = make_round(5);
  for (std::size_t i = 0; i < 3; ++i) r.vote(i, NodeStatus::kRefused, t0 + 1ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kHeldByAnother) << r.failure();
}

TEST(Round, OneRefusalAmongYesVotesStillCountsAsHeldByAnother) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kOk, t0 + 1ms);
  r.vote(1, NodeStatus::kOk, t0 + 1ms);
  r.vote(2, NodeStatus::kDisconnected, t0 + 1ms);
  r.vote(3, NodeStatus::kTimeout, t0 + 1ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(4, NodeStatus::kRefused, t0 + 2ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kHeldByAnother) << r.failure();
}

TEST(Round, FailsWithNoQuorumWhenNobodyRefused) {
  Round r = make_round(5);
  r.vote(4, NodeStatus::kOk, t0 + 1ms);
  r.vote(0, NodeStatus::kError, t0 + 1ms);
  r.vote(1, NodeStatus::kTimeout, t0 + 2ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(2, NodeStatus::kDisconnected, t0 + 3ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kNoQuorum) << r.failure();
  EXPECT_EQ(r.yes(), 1u);
  EXPECT_EQ(r.no(), 3u);
}

TEST(Round, VotesAfterTheDecisionAreIgnored) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kOk, t0 + 1ms);
  r.vote(1, NodeStatus::kOk, t0 + 1ms);
  r.vote(2, NodeStatus::kOk, t0 + 2ms);
  ASSERT_EQ(r.state(), State::kGranted);
  const auto valid_until = r.valid_until();
  const auto validity_at_decision = r.validity_at_decision();

  r.vote(3, NodeStatus::kRefused, t0 + 3ms);
  r.vote(4, NodeStatus::kOk, t0 + 4ms);
  r.expire(t0 + 50ms);
  EXPECT_EQ(r.state(), State::kGranted);
  EXPECT_EQ(r.yes(), 3u);
  EXPECT_EQ(r.no(), 0u);
  EXPECT_EQ(r.votes()[3], NodeStatus::kPending);
  EXPECT_EQ(r.votes()[4], NodeStatus::kPending);
  EXPECT_EQ(at(r.valid_until()), at(valid_until));
  EXPECT_EQ(dur(r.validity_at_decision()), dur(validity_at_decision));
}

TEST(Round, VotesAfterAFailureAreIgnored) {
  Round r = make_round(3);
  r.vote(0, NodeStatus::kTimeout, t0 + 1ms);
  r.vote(1, NodeStatus::kError, t0 + 1ms);
  ASSERT_EQ(r.state(), State::kFailed);
  ASSERT_EQ(r.failure(), ErrorCode::kNoQuorum) << r.failure();
  r.vote(2, NodeStatus::kRefused, t0 + 2ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kNoQuorum) << r.failure();
  EXPECT_EQ(r.no(), 2u);
  EXPECT_EQ(r.votes()[2], NodeStatus::kPending);
}

TEST(Round, ASecondVoteFromTheSameNodeIsIgnored) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kOk, t0 + 1ms);
  r.vote(0, NodeStatus::kOk, t0 + 2ms);
  r.vote(0, NodeStatus::kOk, t0 + 3ms);
  EXPECT_EQ(r.state(), State::kOpen);
  EXPECT_EQ(r.yes(), 1u);

  r.vote(1, NodeStatus::kRefused, t0 + 4ms);
  r.vote(1, NodeStatus::kOk, t0 + 5ms);
  r.vote(1, NodeStatus::kRefused, t0 + 5ms);
  EXPECT_EQ(r.state(), State::kOpen);
  EXPECT_EQ(r.yes(), 1u);
  EXPECT_EQ(r.no(), 1u);
  EXPECT_EQ(r.votes()[0], NodeStatus::kOk);
  EXPECT_EQ(r.votes()[1], NodeStatus::kRefused);
}

TEST(Round, PendingAndOutOfRangeVotesAreIgnored) {
  Round r = make_round(3);
  r.vote(0, NodeStatus::kPending, t0 + 1ms);
  r.vote(3, NodeStatus::kOk, t0 + 1ms);
  r.vote(100, NodeStatus::kOk, t0 + 1ms);
  EXPECT_EQ(r.state(), State::kOpen);
  EXPECT_EQ(r.yes(), 0u);
  EXPECT_EQ(r.no(), 0u);
  EXPECT_EQ(r.votes(), std::vector<NodeStatus>(3, NodeStatus::kPending));
}

TEST(Round, ExpireMarksPendingAsTimeoutAndDecides) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kOk, t0 + 1ms);
  r.vote(1, NodeStatus::kOk, t0 + 2ms);
  r.vote(2, NodeStatus::kError, t0 + 3ms);
  ASSERT_EQ(r.state(), State::kOpen);
  r.expire(t0 + 50ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kNoQuorum) << r.failure();
  EXPECT_EQ(r.yes(), 2u);
  EXPECT_EQ(r.no(), 3u);
  EXPECT_EQ(r.votes(),
            (std::vector<NodeStatus>{NodeStatus::kOk, NodeStatus::kOk, NodeStatus::kError,
                                     NodeStatus::kTimeout, NodeStatus::kTimeout}));
}

TEST(Round, ExpireWithARefusalOnRecordIsHeldByAnother) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kOk, t0 + 1ms);
  r.vote(1, NodeStatus::kRefused, t0 + 2ms);
  r.expire(t0 + 50ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kHeldByAnother) << r.failure();
  EXPECT_EQ(r.no(), 4u);
}

TEST(Round, ExpireWithNoAnswersAtAll) {
  Round r = make_round(3);
  r.expire(t0 + 50ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kNoQuorum) << r.failure();
  EXPECT_EQ(r.votes(), std::vector<NodeStatus>(3, NodeStatus::kTimeout));
  EXPECT_EQ(r.no(), 3u);
}

TEST(Round, MajorityReachedTooLateIsValidityExhausted) {
  // The client froze while the replies were in flight: the yes votes are
  // processed 995 ms into a 1000 ms lock, leaving 1000 - 995 - 12 < 0.
  Round r = make_round(5, 1000ms);
  r.vote(0, NodeStatus::kOk, t0 + 995ms);
  r.vote(1, NodeStatus::kOk, t0 + 995ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(2, NodeStatus::kOk, t0 + 995ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kValidityExhausted) << r.failure();
  EXPECT_EQ(dur(r.validity_at_decision()), dur(-7ms));
  EXPECT_EQ(r.yes(), 3u);
}

TEST(Round, ValidityExactlyAtMinValidityIsGranted) {
  // ttl 1000 ms, drift 12 ms, min_validity 100 ms: the last grantable instant
  // is 888 ms; one microsecond later is too late.
  Round on_time = make_round(1, 1000ms, 100ms);
  on_time.vote(0, NodeStatus::kOk, t0 + 888ms);
  EXPECT_EQ(on_time.state(), State::kGranted);
  EXPECT_EQ(dur(on_time.validity_at_decision()), dur(100ms));
  EXPECT_EQ(at(on_time.valid_until()), at(t0 + 988ms));

  Round late = make_round(1, 1000ms, 100ms);
  late.vote(0, NodeStatus::kOk, t0 + 888ms + 1us);
  EXPECT_EQ(late.state(), State::kFailed);
  EXPECT_EQ(late.failure(), ErrorCode::kValidityExhausted) << late.failure();
  EXPECT_EQ(dur(late.validity_at_decision()), dur(100ms - 1us));

  // Sub-microsecond lateness is rounded up, never in the client's favour.
  Round barely = make_round(1, 1000ms, 100ms);
  barely.vote(0, NodeStatus::kOk, t0 + 888ms + 1ns);
  EXPECT_EQ(barely.state(), State::kFailed);
  EXPECT_EQ(barely.failure(), ErrorCode::kValidityExhausted) << barely.failure();
}

TEST(Round, OneNode) {
  Round yes = make_round(1);
  yes.vote(0, NodeStatus::kOk, t0 + 1ms);
  EXPECT_EQ(yes.state(), State::kGranted);
  EXPECT_EQ(at(yes.valid_until()), at(t0 + 10s - 102ms));

  Round refused = make_round(1);
  refused.vote(0, NodeStatus::kRefused, t0 + 1ms);
  EXPECT_EQ(refused.state(), State::kFailed);
  EXPECT_EQ(refused.failure(), ErrorCode::kHeldByAnother) << refused.failure();

  Round down = make_round(1);
  down.vote(0, NodeStatus::kDisconnected, t0);
  EXPECT_EQ(down.state(), State::kFailed);
  EXPECT_EQ(down.failure(), ErrorCode::kNoQuorum) << down.failure();
}

TEST(Round, TwoNodesNeedBoth) {
  Round both = make_round(2);
  both.vote(1, NodeStatus::kOk, t0 + 1ms);
  EXPECT_EQ(both.state(), State::kOpen);
  both.vote(0, NodeStatus::kOk, t0 + 2ms);
  EXPECT_EQ(both.state(), State::kGranted);

  // One "no" already makes a majority of two impossible.
  Round one_no = make_round(2);
  one_no.vote(0, NodeStatus::kOk, t0 + 1ms);
  one_no.vote(1, NodeStatus::kTimeout, t0 + 2ms);
  EXPECT_EQ(one_no.state(), State::kFailed);
  EXPECT_EQ(one_no.failure(), ErrorCode::kNoQuorum) << one_no.failure();

  Round first_no = make_round(2);
  first_no.vote(0, NodeStatus::kRefused, t0 + 1ms);
  EXPECT_EQ(first_no.state(), State::kFailed);
  EXPECT_EQ(first_no.failure(), ErrorCode::kHeldByAnother) << first_no.failure();
}

TEST(Round, ThreeNodesToleratesOneFailure) {
  Round r = make_round(3);
  r.vote(0, NodeStatus::kDisconnected, t0);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(1, NodeStatus::kOk, t0 + 1ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(2, NodeStatus::kOk, t0 + 2ms);
  EXPECT_EQ(r.state(), State::kGranted);
}

TEST(Round, RefusedCountsOnlyRefusals) {
  Round r = make_round(7);
  EXPECT_EQ(r.refused(), 0u);
  r.vote(0, NodeStatus::kRefused, t0 + 1ms);
  r.vote(1, NodeStatus::kTimeout, t0 + 1ms);
  r.vote(2, NodeStatus::kError, t0 + 1ms);
  r.vote(3, NodeStatus::kRefused, t0 + 1ms);
  r.vote(3, NodeStatus::kRefused, t0 + 1ms);  // a second answer is ignored
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.refused(), 2u);
  EXPECT_EQ(r.no(), 4u);
  EXPECT_EQ(r.yes(), 0u);
  // Votes after the decision change nothing.
  r.vote(4, NodeStatus::kRefused, t0 + 2ms);
  EXPECT_EQ(r.refused(), 2u);
  EXPECT_EQ(r.no(), 4u);
}

TEST(Round, ExpireDoesNotCountTimeoutsAsRefusals) {
  Round r = make_round(5);
  r.vote(0, NodeStatus::kRefused, t0 + 1ms);
  r.expire(t0 + 50ms);
  EXPECT_EQ(r.refused(), 1u);
  EXPECT_EQ(r.no(), 5u);
}

Round extend_round(std::size_t n) { return Round(n, t0, 10s, kDrift, 1ms, ErrorCode::kNotOwner); }

TEST(Round, ExtendRefusedByANodeFailsWithNotOwner) {
  Round r = extend_round(5);
  r.vote(0, NodeStatus::kOk, t0 + 1ms);
  r.vote(1, NodeStatus::kRefused, t0 + 1ms);
  r.vote(2, NodeStatus::kTimeout, t0 + 2ms);
  EXPECT_EQ(r.state(), State::kOpen);
  r.vote(3, NodeStatus::kError, t0 + 3ms);  // third no of five
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kNotOwner) << r.failure();
  EXPECT_EQ(r.refused(), 1u);
  EXPECT_EQ(r.yes(), 1u);
  EXPECT_EQ(r.no(), 3u);
}

TEST(Round, ExtendAllRefusedIsNotOwner) {
  Round r = extend_round(3);
  r.vote(2, NodeStatus::kRefused, t0 + 1ms);
  r.vote(0, NodeStatus::kRefused, t0 + 1ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kNotOwner) << r.failure();
  EXPECT_EQ(r.refused(), 2u);
}

TEST(Round, ExtendExpiredWithARefusalOnRecordIsNotOwner) {
  Round r = extend_round(5);
  r.vote(4, NodeStatus::kRefused, t0 + 1ms);
  r.vote(0, NodeStatus::kOk, t0 + 1ms);
  r.expire(t0 + 100ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kNotOwner) << r.failure();
}

TEST(Round, ExtendWithoutRefusalsIsStillNoQuorum) {
  Round r = extend_round(5);
  r.vote(0, NodeStatus::kTimeout, t0 + 1ms);
  r.vote(1, NodeStatus::kError, t0 + 1ms);
  r.vote(2, NodeStatus::kDisconnected, t0 + 1ms);
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kNoQuorum) << r.failure();
  EXPECT_EQ(r.refused(), 0u);

  Round expired = extend_round(3);
  expired.vote(0, NodeStatus::kOk, t0 + 1ms);
  expired.expire(t0 + 100ms);
  EXPECT_EQ(expired.state(), State::kFailed);
  EXPECT_EQ(expired.failure(), ErrorCode::kNoQuorum) << expired.failure();
}

TEST(Round, ExtendGrantedWithARefusalIsGranted) {
  Round r = extend_round(3);
  r.vote(0, NodeStatus::kRefused, t0 + 1ms);
  r.vote(1, NodeStatus::kOk, t0 + 1ms);
  r.vote(2, NodeStatus::kOk, t0 + 2ms);
  EXPECT_EQ(r.state(), State::kGranted);
  EXPECT_EQ(r.refused(), 1u);
  EXPECT_EQ(at(r.valid_until()), at(t0 + 10s - 102ms));
}

TEST(Round, ExtendTooLateIsValidityExhaustedNotNotOwner) {
  Round r(3, t0, 1000ms, kDrift, 1ms, ErrorCode::kNotOwner);
  r.vote(0, NodeStatus::kRefused, t0 + 1ms);
  r.vote(1, NodeStatus::kOk, t0 + 2ms);
  r.vote(2, NodeStatus::kOk, t0 + 988ms);  // 1000 - 988 - 12 = 0 < 1 ms
  EXPECT_EQ(r.state(), State::kFailed);
  EXPECT_EQ(r.failure(), ErrorCode::kValidityExhausted) << r.failure();
}

// ------------------------------------------------------- reconnect_delay

TEST(ReconnectDelay, WithinHalfToFullNominal) {
  for (int failures = 0; failures < 12; ++failures) {
    const auto nominal = std::min(2000ms, 50ms * (1 << failures));
    for (int i = 0; i < 1000; ++i) {
      const double u = i / 1000.0;
      const auto d = reconnect_delay(failures, 50ms, 2000ms, u);
      EXPECT_GE(dur(d), dur(nominal / 2)) << "failures=" << failures << " u=" << u;
      EXPECT_LE(dur(d), dur(nominal)) << "failures=" << failures << " u=" << u;
    }
  }
}

TEST(ReconnectDelay, DoublesUntilTheCap) {
  EXPECT_EQ(dur(reconnect_delay(0, 50ms, 2000ms, 0.0)), dur(25ms));
  EXPECT_EQ(dur(reconnect_delay(1, 50ms, 2000ms, 0.0)), dur(50ms));
  EXPECT_EQ(dur(reconnect_delay(2, 50ms, 2000ms, 0.0)), dur(100ms));
  EXPECT_EQ(dur(reconnect_delay(3, 50ms, 2000ms, 0.0)), dur(200ms));
  EXPECT_EQ(dur(reconnect_delay(4, 50ms, 2000ms, 0.0)), dur(400ms));
  EXPECT_EQ(dur(reconnect_delay(5, 50ms, 2000ms, 0.0)), dur(800ms));
  EXPECT_EQ(dur(reconnect_delay(6, 50ms, 2000ms, 0.0)), dur(1000ms));  // nominal capped at 2000
  EXPECT_EQ(dur(reconnect_delay(7, 50ms, 2000ms, 0.0)), dur(1000ms));
  // The upper end of the band is the nominal delay itself.
  EXPECT_EQ(dur(reconnect_delay(0, 50ms, 2000ms, 1.0)), dur(50ms));
  EXPECT_EQ(dur(reconnect_delay(3, 50ms, 2000ms, 1.0)), dur(400ms));
  EXPECT_EQ(dur(reconnect_delay(10, 50ms, 2000ms, 1.0)), dur(2000ms));
}

TEST(ReconnectDelay, NeverBelowOneMillisecond) {
  EXPECT_EQ(dur(reconnect_delay(0, 1ms, 2000ms, 0.0)), dur(1ms));
  EXPECT_EQ(dur(reconnect_delay(0, 0ms, 2000ms, 0.0)), dur(1ms));
  EXPECT_EQ(dur(reconnect_delay(0, 0ms, 0ms, 0.5)), dur(1ms));
  EXPECT_EQ(dur(reconnect_delay(-5, 1ms, 1ms, 0.0)), dur(1ms));
}

TEST(ReconnectDelay, HugeFailureCountsDoNotOverflow) {
  for (const int failures : {31, 63, 64, 1000, INT_MAX}) {
    for (const double u : {0.0, 0.5, 0.999999}) {
      const auto d = reconnect_delay(failures, 50ms, 2000ms, u);
      EXPECT_GE(dur(d), dur(1000ms)) << "failures=" << failures << " u=" << u;
      EXPECT_LE(dur(d), dur(2000ms)) << "failures=" << failures << " u=" << u;
    }
  }
  // A cap far above min * 2^30 is not reached, but nothing wraps around.
  const auto big = reconnect_delay(INT_MAX, 1000ms, std::chrono::hours(24 * 365 * 100), 1.0);
  EXPECT_GT(dur(big), dur(0ms));
  EXPECT_LE(dur(big), dur(std::chrono::hours(24 * 365 * 100)));
}

TEST(ReconnectDelay, NegativeFailuresCountAsZero) {
  EXPECT_EQ(dur(reconnect_delay(-1, 50ms, 2000ms, 1.0)), dur(50ms));
  EXPECT_EQ(dur(reconnect_delay(INT_MIN, 50ms, 2000ms, 0.0)), dur(25ms));
}

// ---------------------------------------------------------------------------
// Restart-aware voting

TEST(RestartRule, ARunIdChangeKeepsTheNodeOutForTheWholeGraceFromNow) {
  const auto now = Clock::time_point{} + 100s;
  const auto d = restart_rule("aaa", "bbb", std::chrono::seconds(3600), 10s, now, {});
  EXPECT_TRUE(d.restarted);
  EXPECT_EQ(d.votes_from, now + 10s) << "a long uptime does not shorten it: the id changed";
}

TEST(RestartRule, TheSameRunIdChangesNothing) {
  const auto now = Clock::time_point{} + 100s;
  const auto earlier = now + 3s;  // a wait still running from before
  const auto d = restart_rule("aaa", "aaa", std::chrono::seconds(0), 10s, now, earlier);
  EXPECT_FALSE(d.restarted);
  EXPECT_EQ(d.votes_from, earlier) << "a reconnect neither lifts nor extends the wait";
}

TEST(RestartRule, AFirstSightOfAYoungNodeWaitsOutTheRestOfTheGrace) {
  const auto now = Clock::time_point{} + 100s;
  const auto d = restart_rule("", "aaa", std::chrono::seconds(4), 10s, now, {});
  EXPECT_FALSE(d.restarted);
  // Uptime is rounded down by INFO, so counting from it never waits too little.
  EXPECT_EQ(d.votes_from, now + 6s);
}

TEST(RestartRule, AFirstSightOfAnOldNodeVotesAtOnce) {
  const auto now = Clock::time_point{} + 100s;
  EXPECT_LE(restart_rule("", "aaa", std::chrono::seconds(10), 10s, now, {}).votes_from, now);
  EXPECT_LE(restart_rule("", "aaa", std::chrono::seconds(99999), 10s, now, {}).votes_from, now);
}

TEST(RestartRule, UnknownUptimeOrRunIdCannotBeJudged) {
  const auto now = Clock::time_point{} + 100s;
  EXPECT_LE(restart_rule("", "aaa", std::nullopt, 10s, now, {}).votes_from, now);
  const auto d = restart_rule("aaa", "", std::nullopt, 10s, now, {});
  EXPECT_FALSE(d.restarted);
  EXPECT_LE(d.votes_from, now);
}

TEST(RestartRule, ZeroGraceTurnsTheRuleOff) {
  const auto now = Clock::time_point{} + 100s;
  const auto d = restart_rule("aaa", "bbb", std::chrono::seconds(0), 0s, now, now + 5s);
  EXPECT_FALSE(d.restarted);
  EXPECT_LE(d.votes_from, now);
}

TEST(InfoField, FindsFieldsInAnInfoReply) {
  const std::string_view info =
      "# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\nuptime_in_seconds:42\r\n"
      "uptime_in_days:0\r\n";
  EXPECT_EQ(info_field(info, "run_id"), "abc123");
  EXPECT_EQ(info_field(info, "uptime_in_seconds"), "42");
  EXPECT_EQ(info_field(info, "uptime_in_days"), "0");
  EXPECT_FALSE(info_field(info, "uptime").has_value()) << "a prefix of a field is not the field";
  EXPECT_FALSE(info_field(info, "missing").has_value());
  EXPECT_FALSE(info_field("", "run_id").has_value());
  EXPECT_EQ(info_field("run_id:x", "run_id"), "x") << "no line ending";
}

}  // namespace
}  // namespace redlock::detail
