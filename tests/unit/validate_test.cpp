// Option and argument validation: every refusal is kInvalidArgument with a
// message that names the field (or the node) and the problem.
#include "validate.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

ClientOptions three_nodes() {
  ClientOptions o;
  o.nodes = {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"};
  return o;
}

// The message of a refusal, after checking that it is one and that it is
// kInvalidArgument; "" (and a test failure) otherwise.
template <typename T>
std::string invalid_message(const Result<T>& r) {
  EXPECT_FALSE(r.has_value()) << "expected kInvalidArgument, got a value";
  if (r.has_value()) return {};
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error();
  return r.error().message();
}

// ------------------------------------------------------------ parse_node

TEST(ParseNode, AcceptsIpv4HostNameAndBracketedIpv6) {
  struct Case {
    std::string_view text;
    std::string_view host;
    std::uint16_t port;
  };
  const Case cases[] = {
      {"127.0.0.1:7001", "127.0.0.1", 7001},
      {"localhost:6379", "localhost", 6379},
      {"[::1]:7001", "::1", 7001},
      {"redis-1.internal:6379", "redis-1.internal", 6379},
      {"a:1", "a", 1},
      {"10.0.0.1:65535", "10.0.0.1", 65535},
      {"[fe80::1:2]:6380", "fe80::1:2", 6380},
  };
  for (const auto& c : cases) {
    const auto r = parse_node(c.text);
    ASSERT_TRUE(r) << c.text << ": " << r.error();
    EXPECT_EQ(r->text, c.text);
    EXPECT_EQ(r->host, c.host) << c.text;
    EXPECT_EQ(r->port, c.port) << c.text;
  }
}

TEST(ParseNode, RejectsMalformedAddressesNamingTheProblem) {
  struct Case {
    std::string_view text;
    std::string_view problem;  // must appear in the message
  };
  const Case cases[] = {
      {"", "empty"},
      {"127.0.0.1", "port"},
      {"127.0.0.1:", "port"},
      {":7001", "host"},
      {"127.0.0.1:0", "port"},
      {"127.0.0.1:65536", "port"},
      {"127.0.0.1:70x", "port"},
      {"127.0.0.1:-1", "port"},
      {"127.0.0.1: 7001", "port"},
      {"::1:7001", "IPv6"},
      {"[::1]7001", "IPv6"},
      {"[::1]", "IPv6"},
      {"[::1:7001", "IPv6"},
      {"[]:7001", "host"},
      {"[::1]:", "port"},
      {"host name:1", "host"},
  };
  for (const auto& c : cases) {
    const auto r = parse_node(c.text);
    const std::string msg = invalid_message(r);
    EXPECT_THAT(msg, HasSubstr(std::string(c.problem))) << "input \"" << c.text << "\"";
    if (!c.text.empty()) {
      EXPECT_THAT(msg, HasSubstr(std::string(c.text))) << "the message quotes the input";
    }
  }
}

// Found by fuzzing: a password with a raw '/' does not parse as a password,
// and the error quoting the node showed it.
TEST(ParseNode, AnErrorNeverShowsWhatLooksLikeAPassword) {
  for (const std::string text :
       {"redis://user:pa/ss3cret@host:6379", "sentinel://unix:/run/redis.soc:s3cret@",
        "redis://:s3/cret@h:99999", "sentinel://u@h:1//x:s3cret@"}) {
    auto node = detail::parse_node(text);
    ASSERT_FALSE(node) << text;
    EXPECT_EQ(node.error().message().find("cret"), std::string::npos) << node.error().message();
    EXPECT_NE(node.error().message().find("***"), std::string::npos) << node.error().message();
  }
}

TEST(ParseNode, SpaceInHostIsAnInvalidCharacter) {
  const auto msg = invalid_message(parse_node("host name:1"));
  EXPECT_THAT(msg, HasSubstr("invalid character"));
}

TEST(ParseNode, PortOutOfRangeSaysTheRange) {
  for (const auto* text : {"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999999"}) {
    const auto msg = invalid_message(parse_node(text));
    EXPECT_THAT(msg, HasSubstr("65535")) << text;
  }
}

TEST(ParseNode, RedissAndSentinelsAreTheTlsFormsOfRedisAndSentinel) {
  const auto plain = parse_node("redis://u:p@host.example:7000/2");
  ASSERT_TRUE(plain) << plain.error();
  EXPECT_FALSE(plain->tls);

  const auto tls = parse_node("rediss://u:p%40ss@host.example:7000/2");
  ASSERT_TRUE(tls) << tls.error();
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->kind, NodeAddress::Kind::kTcp);
  EXPECT_EQ(tls->host, "host.example");
  EXPECT_EQ(tls->port, 7000);
  EXPECT_EQ(tls->db, 2);
  EXPECT_EQ(tls->password, "p@ss");
  EXPECT_EQ(tls->display, "rediss://u:***@host.example:7000/2");

  const auto default_port = parse_node("rediss://[::1]");
  ASSERT_TRUE(default_port) << default_port.error();
  EXPECT_TRUE(default_port->tls);
  EXPECT_EQ(default_port->host, "::1");
  EXPECT_EQ(default_port->port, 6379);

  const auto sentinels = parse_node("sentinels://s1:26380,s2/mymaster/1");
  ASSERT_TRUE(sentinels) << sentinels.error();
  EXPECT_TRUE(sentinels->tls);
  EXPECT_EQ(sentinels->kind, NodeAddress::Kind::kSentinel);
  EXPECT_EQ(sentinels->master, "mymaster");
  EXPECT_EQ(sentinels->db, 1);
  ASSERT_EQ(sentinels->sentinels.size(), 2u);
  EXPECT_EQ(sentinels->sentinels[1].port, 26379);

  EXPECT_THAT(invalid_message(parse_node("sentinels://s1:26380")),
              HasSubstr("sentinels://host:port,.../name"));
  EXPECT_THAT(invalid_message(parse_node("redisss://h:1")), HasSubstr("rediss://"));
}

