// redlock-demo: Redlock on a throw-away local cluster, end to end.
//
//   redlock-demo [--nodes N] [--verbose]
//
// Starts N (default 5) independent redis-server processes on 127.0.0.1 in a
// temporary directory, then shows, with timings from this very run:
//   1. a lock granted by a majority, with each node's vote and round trip;
//   2. a contended lock: a second client times out, then gets it once the
//      first one releases;
//   3. the largest minority of nodes frozen (SIGSTOP): a lock is still granted;
//   4. one node more frozen: no quorum, reported quickly;
// and finally checks that no key is left on any node. The cluster is always
// stopped, on success and on failure. Exit status: 0 when every step behaved
// as Redlock says it must, 1 otherwise (the message says which step and why),
// 2 for bad usage.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "redlock/cluster/local_cluster.hpp"
#include "redlock/redlock.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using redlock::cluster::LocalCluster;
using std::chrono::milliseconds;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr milliseconds kTtl{10000};

// A step that did not behave as it must. Thrown, caught in main(): the demo
// is a script, not a hot path, and unwinding is what stops the cluster.
class DemoFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& message) { throw DemoFailure(message); }

std::string format_ms(Clock::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(us) / 1000.0);
  return buf;
}

std::string format_us(std::chrono::microseconds us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(us.count()) / 1000.0);
  return buf;
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

struct Settings {
  std::size_t nodes = 5;
  bool verbose = false;
};

// Each node's answer, one line per node, numbered from 1 like the cluster's
// own messages.
void print_votes(const std::vector<redlock::NodeResult>& votes) {
  for (std::size_t i = 0; i < votes.size(); ++i) {
    const auto& v = votes[i];
    std::string line = "     node " + std::to_string(i + 1) + "  " + v.node + "  ";
    std::string status(redlock::to_string(v.status));
    status.resize(std::max<std::size_t>(status.size(), 12), ' ');
    line += status;
    std::string notes;
    if (v.rtt.count() > 0) notes = "rtt " + format_us(v.rtt);
    if (v.status == redlock::NodeStatus::kPending) {
      notes = "(no answer yet when the round was decided)";
    }
    if (!v.detail.empty()) notes += (notes.empty() ? "" : "  ") + v.detail;
    line += notes;
    say(line);
  }
}

std::size_t count_status(const std::vector<redlock::NodeResult>& nodes,
                         redlock::NodeStatus status) {
  std::size_t n = 0;
  for (const auto& v : nodes) {
    if (v.status == status) ++n;
  }
  return n;
}

void print_error(const redlock::Error& error, const Settings& settings) {
  say("   error: " + std::string(redlock::to_string(error.code())));
  say("   message: " + error.message());
  if (settings.verbose) say("   full text: " + redlock::to_string(error));
  if (!error.nodes().empty()) {
    say("   last round, per node:");
    print_votes(error.nodes());
  }
}

void print_lock(const redlock::Lock& lock, Clock::duration took) {
  say("   resource  " + lock.resource());
  say("   token     " + lock.token());
  // What Redlock subtracts for clock drift: ttl * drift_factor + 2 ms.
  const auto drift = std::chrono::duration_cast<milliseconds>(
      kTtl * redlock::ClientOptions{}.drift_factor + milliseconds(2));
  say("   granted in " + format_ms(took) + "; valid for " +
      std::to_string(lock.remaining().count()) + " ms more (ttl " + std::to_string(kTtl.count()) +
      " ms, less " + std::to_string(drift.count()) +
      " ms drift allowance, less the time the acquire took)");
  say("   votes:");
  print_votes(lock.votes());
}

void release(redlock::Client& client, const redlock::Lock& lock, const Settings& settings,
             const std::string& who = "") {
  const auto t0 = Clock::now();
  auto report = client.release(lock);
  const auto took = Clock::now() - t0;
  if (!report) fail("releasing \"" + lock.resource() + "\": " + redlock::to_string(report.error()));
  say("   " + who + "released \"" + lock.resource() + "\" in " + format_ms(took) +
      ": key deleted on " + std::to_string(report->deleted) + " of " +
      std::to_string(report->nodes.size()) + " nodes");
  if (settings.verbose) print_votes(report->nodes);
}

// Nodes frozen with SIGSTOP for the life of this object: the destructor lets
// them run again, also when a step fails half-way.
class PausedNodes {
 public:
  PausedNodes(LocalCluster& cluster, std::vector<std::size_t> nodes)
      : cluster_(cluster), nodes_(std::move(nodes)) {
    for (auto i : nodes_) {
      if (auto ok = cluster_.pause(i); !ok) {
        resume_all();
        fail("pausing node " + std::to_string(i + 1) + ": " + ok.error());
      }
    }
  }
  ~PausedNodes() { resume_all(); }
  PausedNodes(const PausedNodes&) = delete;
  PausedNodes& operator=(const PausedNodes&) = delete;

  // Resumes now and reports a failure (the destructor only tries).
  void resume() {
    for (auto i : nodes_) {
      if (auto ok = cluster_.resume(i); !ok) {
        fail("resuming node " + std::to_string(i + 1) + ": " + ok.error());
      }
    }
    nodes_.clear();
  }

