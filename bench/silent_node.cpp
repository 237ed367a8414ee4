#include "silent_node.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace redlock::bench {

tl::expected<std::unique_ptr<SilentNode>, std::string> SilentNode::start() {
  const auto fail = [](const char* what, int fd) {
    const std::string why = std::string(what) + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return tl::unexpected(why);
  };
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket", -1);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return fail("bind", fd);
  }
  if (::listen(fd, 64) != 0) return fail("listen", fd);
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail("getsockname", fd);
  }
  const int wake = ::eventfd(0, EFD_CLOEXEC);
  if (wake < 0) return fail("eventfd", fd);
  std::unique_ptr<SilentNode> node(new SilentNode(fd, wake, ntohs(addr.sin_port)));
  node->thread_ = std::thread([n = node.get()] { n->run(); });
  return node;
}

SilentNode::SilentNode(int listen_fd, int wake_fd, int port)
    : listen_fd_(listen_fd), wake_fd_(wake_fd), port_(port) {}

SilentNode::~SilentNode() { stop(); }

void SilentNode::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) return;
    if ((fds[0].revents & POLLIN) != 0) {
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        conns_.push_back(c);
        accepted_.fetch_add(1);
      }
    }
  }
}

void SilentNode::stop() noexcept {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  for (int c : conns_) ::close(c);
  conns_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = -1;
  wake_fd_ = -1;
}

}  // namespace redlock::bench
