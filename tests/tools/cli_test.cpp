// The redlock command line tool against a real 5-node cluster: each
// subcommand's output and exit status, run's exclusion, extension, loss and
// signal handling, and the cluster launcher behind `redlock cluster`.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.hpp"
#include "fake_clock.hpp"
#include "lock_keys.hpp"
#include "tls_servers.hpp"
#include "tool_process.hpp"

namespace redlock::testing {
namespace {

using namespace std::chrono_literals;
using redlock::cluster::scaled;
using Clock = std::chrono::steady_clock;

constexpr int kOk = 0;
constexpr int kFailure = 1;
constexpr int kUsage = 2;
constexpr int kUnreachable = 3;
constexpr int kNotAcquired = 4;
constexpr int kLockLost = 5;
constexpr int kNotVoting = 6;

class RedlockCli : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    ASSERT_FALSE(scratch_.path().empty()) << "mkdtemp failed";
  }

  std::string nodes() const {
    std::string out;
    for (const auto& a : addresses()) out += (out.empty() ? "" : ",") + a;
    return out;
  }

  // The tool's environment: no inherited node configuration.
  std::vector<std::string> isolated_env(std::vector<std::string> extra = {}) const {
    // The cluster was just started empty: its nodes may vote at once.
    std::vector<std::string> env = {"REDLOCK_NODES", "XDG_CONFIG_HOME",
                                    "HOME=" + scratch_.path().string(), "REDLOCK_RESTART_GRACE=0s"};
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  }

  std::vector<std::string> argv(std::vector<std::string> args, bool with_nodes = true) const {
    // The default node timeout of a short ttl is 10 ms, which a loaded
    // machine (or a sanitizer) misses now and then: these tests are about
    // the tool, not about that bound.
    std::vector<std::string> out = {REDLOCK_CLI_PATH, "--node-timeout",
                                    std::to_string(scaled(100ms).count()) + "ms"};
    if (with_nodes) out.insert(out.end(), {"--nodes", nodes()});
    out.insert(out.end(), args.begin(), args.end());
    return out;
  }

  ToolResult cli(std::vector<std::string> args, std::vector<std::string> env = {}) {
    return run_tool(scratch_.path(), argv(std::move(args)), isolated_env(std::move(env)));
  }
  ToolResult cli_without_nodes(std::vector<std::string> args, std::vector<std::string> env = {}) {
    return run_tool(scratch_.path(), argv(std::move(args), false), isolated_env(std::move(env)));
  }
  ToolProcess start(std::vector<std::string> args) {
    return ToolProcess(scratch_.path(), argv(std::move(args)), isolated_env());
  }

  std::size_t nodes_holding(const std::string& resource, const std::string& token) {
    return redlock::testing::nodes_holding(cluster(), resource, token);
  }
  // Waits until a majority of the nodes hold a lock key for `resource`.
  bool locked_on_majority(const std::string& resource) {
    return wait_until([&]() -> bool { return nodes_with_lock(cluster(), resource) >= 3; },
                      scaled(5000ms));
  }

  std::string token_of(const ToolResult& r) { return r.out.substr(0, r.out.find('\n')); }

  // Waits for a file the command creates once it runs (and has set up its
  // signal handling).
  static bool appears(const std::filesystem::path& file) {
    return wait_until([&]() -> bool { return std::filesystem::exists(file); }, scaled(10000ms));
  }
  // The same, or the run's outcome (it ended, or is stopped now) in the
  // failure message.
  static ::testing::AssertionResult appears(const std::filesystem::path& file, ToolProcess& run) {
    if (appears(file)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << file << " did not appear; the run: " << run.finish(0ms);
  }

  // Whether process `pid` blocks `sig` (its main thread, from /proc): redlock
  // run blocks the signals it handles before anything else.
  static bool blocks(pid_t pid, int sig) {
    const std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
    const auto at = status.find("SigBlk:");
    if (at == std::string::npos) return false;
    const unsigned long long mask = std::stoull(status.substr(at + 7, 24), nullptr, 16);
    return ((mask >> (sig - 1)) & 1ULL) != 0;
  }

  // Empties every node: the lock keys vanish behind the holders' backs.
  void flush_all() {
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      auto done = cluster().command(i, {"FLUSHALL"});
      ASSERT_TRUE(done.has_value()) << done.error();
    }
  }

  ScratchDir scratch_;
};

// ---------------------------------------------------------------------------
// Usage

TEST_F(RedlockCli, HelpOnEverySubcommand) {
  auto top = cli_without_nodes({"--help"});
  EXPECT_EQ(top.code, kOk) << top;
  EXPECT_NE(top.out.find("Exit status:"), std::string::npos) << top;
  EXPECT_NE(top.out.find("5    run: the lock was lost"), std::string::npos) << top;
  for (const char* sub : {"acquire", "release", "extend", "status", "run", "cluster"}) {
    auto r = cli_without_nodes({sub, "--help"});
    EXPECT_EQ(r.code, kOk) << sub << ": " << r;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << sub << ": " << r;
  }
  auto up = cli_without_nodes({"cluster", "up", "--help"});
  EXPECT_EQ(up.code, kOk) << up;
  EXPECT_NE(up.out.find("--base-port"), std::string::npos) << up;
}

TEST_F(RedlockCli, BadUsageExits2) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"acquire"},
      {"acquire", "r", "--ttl", "10x"},
      {"acquire", "r", "--ttl", "10"},
      {"acquire", "r", "--ttl", "0s"},
      {"acquire", "r", "--ttl", "-1s"},
      {"acquire", "r", "--wait", "soon"},
      {"acquire", "r", "--bogus"},
      {"release", "r"},
      {"extend", "r", "token", "--ttl", "1.5"},
      {"status", "--timeout", "0ms"},
      {"run", "r"},
      {"run", "r", "--ttl", "1y", "--", "true"},
      {"run", "r", "--signal", "NOPE", "--", "true"},
      {"run", "r", "--max-hold", "0s", "--", "true"},
  };
  for (const auto& args : cases) {
    auto r = cli(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.code, kUsage) << "redlock " << line << "\n" << r;
    EXPECT_FALSE(r.err.empty()) << "redlock " << line << ": no message";
  }
  auto bad_node = run_tool(scratch_.path(), {REDLOCK_CLI_PATH, "--nodes", "nohost", "acquire", "r"},
                           isolated_env());
  EXPECT_EQ(bad_node.code, kUsage) << bad_node;
  EXPECT_NE(bad_node.err.find("invalid argument"), std::string::npos) << bad_node;
}

TEST_F(RedlockCli, NodesFromEnvironmentAndConfigFiles) {
  auto none = cli_without_nodes({"acquire", "r"});
  EXPECT_EQ(none.code, kUsage) << none;
  EXPECT_NE(none.err.find("no lock nodes"), std::string::npos) << none;

  auto from_env = cli_without_nodes({"status"}, {"REDLOCK_NODES=" + nodes()});
  EXPECT_EQ(from_env.code, kOk) << from_env;

  nlohmann::json config = {{"nodes", addresses()}};
  const auto file = scratch_.path() / "nodes.json";
  write_file(file, config.dump());
  auto from_file = cli_without_nodes({"--config", file.string(), "status"});
  EXPECT_EQ(from_file.code, kOk) << from_file;
  // --config beats REDLOCK_NODES, and --nodes beats both.
  auto config_first =
      cli_without_nodes({"--config", file.string(), "status"}, {"REDLOCK_NODES=nohost"});
  EXPECT_EQ(config_first.code, kOk) << config_first;
  auto flag_first = cli({"status"}, {"REDLOCK_NODES=nohost"});
  EXPECT_EQ(flag_first.code, kOk) << flag_first;

  // The default file, under $HOME.
  std::filesystem::create_directories(scratch_.path() / ".config" / "redlock");
  write_file(scratch_.path() / ".config" / "redlock" / "config.json", config.dump());
  auto from_home = cli_without_nodes({"status"});
  EXPECT_EQ(from_home.code, kOk) << from_home;

  for (const char* text : {"{\"nodes\": []}", "{\"nodes\": \"a:1\"}", "[1]",
                           "{\"nodes\": [\"127.0.0.1:1\"], \"ttl\": 3}", "not json"}) {
    write_file(file, text);
    auto bad = cli_without_nodes({"--config", file.string(), "status"});
    EXPECT_EQ(bad.code, kUsage) << text << ": " << bad;
    EXPECT_NE(bad.err.find(file.string()), std::string::npos) << bad;
  }
  auto missing =
      cli_without_nodes({"--config", (scratch_.path() / "nope.json").string(), "status"});
  EXPECT_EQ(missing.code, kUsage) << missing;
}

