#include "cpu_meter.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace redlock::bench {
namespace {

namespace fs = std::filesystem;

// /proc/.../schedstat: "on_cpu_ns runq_wait_ns timeslices".
void add_schedstat(const fs::path& task, CpuTimes& t) {
  std::ifstream in(task / "schedstat");
  double on_ns = 0;
  double wait_ns = 0;
  if (in >> on_ns >> wait_ns) {
    t.on_cpu_us += on_ns / 1000.0;
    t.runq_us += wait_ns / 1000.0;
  }
  std::ifstream status(task / "status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("voluntary_ctxt_switches:") ||
        line.starts_with("nonvoluntary_ctxt_switches:")) {
      t.ctx_switches += std::stod(line.substr(line.find(':') + 1));
    }
  }
}

void add_process(const fs::path& proc, CpuTimes& all, CpuTimes* main, int main_tid,
                 CpuTimes* other) {
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(proc / "task", ec)) {
    const int tid = std::atoi(task.path().filename().c_str());
    CpuTimes* into = &all;
    if (main != nullptr) into = tid == main_tid ? main : other;
    add_schedstat(task.path(), *into);
  }
}

double ticks_to_s(double ticks) {
  const long hz = ::sysconf(_SC_CLK_TCK);
  return ticks / static_cast<double>(hz > 0 ? hz : 100);
}

}  // namespace

MachineTimes machine_times() {
  // cpu  user nice system idle iowait irq softirq steal ...
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  double f[8] = {};
  for (double& v : f) {
    if (!(in >> v)) break;
  }
  MachineTimes t;
  t.task_s = ticks_to_s(f[0] + f[1] + f[2]);
  t.irq_s = ticks_to_s(f[5] + f[6]);
  t.steal_s = ticks_to_s(f[7]);
  // Kernel threads (ksoftirqd, kworkers): flag PF_KTHREAD in /proc/PID/stat.
  constexpr unsigned long kPfKthread = 0x00200000;
  std::error_code ec;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    const std::string name = proc.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream st(proc.path() / "stat");
    std::string line;
    if (!std::getline(st, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long flags = 0;
    double utime = 0;
    double stime = 0;
    for (int k = 0; k <= 12 && rest >> field; ++k) {
      if (k == 6) flags = std::stoul(field);
      if (k == 11) utime = std::stod(field);
      if (k == 12) stime = std::stod(field);
    }
    if ((flags & kPfKthread) != 0) t.kthreads_s += ticks_to_s(utime + stime);
  }
  return t;
}

namespace {

CpuTimes minus(const CpuTimes& a, const CpuTimes& b) {
  return {a.on_cpu_us - b.on_cpu_us, a.runq_us - b.runq_us, a.ctx_switches - b.ctx_switches};
}

}  // namespace

double wait_until_idle(double max_busy_cores, std::chrono::seconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  double busy = 0;
  do {
    const double b0 = machine_times().task_s;
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    busy = (machine_times().task_s - b0) / secs;
    if (busy <= max_busy_cores) return busy;
  } while (std::chrono::steady_clock::now() < give_up);
  return busy;
}

void CpuMeter::start() {
  main_tid_ = static_cast<int>(::gettid());
  start_ = take();
}

CpuMeter::Snapshot CpuMeter::take() const {
  Snapshot s;
  s.at = std::chrono::steady_clock::now();
  CpuTimes unused;
  add_process("/proc/self", unused, &s.main, main_tid_, &s.other);
  for (int pid : server_pids_) {
    CpuTimes& one = s.each_server.emplace_back();
    if (pid > 0) add_process("/proc/" + std::to_string(pid), one, nullptr, 0, nullptr);
    s.servers.on_cpu_us += one.on_cpu_us;
    s.servers.runq_us += one.runq_us;
    s.servers.ctx_switches += one.ctx_switches;
  }
  s.machine = machine_times();
  rusage ru{};
  ::getrusage(RUSAGE_CHILDREN, &ru);
  const auto us = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec);
  };
  s.children_us = us(ru.ru_utime) + us(ru.ru_stime);
  return s;
}

CpuReport CpuMeter::stop() const {
  const Snapshot end = take();
  CpuReport r;
  r.client_main = minus(end.main, start_.main);
  r.client_other = minus(end.other, start_.other);
  r.servers = minus(end.servers, start_.servers);
  r.children_us = end.children_us - start_.children_us;
  r.elapsed_s = std::chrono::duration<double>(end.at - start_.at).count();
  if (r.elapsed_s > 0) {
    const auto cores = [&](double a, double b) { return (a - b) / r.elapsed_s; };
    const double ours_s =
        (r.client_main.on_cpu_us + r.client_other.on_cpu_us + r.servers.on_cpu_us + r.children_us) /
        1e6;
    r.tasks_busy_cores = cores(end.machine.task_s, start_.machine.task_s);
    r.irq_cores = cores(end.machine.irq_s, start_.machine.irq_s);
    r.steal_cores = cores(end.machine.steal_s, start_.machine.steal_s);
    r.kthread_cores = cores(end.machine.kthreads_s, start_.machine.kthreads_s);
    r.other_busy_cores = std::max(0.0, r.tasks_busy_cores - ours_s / r.elapsed_s - r.kthread_cores);
    for (std::size_t i = 0; i < end.each_server.size() && i < start_.each_server.size(); ++i) {
      const double used_us = end.each_server[i].on_cpu_us - start_.each_server[i].on_cpu_us;
      r.busiest_server_cores = std::max(r.busiest_server_cores, used_us / 1e6 / r.elapsed_s);
    }
  }
  return r;
}

}  // namespace redlock::bench
