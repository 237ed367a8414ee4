// The tools' pure parts, without a network: durations, signal names, the
// redlock CLI's exit codes and node configuration, chatroomd's validation,
// metrics and race checker, and the SQLite store on a temporary file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "chat_service.hpp"
#include "cli_support.hpp"
#include "connection_pool.hpp"
#include "race_kit.hpp"
#include "redlock/tools/duration.hpp"
#include "redlock/tools/lock_failure.hpp"
#include "redlock/tools/redis_connection.hpp"
#include "redlock/tools/subprocess.hpp"
#include "redlock/tools/text.hpp"
#include "redlock/tools/ttl_check.hpp"
#include "requests.hpp"
#include "service_metrics.hpp"
#include "store.hpp"
#include "tool_process.hpp"
#include "validate.hpp"  // the library's own checks (lib/src)
#include "validation.hpp"

namespace redlock::testing {
namespace {

using namespace std::chrono_literals;
using redlock::tools::format_duration;
using redlock::tools::parse_duration;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------
// Durations and lists

TEST(Duration, ParsesNumbersWithUnits) {
  EXPECT_EQ(parse_duration("500ms").value(), 500ms);
  EXPECT_EQ(parse_duration("10s").value(), 10s);
  EXPECT_EQ(parse_duration("2m").value(), 2min);
  EXPECT_EQ(parse_duration("1h").value(), 1h);
  EXPECT_EQ(parse_duration("1.5s").value(), 1500ms);
  EXPECT_EQ(parse_duration("0.25m").value(), 15s);
  EXPECT_EQ(parse_duration(" 0s ").value(), 0ms);
  EXPECT_EQ(parse_duration("8760h").value(), redlock::tools::kMaxDuration);
}

TEST(Duration, RefusesWithAMessage) {
  for (const char* bad : {"", "10", "s", "10x", "-1s", "1.s", ".5s", "1e3ms", "10 s", "1.0005s",
                          "0.5ms", "8761h", "9999999999999h", "1.1234567891s"}) {
    auto r = parse_duration(bad);
    ASSERT_FALSE(r.has_value()) << "'" << bad << "' parsed as " << r->count() << " ms";
    EXPECT_NE(r.error().find(std::string("'") + bad + "'"), std::string::npos) << r.error();
  }
  EXPECT_NE(parse_duration("10").error().find("a unit is required"), std::string::npos);
}

TEST(Duration, FormatsWhatItParses) {
  for (auto d : {0ms, 1ms, 500ms, 1000ms, 1500ms, 60000ms, 90000ms, 3600000ms}) {
    EXPECT_EQ(parse_duration(format_duration(d)).value(), d) << format_duration(d);
  }
  EXPECT_EQ(format_duration(10s), "10s");
  EXPECT_EQ(format_duration(2min), "2m");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
}

TEST(SplitList, TrimsAndDropsEmptyItems) {
  EXPECT_EQ(redlock::tools::split_list(" a, b,,c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(redlock::tools::split_list("").empty());
  EXPECT_TRUE(redlock::tools::split_list(" , ").empty());
}

TEST(SplitNodeList, ASentinelOrClusterNodeKeepsItsHostList) {
  using V = std::vector<std::string>;
  using redlock::tools::split_node_list;
  EXPECT_EQ(split_node_list("a:1, b:2"), (V{"a:1", "b:2"}));
  EXPECT_EQ(split_node_list("cluster://a:1,b:2,c:3"), (V{"cluster://a:1,b:2,c:3"}));
  EXPECT_EQ(split_node_list("x:9,cluster://a:1,b:2,redis://c:3,unix:/s"),
            (V{"x:9", "cluster://a:1,b:2", "redis://c:3", "unix:/s"}));
  EXPECT_EQ(split_node_list("sentinel://s1:26379,s2:26379/mymaster,d:4"),
            (V{"sentinel://s1:26379,s2:26379/mymaster", "d:4"}));
  EXPECT_EQ(split_node_list("cluster://u:p@a:1,b:2, cluster://c:3,d:4"),
            (V{"cluster://u:p@a:1,b:2", "cluster://c:3,d:4"}));
  EXPECT_EQ(split_node_list("sentinels://s1:26379,s2:26379/m,rediss://c:3"),
            (V{"sentinels://s1:26379,s2:26379/m", "rediss://c:3"}));
}

TEST(Signals, ByNameOrNumber) {
  using redlock::tools::parse_signal;
  EXPECT_EQ(parse_signal("TERM"), SIGTERM);
  EXPECT_EQ(parse_signal("SIGTERM"), SIGTERM);
  EXPECT_EQ(parse_signal("int"), SIGINT);
  EXPECT_EQ(parse_signal("9"), SIGKILL);
  EXPECT_EQ(parse_signal("USR1"), SIGUSR1);
  EXPECT_FALSE(parse_signal(""));
  EXPECT_FALSE(parse_signal("NOPE"));
  EXPECT_FALSE(parse_signal("0"));
  EXPECT_FALSE(parse_signal("1000"));
  EXPECT_EQ(redlock::tools::signal_name(SIGHUP), "HUP");
}

// ---------------------------------------------------------------------------
// Bytes as text

TEST(Text, Utf8ValidityAndHex) {
  using redlock::tools::is_valid_utf8;
  for (const std::string& good :
       {std::string(""), std::string("abc"), std::string("caf\xc3\xa9"),
        std::string("\xe2\x98\x95"), std::string("\xf0\x9f\x9a\x80"), std::string(1, '\0')}) {
    EXPECT_TRUE(is_valid_utf8(good)) << redlock::tools::to_hex(good);
  }
  for (const std::string& bad : {std::string("\xff"), std::string("z\xff"), std::string("\xc0\xaf"),
                                 std::string("\xed\xa0\x80"), std::string("\xe2\x98"),
                                 std::string("\xf4\x90\x80\x80"), std::string("\x80")}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << redlock::tools::to_hex(bad);
  }
  EXPECT_EQ(redlock::tools::to_hex("z\xff"), "7aff");
  EXPECT_EQ(redlock::tools::to_hex(""), "");
}

TEST(Text, EscapesWhatATerminalShouldNotGetRaw) {
  using redlock::tools::escape_bytes;
  EXPECT_EQ(escape_bytes("plain caf\xc3\xa9"), "plain caf\xc3\xa9");
  EXPECT_EQ(escape_bytes("z\xff"), "z\\xff");
  EXPECT_EQ(escape_bytes("a\nb\tc\r\x1b[0m\x7f"), "a\\nb\\tc\\r\\x1b[0m\\x7f");
  EXPECT_EQ(escape_bytes("q\"b\\"), "q\\\"b\\\\");
  EXPECT_EQ(escape_bytes("\xc2\x85"), "\\u0085");
  EXPECT_EQ(escape_bytes(std::string(1, '\0')), "\\x00");
  // Lossless: the escaped forms of distinct inputs differ.
  EXPECT_NE(escape_bytes("\\xff"), escape_bytes("\xff"));
  EXPECT_NE(escape_bytes("\x85"), escape_bytes("\xc2\x85"));
  EXPECT_EQ(redlock::tools::quoted("z\xff"), "\"z\\xff\"");
  // printable() keeps quotes, backslashes, newlines and tabs.
  EXPECT_EQ(redlock::tools::printable("resource \"z\xff\"\n\x1b"), "resource \"z\\xff\"\n\\x1b");
}

// ---------------------------------------------------------------------------
// Why a lock could not be had

TEST(LockFailure, FromTheVotesOfTheLastRound) {
  using redlock::ErrorCode;
  using redlock::NodeStatus;
  using redlock::tools::classify_lock_failure;
  using redlock::tools::LockFailure;
  const auto with = [](ErrorCode code, std::vector<NodeStatus> statuses) {
    std::vector<redlock::NodeResult> nodes;
    for (auto s : statuses) nodes.push_back({"n", s, "", {}});
    return redlock::Error(code, "x", nodes);
  };
  using S = NodeStatus;
  EXPECT_EQ(classify_lock_failure(with(ErrorCode::kHeldByAnother, {S::kRefused}), 3),
            LockFailure::kBusy);
  // Contenders split the votes: busy, not unavailable.
  EXPECT_EQ(
      classify_lock_failure(
          with(ErrorCode::kNoQuorum, {S::kOk, S::kOk, S::kRefused, S::kRefused, S::kTimeout}), 3),
      LockFailure::kBusy);
  EXPECT_EQ(
      classify_lock_failure(with(ErrorCode::kLockWaitTimeout,
                                 {S::kOk, S::kRefused, S::kTimeout, S::kDisconnected, S::kError}),
                            3),
      LockFailure::kUnavailable);
  // Answering but sitting out a restart grace.
  EXPECT_EQ(classify_lock_failure(with(ErrorCode::kNoQuorum, {S::kOk, S::kNotVoting, S::kNotVoting,
                                                              S::kNotVoting, S::kDisconnected}),
                                  3),
            LockFailure::kNotVoting);
  EXPECT_EQ(classify_lock_failure(with(ErrorCode::kValidityExhausted, {S::kOk, S::kOk, S::kOk}), 2),
            LockFailure::kUnavailable);
  EXPECT_EQ(classify_lock_failure(redlock::Error(ErrorCode::kLockWaitTimeout, "x"), 3),
            LockFailure::kBusy);
  EXPECT_EQ(classify_lock_failure(redlock::Error(ErrorCode::kCancelled, "x"), 3),
            LockFailure::kOther);
  const auto votes = redlock::tools::count_votes(
      with(ErrorCode::kNoQuorum, {S::kOk, S::kRefused, S::kNotVoting, S::kPending, S::kError}));
  EXPECT_EQ(votes.voted, 2U);
  EXPECT_EQ(votes.not_voting, 1U);
  EXPECT_EQ(votes.other, 2U);
}

// ---------------------------------------------------------------------------
// RedisConnection's pure parts

TEST(RedisConnection, InfoFieldsAndReplyText) {
  using redlock::tools::info_field;
  const std::string info =
      "# Server\r\nredis_version:7.0.15\r\nrun_id:abc\r\nrun_id_x:no\r\nempty:\r\n";
  EXPECT_EQ(info_field(info, "redis_version"), "7.0.15");
  EXPECT_EQ(info_field(info, "run_id"), "abc");
  EXPECT_EQ(info_field(info, "empty"), "");
  EXPECT_FALSE(info_field(info, "run"));
  EXPECT_FALSE(info_field(info, "Server"));
  EXPECT_EQ(info_field("a:1\nb:2", "b"), "2");
  redlock::tools::RedisReply array;
  array.type = redlock::tools::RedisReply::Type::kArray;
  array.elements.resize(3);
  array.elements[0].type = redlock::tools::RedisReply::Type::kString;
  array.elements[0].str = "x";
  array.elements[1].type = redlock::tools::RedisReply::Type::kInteger;
  array.elements[1].integer = -3;
  EXPECT_EQ(redlock::tools::reply_text(array), "x\n-3\n(nil)");
  auto refused = redlock::tools::RedisConnection::open("127.0.0.1", 1, 500ms);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().rfind("connect: ", 0), 0U) << refused.error();
}

// ---------------------------------------------------------------------------
// Subprocess

TEST(Subprocess, ExitStatusSignalsAndExecErrors) {
  ScratchDir dir;
  auto r = run_tool(dir.path(), {"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.code, 3) << r;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(run_tool(dir.path(), {"sh", "-c", "kill -TERM $$"}).code, 128 + SIGTERM);
  auto env = run_tool(dir.path(), {"sh", "-c", "echo \"$A/${HOME-unset}\""}, {"A=1", "HOME"});
  EXPECT_EQ(env.out, "1/unset\n") << env;

  redlock::tools::SpawnOptions missing;
  missing.argv = {"no-such-program-anywhere"};
  auto m = redlock::tools::Subprocess::spawn(missing);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().error_number, ENOENT) << m.error().message;
  missing.argv = {dir.path().string()};
  auto d = redlock::tools::Subprocess::spawn(missing);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().error_number, EACCES) << d.error().message;

  redlock::tools::SpawnOptions sleeper;
  sleeper.argv = {"sleep", "30"};
  auto s = redlock::tools::Subprocess::spawn(sleeper);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_FALSE(s->poll());
  EXPECT_EQ(redlock::tools::exit_code(s->stop(SIGTERM, 5000ms)), 128 + SIGTERM);
  EXPECT_FALSE(s->running());
}

// close_other_fds: a descriptor the parent opened without O_CLOEXEC does not
// reach the child; release() hands the child over without stopping it.
TEST(Subprocess, ClosesInheritedDescriptorsAndLetsGo) {
  ScratchDir dir;
  const int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC, on purpose
  ASSERT_GE(leaked, 0);
  const std::string probe =
      "[ -e /proc/self/fd/" + std::to_string(leaked) + " ] && echo open || echo closed";
  EXPECT_EQ(run_tool(dir.path(), {"sh", "-c", probe}).out, "open\n");
  redlock::tools::SpawnOptions closing;
  closing.argv = {"sh", "-c", probe};
  closing.stdout_path = dir.path() / "closing.out";
  closing.close_other_fds = true;
  auto child = redlock::tools::Subprocess::spawn(closing);
  ASSERT_TRUE(child.has_value()) << child.error().message;
  EXPECT_EQ(redlock::tools::exit_code(child->wait()), 0);
  EXPECT_EQ(read_file(closing.stdout_path), "closed\n");
  ::close(leaked);

  redlock::tools::SpawnOptions sleeper;
  sleeper.argv = {"sleep", "30"};
  auto s = redlock::tools::Subprocess::spawn(sleeper);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  const pid_t pid = s->release();
  EXPECT_GT(pid, 0);
  EXPECT_FALSE(s->running());
  { auto gone = std::move(*s); }  // destroying it must not touch the child
  EXPECT_EQ(::kill(pid, 0), 0) << "the released child was signalled";
  ::kill(pid, SIGKILL);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
}

// ---------------------------------------------------------------------------
// The redlock CLI's exit codes and configuration

redlock::Error error_with(redlock::ErrorCode code, std::vector<redlock::NodeStatus> statuses) {
  std::vector<redlock::NodeResult> nodes;
  for (auto s : statuses) nodes.push_back({"n", s, "", {}});
  return redlock::Error(code, "x", nodes);
}

TEST(CliExitCodes, OnePerKindOfFailure) {
  using redlock::ErrorCode;
  using redlock::NodeStatus;
  using redlock::cli::exit_code_for;
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kInvalidArgument, ""), 3), 2);
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kNoQuorum, ""), 3), 3);
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kValidityExhausted, ""), 3), 3);
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kHeldByAnother, ""), 3), 4);
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kLockLost, ""), 3), 5);
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kNotOwner, ""), 3), 1);
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kExpired, ""), 3), 1);
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kShuttingDown, ""), 3), 1);
  // A wait that ran out: held, unless the last round could not reach a majority.
  const auto held = error_with(ErrorCode::kLockWaitTimeout,
                               {NodeStatus::kRefused, NodeStatus::kRefused, NodeStatus::kOk,
                                NodeStatus::kTimeout, NodeStatus::kDisconnected});
  EXPECT_EQ(exit_code_for(held, 3), 4);
  const auto unreachable = error_with(ErrorCode::kLockWaitTimeout,
                                      {NodeStatus::kOk, NodeStatus::kRefused, NodeStatus::kTimeout,
                                       NodeStatus::kDisconnected, NodeStatus::kDisconnected});
  EXPECT_EQ(exit_code_for(unreachable, 3), 3);
  EXPECT_EQ(exit_code_for(redlock::Error(ErrorCode::kLockWaitTimeout, ""), 3), 4);
  // The nodes answer, but too few may vote (restart grace): 6.
  const auto not_voting = error_with(
      ErrorCode::kNoQuorum, {NodeStatus::kOk, NodeStatus::kNotVoting, NodeStatus::kNotVoting,
                             NodeStatus::kNotVoting, NodeStatus::kNotVoting});
  EXPECT_EQ(exit_code_for(not_voting, 3), 6);
}