TEST_F(RedlockCli, VersionAndUnknownCommands) {
  auto version = cli_without_nodes({"--version"});
  EXPECT_EQ(version.code, kOk) << version;
  EXPECT_TRUE(std::regex_match(version.out, std::regex("redlock [0-9]+\\.[0-9]+\\.[0-9]+\n")))
      << version;
  auto unknown = cli({"frobnicate"});
  EXPECT_EQ(unknown.code, kUsage) << unknown;
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos) << unknown;
  auto none = cli({});
  EXPECT_EQ(none.code, kUsage) << none;
  EXPECT_NE(none.err.find("a command is required"), std::string::npos) << none;
}

// Durations the library would refuse in its own terms (node_timeout,
// max_ttl, microseconds of validity) are refused in the flags' terms.
TEST_F(RedlockCli, TtlProblemsAreNamedInTheFlagsTerms) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"acquire", "r", "--ttl", "10ms"}, "--ttl 10ms is too short"},
      {{"acquire", "r", "--ttl", "1ms"}, "--ttl 1ms is too short"},
      {{"--node-timeout", "1s", "acquire", "r", "--ttl", "1s"}, "--ttl 1s is too short"},
      {{"acquire", "r", "--ttl", "2m"}, "--ttl 2m is longer than --max-ttl 1m"},
      {{"run", "r", "--ttl", "90s", "--", "true"}, "--ttl 90s is longer than --max-ttl 1m"},
      {{"extend", "r", "token", "--ttl", "5ms"}, "--ttl 5ms is too short"},
      {{"acquire", "r", "--retry-delay", "2h"}, "--retry-delay is longer than 1h"},
      {{"--max-ttl", "8000h", "acquire", "r"}, "--max-ttl: longer than"},
      {{"acquire", "r", "--wait", "soon"}, "(or forever)"},
  };
  for (const auto& [args, message] : cases) {
    auto r = cli(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.code, kUsage) << line << r;
    EXPECT_NE(r.err.find(message), std::string::npos) << line << r;
    for (const char* internal : {"node_timeout", "max_ttl", "min_validity", "leaves -"}) {
      EXPECT_EQ(r.err.find(internal), std::string::npos) << line << "speaks of " << internal << r;
    }
  }
}

// ---------------------------------------------------------------------------
// acquire, release, extend

TEST_F(RedlockCli, StdoutHoldsOnlyTheToken) {
  // T=$(redlock acquire x); redlock release x "$T"
  auto acquired = cli({"acquire", "cli:t"});
  ASSERT_EQ(acquired.code, kOk) << acquired;
  ASSERT_TRUE(std::regex_match(acquired.out, std::regex("[0-9a-f]{32}\n"))) << acquired;
  std::string token = acquired.out;
  token.pop_back();
  auto released = cli({"release", "cli:t", token});
  EXPECT_EQ(released.code, kOk) << released;
  // -q: nothing but the token, nothing on stderr.
  auto quiet = cli({"-q", "acquire", "cli:t"});
  ASSERT_EQ(quiet.code, kOk) << quiet;
  EXPECT_TRUE(quiet.err.empty()) << quiet;
  auto quiet_release = cli({"release", "-q", "cli:t", token_of(quiet)});
  EXPECT_EQ(quiet_release.code, kOk) << quiet_release;
  EXPECT_TRUE(quiet_release.out.empty() && quiet_release.err.empty()) << quiet_release;
}

// A resource name is bytes: one that is not UTF-8 is locked, printed in JSON
// (with its bytes in hex) and released like any other.
TEST_F(RedlockCli, ResourceNamesThatAreNotUtf8) {
  const std::string name = "z\xff";
  auto j = cli({"--json", "acquire", name, "--ttl", "30s"});
  ASSERT_EQ(j.code, kOk) << j;
  const auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json.at("resource_hex"), "7aff") << j;
  EXPECT_EQ(json.at("resource"), "z\xef\xbf\xbd") << j;  // U+FFFD for the bad byte
  const std::string token = json.at("token");
  EXPECT_GE(nodes_holding(name, token), 3U);
  auto released = cli({"--json", "release", name, token});
  EXPECT_EQ(released.code, kOk) << released;
  EXPECT_EQ(nlohmann::json::parse(released.out).at("resource_hex"), "7aff") << released;
  EXPECT_EQ(nodes_with_lock(cluster(), name), 0U);

  // Text: the token on stdout; the name escaped on stderr.
  auto text = cli({"acquire", name, "--ttl", "30s"});
  ASSERT_EQ(text.code, kOk) << text;
  EXPECT_NE(text.err.find("acquired \"z\\xff\""), std::string::npos) << text;
  // Held by another: the error says so, in JSON too.
  auto held = cli({"--json", "acquire", name});
  EXPECT_EQ(held.code, kNotAcquired) << held;
  EXPECT_EQ(nlohmann::json::parse(held.out).at("resource_hex"), "7aff") << held;
  EXPECT_EQ(cli({"release", name, token_of(text)}).code, kOk);
  // A valid UTF-8 name gets no hex.
  auto plain = cli({"--json", "acquire", "caf\xc3\xa9"});
  ASSERT_EQ(plain.code, kOk) << plain;
  const auto pj = nlohmann::json::parse(plain.out);
  EXPECT_EQ(pj.at("resource"), "caf\xc3\xa9");
  EXPECT_FALSE(pj.contains("resource_hex"));
  EXPECT_EQ(cli({"release", "caf\xc3\xa9", pj.at("token")}).code, kOk);
}

// A granted lock whose token cannot be written (stdout is /dev/full, or a
// closed pipe) is released, not left held for its ttl with nobody to
// release it.
TEST_F(RedlockCli, ATokenThatCannotBePrintedIsReleased) {
  for (bool json : {false, true}) {
    redlock::tools::SpawnOptions spawn;
    spawn.argv = argv({"acquire", "cli:full", "--ttl", "30s"});
    if (json) spawn.argv.insert(spawn.argv.begin() + 1, "--json");
    spawn.env = isolated_env();
    spawn.stdout_path = "/dev/full";
    spawn.stderr_path = scratch_.path() / (json ? "full-json.err" : "full.err");
    auto child = redlock::tools::Subprocess::spawn(spawn);
    ASSERT_TRUE(child.has_value()) << child.error().message;
    auto status = child->wait_for(scaled(30000ms));
    ASSERT_TRUE(status.has_value()) << "still running";
    const std::string err = read_file(spawn.stderr_path);
    EXPECT_EQ(redlock::tools::exit_code(*status), kFailure) << err;
    EXPECT_NE(err.find("could not write the token to stdout; the lock was released"),
              std::string::npos)
        << err;
    EXPECT_EQ(nodes_with_lock(cluster(), "cli:full"), 0U) << (json ? "--json" : "text");
  }
}

