// The README's example ("The library"), as a program of its own that a
// user would write against an installed redlock. It needs a Redis master on
// each of 127.0.0.1:7001-7005 (scripts/check-install.sh starts them).
#include <chrono>
#include <iostream>

// --- begin README example (keep identical to README.md) ---
#include <redlock/redlock.hpp>

int main() {
  redlock::ClientOptions opts;
  opts.nodes = {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:7004",
                "127.0.0.1:7005"};
  // These nodes were just started empty (redlock-cluster up), so no lock can
  // predate them: let them vote at once. Against long-lived nodes leave this
  // unset, and a node that restarted waits out max_ttl before it votes.
  opts.restart_grace = std::chrono::milliseconds(0);
  auto client = redlock::Client::connect(opts);
  if (!client) {
    std::cerr << client.error() << "\n";
    return 1;
  }
  redlock::AcquireOptions how;
  how.max_wait = std::chrono::seconds(5);
  auto lock = (*client)->acquire("chatroom:general", std::chrono::seconds(10), how);
  if (!lock) {
    std::cerr << lock.error() << "\n";
    return 2;
  }
  std::cout << lock->token() << " valid for " << lock->remaining().count() << " ms\n";
  (*client)->release(*lock);
  return 0;
}
// --- end README example ---