// ------------------------------------------------ validate_client_options

TEST(ValidateClientOptions, DefaultsWithValidNodesPass) {
  const auto r = validate_client_options(three_nodes());
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].host, "127.0.0.1");
  EXPECT_EQ((*r)[0].port, 7001);
  EXPECT_EQ((*r)[2].text, "127.0.0.1:7003");
}

TEST(ValidateClientOptions, BoundaryValuesPass) {
  ClientOptions o = three_nodes();
  o.drift_factor = 0.0;
  o.node_timeout = 0ms;
  o.release_timeout = 1ms;
  o.connect_timeout = 1ms;
  o.reconnect_min = 1ms;
  o.reconnect_max = 1ms;
  o.max_ttl = kMaxTtlCeiling;
  const auto r = validate_client_options(o);
  EXPECT_TRUE(r) << r.error();

  o.drift_factor = 0.49;
  o.max_ttl = 1ms;
  const auto r2 = validate_client_options(o);
  EXPECT_TRUE(r2) << r2.error();
}

TEST(ValidateClientOptions, NoNodes) {
  ClientOptions o;
  EXPECT_THAT(invalid_message(validate_client_options(o)), HasSubstr("node"));
}

TEST(ValidateClientOptions, AtMostMaxNodes) {
  ClientOptions o;
  for (std::size_t i = 0; i < ClientOptions::kMaxNodes; ++i) {
    o.nodes.push_back("127.0.0.1:" + std::to_string(7000 + i));
  }
  const auto ok = validate_client_options(o);
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok->size(), ClientOptions::kMaxNodes);

  o.nodes.push_back("127.0.0.1:9999");
  const auto msg = invalid_message(validate_client_options(o));
  EXPECT_THAT(msg, HasSubstr("nodes"));
  EXPECT_THAT(msg, HasSubstr(std::to_string(ClientOptions::kMaxNodes)));
}

TEST(ValidateClientOptions, DuplicateNode) {
  ClientOptions o = three_nodes();
  o.nodes.push_back("127.0.0.1:7002");
  const auto msg = invalid_message(validate_client_options(o));
  EXPECT_THAT(msg, HasSubstr("127.0.0.1:7002"));
  EXPECT_THAT(msg, HasSubstr("twice"));
}