TEST_F(RedlockCli, ConflictExitCode) {
  auto held = cli({"acquire", "cli:E", "--ttl", "30s"});
  ASSERT_EQ(held.code, kOk) << held;
  auto other = cli({"-E", "75", "acquire", "cli:E"});
  EXPECT_EQ(other.code, 75) << other;
  auto waited = cli({"acquire", "cli:E", "--conflict-exit-code", "0", "--wait", "200ms"});
  EXPECT_EQ(waited.code, 0) << waited;
  auto run = cli({"--conflict-exit-code", "9", "run", "cli:E", "--", "true"});
  EXPECT_EQ(run.code, 9) << run;
  EXPECT_EQ(cli({"-E", "256", "acquire", "cli:E"}).code, kUsage);
  EXPECT_EQ(cli({"release", "cli:E", token_of(held)}).code, kOk);
}

TEST_F(RedlockCli, WaitForever) {
  auto held = cli({"acquire", "cli:forever", "--ttl", "1s"});
  ASSERT_EQ(held.code, kOk) << held;
  // Never released: the waiter gets the lock once it expires.
  auto waited = cli({"acquire", "cli:forever", "--wait", "forever", "--retry-delay", "50ms"});
  EXPECT_EQ(waited.code, kOk) << waited;
  EXPECT_NE(token_of(waited), token_of(held));
  EXPECT_EQ(cli({"release", "cli:forever", token_of(waited)}).code, kOk);
}

// --wait bounds the whole acquire, connecting included: with every node
// stalled (connections accepted, never answered), --wait 2s ends in about
// 2 s, not in the connect timeout plus 2 s.
TEST_F(RedlockCli, WaitCountsTheTimeSpentConnecting) {
  for (std::size_t i = 0; i < cluster().size(); ++i) ASSERT_TRUE(cluster().pause(i).has_value());
  auto r = cli({"acquire", "cli:stalled", "--wait", "2s"});
  EXPECT_EQ(r.code, kUnreachable) << r;
  EXPECT_LT(r.took, scaled(2500ms)) << r;
  auto run = cli({"run", "cli:stalled", "--wait", "1s", "--", "true"});
  EXPECT_EQ(run.code, kUnreachable) << run;
  EXPECT_LT(run.took, scaled(1500ms)) << run;
}

TEST_F(RedlockCli, AcquirePrintsTokenAndValidity) {
  auto r = cli({"acquire", "cli:a", "--ttl", "10s"});
  ASSERT_EQ(r.code, kOk) << r;
  const std::string token = token_of(r);
  // stdout holds the token and nothing else: T=$(redlock acquire ...).
  EXPECT_EQ(r.out, token + "\n") << r;
  EXPECT_TRUE(std::regex_match(token, std::regex("[0-9a-f]{32}"))) << r;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("acquired \"cli:a\": valid for [0-9]+ ms \\(ttl "
                                                  "10s, [3-5] of 5 nodes, fence [1-9][0-9]*\\)")))
      << r;
  EXPECT_GE(nodes_holding("cli:a", token), 3U);

  // A ttl above the default max_ttl (60s) needs --max-ttl, and says so.
  auto refused = cli({"acquire", "cli:b", "--ttl", "2m"});
  EXPECT_EQ(refused.code, kUsage) << refused;
  EXPECT_NE(refused.err.find("--ttl 2m is longer than --max-ttl 1m"), std::string::npos) << refused;
  auto j = cli({"--json", "--max-ttl", "5m", "acquire", "cli:b", "--ttl", "2m"});
  ASSERT_EQ(j.code, kOk) << j;
  const auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json.at("resource"), "cli:b");
  EXPECT_EQ(json.at("ttl_ms"), 120000);
  EXPECT_GT(json.at("fence").get<std::uint64_t>(), 0U);
  EXPECT_GT(json.at("validity_ms").get<long long>(), 100000);
  EXPECT_LE(json.at("validity_ms").get<long long>(), 120000);
  EXPECT_EQ(json.at("nodes").size(), 5U);
  EXPECT_GE(nodes_holding("cli:b", json.at("token").get<std::string>()), 3U);

  EXPECT_EQ(cli({"release", "cli:a", token}).code, kOk);
  EXPECT_EQ(cli({"release", "cli:b", json.at("token").get<std::string>()}).code, kOk);
}

TEST_F(RedlockCli, AcquireHeldByAnotherExits4) {
  auto held = cli({"acquire", "cli:held", "--ttl", "30s"});
  ASSERT_EQ(held.code, kOk) << held;
  auto once = cli({"acquire", "cli:held"});
  EXPECT_EQ(once.code, kNotAcquired) << once;
  EXPECT_NE(once.err.find("held by another"), std::string::npos) << once;
  auto waited = cli({"acquire", "cli:held", "--wait", "300ms", "--retry-delay", "50ms"});
  EXPECT_EQ(waited.code, kNotAcquired) << waited;
  // "lock wait timeout ... last: held by another", or, when connecting took
  // the whole wait (a slow sanitizer run), the one round's "held by another".
  EXPECT_NE(waited.err.find("held by another"), std::string::npos) << waited;
  EXPECT_GE(waited.took, 250ms) << waited;
  auto json = cli({"--json", "acquire", "cli:held"});
  EXPECT_EQ(json.code, kNotAcquired) << json;
  EXPECT_EQ(nlohmann::json::parse(json.out).at("error"), "held by another") << json;
  EXPECT_EQ(cli({"release", "cli:held", token_of(held)}).code, kOk);
}

TEST_F(RedlockCli, NoQuorumExits3) {
  for (std::size_t i : {0U, 1U, 2U}) ASSERT_TRUE(cluster().kill(i).has_value());
  auto once = cli({"acquire", "cli:nq"});
  EXPECT_EQ(once.code, kUnreachable) << once;
  EXPECT_NE(once.err.find("no quorum"), std::string::npos) << once;
  // A wait that runs out while a majority is unreachable is still "unreachable".
  auto waited = cli({"acquire", "cli:nq", "--wait", "300ms", "--retry-delay", "50ms"});
  EXPECT_EQ(waited.code, kUnreachable) << waited;
  auto status = cli({"status", "--timeout", "300ms"});
  EXPECT_EQ(status.code, kUnreachable) << status;
  EXPECT_NE(status.out.find("2 of 5 nodes vote; a lock needs 3"), std::string::npos) << status;
  auto release = cli({"release", "cli:nq", "0123456789abcdef0123456789abcdef"});
  EXPECT_EQ(release.code, kUnreachable) << release;
}

TEST_F(RedlockCli, ReleaseThenNotOwner) {
  auto a = cli({"acquire", "cli:r"});
  ASSERT_EQ(a.code, kOk) << a;
  const std::string token = token_of(a);
  auto released = cli({"release", "cli:r", token});
  EXPECT_EQ(released.code, kOk) << released;
  EXPECT_TRUE(released.out.empty()) << released;
  EXPECT_NE(released.err.find("released \"cli:r\": deleted on 5 of 5 nodes"), std::string::npos)
      << released;
  EXPECT_EQ(nodes_holding("cli:r", token), 0U);
  // Nothing left to release: not the owner.
  auto again = cli({"release", "cli:r", token});
  EXPECT_EQ(again.code, kFailure) << again;
  EXPECT_NE(again.err.find("not held with this token"), std::string::npos) << again;
  auto json = cli({"--json", "release", "cli:r", token});
  EXPECT_EQ(json.code, kFailure) << json;
  EXPECT_EQ(nlohmann::json::parse(json.out).at("outcome"), "not owner") << json;
  // Another holder's lock is not released by a wrong token.
  auto b = cli({"acquire", "cli:r"});
  ASSERT_EQ(b.code, kOk) << b;
  auto wrong = cli({"release", "cli:r", token});
  EXPECT_EQ(wrong.code, kFailure) << wrong;
  EXPECT_GE(nodes_holding("cli:r", token_of(b)), 3U);
  EXPECT_EQ(cli({"release", "cli:r", token_of(b)}).code, kOk);
}