TEST(CliFlags, WaitTtlAndJson) {
  using redlock::cli::parse_wait;
  using redlock::tools::ttl_problem;
  EXPECT_EQ(parse_wait("forever").value(), milliseconds::max());
  EXPECT_EQ(parse_wait("2s").value(), 2s);
  EXPECT_EQ(parse_wait("0s").value(), 0ms);
  EXPECT_FALSE(parse_wait("Forever").has_value());
  EXPECT_FALSE(parse_wait("-1s").has_value());
  EXPECT_FALSE(ttl_problem(10s, 60s, std::nullopt));
  EXPECT_FALSE(ttl_problem(20ms, 60s, std::nullopt));
  EXPECT_FALSE(ttl_problem(60s, 60s, std::nullopt));
  EXPECT_NE(ttl_problem(12ms, 60s, std::nullopt).value_or("").find("--ttl 12ms is too short"),
            std::string::npos);
  EXPECT_NE(ttl_problem(1ms, 60s, std::nullopt).value_or("").find("the 10 ms each node gets"),
            std::string::npos);
  EXPECT_NE(ttl_problem(1s, 60s, 1s).value_or("").find("(--node-timeout)"), std::string::npos);
  EXPECT_FALSE(ttl_problem(1s, 60s, 900ms));
  EXPECT_NE(ttl_problem(61s, 60s, std::nullopt).value_or("").find("longer than --max-ttl 1m"),
            std::string::npos);
  EXPECT_EQ(ttl_problem(5min, 60s, std::nullopt, {"--lock-ttl", "--lock-max-ttl", "-"})
                .value_or("")
                .rfind("--lock-ttl 5m is longer than --lock-max-ttl 1m: raise --lock-max-ttl", 0),
            0U);
  // Every ttl the tools let through, the library accepts too, and every one
  // it refuses, they refuse first (in their own terms).
  for (const std::optional<milliseconds> node_timeout :
       {std::optional<milliseconds>(), std::optional<milliseconds>(100ms)}) {
    redlock::ClientOptions client;
    client.max_ttl = 60s;
    if (node_timeout) client.node_timeout = *node_timeout;
    for (long long ms = 1; ms <= 61000; ms += ms < 3000 ? 1 : 997) {
      const milliseconds ttl(ms);
      const bool tools_ok = !ttl_problem(ttl, 60s, node_timeout).has_value();
      const auto library = redlock::detail::validate_acquire("r", ttl, {}, client);
      if (tools_ok) {
        EXPECT_TRUE(library.has_value()) << ms << " ms: " << library.error();
      }
      if (!library.has_value()) {
        EXPECT_FALSE(tools_ok) << ms << " ms";
      }
    }
  }

  nlohmann::json j;
  redlock::cli::put_bytes(j, "resource", "z\xff");
  EXPECT_EQ(j.at("resource_hex"), "7aff");
  EXPECT_EQ(redlock::cli::to_json_text(j),
            "{\"resource\":\"z\xef\xbf\xbd\",\"resource_hex\":\"7aff\"}");
  nlohmann::json plain;
  redlock::cli::put_bytes(plain, "resource", "ok");
  EXPECT_FALSE(plain.contains("resource_hex"));
}

