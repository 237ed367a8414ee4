#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "load.hpp"

extern char** environ;

namespace redlock::bench {
namespace {

namespace fs = std::filesystem;

constexpr long kCalibrationCycles = 200;

// ---------------------------------------------------------------------------
// c: workers contending on one resource.

struct WorkerResult {
  long ops = 0;
  long errors = 0;
  long failed_tries = 0;    // --c-retry manual: try-locks refused
  long wait_timeouts = 0;   // a wait of --max-wait-ms ran out
  long unfinished = 0;      // still waiting when the window ended
  double attempts_est = 0;  // --c-retry library: sum of per-op estimates
  Samples samples;
};

struct Contention {
  std::atomic<int> inside{0};
  std::atomic<long> violations{0};
  fs::path marker;
};

// One critical section: checks that nobody else is inside, in this process
// (a counter) and in any process with the same key prefix (O_EXCL file).
void critical_section(Contention& c, const redlock::Lock& lock, long hold_us) {
  if (c.inside.fetch_add(1) != 0) c.violations.fetch_add(1);
  const int fd = ::open(c.marker.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) c.violations.fetch_add(1);
  if (hold_us > 0) std::this_thread::sleep_for(microseconds(hold_us));
  if (lock.expired()) c.violations.fetch_add(1);  // held past its validity: unsafe
  if (fd >= 0) {
    ::close(fd);
    ::unlink(c.marker.c_str());
  }
  c.inside.fetch_sub(1);
}

void contend(const Config& cfg, const Run& run, redlock::Client& client,
             const std::string& resource, const Window& w, Contention& c, ErrorLog& log,
             double round_us, WorkerResult& r, std::atomic<long>& progress_ops) {
  const milliseconds ttl = ttl_for(cfg, run.scenario);
  const bool manual = cfg.c_retry == "manual";
  std::mt19937_64 rng(std::random_device{}());
  const auto delay_us = static_cast<double>(cfg.retry_delay_ms) * 1000.0;
  std::uniform_real_distribution<double> sleep_us(
      std::max(0.0, delay_us - static_cast<double>(cfg.retry_jitter_ms) * 1000.0),
      delay_us + static_cast<double>(cfg.retry_jitter_ms) * 1000.0);
  long total = 0;
  while (total++ < cfg.max_ops) {
    const auto t0 = Clock::now();
    if (t0 >= w.end) break;
    const bool measured = t0 >= w.warm_end;
    // Never wait past the end of the window (nor past --max-wait-ms).
    const auto left = std::chrono::ceil<milliseconds>(w.end - t0);
    const bool window_binds = left.count() < cfg.max_wait_ms;
    const milliseconds max_wait = window_binds ? left : milliseconds(cfg.max_wait_ms);
    redlock::Result<redlock::Lock> lock;
    long tries = 0;
    if (manual) {
      const redlock::AcquireOptions once;
      const auto give_up = t0 + max_wait;
      for (;;) {
        ++tries;
        lock = client.acquire(resource, ttl, once);
        if (lock) break;
        const auto code = lock.error().code();
        if (code != redlock::ErrorCode::kHeldByAnother && code != redlock::ErrorCode::kNoQuorum) {
          break;
        }
        const auto pause = microseconds(static_cast<long long>(sleep_us(rng)));
        if (Clock::now() + pause >= give_up) {
          lock = redlock::Unexpected(
              redlock::Error(redlock::ErrorCode::kLockWaitTimeout, "manual retry: wait ran out"));
          break;
        }
        std::this_thread::sleep_for(pause);
      }
    } else {
      redlock::AcquireOptions how;
      how.max_wait = max_wait;
      how.retry_delay = milliseconds(cfg.retry_delay_ms);
      how.retry_jitter = milliseconds(cfg.retry_jitter_ms);
      if (cfg.contest_gate != "default") how.contest_gate = cfg.contest_gate == "on";
      lock = client.acquire(resource, ttl, how);
    }
    const auto t1 = Clock::now();
    if (!lock) {
      if (lock.error().code() == redlock::ErrorCode::kLockWaitTimeout) {
        if (window_binds) {
          ++r.unfinished;  // the window ended while waiting: not an error
        } else if (measured) {
          ++r.wait_timeouts;
          ++r.errors;
          log.note("waited --max-wait-ms in vain: " + redlock::to_string(lock.error()));
        }
      } else if (measured) {
        ++r.errors;
        log.note("acquire: " + redlock::to_string(lock.error()));
      }
      continue;
    }
    critical_section(c, *lock, cfg.hold_us);
    auto report = client.release(*lock);
    const auto t2 = Clock::now();
    if (!report) {
      if (measured) ++r.errors;
      log.note("release: " + redlock::to_string(report.error()));
      continue;
    }
    if (!measured) continue;
    ++r.ops;
    progress_ops.fetch_add(1);
    const double wait = micros(t1 - t0);
    r.samples.cycle.push_back(micros(t2 - t0));
    r.samples.acquire.push_back(wait);
    if (manual) {
      r.failed_tries += tries - 1;
    } else {
      // Rounds are not visible through the API: a wait of W is about
      // 1 + (W - round) / (retry_delay + round) rounds.
      r.attempts_est += 1.0 + std::max(0.0, wait - round_us) / (delay_us + round_us);
    }
  }
}

// The latency of one uncontended round, for the attempts estimate.
double calibrate_round_us(const Config& cfg, redlock::Client& client, const std::string& resource) {
  std::vector<double> v;
  const auto stop = Clock::now() + std::chrono::seconds(2);
  for (long i = 0; i < kCalibrationCycles && Clock::now() < stop; ++i) {
    const auto t0 = Clock::now();
    auto lock = client.acquire(resource, milliseconds(cfg.ttl_ms > 0 ? cfg.ttl_ms : 10000));
    const auto t1 = Clock::now();
    if (!lock) continue;
    (void)client.release(*lock);
    v.push_back(micros(t1 - t0));
  }
  std::sort(v.begin(), v.end());
  return percentile_sorted(v, 0.5);
}

// ---------------------------------------------------------------------------
// c across processes: this tool started P times with the same key prefix.

struct Child {
  pid_t pid = -1;
  int out_fd = -1;
  std::string buffer;
  fs::path raw;
};

std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("redlock-bench") : p.string();
}

std::vector<std::string> child_argv(const Config& cfg, const Nodes& nodes, int index,
                                    const fs::path& raw) {
  char buf[64];
  const auto num = [&](double v) {
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  return {self_exe(),
          "--scenario",
          "c",
          "--ports",
          join(nodes.ports),
          "--hosts",
          join(nodes.hosts),
          "--workers",
          std::to_string(cfg.workers),
          "--seconds",
          num(cfg.seconds),
          "--warmup-s",
          num(cfg.warmup_s),
          "--ttl-ms",
          std::to_string(cfg.ttl_ms),
          "--retry-delay-ms",
          std::to_string(cfg.retry_delay_ms),
          "--retry-jitter-ms",
          std::to_string(cfg.retry_jitter_ms),
          "--cmd-timeout-ms",
          std::to_string(cfg.cmd_timeout_ms),
          "--busy-poll-us",
          std::to_string(cfg.busy_poll_us),
          "--blocking-spin-us",
          std::to_string(cfg.blocking_spin_us),
          "--fencing",
          cfg.fencing,
          "--contest-gate",
          cfg.contest_gate,
          "--max-wait-ms",
          std::to_string(cfg.max_wait_ms),
          "--hold-us",
          std::to_string(cfg.hold_us),
          "--c-retry",
          cfg.c_retry,
          "--max-ops",
          std::to_string(cfg.max_ops),
          "--rep",
          std::to_string(cfg.rep),
          "--key-prefix",
          cfg.key_prefix,
          "--base-requests",
          "0",
          "--max-noise",
          "0",
          "--child",
          std::to_string(index),
          "--raw-out",
          raw.string()};
}

}  // namespace

json run_contended(const Config& cfg, const Run& run, redlock::Client& client,
                   const std::vector<int>& server_pids, Output& out, Samples* raw) {
  const std::string resource = cfg.key_prefix + ":c";
  Contention c;
  c.marker = marker_path(resource);
  // A stale marker (a crashed run) would count as violations. It is only
  // removed when no other process can be using it: a prefix of our own, or
  // the first process of a --processes run (which the parent cleaned up).
  if (!cfg.prefix_given) ::unlink(c.marker.c_str());
  const bool manual = cfg.c_retry == "manual";
  const double round_us =
      manual ? 0
             : calibrate_round_us(cfg, client,
                                  cfg.key_prefix + ":calibrate:" + std::to_string(::getpid()));
  ErrorLog log(run.label);
  const Window w = make_window(cfg);
  Progress progress(run, cfg, w.start);
  std::vector<WorkerResult> results(static_cast<std::size_t>(cfg.workers));
  std::atomic<long> progress_ops{0};
  CpuMeter meter(server_pids);
  CpuReport cpu;
  redlock::MetricsSnapshot before;
  {
    std::vector<std::jthread> threads;
    for (auto& r : results) {
      threads.emplace_back([&, rp = &r] {
        contend(cfg, run, client, resource, w, c, log, round_us, *rp, progress_ops);
      });
    }
    bool metering = false;
    while (Clock::now() < w.end) {
      if (!metering && Clock::now() >= w.warm_end) {
        meter.start();
        before = client.metrics();
        metering = true;
      }
      std::this_thread::sleep_for(
          std::min<Clock::duration>(milliseconds(100), w.end - Clock::now()));
      progress.tick(progress_ops.load());
    }
    if (metering) cpu = meter.stop();  // before the workers end (their threads go away)
  }  // joins: each worker stops at the end of the window (its wait is bounded by it)
  const auto joined = Clock::now();
  // Rounds as the library counted them, over the measured window (acquires
  // under way at its edges count where they end).
  const auto after = client.metrics();
  const double acquires =
      static_cast<double>(after.rounds_per_acquire.count - before.rounds_per_acquire.count);
  const double rounds = after.rounds_per_acquire.sum - before.rounds_per_acquire.sum;
  const double wakeups = static_cast<double>(after.wakeups - before.wakeups);

  Samples all;
  long ops = 0, errors = 0, failed = 0, timeouts = 0, unfinished = 0, min_ops = -1;
  double attempts_est = 0;
  json worker_ops = json::array();
  for (auto& r : results) {
    all.append(r.samples);
    ops += r.ops;
    errors += r.errors;
    failed += r.failed_tries;
    timeouts += r.wait_timeouts;
    unfinished += r.unfinished;
    attempts_est += r.attempts_est;
    min_ops = min_ops < 0 ? r.ops : std::min(min_ops, r.ops);
    worker_ops.push_back(r.ops);
  }
  if (raw != nullptr) raw->append(all);
  out.write_samples(run, all);
  json j = redlock_line(run);
  const double secs = std::chrono::duration<double>(w.end - w.warm_end).count();
  j["ops"] = ops;
  j["seconds"] = round3(secs);
  j["ops_per_s"] = round1(secs > 0 ? static_cast<double>(ops) / secs : 0);
  put_latency(j, all);
  j["errors"] = errors;
  j["violations"] = c.violations.load();
  j["workers"] = cfg.workers;
  j["worker_ops"] = worker_ops;
  j["min_worker_ops"] = min_ops;
  j["wait_timeouts"] = timeouts;
  j["unfinished_waits"] = unfinished;
  if (manual) {
    j["attempts_per_op"] =
        round3(ops > 0 ? 1.0 + static_cast<double>(failed) / static_cast<double>(ops) : 0);
    j["attempts_method"] = "counted";
  } else {
    j["attempts_per_op"] = round3(ops > 0 ? attempts_est / static_cast<double>(ops) : 0);
    j["attempts_method"] = "estimated";
    j["round_us"] = round1(round_us);
  }
  j["acquires"] = acquires;
  j["rounds_per_acquire"] = round3(acquires > 0 ? rounds / acquires : 0);
  j["wakeups_per_acquire"] = round3(acquires > 0 ? wakeups / acquires : 0);
  j["retry"] = cfg.c_retry;
  j["contest_gate"] = cfg.contest_gate;
  j["retry_delay_ms"] = cfg.retry_delay_ms;
  j["retry_jitter_ms"] = cfg.retry_jitter_ms;
  j["hold_us"] = cfg.hold_us;
  j["release"] = "wait";
  j["ttl_ms"] = ttl_for(cfg, run.scenario).count();
  j["node_timeout_ms"] = node_timeout_for(cfg, run.scenario).count();
  j["overrun_ms"] = round1(micros(joined - w.end) / 1000.0);
  put_cpu(j, cpu, ops, !server_pids.empty());
  return j;
}

// Starts cfg.processes children, relays their JSON lines (tagged with
// "process") and emits one line per rep over all of them, with percentiles
// of the merged samples. Returns false if a child failed or hung.
bool run_c_processes(const Config& cfg, const Nodes& nodes, Output& out) {
  std::error_code ec;
  char tmpl[] = "/tmp/redlock-bench-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (dir == nullptr) {
    std::cerr << "redlock-bench: mkdtemp: " << std::strerror(errno) << '\n';
    return false;
  }
  const fs::path tmp(dir);
  ::unlink(marker_path(cfg.key_prefix + ":c").c_str());  // stale, from a crashed run

