// LocalCluster: redis-server processes started with fork/exec, watched through
// waitpid and /proc, and spoken to with hiredis's blocking API (0.14 subset).
#include "redlock/cluster/local_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

namespace redlock::cluster {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kHost = "127.0.0.1";
constexpr const char* kStateFile = "cluster.json";
constexpr const char* kLogFile = "redis.log";
constexpr int kStateVersion = 1;
constexpr milliseconds kCommandTimeout{2000};
// Readiness probes use short timeouts so that a slow start is retried, not
// waited on.
constexpr milliseconds kProbeTimeout{250};
constexpr milliseconds kPollInterval{10};
constexpr milliseconds kReadyPollInterval{20};
// How long a server gets to exit on SIGTERM before SIGKILL, and to disappear
// after SIGKILL.
constexpr milliseconds kTermGrace{3000};
constexpr milliseconds kKillWait{5000};
// How long SIGSTOP/SIGCONT may take to show in /proc.
constexpr milliseconds kSignalWait{2000};
constexpr milliseconds kRebindInterval{100};
constexpr int kMaxPortAttempts = 5;
constexpr std::size_t kLogTailBytes = 2000;

std::string errno_text(int err) { return std::strerror(err); }

// ---------------------------------------------------------------------------
// /proc

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The process state letter from /proc/PID/stat ('R', 'S', 'T', 'Z', ...), or
// '\0' when there is no such process.
char proc_state(int pid) {
  if (pid <= 0) return '\0';
  auto stat = read_file(fs::path("/proc") / std::to_string(pid) / "stat");
  if (!stat) return '\0';
  // "PID (comm) S ...": comm may hold spaces and parentheses, the state
  // follows the last ')'.
  auto close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return '\0';
  return (*stat)[close + 2];
}

bool contains_port(std::string_view text, int port) {
  const std::string needle = std::to_string(port);
  for (auto pos = text.find(needle); pos != std::string_view::npos;
       pos = text.find(needle, pos + 1)) {
    const bool digit_before =
        pos > 0 && std::isdigit(static_cast<unsigned char>(text[pos - 1])) != 0;
    const auto end = pos + needle.size();
    const bool digit_after =
        end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0;
    if (!digit_before && !digit_after) return true;
  }
  return false;
}

// True if `pid` still is a redis-server for `port`. Redis rewrites its command
// line into a title ("redis-server 127.0.0.1:7001"); before it does, the
// command line is ours ("redis-server --port 7001 ..."). Both name the binary
// and the port. A zombie or a dying process has an empty command line.
bool is_server_process(int pid, int port, const std::string& binary) {
  if (pid <= 0) return false;
  auto cmdline = read_file(fs::path("/proc") / std::to_string(pid) / "cmdline");
  if (!cmdline || cmdline->empty()) return false;
  std::replace(cmdline->begin(), cmdline->end(), '\0', ' ');
  const std::string name = fs::path(binary).filename().string();
  const bool names_redis = cmdline->find("redis-server") != std::string::npos ||
                           (!name.empty() && cmdline->find(name) != std::string::npos);
  return names_redis && contains_port(*cmdline, port);
}

// True when `pid` is gone. Our own child counts as gone only once reaped here
// (so that it never lingers as a zombie); another process's once it is absent
// or a zombie left to its parent.
bool reap_if_gone(int pid) {
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return true;
  if (r == 0) return false;  // our child, still running
  const char state = proc_state(pid);
  return state == '\0' || state == 'Z' || state == 'X';
}

// ---------------------------------------------------------------------------
// Logs

std::uintmax_t file_size_or_zero(const fs::path& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// What the server wrote to its log since `offset`, at most kLogTailBytes from
// the end, cut at a line start.
std::string log_tail(const fs::path& path, std::uintmax_t offset) {
  auto text = read_file(path);
  if (!text) return "(no log at " + path.string() + ")";
  std::string tail = offset < text->size() ? text->substr(static_cast<std::size_t>(offset)) : "";
  if (tail.size() > kLogTailBytes) {
    tail.erase(0, tail.size() - kLogTailBytes);
    auto nl = tail.find('\n');
    if (nl != std::string::npos) tail.erase(0, nl + 1);
  }
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  if (tail.empty()) return "(log " + path.string() + " is empty)";
  return tail;
}

// ---------------------------------------------------------------------------
// Ports

tl::expected<std::vector<int>, std::string> pick_free_ports(std::size_t count) {
  // Hold every probe socket until all ports are known so that the OS hands
  // out distinct ones; the servers bind them a moment later (a race another
  // process can win, which start() handles by picking again).
  std::vector<int> fds;
  std::vector<int> ports;
  auto close_all = [&fds] {
    for (int fd : fds) ::close(fd);
  };
  for (std::size_t k = 0; k < count; ++k) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      const int err = errno;
      close_all();
      return tl::make_unexpected("socket: " + errno_text(err));
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    ::inet_pton(AF_INET, kHost, &addr.sin_addr);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      const int err = errno;
      close_all();
      return tl::make_unexpected(std::string("cannot pick a free port on ") + kHost + ": " +
                                 errno_text(err));
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  close_all();
  return ports;
}

// ---------------------------------------------------------------------------
// hiredis

timeval to_timeval(milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
  return tv;
}

// hiredis 0.14 writes with write(2): a server that dies under us would raise
// SIGPIPE and kill the test. Block it on this thread while we talk, and
// swallow one raised meanwhile.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      ::sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{};
        while (::sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  sigset_t pipe_set_{};
  sigset_t old_mask_{};
  bool was_pending_ = false;
};

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// One blocking connection. Declaration order matters: the context is closed
// before SIGPIPE is unblocked.
class Connection {
 public:
  static tl::expected<std::unique_ptr<Connection>, std::string> open(int port,
                                                                     milliseconds timeout) {
    auto conn = std::unique_ptr<Connection>(new Connection(timeout));
    conn->context_.reset(redisConnectWithTimeout(kHost, port, to_timeval(timeout)));
    if (!conn->context_) return tl::make_unexpected(std::string("cannot allocate a connection"));
    if (conn->context_->err != 0) {
      return tl::make_unexpected("connect: " + std::string(conn->context_->errstr));
    }
    if (redisSetTimeout(conn->context_.get(), to_timeval(timeout)) != REDIS_OK) {
      return tl::make_unexpected("set timeout: " + std::string(conn->context_->errstr));
    }
    return conn;
  }

  tl::expected<ReplyPtr, std::string> run(const std::vector<std::string>& argv) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      args.push_back(a.c_str());
      lens.push_back(a.size());
    }
    void* raw =
        redisCommandArgv(context_.get(), static_cast<int>(args.size()), args.data(), lens.data());
    if (raw == nullptr) return tl::make_unexpected(io_error());
    return ReplyPtr(static_cast<redisReply*>(raw));
  }

