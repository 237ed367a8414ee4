// fake_clock.hpp: redis-server nodes whose clocks run at another rate or
// jump, through the fake_clock.c LD_PRELOAD shim that the tests build.
//
//   FakeClock clock(dir / "clock");          // the control file, offset 0
//   options.node_env = {{}, clock.env(1.5)}; // node 2's clocks run 1.5x fast
//   clock.set_offset(5s);                    // node 2's wall clock jumps +5 s
//
// One FakeClock per control file; it can serve several nodes (they then
// share the offset). Threading: one thread.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#ifndef REDLOCK_FAKE_CLOCK_PATH
#error "REDLOCK_FAKE_CLOCK_PATH must name the fake clock shim (tests/support/CMakeLists.txt)"
#endif

namespace redlock::testing {

class FakeClock {
 public:
  // Creates (or resets) the control file at `control` with offset 0.
  explicit FakeClock(std::filesystem::path control) : control_(std::move(control)) {
    ok_ = set_offset(std::chrono::nanoseconds(0));
  }

  // False if the control file could not be written.
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] const std::filesystem::path& control() const noexcept { return control_; }

  // The shim's path, as built.
  static std::string library() { return REDLOCK_FAKE_CLOCK_PATH; }

  // The environment for ClusterOptions::node_env: the shim preloaded, clocks
  // at `rate` times the real rate, the wall clock offset from this file.
  [[nodiscard]] std::vector<std::string> env(double rate = 1.0) const {
    return {"LD_PRELOAD=" + library(), "REDLOCK_FAKE_CLOCK_RATE=" + std::to_string(rate),
            "REDLOCK_FAKE_CLOCK_FILE=" + control_.string()};
  }

  // Steps the wall clock of every node using this file to `offset` from
  // where it would be (at once: the shim reads the file on every call).
  // Written in place, never truncated: the servers have the file mapped.
  bool set_offset(std::chrono::nanoseconds offset) {
    const int fd = ::open(control_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    const std::int64_t words[2] = {offset.count(), ~offset.count()};
    const bool written = ::pwrite(fd, words, sizeof words, 0) == static_cast<ssize_t>(sizeof words);
    ::close(fd);
    return written;
  }

 private:
  std::filesystem::path control_;
  bool ok_ = false;
};

}  // namespace redlock::testing
