// redlock/cluster/free_ports.hpp: free TCP ports on 127.0.0.1, for servers
// started by the local cluster, the tests and the benchmarks.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace redlock::cluster {

// Where free ports are drawn from: below Linux's ephemeral range (32768-60999
// by default), and clear of the fixed ports of the README's cluster
// (7001-7005) and of the tests' Redis Clusters, whose buses listen on
// port + 10000 (20000-23999, buses 30000-33999).
inline constexpr int kFirstFreePort = 10000;
inline constexpr int kEndFreePort = 20000;

// n distinct free TCP ports on 127.0.0.1, fewer if a socket cannot be made.
//
// A port the OS hands out for bind(0) comes from the ephemeral range, which
// every outgoing connection draws its local port from too: between the pick
// and the server's bind, a client connecting anywhere can take it (a test run
// makes thousands of connections). So ports are drawn at random from
// [kFirstFreePort, kEndFreePort) instead, each bound to check that it is free
// and held until all are known. Another process may still take one before it
// is used; callers that start servers pick again when one is refused.
inline std::vector<int> free_tcp_ports(std::size_t n) {
  std::vector<int> fds;
  std::vector<int> ports;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> draw(kFirstFreePort, kEndFreePort - 1);
  for (std::size_t tries = 0; ports.size() < n && tries < 64 * n + 256; ++tries) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    fds.push_back(fd);
    const int port = draw(rng);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // A port bound here (or by anyone) fails with EADDRINUSE: draw again.
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) ports.push_back(port);
  }
  for (const int fd : fds) ::close(fd);
  return ports;
}

}  // namespace redlock::cluster