  // Queues argv and writes it out without reading any reply.
  tl::expected<void, std::string> send(const std::vector<std::string>& argv) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
      args.push_back(a.c_str());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), args.data(),
                               lens.data()) != REDIS_OK) {
      return tl::make_unexpected(io_error());
    }
    int done = 0;
    while (done == 0) {
      if (redisBufferWrite(context_.get(), &done) != REDIS_OK) {
        return tl::make_unexpected(io_error());
      }
    }
    return {};
  }

 private:
  explicit Connection(milliseconds timeout) : timeout_(timeout) {}

  std::string io_error() const {
    const std::string what = context_->errstr;
    // A blocking read that hits SO_RCVTIMEO fails with EAGAIN.
    if (context_->err == REDIS_ERR_IO && what == errno_text(EAGAIN)) {
      return "timed out after " + std::to_string(timeout_.count()) + " ms";
    }
    if (context_->err == REDIS_ERR_EOF) return "connection closed by the server";
    return what;
  }

  SigpipeGuard sigpipe_guard_;
  milliseconds timeout_;
  ContextPtr context_;
};

void render(const redisReply& reply, std::string& out) {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.append(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      out += std::to_string(reply.integer);
      break;
    case REDIS_REPLY_NIL:
      out += "(nil)";
      break;
    case REDIS_REPLY_ARRAY:
      for (std::size_t k = 0; k < reply.elements; ++k) {
        if (k > 0) out += '\n';
        render(*reply.element[k], out);
      }
      break;
    default:
      out += "(reply type " + std::to_string(reply.type) + ")";
      break;
  }
}

std::string reply_text(const redisReply& reply) {
  std::string out;
  render(reply, out);
  return out;
}