  std::vector<Child> children(static_cast<std::size_t>(cfg.processes));
  bool ok = true;
  for (std::size_t k = 0; k < children.size(); ++k) {
    Child& ch = children[k];
    ch.raw = tmp / ("process" + std::to_string(k + 1) + ".tsv");
    auto args = child_argv(cfg, nodes, static_cast<int>(k + 1), ch.raw);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      ok = false;
      break;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<char*> raw;
    for (auto& a : args) raw.push_back(a.data());
    raw.push_back(nullptr);
    const int rc = ::posix_spawn(&ch.pid, raw[0], &actions, nullptr, raw.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      std::cerr << "redlock-bench: cannot start " << args[0] << ": " << std::strerror(rc) << '\n';
      ::close(fds[0]);
      ch.pid = -1;
      ok = false;
      break;
    }
    ch.out_fd = fds[0];
  }

  // Relay until every child closed its stdout, within a generous bound.
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                         cfg.rep * (cfg.warmup_s + cfg.seconds + 5.0) + 30.0));
  std::vector<json> child_lines;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Child*> owners;
    for (auto& ch : children) {
      if (ch.out_fd >= 0) {
        fds.push_back({ch.out_fd, POLLIN, 0});
        owners.push_back(&ch);
      }
    }
    if (fds.empty()) break;
    if (Clock::now() >= deadline) {
      std::cerr << "redlock-bench: processes still running at the deadline; killing them\n";
      ok = false;
      break;
    }
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Child& ch = *owners[i];
      char buf[4096];
      const ssize_t n = ::read(ch.out_fd, buf, sizeof buf);
      if (n > 0) {
        ch.buffer.append(buf, static_cast<std::size_t>(n));
        for (auto nl = ch.buffer.find('\n'); nl != std::string::npos; nl = ch.buffer.find('\n')) {
          const std::string line = ch.buffer.substr(0, nl);
          ch.buffer.erase(0, nl + 1);
          auto j = json::parse(line, nullptr, false);
          if (j.is_discarded()) continue;
          j["process"] = static_cast<int>(&ch - children.data()) + 1;
          child_lines.push_back(j);
          out.emit(j);
        }
      } else if (n == 0 || errno != EINTR) {
        ::close(ch.out_fd);
        ch.out_fd = -1;
      }
    }
  }
  for (auto& ch : children) {
    if (ch.pid <= 0) continue;
    if (ch.out_fd >= 0) {
      ::kill(ch.pid, SIGKILL);  // our own child, by pid
      ::close(ch.out_fd);
    }
    int status = 0;
    while (::waitpid(ch.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::cerr << "redlock-bench: process " << (&ch - children.data()) + 1 << " failed (status "
                << status << ")\n";
      ok = false;
    }
  }

  // Per rep: the sum of the processes' rates and the merged percentiles.
  for (int rep = 1; rep <= cfg.rep; ++rep) {
    Samples merged;
    const Run run{"c", "c/" + std::to_string(cfg.processes) + "proc", rep,
                  static_cast<int>(nodes.ports.size()), cfg.key_prefix + ":c"};
    json j = redlock_line(run);
    long ops = 0, errors = 0, violations = 0, min_ops = -1, timeouts = 0;
    double rate = 0, secs = 0, attempts = 0, acquires = 0, rounds = 0, wakeups = 0;
    json process_ops = json::array();
    std::string method = "estimated";
    for (const auto& cl : child_lines) {
      if (cl.value("rep", 0) != rep) continue;
      const long o = cl.value("ops", 0L);
      ops += o;
      rate += cl.value("ops_per_s", 0.0);
      secs = std::max(secs, cl.value("seconds", 0.0));
      errors += cl.value("errors", 0L);
      violations += cl.value("violations", 0L);
      timeouts += cl.value("wait_timeouts", 0L);
      attempts += cl.value("attempts_per_op", 0.0) * static_cast<double>(o);
      const double a = cl.value("acquires", 0.0);
      acquires += a;
      rounds += cl.value("rounds_per_acquire", 0.0) * a;
      wakeups += cl.value("wakeups_per_acquire", 0.0) * a;
      method = cl.value("attempts_method", method);
      min_ops = min_ops < 0 ? o : std::min(min_ops, o);
      process_ops.push_back(o);
    }
    for (auto& ch : children) {
      std::ifstream in(ch.raw);
      int r = 0;
      std::string kind;
      double v = 0;
      while (in >> r >> kind >> v) {
        if (r != rep) continue;
        (kind == "cycle" ? merged.cycle : merged.acquire).push_back(v);
      }
    }
    j["ops"] = ops;
    j["seconds"] = round3(secs);
    j["ops_per_s"] = round1(rate);
    put_latency(j, merged);
    j["errors"] = errors;
    j["violations"] = violations;
    j["processes"] = cfg.processes;
    j["workers"] = cfg.workers;
    j["process_ops"] = process_ops;
    j["min_process_ops"] = min_ops;
    j["wait_timeouts"] = timeouts;
    j["attempts_per_op"] = round3(ops > 0 ? attempts / static_cast<double>(ops) : 0);
    j["attempts_method"] = method;
    j["acquires"] = acquires;
    j["rounds_per_acquire"] = round3(acquires > 0 ? rounds / acquires : 0);
    j["wakeups_per_acquire"] = round3(acquires > 0 ? wakeups / acquires : 0);
    j["retry"] = cfg.c_retry;
    j["contest_gate"] = cfg.contest_gate;
    j["retry_delay_ms"] = cfg.retry_delay_ms;
    j["retry_jitter_ms"] = cfg.retry_jitter_ms;
    j["hold_us"] = cfg.hold_us;
    j["release"] = "wait";
    out.write_samples(run, merged);
    out.emit(j);
  }
  fs::remove_all(tmp, ec);
  return ok;
}

}  // namespace redlock::bench
