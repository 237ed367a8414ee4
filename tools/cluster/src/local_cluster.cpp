// LocalCluster: redis-server processes started with tools/common's
// Subprocess, watched through waitpid and /proc, and spoken to with its
// blocking RedisConnection.
#include "redlock/cluster/local_cluster.hpp"

#include <signal.h>
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

#include "redlock/cluster/free_ports.hpp"
#include "redlock/tools/redis_connection.hpp"
#include "redlock/tools/subprocess.hpp"

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

// free_tcp_ports() or an error; the servers bind them a moment later (a race
// another process can win, which start() handles by picking again).
tl::expected<std::vector<int>, std::string> pick_free_ports(std::size_t count) {
  auto ports = free_tcp_ports(count);
  if (ports.size() < count) {
    return tl::make_unexpected("cannot find " + std::to_string(count) + " free ports on " + kHost +
                               " between " + std::to_string(kFirstFreePort) + " and " +
                               std::to_string(kEndFreePort - 1));
  }
  return ports;
}

// ---------------------------------------------------------------------------
// Starting a server and talking to it

// The server's process_id from INFO server, or 0.
int info_process_id(const tools::RedisReply& reply) {
  if (reply.type != tools::RedisReply::Type::kString) return 0;
  const auto field = tools::info_field(reply.str, "process_id");
  return field ? std::atoi(field->c_str()) : 0;
}

tl::expected<tools::RedisConnection, std::string> connect_to(int port, milliseconds timeout) {
  return tools::RedisConnection::open(kHost, port, timeout);
}

// Whether node `index`'s own arguments ask for a second port.
bool wants_extra_port(const ClusterOptions& options, std::size_t index) {
  if (index >= options.node_args.size()) return false;
  const auto& args = options.node_args[index];
  return std::find(args.begin(), args.end(), ClusterOptions::kExtraPort) != args.end();
}

