// Error codes, node statuses and Error values: names, formatting, printing.
#include "redlock/error.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace redlock {
namespace {

using namespace std::chrono_literals;

const std::vector<ErrorCode> kAllCodes = {
    ErrorCode::kInvalidArgument,   ErrorCode::kHeldByAnother,   ErrorCode::kNoQuorum,
    ErrorCode::kValidityExhausted, ErrorCode::kLockWaitTimeout, ErrorCode::kCancelled,
    ErrorCode::kShuttingDown,      ErrorCode::kWrongThread,     ErrorCode::kInternal,
    ErrorCode::kNotOwner,          ErrorCode::kExpired,         ErrorCode::kLockLost,
};

const std::vector<NodeStatus> kAllStatuses = {
    NodeStatus::kOk,      NodeStatus::kRefused,      NodeStatus::kError,
    NodeStatus::kTimeout, NodeStatus::kDisconnected, NodeStatus::kPending,
};

template <typename T>
std::string streamed(const T& value) {
  std::ostringstream os;
  os << value;
  return os.str();
}

TEST(ErrorCode, EveryCodeHasADistinctName) {
  // The enumerators are 0..kLockLost with no gaps; the list above has them all.
  ASSERT_EQ(kAllCodes.size(), static_cast<std::size_t>(ErrorCode::kLockLost) + 1);
  std::set<std::string_view> names;
  for (const auto code : kAllCodes) {
    const std::string_view name = to_string(code);
    EXPECT_FALSE(name.empty()) << static_cast<int>(code);
    EXPECT_TRUE(names.insert(name).second) << "\"" << name << "\" used twice";
    EXPECT_EQ(streamed(code), name);
  }
}

TEST(ErrorCode, Names) {
  EXPECT_EQ(to_string(ErrorCode::kInvalidArgument), "invalid argument");
  EXPECT_EQ(to_string(ErrorCode::kHeldByAnother), "held by another");
  EXPECT_EQ(to_string(ErrorCode::kNoQuorum), "no quorum");
  EXPECT_EQ(to_string(ErrorCode::kValidityExhausted), "validity exhausted");
  EXPECT_EQ(to_string(ErrorCode::kLockWaitTimeout), "lock wait timeout");
}

TEST(ErrorCode, ExtendAndWithLockCodesHaveDistinctNames) {
  const std::vector<ErrorCode> added = {ErrorCode::kNotOwner, ErrorCode::kExpired,
                                        ErrorCode::kLockLost};
  std::set<std::string_view> names;
  for (const auto code : kAllCodes) names.insert(to_string(code));
  EXPECT_EQ(names.size(), kAllCodes.size());
  std::set<std::string_view> added_names;
  for (const auto code : added) {
    const std::string_view name = to_string(code);
    EXPECT_FALSE(name.empty()) << static_cast<int>(code);
    EXPECT_NE(name, "unknown error") << static_cast<int>(code);
    EXPECT_TRUE(added_names.insert(name).second) << "\"" << name << "\" used twice";
    EXPECT_EQ(streamed(code), name);
  }
  EXPECT_EQ(to_string(ErrorCode::kNotOwner), "not owner");
  EXPECT_EQ(to_string(ErrorCode::kExpired), "expired");
  EXPECT_EQ(to_string(ErrorCode::kLockLost), "lock lost");
  EXPECT_EQ(to_string(Error(ErrorCode::kNotOwner, "a majority has another token")),
            "not owner: a majority has another token");
}

TEST(NodeStatus, EveryStatusHasADistinctName) {
  ASSERT_EQ(kAllStatuses.size(), static_cast<std::size_t>(NodeStatus::kPending) + 1);
  std::set<std::string_view> names;
  for (const auto status : kAllStatuses) {
    const std::string_view name = to_string(status);
    EXPECT_FALSE(name.empty()) << static_cast<int>(status);
    EXPECT_TRUE(names.insert(name).second) << "\"" << name << "\" used twice";
    EXPECT_EQ(streamed(status), name);
  }
  EXPECT_EQ(to_string(NodeStatus::kOk), "ok");
  EXPECT_EQ(to_string(NodeStatus::kTimeout), "timeout");
}

TEST(Error, DefaultIsInternalWithNothingElse) {
  const Error e;
  EXPECT_EQ(e.code(), ErrorCode::kInternal);
  EXPECT_TRUE(e.message().empty());
  EXPECT_TRUE(e.nodes().empty());
  EXPECT_EQ(to_string(e), "internal error");
}

TEST(Error, KeepsCodeMessageAndNodes) {
  const Error e(ErrorCode::kHeldByAnother, "taken",
                {{"a:1", NodeStatus::kRefused, "", 150us}, {"b:2", NodeStatus::kOk, "", 90us}});
  EXPECT_EQ(e.code(), ErrorCode::kHeldByAnother);
  EXPECT_EQ(e.message(), "taken");
  ASSERT_EQ(e.nodes().size(), 2u);
  EXPECT_EQ(e.nodes()[0].node, "a:1");
  EXPECT_EQ(e.nodes()[0].status, NodeStatus::kRefused);
  EXPECT_EQ(e.nodes()[0].rtt.count(), 150);
  EXPECT_EQ(e.nodes()[1].status, NodeStatus::kOk);
}

TEST(Error, ToStringWithNodes) {
  const Error e(ErrorCode::kNoQuorum, "msg",
                {{"n1", NodeStatus::kTimeout, "detail", 0us}, {"n2", NodeStatus::kOk, "", 5us}});
  EXPECT_EQ(to_string(e), "no quorum: msg [n1=timeout(detail), n2=ok]");
}

TEST(Error, ToStringWithoutNodes) {
  EXPECT_EQ(to_string(Error(ErrorCode::kInvalidArgument, "ttl 0 ms must be positive")),
            "invalid argument: ttl 0 ms must be positive");
  EXPECT_EQ(to_string(Error(ErrorCode::kShuttingDown, "")), "shutting down");
}

TEST(Error, ToStringEveryNodeStatus) {
  const Error e(ErrorCode::kNoQuorum, "1 of 5",
                {{"10.0.0.1:6379", NodeStatus::kOk, "", 1ms},
                 {"10.0.0.2:6379", NodeStatus::kRefused, "", 1ms},
                 {"10.0.0.3:6379", NodeStatus::kError, "ERR out of memory", 1ms},
                 {"10.0.0.4:6379", NodeStatus::kDisconnected, "connection refused", 0us},
                 {"10.0.0.5:6379", NodeStatus::kPending, "", 0us}});
  EXPECT_EQ(to_string(e),
            "no quorum: 1 of 5 [10.0.0.1:6379=ok, 10.0.0.2:6379=refused, "
            "10.0.0.3:6379=error(ERR out of memory), "
            "10.0.0.4:6379=disconnected(connection refused), 10.0.0.5:6379=pending]");
}

TEST(Error, StreamMatchesToString) {
  const std::vector<Error> errors = {
      Error(),
      Error(ErrorCode::kNoQuorum, "msg",
            {{"n1", NodeStatus::kTimeout, "detail", 0us}, {"n2", NodeStatus::kOk, "", 0us}}),
      Error(ErrorCode::kLockWaitTimeout, "gave up after 3 s"),
      Error(ErrorCode::kCancelled, ""),
  };
  for (const auto& e : errors) EXPECT_EQ(streamed(e), to_string(e));
}

TEST(Error, IsACopyableValue) {
  const Error original(ErrorCode::kValidityExhausted, "late", {{"n1", NodeStatus::kOk, "", 1ms}});
  Error copy = original;
  EXPECT_EQ(to_string(copy), to_string(original));
  Error moved = std::move(copy);
  EXPECT_EQ(to_string(moved), to_string(original));
  EXPECT_EQ(moved.code(), ErrorCode::kValidityExhausted);
}

}  // namespace
}  // namespace redlock