TEST(ValidateClientOptions, AnInvalidNodeIsReported) {
  ClientOptions o = three_nodes();
  o.nodes[1] = "127.0.0.1:0";
  EXPECT_THAT(invalid_message(validate_client_options(o)), HasSubstr("127.0.0.1:0"));
}

TEST(ValidateClientOptions, DriftFactorOutOfRange) {
  for (const double drift : {-0.1, 0.5, 0.9, std::nan(""), std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity()}) {
    ClientOptions o = three_nodes();
    o.drift_factor = drift;
    EXPECT_THAT(invalid_message(validate_client_options(o)), HasSubstr("drift_factor"))
        << "drift_factor " << drift;
  }
}

TEST(ValidateClientOptions, NegativeNodeTimeout) {
  ClientOptions o = three_nodes();
  o.node_timeout = -1ms;
  EXPECT_THAT(invalid_message(validate_client_options(o)), HasSubstr("node_timeout"));
}

TEST(ValidateClientOptions, ReleaseTimeoutMustBePositive) {
  for (const auto t : {0ms, -5ms}) {
    ClientOptions o = three_nodes();
    o.release_timeout = t;
    EXPECT_THAT(invalid_message(validate_client_options(o)), HasSubstr("release_timeout"));
  }
}

TEST(ValidateClientOptions, ConnectTimeoutMustBePositive) {
  for (const auto t : {0ms, -5ms}) {
    ClientOptions o = three_nodes();
    o.connect_timeout = t;
    EXPECT_THAT(invalid_message(validate_client_options(o)), HasSubstr("connect_timeout"));
  }
}

TEST(ValidateClientOptions, BusyPollWithinZeroToTenMilliseconds) {
  for (const auto t : {-1us, 10001us, std::chrono::microseconds(std::chrono::seconds(1))}) {
    ClientOptions o = three_nodes();
    o.busy_poll = t;
    EXPECT_THAT(invalid_message(validate_client_options(o)), HasSubstr("busy_poll"));
  }
  for (const auto t : {0us, 1us, 100us, 10000us}) {
    ClientOptions o = three_nodes();
    o.busy_poll = t;
    EXPECT_TRUE(validate_client_options(o)) << t.count();
  }
}

TEST(ValidateClientOptions, BlockingSpinWithinZeroToTenMilliseconds) {
  for (const auto t : {-1us, 10001us}) {
    ClientOptions o = three_nodes();
    o.blocking_spin = t;
    EXPECT_THAT(invalid_message(validate_client_options(o)), HasSubstr("blocking_spin"));
  }
  for (const auto t : {0us, 200us, 10000us}) {
    ClientOptions o = three_nodes();
    o.blocking_spin = t;
    EXPECT_TRUE(validate_client_options(o)) << t.count();
  }
}

TEST(ValidateClientOptions, ReconnectBackoff) {
  ClientOptions zero_min = three_nodes();
  zero_min.reconnect_min = 0ms;
  EXPECT_THAT(invalid_message(validate_client_options(zero_min)), HasSubstr("reconnect_min"));

  ClientOptions max_below_min = three_nodes();
  max_below_min.reconnect_min = 100ms;
  max_below_min.reconnect_max = 99ms;
  EXPECT_THAT(invalid_message(validate_client_options(max_below_min)), HasSubstr("reconnect_max"));
}

TEST(ValidateClientOptions, MaxTtlRange) {
  ClientOptions zero = three_nodes();
  zero.max_ttl = 0ms;
  EXPECT_THAT(invalid_message(validate_client_options(zero)), HasSubstr("max_ttl"));

  ClientOptions too_long = three_nodes();
  too_long.max_ttl = std::chrono::hours(24 * 30) + 1ms;
  EXPECT_THAT(invalid_message(validate_client_options(too_long)), HasSubstr("max_ttl"));

  ClientOptions thirty_days = three_nodes();
  thirty_days.max_ttl = std::chrono::hours(24 * 30);
  const auto r = validate_client_options(thirty_days);
  EXPECT_TRUE(r) << r.error();
}

