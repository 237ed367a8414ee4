// redlock_contender: one process contending for one resource, for the
// multi-process tests. It takes the lock `--count` times; inside each critical
// section it creates `--marker` with O_EXCL and removes it on the way out, so
// two holders at once show up as a failed create (a mutual exclusion
// violation). Prints one line: "acquired=N violations=V failures=F".
// Exit status: 0 when every acquisition succeeded with no violation.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <iostream>
#include <sstream>
#include <thread>

#include "redlock/redlock.hpp"

int main(int argc, char** argv) {
  CLI::App app{"contend for one redlock resource"};
  std::string nodes;
  std::string resource = "contended";
  std::string marker;
  int count = 10;
  int hold_ms = 2;
  int max_wait_ms = 30000;
  int ttl_ms = 5000;
  app.add_option("--nodes", nodes, "host:port,host:port,...")->required();
  app.add_option("--resource", resource);
  app.add_option("--marker", marker, "file created exclusively inside the critical section")
      ->required();
  app.add_option("--count", count);
  app.add_option("--hold-ms", hold_ms);
  app.add_option("--max-wait-ms", max_wait_ms);
  app.add_option("--ttl-ms", ttl_ms);
  CLI11_PARSE(app, argc, argv);

  redlock::ClientOptions opts;
  std::stringstream ss(nodes);
  for (std::string n; std::getline(ss, n, ',');) opts.nodes.push_back(n);
  opts.node_timeout = std::chrono::milliseconds(250);
  opts.restart_grace = std::chrono::milliseconds(0);  // the test's cluster starts empty
  auto client = redlock::Client::connect(opts);
  if (!client) {
    std::cerr << "connect: " << client.error() << "\n";
    return 2;
  }
  redlock::AcquireOptions how;
  how.max_wait = std::chrono::milliseconds(max_wait_ms);
  how.retry_delay = std::chrono::milliseconds(20);
  how.retry_jitter = std::chrono::milliseconds(15);

  int acquired = 0;
  int violations = 0;
  int failures = 0;
  for (int i = 0; i < count; ++i) {
    auto lock = (*client)->acquire(resource, std::chrono::milliseconds(ttl_ms), how);
    if (!lock) {
      std::cerr << "acquire: " << lock.error() << "\n";
      ++failures;
      continue;
    }
    ++acquired;
    const int fd = ::open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd < 0) {
      if (errno == EEXIST) ++violations;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
      ::close(fd);
      ::unlink(marker.c_str());
    }
    if (lock->expired()) ++violations;  // held past its validity: unsafe
    auto released = (*client)->release(*lock);
    if (!released) {
      std::cerr << "release: " << released.error() << "\n";
      ++failures;
    }
  }
  std::cout << "acquired=" << acquired << " violations=" << violations << " failures=" << failures
            << std::endl;
  return (acquired == count && violations == 0 && failures == 0) ? 0 : 1;
}
