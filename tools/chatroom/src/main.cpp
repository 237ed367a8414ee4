// chatroomd: a small chat room service whose "create a room" path runs under
// a Redlock lock, so that replicas racing to create one room create it once.
//
//   chatroomd --listen 127.0.0.1:8080 --nodes h1:p1,...,h5:p5 --store sqlite:chat.db
//
// Every flag has an environment variable (CHATROOMD_LISTEN, CHATROOMD_NODES,
// CHATROOMD_STORE, ...). On SIGTERM or SIGINT it stops accepting, cancels
// lock waits in progress (503 "Shutting down"), lets the requests in flight
// finish (each releases its lock), and exits 0. It prints
// "chatroomd listening on http://HOST:PORT" once it accepts connections
// (--listen HOST:0 picks a free port).
//
// Exit status: 0 after a graceful stop, 1 if it could not start (store, lock
// nodes, address), 2 bad usage.
#include <httplib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "chat_service.hpp"
#include "http_api.hpp"
#include "redlock/redlock.hpp"
#include "redlock/tools/duration.hpp"
#include "redlock/tools/tls_flags.hpp"
#include "redlock/tools/ttl_check.hpp"
#include "service_metrics.hpp"
#include "store.hpp"

namespace {

using std::chrono::milliseconds;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// The library's bounds (lib/src/validate.hpp), checked here so that the
// flags are refused by name.
constexpr milliseconds kMaxLockMaxTtl{std::chrono::hours(24 * 30)};
constexpr milliseconds kMaxRetry{std::chrono::hours(1)};

// httplib listens with a backlog of 5; a burst of clients then waits for
// SYN retransmits (1 s and more). The listening socket gets a real backlog.
constexpr int kListenBacklog = 1024;
constexpr time_t kKeepAliveSeconds = 1;

struct Settings {
  std::string listen = "127.0.0.1:8080";
  std::string nodes;
  std::string store = "sqlite:chatroom.db";
  std::string lock_ttl = "10s";
  std::string lock_max_ttl = "60s";
  std::string lock_wait = "5s";
  std::string retry_delay = "100ms";
  std::string retry_jitter = "50ms";
  std::string restart_grace;  // "": the library's default
  redlock::TlsOptions tls;    // rediss:// and sentinels:// lock nodes
  bool tls_insecure = false;
  int create_delay_ms = 0;
  int threads = 16;
  bool unsafe_no_lock = false;
  bool verbose = false;
};

bool split_host_port(const std::string& text, std::string& host, int& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) return false;
  const std::string digits = text.substr(colon + 1);
  if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  port = std::stoi(digits);
  host = text.substr(0, colon);
  return port <= 65535;
}

}  // namespace

