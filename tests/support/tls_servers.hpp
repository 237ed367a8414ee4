// tls_servers.hpp: redis-server processes that speak TLS only
// (`--port 0 --tls-port P`), as a TLS-only deployment runs them; for tests of
// what a user types (the CLI, chatroomd) against such nodes. The local
// cluster fixture cannot run them: its own checks use a plain port.
//
// Each server runs in a directory of its own under a temporary directory
// removed by the destructor, after the servers are killed (a crashed test
// leaves nothing either: each server gets SIGKILL when this thread dies).
//
// Threading: use from the test's main thread. Errors: start() says which
// server did not come up, with the end of its log.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <tl/expected.hpp>
#include <vector>

#include "redlock/cluster/local_cluster.hpp"
#include "redlock/cluster/tls_certs.hpp"
#include "redlock/tools/subprocess.hpp"

namespace redlock::testing {

class TlsOnlyServers {
 public:
  // `n` servers with the test certificates; `auth_clients`: they require a
  // client certificate (tls-auth-clients yes).
  static tl::expected<std::unique_ptr<TlsOnlyServers>, std::string> start(std::size_t n,
                                                                          const TlsFiles& files,
                                                                          bool auth_clients) {
    std::unique_ptr<TlsOnlyServers> out(new TlsOnlyServers());
    std::string templ =
        (std::filesystem::temp_directory_path() / "redlock-tls-servers.XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) return tl::make_unexpected(std::string("mkdtemp"));
    out->dir_ = templ;
    out->ports_ = free_tcp_ports(n);
    if (out->ports_.size() != n) return tl::make_unexpected(std::string("no free ports"));
    for (std::size_t i = 0; i < n; ++i) {
      auto child = out->spawn(i, files, auth_clients);
      if (!child) return tl::make_unexpected(child.error());
      out->servers_.push_back(std::move(*child));
    }
    // Ready once each log says so (nothing to PING without a plain port). A
    // port taken between the pick and the bind is picked again, a few times.
    const auto deadline =
        std::chrono::steady_clock::now() + cluster::scaled(std::chrono::milliseconds(10000));
    for (std::size_t i = 0; i < n; ++i) {
      const auto log = out->log(i);
      for (int attempt = 1; read(log).find("Ready to accept connections") == std::string::npos;) {
        const bool exited = out->servers_[i].poll().has_value();
        if (exited && attempt < kPortAttempts &&
            read(log).find("Address already in use") != std::string::npos) {
          ++attempt;
          const auto again = free_tcp_ports(1);
          if (again.empty()) return tl::make_unexpected(std::string("no free ports"));
          out->ports_[i] = again.front();
          std::error_code ec;
          std::filesystem::remove(log, ec);
          auto child = out->spawn(i, files, auth_clients);
          if (!child) return tl::make_unexpected(child.error());
          out->servers_[i] = std::move(*child);
          continue;
        }
        if (exited || std::chrono::steady_clock::now() > deadline) {
          return tl::make_unexpected("TLS server " + std::to_string(i + 1) + " on port " +
                                     std::to_string(out->ports_[i]) +
                                     " did not come up: " + read(log));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return out;
  }

  ~TlsOnlyServers() {
    servers_.clear();  // SIGKILL and reap, before the directory goes
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TlsOnlyServers(const TlsOnlyServers&) = delete;
  TlsOnlyServers& operator=(const TlsOnlyServers&) = delete;

  [[nodiscard]] const std::vector<int>& ports() const { return ports_; }
  // "rediss://HOST:P1,rediss://HOST:P2,...".
  [[nodiscard]] std::string node_list(const std::string& host = "127.0.0.1") const {
    std::string out;
    for (int port : ports_) {
      if (!out.empty()) out += ',';
      out.append("rediss://").append(host).append(":").append(std::to_string(port));
    }
    return out;
  }

 private:
  static constexpr int kPortAttempts = 5;

  TlsOnlyServers() = default;

  std::filesystem::path log(std::size_t i) const {
    return dir_ / ("node" + std::to_string(i + 1)) / "redis.log";
  }

  // Starts server i on ports_[i].
  tl::expected<tools::Subprocess, std::string> spawn(std::size_t i, const TlsFiles& files,
                                                     bool auth_clients) const {
    const auto dir = dir_ / ("node" + std::to_string(i + 1));
    std::filesystem::create_directories(dir);
    tools::SpawnOptions spawn;
    // clang-format off
    spawn.argv = {"redis-server",
                  "--port", "0",
                  "--bind", "127.0.0.1",
                  "--dir", dir.string(),
                  "--save", "",
                  "--appendonly", "no",
                  "--daemonize", "no",
                  "--logfile", ""};
    // clang-format on
    const auto tls = tls_server_args(files, ports_[i], auth_clients);
    spawn.argv.insert(spawn.argv.end(), tls.begin(), tls.end());
    spawn.stdout_path = log(i);
    spawn.stderr_path = spawn.stdout_path;
    spawn.close_other_fds = true;
    auto child = tools::Subprocess::spawn(spawn);
    if (!child) return tl::make_unexpected("redis-server: " + child.error().message);
    return std::move(*child);
  }

  static std::string read(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::filesystem::path dir_;
  std::vector<int> ports_;
  std::vector<tools::Subprocess> servers_;
};

}  // namespace redlock::testing