// The server's process_id from INFO server, or 0.
int info_process_id(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_STRING) return 0;
  const std::string_view text(reply.str, reply.len);
  constexpr std::string_view kField = "process_id:";
  const auto pos = text.find(kField);
  if (pos == std::string_view::npos) return 0;
  return std::atoi(std::string(text.substr(pos + kField.size(), 16)).c_str());
}

// ---------------------------------------------------------------------------
// Starting a server

// This process's environment with `extra` ("NAME=value") added, an entry of
// `extra` replacing one of the same name.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  const auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) {
      return name_of(x) == name_of(entry);
    });
    if (!replaced) out.emplace_back(entry);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

// Everything the child needs is prepared before fork(): between fork and
// exec only async-signal-safe calls are allowed (the parent may have
// threads).
tl::expected<int, std::string> launch_server(const ClusterOptions& options, std::size_t index,
                                             int port, const fs::path& node_dir) {
  const fs::path log_path = node_dir / kLogFile;
  // clang-format off
  std::vector<std::string> args = {
      options.redis_server,
      "--port", std::to_string(port),
      "--bind", kHost,
      "--dir", node_dir.string(),
      "--save", "",
      "--appendonly", "no",
      "--protected-mode", "no",
      "--daemonize", "no",
      "--logfile", "",  // stdout, which is the log file
      "--enable-debug-command", "yes",  // redis 7 refuses DEBUG without it
  };
  // clang-format on
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  if (index < options.node_args.size()) {
    args.insert(args.end(), options.node_args[index].begin(), options.node_args[index].end());
  }
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_entries;
  std::vector<char*> envp;
  const bool own_env = index < options.node_env.size() && !options.node_env[index].empty();
  if (own_env) {
    env_entries = environment_with(options.node_env[index]);
    for (auto& e : env_entries) envp.push_back(e.data());
    envp.push_back(nullptr);
  }

  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return tl::make_unexpected("cannot open " + log_path.string() + ": " + errno_text(errno));
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    const int err = errno;
    ::close(log_fd);
    return tl::make_unexpected("cannot open /dev/null: " + errno_text(err));
  }
  // The child reports a failed exec through this pipe; a successful exec
  // closes it (O_CLOEXEC) and the parent reads EOF.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(log_fd);
    ::close(null_fd);
    return tl::make_unexpected("pipe: " + errno_text(err));
  }
  const long open_max = std::clamp(::sysconf(_SC_OPEN_MAX), 256L, 65536L);
  const pid_t parent = ::getpid();
  const bool detach = options.detach;

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(log_fd);
    ::close(null_fd);
    ::close(exec_pipe[0]);
    ::close(exec_pipe[1]);
    return tl::make_unexpected("fork: " + errno_text(err));
  }
  if (pid == 0) {
    if (detach) {
      ::setsid();
    } else {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      // The parent may have died before prctl: then nobody would stop us.
      if (::getppid() != parent) ::_exit(127);
    }
    // Give the server default signal dispositions and an empty mask whatever
    // the test process did with them.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Move our fds above 2 first: if the parent had closed a standard
    // descriptor, one of them may sit where dup2 is about to write.
    int log_out = ::fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
    int null_in = ::fcntl(null_fd, F_DUPFD_CLOEXEC, 3);
    int keep = ::fcntl(exec_pipe[1], F_DUPFD_CLOEXEC, 3);
    if (log_out < 0 || null_in < 0 || keep < 0) ::_exit(127);
    ::dup2(null_in, STDIN_FILENO);
    ::dup2(log_out, STDOUT_FILENO);
    ::dup2(log_out, STDERR_FILENO);
    // Sockets the parent opened without CLOEXEC (hiredis does that) must not
    // live on in the server: close everything but the exec pipe.
    const auto ukeep = static_cast<unsigned>(keep);
    const bool closed = (ukeep == 3 || ::close_range(3, ukeep - 1, 0) == 0) &&
                        ::close_range(ukeep + 1, ~0U, 0) == 0;
    if (!closed) {
      for (int fd = 3; fd < open_max; ++fd) {
        if (fd != keep) ::close(fd);
      }
    }
    if (own_env) {
      ::execvpe(argv[0], argv.data(), envp.data());
    } else {
      ::execvp(argv[0], argv.data());
    }
    const int err = errno;
    [[maybe_unused]] auto written = ::write(keep, &err, sizeof err);
    ::_exit(127);
  }

  ::close(log_fd);
  ::close(null_fd);
  ::close(exec_pipe[1]);
  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return tl::make_unexpected("cannot execute '" + options.redis_server +
                               "': " + errno_text(exec_errno));
  }
  return static_cast<int>(pid);
}

