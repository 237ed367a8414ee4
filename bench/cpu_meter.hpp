// cpu_meter.hpp: where the CPU time of a run went, from /proc (Linux).
//
// A CpuMeter samples, at start() and stop(): every thread of this process
// (/proc/self/task/*/schedstat: time on a CPU, time waiting for one on a run
// queue; /proc/self/task/*/status: context switches), every thread of the
// given server processes (the redis-servers), and the machine's busy time
// (/proc/stat). The difference tells per operation how much CPU the client
// and the servers used, how long they were runnable but waiting for a core,
// and how busy the rest of the machine was meanwhile (other processes make a
// run noisy). Threads that end between start() and stop() are not counted.
//
// Not thread-safe: use one meter from one thread. Missing /proc files count
// as zero.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace redlock::bench {

struct CpuTimes {
  double on_cpu_us = 0;     // running
  double runq_us = 0;       // runnable, waiting for a core
  double ctx_switches = 0;  // voluntary + involuntary
};

struct CpuReport {
  CpuTimes client_main;   // the thread that called start()
  CpuTimes client_other;  // the client's loop thread and any other thread of ours
  CpuTimes servers;       // all threads of the server processes
  // The server process that used the most CPU, in cores (its CPU time over
  // the elapsed time): near 1, a single-threaded redis-server is the limit.
  double busiest_server_cores = 0;
  double children_us = 0;  // child processes reaped meanwhile (redis-benchmark)
  // Average cores busy over the run (/proc/stat), all processes: running
  // tasks (user + system), interrupts and softirqs outside any task, time
  // the hypervisor gave to someone else (steal), kernel threads (ksoftirqd,
  // kworkers: partly our own network traffic).
  double tasks_busy_cores = 0;
  double irq_cores = 0;
  double steal_cores = 0;
  double kthread_cores = 0;
  // Tasks of other user processes (a compiler, a test suite): noise.
  double other_busy_cores = 0;
  double elapsed_s = 0;
};

// Cumulative seconds from /proc/stat, and of all kernel threads.
struct MachineTimes {
  double task_s = 0;  // user + nice + system
  double irq_s = 0;   // irq + softirq
  double steal_s = 0;
  double kthreads_s = 0;
};
[[nodiscard]] MachineTimes machine_times();

// Waits (sampling one-second windows) until the whole machine is busy with
// at most `max_busy_cores`, or `limit` passed. Returns the last sample.
double wait_until_idle(double max_busy_cores, std::chrono::seconds limit);

class CpuMeter {
 public:
  explicit CpuMeter(std::vector<int> server_pids) : server_pids_(std::move(server_pids)) {}
  void start();
  [[nodiscard]] CpuReport stop() const;

 private:
  struct Snapshot {
    CpuTimes main;
    CpuTimes other;
    CpuTimes servers;
    std::vector<CpuTimes> each_server;  // as server_pids_
    MachineTimes machine;
    double children_us = 0;
    std::chrono::steady_clock::time_point at;
  };
  [[nodiscard]] Snapshot take() const;

  std::vector<int> server_pids_;
  int main_tid_ = 0;
  Snapshot start_;
};

}  // namespace redlock::bench