int main(int argc, char** argv) {
  // A client that hangs up mid-response must not kill the server.
  ::signal(SIGPIPE, SIG_IGN);
  // SIGINT and SIGTERM are taken by the signal thread only: block them before
  // any other thread (engine loop, HTTP workers) exists.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  CLI::App app{"chatroomd: chat rooms over HTTP; creating a room runs under a Redlock lock"};
  Settings s;
  app.add_option("--listen", s.listen, "HOST:PORT to serve HTTP on (PORT 0: a free one)")
      ->envname("CHATROOMD_LISTEN")
      ->capture_default_str();
  app.add_option("--nodes", s.nodes,
                 "Lock nodes host:port,... (5 independent Redis masters), or "
                 "cluster://host:port,host:port (a Redis Cluster, one vote)")
      ->envname("CHATROOMD_NODES");
  app.add_option("--store", s.store, "sqlite:PATH or postgresql://user@host:port/db")
      ->envname("CHATROOMD_STORE")
      ->capture_default_str();
  app.add_option("--lock-ttl", s.lock_ttl, "Room lock time to live")
      ->envname("CHATROOMD_LOCK_TTL")
      ->capture_default_str();
  app.add_option("--lock-max-ttl", s.lock_max_ttl,
                 "Largest lock ttl of the lock client (ClientOptions::max_ttl); every client of "
                 "the lock nodes should use the same, and --lock-ttl must not exceed it")
      ->envname("CHATROOMD_LOCK_MAX_TTL")
      ->capture_default_str();
  app.add_option("--lock-wait", s.lock_wait, "Longest wait for a room's lock before 503")
      ->envname("CHATROOMD_LOCK_WAIT")
      ->capture_default_str();
  app.add_option("--retry-delay", s.retry_delay, "Pause between lock attempts")
      ->envname("CHATROOMD_RETRY_DELAY")
      ->capture_default_str();
  app.add_option("--retry-jitter", s.retry_jitter, "+/- random part of that pause")
      ->envname("CHATROOMD_RETRY_JITTER")
      ->capture_default_str();
  app.add_option("--lock-restart-grace", s.restart_grace,
                 "How long a restarted lock node sits out the vote (default: --lock-max-ttl plus "
                 "its drift allowance; 0s only for lock nodes just started empty)")
      ->envname("CHATROOMD_LOCK_RESTART_GRACE");
  redlock::tools::add_tls_flags(
      app, s.tls, s.tls_insecure,
      {.flag_prefix = "--lock-", .env_prefix = "CHATROOMD_LOCK_", .nodes = "lock nodes"});
  app.add_option("--create-delay-ms", s.create_delay_ms,
                 "Pause between look-up and insert when creating a room (tests and demos)")
      ->envname("CHATROOMD_CREATE_DELAY_MS")
      ->capture_default_str()
      ->check(CLI::Range(0, 60000));
  app.add_option("--threads", s.threads, "HTTP worker threads (and store connections)")
      ->envname("CHATROOMD_THREADS")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_flag("--unsafe-no-lock", s.unsafe_no_lock,
               "TESTS ONLY: create rooms without the lock (only the UNIQUE constraint is left)")
      ->envname("CHATROOMD_UNSAFE_NO_LOCK");
  app.add_flag("-v,--verbose", s.verbose, "Log every request")->envname("CHATROOMD_VERBOSE");
  // A flag given twice (or on top of its environment variable) takes the
  // last value, so scripts can override defaults they were handed.
  for (auto* option : app.get_options()) {
    option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  auto log = std::make_shared<spdlog::logger>("chatroomd",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ chatroomd[%P]: %v");
  log->set_level(s.verbose ? spdlog::level::debug : spdlog::level::info);
  log->flush_on(spdlog::level::info);

  redlock::chatroom::ServiceOptions options;
  milliseconds lock_max_ttl{0};
  struct Flag {
    const char* name;
    const std::string& text;
    milliseconds& out;
    bool positive;
  };
  for (const Flag& f : {Flag{"--lock-ttl", s.lock_ttl, options.lock_ttl, true},
                        Flag{"--lock-max-ttl", s.lock_max_ttl, lock_max_ttl, true},
                        Flag{"--lock-wait", s.lock_wait, options.lock_wait, false},
                        Flag{"--retry-delay", s.retry_delay, options.retry_delay, false},
                        Flag{"--retry-jitter", s.retry_jitter, options.retry_jitter, false}}) {
    auto parsed = redlock::tools::parse_duration(f.text);
    if (!parsed || (f.positive && parsed->count() == 0)) {
      std::cerr << "chatroomd: " << f.name << ": "
                << (parsed ? std::string("must be more than 0") : parsed.error()) << '\n';
      return kExitUsage;
    }
    f.out = *parsed;
  }
  // Refused here rather than by every create (500 "ttl ... exceeds
  // max_ttl"): the lock settings must work before the service starts.
  if (lock_max_ttl > kMaxLockMaxTtl) {
    std::cerr << "chatroomd: --lock-max-ttl " << s.lock_max_ttl << " is longer than "
              << redlock::tools::format_duration(kMaxLockMaxTtl) << '\n';
    return kExitUsage;
  }
  if (auto problem = redlock::tools::ttl_problem(options.lock_ttl, lock_max_ttl, std::nullopt,
                                                 {"--lock-ttl", "--lock-max-ttl", "-"})) {
    std::cerr << "chatroomd: " << *problem << '\n';
    return kExitUsage;
  }
  for (const Flag& f : {Flag{"--retry-delay", s.retry_delay, options.retry_delay, false},
                        Flag{"--retry-jitter", s.retry_jitter, options.retry_jitter, false}}) {
    if (f.out > kMaxRetry) {
      std::cerr << "chatroomd: " << f.name << " " << f.text << " is longer than "
                << redlock::tools::format_duration(kMaxRetry) << '\n';
      return kExitUsage;
    }
  }
  options.create_delay = milliseconds(s.create_delay_ms);
  std::string host;
  int port = 0;
  if (!split_host_port(s.listen, host, port)) {
    std::cerr << "chatroomd: --listen: expected HOST:PORT, got '" << s.listen << "'\n";
    return kExitUsage;
  }
  const auto nodes = redlock::tools::split_node_list(s.nodes);
  if (nodes.empty() && !s.unsafe_no_lock) {
    std::cerr
        << "chatroomd: --nodes (CHATROOMD_NODES) is required: the lock nodes, host:port,...\n";
    return kExitUsage;
  }

  if (s.store.rfind("sqlite:", 0) != 0 && s.store.rfind("postgresql://", 0) != 0 &&
      s.store.rfind("postgres://", 0) != 0) {
    std::cerr << "chatroomd: --store: expected sqlite:PATH or postgresql://user@host:port/db, got '"
              << s.store << "'\n";
    return kExitUsage;
  }

  // Declaration order is destruction order: the server (and its workers) go
  // first, then the service, the lock client and the store they use.
  auto store = redlock::chatroom::open_store(s.store, static_cast<std::size_t>(s.threads));
  if (!store) {
    log->error("store {}: {}", s.store, store.error().message);
    return kExitFailure;
  }
  std::unique_ptr<redlock::Client> client;
  if (s.unsafe_no_lock) {
    log->warn("--unsafe-no-lock: rooms are created WITHOUT the lock (tests only)");
  } else {
    redlock::ClientOptions client_options;
    client_options.nodes = nodes;
    client_options.max_ttl = lock_max_ttl;
    client_options.tls = s.tls;
    client_options.tls.verify_peer = !s.tls_insecure;
    auto engine_log = std::make_shared<spdlog::logger>(
        "redlock", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    engine_log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ chatroomd[%P] redlock: %v");
    engine_log->set_level(s.verbose ? spdlog::level::debug : spdlog::level::warn);
    client_options.logger = engine_log;
    if (!s.restart_grace.empty()) {
      auto grace = redlock::tools::parse_duration(s.restart_grace);
      if (!grace) {
        std::cerr << "chatroomd: --lock-restart-grace: " << grace.error() << '\n';
        return kExitUsage;
      }
      client_options.restart_grace = *grace;
    }
    auto connected = redlock::Client::connect(client_options);
    if (!connected) {
      log->error("lock nodes: {}", redlock::to_string(connected.error()));
      return connected.error().code() == redlock::ErrorCode::kInvalidArgument ? kExitUsage
                                                                              : kExitFailure;
    }
    client = std::move(*connected);
  }
  redlock::chatroom::ServiceMetrics metrics;
  redlock::chatroom::ChatService service(**store, client.get(), options, metrics);

  httplib::Server server;
  const auto threads = static_cast<std::size_t>(s.threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  int listen_fd = -1;
  // httplib's default sets SO_REUSEPORT, which lets a second server bind the
  // same port unnoticed; SO_REUSEADDR alone only allows quick restarts.
  server.set_socket_options([&listen_fd](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = sock;
  });
  // A worker serves one connection at a time, idle keep-alive time
  // included, and a stopping server waits for it: keep that short.
  server.set_keep_alive_timeout(kKeepAliveSeconds);
  redlock::chatroom::install_routes(
      server, service, metrics, client.get(),
      [&log](const std::string& message) { log->error("{}", message); });
  if (s.verbose) {
    server.set_post_routing_handler(
        [&log](const httplib::Request& req, const httplib::Response& res) {
          log->debug("{} {} -> {}", req.method, req.path, res.status);
        });
  }
  int bound = -1;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
  } else if (server.bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) {
    log->error("cannot listen on {}", s.listen);
    return kExitFailure;
  }
  if (listen_fd >= 0) ::listen(listen_fd, kListenBacklog);
  std::printf("chatroomd listening on http://%s:%d (store %s, %s)\n", host.c_str(), bound,
              std::string((*store)->kind()).c_str(),
              client ? ("lock on " + std::to_string(nodes.size()) + " nodes").c_str() : "NO LOCK");
  std::fflush(stdout);

  std::atomic<bool> done{false};
  std::thread signal_thread([&] {
    const timespec tick{0, 100'000'000};
    while (!done.load()) {
      const int sig = ::sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig <= 0) continue;
      log->info("SIG{}: stopping: no new connections, finishing requests in flight",
                sig == SIGINT ? "INT" : "TERM");
      service.begin_shutdown();
      // stop() acts only on a running server: wait for listen_after_bind()
      // to have started if the signal came that early.
      while (!done.load() && !server.is_running()) {
        std::this_thread::sleep_for(milliseconds(10));
      }
      if (!done.load()) server.stop();
      return;
    }
  });
  const bool served = server.listen_after_bind();
  done.store(true);
  signal_thread.join();
  if (!served) {
    log->error("the server on {} stopped with an error", s.listen);
    return kExitFailure;
  }
  log->info("stopped");
  return kExitOk;
}