TEST(CliConfig, PrecedenceAndFileFormat) {
  using redlock::cli::resolve_nodes;
  ScratchDir home;
  const auto config_dir = home.path() / ".config" / "redlock";
  std::filesystem::create_directories(config_dir);
  write_file(config_dir / "config.json", R"({"nodes": ["h:1", "h:2", "h:3"]})");
  const auto other = home.path() / "other.json";
  write_file(other, R"({"nodes": ["o:1"]})");
  const std::string h = home.path().string();

  auto flag = resolve_nodes({"a:1, b:2", other.string(), "e:1", std::nullopt, h});
  ASSERT_TRUE(flag.has_value()) << flag.error();
  EXPECT_EQ(flag->nodes, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(flag->origin, "--nodes");
  auto config = resolve_nodes({std::nullopt, other.string(), "e:1", std::nullopt, h});
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->nodes, (std::vector<std::string>{"o:1"}));
  auto env = resolve_nodes({std::nullopt, std::nullopt, "e:1,e:2", std::nullopt, h});
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->origin, "REDLOCK_NODES");
  auto deflt = resolve_nodes({std::nullopt, std::nullopt, std::nullopt, std::nullopt, h});
  ASSERT_TRUE(deflt.has_value()) << deflt.error();
  EXPECT_EQ(deflt->nodes.size(), 3U);
  // $XDG_CONFIG_HOME wins over ~/.config (relative values are ignored).
  EXPECT_EQ(redlock::cli::default_config_path("/x", h),
            std::filesystem::path("/x/redlock/config.json"));
  EXPECT_EQ(redlock::cli::default_config_path("rel", h), config_dir / "config.json");
  EXPECT_FALSE(redlock::cli::default_config_path(std::nullopt, std::nullopt));
  auto nothing =
      resolve_nodes({std::nullopt, std::nullopt, std::nullopt, std::nullopt, "/nonexistent"});
  EXPECT_FALSE(nothing.has_value());
  EXPECT_FALSE(resolve_nodes({" , ", std::nullopt, std::nullopt, std::nullopt, h}).has_value());

  EXPECT_TRUE(redlock::cli::parse_config(R"({"nodes": ["a:1"]})").has_value());
  // Found by fuzzing: a number too large for a double is out_of_range in
  // nlohmann, not a parse_error, and used to escape parse_config.
  for (const char* huge : {"58e08080", R"({"nodes": [1e999]})", "-1e400"}) {
    auto r = redlock::cli::parse_config(huge);
    ASSERT_FALSE(r.has_value()) << huge;
    EXPECT_EQ(r.error(), "not JSON: a number is out of range") << huge;
  }
  for (const char* bad : {"", "[]", "{}", R"({"nodes": []})", R"({"nodes": [1]})",
                          R"({"nodes": "a:1"})", R"({"nodes": ["a:1"], "extra": 1})"}) {
    EXPECT_FALSE(redlock::cli::parse_config(bad).has_value()) << bad;
  }
}

