// fenced_store.hpp: the resource a fencing token protects, as a file that
// remembers the largest fence it has accepted. A write carrying a smaller
// fence is refused: that is how a resource keeps out a holder that lost its
// lock without knowing (paused past its validity, say). flock() makes the
// check-and-write atomic between processes.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace redlock::testing {

enum class FencedWrite { kAccepted, kRejected, kError };

inline FencedWrite fenced_write(const std::string& path, std::uint64_t fence) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
  if (fd < 0) return FencedWrite::kError;
  if (::flock(fd, LOCK_EX) != 0) {
    ::close(fd);
    return FencedWrite::kError;
  }
  char buf[32] = {};
  const auto n = ::pread(fd, buf, sizeof buf - 1, 0);
  const std::uint64_t seen = n > 0 ? std::stoull(std::string(buf, static_cast<std::size_t>(n))) : 0;
  FencedWrite result = FencedWrite::kRejected;
  if (fence > seen) {
    const std::string text = std::to_string(fence);
    if (::ftruncate(fd, 0) == 0 &&
        ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size())) {
      result = FencedWrite::kAccepted;
    } else {
      result = FencedWrite::kError;
    }
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
  return result;
}

}  // namespace redlock::testing