TEST(ValidateClientOptions, ClockCheckInterval) {
  for (const auto t : {0ms, 10ms, 1000ms, std::chrono::milliseconds(std::chrono::hours(1))}) {
    ClientOptions o = three_nodes();
    o.clock_check_interval = t;
    const auto r = validate_client_options(o);
    EXPECT_TRUE(r) << t.count() << " ms: " << r.error();
  }
  for (const auto t : {-1ms, 1ms, 9ms, std::chrono::milliseconds(std::chrono::hours(1)) + 1ms}) {
    ClientOptions o = three_nodes();
    o.clock_check_interval = t;
    const auto msg = invalid_message(validate_client_options(o));
    EXPECT_THAT(msg, HasSubstr("clock_check_interval " + std::to_string(t.count()) + " ms"));
    EXPECT_THAT(msg, HasSubstr("0 (off) or 10 ms to 3600000 ms"));
  }
}

TEST(ValidateClientOptions, TurningTheClockCheckOffIsAllowedWithTheDefaultExclusion) {
  // exclude_suspect_clocks is on by default; turning the check off must not
  // make the defaults invalid (it then has nothing to exclude by).
  ClientOptions o = three_nodes();
  ASSERT_TRUE(o.exclude_suspect_clocks);
  o.clock_check_interval = 0ms;
  const auto off = validate_client_options(o);
  EXPECT_TRUE(off) << off.error();
}

// ------------------------------------------------------ validate_acquire

TEST(ValidateAcquire, DefaultsPass) {
  const auto r = validate_acquire("orders:42", 10s, AcquireOptions{}, three_nodes());
  EXPECT_TRUE(r) << r.error();
}

TEST(ValidateAcquire, ResourceName) {
  const ClientOptions c = three_nodes();
  EXPECT_THAT(invalid_message(validate_acquire("", 10s, {}, c)), HasSubstr("resource"));

  const std::string longest(kMaxResourceLength, 'r');
  ASSERT_EQ(longest.size(), 1024u);
  const auto ok = validate_acquire(longest, 10s, {}, c);
  EXPECT_TRUE(ok) << ok.error();

  const std::string too_long(1025, 'r');
  const auto msg = invalid_message(validate_acquire(too_long, 10s, {}, c));
  EXPECT_THAT(msg, HasSubstr("resource"));
  EXPECT_THAT(msg, HasSubstr("1025"));

  // Resource names are binary-safe.
  const auto binary = validate_acquire(std::string_view("a\0b\r\n", 5), 10s, {}, c);
  EXPECT_TRUE(binary) << binary.error();
}

TEST(ValidateResource, EmptyAndTooLong) {
  EXPECT_THAT(invalid_message(validate_resource("")), HasSubstr("resource"));
  EXPECT_THAT(invalid_message(validate_resource(std::string(1025, 'x'))), HasSubstr("resource"));
  const auto ok = validate_resource(std::string(1024, 'x'));
  EXPECT_TRUE(ok) << ok.error();
}

TEST(ValidateAcquire, TtlMustBePositive) {
  const ClientOptions c = three_nodes();
  for (const auto ttl : {0ms, -1ms}) {
    EXPECT_THAT(invalid_message(validate_acquire("r", ttl, {}, c)), HasSubstr("ttl"))
        << ttl.count() << " ms";
  }
}

TEST(ValidateAcquire, TtlAtMostMaxTtl) {
  ClientOptions c = three_nodes();
  c.max_ttl = 60s;
  const auto at_max = validate_acquire("r", 60s, {}, c);
  EXPECT_TRUE(at_max) << at_max.error();
  const auto msg = invalid_message(validate_acquire("r", 60001ms, {}, c));
  EXPECT_THAT(msg, HasSubstr("ttl"));
  EXPECT_THAT(msg, HasSubstr("max_ttl"));
}

