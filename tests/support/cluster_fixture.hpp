// cluster_fixture.hpp: ClusterTest, a GoogleTest fixture that gives each test
// a fresh local cluster (5 nodes unless nodes_count() says otherwise) on free
// ports in a temporary directory.
//
// TearDown resumes paused nodes, checks the "no lock key left behind" rule
// (expect_no_keys(), waiting a little for asynchronous releases) unless the
// test set skip_leftover_check_ or already failed fatally, then stops every
// server and removes the directory, whatever the outcome of the test.
//
// Threading: SetUp and TearDown run on the test's main thread, which outlives
// the servers, as LocalCluster's PR_SET_PDEATHSIG requires. The helpers are
// for that thread too.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "redlock/cluster/local_cluster.hpp"

namespace redlock::testing {

class ClusterTest : public ::testing::Test {
 protected:
  // How many nodes each test gets.
  virtual std::size_t nodes_count() const { return 5; }
  // Options for the cluster; override to pass extra redis-server arguments.
  virtual redlock::cluster::ClusterOptions cluster_options() const { return {}; }

  void SetUp() override {
    auto started = redlock::cluster::LocalCluster::start(nodes_count(), cluster_options());
    ASSERT_TRUE(started.has_value()) << "cannot start the local cluster: " << started.error();
    cluster_ = std::move(*started);
  }

  void TearDown() override {
    if (!cluster_) return;
    for (std::size_t i = 0; i < cluster_->size(); ++i) {
      if (cluster_->info(i).paused) {
        auto resumed = cluster_->resume(i);
        EXPECT_TRUE(resumed.has_value()) << resumed.error();
      }
    }
    // After a fatal failure the test stopped half-way: leftovers say nothing.
    if (!skip_leftover_check_ && !HasFatalFailure()) expect_no_keys();
    cluster_->stop();
    cluster_.reset();
  }

  // Expects that no running, unpaused node holds a key, polling for up to
  // `wait` so that releases still in flight can land. On failure the message
  // lists the keys found on each node.
  void expect_no_keys(
      std::chrono::milliseconds wait = redlock::cluster::scaled(std::chrono::milliseconds(2000))) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    tl::expected<long long, std::string> count = 0;
    for (;;) {
      count = count_lock_keys();
      if (count.has_value() && *count == 0) return;
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!count.has_value()) {
      ADD_FAILURE() << "cannot count the keys left on the cluster: " << count.error();
      return;
    }
    std::string found;
    for (std::size_t i = 0; i < cluster_->size(); ++i) {
      const auto node = cluster_->info(i);
      if (!node.running || node.paused) continue;
      auto keys = cluster_->command(i, {"KEYS", "*"});
      std::string listed;
      if (keys.has_value()) {
        std::istringstream lines(*keys);
        for (std::string key; std::getline(lines, key);) {
          if (!is_fence_key(key)) listed += (listed.empty() ? "" : " ") + key;
        }
      } else {
        listed = keys.error();
      }
      found += "\n  " + cluster_->address(i) + ": " + (listed.empty() ? "(none)" : listed);
    }
    ADD_FAILURE() << *count << " key(s) left behind after "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()
                  << " ms:" << found;
  }

  // Fencing counters outlive their locks on purpose: they are not leftovers.
  // They are "redlock:{<tag>}:fence:<resource>" (the library's key layout).
  static constexpr std::string_view kFencePattern = "redlock:{*}:fence:*";
  static bool is_fence_key(std::string_view key) {
    const auto close = key.find('}');
    return key.starts_with("redlock:{") && close != std::string_view::npos &&
           key.substr(close).starts_with("}:fence:");
  }

  // Keys on the running, unpaused nodes other than fencing counters.
  tl::expected<long long, std::string> count_lock_keys() {
    auto all = cluster_->count_keys("*");
    if (!all) return all;
    auto fences = cluster_->count_keys(std::string(kFencePattern));
    if (!fences) return fences;
    return *all - *fences;
  }

  redlock::cluster::LocalCluster& cluster() { return *cluster_; }
  std::vector<std::string> addresses() const { return cluster_->addresses(); }

  // Set to true in a test that leaves keys on purpose (or cannot wait for
  // them to go, e.g. a node still in DEBUG SLEEP).
  bool skip_leftover_check_ = false;
  std::unique_ptr<redlock::cluster::LocalCluster> cluster_;
};

}  // namespace redlock::testing