TEST_F(RedlockCli, ExtendThenNotOwner) {
  auto a = cli({"acquire", "cli:e", "--ttl", "20s"});
  ASSERT_EQ(a.code, kOk) << a;
  const std::string token = token_of(a);
  auto extended = cli({"extend", "cli:e", token, "--ttl", "60s"});
  EXPECT_EQ(extended.code, kOk) << extended;
  EXPECT_EQ(extended.out, token + "\n") << extended;
  EXPECT_NE(extended.err.find("extended \"cli:e\": valid for "), std::string::npos) << extended;
  // extend knows the lock by its token only: no fence to report (not a 0).
  auto extended_json = cli({"--json", "extend", "cli:e", token, "--ttl", "60s"});
  ASSERT_EQ(extended_json.code, kOk) << extended_json;
  const auto ej = nlohmann::json::parse(extended_json.out);
  EXPECT_TRUE(ej.at("fence").is_null()) << extended_json;
  EXPECT_EQ(ej.at("token"), token) << extended_json;
  std::size_t long_lived = 0;
  for (long long pttl : lock_ttls(cluster(), "cli:e")) long_lived += pttl > 30000 ? 1 : 0;
  EXPECT_GE(long_lived, 3U);
  auto wrong = cli({"extend", "cli:e", "0123456789abcdef0123456789abcdef", "--ttl", "60s"});
  EXPECT_EQ(wrong.code, kFailure) << wrong;
  EXPECT_NE(wrong.err.find("not owner"), std::string::npos) << wrong;
  EXPECT_EQ(cli({"release", "cli:e", token}).code, kOk);
  auto gone = cli({"--json", "extend", "cli:e", token});
  EXPECT_EQ(gone.code, kFailure) << gone;
  EXPECT_EQ(nlohmann::json::parse(gone.out).at("error"), "not owner") << gone;
}

// ---------------------------------------------------------------------------
// status

TEST_F(RedlockCli, StatusShowsEachNode) {
  auto r = cli({"--json", "status"});
  ASSERT_EQ(r.code, kOk) << r;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json.at("reachable"), 5);
  EXPECT_EQ(json.at("voting"), 5);
  EXPECT_EQ(json.at("quorum"), 3);
  EXPECT_TRUE(json.at("quorum_available").get<bool>());
  ASSERT_EQ(json.at("nodes").size(), 5U);
  for (std::size_t i = 0; i < 5; ++i) {
    const auto& n = json.at("nodes").at(i);
    EXPECT_EQ(n.at("node"), addresses()[i]);
    EXPECT_TRUE(n.at("reachable").get<bool>()) << n;
    EXPECT_TRUE(n.at("voting").get<bool>()) << n;
    EXPECT_TRUE(n.at("not_voting_reason").is_null()) << n;
    EXPECT_GT(n.at("rtt_us").get<long long>(), 0) << n;
    EXPECT_TRUE(std::regex_match(n.at("version").get<std::string>(), std::regex("[0-9.]+"))) << n;
    EXPECT_TRUE(std::regex_match(n.at("run_id").get<std::string>(), std::regex("[0-9a-f]{40}")))
        << n;
    EXPECT_GE(n.at("uptime_s").get<long long>(), 0) << n;
    // The launcher's nodes: no AOF, no eviction.
    EXPECT_EQ(n.at("persistence").at("appendonly"), false) << n;
    EXPECT_EQ(n.at("maxmemory_policy"), "noeviction") << n;
    EXPECT_FALSE(n.at("eviction_can_drop_locks").get<bool>()) << n;
    EXPECT_TRUE(n.at("tls").is_null()) << n;
  }
  // A policy that can evict lock keys is pointed out.
  ASSERT_TRUE(cluster().command(4, {"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}));
  ASSERT_TRUE(cluster().kill(1).has_value());
  ASSERT_TRUE(cluster().pause(2).has_value());
  auto text = cli({"status", "--timeout", "300ms"});
  EXPECT_EQ(text.code, kOk) << text;
  EXPECT_NE(text.out.find("3 of 5 nodes vote; a lock needs 3: locks can be granted"),
            std::string::npos)
      << text;
  EXPECT_TRUE(std::regex_search(text.out, std::regex(addresses()[0] + " +voting ")));
  EXPECT_TRUE(std::regex_search(
      text.out, std::regex(addresses()[1] + " +unreachable .*\n +not voting: not connected")))
      << text;
  EXPECT_TRUE(std::regex_search(
      text.out, std::regex(addresses()[2] + " +unreachable .*\n +not voting: not connected")))
      << text;
  EXPECT_TRUE(std::regex_search(
      text.out, std::regex(addresses()[4] + " +voting .* allkeys-lru\n +WARNING: "
                                            "maxmemory-policy allkeys-lru may "
                                            "evict lock keys and fencing counters")))
      << text;
}

// Nodes that answer but may not vote (they restarted, or are younger than
// the restart grace): status says which, why and for how long, and exits 6,
// as acquire does; it used to count them as reachable and exit 0.
TEST_F(RedlockCli, StatusSaysWhichNodesVote) {
  const auto grace = scaled(2000ms);
  const std::string grace_flag = std::to_string(grace.count()) + "ms";
  // Every node is younger than a long grace.
  auto young = cli({"--json", "--restart-grace", "60s", "status"});
  EXPECT_EQ(young.code, kNotVoting) << young;
  const auto yj = nlohmann::json::parse(young.out);
  EXPECT_EQ(yj.at("voting"), 0) << young;
  EXPECT_FALSE(yj.at("quorum_available").get<bool>()) << young;
  for (const auto& n : yj.at("nodes")) {
    EXPECT_FALSE(n.at("voting").get<bool>()) << n;
    EXPECT_TRUE(n.at("answering").get<bool>()) << n;
    EXPECT_NE(n.at("not_voting_reason").get<std::string>().find("up for only"), std::string::npos)
        << n;
    EXPECT_GT(n.at("votes_again_in_ms").get<long long>(), 0) << n;
  }
  auto refused = cli({"--restart-grace", "60s", "acquire", "cli:young"});
  EXPECT_EQ(refused.code, kNotVoting) << refused;

  // Three nodes restart once the others have been up for the grace.
  std::this_thread::sleep_for(grace);
  for (std::size_t i : {0U, 1U, 2U}) ASSERT_TRUE(cluster().restart(i).has_value());
  auto text = cli({"--restart-grace", grace_flag, "status"});
  EXPECT_EQ(text.code, kNotVoting) << text;
  EXPECT_NE(text.out.find("2 of 5 nodes vote; a lock needs 3: NO LOCK CAN BE GRANTED now (5 "
                          "answer, but too few may vote)"),
            std::string::npos)
      << text;
  for (std::size_t i : {0U, 1U, 2U}) {
    EXPECT_TRUE(std::regex_search(
        text.out, std::regex(addresses()[i] + " +not voting .*\n +not voting: up for only [0-9]+ "
                                              "s; votes again in [0-9]+")))
        << text;
  }
  EXPECT_TRUE(std::regex_search(text.out, std::regex(addresses()[3] + " +voting "))) << text;
  auto acquire = cli({"--restart-grace", grace_flag, "acquire", "cli:restarted"});
  EXPECT_EQ(acquire.code, kNotVoting) << acquire;
  EXPECT_NE(acquire.err.find("not voting"), std::string::npos) << acquire;
}

// status reads every node form the library reads, through the library: a
// password never shows, IPv6 and Unix sockets work, a Sentinel node is one
// node (unreachable here), and a malformed or repeated node is bad usage, as
// for acquire. It used to split host:port itself.
class RedlockCliNodeForms : public RedlockCli {
 protected:
  redlock::cluster::ClusterOptions cluster_options() const override {
    redlock::cluster::ClusterOptions o;
    // "-::1": optional, for hosts without IPv6.
    o.extra_args = {"--bind",     "127.0.0.1",        "-::1", "--unixsocket",
                    "redis.sock", "--unixsocketperm", "700"};
    return o;
  }
};

TEST_F(RedlockCliNodeForms, StatusReadsEveryNodeFormAndHidesPasswords) {
  const std::string secret = "s3cret-pw-9f1c";
  ASSERT_TRUE(
      cluster().command(0, {"ACL", "SETUSER", "redlock", "on", ">" + secret, "~*", "&*", "+@all"}));
  const std::vector<std::string> forms = {
      "redis://redlock:" + secret + "@127.0.0.1:" + std::to_string(cluster().port(0)),
      "[::1]:" + std::to_string(cluster().port(1)),
      "unix:" + std::filesystem::absolute(cluster().info(2).dir / "redis.sock").string(),
      "127.0.0.1:" + std::to_string(cluster().port(3)),
      "sentinel://127.0.0.1:1/mymaster",
  };
  std::string list;
  for (const auto& f : forms) list += (list.empty() ? "" : ",") + f;
  const auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> full = {REDLOCK_CLI_PATH, "--nodes", list};
    full.insert(full.end(), args.begin(), args.end());
    return run_tool(scratch_.path(), full, isolated_env());
  };
  auto json = run({"--json", "status", "--timeout", "1s"});
  EXPECT_NE(json.code, kUsage) << json;
  EXPECT_EQ(json.out.find(secret), std::string::npos) << json;
  EXPECT_EQ(json.err.find(secret), std::string::npos) << json;
  const auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j.at("nodes").size(), 5U) << json;
  EXPECT_EQ(j.at("nodes").at(0).at("node"),
            "redis://redlock:***@127.0.0.1:" + std::to_string(cluster().port(0)));
  EXPECT_TRUE(j.at("nodes").at(0).at("voting").get<bool>()) << json;
  EXPECT_EQ(j.at("nodes").at(1).at("node"), forms[1]);
  EXPECT_TRUE(j.at("nodes").at(2).at("voting").get<bool>()) << json;  // Unix socket
  EXPECT_TRUE(j.at("nodes").at(3).at("voting").get<bool>()) << json;
  EXPECT_FALSE(j.at("nodes").at(4).at("voting").get<bool>()) << json;  // no sentinel there
  EXPECT_EQ(json.code, kOk) << json;
  auto text = run({"status", "--timeout", "1s"});
  EXPECT_EQ(text.out.find(secret), std::string::npos) << text;
  EXPECT_EQ(text.err.find(secret), std::string::npos) << text;
  EXPECT_NE(text.out.find("redis://redlock:***@127.0.0.1:"), std::string::npos) << text;

  // acquire uses the same nodes, and so does status: the same verdict.
  auto acquire = run({"acquire", "cli:forms"});
  EXPECT_EQ(acquire.code, kOk) << acquire;
  EXPECT_EQ(run({"release", "cli:forms", token_of(acquire)}).code, kOk);

  // Bad usage, as for acquire: a malformed node, the same node twice.
  for (const std::string& bad :
       {std::string("nohost"), std::string("127.0.0.1:99999"), forms[3] + "," + forms[3],
        "redis://:" + secret + "@127.0.0.1:0"}) {
    auto r =
        run_tool(scratch_.path(), {REDLOCK_CLI_PATH, "--nodes", bad, "status"}, isolated_env());
    EXPECT_EQ(r.code, kUsage) << bad << ": " << r;
    EXPECT_EQ(r.out.find(secret) + r.err.find(secret), 2 * std::string::npos) << r;
  }
}