  std::string names() const {
    std::string out;
    for (auto i : nodes_) out += (out.empty() ? "" : ", ") + std::to_string(i + 1);
    return out;
  }

 private:
  void resume_all() noexcept {
    for (auto i : nodes_) (void)cluster_.resume(i);
    nodes_.clear();
  }

  LocalCluster& cluster_;
  std::vector<std::size_t> nodes_;
};

std::vector<std::size_t> last_nodes(std::size_t n, std::size_t count) {
  std::vector<std::size_t> out;
  for (std::size_t i = n - count; i < n; ++i) out.push_back(i);
  return out;
}

std::unique_ptr<redlock::Client> connect(const LocalCluster& cluster) {
  redlock::ClientOptions options;
  options.nodes = cluster.addresses();
  // The demo starts its nodes empty: no lock predates them, so they may vote
  // at once instead of sitting out restart-aware voting's grace.
  options.restart_grace = std::chrono::milliseconds(0);
  // Each release is reported with what every node did.
  options.release_wait = redlock::ClientOptions::ReleaseWait::kEveryNode;
  auto client = redlock::Client::connect(std::move(options));
  if (!client) fail("connecting a client: " + redlock::to_string(client.error()));
  const auto up = (*client)->connected();
  for (std::size_t i = 0; i < up.size(); ++i) {
    if (!up[i]) fail("the client could not connect to node " + std::to_string(i + 1));
  }
  return std::move(*client);
}

void step_quorum(redlock::Client& client, const Settings& settings) {
  say("");
  say("1. A lock granted by a majority");
  const auto t0 = Clock::now();
  auto lock = client.acquire("demo:orders", kTtl);
  const auto took = Clock::now() - t0;
  if (!lock) fail("step 1: acquire failed: " + redlock::to_string(lock.error()));
  print_lock(*lock, took);
  const auto yes = count_status(lock->votes(), redlock::NodeStatus::kOk);
  if (yes < client.quorum()) {
    fail("step 1: granted with " + std::to_string(yes) + " yes votes, quorum is " +
         std::to_string(client.quorum()));
  }
  release(client, *lock, settings);
}

void step_contended(redlock::Client& first, redlock::Client& second, const Settings& settings) {
  say("");
  say("2. A contended lock");
  const std::string resource = "demo:contended";
  auto held = first.acquire_guard(resource, kTtl);
  if (!held) fail("step 2: client A could not take the lock: " + redlock::to_string(held.error()));
  say("   client A holds \"" + resource + "\" (token " + held->lock().token() + ")");

  redlock::AcquireOptions wait;
  wait.max_wait = milliseconds(1000);
  wait.retry_delay = milliseconds(100);
  wait.retry_jitter = milliseconds(50);
  say("   client B tries the same resource, waiting up to " +
      std::to_string(wait.max_wait.count()) + " ms ...");
  auto t0 = Clock::now();
  auto denied = second.acquire(resource, kTtl, wait);
  auto took = Clock::now() - t0;
  if (denied) fail("step 2: client B got a lock that client A holds");
  say("   client B gave up after " + format_ms(took) +
      " (no further attempt fitted in its wait), as it must:");
  print_error(denied.error(), settings);
  if (denied.error().code() != redlock::ErrorCode::kLockWaitTimeout) {
    fail("step 2: expected \"lock wait timeout\", got: " + redlock::to_string(denied.error()));
  }
  // The round is decided by the first refusals that make a majority
  // impossible, so with few nodes one refusal is all there is to see.
  if (count_status(denied.error().nodes(), redlock::NodeStatus::kRefused) == 0) {
    fail("step 2: the nodes should have refused client B (held by another): " +
         redlock::to_string(denied.error()));
  }

  // B waits in the background while A finishes its work and releases.
  wait.max_wait = milliseconds(5000);
  auto pending = second.async_acquire(resource, kTtl, wait);
  std::this_thread::sleep_for(milliseconds(300));
  const auto released_at = Clock::now();
  auto report = held->release();
  if (!report) fail("step 2: client A's release failed: " + redlock::to_string(report.error()));
  say("   client A released it (key deleted on " + std::to_string(report->deleted) + " of " +
      std::to_string(report->nodes.size()) + " nodes)");
  auto got = pending.get();
  took = Clock::now() - released_at;
  if (!got) {
    fail("step 2: client B did not get the lock after A released it: " +
         redlock::to_string(got.error()));
  }
  say("   client B got it " + format_ms(took) + " after A's release (B retries every " +
      std::to_string(wait.retry_delay.count()) + " +/- " +
      std::to_string(wait.retry_jitter.count()) + " ms), token " + got->token());
  release(second, *got, settings, "client B ");
}

