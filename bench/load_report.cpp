#include <algorithm>
#include <cstdio>
#include <map>

#include "load.hpp"

namespace redlock::bench {
namespace {

std::string label_of(const json& j) { return j.value("label", j.value("scenario", "?")); }

}  // namespace

void print_table(const std::vector<json>& lines) {
  // A field as text: "-" when the line does not have it.
  const auto field = [](const json& j, const char* key, const char* format) -> std::string {
    if (!j.contains(key) || !j[key].is_number()) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, format, j[key].get<double>());
    return buf;
  };
  std::fprintf(stderr, "\n%-14s %3s %5s %8s %8s %8s %8s %8s %8s %4s %4s  %7s %7s %6s\n", "run",
               "rep", "nodes", "ops", "ops/s", "p50 us", "p99 us", "acq p50", "acq p99", "err",
               "viol", "cli cpu", "srv cpu", "other");
  for (const auto& j : lines) {
    if (j.contains("process")) continue;  // one process of a --processes run
    const double client_cpu =
        j.value("cpu_client_main_us_per_op", 0.0) + j.value("cpu_client_other_us_per_op", 0.0);
    const std::string cli = j.contains("cpu_client_main_us_per_op")
                                ? field(json{{"v", client_cpu}}, "v", "%.0f")
                                : std::string("-");
    std::fprintf(stderr, "%-14s %3d %5d %8s %8s %8s %8s %8s %8s %4s %4s  %7s %7s %6s\n",
                 label_of(j).c_str(), j.value("rep", 0), j.value("nodes", 0),
                 field(j, "ops", "%.0f").c_str(), field(j, "ops_per_s", "%.0f").c_str(),
                 field(j, "p50_us", "%.1f").c_str(), field(j, "p99_us", "%.1f").c_str(),
                 field(j, "acq_p50_us", "%.1f").c_str(), field(j, "acq_p99_us", "%.1f").c_str(),
                 field(j, "errors", "%.0f").c_str(), field(j, "violations", "%.0f").c_str(),
                 cli.c_str(), field(j, "cpu_servers_us_per_op", "%.0f").c_str(),
                 field(j, "cpu_other_busy_cores", "%.2f").c_str());
  }
  std::fprintf(stderr,
               "(cli cpu / srv cpu: CPU microseconds per operation of this process and of the "
               "redis-servers; other: cores busy with other processes meanwhile, noise)\n");
}