// ---------------------------------------------------------------------------
// chatroomd

TEST(ChatroomValidation, RoomNames) {
  using redlock::chatroom::room_name_problem;
  EXPECT_FALSE(room_name_problem("general"));
  EXPECT_FALSE(room_name_problem("café ☕ 🚀"));
  EXPECT_FALSE(room_name_problem(std::string(64, 'a')));
  EXPECT_EQ(room_name_problem(""), "name is empty");
  EXPECT_EQ(room_name_problem(std::string(65, 'a')), "name is longer than 64 bytes");
  EXPECT_EQ(
      room_name_problem(std::string(22, 'a') + std::string("\xe2\x98\x95") + std::string(40, 'b')),
      "name is longer than 64 bytes");
  for (const std::string& bad : {std::string("a\nb"), std::string("a\tb"), std::string(1, '\0'),
                                 std::string("\x7f"), std::string("a\xc2\x85")}) {
    EXPECT_EQ(room_name_problem(bad), "name contains a control character") << bad;
  }
  for (const std::string& bad : {std::string("\xff"), std::string("\xc0\xaf"),
                                 std::string("\xed\xa0\x80"), std::string("\xe2\x98")}) {
    EXPECT_EQ(room_name_problem(bad), "name is not valid UTF-8");
  }
  EXPECT_EQ(room_name_problem("a/b"), "name contains '/'");
  EXPECT_FALSE(redlock::chatroom::text_problem("line one\nline two\tand a/slash"));
  EXPECT_TRUE(redlock::chatroom::author_problem("a\nb"));
  EXPECT_TRUE(redlock::chatroom::text_problem(std::string(4097, 'x')));
}