// Starts node `index`'s server on `port` (and `extra_port` in place of
// kExtraPort), its output appended to its log; returns its pid once exec
// succeeded. The caller reaps it.
tl::expected<int, std::string> launch_server(const ClusterOptions& options, std::size_t index,
                                             int port, int extra_port, const fs::path& node_dir) {
  tools::SpawnOptions spawn;
  // clang-format off
  spawn.argv = {
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
  spawn.argv.insert(spawn.argv.end(), options.extra_args.begin(), options.extra_args.end());
  if (index < options.node_args.size()) {
    for (const auto& arg : options.node_args[index]) {
      spawn.argv.push_back(arg == ClusterOptions::kExtraPort ? std::to_string(extra_port) : arg);
    }
  }
  if (index < options.node_env.size()) spawn.env = options.node_env[index];
  spawn.stdout_path = node_dir / kLogFile;
  spawn.stderr_path = spawn.stdout_path;
  // Connections this process holds (to other nodes, say) must not live on in
  // the server.
  spawn.close_other_fds = true;
  if (options.detach) {
    spawn.new_session = true;
    spawn.parent_death_signal = 0;
  } else {
    // A crashed test leaves nothing behind.
    spawn.parent_death_signal = SIGKILL;
  }
  auto child = tools::Subprocess::spawn(spawn);
  if (!child) {
    return tl::make_unexpected("cannot execute '" + options.redis_server +
                               "': " + child.error().message);
  }
  return static_cast<int>(child->release());
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
    if (auto conn = connect_to(port, kProbeTimeout)) {
      if (auto reply = conn->run({"INFO", "server"})) {
        if (info_process_id(*reply) == pid) return {Readiness::kReady, {}};
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

  std::size_t extra_count = 0;
  for (std::size_t i = 0; i < n; ++i) extra_count += wants_extra_port(options, i) ? 1U : 0U;
  std::vector<int> ports;
  if (options.base_port > 0) {
    for (std::size_t i = 0; i < n; ++i) ports.push_back(options.base_port + static_cast<int>(i));
  }
  // One pick for all, so that every port differs from every other.
  auto picked = pick_free_ports(n - ports.size() + extra_count);
  if (!picked) return fail(picked.error());
  ports.insert(ports.end(), picked->begin(), picked->end());
  cluster->nodes_.resize(n);
  // The directories this call makes, parents first: a start refused before
  // any server ran leaves none of them behind.
  std::vector<fs::path> made;
  if (!remove_dir) {
    for (fs::path p = dir; !fs::exists(p, ec) && p != p.parent_path(); p = p.parent_path()) {
      made.insert(made.begin(), p);
    }
  }
  std::size_t next_extra = n;
  for (std::size_t i = 0; i < n; ++i) {
    auto& node = cluster->nodes_[i];
    node.port = ports[i];
    if (wants_extra_port(options, i)) node.extra_port = ports[next_extra++];
    node.dir = dir / ("node" + std::to_string(i + 1));
    if (!fs::exists(node.dir, ec)) made.push_back(node.dir);
    fs::create_directories(node.dir, ec);
    if (ec) return fail("cannot create " + node.dir.string() + ": " + ec.message());
  }

  // A detached cluster is found again only through its state file: one that
  // cannot be written (say, a directory whose name is not UTF-8) is refused
  // before any server starts.
  if (auto saved = cluster->save_state(); !saved) {
    // Only empty ones go: a directory that something else wrote into stays.
    for (auto it = made.rbegin(); it != made.rend(); ++it) fs::remove(*it, ec);
    return fail(saved.error());
  }

  // Launch every server first, then wait for each: they start in parallel.
  std::vector<std::uintmax_t> log_offsets(n);
  std::vector<Clock::time_point> deadlines(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& node = cluster->nodes_[i];
    log_offsets[i] = file_size_or_zero(node.dir / kLogFile);
    deadlines[i] = Clock::now() + options.start_timeout;
    auto pid = launch_server(cluster->options_, i, node.port, node.extra_port, node.dir);
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
      // Whichever port was taken, both are picked again: a fixed plain port
      // (base_port) is the user's and stays.
      const bool extra = node.extra_port != 0;
      if ((options.base_port == 0 || extra) && port_in_use(tail) && attempt < kMaxPortAttempts) {
        auto again = pick_free_ports((options.base_port == 0 ? 1U : 0U) + (extra ? 1U : 0U));
        if (!again) return fail(again.error());
        if (options.base_port == 0) node.port = again->front();
        if (extra) node.extra_port = again->back();
        log_offsets[i] = file_size_or_zero(log);
        deadlines[i] = Clock::now() + options.start_timeout;
        auto pid = launch_server(cluster->options_, i, node.port, node.extra_port, node.dir);
        if (!pid) return fail(cluster->node_name(i) + ": " + pid.error());
        node.pid = *pid;
        continue;
      }
      return fail(cluster->node_name(i) + ": redis-server " + ready.detail +
                  " during start (attempt " + std::to_string(attempt) + "); log " + log.string() +
                  ":\n" + tail);
    }
  }
  if (auto saved = cluster->save_state(); !saved) return fail(saved.error());
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
      node.extra_port = entry.value("extra_port", 0);
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
  out.extra_port = node.extra_port;
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
    auto pid = launch_server(options_, i, node.port, node.extra_port, node.dir);
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

tl::expected<void, std::string> LocalCluster::save_state() const noexcept {
  if (!options_.detach) return {};
  const fs::path tmp = dir_ / (std::string(kStateFile) + ".tmp");
  try {
    nlohmann::json nodes = nlohmann::json::array();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      nodes.push_back({{"index", i},
                       {"port", nodes_[i].port},
                       {"extra_port", nodes_[i].extra_port},
                       {"pid", nodes_[i].pid},
                       {"dir", nodes_[i].dir.string()}});
    }
    const nlohmann::json state = {
        {"version", kStateVersion},          {"redis_server", options_.redis_server},
        {"extra_args", options_.extra_args}, {"node_env", options_.node_env},
        {"node_args", options_.node_args},   {"nodes", nodes}};
    // JSON strings are UTF-8: a path or an argument that is not fails here,
    // before anything is written.
    const std::string text = state.dump(2) + '\n';
    // Write then rename, so that a reader never sees half a file.
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << text;
      if (!out) return tl::make_unexpected("cannot write " + tmp.string());
    }
    std::error_code ec;
    fs::rename(tmp, dir_ / kStateFile, ec);
    if (ec) return tl::make_unexpected("cannot rename " + tmp.string() + ": " + ec.message());
    return {};
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return tl::make_unexpected(std::string("cannot record the cluster in ") + kStateFile + ": " +
                               e.what());
  }
}

tl::expected<std::string, std::string> LocalCluster::command(std::size_t i,
                                                             const std::vector<std::string>& argv) {
  if (auto ok = check_index(i); !ok) return tl::make_unexpected(ok.error());
  if (argv.empty()) return tl::make_unexpected(std::string("empty command"));
  auto conn = connect_to(port(i), kCommandTimeout);
  if (!conn) return tl::make_unexpected(node_name(i) + ": " + conn.error());
  auto reply = conn->run(argv);
  if (!reply) return tl::make_unexpected(node_name(i) + ": " + argv.front() + ": " + reply.error());
  if (reply->is_error()) return tl::make_unexpected(reply->str);
  return tools::reply_text(*reply);
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
  auto conn = connect_to(port(i), kCommandTimeout);
  if (!conn) return tl::make_unexpected(node_name(i) + ": " + conn.error());
  auto reply = conn->run({"GET", key});
  if (!reply) return tl::make_unexpected(node_name(i) + ": GET: " + reply.error());
  switch (reply->type) {
    case tools::RedisReply::Type::kNil:
      return std::optional<std::string>();
    case tools::RedisReply::Type::kString:
      return std::optional<std::string>(std::move(reply->str));
    default:
      return tl::make_unexpected(tools::reply_text(*reply));
  }
}

tl::expected<long long, std::string> LocalCluster::count_keys(const std::string& pattern) {
  long long total = 0;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const auto node = info(i);
    if (!node.running || node.paused) continue;
    auto conn = connect_to(node.port, kCommandTimeout);
    if (!conn) return tl::make_unexpected(node_name(i) + ": " + conn.error());
    std::string cursor = "0";
    do {
      auto reply = conn->run({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      if (!reply) return tl::make_unexpected(node_name(i) + ": SCAN: " + reply.error());
      using Type = tools::RedisReply::Type;
      const tools::RedisReply& r = *reply;
      if (r.type != Type::kArray || r.elements.size() != 2 || r.elements[0].type != Type::kString ||
          r.elements[1].type != Type::kArray) {
        return tl::make_unexpected(node_name(i) + ": SCAN: unexpected reply " +
                                   tools::reply_text(r));
      }
      cursor = r.elements[0].str;
      total += static_cast<long long>(r.elements[1].elements.size());
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
  auto conn = connect_to(port(i), kCommandTimeout);
  if (!conn) return tl::make_unexpected(node_name(i) + ": " + conn.error());
  // Closing the connection right after the write is fine: the server reads
  // the command before it sees the end of the stream, runs it, and drops the
  // reply.
  if (auto sent = conn->send({"DEBUG", "SLEEP", arg}); !sent) {
    return tl::make_unexpected(node_name(i) + ": DEBUG SLEEP: " + sent.error());
  }
  return {};
}

}  // namespace redlock::cluster