// A cluster whose third node's clocks run 1.5x fast (the fake clock shim).
class RedlockCliFastClock : public RedlockCli {
 protected:
  redlock::cluster::ClusterOptions cluster_options() const override {
    redlock::cluster::ClusterOptions o;
    o.node_env = {{}, {}, clock_.env(1.5)};
    return o;
  }
  ScratchDir clock_dir_;
  FakeClock clock_{clock_dir_.path() / "clock"};
};

TEST_F(RedlockCliFastClock, StatusWithClockShowsTheFastNode) {
  // Suspect clocks do not vote by default: the fast node is shown as not
  // voting, and why.
  ASSERT_TRUE(clock_.ok());
  auto r = cli({"--json", "status", "--clock", "1500ms"});
  ASSERT_EQ(r.code, kOk) << r;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json.at("clock_window_ms"), 1500);
  EXPECT_EQ(json.at("clock_suspect"), 1);
  for (std::size_t i = 0; i < 5; ++i) {
    const auto& clock = json.at("nodes").at(i).at("clock");
    ASSERT_TRUE(clock.at("rate").is_number()) << clock;
    if (i == 2) {
      EXPECT_TRUE(clock.at("suspect").get<bool>()) << clock;
      EXPECT_NEAR(clock.at("rate").get<double>(), 1.5, 0.05) << clock;
      EXPECT_EQ(clock.at("reason").get<std::string>().rfind("clock runs fast (", 0), 0U) << clock;
    } else {
      EXPECT_FALSE(clock.at("suspect").get<bool>()) << clock;
      EXPECT_NEAR(clock.at("rate").get<double>(), 1.0, 0.05) << clock;
      EXPECT_TRUE(clock.at("reason").is_null()) << clock;
    }
  }

  auto text = cli({"status", "--clock", "1s"});
  ASSERT_EQ(text.code, kOk) << text;
  EXPECT_TRUE(std::regex_search(
      text.out,
      std::regex(addresses()[2] +
                 " +not voting .*\n +not voting: clock runs fast \\(1\\.[45][0-9]x\\).*\n"
                 " +clock: 1\\.[45][0-9]{3}x the rate of this machine's; SUSPECT: clock runs fast "
                 "\\(")))
      << text;
  EXPECT_TRUE(std::regex_search(
      text.out,
      std::regex(addresses()[0] + " +voting .*\n +clock: [01]\\.[0-9]{4}x the rate of this "
                                  "machine's\n")))
      << text;
  EXPECT_NE(text.out.find("clocks checked for 1s against this machine's: 1 suspect"),
            std::string::npos)
      << text;

  // Without --clock, no window (the clock state a short-lived client has is
  // still in the JSON, unmeasured).
  auto plain = cli({"--json", "status"});
  ASSERT_EQ(plain.code, kOk) << plain;
  const auto pj = nlohmann::json::parse(plain.out);
  EXPECT_FALSE(pj.contains("clock_window_ms"));
  EXPECT_EQ(cli({"status", "--clock", "soon"}).code, kUsage);
}

// ---------------------------------------------------------------------------
// run