enum class Readiness { kReady, kExited, kTimedOut };

struct ReadyResult {
  Readiness readiness = Readiness::kReady;
  std::string detail;  // how it exited, for kExited
};

// Waits until our server `pid` answers on `port`. INFO's process_id must be
// ours: another process's server that holds the port also answers, while ours
// is about to exit with "Address already in use".
ReadyResult wait_ready(int pid, int port, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      std::string how = "exited";
      if (r == pid && WIFEXITED(status)) {
        how = "exited with status " + std::to_string(WEXITSTATUS(status));
      } else if (r == pid && WIFSIGNALED(status)) {
        how = "was killed by signal " + std::to_string(WTERMSIG(status));
      }
      return {Readiness::kExited, how};
    }
    if (auto conn = Connection::open(port, kProbeTimeout)) {
      if (auto reply = (*conn)->run({"INFO", "server"})) {
        if (info_process_id(**reply) == pid) return {Readiness::kReady, {}};
      }
    }
    if (Clock::now() >= deadline) return {Readiness::kTimedOut, {}};
    std::this_thread::sleep_for(kReadyPollInterval);
  }
}

bool port_in_use(const std::string& log) {
  return log.find("Address already in use") != std::string::npos;
}

void sigkill_and_reap(int pid) {
  ::kill(pid, SIGKILL);
  const auto deadline = Clock::now() + kKillWait;
  while (!reap_if_gone(pid) && Clock::now() < deadline) std::this_thread::sleep_for(kPollInterval);
}

tl::expected<fs::path, std::string> make_temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  templ += "/redlock-cluster-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return tl::make_unexpected("mkdtemp " + templ + ": " + errno_text(errno));
  }
  return fs::path(buf.data());
}

}  // namespace

// ---------------------------------------------------------------------------

std::chrono::milliseconds scaled(std::chrono::milliseconds base) {
  double scale = 1.0;
  if (const char* env = std::getenv("REDLOCK_TIME_SCALE"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end != env && *end == '\0' && std::isfinite(v) && v > 0.0) scale = v;
  }
  const double ms = std::ceil(static_cast<double>(base.count()) * scale);
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
}

LocalCluster::LocalCluster(ClusterOptions options, std::filesystem::path dir, bool remove_dir)
    : options_(std::move(options)), dir_(std::move(dir)), remove_dir_(remove_dir) {
  options_.dir = dir_;
}

LocalCluster::~LocalCluster() {
  if (!options_.detach) stop();
}

