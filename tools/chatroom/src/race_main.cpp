// chatroom-race: the main job. Starts a local 5-node lock cluster and
// chatroomd replicas sharing one SQLite file (all in a temporary directory),
// fires a burst of concurrent "create room X" requests spread over the
// replicas, and prints what happened:
//
//   1. with the lock;
//   2. with 2 of the 5 lock nodes frozen (SIGSTOP): a majority still grants;
//   3. without the lock (chatroomd --unsafe-no-lock): requests race past the
//      look-up, and only the store's UNIQUE constraint stops the duplicates.
//
// Everything it started is stopped on the way out, on success or failure.
// Exit status: 0 when runs 1 and 2 created the room exactly once and the
// checker caught the race in run 3; 1 otherwise; 2 bad usage.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "race_kit.hpp"
#include "redlock/cluster/local_cluster.hpp"
#include "store.hpp"

namespace {

namespace fs = std::filesystem;
using redlock::chatroom::race::RaceResult;
using redlock::chatroom::race::ReplicaOptions;
using redlock::chatroom::race::Replicas;
using redlock::chatroom::race::Verdict;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Settings {
  std::size_t replicas = 3;
  std::size_t requests = 100;
  std::size_t concurrency = 30;
  int create_delay_ms = 20;
  std::string chatroomd;
  bool keep = false;
};

struct Run {
  std::string title;
  RaceResult race;
  redlock::chatroom::RoomAudit audit;
  double conflicts = 0;
  Verdict verdict;
};

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor
// unless kept.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/chatroom-race.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!keep_) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  fs::path path_;
  bool keep_ = false;
};

// One race on `name` over `replicas`; the conflicts counted are those this
// race added.
tl::expected<Run, std::string> race(const std::string& title, const std::string& name,
                                    Replicas& replicas, redlock::chatroom::Store& store,
                                    const Settings& s) {
  const char* metric = "chatroom_unique_conflicts_total";
  auto before = redlock::chatroom::race::scrape_sum(replicas.addresses(), metric);
  if (!before) return tl::make_unexpected(before.error());
  Run run;
  run.title = title;
  run.race = redlock::chatroom::race::run_race(
      {replicas.addresses(), name, s.requests, s.concurrency, std::chrono::milliseconds(30000)});
  auto after = redlock::chatroom::race::scrape_sum(replicas.addresses(), metric);
  if (!after) return tl::make_unexpected(after.error());
  run.conflicts = *after - *before;
  auto audit = store.audit(name);
  if (!audit) return tl::make_unexpected("audit: " + audit.error().message);
  run.audit = *audit;
  run.verdict = redlock::chatroom::race::check(run.race, run.audit, run.conflicts);
  return run;
}

void print_table(const std::vector<Run>& runs) {
  say("");
  std::printf("%-34s %8s %5s %5s %5s %6s %6s %9s %7s %10s %8s\n", "run", "requests", "201", "200",
              "503", "other", "rooms", "created", "outbox", "conflicts", "time");
  std::printf("%-34s %8s %5s %5s %5s %6s %6s %9s %7s %10s %8s\n", "", "", "", "", "", "", "",
              "messages", "events", "(UNIQUE)", "");
  for (const auto& r : runs) {
    std::printf("%-34s %8zu %5zu %5zu %5zu %6zu %6lld %9lld %7lld %10lld %6.2f s\n",
                r.title.c_str(), r.race.requests, r.race.created, r.race.existed,
                r.race.unavailable, r.race.other + r.race.failed,
                static_cast<long long>(r.audit.rooms),
                static_cast<long long>(r.audit.created_messages),
                static_cast<long long>(r.audit.created_events), static_cast<long long>(r.conflicts),
                static_cast<double>(r.race.elapsed.count()) / 1000.0);
  }
  std::fflush(stdout);
}

