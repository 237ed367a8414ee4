// chatroomd end to end: 5 lock nodes (LocalCluster), 4 chatroomd replicas on
// one store, 200 concurrent creates of one room spread over the replicas.
// With the lock the room is created exactly once (also with 2 of the 5 lock
// nodes frozen); without it (--unsafe-no-lock) the checker must see the race.
// Run on SQLite and on PostgreSQL. Plus the HTTP API's answers, the lock wait
// timeout and the graceful shutdown, on one replica.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.hpp"
#include "lock_keys.hpp"
#include "postgres_server.hpp"
#include "race_kit.hpp"
#include "redlock/redlock.hpp"
#include "redlock/tools/text.hpp"
#include "store.hpp"
#include "tls_servers.hpp"
#include "tool_process.hpp"

namespace redlock::testing {
namespace {

using namespace std::chrono_literals;
using redlock::chatroom::RoomAudit;
using redlock::chatroom::race::RaceResult;
using redlock::chatroom::race::ReplicaOptions;
using redlock::chatroom::race::Replicas;
using redlock::cluster::scaled;

constexpr std::size_t kReplicas = 4;
constexpr std::size_t kRequests = 200;
constexpr std::size_t kConcurrency = 50;

enum class StoreKind { kSqlite, kPostgres };

// Every replica exits 0 on SIGTERM; the log of one that does not (a
// sanitizer's report, say) goes into the failure message.
void expect_clean_stop(Replicas& replicas) {
  const auto codes = replicas.stop();
  for (std::size_t i = 0; i < codes.size(); ++i) {
    EXPECT_EQ(codes[i], 0) << "replica " << i + 1 << " exited " << codes[i] << "; its log:\n"
                           << replicas.log_tail(i);
  }
}

std::string describe(const RaceResult& r, const RoomAudit& a, double conflicts) {
  return "requests=" + std::to_string(r.requests) + " 201=" + std::to_string(r.created) +
         " 200=" + std::to_string(r.existed) + " 503=" + std::to_string(r.unavailable) +
         " other=" + std::to_string(r.other) + " no-answer=" + std::to_string(r.failed) +
         " rooms=" + std::to_string(a.rooms) +
         " created-messages=" + std::to_string(a.created_messages) +
         " outbox-events=" + std::to_string(a.created_events) +
         " unique-conflicts=" + std::to_string(static_cast<long long>(conflicts)) +
         " time=" + std::to_string(r.elapsed.count()) + "ms";
}

class ChatroomTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_FALSE(scratch_.path().empty()) << "mkdtemp failed";
  }

  void open_store(const std::string& url) {
    store_url_ = url;
    auto store = redlock::chatroom::open_store(url, 2);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = std::move(*store);
  }

  ReplicaOptions replica_options(std::vector<std::string> extra = {}) const {
    ReplicaOptions o;
    o.chatroomd = CHATROOMD_PATH;
    o.nodes = addresses();
    o.store = store_url_;
    o.log_dir = scratch_.path() / "logs";
    o.start_timeout = scaled(15000ms);
    // Each test starts its lock nodes empty, so they may vote at once.
    o.extra_args = {"--lock-restart-grace", "0s",   "--lock-ttl",        "5s",
                    "--lock-wait",          "10s",  "--retry-delay",     "50ms",
                    "--retry-jitter",       "25ms", "--create-delay-ms", "20"};
    o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
    return o;
  }

  struct Round {
    RaceResult race;
    RoomAudit audit;
    double conflicts = 0;
    redlock::chatroom::race::Verdict verdict;
  };

