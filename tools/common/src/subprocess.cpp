// Subprocess: everything the child needs is prepared before fork(); between
// fork and exec only async-signal-safe calls are made (the parent may have
// threads, e.g. a redlock Client's loop thread).
#include "redlock/tools/subprocess.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>

extern char** environ;

namespace redlock::tools {
namespace {

using Clock = std::chrono::steady_clock;

struct SignalName {
  int number;
  const char* name;
};

constexpr SignalName kSignals[] = {
    {SIGHUP, "HUP"},       {SIGINT, "INT"},   {SIGQUIT, "QUIT"},   {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"},     {SIGABRT, "ABRT"}, {SIGBUS, "BUS"},     {SIGFPE, "FPE"},
    {SIGKILL, "KILL"},     {SIGUSR1, "USR1"}, {SIGSEGV, "SEGV"},   {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"},     {SIGALRM, "ALRM"}, {SIGTERM, "TERM"},   {SIGCHLD, "CHLD"},
    {SIGCONT, "CONT"},     {SIGSTOP, "STOP"}, {SIGTSTP, "TSTP"},   {SIGTTIN, "TTIN"},
    {SIGTTOU, "TTOU"},     {SIGURG, "URG"},   {SIGXCPU, "XCPU"},   {SIGXFSZ, "XFSZ"},
    {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"}, {SIGWINCH, "WINCH"}, {SIGSYS, "SYS"},
};

// What the child writes to the exec pipe when a step fails: which step and
// errno. A successful exec closes the pipe (O_CLOEXEC) and the parent reads
// nothing.
struct ChildFailure {
  int stage;
  int error_number;
};

enum Stage : int { kSetsid, kSetgroups, kSetgid, kSetuid, kPdeathsig, kRedirect, kChdir, kExec };

const char* stage_name(int stage) {
  switch (stage) {
    case kSetsid:
      return "setsid";
    case kSetgroups:
      return "setgroups";
    case kSetgid:
      return "setgid";
    case kSetuid:
      return "setuid";
    case kPdeathsig:
      return "prctl(PR_SET_PDEATHSIG)";
    case kRedirect:
      return "redirecting output";
    case kChdir:
      return "chdir";
    default:
      return "exec";
  }
}

[[noreturn]] void child_fail(int fd, int stage) {
  const ChildFailure failure{stage, errno};
  // Nothing to do if this write fails: the parent then sees the child exit.
  [[maybe_unused]] const auto written = ::write(fd, &failure, sizeof failure);
  ::_exit(127);
}

int open_output(const std::filesystem::path& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

std::string env_name(const std::string& entry) { return entry.substr(0, entry.find('=')); }

// In the child, between fork and exec: closes every descriptor above 2 but
// `keep`. close_range where the kernel has it, else one by one.
void close_all_but(int keep, long open_max) {
  const auto ukeep = static_cast<unsigned>(keep);
  const bool closed =
      (ukeep == 3 || ::close_range(3, ukeep - 1, 0) == 0) && ::close_range(ukeep + 1, ~0U, 0) == 0;
  if (closed) return;
  for (int fd = 3; fd < open_max; ++fd) {
    if (fd != keep) ::close(fd);
  }
}

}  // namespace

tl::expected<std::filesystem::path, SpawnError> find_program(const std::string& program) {
  if (program.empty()) return tl::make_unexpected(SpawnError{"empty program name", ENOENT});
  if (program.find('/') != std::string::npos) return std::filesystem::path(program);
  const char* path_env = std::getenv("PATH");
  const std::string_view path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  int found_error = ENOENT;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto colon = path.find(':', start);
    const std::string_view entry =
        path.substr(start, colon == std::string_view::npos ? colon : colon - start);
    // An empty entry means the current directory.
    const std::filesystem::path dir =
        entry.empty() ? std::filesystem::path(".") : std::filesystem::path(entry);
    const std::filesystem::path candidate = dir / program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      found_error = EACCES;
    }
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return tl::make_unexpected(SpawnError{
      program + ": " + (found_error == EACCES ? "permission denied" : "command not found"),
      found_error});
}

tl::expected<Subprocess, SpawnError> Subprocess::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return tl::make_unexpected(SpawnError{"empty command line", EINVAL});
  auto program = find_program(options.argv.front());
  if (!program) return tl::make_unexpected(program.error());
  const std::string path = program->string();

  std::vector<std::string> args = options.argv;
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = env_name(entry);
    const bool replaced = std::any_of(options.env.begin(), options.env.end(),
                                      [&](const std::string& x) { return env_name(x) == name; });
    if (!replaced) env.push_back(entry);
  }
  for (const auto& change : options.env) {
    if (change.find('=') != std::string::npos) env.push_back(change);
  }
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  // File descriptors the child dup2()s into 0, 1 and 2; -1: keep the parent's.
  int in_fd = -1;
  int out_fd = -1;
  int err_fd = -1;
  auto close_fds = [&] {
    for (int fd : {in_fd, out_fd, err_fd}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if (!options.inherit_stdin) {
    in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) {
      return tl::make_unexpected(
          SpawnError{std::string("cannot open /dev/null: ") + std::strerror(errno), errno});
    }
  }
  for (auto [path_ref, fd_ref] :
       {std::pair{&options.stdout_path, &out_fd}, std::pair{&options.stderr_path, &err_fd}}) {
    if (path_ref->empty()) continue;
    *fd_ref = open_output(*path_ref);
    if (*fd_ref < 0) {
      const int err = errno;
      close_fds();
      return tl::make_unexpected(
          SpawnError{"cannot open " + path_ref->string() + ": " + std::strerror(err), err});
    }
  }
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    close_fds();
    return tl::make_unexpected(SpawnError{std::string("pipe: ") + std::strerror(err), err});
  }
  const std::string cwd = options.cwd.string();
  const pid_t parent = ::getpid();
  const int death_signal = options.parent_death_signal;
  const bool close_others = options.close_other_fds;
  const long open_max = std::clamp(::sysconf(_SC_OPEN_MAX), 256L, 65536L);

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    close_fds();
    ::close(exec_pipe[0]);
    ::close(exec_pipe[1]);
    return tl::make_unexpected(SpawnError{std::string("fork: ") + std::strerror(err), err});
  }
  if (pid == 0) {
    if (options.new_session && ::setsid() < 0) child_fail(exec_pipe[1], kSetsid);
    if (options.gid) {
      if (::setgroups(0, nullptr) != 0) child_fail(exec_pipe[1], kSetgroups);
      if (::setgid(*options.gid) != 0) child_fail(exec_pipe[1], kSetgid);
    }
    if (options.uid && ::setuid(*options.uid) != 0) child_fail(exec_pipe[1], kSetuid);
    // After setuid: a change of credentials clears the parent-death signal.
    if (death_signal != 0) {
      if (::prctl(PR_SET_PDEATHSIG, death_signal) != 0) child_fail(exec_pipe[1], kPdeathsig);
      // The parent may have died before prctl: then nobody would signal us.
      if (::getppid() != parent) ::_exit(127);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Move our descriptors above 2 first: if the parent had closed a
    // standard descriptor, one of them may sit where dup2 is about to write.
    int report = exec_pipe[1];
    for (int* fd : {&in_fd, &out_fd, &err_fd, &report}) {
      if (*fd >= 0 && *fd <= STDERR_FILENO) {
        const int moved = ::fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        if (moved < 0) child_fail(report, kRedirect);
        *fd = moved;
      }
    }
    if (in_fd >= 0 && ::dup2(in_fd, STDIN_FILENO) < 0) child_fail(report, kRedirect);
    if (out_fd >= 0 && ::dup2(out_fd, STDOUT_FILENO) < 0) child_fail(report, kRedirect);
    if (err_fd >= 0 && ::dup2(err_fd, STDERR_FILENO) < 0) child_fail(report, kRedirect);
    if (close_others) close_all_but(report, open_max);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) child_fail(report, kChdir);
    ::execve(path.c_str(), argv.data(), envp.data());
    child_fail(report, kExec);
  }
  close_fds();
  ::close(exec_pipe[1]);
  ChildFailure failure{};
  ssize_t n = 0;
  do {
    n = ::read(exec_pipe[0], &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string what = stage_name(failure.stage);
    if (failure.stage == kExec) what += " " + path;
    return tl::make_unexpected(
        SpawnError{what + ": " + std::strerror(failure.error_number), failure.error_number});
  }
  return Subprocess(pid);
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    (void)wait();
  }
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, 0)), status_(std::exchange(other.status_, std::nullopt)) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      (void)wait();
    }
    pid_ = std::exchange(other.pid_, 0);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

