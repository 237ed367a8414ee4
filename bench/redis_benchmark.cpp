#include "redis_benchmark.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

extern char** environ;

namespace redlock::bench {
namespace {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) {
    field.erase(std::remove(field.begin(), field.end(), '"'), field.end());
    field.erase(std::remove(field.begin(), field.end(), '\r'), field.end());
    out.push_back(field);
  }
  return out;
}

}  // namespace

std::optional<std::string> capture(const std::vector<std::string>& argv, std::string& why) {
  if (argv.empty()) {
    why = "empty command line";
    return std::nullopt;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    why = std::string("pipe: ") + std::strerror(errno);
    return std::nullopt;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::vector<std::string> args = argv;
  std::vector<char*> raw;
  for (auto& a : args) raw.push_back(a.data());
  raw.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    why = rc == ENOENT ? argv[0] + " not found in PATH" : argv[0] + ": " + std::strerror(rc);
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    why = argv[0] + " failed (status " + std::to_string(status) + ")";
    return std::nullopt;
  }
  return out;
}

std::optional<RedisBenchmarkResult> parse_redis_benchmark(const std::string& csv,
                                                          std::string_view test, std::string& why) {
  std::istringstream in(csv);
  std::string line;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    auto fields = split_csv_line(line);
    if (fields.empty()) continue;
    if (fields[0] == "test") {
      header = fields;
    } else if (fields[0] == test && !header.empty()) {
      RedisBenchmarkResult r;
      bool have_rps = false;
      bool have50 = false;
      bool have99 = false;
      for (std::size_t i = 0; i < header.size() && i < fields.size(); ++i) {
        const double v = std::strtod(fields[i].c_str(), nullptr);
        if (header[i] == "rps") {
          r.rps = v;
          have_rps = true;
        } else if (header[i] == "p50_latency_ms") {
          r.p50_us = v * 1000.0;
          have50 = true;
        } else if (header[i] == "p99_latency_ms") {
          r.p99_us = v * 1000.0;
          have99 = true;
        }
      }
      if (have_rps && have50 && have99) return r;
    }
  }
  why = "no " + std::string(test) +
        " line with rps/p50/p99 columns in redis-benchmark's CSV output:\n" + csv;
  return std::nullopt;
}

std::vector<std::string> redis_benchmark_set_argv(int port, int clients, int pipeline,
                                                  long requests, const std::string& host) {
  return {"redis-benchmark",
          "-h",
          host,
          "-p",
          std::to_string(port),
          "-c",
          std::to_string(clients),
          "-P",
          std::to_string(pipeline),
          "-n",
          std::to_string(requests),
          "-t",
          "set",
          "--csv"};
}

std::optional<RedisBenchmarkResult> run_redis_benchmark_set(int port, int clients, int pipeline,
                                                            long requests, std::string& why,
                                                            const std::string& host) {
  auto out = capture(redis_benchmark_set_argv(port, clients, pipeline, requests, host), why);
  if (!out) return std::nullopt;
  return parse_redis_benchmark(*out, "SET", why);
}

}  // namespace redlock::bench