void step_minority_down(LocalCluster& cluster, redlock::Client& client, const Settings& settings) {
  const std::size_t n = cluster.size();
  const std::size_t down = n - client.quorum();
  say("");
  say("3. " + std::to_string(down) + " of " + std::to_string(n) +
      " nodes frozen (SIGSTOP): a majority is still there");
  if (down == 0) {
    say("   skipped: with " + std::to_string(n) + " node(s) no node can be lost");
    return;
  }
  PausedNodes paused(cluster, last_nodes(n, down));
  say("   paused node(s) " + paused.names());
  const auto t0 = Clock::now();
  auto lock = client.acquire("demo:degraded", kTtl);
  const auto took = Clock::now() - t0;
  if (!lock) fail("step 3: acquire failed: " + redlock::to_string(lock.error()));
  print_lock(*lock, took);
  const auto yes = count_status(lock->votes(), redlock::NodeStatus::kOk);
  if (yes != client.quorum()) {
    fail("step 3: expected exactly " + std::to_string(client.quorum()) + " yes votes, got " +
         std::to_string(yes));
  }
  say("   the frozen nodes never answered, and the acquire did not wait for them");
  paused.resume();
  say("   resumed node(s); they now run the SET that was queued for them, then the release");
  release(client, *lock, settings);
}

void step_majority_down(LocalCluster& cluster, redlock::Client& client, const Settings& settings) {
  const std::size_t n = cluster.size();
  const std::size_t down = n - client.quorum() + 1;
  say("");
  say("4. " + std::to_string(down) + " of " + std::to_string(n) + " nodes frozen: no majority");
  PausedNodes paused(cluster, last_nodes(n, down));
  say("   paused node(s) " + paused.names());
  const auto t0 = Clock::now();
  auto lock = client.acquire("demo:no-quorum", kTtl);
  const auto took = Clock::now() - t0;
  if (lock) fail("step 4: a lock was granted without a majority");
  say("   failed after " + format_ms(took) +
      ": the frozen nodes count as \"no\" once the node timeout (ttl / 200, at least 10 ms)"
      " has passed:");
  print_error(lock.error(), settings);
  if (lock.error().code() != redlock::ErrorCode::kNoQuorum) {
    fail("step 4: expected \"no quorum\", got: " + redlock::to_string(lock.error()));
  }
  paused.resume();
  say("   resumed node(s)");
}

// The resumed nodes work through what was queued for them while frozen; give
// them a moment before calling a leftover key a failure.
void check_no_keys(LocalCluster& cluster) {
  say("");
  const auto deadline = Clock::now() + milliseconds(3000);
  for (;;) {
    // Fencing counters (redlock:{...}:fence:...) outlive their locks by design.
    auto all = cluster.count_keys("*");
    if (!all) fail("counting keys: " + all.error());
    auto fences = cluster.count_keys("redlock:{*}:fence:*");
    if (!fences) fail("counting keys: " + fences.error());
    const long long keys = *all - *fences;
    if (keys == 0) break;
    if (Clock::now() >= deadline) {
      fail(std::to_string(keys) + " lock key(s) left on the nodes after every lock was released");
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  say("Every lock released: 0 lock keys left on " + std::to_string(cluster.size()) +
      " nodes (the fencing counters stay, by design).");
}

void run(LocalCluster& cluster, const Settings& settings) {
  auto client_a = connect(cluster);
  auto client_b = connect(cluster);
  say("Two clients connected to all " + std::to_string(cluster.size()) + " nodes; quorum " +
      std::to_string(client_a->quorum()) + ", ttl " + std::to_string(kTtl.count()) + " ms.");

  step_quorum(*client_a, settings);
  step_contended(*client_a, *client_b, settings);
  step_minority_down(cluster, *client_a, settings);
  step_majority_down(cluster, *client_a, settings);
  check_no_keys(cluster);
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  CLI::App app{"Redlock on a local cluster of redis-server processes, step by step"};
  app.add_option("--nodes", settings.nodes, "Number of redis-server nodes")
      ->check(CLI::Range(std::size_t{1}, redlock::ClientOptions::kMaxNodes));
  app.add_flag("--verbose", settings.verbose, "Print per-node release reports and error details");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return e.get_exit_code() == 0 ? rc : kExitUsage;
  }

  const auto t0 = Clock::now();
  // Declared before everything that talks to it: destroyed last, and its
  // destructor stops every server, however run() ends.
  auto started = LocalCluster::start(settings.nodes);
  if (!started) {
    std::fprintf(stderr, "redlock-demo: cannot start the local cluster: %s\n",
                 started.error().c_str());
    return kExitFailure;
  }
  std::unique_ptr<LocalCluster> cluster = std::move(*started);
  say("Started " + std::to_string(cluster->size()) + " redis-server nodes in " +
      format_ms(Clock::now() - t0) + (settings.verbose ? " in " + cluster->dir().string() : "") +
      ":");
  for (std::size_t i = 0; i < cluster->size(); ++i) {
    std::string line = "   node " + std::to_string(i + 1) + "  " + cluster->address(i);
    if (settings.verbose) line += "  pid " + std::to_string(cluster->info(i).pid);
    say(line);
  }

  int rc = kExitOk;
  try {
    run(*cluster, settings);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nredlock-demo: FAILED: %s\n", e.what());
    rc = kExitFailure;
  }
  cluster->stop();
  say((rc == kExitOk ? "Cluster stopped. Demo finished in " : "Cluster stopped after ") +
      format_ms(Clock::now() - t0) + ".");
  return rc;
}