  Round race(Replicas& replicas, const std::string& name, const std::string& label) {
    Round round;
    const char* metric = "chatroom_unique_conflicts_total";
    auto before = redlock::chatroom::race::scrape_sum(replicas.addresses(), metric);
    EXPECT_TRUE(before.has_value()) << before.error();
    round.race = redlock::chatroom::race::run_race(
        {replicas.addresses(), name, kRequests, kConcurrency, scaled(60000ms)});
    auto after = redlock::chatroom::race::scrape_sum(replicas.addresses(), metric);
    EXPECT_TRUE(after.has_value()) << after.error();
    round.conflicts = after.value_or(0) - before.value_or(0);
    auto audit = store_->audit(name);
    EXPECT_TRUE(audit.has_value()) << audit.error().message;
    round.audit = audit.value_or(RoomAudit{});
    round.verdict = redlock::chatroom::race::check(round.race, round.audit, round.conflicts);
    std::cout << "[ race    ] " << store_->kind() << ", " << label << ": "
              << describe(round.race, round.audit, round.conflicts) << std::endl;
    return round;
  }

  static std::string problems(const Round& round) {
    std::string out;
    for (const auto& p : round.verdict.problems) out += "\n  - " + p;
    for (const auto& s : round.race.samples) out += "\n  sample: " + s;
    return out;
  }

  // The whole scenario on the current store.
  void race_three_ways() {
    {
      auto replicas = Replicas::start(kReplicas, replica_options());
      ASSERT_TRUE(replicas.has_value()) << replicas.error();

      const auto locked = race(**replicas, "lobby", "with the lock");
      EXPECT_TRUE(locked.verdict.clean) << problems(locked);
      EXPECT_EQ(locked.race.created, 1U);
      EXPECT_EQ(locked.race.created + locked.race.existed + locked.race.unavailable, kRequests);

      // Two of five lock nodes frozen: a majority (3) still grants.
      ASSERT_TRUE(cluster().pause(1).has_value());
      ASSERT_TRUE(cluster().pause(3).has_value());
      const auto degraded = race(**replicas, "lobby-2-frozen", "2 of 5 lock nodes paused");
      // Resumed while the replicas still run: the frozen nodes first work
      // through the commands queued for them (SETs, then their releases, on
      // each connection in order). A replica that exited before that would
      // reset its connections and could leave a SET without its release,
      // i.e. a key until its ttl.
      ASSERT_TRUE(cluster().resume(1).has_value());
      ASSERT_TRUE(cluster().resume(3).has_value());
      std::this_thread::sleep_for(scaled(300ms));
      EXPECT_TRUE(wait_until([&]() -> bool { return nodes_with_lock(cluster(), "chatroom:") == 0; },
                             scaled(3000ms)))
          << "lock keys left after resuming the frozen nodes";
      EXPECT_TRUE(degraded.verdict.clean) << problems(degraded);
      EXPECT_EQ(degraded.race.created, 1U);
      EXPECT_EQ(degraded.race.created + degraded.race.existed + degraded.race.unavailable,
                kRequests);

      // Graceful shutdown: every replica exits 0 on SIGTERM.
      expect_clean_stop(**replicas);
    }
    {
      // A longer pause between look-up and insert widens the window the lock
      // normally closes, so that the race shows on every run.
      auto options = replica_options({"--unsafe-no-lock", "--create-delay-ms", "100"});
      options.nodes.clear();
      auto replicas = Replicas::start(kReplicas, options);
      ASSERT_TRUE(replicas.has_value()) << replicas.error();
      const auto unsafe = race(**replicas, "lobby-no-lock", "NO lock (--unsafe-no-lock)");
      // The checker must see the damage: requests got past the look-up and
      // reached the insert, stopped only by the store's UNIQUE constraint.
      EXPECT_FALSE(unsafe.verdict.clean) << "the race without the lock went unnoticed";
      EXPECT_GT(unsafe.conflicts, 0) << problems(unsafe);
      // ... which still holds: one room, one first message, one event.
      EXPECT_EQ(unsafe.audit.rooms, 1);
      EXPECT_EQ(unsafe.audit.created_messages, 1);
      EXPECT_EQ(unsafe.audit.created_events, 1);
      EXPECT_EQ(unsafe.race.created, 1U);
      expect_clean_stop(**replicas);
    }
  }

  ScratchDir scratch_;
  std::string store_url_;
  std::unique_ptr<redlock::chatroom::Store> store_;
};