// What chatroomd answers 422 with: every problem, in FastAPI's shape, as
// valid UTF-8 JSON whatever the request's bytes.
TEST(ChatroomRequests, BodiesAndTheirProblems) {
  using redlock::chatroom::parse_create_room;
  using redlock::chatroom::parse_new_message;
  using redlock::chatroom::Problems;
  const auto only = [](const tl::expected<redlock::chatroom::CreateRoomRequest, Problems>& r) {
    EXPECT_FALSE(r.has_value());
    if (r.has_value() || r.error().size() != 1) return redlock::chatroom::Problem{};
    return r.error().front();
  };
  EXPECT_EQ(parse_create_room(R"({"name": "general", "extra": 1})").value().name, "general");
  EXPECT_EQ(parse_create_room(R"({"name": "caf\u00e9"})").value().name, "caf\xc3\xa9");

  auto bad_bytes = only(parse_create_room("{\"name\":\"\xff\"}"));
  EXPECT_EQ(bad_bytes.type, "json_invalid");
  EXPECT_EQ(bad_bytes.loc, nlohmann::json::array({"body", 9}));
  auto not_json = only(parse_create_room("{\"name\":"));
  EXPECT_EQ(not_json.type, "json_invalid");
  EXPECT_EQ(not_json.msg, "JSON decode error");
  EXPECT_EQ(not_json.ctx.at("error").get<std::string>().find("last read"), std::string::npos);
  EXPECT_EQ(only(parse_create_room("")).type, "json_invalid");
  EXPECT_EQ(only(parse_create_room("[]")).type, "model_attributes_type");
  EXPECT_EQ(only(parse_create_room("\"x\"")).type, "model_attributes_type");
  EXPECT_EQ(only(parse_create_room("{}")).type, "missing");
  EXPECT_EQ(only(parse_create_room("{}")).loc, nlohmann::json::array({"body", "name"}));
  EXPECT_EQ(only(parse_create_room(R"({"name": 7})")).type, "string_type");
  EXPECT_EQ(only(parse_create_room(R"({"name": null})")).type, "string_type");
  EXPECT_EQ(only(parse_create_room(R"({"name": ""})")).type, "string_too_short");
  auto too_long = only(parse_create_room(R"({"name": ")" + std::string(65, 'x') + R"("})"));
  EXPECT_EQ(too_long.type, "string_too_long");
  EXPECT_EQ(too_long.ctx.at("max_length"), 64);
  EXPECT_EQ(only(parse_create_room(R"({"name": "a\u0007"})")).type, "value_error");
  EXPECT_EQ(only(parse_create_room(R"({"name": "a\u0000"})")).type, "value_error");
  EXPECT_EQ(only(parse_create_room(R"({"name": "a/b"})")).msg, "Value error, name contains '/'");
  EXPECT_EQ(only(parse_create_room(R"({"name": "\ud800"})")).type, "json_invalid");
  // The same out_of_range as the CLI's config (found by fuzzing it): a 422,
  // never an exception (chatroomd answered 500).
  EXPECT_EQ(only(parse_create_room(R"({"name": 1e999})")).type, "json_invalid");
  EXPECT_EQ(only(parse_create_room("1e999")).ctx.at("error"), "a number is out of range");

  // Every problem of a body, not just the first.
  auto both = parse_new_message(R"({"text": 3})");
  ASSERT_FALSE(both.has_value());
  ASSERT_EQ(both.error().size(), 2U);
  EXPECT_EQ(both.error()[0].loc, nlohmann::json::array({"body", "author"}));
  EXPECT_EQ(both.error()[0].type, "missing");
  EXPECT_EQ(both.error()[1].loc, nlohmann::json::array({"body", "text"}));
  EXPECT_EQ(both.error()[1].type, "string_type");
  auto message = parse_new_message(R"({"author": "ann", "text": "hi\nall\t/"})");
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->text, "hi\nall\t/");

  EXPECT_EQ(redlock::chatroom::path_name_problems("\xff").at(0).type, "string_unicode");
  EXPECT_EQ(redlock::chatroom::path_name_problems("\xff").at(0).loc,
            nlohmann::json::array({"path", "name"}));
  EXPECT_TRUE(redlock::chatroom::path_name_problems("ok").empty());

  using redlock::chatroom::parse_limit;
  EXPECT_EQ(parse_limit(std::nullopt, 100, 1000).value(), 100U);
  EXPECT_EQ(parse_limit("5", 100, 1000).value(), 5U);
  EXPECT_EQ(parse_limit("0", 100, 1000).error().at(0).type, "greater_than_equal");
  EXPECT_EQ(parse_limit("1001", 100, 1000).error().at(0).type, "less_than_equal");
  EXPECT_EQ(parse_limit("x", 100, 1000).error().at(0).type, "int_parsing");
  EXPECT_EQ(parse_limit("99999999999999999999", 100, 1000).error().at(0).type, "int_parsing");

  // The answers are JSON and UTF-8 whatever went in.
  const auto body = nlohmann::json::parse(
      redlock::chatroom::problems_body(parse_create_room("{\"name\":\"\xff\"}").error()));
  EXPECT_EQ(body.at("detail").at(0).at("type"), "json_invalid");
  EXPECT_TRUE(redlock::tools::is_valid_utf8(redlock::chatroom::detail_body("z\xff")));
  EXPECT_EQ(nlohmann::json::parse(redlock::chatroom::detail_body("z\xff")).at("detail"),
            "z\xef\xbf\xbd");
}