pid_t Subprocess::release() noexcept { return std::exchange(pid_, 0); }

bool Subprocess::signal(int sig) noexcept {
  if (pid_ <= 0) return false;
  // An exited child that is not reaped yet is a zombie: kill() succeeds and
  // does nothing, and the pid cannot have been reused.
  return ::kill(pid_, sig) == 0;
}

std::optional<int> Subprocess::poll() noexcept {
  if (pid_ <= 0) return status_;
  int status = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    pid_ = 0;
    status_ = status;
  } else if (r < 0) {
    // Not our child any more (someone else reaped it): nothing to wait for.
    pid_ = 0;
    status_ = 0;
  }
  return status_;
}

std::optional<int> Subprocess::wait_for(std::chrono::milliseconds timeout) noexcept {
  const auto deadline = Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (auto done = poll()) return done;
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

int Subprocess::wait() noexcept {
  if (pid_ > 0) {
    int status = 0;
    pid_t r = 0;
    do {
      r = ::waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    status_ = r == pid_ ? status : 0;
    pid_ = 0;
  }
  return status_.value_or(0);
}

int Subprocess::stop(int sig, std::chrono::milliseconds grace) noexcept {
  if (pid_ <= 0) return status_.value_or(0);
  signal(SIGCONT);  // a stopped process would not act on sig
  signal(sig);
  if (auto done = wait_for(grace)) return *done;
  signal(SIGKILL);
  return wait();
}

int exit_code(int wait_status) noexcept {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

std::optional<int> parse_signal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
    if (text.size() > 3) return std::nullopt;
    const int n = std::stoi(std::string(text));
    if (n >= 1 && n < NSIG) return n;
    return std::nullopt;
  }
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string_view name = upper;
  if (name.substr(0, 3) == "SIG") name.remove_prefix(3);
  for (const auto& s : kSignals) {
    if (name == s.name) return s.number;
  }
  return std::nullopt;
}

std::string signal_name(int sig) {
  for (const auto& s : kSignals) {
    if (s.number == sig) return s.name;
  }
  return std::to_string(sig);
}

}  // namespace redlock::tools
