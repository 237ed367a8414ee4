// tool_process.hpp: running the tools' executables from the tests: a
// command's exit code, stdout and stderr, with a time bound against hangs.
//
// Threading: for the test's main thread (the children get SIGKILL when the
// thread that started them exits, see Subprocess).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "redlock/cluster/local_cluster.hpp"
#include "redlock/tools/subprocess.hpp"

namespace redlock::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// by the destructor.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                          "/redlock-tools-test.XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

struct ToolResult {
  int code = -1;  // exit code; 128 + N if killed by signal N; -1 if it never ran
  std::string out;
  std::string err;
  std::chrono::milliseconds took{0};
};

inline std::ostream& operator<<(std::ostream& os, const ToolResult& r) {
  return os << "exit " << r.code << " after " << r.took.count() << " ms\n--- stdout:\n"
            << r.out << "--- stderr:\n"
            << r.err;
}

// One running tool, its output going to files in `dir`.
class ToolProcess {
 public:
  ToolProcess(const std::filesystem::path& dir, std::vector<std::string> argv,
              std::vector<std::string> env = {}) {
    static int counter = 0;
    const std::string stem = "run" + std::to_string(++counter);
    out_ = dir / (stem + ".out");
    err_ = dir / (stem + ".err");
    redlock::tools::SpawnOptions spawn;
    spawn.argv = std::move(argv);
    spawn.env = std::move(env);
    spawn.stdout_path = out_;
    spawn.stderr_path = err_;
    start_ = std::chrono::steady_clock::now();
    auto process = redlock::tools::Subprocess::spawn(spawn);
    if (!process) {
      spawn_error_ = process.error().message;
      return;
    }
    process_ = std::move(*process);
  }

  [[nodiscard]] pid_t pid() const { return process_.pid(); }
  bool signal(int sig) { return process_.signal(sig); }

  // Waits up to `limit` (scaled); a tool still running then is killed and
  // reported with code -1 and "(killed: timed out)" in err.
  ToolResult finish(std::chrono::milliseconds limit =
                        redlock::cluster::scaled(std::chrono::milliseconds(30000))) {
    ToolResult r;
    if (!spawn_error_.empty()) {
      r.err = "cannot start: " + spawn_error_;
      return r;
    }
    auto status = process_.wait_for(limit);
    const bool timed_out = !status;
    if (timed_out) {
      process_.signal(SIGKILL);
      process_.wait();
    }
    r.took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start_);
    r.code = timed_out ? -1 : redlock::tools::exit_code(*status);
    r.out = read_file(out_);
    r.err = read_file(err_);
    if (timed_out) r.err += "\n(killed: timed out)";
    return r;
  }

 private:
  std::filesystem::path out_;
  std::filesystem::path err_;
  std::chrono::steady_clock::time_point start_;
  redlock::tools::Subprocess process_;
  std::string spawn_error_;
};

// Polls `pred` every 10 ms until it holds or `limit` passes.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

inline ToolResult run_tool(const std::filesystem::path& dir, std::vector<std::string> argv,
                           std::vector<std::string> env = {}) {
  return ToolProcess(dir, std::move(argv), std::move(env)).finish();
}

}  // namespace redlock::testing