tl::expected<std::unique_ptr<LocalCluster>, std::string> LocalCluster::start(
    std::size_t n, ClusterOptions options) {
  if (n == 0) return tl::make_unexpected(std::string("a cluster needs at least one node"));
  if (options.base_port < 0 ||
      (options.base_port > 0 && static_cast<std::size_t>(options.base_port) + n - 1 > 65535)) {
    return tl::make_unexpected("base port " + std::to_string(options.base_port) +
                               " leaves no room for " + std::to_string(n) + " nodes");
  }

  fs::path dir = options.dir;
  bool remove_dir = false;
  std::error_code ec;
  if (dir.empty()) {
    auto made = make_temp_dir();
    if (!made) return tl::make_unexpected(made.error());
    dir = *made;
    remove_dir = true;
  } else {
    dir = fs::absolute(dir, ec).lexically_normal();
    if (ec)
      return tl::make_unexpected("bad directory " + options.dir.string() + ": " + ec.message());
    if (fs::exists(dir / kStateFile, ec)) {
      if (auto old = attach(dir)) {
        for (std::size_t i = 0; i < (*old)->size(); ++i) {
          if ((*old)->info(i).running) {
            return tl::make_unexpected("a cluster is already running in " + dir.string() + " (" +
                                       (*old)->node_name(i) + "); stop it first");
          }
        }
      }
    }
  }

  auto cluster = std::unique_ptr<LocalCluster>(new LocalCluster(options, dir, remove_dir));
  // From here on, any failure stops what was started (stop() also removes a
  // temporary directory).
  auto fail = [&cluster](std::string message) {
    cluster->stop();
    return tl::make_unexpected(std::move(message));
  };

  std::vector<int> ports;
  if (options.base_port > 0) {
    for (std::size_t i = 0; i < n; ++i) ports.push_back(options.base_port + static_cast<int>(i));
  } else {
    auto picked = pick_free_ports(n);
    if (!picked) return fail(picked.error());
    ports = std::move(*picked);
  }
  cluster->nodes_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& node = cluster->nodes_[i];
    node.port = ports[i];
    node.dir = dir / ("node" + std::to_string(i + 1));
    fs::create_directories(node.dir, ec);
    if (ec) return fail("cannot create " + node.dir.string() + ": " + ec.message());
  }

  // Launch every server first, then wait for each: they start in parallel.
  std::vector<std::uintmax_t> log_offsets(n);
  std::vector<Clock::time_point> deadlines(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& node = cluster->nodes_[i];
    log_offsets[i] = file_size_or_zero(node.dir / kLogFile);
    deadlines[i] = Clock::now() + options.start_timeout;
    auto pid = launch_server(cluster->options_, i, node.port, node.dir);
    if (!pid) return fail(cluster->node_name(i) + ": " + pid.error());
    node.pid = *pid;
    node.is_child = true;
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto& node = cluster->nodes_[i];
    for (int attempt = 1;; ++attempt) {
      const auto ready = wait_ready(node.pid, node.port, deadlines[i]);
      if (ready.readiness == Readiness::kReady) break;
      const fs::path log = node.dir / kLogFile;
      const std::string tail = log_tail(log, log_offsets[i]);
      if (ready.readiness == Readiness::kTimedOut) {
        return fail(cluster->node_name(i) + ": no answer to PING within " +
                    std::to_string(options.start_timeout.count()) + " ms; log " + log.string() +
                    ":\n" + tail);
      }
      node.pid = 0;
      if (options.base_port == 0 && port_in_use(tail) && attempt < kMaxPortAttempts) {
        auto picked = pick_free_ports(1);
        if (!picked) return fail(picked.error());
        node.port = picked->front();
        log_offsets[i] = file_size_or_zero(log);
        deadlines[i] = Clock::now() + options.start_timeout;
        auto pid = launch_server(cluster->options_, i, node.port, node.dir);
        if (!pid) return fail(cluster->node_name(i) + ": " + pid.error());
        node.pid = *pid;
        continue;
      }
      return fail(cluster->node_name(i) + ": redis-server " + ready.detail +
                  " during start (attempt " + std::to_string(attempt) + "); log " + log.string() +
                  ":\n" + tail);
    }
  }
  cluster->save_state();
  return cluster;
}

tl::expected<std::unique_ptr<LocalCluster>, std::string> LocalCluster::attach(
    const std::filesystem::path& dir) {
  std::error_code ec;
  const fs::path abs = fs::absolute(dir, ec).lexically_normal();
  if (ec) return tl::make_unexpected("bad directory " + dir.string() + ": " + ec.message());
  const fs::path state_path = abs / kStateFile;
  auto text = read_file(state_path);
  if (!text) {
    return tl::make_unexpected("no cluster in " + abs.string() + ": cannot read " +
                               state_path.string());
  }
  ClusterOptions options;
  options.dir = abs;
  options.detach = true;
  std::vector<Node> nodes;
  try {
    const auto json = nlohmann::json::parse(*text);
    if (json.at("version").get<int>() != kStateVersion) {
      return tl::make_unexpected(state_path.string() + ": unsupported version " +
                                 json.at("version").dump());
    }
    options.redis_server = json.at("redis_server").get<std::string>();
    options.extra_args = json.at("extra_args").get<std::vector<std::string>>();
    if (json.contains("node_env")) {
      options.node_env = json.at("node_env").get<std::vector<std::vector<std::string>>>();
    }
    if (json.contains("node_args")) {
      options.node_args = json.at("node_args").get<std::vector<std::vector<std::string>>>();
    }
    for (const auto& entry : json.at("nodes")) {
      Node node;
      node.port = entry.at("port").get<int>();
      node.pid = entry.at("pid").get<int>();
      node.dir = entry.at("dir").get<std::string>();
      nodes.push_back(std::move(node));
    }
  } catch (const std::exception& e) {
    return tl::make_unexpected(state_path.string() + ": " + e.what());
  }
  if (nodes.empty()) return tl::make_unexpected(state_path.string() + ": no nodes");
  for (auto& node : nodes) {
    // A pid that is no longer our server's is forgotten, never signalled.
    if (node.pid != 0 && !is_server_process(node.pid, node.port, options.redis_server)) {
      node.pid = 0;
    }
  }
  auto cluster = std::unique_ptr<LocalCluster>(new LocalCluster(options, abs, false));
  cluster->nodes_ = std::move(nodes);
  return cluster;
}