TEST(ValidateAcquire, NegativeRetryAndTimeoutOptions) {
  const ClientOptions c = three_nodes();
  {
    AcquireOptions a;
    a.max_wait = -1ms;
    EXPECT_THAT(invalid_message(validate_acquire("r", 10s, a, c)), HasSubstr("max_wait"));
  }
  {
    AcquireOptions a;
    a.max_attempts = -1;
    EXPECT_THAT(invalid_message(validate_acquire("r", 10s, a, c)), HasSubstr("max_attempts"));
  }
  {
    AcquireOptions a;
    a.retry_delay = -1ms;
    EXPECT_THAT(invalid_message(validate_acquire("r", 10s, a, c)), HasSubstr("retry_delay"));
  }
  {
    AcquireOptions a;
    a.retry_jitter = -1ms;
    EXPECT_THAT(invalid_message(validate_acquire("r", 10s, a, c)), HasSubstr("retry_jitter"));
  }
  {
    AcquireOptions a;
    a.node_timeout = -1ms;
    EXPECT_THAT(invalid_message(validate_acquire("r", 10s, a, c)), HasSubstr("node_timeout"));
  }
}

TEST(ValidateAcquire, ZeroRetryValuesAreFine) {
  AcquireOptions a;
  a.max_wait = 0ms;
  a.max_attempts = 0;
  a.retry_delay = 0ms;
  a.retry_jitter = 0ms;
  a.node_timeout = 0ms;
  const auto r = validate_acquire("r", 10s, a, three_nodes());
  EXPECT_TRUE(r) << r.error();
}

TEST(ValidateAcquire, MinValidityAtLeastOneMillisecond) {
  for (const auto mv : {0ms, -1ms}) {
    AcquireOptions a;
    a.min_validity = mv;
    EXPECT_THAT(invalid_message(validate_acquire("r", 10s, a, three_nodes())),
                HasSubstr("min_validity"));
  }
}

TEST(ValidateAcquire, TtlTooShortForTheDriftAllowance) {
  // 2 ms - (0.02 ms + 2 ms) leaves nothing.
  const auto msg = invalid_message(validate_acquire("r", 2ms, {}, three_nodes()));
  EXPECT_THAT(msg, HasSubstr("ttl"));
  EXPECT_THAT(msg, HasSubstr("min_validity"));
}

TEST(ValidateAcquire, MinValidityBoundary) {
  // ttl 1000 ms, drift 0.01: at best 1000 - 12 = 988 ms of validity.
  AcquireOptions a;
  a.min_validity = 988ms;
  const auto ok = validate_acquire("r", 1000ms, a, three_nodes());
  EXPECT_TRUE(ok) << ok.error();
  a.min_validity = 989ms;
  EXPECT_THAT(invalid_message(validate_acquire("r", 1000ms, a, three_nodes())),
              HasSubstr("min_validity"));
}

TEST(ValidateAcquire, NodeTimeoutMustBeShorterThanTtl) {
  const ClientOptions c = three_nodes();
  AcquireOptions a;
  a.node_timeout = 100ms;
  auto msg = invalid_message(validate_acquire("r", 100ms, a, c));
  EXPECT_THAT(msg, HasSubstr("node_timeout"));
  EXPECT_THAT(msg, HasSubstr("ttl"));

  a.node_timeout = 200ms;
  EXPECT_THAT(invalid_message(validate_acquire("r", 100ms, a, c)), HasSubstr("node_timeout"));

  a.node_timeout = 99ms;
  const auto ok = validate_acquire("r", 100ms, a, c);
  EXPECT_TRUE(ok) << ok.error();
}

TEST(ValidateAcquire, ClientNodeTimeoutAppliesUnlessOverridden) {
  ClientOptions c = three_nodes();
  c.node_timeout = 100ms;
  EXPECT_THAT(invalid_message(validate_acquire("r", 100ms, {}, c)), HasSubstr("node_timeout"));

  AcquireOptions a;
  a.node_timeout = 50ms;
  const auto ok = validate_acquire("r", 100ms, a, c);
  EXPECT_TRUE(ok) << ok.error();
}

TEST(ValidateAcquire, AutoNodeTimeoutFloorAgainstAShortTtl) {
  // Auto node timeout for a 10 ms ttl is the 10 ms floor: not shorter.
  EXPECT_THAT(invalid_message(validate_acquire("r", 10ms, {}, three_nodes())),
              HasSubstr("node_timeout"));
  const auto ok = validate_acquire("r", 11ms, {}, three_nodes());
  EXPECT_TRUE(ok) << ok.error();
}

