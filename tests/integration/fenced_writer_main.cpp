// redlock_fenced_writer: takes a lock, prints "fence=N", holds it for
// --hold-ms (the tests SIGSTOP it meanwhile, past its validity), then writes
// to the fenced store (fenced_store.hpp) with its fence, prints "accepted"
// or "rejected", and releases. Exit status: 0 accepted, 3 rejected, 1 error.
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <sstream>
#include <thread>

#include "fenced_store.hpp"
#include "redlock/redlock.hpp"

int main(int argc, char** argv) {
  CLI::App app{"write to a fenced store under a redlock lock"};
  std::string nodes;
  std::string resource = "fenced";
  std::string store;
  int ttl_ms = 1000;
  int hold_ms = 0;
  app.add_option("--nodes", nodes, "host:port,host:port,...")->required();
  app.add_option("--resource", resource);
  app.add_option("--store", store, "the fenced store's file")->required();
  app.add_option("--ttl-ms", ttl_ms);
  app.add_option("--hold-ms", hold_ms);
  CLI11_PARSE(app, argc, argv);

  redlock::ClientOptions opts;
  std::stringstream ss(nodes);
  for (std::string n; std::getline(ss, n, ',');) opts.nodes.push_back(n);
  opts.restart_grace = std::chrono::milliseconds(0);  // the test's cluster starts empty
  auto client = redlock::Client::connect(opts);
  if (!client) {
    std::cerr << "connect: " << client.error() << "\n";
    return 1;
  }
  redlock::AcquireOptions how;
  how.max_wait = std::chrono::seconds(10);
  auto lock = (*client)->acquire(resource, std::chrono::milliseconds(ttl_ms), how);
  if (!lock) {
    std::cerr << "acquire: " << lock.error() << "\n";
    return 1;
  }
  std::cout << "fence=" << lock->fence() << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  // A careless holder: it does not look at lock->expired() before writing.
  const auto wrote = redlock::testing::fenced_write(store, lock->fence());
  std::cout << (wrote == redlock::testing::FencedWrite::kAccepted   ? "accepted"
                : wrote == redlock::testing::FencedWrite::kRejected ? "rejected"
                                                                    : "error")
            << std::endl;
  (*client)->release(*lock);
  return wrote == redlock::testing::FencedWrite::kAccepted   ? 0
         : wrote == redlock::testing::FencedWrite::kRejected ? 3
                                                             : 1;
}