TEST(ChatroomMetrics, RoutesAndPrometheusText) {
  using redlock::chatroom::route_of;
  EXPECT_EQ(route_of("POST", "/chatrooms"), "POST /chatrooms");
  EXPECT_EQ(route_of("POST", "/chatrooms/x/messages"), "POST /chatrooms/{name}/messages");
  EXPECT_EQ(route_of("GET", "/chatrooms/x"), "GET /chatrooms/{name}");
  EXPECT_EQ(route_of("GET", "/chatrooms/x/messages"), "GET /chatrooms/{name}/messages");
  EXPECT_EQ(route_of("GET", "/healthz"), "GET /healthz");
  EXPECT_EQ(route_of("GET", "/readyz"), "GET /readyz");
  EXPECT_EQ(route_of("GET", "/metrics"), "GET /metrics");
  for (const char* other :
       {"/", "/chatrooms/", "/chatrooms//messages", "/chatrooms/x/y", "/a/b/c/d/e", "metrics"}) {
    EXPECT_EQ(route_of("GET", other), "other") << other;
  }
  EXPECT_EQ(route_of("DELETE", "/chatrooms/x"), "other");

  redlock::chatroom::ServiceMetrics m;
  m.observe_request("POST /chatrooms", 201, 0.003);
  m.observe_request("POST /chatrooms", 200, 0.5);
  m.observe_request("POST /chatrooms", 200, 20);
  m.unique_conflict();
  m.room_created();
  const std::string text = m.render();
  for (const char* line :
       {"chatroom_http_requests_total{route=\"POST /chatrooms\",status=\"200\"} 2\n",
        "chatroom_http_requests_total{route=\"POST /chatrooms\",status=\"201\"} 1\n",
        "chatroom_http_request_duration_seconds_bucket{route=\"POST /chatrooms\",le=\"0.001\"} 0\n",
        "chatroom_http_request_duration_seconds_bucket{route=\"POST /chatrooms\",le=\"0.005\"} 1\n",
        "chatroom_http_request_duration_seconds_bucket{route=\"POST /chatrooms\",le=\"0.5\"} 2\n",
        "chatroom_http_request_duration_seconds_bucket{route=\"POST /chatrooms\",le=\"10\"} 2\n",
        "chatroom_http_request_duration_seconds_bucket{route=\"POST /chatrooms\",le=\"+Inf\"} 3\n",
        "chatroom_http_request_duration_seconds_count{route=\"POST /chatrooms\"} 3\n",
        "chatroom_unique_conflicts_total 1\n", "chatroom_rooms_created_total 1\n",
        "# TYPE chatroom_http_request_duration_seconds histogram\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  EXPECT_EQ(m.unique_conflicts(), 1U);
}

TEST(ChatroomRaceChecker, CleanOnlyWhenCreatedOnce) {
  using redlock::chatroom::RoomAudit;
  using redlock::chatroom::race::check;
  redlock::chatroom::race::RaceResult race;
  race.requests = 10;
  race.created = 1;
  race.existed = 8;
  race.unavailable = 1;
  EXPECT_TRUE(check(race, RoomAudit{1, 1, 1}, 0).clean);
  EXPECT_FALSE(check(race, RoomAudit{1, 1, 1}, 3).clean);
  EXPECT_FALSE(check(race, RoomAudit{1, 2, 1}, 0).clean);
  EXPECT_FALSE(check(race, RoomAudit{1, 1, 2}, 0).clean);
  EXPECT_FALSE(check(race, RoomAudit{2, 2, 2}, 0).clean);
  race.created = 2;
  EXPECT_FALSE(check(race, RoomAudit{1, 1, 1}, 0).clean);
  race.created = 1;
  race.other = 1;
  const auto v = check(race, RoomAudit{1, 1, 1}, 0);
  EXPECT_FALSE(v.clean);
  EXPECT_EQ(v.problems.size(), 1U);
}

TEST(ConnectionPool, LendsAtMostSizeAndDropsBrokenOnes) {
  std::atomic<int> made{0};
  redlock::chatroom::ConnectionPool<int, std::string> pool(
      2, [&]() -> tl::expected<std::unique_ptr<int>, std::string> {
        return std::make_unique<int>(++made);
      });
  {
    auto a = pool.borrow();
    auto b = pool.borrow();
    ASSERT_TRUE(a && b);
    EXPECT_NE(**a, **b);
    std::atomic<bool> got{false};
    std::thread third([&] {
      auto c = pool.borrow();
      got = c.has_value();
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(got.load());  // waits for a connection to come back
    a->broken();
    { auto drop = std::move(*a); }
    third.join();
    EXPECT_TRUE(got.load());
  }
  EXPECT_EQ(made.load(), 3);  // the broken one was replaced
}

TEST(SqliteStore, RefusesACreatorWhoseFenceIsNotAboveTheLargestRecorded) {
  ScratchDir dir;
  auto opened = redlock::chatroom::open_store("sqlite:" + (dir.path() / "t.db").string(), 2);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  auto& store = **opened;
  const auto yes = [] { return true; };
  // The newer holder (fence 11) wrote first: the older one (fence 10), which
  // lost its lock without knowing, is refused, even for another room name
  // under the same lock resource, and nothing of its transaction remains.
  ASSERT_TRUE(store.create_room("a", "chatroom:x", 11, yes).has_value());
  auto stale = store.create_room("b", "chatroom:x", 10, yes);
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().kind, redlock::chatroom::StoreErrorKind::kStaleFence);
  EXPECT_NE(stale.error().message.find("fence 10"), std::string::npos) << stale.error().message;
  EXPECT_FALSE(store.find_room("b").value().has_value());
  EXPECT_EQ(store.audit("b").value().created_events, 0);
  auto same = store.create_room("c", "chatroom:x", 11, yes);
  ASSERT_FALSE(same.has_value()) << "a fence is used once";
  EXPECT_EQ(same.error().kind, redlock::chatroom::StoreErrorKind::kStaleFence);
  EXPECT_TRUE(store.create_room("d", "chatroom:x", 12, yes).has_value());
  // Fences are per lock resource; 0 (no fencing) records nothing.
  EXPECT_TRUE(store.create_room("e", "chatroom:y", 1, yes).has_value());
  EXPECT_TRUE(store.create_room("f", "chatroom:x", 0, yes).has_value());
}

TEST(SqliteStore, CreatesOnceAndRollsBackWhenTheLockIsGone) {
  ScratchDir dir;
  auto opened = redlock::chatroom::open_store("sqlite:" + (dir.path() / "t.db").string(), 2);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  auto& store = **opened;
  EXPECT_EQ(store.kind(), "sqlite");
  const auto yes = [] { return true; };
  auto room = store.create_room("r", "chatroom:r", 0, yes);
  ASSERT_TRUE(room.has_value()) << room.error().message;
  auto again = store.create_room("r", "chatroom:r", 0, yes);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, redlock::chatroom::StoreErrorKind::kUniqueViolation)
      << again.error().message;
  auto aborted = store.create_room("s", "chatroom:s", 0, [] { return false; });
  ASSERT_FALSE(aborted.has_value());
  EXPECT_EQ(aborted.error().kind, redlock::chatroom::StoreErrorKind::kAborted);
  EXPECT_FALSE(store.find_room("s").value().has_value());
  EXPECT_EQ(store.audit("s").value().created_events, 0);
  auto audit = store.audit("r");
  ASSERT_TRUE(audit.has_value());
  EXPECT_EQ(audit->rooms, 1);
  EXPECT_EQ(audit->created_messages, 1);
  EXPECT_EQ(audit->created_events, 1);
  auto message = store.append_message(*room, "ann", "hello");
  ASSERT_TRUE(message.has_value()) << message.error().message;
  auto list = store.messages(*room, 10);
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2U);
  EXPECT_EQ(list->at(0).kind, "system");
  EXPECT_EQ(list->at(1).text, "hello");
  EXPECT_EQ(store.messages(*room, 1).value().size(), 1U);
  EXPECT_TRUE(store.ping().has_value());
  EXPECT_FALSE(redlock::chatroom::open_store("mysql://x", 1).has_value());
  EXPECT_FALSE(redlock::chatroom::open_store("sqlite:/nonexistent/dir/x.db", 1).has_value());
}

TEST(SqliteStore, ReplicasOpeningANewFileAtOnceAllOpenIt) {
  // Replicas started together open a store file that does not exist yet:
  // switching it to WAL mode is contended, and each must wait its turn
  // instead of failing with "database is locked". Several rounds, as the
  // collision depends on timing.
  ScratchDir dir;
  constexpr int kReplicas = 4;
  for (int round = 0; round < 50; ++round) {
    const std::string url =
        "sqlite:" + (dir.path() / ("r" + std::to_string(round) + ".db")).string();
    std::latch start(kReplicas);
    std::vector<std::string> errors(kReplicas);
    std::vector<std::thread> replicas;
    for (int i = 0; i < kReplicas; ++i) {
      replicas.emplace_back([&, i] {
        start.arrive_and_wait();
        auto store = redlock::chatroom::open_store(url, 1);
        if (!store) errors[static_cast<std::size_t>(i)] = store.error().message;
      });
    }
    for (auto& t : replicas) t.join();
    for (const auto& e : errors) EXPECT_EQ(e, "") << "round " << round;
  }
}

TEST(ChatService, WithoutTheLockAUniqueViolationReportsTheRoom) {
  ScratchDir dir;
  auto store = redlock::chatroom::open_store("sqlite:" + (dir.path() / "t.db").string(), 4);
  ASSERT_TRUE(store.has_value());
  redlock::chatroom::ServiceMetrics metrics;
  redlock::chatroom::ServiceOptions options;
  options.create_delay = 100ms;
  redlock::chatroom::ChatService service(**store, nullptr, options, metrics);
  // Two creates past the look-up at once: one creates, the other meets the
  // UNIQUE constraint and reports the room as existing.
  redlock::chatroom::RoomOutcome a;
  redlock::chatroom::RoomOutcome b;
  std::thread ta([&] { a = service.ensure_room("dup"); });
  std::thread tb([&] { b = service.ensure_room("dup"); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.room && b.room) << a.detail << " / " << b.detail;
  EXPECT_EQ(a.room->id, b.room->id);
  const int created = (a.outcome == redlock::chatroom::Outcome::kCreated ? 1 : 0) +
                      (b.outcome == redlock::chatroom::Outcome::kCreated ? 1 : 0);
  EXPECT_EQ(created, 1);
  EXPECT_EQ(metrics.unique_conflicts(), 1U);
  EXPECT_EQ(service.ensure_room("dup").outcome, redlock::chatroom::Outcome::kExisted);
}

}  // namespace
}  // namespace redlock::testing
