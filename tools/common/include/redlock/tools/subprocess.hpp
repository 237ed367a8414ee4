// redlock/tools/subprocess.hpp: Subprocess, one child process started with
// fork/exec (never through a shell) and reaped with waitpid.
//
// The child starts with every signal at its default disposition and an empty
// signal mask, whatever the parent did with them, so a parent that blocks
// signals to read them from a signalfd does not pass that on.
//
// Threading: a Subprocess is not thread-safe; use it from one thread. With
// SpawnOptions::parent_death_signal set, the kernel signals the child when the
// *thread* that spawned it exits: spawn from a thread that outlives the child
// (a main thread does).
//
// Ownership: the destructor of a child still running sends it SIGKILL and
// reaps it; call stop() first for a gentle end. Only this process's own
// children are ever signalled.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <tl/expected.hpp>
#include <vector>

namespace redlock::tools {

struct SpawnOptions {
  // argv[0] is the program: a path, or a name looked up in PATH.
  std::vector<std::string> argv;
  // Changes to the parent's environment: "NAME=value" sets NAME, a bare
  // "NAME" removes it.
  std::vector<std::string> env;
  // Where the child's stdout and stderr go, appended (the same path for both
  // is fine). Empty: inherited from the parent. stdin is always /dev/null
  // unless inherit_stdin is set.
  std::filesystem::path stdout_path;
  std::filesystem::path stderr_path;
  bool inherit_stdin = false;
  // Signal the child gets when the spawning thread dies (PR_SET_PDEATHSIG);
  // 0: none.
  int parent_death_signal = SIGKILL;
  // Run the child in a new session (setsid), e.g. so that a terminal's ^C
  // does not reach it.
  bool new_session = false;
  // Run the child as this user and group (the parent must be root).
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // The child's working directory; empty: the parent's.
  std::filesystem::path cwd;
  // Close every descriptor above 2 in the child, also those the parent
  // opened without O_CLOEXEC (hiredis's sockets, for one): a long-lived child
  // such as a server must not keep the parent's connections open.
  bool close_other_fds = false;
};

struct SpawnError {
  std::string message;
  // errno of the step that failed: exec's ENOENT for a program that does not
  // exist, EACCES for one that cannot be run, ...; 0 if not applicable.
  int error_number = 0;
};

class Subprocess {
 public:
  // Forks and execs; returns once exec succeeded (or failed: the error then
  // says why, and nothing is left running).
  [[nodiscard]] static tl::expected<Subprocess, SpawnError> spawn(const SpawnOptions& options);

  Subprocess() = default;
  ~Subprocess();
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // 0 once reaped (or for an empty object).
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  // The wait status (as waitpid reports it) once the child has been reaped.
  [[nodiscard]] std::optional<int> status() const noexcept { return status_; }

  // Sends `sig` to the child if it still runs. False if it has been reaped.
  bool signal(int sig) noexcept;
  // Reaps the child if it has exited; its wait status, or nullopt if it runs.
  std::optional<int> poll() noexcept;
  // Waits up to `timeout` for the child to exit; its wait status, or nullopt.
  std::optional<int> wait_for(std::chrono::milliseconds timeout) noexcept;
  // Waits for the child however long it takes.
  int wait() noexcept;
  // `sig`, then SIGKILL if it still runs after `grace`; the wait status.
  int stop(int sig = SIGTERM,
           std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) noexcept;
  // Gives up ownership: returns the pid (0 if none) and leaves the child
  // running, unsignalled and unreaped. The caller now reaps it (waitpid), or
  // lets it outlive this process.
  [[nodiscard]] pid_t release() noexcept;

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = 0;
  std::optional<int> status_;
};

// A wait status as a shell reports it: the exit code, or 128 + the signal
// number for a child killed by a signal.
[[nodiscard]] int exit_code(int wait_status) noexcept;

// A signal by name ("TERM", "SIGTERM", "term") or number ("15"); nullopt for
// anything else.
[[nodiscard]] std::optional<int> parse_signal(std::string_view text);
// "TERM" for SIGTERM; the number as text for signals without a known name.
[[nodiscard]] std::string signal_name(int sig);

// The path exec would run for `program`: itself if it contains a '/',
// otherwise the first executable match in PATH. Error: not found.
[[nodiscard]] tl::expected<std::filesystem::path, SpawnError> find_program(
    const std::string& program);

}  // namespace redlock::tools