TEST_F(RedlockCli, RunExitsWithTheCommandsStatus) {
  const auto env_file = scratch_.path() / "env";
  auto r = cli({"run", "cli:run", "--", "sh", "-c",
                "echo \"$REDLOCK_RESOURCE $REDLOCK_TOKEN $REDLOCK_FENCE\" > '" + env_file.string() +
                    "'; exit 7"});
  EXPECT_EQ(r.code, 7) << r;
  EXPECT_TRUE(
      std::regex_match(read_file(env_file), std::regex("cli:run [0-9a-f]{32} [1-9][0-9]*\n")))
      << read_file(env_file);
  EXPECT_EQ(cli({"run", "cli:run", "--", "true"}).code, kOk);
  EXPECT_EQ(cli({"run", "cli:run", "true"}).code, kOk);  // "--" is optional
  auto killed = cli({"run", "cli:run", "--", "sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(killed.code, 128 + SIGKILL) << killed;
  auto missing = cli({"run", "cli:run", "--", "no-such-command-here"});
  EXPECT_EQ(missing.code, 127) << missing;
  EXPECT_NE(missing.err.find("command not found"), std::string::npos) << missing;
  auto not_executable = cli({"run", "cli:run", "--", scratch_.path().string()});
  EXPECT_EQ(not_executable.code, 126) << not_executable;
  // Every run released its lock (the fixture also checks no key is left).
  auto after = cli({"acquire", "cli:run", "--ttl", "10s"});
  EXPECT_EQ(after.code, kOk) << after;
  EXPECT_EQ(cli({"release", "cli:run", token_of(after)}).code, kOk);
}

TEST_F(RedlockCli, RunOnceWhileAnotherRunHoldsTheLock) {
  const auto started = scratch_.path() / "first-started";
  const auto go = scratch_.path() / "go";
  const auto marker = scratch_.path() / "second-ran";
  // The first command holds the lock until the test lets it go.
  auto first = start({"run", "cli:excl", "--ttl", "2s", "--", "sh", "-c",
                      "touch '" + started.string() + "'; while [ ! -e '" + go.string() +
                          "' ]; do sleep 0.02; done"});
  ASSERT_TRUE(appears(started, first));
  auto second = cli({"run", "cli:excl", "--wait", "200ms", "--retry-delay", "50ms", "--", "touch",
                     marker.string()});
  write_file(go, "");
  EXPECT_EQ(second.code, kNotAcquired) << second;
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the second command ran";
  auto done = first.finish();
  EXPECT_EQ(done.code, kOk) << done;
}

TEST_F(RedlockCli, RunWaitsForTheOtherRunThenRuns) {
  const auto log = scratch_.path() / "log";
  const std::string script =
      "echo start >> '" + log.string() + "'; sleep 0.6; echo end >> '" + log.string() + "'";
  auto first = start({"run", "cli:seq", "--ttl", "2s", "--", "sh", "-c", script});
  ASSERT_TRUE(locked_on_majority("cli:seq"));
  auto second = start({"run", "cli:seq", "--ttl", "2s", "--wait", "20s", "--retry-delay", "50ms",
                       "--", "sh", "-c", script});
  auto a = first.finish();
  auto b = second.finish();
  EXPECT_EQ(a.code, kOk) << a;
  EXPECT_EQ(b.code, kOk) << b;
  EXPECT_EQ(read_file(log), "start\nend\nstart\nend\n");
}

TEST_F(RedlockCli, RunKeepsTheLockPastSeveralTtls) {
  // The command runs until the test has made its checks, however long they
  // take; the ttl is scaled so that slow (sanitizer) runs extend in time.
  const auto ttl = scaled(1000ms);
  const auto started = scratch_.path() / "started";
  const auto go = scratch_.path() / "go";
  auto run =
      start({"run", "cli:long", "--ttl", std::to_string(ttl.count()) + "ms", "--", "sh", "-c",
             "touch '" + started.string() + "'; while [ ! -e '" + go.string() +
                 "' ]; do sleep 0.02; done"});
  ASSERT_TRUE(appears(started, run));
  // Each check comes at least one more ttl later: the lock is still held,
  // others are refused.
  for (int k = 0; k < 3; ++k) {
    std::this_thread::sleep_for(ttl);
    auto other = cli({"acquire", "cli:long", "--ttl", "1s"});
    EXPECT_EQ(other.code, kNotAcquired) << "after " << k + 1 << " ttls: " << other;
    if (other.code == kOk) (void)cli({"release", "cli:long", token_of(other)});
  }
  write_file(go, "");
  auto done = run.finish();
  EXPECT_EQ(done.code, kOk) << done;
  EXPECT_TRUE(done.err.empty()) << done;
}

TEST_F(RedlockCli, RunSignalsTheCommandWhenTheLockIsLost) {
  const auto started = scratch_.path() / "started";
  const auto marker = scratch_.path() / "got-term";
  // -v: should this fail, the engine's log says what happened to the lock.
  auto run = start({"-v", "run", "cli:lost", "--ttl", "1s", "--kill-after", "3s", "--", "sh", "-c",
                    "trap 'echo term > \"" + marker.string() + "\"; exit 0' TERM; touch '" +
                        started.string() + "'; while :; do sleep 0.05; done"});
  ASSERT_TRUE(appears(started, run));
  flush_all();  // the keys vanish: the next extension is refused
  auto done = run.finish(scaled(20000ms));
  EXPECT_EQ(done.code, kLockLost) << done;
  EXPECT_NE(done.err.find("lost the lock on \"cli:lost\""), std::string::npos) << done;
  EXPECT_NE(done.err.find("sending SIGTERM"), std::string::npos) << done;
  EXPECT_EQ(read_file(marker), "term\n");
}

TEST_F(RedlockCli, RunKillsACommandThatIgnoresTheSignal) {
  const auto started = scratch_.path() / "started";
  auto run = start({"run", "cli:stubborn", "--ttl", "1s", "--signal", "INT", "--kill-after",
                    "300ms", "--", "sh", "-c",
                    "trap '' INT; touch '" + started.string() + "'; while :; do sleep 0.05; done"});
  ASSERT_TRUE(appears(started, run));
  flush_all();
  auto done = run.finish(scaled(10000ms));
  EXPECT_EQ(done.code, kLockLost) << done;
  EXPECT_NE(done.err.find("sending SIGINT"), std::string::npos) << done;
  EXPECT_NE(done.err.find("sending SIGKILL"), std::string::npos) << done;
}

TEST_F(RedlockCli, RunForwardsSigtermToTheCommand) {
  const auto started = scratch_.path() / "started";
  auto run = start({"run", "cli:fwd", "--ttl", "2s", "--", "sh", "-c",
                    "touch '" + started.string() + "'; exec sleep 30"});
  ASSERT_TRUE(appears(started, run));
  const auto signalled = Clock::now();
  run.signal(SIGTERM);
  auto done = run.finish(scaled(10000ms));
  EXPECT_EQ(done.code, 128 + SIGTERM) << done;  // sleep died of the forwarded SIGTERM
  EXPECT_LT(Clock::now() - signalled, scaled(5000ms)) << done;
  // ... and the lock was released, not left to expire.
  EXPECT_EQ(nodes_with_lock(cluster(), "cli:fwd"), 0U);
}

TEST_F(RedlockCli, RunInterruptedWhileWaiting) {
  auto held = cli({"acquire", "cli:int", "--ttl", "30s"});
  ASSERT_EQ(held.code, kOk) << held;
  const auto marker = scratch_.path() / "ran";
  auto run = start(
      {"run", "cli:int", "--wait", "20s", "--retry-delay", "50ms", "--", "touch", marker.string()});
  // run takes SIGTERM once it blocks it (before it connects); earlier, the
  // signal would simply kill it.
  ASSERT_TRUE(wait_until([&]() -> bool { return blocks(run.pid(), SIGTERM); }, scaled(10000ms)));
  const auto signalled = Clock::now();
  run.signal(SIGTERM);
  auto done = run.finish(scaled(10000ms));
  EXPECT_EQ(done.code, 128 + SIGTERM) << done;
  EXPECT_LT(Clock::now() - signalled, scaled(5000ms)) << done;
  EXPECT_NE(done.err.find("interrupted by SIGTERM"), std::string::npos) << done;
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_EQ(cli({"release", "cli:int", token_of(held)}).code, kOk);
}

// ---------------------------------------------------------------------------
// cluster

TEST_F(RedlockCli, ClusterCommands) {
  const std::string dir = (scratch_.path() / "cluster").string();
  auto up = cli_without_nodes({"cluster", "--dir", dir, "up", "3", "--base-port", "0"});
  // Stop what `up` started whatever happens below.
  struct Down {
    std::string dir;
    ~Down() {
      if (auto c = redlock::cluster::LocalCluster::attach(dir)) (*c)->stop();
    }
  } down{dir};
  ASSERT_EQ(up.code, kOk) << up;
  EXPECT_NE(up.out.find("started 3 nodes"), std::string::npos) << up;
  EXPECT_NE(up.out.find("restart grace"), std::string::npos) << "says when the nodes vote" << up;

  auto status = cli_without_nodes({"--json", "cluster", "--dir", dir, "status"});
  ASSERT_EQ(status.code, kOk) << status;
  auto json = nlohmann::json::parse(status.out);
  ASSERT_EQ(json.size(), 3U) << status;
  for (const auto& n : json) EXPECT_EQ(n.at("state"), "running") << n;

  EXPECT_EQ(cli_without_nodes({"cluster", "--dir", dir, "pause", "2"}).code, kOk);
  status = cli_without_nodes({"cluster", "status", "--json", "--dir", dir});
  EXPECT_EQ(nlohmann::json::parse(status.out).at(1).at("state"), "paused") << status;
  EXPECT_EQ(cli_without_nodes({"cluster", "--dir", dir, "resume", "2"}).code, kOk);
  EXPECT_EQ(cli_without_nodes({"cluster", "--dir", dir, "restart", "3"}).code, kOk);
  auto bad = cli_without_nodes({"cluster", "--dir", dir, "kill", "9"});
  EXPECT_EQ(bad.code, kFailure) << bad;
  EXPECT_NE(bad.err.find("redlock cluster: no node 9"), std::string::npos) << bad;
  auto usage = cli_without_nodes({"cluster", "--dir", dir, "pause"});
  EXPECT_EQ(usage.code, kUsage) << usage;
  auto stopped = cli_without_nodes({"cluster", "--dir", dir, "down"});
  EXPECT_EQ(stopped.code, kOk) << stopped;
  EXPECT_NE(stopped.out.find("stopped 3 nodes"), std::string::npos) << stopped;
}

// A cluster directory is printed escaped: a name that is not UTF-8, or that
// carries a terminal escape, reaches the terminal as text.
TEST_F(RedlockCli, ClusterCommandsPrintAnyDirectoryNameEscaped) {
  const std::string dir = (scratch_.path() / "c\xff\x1b[2Jz").string();
  for (const char* command : {"status", "down"}) {
    auto r = cli_without_nodes({"cluster", "--dir", dir, command});
    EXPECT_NE(r.out.find("no cluster in "), std::string::npos) << r;
    EXPECT_NE(r.out.find("c\\xff\\x1b[2Jz"), std::string::npos) << r;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "a raw escape reached the terminal";
    EXPECT_EQ(r.out.find('\xff'), std::string::npos) << "a raw byte reached the terminal";
  }
  // `up` refuses a directory whose name its state file cannot record; the
  // refusal names it escaped as well, and leaves no directory behind.
  auto up = cli_without_nodes({"cluster", "--dir", dir, "up", "1", "--base-port", "0"});
  EXPECT_EQ(up.code, kFailure) << up;
  EXPECT_EQ(up.err.find('\x1b'), std::string::npos) << up;
  EXPECT_EQ(up.err.find('\xff'), std::string::npos) << up;
  EXPECT_EQ(up.out.find('\x1b'), std::string::npos) << up;
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the refused start left " << dir;
  // So do the missing parents it made on the way.
  const auto parent = scratch_.path() / "new-parent";
  up = cli_without_nodes(
      {"cluster", "--dir", (parent / "c\xff").string(), "up", "1", "--base-port", "0"});
  EXPECT_EQ(up.code, kFailure) << up;
  EXPECT_FALSE(std::filesystem::exists(parent)) << "the refused start left " << parent;
  // Inside a directory that was there before, only what `up` made goes.
  const auto kept = scratch_.path() / "kept";
  std::filesystem::create_directories(kept);
  { std::ofstream(kept / "mine.txt") << "not the launcher's"; }
  const std::string inner = (kept / "c\xff").string();
  std::filesystem::create_directories(inner);
  up = cli_without_nodes({"cluster", "--dir", inner, "up", "2", "--base-port", "0"});
  EXPECT_EQ(up.code, kFailure) << up;
  EXPECT_TRUE(std::filesystem::exists(inner))
      << "a directory the launcher did not make was removed";
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(inner) / "node1")) << up;
  EXPECT_TRUE(std::filesystem::exists(kept / "mine.txt"));
}

