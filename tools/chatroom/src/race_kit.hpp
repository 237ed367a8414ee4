// race_kit.hpp: the chatroom create race, shared by chatroom-race (the demo)
// and the end-to-end test: chatroomd replicas as child processes, many
// concurrent "create this room" requests spread over them, and the checker
// that says whether the room was created exactly once.
//
// Threading: Replicas is used from one thread, one that outlives the
// replicas (they get SIGKILL when it exits: PR_SET_PDEATHSIG). run_race()
// starts its own client threads and joins them before it returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "redlock/tools/subprocess.hpp"
#include "store.hpp"

namespace redlock::chatroom::race {

struct ReplicaOptions {
  std::filesystem::path chatroomd;  // the binary
  std::vector<std::string> nodes;   // lock nodes, host:port
  std::string store;                // --store
  std::filesystem::path log_dir;    // replicaK.log, K from 1
  // More chatroomd flags for every replica: --create-delay-ms 20,
  // --unsafe-no-lock, --lock-wait 5s, ...
  std::vector<std::string> extra_args;
  // Per replica: until it prints its address and answers GET /healthz.
  std::chrono::milliseconds start_timeout{15000};
};

class Replicas {
 public:
  // Starts n replicas on free ports of 127.0.0.1 and waits until each one
  // answers GET /healthz. On error nothing is left running and the message
  // carries the failing replica's log.
  [[nodiscard]] static tl::expected<std::unique_ptr<Replicas>, std::string> start(
      std::size_t n, const ReplicaOptions& options);

  Replicas(const Replicas&) = delete;
  Replicas& operator=(const Replicas&) = delete;
  ~Replicas();

  // SIGTERM to every replica, then waits (bounded: SIGKILL after 10 s).
  // Returns each one's exit code (128 + N: killed by signal N). Idempotent.
  std::vector<int> stop();

  // "127.0.0.1:PORT" of each replica.
  [[nodiscard]] const std::vector<std::string>& addresses() const { return addresses_; }
  // The end of replica i's log (0-based), for failure messages.
  [[nodiscard]] std::string log_tail(std::size_t i) const;

 private:
  Replicas() = default;
  std::vector<tools::Subprocess> processes_;
  std::vector<std::string> addresses_;
  std::vector<std::filesystem::path> logs_;
  std::vector<int> exit_codes_;
};

struct RaceOptions {
  std::vector<std::string> addresses;  // replicas; request i goes to i % size
  std::string name;                    // the room everyone creates
  std::size_t requests = 200;
  std::size_t concurrency = 40;  // client threads, released together
  std::chrono::milliseconds request_timeout{30000};
};

struct RaceResult {
  std::size_t requests = 0;
  std::size_t created = 0;      // 201
  std::size_t existed = 0;      // 200
  std::size_t unavailable = 0;  // 503
  std::size_t other = 0;        // any other status (500: the store refused)
  std::size_t failed = 0;       // no HTTP answer at all
  std::map<int, std::size_t> by_status;
  std::vector<std::string> samples;  // the first few unexpected answers
  std::chrono::milliseconds elapsed{0};
};

// Fires options.requests POST /chatrooms {"name": options.name}, spread
// over the replicas, from options.concurrency threads started together.
[[nodiscard]] RaceResult run_race(const RaceOptions& options);

// The sum of every series of `metric` (exact name, any labels) over the
// replicas' GET /metrics. Error: a replica did not answer.
[[nodiscard]] tl::expected<double, std::string> scrape_sum(
    const std::vector<std::string>& addresses, std::string_view metric);

struct Verdict {
  bool clean = true;
  std::vector<std::string> problems;
};

// A clean race: exactly one 201; every other answer 200 or 503; one room
// with one "room created" message and one "room_created" outbox event; and
// no request that got past the look-up only to lose at the store's UNIQUE
// constraint (chatroom_unique_conflicts_total == 0: with the lock, no two
// requests ever try to insert the same room).
[[nodiscard]] Verdict check(const RaceResult& race, const RoomAudit& audit,
                            double unique_conflicts);

}  // namespace redlock::chatroom::race