TEST_F(ChatroomTest, RaceOnSqlite) {
  open_store("sqlite:" + (scratch_.path() / "chatroom.db").string());
  race_three_ways();
}

TEST_F(ChatroomTest, RaceOnPostgresql) {
  const auto bindir = PostgresServer::find_bindir();
  if (!bindir) GTEST_SKIP() << "PostgreSQL is not installed (/usr/lib/postgresql/*/bin)";
  auto server = PostgresServer::start(*bindir);
  ASSERT_TRUE(server.has_value()) << server.error();
  open_store((*server)->url());
  race_three_ways();
  store_.reset();
}

// ---------------------------------------------------------------------------
// One replica: the API's answers

class ChatroomApi : public ChatroomTest {
 protected:
  void SetUp() override {
    ChatroomTest::SetUp();
    if (HasFatalFailure()) return;
    open_store("sqlite:" + (scratch_.path() / "api.db").string());
  }

  std::unique_ptr<httplib::Client> client(const Replicas& replicas) {
    const auto& address = replicas.addresses().front();
    const auto colon = address.rfind(':');
    auto c = std::make_unique<httplib::Client>(address.substr(0, colon),
                                               std::stoi(address.substr(colon + 1)));
    c->set_read_timeout(scaled(30000ms));
    return c;
  }
};

nlohmann::json body_of(const httplib::Result& res) {
  return res ? nlohmann::json::parse(res->body, nullptr, false) : nlohmann::json();
}

