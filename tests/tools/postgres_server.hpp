// postgres_server.hpp: PostgresServer, a throw-away PostgreSQL server for a
// test, from Debian's postgresql package binaries: initdb into a fresh
// temporary directory, postgres on a free port of 127.0.0.1 with its socket
// in that directory, fast shutdown and removal at the end. PostgreSQL
// refuses to run as root: under root the server runs as the "postgres" user
// (or "nobody"), which owns the directory.
//
// Threading: for the test's main thread (the server gets SIGKILL when the
// thread that started it exits).
#pragma once

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tl/expected.hpp>
#include <vector>

#include "redlock/cluster/free_ports.hpp"
#include "redlock/cluster/local_cluster.hpp"
#include "redlock/tools/subprocess.hpp"
#include "store.hpp"
#include "tool_process.hpp"

namespace redlock::testing {

class PostgresServer {
 public:
  // The newest /usr/lib/postgresql/N/bin holding initdb and postgres, or
  // nullopt if PostgreSQL is not installed.
  static std::optional<std::filesystem::path> find_bindir() {
    std::vector<std::filesystem::path> found;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      const auto bin = entry.path() / "bin";
      if (std::filesystem::exists(bin / "initdb", ec) &&
          std::filesystem::exists(bin / "postgres", ec)) {
        found.push_back(bin);
      }
    }
    if (found.empty()) return std::nullopt;
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return std::stoi(a.parent_path().filename().string()) <
             std::stoi(b.parent_path().filename().string());
    });
    return found.back();
  }

  static tl::expected<std::unique_ptr<PostgresServer>, std::string> start(
      const std::filesystem::path& bindir) {
    auto server = std::unique_ptr<PostgresServer>(new PostgresServer());
    if (server->dir_.path().empty()) return tl::make_unexpected(std::string("mkdtemp failed"));
    const auto dir = server->dir_.path();
    redlock::tools::SpawnOptions base;
    base.cwd = dir;
    if (::geteuid() == 0) {
      const passwd* user = ::getpwnam("postgres");
      if (user == nullptr) user = ::getpwnam("nobody");
      if (user == nullptr) return tl::make_unexpected(std::string("no postgres or nobody user"));
      base.uid = user->pw_uid;
      base.gid = user->pw_gid;
      if (::chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0) {
        return tl::make_unexpected("chown " + dir.string() + " failed");
      }
    }
    auto initdb = base;
    initdb.argv = {(bindir / "initdb").string(),
                   "-D",
                   (dir / "data").string(),
                   "-U",
                   "postgres",
                   "-A",
                   "trust",
                   "-E",
                   "UTF8",
                   "--no-sync"};
    initdb.stdout_path = initdb.stderr_path = dir / "initdb.log";
    auto init = redlock::tools::Subprocess::spawn(initdb);
    if (!init) return tl::make_unexpected("initdb: " + init.error().message);
    const auto status = init->wait_for(redlock::cluster::scaled(std::chrono::seconds(60)));
    if (!status || redlock::tools::exit_code(*status) != 0) {
      return tl::make_unexpected("initdb failed:\n" + read_file(dir / "initdb.log"));
    }
    auto port = free_port();
    if (!port) return tl::make_unexpected(std::string("no free port"));
    server->port_ = *port;
    auto postgres = base;
    postgres.argv = {(bindir / "postgres").string(),
                     "-D",
                     (dir / "data").string(),
                     "-p",
                     std::to_string(*port),
                     "-k",
                     dir.string(),
                     "-c",
                     "listen_addresses=127.0.0.1",
                     "-c",
                     "fsync=off",
                     "-c",
                     "synchronous_commit=off",
                     "-c",
                     "full_page_writes=off",
                     "-c",
                     "max_connections=200"};
    postgres.stdout_path = postgres.stderr_path = dir / "postgres.log";
    auto process = redlock::tools::Subprocess::spawn(postgres);
    if (!process) return tl::make_unexpected("postgres: " + process.error().message);
    server->process_ = std::move(*process);
    // Ready when the chatroom store can connect (and create its schema).
    const auto deadline =
        std::chrono::steady_clock::now() + redlock::cluster::scaled(std::chrono::seconds(30));
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      if (server->process_.poll()) break;
      auto store = redlock::chatroom::open_store(server->url(), 1);
      if (store) return server;
      last = store.error().message;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return tl::make_unexpected("postgres did not become ready (" + last + "):\n" +
                               read_file(dir / "postgres.log"));
  }

  ~PostgresServer() {
    // SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients.
    if (process_.running())
      process_.stop(SIGINT, redlock::cluster::scaled(std::chrono::seconds(15)));
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  [[nodiscard]] std::string url() const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
  }
  [[nodiscard]] std::string log() const { return read_file(dir_.path() / "postgres.log"); }

 private:
  PostgresServer() = default;

  static std::optional<int> free_port() {
    const auto ports = redlock::cluster::free_tcp_ports(1);
    if (ports.empty()) return std::nullopt;
    return ports.front();
  }

  // Declared first, destroyed last: the server stops before its directory
  // goes.
  ScratchDir dir_;
  int port_ = 0;
  redlock::tools::Subprocess process_;
};

}  // namespace redlock::testing