void LocalCluster::stop() noexcept {
  try {
    std::vector<std::size_t> signalled;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      auto& node = nodes_[i];
      if (node.pid == 0) continue;
      if ((node.is_child && reap_if_gone(node.pid)) ||
          !is_server_process(node.pid, node.port, options_.redis_server)) {
        node.pid = 0;
        continue;
      }
      // A stopped process would not act on SIGTERM before SIGCONT.
      ::kill(node.pid, SIGCONT);
      ::kill(node.pid, SIGTERM);
      signalled.push_back(i);
    }
    auto wait_all = [&](milliseconds timeout) {
      const auto deadline = Clock::now() + timeout;
      for (;;) {
        bool all_gone = true;
        for (auto i : signalled) {
          if (nodes_[i].pid != 0 && reap_if_gone(nodes_[i].pid)) nodes_[i].pid = 0;
          if (nodes_[i].pid != 0) all_gone = false;
        }
        if (all_gone || Clock::now() >= deadline) return;
        std::this_thread::sleep_for(kPollInterval);
      }
    };
    wait_all(kTermGrace);
    for (auto i : signalled) {
      auto& node = nodes_[i];
      if (node.pid == 0) continue;
      // Our unreaped child cannot have been replaced; another process's pid
      // is checked again.
      if (node.is_child || is_server_process(node.pid, node.port, options_.redis_server)) {
        ::kill(node.pid, SIGKILL);
      }
    }
    wait_all(kKillWait);
    for (auto& node : nodes_) node.pid = 0;
    save_state();
    if (remove_dir_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      remove_dir_ = false;
    }
  } catch (...) {
    // stop() runs from destructors: never let anything out.
  }
}

std::size_t LocalCluster::size() const { return nodes_.size(); }

int LocalCluster::port(std::size_t i) const { return nodes_.at(i).port; }

std::string LocalCluster::address(std::size_t i) const {
  return std::string(kHost) + ":" + std::to_string(port(i));
}

std::vector<std::string> LocalCluster::addresses() const {
  std::vector<std::string> out;
  out.reserve(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) out.push_back(address(i));
  return out;
}

const std::filesystem::path& LocalCluster::dir() const { return dir_; }

bool LocalCluster::is_alive(const Node& node) const {
  return node.pid != 0 && is_server_process(node.pid, node.port, options_.redis_server);
}

NodeInfo LocalCluster::info(std::size_t i) const {
  const Node& node = nodes_.at(i);
  NodeInfo out{};
  out.index = static_cast<int>(i);
  out.port = node.port;
  out.dir = node.dir;
  out.running = is_alive(node);
  out.pid = out.running ? node.pid : 0;
  out.paused = out.running && proc_state(node.pid) == 'T';
  return out;
}

std::string LocalCluster::node_name(std::size_t i) const {
  return "node " + std::to_string(i + 1) + " (" + address(i) + ")";
}

tl::expected<void, std::string> LocalCluster::check_index(std::size_t i) const {
  if (i >= nodes_.size()) {
    return tl::make_unexpected("no node with index " + std::to_string(i) + ": the cluster has " +
                               std::to_string(nodes_.size()) + " nodes (indices from 0)");
  }
  return {};
}