TEST_F(ChatroomApi, AnswersEachRoute) {
  auto replicas = Replicas::start(1, replica_options());
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  const auto post = [&](const std::string& path, const std::string& body) {
    return http->Post(path, body, "application/json");
  };

  auto created = post("/chatrooms", R"({"name": "general"})");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(body_of(created).at("name"), "general");
  auto existed = post("/chatrooms", R"({"name": "general"})");
  ASSERT_TRUE(existed);
  EXPECT_EQ(existed->status, 200) << existed->body;
  EXPECT_EQ(body_of(existed).at("id"), body_of(created).at("id"));

  const std::string too_long(65, 'x');
  for (const std::string& bad :
       {std::string(R"({"name": ""})"), R"({"name": ")" + too_long + R"("})",
        std::string(R"({"name": "a\u0007b"})"), std::string(R"({"name": "a\u0085b"})"),
        std::string(R"({"name": "a/b"})"), std::string(R"({"name": 7})"), std::string("{}"),
        std::string("[]"), std::string("{\"name\":"), std::string("")}) {
    auto res = post("/chatrooms", bad);
    ASSERT_TRUE(res) << bad;
    EXPECT_EQ(res->status, 422) << bad << " -> " << res->body;
    EXPECT_TRUE(body_of(res).at("detail").is_array()) << res->body;
  }
  auto exactly_64 = post("/chatrooms", R"({"name": ")" + std::string(64, 'y') + R"("})");
  ASSERT_TRUE(exactly_64);
  EXPECT_EQ(exactly_64->status, 201);
  auto unicode = post("/chatrooms", R"({"name": "café ☕"})");
  ASSERT_TRUE(unicode);
  EXPECT_EQ(unicode->status, 201) << unicode->body;

  // Posting to a room that does not exist creates it first.
  auto message = post("/chatrooms/random/messages", R"({"author": "ann", "text": "hi\nall"})");
  ASSERT_TRUE(message);
  EXPECT_EQ(message->status, 201) << message->body;
  EXPECT_EQ(body_of(message).at("text"), "hi\nall");
  auto bad_message = post("/chatrooms/random/messages", R"({"author": "", "text": "x"})");
  ASSERT_TRUE(bad_message);
  EXPECT_EQ(bad_message->status, 422);

  auto room = http->Get("/chatrooms/random");
  ASSERT_TRUE(room);
  EXPECT_EQ(room->status, 200);
  auto messages = http->Get("/chatrooms/random/messages");
  ASSERT_TRUE(messages);
  ASSERT_EQ(messages->status, 200);
  const auto list = body_of(messages).at("messages");
  ASSERT_EQ(list.size(), 2U) << messages->body;
  EXPECT_EQ(list.at(0).at("kind"), "system");
  EXPECT_EQ(list.at(0).at("text"), "room created");
  EXPECT_EQ(list.at(1).at("author"), "ann");

  for (const char* path : {"/chatrooms/nope", "/chatrooms/nope/messages", "/elsewhere"}) {
    auto res = http->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_EQ(body_of(res).value("detail", ""), "Not found") << path << ": " << res->body;
  }
  auto health = http->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  auto metrics = http->Get("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);
  for (const char* line :
       {"chatroom_http_requests_total{route=\"POST /chatrooms\",status=\"201\"} 3",
        "chatroom_http_requests_total{route=\"POST /chatrooms\",status=\"422\"} 10",
        "chatroom_http_requests_total{route=\"other\",status=\"404\"} 1",
        "chatroom_http_request_duration_seconds_bucket{route=\"POST /chatrooms\",le=\"+Inf\"}",
        "chatroom_unique_conflicts_total 0", "chatroom_rooms_created_total 4",
        "redlock_acquires_total"}) {
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line << "\n" << metrics->body;
  }
  expect_clean_stop(**replicas);
}

// Whatever the body, the answer is a 422 listing what is wrong (or a 413
// for a body too large), never a 500: not even for bytes that are not UTF-8,
// which used to reach the JSON dump of the error message and throw.
TEST_F(ChatroomApi, MalformedRequestsAre422NeverA500) {
  auto replicas = Replicas::start(1, replica_options());
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  struct Case {
    std::string path;
    std::string body;
    std::string type;  // of the first problem
  };
  const std::vector<Case> cases = {
      {"/chatrooms", "{\"name\":\"\xff\"}", "json_invalid"},
      {"/chatrooms", "{\"name\":\"ok\xc0\xaf\"}", "json_invalid"},
      {"/chatrooms", "\xff\xfe", "json_invalid"},
      {"/chatrooms", "not json", "json_invalid"},
      {"/chatrooms", "{\"name\": \"\\ud800\"}", "json_invalid"},
      {"/chatrooms", "{\"name\": 1e999}", "json_invalid"},
      {"/chatrooms", "[\"general\"]", "model_attributes_type"},
      {"/chatrooms", "null", "model_attributes_type"},
      {"/chatrooms", "{\"nom\": \"general\"}", "missing"},
      {"/chatrooms", "{\"name\": [\"general\"]}", "string_type"},
      {"/chatrooms", "{\"name\": true}", "string_type"},
      {"/chatrooms", "{\"name\": \"\"}", "string_too_short"},
      {"/chatrooms", "{\"name\": \"" + std::string(1000, 'n') + "\"}", "string_too_long"},
      {"/chatrooms", "{\"name\": \"a\\u0000b\"}", "value_error"},
      {"/chatrooms", "{\"name\": \"a\\nb\"}", "value_error"},
      {"/chatrooms/general/messages", "{\"author\":\"ann\",\"text\":\"\xff\"}", "json_invalid"},
      {"/chatrooms/general/messages", "{\"author\":\"ann\"}", "missing"},
      {"/chatrooms/general/messages", "{\"author\":\"ann\",\"text\":\"\"}", "string_too_short"},
      {"/chatrooms/general/messages",
       "{\"author\":\"ann\",\"text\":\"" + std::string(4097, 't') + "\"}", "string_too_long"},
      {"/chatrooms/general/messages", "{\"author\":\"a\\u001b\",\"text\":\"x\"}", "value_error"},
      {"/chatrooms/%FF/messages", "{\"author\":\"ann\",\"text\":\"x\"}", "string_unicode"},
  };
  for (const auto& c : cases) {
    auto res = http->Post(c.path, c.body, "application/json");
    ASSERT_TRUE(res) << c.path << " " << c.body;
    EXPECT_EQ(res->status, 422) << c.path << " " << c.body << " -> " << res->body;
    EXPECT_TRUE(redlock::tools::is_valid_utf8(res->body)) << res->body;
    const auto detail = body_of(res).value("detail", nlohmann::json());
    ASSERT_TRUE(detail.is_array() && !detail.empty()) << res->body;
    EXPECT_EQ(detail.at(0).at("type"), c.type) << c.body << " -> " << res->body;
    EXPECT_TRUE(detail.at(0).at("loc").is_array()) << res->body;
    EXPECT_TRUE(detail.at(0).at("msg").is_string()) << res->body;
  }
  for (const char* path :
       {"/chatrooms/%FF", "/chatrooms/%FF/messages", "/chatrooms/general/messages?limit=0",
        "/chatrooms/general/messages?limit=x"}) {
    auto res = http->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 422) << path << " -> " << res->body;
  }
  auto huge = http->Post("/chatrooms", std::string(100 * 1024, ' '), "application/json");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413) << huge->body;
  EXPECT_TRUE(body_of(huge).contains("detail")) << huge->body;
  // Nothing was created by any of it, and the service still works.
  auto audit = store_->audit("general");
  ASSERT_TRUE(audit.has_value());
  EXPECT_EQ(audit->rooms, 0);
  auto created = http->Post("/chatrooms", R"({"name": "general"})", "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  auto metrics = http->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->body.find("status=\"500\""), std::string::npos) << metrics->body;
  expect_clean_stop(**replicas);
}