TEST(ValidateAcquire, RetryDelayAndJitterAtMostOneHour) {
  const ClientOptions c = three_nodes();
  const auto hour = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(1));
  ASSERT_EQ(kMaxDelay.count(), hour.count());
  {
    AcquireOptions a;
    a.retry_delay = hour + 1ms;
    const auto msg = invalid_message(validate_acquire("r", 10s, a, c));
    EXPECT_THAT(msg, HasSubstr("retry_delay"));
    EXPECT_THAT(msg, HasSubstr("3600001 ms"));
  }
  {
    AcquireOptions a;
    a.retry_jitter = hour + 1ms;
    const auto msg = invalid_message(validate_acquire("r", 10s, a, c));
    EXPECT_THAT(msg, HasSubstr("retry_jitter"));
    EXPECT_THAT(msg, HasSubstr("3600001 ms"));
  }
  {
    AcquireOptions a;
    a.retry_delay = std::chrono::milliseconds::max();
    EXPECT_THAT(invalid_message(validate_acquire("r", 10s, a, c)), HasSubstr("retry_delay"));
  }
  {
    AcquireOptions a;
    a.retry_delay = hour;
    a.retry_jitter = hour;
    const auto ok = validate_acquire("r", 10s, a, c);
    EXPECT_TRUE(ok) << ok.error();
  }
}

// ---------------------------------------------------- validate_resources

TEST(ValidateResources, EmptyListIsRefused) {
  const auto msg = invalid_message(validate_resources({}));
  EXPECT_THAT(msg, HasSubstr("no resources"));
}

std::vector<std::string> distinct_resources(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("resource:" + std::to_string(i));
  return out;
}

TEST(ValidateResources, SixtyFourDistinctPass) {
  const auto one = validate_resources({"a"});
  EXPECT_TRUE(one) << one.error();
  const auto r = validate_resources(distinct_resources(64));
  EXPECT_TRUE(r) << r.error();
}

TEST(ValidateResources, SixtyFiveAreTooMany) {
  const auto msg = invalid_message(validate_resources(distinct_resources(65)));
  EXPECT_THAT(msg, HasSubstr("65 resources"));
  EXPECT_THAT(msg, HasSubstr("64"));
}

TEST(ValidateResources, DuplicateIsRefusedByName) {
  auto list = distinct_resources(5);
  list.push_back("resource:3");
  const auto msg = invalid_message(validate_resources(list));
  EXPECT_THAT(msg, HasSubstr("\"resource:3\""));
  EXPECT_THAT(msg, HasSubstr("twice"));
}

// A name is bytes: the message shows a duplicate escaped, as valid UTF-8
// that no terminal takes for a control sequence.
TEST(ValidateResources, ADuplicateOfAnyBytesIsNamedEscaped) {
  const std::string hostile("a\xff\x1b[2J\n\0z", 9);
  const auto msg = invalid_message(validate_resources({hostile, "b", hostile}));
  EXPECT_THAT(msg, HasSubstr("\"a\\xff\\x1b[2J\\n\\x00z\" is listed twice"));
  EXPECT_EQ(msg.find('\x1b'), std::string::npos);
  EXPECT_EQ(msg.find('\xff'), std::string::npos);
}

TEST(ValidateResources, AnInvalidMemberIsRefused) {
  {
    auto list = distinct_resources(3);
    list.insert(list.begin() + 1, "");
    EXPECT_THAT(invalid_message(validate_resources(list)), HasSubstr("resource name is empty"));
  }
  {
    auto list = distinct_resources(3);
    list.push_back(std::string(1025, 'x'));
    const auto msg = invalid_message(validate_resources(list));
    EXPECT_THAT(msg, HasSubstr("resource"));
    EXPECT_THAT(msg, HasSubstr("1025"));
  }
  {
    auto list = distinct_resources(3);
    list.push_back(std::string(1024, 'x'));
    const auto ok = validate_resources(list);
    EXPECT_TRUE(ok) << ok.error();
  }
}

// ------------------------------------------------------- validate_extend

TEST(ValidateExtend, DefaultsPass) {
  const auto r = validate_extend(10s, ExtendOptions{}, three_nodes());
  EXPECT_TRUE(r) << r.error();
}

