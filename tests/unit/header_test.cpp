// The umbrella header on its own, and the value and guard type traits the API
// promises (destructors never throw; moves never throw; guards are move-only).
// Each public header is also compiled alone in tests/unit/headers/.
#include <gtest/gtest.h>

#include <redlock/redlock.hpp>
#include <type_traits>

namespace redlock {
namespace {

// Lock: a plain value.
static_assert(std::is_nothrow_move_constructible_v<Lock>);
static_assert(std::is_nothrow_move_assignable_v<Lock>);
static_assert(std::is_nothrow_destructible_v<Lock>);
static_assert(std::is_copy_constructible_v<Lock>);

// LockGuard: move-only owner whose destructor never throws.
static_assert(std::is_nothrow_move_constructible_v<LockGuard>);
static_assert(std::is_nothrow_move_assignable_v<LockGuard>);
static_assert(!std::is_copy_constructible_v<LockGuard>);
static_assert(!std::is_copy_assignable_v<LockGuard>);
static_assert(std::is_nothrow_destructible_v<LockGuard>);
static_assert(std::is_nothrow_default_constructible_v<LockGuard>);

// Error: a copyable value.
static_assert(std::is_copy_constructible_v<Error>);
static_assert(std::is_copy_assignable_v<Error>);
static_assert(std::is_nothrow_move_constructible_v<Error>);
static_assert(std::is_nothrow_destructible_v<Error>);

// Results.
static_assert(std::is_same_v<Result<Lock>, tl::expected<Lock, Error>>);
static_assert(std::is_same_v<Result<void>, tl::expected<void, Error>>);
static_assert(std::is_same_v<Unexpected, tl::unexpected<Error>>);

// Client: owned through unique_ptr, never copied.
static_assert(!std::is_copy_constructible_v<Client>);
static_assert(!std::is_copy_assignable_v<Client>);
static_assert(std::is_nothrow_destructible_v<Client>);

TEST(LockGuard, DefaultOwnsNothing) {
  LockGuard guard;
  EXPECT_FALSE(guard.owns_lock());
  EXPECT_FALSE(static_cast<bool>(guard));
}

TEST(LockGuard, ReleaseOnAnEmptyGuardIsInvalidArgument) {
  LockGuard guard;
  const auto r = guard.release();
  ASSERT_FALSE(r) << "released an empty guard";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error();
  EXPECT_FALSE(guard.owns_lock());
  // And again: still empty, still the same answer.
  const auto again = guard.release();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kInvalidArgument) << again.error();
}

TEST(LockGuard, DismissOnAnEmptyGuardGivesNothing) {
  LockGuard guard;
  EXPECT_FALSE(guard.dismiss().has_value());
}

TEST(LockGuard, MovingAnEmptyGuardKeepsBothEmpty) {
  LockGuard a;
  LockGuard b(std::move(a));
  EXPECT_FALSE(b.owns_lock());
  LockGuard c;
  c = std::move(b);
  EXPECT_FALSE(c.owns_lock());
}

TEST(Lock, DefaultIsEmptyAndExpired) {
  const Lock lock;
  EXPECT_TRUE(lock.resource().empty());
  EXPECT_TRUE(lock.token().empty());
  EXPECT_TRUE(lock.votes().empty());
  EXPECT_TRUE(lock.expired());
  EXPECT_EQ(lock.remaining().count(), 0);
}

TEST(Lock, KeepsWhatItWasGiven) {
  const auto until = Lock::Clock::time_point{} + std::chrono::seconds(5);
  const Lock lock("orders:42", "0123456789abcdef0123456789abcdef", until,
                  {{"a:1", NodeStatus::kOk, "", std::chrono::microseconds(10)}});
  EXPECT_EQ(lock.resource(), "orders:42");
  EXPECT_EQ(lock.token(), "0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(lock.valid_until() == until);
  ASSERT_EQ(lock.votes().size(), 1u);
  EXPECT_EQ(lock.votes()[0].status, NodeStatus::kOk);
}

TEST(Options, DocumentedDefaults) {
  const ClientOptions c;
  EXPECT_TRUE(c.nodes.empty());
  EXPECT_EQ(c.drift_factor, 0.01);
  EXPECT_EQ(c.node_timeout.count(), 0);
  EXPECT_EQ(c.release_timeout.count(), 1000);
  EXPECT_EQ(c.release_wait, ClientOptions::ReleaseWait::kMajority);
  EXPECT_EQ(c.connect_timeout.count(), 1000);
  EXPECT_EQ(c.reconnect_min.count(), 50);
  EXPECT_EQ(c.reconnect_max.count(), 2000);
  EXPECT_EQ(c.max_ttl.count(), 60 * 1000);
  EXPECT_FALSE(c.restart_grace.has_value()) << "unset: max_ttl plus its drift allowance";
  EXPECT_TRUE(c.fencing);
  EXPECT_EQ(c.logger, nullptr);
  EXPECT_EQ(ClientOptions::kMaxNodes, 64u);
  EXPECT_EQ(c.clock_check_interval.count(), 1000);
  EXPECT_TRUE(c.exclude_suspect_clocks) << "safe by default: a suspect clock does not vote";

  const AcquireOptions a;
  EXPECT_EQ(a.max_wait.count(), 0);
  EXPECT_EQ(a.max_attempts, 0);
  EXPECT_EQ(a.retry_delay.count(), 200);
  EXPECT_EQ(a.retry_jitter.count(), 100);
  EXPECT_EQ(a.min_validity.count(), 1);
  EXPECT_EQ(a.node_timeout.count(), 0);
}

}  // namespace
}  // namespace redlock