void print_targets(const std::vector<json>& lines) {
  std::map<int, std::map<std::string, const json*>> by_rep;
  for (const auto& j : lines) {
    if (!j.contains("process")) by_rep[j.value("rep", 0)][label_of(j)] = &j;
  }
  std::fprintf(stderr, "\nTargets (base = redis-benchmark -c 1 -P 1 SET on one node, same rep)\n");
  const auto verdict = [](bool met) { return met ? "met" : "MISSED"; };
  for (const auto& [rep, runs] : by_rep) {
    const auto find = [&](const std::string& label) -> const json* {
      auto it = runs.find(label);
      return it == runs.end() ? nullptr : it->second;
    };
    const json* base = find("base/c1");
    const json* a = find("a");
    const json* a_guard = find("a/guard");
    for (const auto& [label, j] : runs) {
      const std::string scenario = j->value("scenario", "");
      const double p50 = j->value("p50_us", 0.0);
      if (scenario != "base" && (j->value("ops", 0L) == 0 || j->value("errors", 0L) > 0)) {
        std::fprintf(stderr, "  rep %d %-12s %ld ops, %ld errors: no verdict\n", rep, label.c_str(),
                     j->value("ops", 0L), j->value("errors", 0L));
        continue;
      }
      if (scenario == "a" && base != nullptr && j->value("release", "") == "wait") {
        const double ratio = p50 / base->value("p50_us", 1.0);
        std::fprintf(stderr,
                     "  rep %d %-12s cycle p50 %.0f us = %.2f x base p50 %.0f us (target <= 2.6 "
                     "x, with %d nodes): %s\n",
                     rep, label.c_str(), p50, ratio, base->value("p50_us", 0.0),
                     j->value("nodes", 0), verdict(ratio <= 2.6));
      } else if (scenario == "b" && base != nullptr) {
        const double ratio = j->value("ops_per_s", 0.0) / base->value("ops_per_s", 1.0);
        std::fprintf(stderr,
                     "  rep %d %-12s %.0f cycles/s = %.2f x base %.0f SET/s (target >= 4 x): %s\n",
                     rep, label.c_str(), j->value("ops_per_s", 0.0), ratio,
                     base->value("ops_per_s", 0.0), verdict(ratio >= 4.0));
      } else if (scenario == "d") {
        // Against a with the same release mode: a release not waited for
        // overlaps the next acquire.
        const json* same = j->value("release", "") == "guard" ? a_guard : a;
        if (same != nullptr) {
          const double r = p50 / same->value("p50_us", 1.0);
          std::fprintf(stderr,
                       "  rep %d %-12s cycle p50 %.0f us = %.2f x %s's %.0f us (target: no "
                       "slower, <= 1.05 counting noise): %s\n",
                       rep, label.c_str(), p50, r, label_of(*same).c_str(),
                       same->value("p50_us", 0.0), verdict(r <= 1.05));
          const double ra = j->value("acq_p50_us", 0.0) / same->value("acq_p50_us", 1.0);
          std::fprintf(stderr,
                       "  rep %d %-12s acquire p50 %.0f us = %.2f x %s's %.0f us (<= 1.05): %s\n",
                       rep, label.c_str(), j->value("acq_p50_us", 0.0), ra, label_of(*same).c_str(),
                       same->value("acq_p50_us", 0.0), verdict(ra <= 1.05));
        }
      } else if (scenario == "c") {
        const long min_ops = j->contains("min_process_ops") ? j->value("min_process_ops", 0L)
                                                            : j->value("min_worker_ops", 0L);
        const long viol = j->value("violations", 0L);
        std::fprintf(stderr,
                     "  rep %d %-12s %.0f critical sections/s, wait p50 %.0f us p99 %.0f us, "
                     "slowest contender %ld ops, %ld violations (target: all progress, 0 "
                     "violations): %s\n",
                     rep, label.c_str(), j->value("ops_per_s", 0.0), j->value("acq_p50_us", 0.0),
                     j->value("acq_p99_us", 0.0), min_ops, viol, verdict(min_ops > 0 && viol == 0));
      } else if (scenario == "handoff" && label.starts_with("handoff/wake")) {
        // No target: wake-on-release against polling at the same retry delay.
        std::string poll_label = label;
        poll_label.replace(0, 12, "handoff/poll");
        const json* poll = find(poll_label);
        std::fprintf(stderr,
                     "  rep %d %-12s release -> waiter holds p50 %.0f us p99 %.0f us, %ld "
                     "wake-ups in %ld acquires",
                     rep, label.c_str(), p50, j->value("p99_us", 0.0),
                     j->value("waiter_wakeups", 0L), j->value("waiter_acquires", 0L));
        if (poll != nullptr && poll->value("p50_us", 0.0) > 0) {
          std::fprintf(stderr, "; polling (%s) p50 %.0f us p99 %.0f us: %.1f x faster at p50",
                       poll_label.c_str(), poll->value("p50_us", 0.0), poll->value("p99_us", 0.0),
                       poll->value("p50_us", 0.0) / std::max(p50, 1.0));
        }
        std::fprintf(stderr, " (no target)\n");
      } else if (scenario == "geo") {
        const double ratio = j->value("ratio", 0.0);
        std::fprintf(stderr,
                     "  rep %d %-12s acquire p50 %.1f ms = %.3f x quorum-th RTT %.1f ms (target "
                     "<= 1.1 x): %s\n",
                     rep, label.c_str(), j->value("acq_p50_us", 0.0) / 1000.0, ratio,
                     j->value("quorum_rtt_us", 0.0) / 1000.0, verdict(ratio <= 1.1));
      }
    }
  }
}

}  // namespace redlock::bench