int run_all(const Settings& s) {
  TempDir dir;
  if (s.keep) dir.keep();
  say("== chatroom race: " + std::to_string(s.requests) +
      " concurrent POST /chatrooms for one "
      "name, over " +
      std::to_string(s.replicas) + " chatroomd replicas");
  say("   work directory " + dir.path().string());

  auto cluster = redlock::cluster::LocalCluster::start(5);
  if (!cluster) {
    say("cannot start the lock nodes: " + cluster.error());
    return kExitFailure;
  }
  say("   lock nodes: 5 redis-server on " + (*cluster)->address(0) + " ... " +
      (*cluster)->address(4));
  const std::string db = (dir.path() / "chatroom.db").string();
  ReplicaOptions options;
  options.chatroomd = s.chatroomd;
  options.nodes = (*cluster)->addresses();
  options.store = "sqlite:" + db;
  options.log_dir = dir.path() / "logs";
  // The race starts its lock nodes empty: no lock predates them, so they may
  // vote at once (restart-aware voting would otherwise keep them out for
  // max_ttl).
  options.extra_args = {
      "--lock-restart-grace", "0s",  "--create-delay-ms", std::to_string(s.create_delay_ms),
      "--lock-wait",          "5s",  "--retry-delay",     "50ms",
      "--retry-jitter",       "25ms"};
  say("   store: SQLite (WAL) " + db + ", shared by every replica");
  say("   each create pauses " + std::to_string(s.create_delay_ms) +
      " ms between look-up and insert (--create-delay-ms), like a real service's work");

  auto store = redlock::chatroom::open_store(options.store, 1);
  if (!store) {
    say("cannot open the store: " + store.error().message);
    return kExitFailure;
  }
  std::vector<Run> runs;
  {
    auto replicas = Replicas::start(s.replicas, options);
    if (!replicas) {
      say("cannot start chatroomd: " + replicas.error());
      return kExitFailure;
    }
    auto first = race("1. with the lock", "lobby", **replicas, **store, s);
    if (!first) {
      say(first.error());
      return kExitFailure;
    }
    runs.push_back(std::move(*first));
    for (std::size_t i : {3U, 4U}) {
      if (auto paused = (*cluster)->pause(i); !paused) {
        say("cannot pause a lock node: " + paused.error());
        return kExitFailure;
      }
    }
    auto second = race("2. lock, 2 of 5 nodes frozen", "lobby-2-frozen", **replicas, **store, s);
    for (std::size_t i : {3U, 4U}) (void)(*cluster)->resume(i);
    if (!second) {
      say(second.error());
      return kExitFailure;
    }
    runs.push_back(std::move(*second));
    (*replicas)->stop();
  }
  {
    ReplicaOptions unsafe = options;
    unsafe.nodes.clear();
    unsafe.extra_args.push_back("--unsafe-no-lock");
    auto replicas = Replicas::start(s.replicas, unsafe);
    if (!replicas) {
      say("cannot start chatroomd: " + replicas.error());
      return kExitFailure;
    }
    auto third = race("3. NO lock (--unsafe-no-lock)", "lobby-no-lock", **replicas, **store, s);
    if (!third) {
      say(third.error());
      return kExitFailure;
    }
    runs.push_back(std::move(*third));
    (*replicas)->stop();
  }
  (*cluster)->stop();

  print_table(runs);
  say("");
  bool ok = true;
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const auto& r = runs[k];
    const bool expect_clean = k < 2;
    if (r.verdict.clean) {
      say(r.title + ": created exactly once; no request got past the look-up to a second insert");
    } else {
      std::string problems;
      for (const auto& p : r.verdict.problems) problems += "\n     - " + p;
      say(r.title + (expect_clean ? ": FAILED" : ": the race shows, as expected without the lock") +
          problems);
    }
    if (expect_clean != r.verdict.clean) ok = false;
    for (const auto& sample : r.race.samples) say("     sample answer: " + sample);
  }
  say("");
  say(ok ? "OK: the lock made the create path run once per room; without it, only the store's "
           "UNIQUE constraint stood between the replicas and duplicate rooms"
         : "FAILED: see above");
  if (!ok) {
    dir.keep();
    say("logs kept in " + (dir.path() / "logs").string());
  }
  return ok ? kExitOk : kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The chatroom create race: chatroomd replicas on a local 5-node lock cluster"};
  Settings s;
  app.add_option("--replicas", s.replicas, "chatroomd replicas")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  app.add_option("--requests", s.requests, "Concurrent create requests per run")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("--concurrency", s.concurrency, "Client threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--create-delay-ms", s.create_delay_ms, "chatroomd --create-delay-ms")
      ->capture_default_str()
      ->check(CLI::Range(0, 10000));
  app.add_option("--chatroomd", s.chatroomd, "The chatroomd binary (default: next to this one)");
  app.add_flag("--keep", s.keep, "Keep the work directory (database, logs)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (s.chatroomd.empty()) {
    std::error_code ec;
    s.chatroomd = (fs::read_symlink("/proc/self/exe", ec).parent_path() / "chatroomd").string();
  }
  try {
    return run_all(s);
  } catch (const std::exception& e) {
    say(std::string("chatroom-race: ") + e.what());
    return kExitFailure;
  }
}