TEST(ValidateExtend, TtlMustBePositive) {
  for (const auto ttl : {0ms, -1ms, -10000ms}) {
    const auto msg = invalid_message(validate_extend(ttl, {}, three_nodes()));
    EXPECT_THAT(msg, HasSubstr("ttl"));
    EXPECT_THAT(msg, HasSubstr("must be positive")) << ttl.count() << " ms";
  }
}

TEST(ValidateExtend, TtlAtMostMaxTtl) {
  ClientOptions c = three_nodes();
  c.max_ttl = 60s;
  const auto at_max = validate_extend(60s, {}, c);
  EXPECT_TRUE(at_max) << at_max.error();
  const auto msg = invalid_message(validate_extend(60001ms, {}, c));
  EXPECT_THAT(msg, HasSubstr("ttl 60001 ms"));
  EXPECT_THAT(msg, HasSubstr("max_ttl 60000 ms"));
}

TEST(ValidateExtend, MinValidityAtLeastOneMillisecond) {
  ExtendOptions e;
  e.min_validity = 0ms;
  const auto msg = invalid_message(validate_extend(10s, e, three_nodes()));
  EXPECT_THAT(msg, HasSubstr("min_validity"));
  EXPECT_THAT(msg, HasSubstr("at least 1 ms"));
}

TEST(ValidateExtend, TtlTooShortForTheDriftAllowance) {
  const auto msg = invalid_message(validate_extend(2ms, {}, three_nodes()));
  EXPECT_THAT(msg, HasSubstr("ttl 2 ms is too short"));
  EXPECT_THAT(msg, HasSubstr("min_validity"));

  // ttl 1000 ms, drift 0.01: at best 988 ms of validity.
  ExtendOptions e;
  e.min_validity = 988ms;
  const auto ok = validate_extend(1000ms, e, three_nodes());
  EXPECT_TRUE(ok) << ok.error();
  e.min_validity = 989ms;
  EXPECT_THAT(invalid_message(validate_extend(1000ms, e, three_nodes())),
              HasSubstr("min_validity"));
}

TEST(ValidateExtend, NodeTimeoutBounds) {
  const ClientOptions c = three_nodes();
  {
    ExtendOptions e;
    e.node_timeout = -1ms;
    const auto msg = invalid_message(validate_extend(10s, e, c));
    EXPECT_THAT(msg, HasSubstr("node_timeout -1 ms is negative"));
  }
  {
    // Above one hour, with a ttl long enough that only the hour bound applies.
    ExtendOptions e;
    e.node_timeout = std::chrono::hours(1) + 1ms;
    ClientOptions long_ttl = c;
    long_ttl.max_ttl = std::chrono::hours(3);
    const auto msg = invalid_message(validate_extend(std::chrono::hours(2), e, long_ttl));
    EXPECT_THAT(msg, HasSubstr("node_timeout 3600001 ms exceeds"));
  }
  {
    ExtendOptions e;
    e.node_timeout = std::chrono::hours(1);
    ClientOptions long_ttl = c;
    long_ttl.max_ttl = std::chrono::hours(3);
    const auto ok = validate_extend(std::chrono::hours(2), e, long_ttl);
    EXPECT_TRUE(ok) << ok.error();
  }
  {
    ExtendOptions e;
    e.node_timeout = 100ms;
    const auto msg = invalid_message(validate_extend(100ms, e, c));
    EXPECT_THAT(msg, HasSubstr("node_timeout 100 ms must be shorter than the ttl 100 ms"));
    e.node_timeout = 101ms;
    EXPECT_THAT(invalid_message(validate_extend(100ms, e, c)), HasSubstr("node_timeout"));
    e.node_timeout = 99ms;
    const auto ok = validate_extend(100ms, e, c);
    EXPECT_TRUE(ok) << ok.error();
  }
}

TEST(ValidateExtend, ClientNodeTimeoutAppliesUnlessOverridden) {
  ClientOptions c = three_nodes();
  c.node_timeout = 100ms;
  EXPECT_THAT(invalid_message(validate_extend(100ms, {}, c)), HasSubstr("node_timeout"));
  ExtendOptions e;
  e.node_timeout = 50ms;
  const auto ok = validate_extend(100ms, e, c);
  EXPECT_TRUE(ok) << ok.error();
}