// `redlock cluster up --shards 3` starts a Redis Cluster; the CLI takes it
// as one node (cluster://, two seeds), locks on it, and status lists its
// shards.
TEST_F(RedlockCli, ARedisClusterFromTheLauncherIsOneNode) {
  const std::string dir = (scratch_.path() / "rcluster").string();
  struct Down {
    std::string dir;
    ~Down() {
      if (auto c = redlock::cluster::LocalCluster::attach(dir)) (*c)->stop();
    }
  } down{dir};
  // Fixed ports (the bus listens on port + 10000), below the ephemeral range
  // and apart from the range other tests' free ports come from; another
  // range if one is taken.
  std::mt19937 rng(std::random_device{}());
  ToolResult up;
  int base = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    base = 22000 + static_cast<int>(rng() % 2000);
    up = cli_without_nodes(
        {"cluster", "--dir", dir, "up", "--shards", "3", "--base-port", std::to_string(base)});
    if (up.code == kOk) break;
    std::filesystem::remove_all(dir);
  }
  ASSERT_EQ(up.code, kOk) << up;
  const std::string url =
      "cluster://127.0.0.1:" + std::to_string(base) + ",127.0.0.1:" + std::to_string(base + 1);
  EXPECT_NE(up.out.find("lock node: " + url), std::string::npos) << up;

  auto got = cli_without_nodes({"--nodes", url, "acquire", "x", "--json", "--ttl", "10s"});
  ASSERT_EQ(got.code, kOk) << got;
  const auto lock = nlohmann::json::parse(got.out);
  EXPECT_EQ(lock.at("resource"), "x");
  ASSERT_EQ(lock.at("nodes").size(), 1U) << got;
  EXPECT_GT(lock.at("fence").get<std::uint64_t>(), 0U);

  auto status = cli_without_nodes({"--nodes", url, "--json", "status"});
  ASSERT_EQ(status.code, kOk) << status;
  const auto json = nlohmann::json::parse(status.out);
  ASSERT_EQ(json.at("nodes").size(), 1U) << status;
  const auto& shards = json.at("nodes").at(0).at("shards");
  ASSERT_EQ(shards.size(), 3U) << status;
  EXPECT_EQ(shards.at(0).at("slots"), "0-5460") << status;
  auto text = cli_without_nodes({"--nodes", url, "status"});
  EXPECT_EQ(text.code, kOk) << text;
  EXPECT_NE(text.out.find("slots 0-5460"), std::string::npos) << text;

  auto released =
      cli_without_nodes({"--nodes", url, "release", "x", lock.at("token").get<std::string>()});
  EXPECT_EQ(released.code, kOk) << released;
  auto stopped = cli_without_nodes({"cluster", "--dir", dir, "down"});
  EXPECT_EQ(stopped.code, kOk) << stopped;
}

// ---------------------------------------------------------------------------
// Names that do not resolve

