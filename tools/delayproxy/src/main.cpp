// redlock-delayproxy: TCP relays on 127.0.0.1 that delay every chunk by a
// fixed one-way delay, to put "distant" Redis nodes in front of local ones.
//
//   redlock-delayproxy --listen P --target P --delay-ms D
//   redlock-delayproxy --route LISTEN:TARGET:DELAY_MS [--route ...]
//
// A round trip through a relay costs 2 x DELAY_MS plus the server's time.
// LISTEN 0 picks a free port. Prints one line per route on stdout once every
// relay listens ("route N 127.0.0.1:LISTEN -> 127.0.0.1:TARGET delay D ms"),
// then runs until SIGINT or SIGTERM (or --max-seconds). Exit status: 0 after a
// signal or the time limit, 1 when a relay cannot listen, 2 bad usage.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "redlock/delayproxy/delay_proxy.hpp"

int main(int argc, char** argv) {
  CLI::App app{"TCP relays on 127.0.0.1 that delay every chunk by a fixed one-way delay"};
  int listen_port = -1;
  int target_port = 0;
  double delay_ms = 0;
  std::vector<std::string> route_texts;
  double max_seconds = 0;
  app.add_option("--listen", listen_port, "port to listen on (0: a free one)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--target", target_port, "port of the server on 127.0.0.1")
      ->check(CLI::Range(1, 65535));
  app.add_option("--delay-ms", delay_ms, "one-way delay of every chunk, in ms")
      ->check(CLI::Range(0.0, 3600000.0));
  app.add_option("--route", route_texts, "LISTEN:TARGET:DELAY_MS, repeatable");
  app.add_option("--max-seconds", max_seconds, "exit after this long (0: until a signal)")
      ->check(CLI::Range(0.0, 1e7));
  CLI11_PARSE(app, argc, argv);

  std::vector<redlock::delayproxy::Route> routes;
  if (listen_port >= 0 || target_port > 0) {
    if (listen_port < 0 || target_port == 0) {
      std::cerr << "redlock-delayproxy: --listen and --target go together\n";
      return 2;
    }
    routes.push_back({listen_port, target_port,
                      std::chrono::microseconds(static_cast<long long>(delay_ms * 1000.0))});
  }
  for (const auto& text : route_texts) {
    auto r = redlock::delayproxy::parse_route(text);
    if (!r) {
      std::cerr << "redlock-delayproxy: " << r.error() << '\n';
      return 2;
    }
    routes.push_back(*r);
  }
  if (routes.empty()) {
    std::cerr << "redlock-delayproxy: give --listen/--target/--delay-ms or --route\n" << app.help();
    return 2;
  }

  // Block the signals before the loop thread starts, so that it inherits the
  // mask and only sigtimedwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto proxy = redlock::delayproxy::DelayProxy::start(routes);
  if (!proxy) {
    std::cerr << "redlock-delayproxy: " << proxy.error() << '\n';
    return 1;
  }
  for (std::size_t i = 0; i < (*proxy)->size(); ++i) {
    const auto& r = (*proxy)->route(i);
    std::printf("route %zu 127.0.0.1:%d -> 127.0.0.1:%d delay %.3f ms\n", i + 1, (*proxy)->port(i),
                r.target_port, static_cast<double>(r.delay.count()) / 1000.0);
  }
  std::fflush(stdout);

  if (max_seconds > 0) {
    timespec limit{};
    limit.tv_sec = static_cast<time_t>(max_seconds);
    limit.tv_nsec = static_cast<long>((max_seconds - static_cast<double>(limit.tv_sec)) * 1e9);
    while (sigtimedwait(&stop_signals, nullptr, &limit) < 0 && errno == EINTR) {
    }
  } else {
    int sig = 0;
    sigwait(&stop_signals, &sig);
  }
  (*proxy)->stop();
  return 0;
}