tl::expected<void, std::string> LocalCluster::pause(std::size_t i) {
  if (auto ok = check_index(i); !ok) return ok;
  const Node& node = nodes_[i];
  if (!is_alive(node)) return tl::make_unexpected(node_name(i) + " is not running");
  if (::kill(node.pid, SIGSTOP) != 0) {
    return tl::make_unexpected(node_name(i) + ": SIGSTOP: " + errno_text(errno));
  }
  const auto deadline = Clock::now() + kSignalWait;
  while (proc_state(node.pid) != 'T') {
    if (Clock::now() >= deadline) {
      return tl::make_unexpected(node_name(i) + ": not stopped " +
                                 std::to_string(kSignalWait.count()) + " ms after SIGSTOP");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return {};
}

tl::expected<void, std::string> LocalCluster::resume(std::size_t i) {
  if (auto ok = check_index(i); !ok) return ok;
  const Node& node = nodes_[i];
  if (!is_alive(node)) return tl::make_unexpected(node_name(i) + " is not running");
  if (::kill(node.pid, SIGCONT) != 0) {
    return tl::make_unexpected(node_name(i) + ": SIGCONT: " + errno_text(errno));
  }
  const auto deadline = Clock::now() + kSignalWait;
  while (proc_state(node.pid) == 'T') {
    if (Clock::now() >= deadline) {
      return tl::make_unexpected(node_name(i) + ": still stopped " +
                                 std::to_string(kSignalWait.count()) + " ms after SIGCONT");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return {};
}

tl::expected<void, std::string> LocalCluster::wait_gone(std::size_t i, milliseconds timeout) {
  Node& node = nodes_[i];
  const auto deadline = Clock::now() + timeout;
  while (!reap_if_gone(node.pid)) {
    if (Clock::now() >= deadline) {
      return tl::make_unexpected(node_name(i) + ": pid " + std::to_string(node.pid) +
                                 " still there " + std::to_string(timeout.count()) +
                                 " ms after SIGKILL");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  node.pid = 0;
  return {};
}

tl::expected<void, std::string> LocalCluster::kill(std::size_t i) {
  if (auto ok = check_index(i); !ok) return ok;
  Node& node = nodes_[i];
  if (node.pid == 0) return {};
  if ((node.is_child && reap_if_gone(node.pid)) || !is_alive(node)) {
    node.pid = 0;
    save_state();
    return {};
  }
  ::kill(node.pid, SIGCONT);
  if (::kill(node.pid, SIGKILL) != 0) {
    return tl::make_unexpected(node_name(i) + ": SIGKILL: " + errno_text(errno));
  }
  auto gone = wait_gone(i, kKillWait);
  save_state();
  return gone;
}

tl::expected<void, std::string> LocalCluster::restart(std::size_t i) {
  if (auto killed = kill(i); !killed) return killed;
  Node& node = nodes_[i];
  std::error_code ec;
  fs::create_directories(node.dir, ec);
  const fs::path log = node.dir / kLogFile;
  const auto deadline = Clock::now() + options_.start_timeout;
  for (int attempt = 1;; ++attempt) {
    const auto offset = file_size_or_zero(log);
    auto pid = launch_server(options_, i, node.port, node.dir);
    if (!pid) return tl::make_unexpected(node_name(i) + ": " + pid.error());
    node.pid = *pid;
    node.is_child = true;
    save_state();
    const auto ready = wait_ready(node.pid, node.port, deadline);
    if (ready.readiness == Readiness::kReady) return {};
    const std::string tail = log_tail(log, offset);
    if (ready.readiness == Readiness::kTimedOut) {
      sigkill_and_reap(node.pid);
      node.pid = 0;
      save_state();
      return tl::make_unexpected(node_name(i) + ": no answer to PING within " +
                                 std::to_string(options_.start_timeout.count()) +
                                 " ms after restart; log " + log.string() + ":\n" + tail);
    }
    node.pid = 0;
    save_state();
    // The old server's port may still be held for a moment: retry on the
    // same port until the deadline.
    if (port_in_use(tail) && Clock::now() + kRebindInterval < deadline) {
      std::this_thread::sleep_for(kRebindInterval);
      continue;
    }
    return tl::make_unexpected(node_name(i) + ": redis-server " + ready.detail +
                               " during restart (attempt " + std::to_string(attempt) + "); log " +
                               log.string() + ":\n" + tail);
  }
}

void LocalCluster::save_state() const noexcept {
  if (!options_.detach) return;
  try {
    nlohmann::json nodes = nlohmann::json::array();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      nodes.push_back({{"index", i},
                       {"port", nodes_[i].port},
                       {"pid", nodes_[i].pid},
                       {"dir", nodes_[i].dir.string()}});
    }
    const nlohmann::json state = {{"version", kStateVersion},
                                  {"redis_server", options_.redis_server},
                                  {"extra_args", options_.extra_args},
                                  {"node_env", options_.node_env},
                                  {"node_args", options_.node_args},
                                  {"nodes", nodes}};
    // Write then rename, so that a reader never sees half a file.
    const fs::path tmp = dir_ / (std::string(kStateFile) + ".tmp");
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << state.dump(2) << '\n';
      if (!out) return;
    }
    std::error_code ec;
    fs::rename(tmp, dir_ / kStateFile, ec);
  } catch (...) {
    // Best effort: the servers run whether or not the file could be written.
  }
}

tl::expected<std::string, std::string> LocalCluster::command(std::size_t i,
                                                             const std::vector<std::string>& argv) {
  if (auto ok = check_index(i); !ok) return tl::make_unexpected(ok.error());
  if (argv.empty()) return tl::make_unexpected(std::string("empty command"));
  auto conn = Connection::open(port(i), kCommandTimeout);
  if (!conn) return tl::make_unexpected(node_name(i) + ": " + conn.error());
  auto reply = (*conn)->run(argv);
  if (!reply) return tl::make_unexpected(node_name(i) + ": " + argv.front() + ": " + reply.error());
  if ((*reply)->type == REDIS_REPLY_ERROR) return tl::make_unexpected(reply_text(**reply));
  return reply_text(**reply);
}

tl::expected<long long, std::string> LocalCluster::dbsize(std::size_t i) {
  auto text = command(i, {"DBSIZE"});
  if (!text) return tl::make_unexpected(text.error());
  try {
    return std::stoll(*text);
  } catch (const std::exception&) {
    return tl::make_unexpected(node_name(i) + ": DBSIZE: unexpected reply '" + *text + "'");
  }
}

tl::expected<std::optional<std::string>, std::string> LocalCluster::get(std::size_t i,
                                                                        const std::string& key) {
  if (auto ok = check_index(i); !ok) return tl::make_unexpected(ok.error());
  auto conn = Connection::open(port(i), kCommandTimeout);
  if (!conn) return tl::make_unexpected(node_name(i) + ": " + conn.error());
  auto reply = (*conn)->run({"GET", key});
  if (!reply) return tl::make_unexpected(node_name(i) + ": GET: " + reply.error());
  switch ((*reply)->type) {
    case REDIS_REPLY_NIL:
      return std::optional<std::string>();
    case REDIS_REPLY_STRING:
      return std::optional<std::string>(std::string((*reply)->str, (*reply)->len));
    default:
      return tl::make_unexpected(reply_text(**reply));
  }
}

tl::expected<long long, std::string> LocalCluster::count_keys(const std::string& pattern) {
  long long total = 0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const auto node = info(i);
    if (!node.running || node.paused) continue;
    auto conn = Connection::open(node.port, kCommandTimeout);
    if (!conn) return tl::make_unexpected(node_name(i) + ": " + conn.error());
    std::string cursor = "0";
    do {
      auto reply = (*conn)->run({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      if (!reply) return tl::make_unexpected(node_name(i) + ": SCAN: " + reply.error());
      const redisReply& r = **reply;
      if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 ||
          r.element[0]->type != REDIS_REPLY_STRING || r.element[1]->type != REDIS_REPLY_ARRAY) {
        return tl::make_unexpected(node_name(i) + ": SCAN: unexpected reply " + reply_text(r));
      }
      cursor.assign(r.element[0]->str, r.element[0]->len);
      total += static_cast<long long>(r.element[1]->elements);
    } while (cursor != "0");
  }
  return total;
}

tl::expected<void, std::string> LocalCluster::debug_sleep(std::size_t i, double seconds) {
  if (auto ok = check_index(i); !ok) return ok;
  if (!std::isfinite(seconds) || seconds < 0) {
    return tl::make_unexpected("debug_sleep: bad duration " + std::to_string(seconds));
  }
  char arg[64];
  std::snprintf(arg, sizeof arg, "%.6f", seconds);
  auto conn = Connection::open(port(i), kCommandTimeout);
  if (!conn) return tl::make_unexpected(node_name(i) + ": " + conn.error());
  // Closing the connection right after the write is fine: the server reads
  // the command before it sees the end of the stream, runs it, and drops the
  // reply.
  if (auto sent = (*conn)->send({"DEBUG", "SLEEP", arg}); !sent) {
    return tl::make_unexpected(node_name(i) + ": DEBUG SLEEP: " + sent.error());
  }
  return {};
}

}  // namespace redlock::cluster