// A node whose name does not resolve is a node that is down: four good nodes
// still make a quorum, and the fifth says why it did not vote.
TEST_F(RedlockCli, AnUnresolvableNodeIsADownNode) {
  const auto good = addresses();
  std::string list;
  for (std::size_t i = 0; i < 4; ++i) list += good[i] + ",";
  list += "nosuchhost.invalid:6379";
  const auto tool = [&](std::vector<std::string> args) {
    std::vector<std::string> all = {REDLOCK_CLI_PATH, "--node-timeout",
                                    std::to_string(scaled(100ms).count()) + "ms", "--nodes", list};
    all.insert(all.end(), args.begin(), args.end());
    return run_tool(scratch_.path(), all, isolated_env());
  };
  auto acquired = tool({"--json", "acquire", "cli:names"});
  ASSERT_EQ(acquired.code, kOk) << acquired;
  const auto json = nlohmann::json::parse(acquired.out);
  ASSERT_EQ(json.at("nodes").size(), 5U) << acquired;
  EXPECT_EQ(json.at("nodes").at(4).at("status"), "disconnected") << acquired;
  EXPECT_NE(
      json.at("nodes").at(4).value("detail", "").find("cannot resolve \"nosuchhost.invalid\""),
      std::string::npos)
      << acquired;
  const auto token = json.at("token").get<std::string>();
  // Granted once three said yes; the fourth good node's SET may still be on
  // its way.
  EXPECT_TRUE(wait_until([&]() -> bool { return nodes_holding("cli:names", token) == 4U; },
                         scaled(5000ms)));
  auto released = tool({"release", "cli:names", token});
  EXPECT_EQ(released.code, kOk) << released;
  EXPECT_EQ(nodes_with_lock(cluster(), "cli:names"), 0U);
  auto status = tool({"status"});
  EXPECT_EQ(status.code, kOk) << status;
  EXPECT_NE(status.out.find("4 of 5 nodes vote"), std::string::npos) << status;
}

// ---------------------------------------------------------------------------
// TLS: five servers that speak TLS only and require a client certificate

class RedlockCliTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(scratch_.path().empty()) << "mkdtemp failed";
    auto files = tls_files();
    ASSERT_TRUE(files) << files.error();
    files_ = *files;
    auto servers = TlsOnlyServers::start(5, *files_, /*auth_clients=*/true);
    ASSERT_TRUE(servers) << servers.error();
    servers_ = std::move(*servers);
  }

  ToolResult cli(std::vector<std::string> args, std::vector<std::string> env = {}) {
    std::vector<std::string> all = {REDLOCK_CLI_PATH, "--node-timeout",
                                    std::to_string(scaled(250ms).count()) + "ms", "--nodes",
                                    servers_->node_list()};
    all.insert(all.end(), args.begin(), args.end());
    env.insert(env.end(), {"REDLOCK_NODES", "XDG_CONFIG_HOME", "HOME=" + scratch_.path().string(),
                           "REDLOCK_RESTART_GRACE=0s"});
    return run_tool(scratch_.path(), std::move(all), std::move(env));
  }

  // The client certificate every server asks for.
  std::vector<std::string> client_cert() const {
    return {"--tls-cert", files_->client_cert.string(), "--tls-key", files_->client_key.string()};
  }

  ScratchDir scratch_;
  const TlsFiles* files_ = nullptr;
  std::unique_ptr<TlsOnlyServers> servers_;
};

TEST_F(RedlockCliTls, AcquireStatusAndReleaseOverTls) {
  std::vector<std::string> args = {"--tls-ca", files_->ca_cert.string()};
  auto with_cert = client_cert();
  args.insert(args.end(), with_cert.begin(), with_cert.end());
  args.insert(args.end(), {"acquire", "x", "--json"});
  auto acquired = cli(args);
  ASSERT_EQ(acquired.code, kOk) << acquired;
  const auto json = nlohmann::json::parse(acquired.out);
  ASSERT_EQ(json.at("nodes").size(), 5U) << acquired;
  // A grant is returned once a majority said yes; the others may still be
  // answering ("pending"), but none refused.
  std::size_t ok = 0;
  for (const auto& n : json.at("nodes")) {
    ok += n.at("status") == "ok" ? 1U : 0U;
    EXPECT_TRUE(n.at("status") == "ok" || n.at("status") == "pending") << n;
  }
  EXPECT_GE(ok, 3U) << acquired;
  const auto token = json.at("token").get<std::string>();

  // The same from the environment; status shows each node's TLS.
  const std::vector<std::string> env = {"REDLOCK_TLS_CA=" + files_->ca_cert.string(),
                                        "REDLOCK_TLS_CERT=" + files_->client_cert.string(),
                                        "REDLOCK_TLS_KEY=" + files_->client_key.string()};
  auto status = cli({"status", "--json"}, env);
  ASSERT_EQ(status.code, kOk) << status;
  const auto report = nlohmann::json::parse(status.out);
  ASSERT_EQ(report.at("nodes").size(), 5U) << status;
  for (const auto& n : report.at("nodes")) {
    ASSERT_TRUE(n.at("tls").is_object()) << n;
    EXPECT_EQ(n.at("tls").at("protocol"), "TLSv1.3") << n;
    EXPECT_EQ(n.at("tls").at("peer_subject"), "CN=localhost,O=redlock tests") << n;
    EXPECT_TRUE(n.at("tls").at("peer_not_after").is_string()) << n;
  }
  auto human = cli({"status"}, env);
  ASSERT_EQ(human.code, kOk) << human;
  EXPECT_NE(human.out.find("tls: TLSv1.3"), std::string::npos) << human;
  EXPECT_NE(human.out.find("peer CN=localhost,O=redlock tests, valid until "), std::string::npos)
      << human;

  auto released = cli({"release", "x", token}, env);
  EXPECT_EQ(released.code, kOk) << released;
}

TEST_F(RedlockCliTls, AnotherCaExits3AndEachNodeSaysWhy) {
  std::vector<std::string> args = {"--tls-ca", files_->other_ca_cert.string()};
  auto with_cert = client_cert();
  args.insert(args.end(), with_cert.begin(), with_cert.end());
  args.insert(args.end(), {"acquire", "x", "--json"});
  auto refused = cli(args);
  EXPECT_EQ(refused.code, kUnreachable) << refused;
  const auto json = nlohmann::json::parse(refused.out);
  EXPECT_EQ(json.at("error"), "no quorum") << refused;
  ASSERT_EQ(json.at("nodes").size(), 5U) << refused;
  for (const auto& n : json.at("nodes")) {
    // The server sends its CA along (redis-server does, from
    // tls-ca-cert-file): OpenSSL then finds a self-signed certificate it does
    // not trust; without it, no issuer at all.
    const auto detail = n.value("detail", "");
    EXPECT_TRUE(
        detail.find("certificate verify failed: self-signed certificate in certificate chain") !=
            std::string::npos ||
        detail.find("certificate verify failed: unable to get local issuer certificate") !=
            std::string::npos)
        << n;
  }

  // A server name the certificates are not for.
  auto mismatch = cli({"--tls-ca", files_->ca_cert.string(), "--tls-cert",
                       files_->client_cert.string(), "--tls-key", files_->client_key.string(),
                       "--tls-server-name", "redis.example.org", "acquire", "x"});
  EXPECT_EQ(mismatch.code, kUnreachable) << mismatch;
  EXPECT_NE(mismatch.err.find("hostname mismatch"), std::string::npos) << mismatch;

  // Verification off, explicitly (the environment's way too): the other CA
  // no longer matters.
  auto insecure =
      cli({"--tls-ca", files_->other_ca_cert.string(), "--tls-cert", files_->client_cert.string(),
           "--tls-key", files_->client_key.string(), "acquire", "x", "--json"},
          {"REDLOCK_TLS_INSECURE=1"});
  ASSERT_EQ(insecure.code, kOk) << insecure;
  auto released = cli({"--tls-insecure", "--tls-cert", files_->client_cert.string(), "--tls-key",
                       files_->client_key.string(), "release", "x",
                       nlohmann::json::parse(insecure.out).at("token").get<std::string>()});
  EXPECT_EQ(released.code, kOk) << released;

  // A file that cannot be used is a usage error naming the option.
  auto missing = cli({"--tls-ca", "/nonexistent/ca.pem", "acquire", "x"});
  EXPECT_EQ(missing.code, kUsage) << missing;
  EXPECT_NE(missing.err.find("tls.ca_file \"/nonexistent/ca.pem\""), std::string::npos) << missing;
}

}  // namespace
}  // namespace redlock::testing