// A ttl above the lock client's max_ttl used to start, then answer every
// create 500 "ttl ... exceeds max_ttl"; now it does not start, and
// --lock-max-ttl raises the bound.
TEST_F(ChatroomApi, LockTtlAboveTheMaxTtlDoesNotStart) {
  std::string nodes;
  for (const auto& a : addresses()) nodes += (nodes.empty() ? "" : ",") + a;
  const std::string store = "sqlite:" + (scratch_.path() / "ttl.db").string();
  auto refused = run_tool(scratch_.path(), {CHATROOMD_PATH, "--listen", "127.0.0.1:0", "--nodes",
                                            nodes, "--store", store, "--lock-ttl", "5m"});
  EXPECT_EQ(refused.code, 2) << refused;
  EXPECT_NE(refused.err.find("--lock-ttl 5m is longer than --lock-max-ttl 1m"), std::string::npos)
      << refused;
  auto too_short = run_tool(scratch_.path(), {CHATROOMD_PATH, "--listen", "127.0.0.1:0", "--nodes",
                                              nodes, "--store", store, "--lock-ttl", "5ms"});
  EXPECT_EQ(too_short.code, 2) << too_short;
  EXPECT_NE(too_short.err.find("--lock-ttl 5ms is too short"), std::string::npos) << too_short;

  auto replicas =
      Replicas::start(1, replica_options({"--lock-ttl", "5m", "--lock-max-ttl", "10m"}));
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  auto created = http->Post("/chatrooms", R"({"name": "long"})", "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  expect_clean_stop(**replicas);
}

// A majority of lock nodes down is "Lock service unavailable", not the
// "Lock wait timeout" of a busy lock; both say when to retry.
TEST_F(ChatroomApi, LockServiceUnavailableIsNotALockWaitTimeout) {
  auto replicas = Replicas::start(1, replica_options({"--lock-wait", "300ms"}));
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  for (std::size_t i : {0U, 1U, 2U}) ASSERT_TRUE(cluster().kill(i).has_value());
  auto res = http->Post("/chatrooms", R"({"name": "down"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(body_of(res), (nlohmann::json{{"detail", "Lock service unavailable"}}));
  EXPECT_EQ(res->get_header_value("Retry-After"), "5");
  auto message =
      http->Post("/chatrooms/down/messages", R"({"author": "a", "text": "b"})", "application/json");
  ASSERT_TRUE(message);
  EXPECT_EQ(message->status, 503) << message->body;
  EXPECT_EQ(body_of(message).value("detail", ""), "Lock service unavailable") << message->body;
  auto metrics = http->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("chatroom_lock_unavailable_total 2"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("chatroom_lock_wait_timeouts_total 0"), std::string::npos)
      << metrics->body;
  expect_clean_stop(**replicas);
}

// /healthz is liveness; /readyz says whether creates can work: it follows
// whether a majority of the lock nodes votes. Lock nodes younger than the
// restart grace do not vote: ready is false, and a create is answered 503
// "Lock service unavailable" at once. It used to be healthy, and every
// create a 503 after the whole lock wait.
TEST_F(ChatroomApi, ReadyzFollowsTheLockQuorum) {
  auto replicas =
      Replicas::start(1, replica_options({"--lock-restart-grace", "60s", "--lock-wait", "10s"}));
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  auto health = http->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
  EXPECT_EQ(body_of(health).value("lock_quorum", true), false) << health->body;
  auto ready = http->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_EQ(body_of(ready).value("lock", ""), "no quorum") << ready->body;
  EXPECT_EQ(body_of(ready).at("lock_nodes").at("voting"), 0) << ready->body;
  EXPECT_FALSE(ready->get_header_value("Retry-After").empty());
  const auto start = std::chrono::steady_clock::now();
  auto res = http->Post("/chatrooms", R"({"name": "young"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(body_of(res).value("detail", ""), "Lock service unavailable") << res->body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, scaled(5000ms))
      << "waited for the lock instead of answering at once";
  auto metrics = http->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("redlock_quorum_available 0"), std::string::npos) << metrics->body;
  expect_clean_stop(**replicas);
}

// Three of five lock nodes stopped (SIGSTOP): they stop counting as
// connected, the replica is not ready, and it is again once they resume.
TEST_F(ChatroomApi, StalledLockNodesMakeTheReplicaUnready) {
  auto replicas = Replicas::start(1, replica_options({"--lock-wait", "500ms"}));
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  const auto status_of = [&](const char* path) {
    auto res = http->Get(path);
    return res ? res->status : -1;
  };
  ASSERT_EQ(status_of("/readyz"), 200);
  for (std::size_t i : {0U, 1U, 2U}) ASSERT_TRUE(cluster().pause(i).has_value());
  EXPECT_TRUE(wait_until([&]() -> bool { return status_of("/readyz") == 503; }, scaled(10000ms)));
  auto metrics = http->Get("/metrics");
  ASSERT_TRUE(metrics);
  for (std::size_t i = 0; i < 5; ++i) {
    const std::string line =
        "redlock_node_connected{node=\"" + addresses()[i] + "\"} " + (i < 3 ? "0" : "1");
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line << "\n" << metrics->body;
  }
  EXPECT_EQ(status_of("/healthz"), 200);
  auto res = http->Post("/chatrooms", R"({"name": "stalled"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(body_of(res).value("detail", ""), "Lock service unavailable") << res->body;
  for (std::size_t i : {0U, 1U, 2U}) ASSERT_TRUE(cluster().resume(i).has_value());
  EXPECT_TRUE(wait_until([&]() -> bool { return status_of("/readyz") == 200; }, scaled(10000ms)));
  auto created = http->Post("/chatrooms", R"({"name": "stalled"})", "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  expect_clean_stop(**replicas);
}

TEST_F(ChatroomApi, LockWaitTimeoutIs503) {
  auto replicas = Replicas::start(1, replica_options({"--lock-wait", "300ms"}));
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  // Someone else holds the room's lock.
  ClientOptions options;
  options.nodes = addresses();
  options.restart_grace = 0ms;  // the test's nodes were just started empty
  auto holder = Client::connect(options);
  ASSERT_TRUE(holder.has_value()) << holder.error();
  auto lock = (*holder)->acquire("chatroom:busy", 30s);
  ASSERT_TRUE(lock.has_value()) << lock.error();

  auto http = client(**replicas);
  auto res = http->Post("/chatrooms", R"({"name": "busy"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(body_of(res), (nlohmann::json{{"detail", "Lock wait timeout"}}));
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  auto message =
      http->Post("/chatrooms/busy/messages", R"({"author": "a", "text": "b"})", "application/json");
  ASSERT_TRUE(message);
  EXPECT_EQ(message->status, 503) << message->body;
  auto audit = store_->audit("busy");
  ASSERT_TRUE(audit.has_value());
  EXPECT_EQ(audit->rooms, 0);

  (void)(*holder)->release(*lock);
  res = http->Post("/chatrooms", R"({"name": "busy"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201) << res->body;
  auto metrics = http->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("chatroom_lock_wait_timeouts_total 2"), std::string::npos)
      << metrics->body;
}

TEST_F(ChatroomApi, SigtermFinishesRequestsInFlight) {
  // The create holds the lock this long: SIGTERM comes well within it, as
  // long as the test sees the lock key in time (scaled, like that wait).
  const auto delay = scaled(1500ms);
  auto replicas =
      Replicas::start(1, replica_options({"--create-delay-ms", std::to_string(delay.count())}));
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  int status = 0;
  std::string answer;
  std::thread request([&] {
    auto res = http->Post("/chatrooms", R"({"name": "slow"})", "application/json");
    status = res ? res->status : -1;
    answer = res ? res->body : httplib::to_string(res.error());
  });
  // The request is inside the create path (holding the lock) once the lock
  // key exists.
  EXPECT_TRUE(wait_until([&]() -> bool { return nodes_with_lock(cluster(), "chatroom:slow") >= 3; },
                         scaled(5000ms)));
  const auto codes = (*replicas)->stop();
  request.join();
  ASSERT_EQ(codes.size(), 1U);
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(status, 201) << answer;
  auto audit = store_->audit("slow");
  ASSERT_TRUE(audit.has_value());
  EXPECT_EQ(audit->rooms, 1);
}

// A lock node whose name does not resolve is a node that is down: the
// replica starts, is ready with the four others, and creates rooms.
TEST_F(ChatroomApi, AnUnresolvableLockNodeIsADownNode) {
  auto options = replica_options();
  options.nodes.resize(4);
  options.nodes.push_back("nosuchhost.invalid:6379");
  auto replicas = Replicas::start(1, options);
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  ASSERT_TRUE(wait_until(
      [&]() -> bool {
        auto ready = http->Get("/readyz");
        return ready && ready->status == 200;
      },
      scaled(5000ms)));
  auto ready = http->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(body_of(ready).at("lock_nodes").at("voting"), 4) << ready->body;
  auto created = http->Post("/chatrooms", R"({"name": "unresolved"})", "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  expect_clean_stop(**replicas);
  EXPECT_EQ(nodes_with_lock(cluster(), "chatroom:"), 0U);
}

// TLS lock nodes (TLS only, mutual TLS): the --lock-tls-* flags and their
// environment variables reach the lock client.
TEST_F(ChatroomApi, LockNodesOverTls) {
  auto files = tls_files();
  ASSERT_TRUE(files) << files.error();
  auto servers = TlsOnlyServers::start(5, **files, /*auth_clients=*/true);
  ASSERT_TRUE(servers) << servers.error();
  auto options = replica_options({"--lock-tls-ca", (*files)->ca_cert.string(), "--lock-tls-cert",
                                  (*files)->client_cert.string(), "--lock-tls-key",
                                  (*files)->client_key.string()});
  options.nodes.clear();
  for (int port : (*servers)->ports()) {
    options.nodes.push_back("rediss://localhost:" + std::to_string(port));
  }
  auto replicas = Replicas::start(1, options);
  ASSERT_TRUE(replicas.has_value()) << replicas.error();
  auto http = client(**replicas);
  ASSERT_TRUE(wait_until(
      [&]() -> bool {
        auto ready = http->Get("/readyz");
        return ready && ready->status == 200;
      },
      scaled(5000ms)));
  auto created = http->Post("/chatrooms", R"({"name": "encrypted"})", "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  expect_clean_stop(**replicas);
}

}  // namespace
}  // namespace redlock::testing