// -------------------------------------------------- validate_auto_extend

TEST(ValidateAutoExtend, DefaultsPass) {
  const auto r = validate_auto_extend(AutoExtendOptions{}, 10s, three_nodes());
  EXPECT_TRUE(r) << r.error();
}

TEST(ValidateAutoExtend, ExtendAtRemainingOutOfRange) {
  for (const double share :
       {0.0, 1.0, -0.1, 1.5, std::nan(""), std::numeric_limits<double>::infinity()}) {
    AutoExtendOptions o;
    o.extend_at_remaining = share;
    const auto msg = invalid_message(validate_auto_extend(o, 10s, three_nodes()));
    EXPECT_THAT(msg, HasSubstr("extend_at_remaining")) << "share " << share;
    EXPECT_THAT(msg, HasSubstr("(0, 1)")) << "share " << share;
  }
  for (const double share : {0.01, 0.5, 0.99}) {
    AutoExtendOptions o;
    o.extend_at_remaining = share;
    const auto ok = validate_auto_extend(o, 10s, three_nodes());
    EXPECT_TRUE(ok) << "share " << share << ": " << ok.error();
  }
}

TEST(ValidateAutoExtend, NegativeMaxExtensions) {
  AutoExtendOptions o;
  o.max_extensions = -1;
  const auto msg = invalid_message(validate_auto_extend(o, 10s, three_nodes()));
  EXPECT_THAT(msg, HasSubstr("max_extensions -1 is negative"));
}

TEST(ValidateAutoExtend, NegativeMaxHold) {
  AutoExtendOptions o;
  o.max_hold = -1ms;
  const auto msg = invalid_message(validate_auto_extend(o, 10s, three_nodes()));
  EXPECT_THAT(msg, HasSubstr("max_hold -1 ms is negative"));
}

TEST(ValidateAutoExtend, NeedsAtLeastOneBound) {
  AutoExtendOptions o;
  o.max_extensions = 0;
  o.max_hold = 0ms;
  const auto msg = invalid_message(validate_auto_extend(o, 10s, three_nodes()));
  EXPECT_THAT(msg, HasSubstr("max_extensions"));
  EXPECT_THAT(msg, HasSubstr("max_hold"));

  o.max_hold = 60s;
  const auto hold_only = validate_auto_extend(o, 10s, three_nodes());
  EXPECT_TRUE(hold_only) << hold_only.error();

  o.max_extensions = 3;
  o.max_hold = 0ms;
  const auto count_only = validate_auto_extend(o, 10s, three_nodes());
  EXPECT_TRUE(count_only) << count_only.error();
}

TEST(ValidateAutoExtend, NegativeTtl) {
  AutoExtendOptions o;
  o.ttl = -1ms;
  const auto msg = invalid_message(validate_auto_extend(o, 10s, three_nodes()));
  EXPECT_THAT(msg, HasSubstr("auto-extend ttl -1 ms is negative"));
}

TEST(ValidateAutoExtend, TheExtensionTtlIsChecked) {
  EXPECT_THAT(invalid_message(validate_auto_extend({}, 0ms, three_nodes())),
              HasSubstr("must be positive"));
  EXPECT_THAT(invalid_message(validate_auto_extend({}, 2ms, three_nodes())),
              HasSubstr("too short"));
  ClientOptions c = three_nodes();
  c.max_ttl = 60s;
  EXPECT_THAT(invalid_message(validate_auto_extend({}, 61s, c)), HasSubstr("max_ttl"));
}

// ----------------------------------------------------- validate_lock_token

TEST(ValidateLockToken, Length) {
  EXPECT_THAT(invalid_message(validate_lock_token("")), HasSubstr("token"));
  EXPECT_THAT(invalid_message(validate_lock_token(std::string(129, 'a'))), HasSubstr("token"));
  const auto ok = validate_lock_token(std::string(32, 'a'));
  EXPECT_TRUE(ok) << ok.error();
  const auto longest = validate_lock_token(std::string(128, 'a'));
  EXPECT_TRUE(longest) << longest.error();
}

}  // namespace
}  // namespace redlock::detail
