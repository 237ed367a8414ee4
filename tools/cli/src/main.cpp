// redlock: the command line tool.
//
//   redlock acquire RESOURCE [--ttl 10s] [--wait 5s|forever]   prints the token
//   redlock release RESOURCE TOKEN
//   redlock extend RESOURCE TOKEN [--ttl 10s]
//   redlock status [--timeout 1s] [--clock 3s]           each node: votes or why not, rtt,
//                                                        version, run_id, persistence, ...
//   redlock run RESOURCE [--ttl 10s] [--wait 5s] [--signal TERM] [--kill-after 10s]
//               [--max-hold 1h] -- CMD ARGS...
//   redlock cluster up N | down | status | pause I | resume I | kill I | restart I
//
// Nodes come from --nodes, --config, REDLOCK_NODES or the default config file
// (cli_support.hpp). stdout carries data only (the token, or one JSON object
// with --json); messages for people go to stderr. Exit statuses:
// kExitCodeHelp.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "commands.hpp"
#include "redlock/cluster/cluster_commands.hpp"
#include "redlock/tools/duration.hpp"
#include "redlock/tools/subprocess.hpp"
#include "redlock/tools/tls_flags.hpp"
#include "redlock/tools/ttl_check.hpp"
#include "redlock/version.hpp"

namespace {

using redlock::cli::kExitFailure;
using redlock::cli::kExitOk;
using redlock::cli::kExitUsage;
using std::chrono::milliseconds;

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

void usage_error(const std::string& message) { std::cerr << "redlock: " << message << '\n'; }

// A duration flag: parsed after CLI11 so that the message names the flag.
struct DurationFlag {
  const char* name;
  std::string text;
  milliseconds* out;
  bool positive;
};

bool parse_durations(const std::vector<DurationFlag>& flags) {
  for (const auto& f : flags) {
    auto parsed = redlock::tools::parse_duration(f.text);
    if (!parsed) {
      usage_error(std::string(f.name) + ": " + parsed.error());
      return false;
    }
    if (f.positive && parsed->count() == 0) {
      usage_error(std::string(f.name) + " must be more than 0");
      return false;
    }
    *f.out = *parsed;
  }
  return true;
}

bool parse_wait_flag(const std::string& text, milliseconds& out) {
  auto parsed = redlock::cli::parse_wait(text);
  if (!parsed) {
    usage_error("--wait: " + parsed.error());
    return false;
  }
  out = *parsed;
  return true;
}

// The word given where a command was expected, if it names none: CLI11 only
// says "A subcommand is required" for `redlock frobnicate`.
std::optional<std::string> unknown_command(const CLI::App& app) {
  if (!app.get_subcommands().empty()) return std::nullopt;
  for (const auto& word : app.remaining()) {
    if (!word.empty() && word.front() != '-') return word;
  }
  return std::nullopt;
}

int run_main(int argc, char** argv) {
  CLI::App app{
      "redlock: Redlock distributed locks over independent Redis masters, from the shell.\n"
      "Nodes: --nodes host:port,..., else --config FILE, else $REDLOCK_NODES, else\n"
      "~/.config/redlock/config.json ({\"nodes\": [\"host:port\", ...]}).\n"
      "Durations: 500ms, 10s, 2m, 1h. stdout carries only data (a token, or JSON with\n"
      "--json); messages go to stderr."};
  app.footer(redlock::cli::kExitCodeHelp);
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", "redlock " + std::string(redlock::version()),
                       "Print the version and exit");

  std::optional<std::string> nodes_flag;
  std::optional<std::string> config_flag;
  redlock::cli::Globals globals;
  app.add_option("--nodes", nodes_flag,
                 "Lock nodes, comma-separated: host:port, [ipv6]:port, unix:/path, "
                 "redis://[user:pass@]host:port[/db], sentinel://host:port,.../master, "
                 "cluster://host:port,host:port (a Redis Cluster, one node); rediss:// and "
                 "sentinels:// for TLS");
  app.add_option("--config", config_flag, "Config file: {\"nodes\": [\"host:port\", ...]}");
  app.add_flag("--json", globals.json,
               "Print one JSON object on stdout (acquire, release, extend, status), errors "
               "included");
  app.add_flag("-v,--verbose", globals.verbose,
               "Say what happens, with the engine's log, on stderr");
  app.add_flag("-q,--quiet", globals.quiet,
               "Say nothing on stderr when all goes well (errors are still reported)");
  std::string max_ttl_flag = "60s";
  std::optional<std::string> restart_grace_flag;
  std::optional<std::string> node_timeout_flag;
  app.add_option("--max-ttl", max_ttl_flag,
                 "Largest ttl this client hands out; every client of the nodes should use the "
                 "same (it also sets the default --restart-grace)")
      ->capture_default_str();
  app.add_option("--restart-grace", restart_grace_flag,
                 "How long a restarted node sits out the vote (default: --max-ttl plus drift; "
                 "0s only for nodes just started empty)")
      ->envname("REDLOCK_RESTART_GRACE");
  app.add_option("--node-timeout", node_timeout_flag,
                 "How long each node may take to answer before its vote counts as no "
                 "(default: ttl/200, within 10ms..250ms; raise it for distant nodes)");
  // TLS for rediss:// and sentinels:// nodes (ClientOptions::tls).
  bool tls_insecure = false;
  redlock::tools::add_tls_flags(app, globals.tls, tls_insecure);
  bool no_fencing = false;
  app.add_flag("--no-fencing", no_fencing, "Skip fencing tokens (one round trip less, sometimes)");
  app.add_option("-E,--conflict-exit-code", globals.conflict_exit_code,
                 "Exit status when the lock is held by another (acquire, run), as flock -E")
      ->capture_default_str()
      ->check(CLI::Range(0, 255));

  // acquire
  redlock::cli::AcquireArgs acquire;
  std::string acquire_ttl = "10s";
  std::string acquire_wait = "0s";
  std::string acquire_retry = "200ms";
  auto* acquire_cmd = app.add_subcommand(
      "acquire",
      "Take a lock; prints its token on stdout (T=$(redlock acquire ...)). Release it with "
      "`redlock release RESOURCE \"$T\"`, or let it expire");
  acquire_cmd->add_option("RESOURCE", acquire.resource, "What to lock (any bytes)")->required();
  acquire_cmd->add_option("--ttl", acquire_ttl, "Lock time to live")->capture_default_str();
  acquire_cmd
      ->add_option("--wait", acquire_wait,
                   "Keep trying this long, connecting included (0s: try once; forever)")
      ->capture_default_str();
  acquire_cmd->add_option("--retry-delay", acquire_retry, "Pause between tries (+/- half of it)")
      ->capture_default_str();

  // release
  std::string release_resource;
  std::string release_token;
  auto* release_cmd = app.add_subcommand(
      "release", "Release a lock: deletes the key on every node where it still has TOKEN");
  release_cmd->add_option("RESOURCE", release_resource, "The locked resource")->required();
  release_cmd->add_option("TOKEN", release_token, "The token acquire printed")->required();

  // extend
  std::string extend_resource;
  std::string extend_token;
  std::string extend_ttl = "10s";
  auto* extend_cmd = app.add_subcommand(
      "extend", "Extend a lock to --ttl from now, on the nodes where it still has TOKEN");
  extend_cmd->add_option("RESOURCE", extend_resource, "The locked resource")->required();
  extend_cmd->add_option("TOKEN", extend_token, "The token acquire printed")->required();
  extend_cmd->add_option("--ttl", extend_ttl, "New time to live")->capture_default_str();

  // status
  std::string status_timeout = "1s";
  std::string status_clock = "0s";
  auto* status_cmd = app.add_subcommand(
      "status",
      "Can a lock be had now? Each node: votes or why not, round trip, version, run_id, uptime, "
      "persistence, eviction policy (exit 0: a majority votes)");
  status_cmd->add_option("--timeout", status_timeout, "How long to wait for the nodes' answers")
      ->capture_default_str();
  status_cmd
      ->add_option("--clock", status_clock,
                   "Also check each node's clock rate against this machine's for this long, and "
                   "report clocks that run off rate or jump (0s: do not)")
      ->capture_default_str();

  // run
  redlock::cli::RunArgs run;
  std::string run_ttl = "10s";
  std::string run_wait = "0s";
  std::string run_retry = "200ms";
  std::string run_max_hold = "1h";
  std::string run_kill_after = "10s";
  std::string run_signal = "TERM";
  auto* run_cmd = app.add_subcommand(
      "run", "Run a command while holding a lock the engine keeps extending (see run --help)");
  run_cmd->footer(
      std::string(
          "Runs COMMAND (no shell) once the lock is held, extends the lock while it runs,\n"
          "releases it when it ends and exits with its status. The command sees\n"
          "REDLOCK_RESOURCE, REDLOCK_TOKEN and REDLOCK_FENCE. If the lock is lost, the command\n"
          "gets --signal, then SIGKILL after --kill-after, and redlock exits 5. SIGINT, SIGTERM\n"
          "and SIGHUP sent to redlock are forwarded to the command (a terminal's ^C reaches it\n"
          "directly). If redlock dies, the command gets --signal (PR_SET_PDEATHSIG).\n\n") +
      redlock::cli::kExitCodeHelp);
  run_cmd->add_option("RESOURCE", run.resource, "What to lock (any bytes)")->required();
  run_cmd->add_option("COMMAND", run.command, "The command and its arguments, after --")
      ->required();
  run_cmd->add_option("--ttl", run_ttl, "Lock time to live (extended at half of it)")
      ->capture_default_str();
  run_cmd
      ->add_option("--wait", run_wait,
                   "Keep trying this long, connecting included (0s: try once; forever)")
      ->capture_default_str();
  run_cmd->add_option("--retry-delay", run_retry, "Pause between tries (+/- half of it)")
      ->capture_default_str();
  run_cmd
      ->add_option("--max-hold", run_max_hold,
                   "Stop extending after this long: the lock then runs out and counts as lost")
      ->capture_default_str();
  run_cmd->add_option("--signal", run_signal, "Signal for the command when the lock is lost")
      ->capture_default_str();
  run_cmd
      ->add_option("--kill-after", run_kill_after,
                   "SIGKILL the command this long after --signal (0s: never)")
      ->capture_default_str();

  // cluster
  auto* cluster_cmd = app.add_subcommand(
      "cluster", "A local cluster of redis-server nodes on 127.0.0.1 (as redlock-cluster)");
  cluster_cmd->require_subcommand(1);
  cluster_cmd->fallthrough();
  const redlock::cluster::ClusterCommands cluster(*cluster_cmd, "redlock cluster");

  // An option given twice (or on top of its environment variable) takes the
  // last value, so that scripts can override what they were handed.
  for (CLI::App* scope : {&app, acquire_cmd, release_cmd, extend_cmd, status_cmd, run_cmd}) {
    for (auto* option : scope->get_options()) {
      if (!option->get_positional()) option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    constexpr const char* kCommands =
        "(commands: acquire, release, extend, status, run, cluster; see --help)";
    if (auto word = unknown_command(app); word && e.get_exit_code() != 0) {
      usage_error("unknown command '" + *word + "' " + kCommands);
      return kExitUsage;
    }
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && app.get_subcommands().empty()) {
      usage_error(std::string("a command is required ") + kCommands);
      return kExitUsage;
    }
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  const auto* sub = app.get_subcommands().front();
  if (sub == cluster_cmd) return cluster.run(globals.json);

  bool ok = true;
  milliseconds extend_ttl_ms{0};
  milliseconds status_timeout_ms{0};
  milliseconds status_clock_ms{0};
  milliseconds ttl{0};
  if (sub == acquire_cmd) {
    ok = parse_durations({{"--ttl", acquire_ttl, &acquire.ttl, true},
                          {"--retry-delay", acquire_retry, &acquire.retry_delay, false}}) &&
         parse_wait_flag(acquire_wait, acquire.wait);
    ttl = acquire.ttl;
  } else if (sub == extend_cmd) {
    ok = parse_durations({{"--ttl", extend_ttl, &extend_ttl_ms, true}});
    ttl = extend_ttl_ms;
  } else if (sub == status_cmd) {
    ok = parse_durations({{"--timeout", status_timeout, &status_timeout_ms, true},
                          {"--clock", status_clock, &status_clock_ms, false}});
    if (ok && status_timeout_ms > redlock::cli::kMaxDelay) {
      usage_error("--timeout " + status_timeout + " is longer than " +
                  redlock::tools::format_duration(redlock::cli::kMaxDelay));
      ok = false;
    }
  } else if (sub == run_cmd) {
    ok = parse_durations({{"--ttl", run_ttl, &run.ttl, true},
                          {"--retry-delay", run_retry, &run.retry_delay, false},
                          {"--max-hold", run_max_hold, &run.max_hold, true},
                          {"--kill-after", run_kill_after, &run.kill_after, false}}) &&
         parse_wait_flag(run_wait, run.wait);
    ttl = run.ttl;
    if (ok) {
      auto sig = redlock::tools::parse_signal(run_signal);
      if (!sig || *sig == SIGSTOP || *sig == SIGCHLD || *sig == SIGCONT) {
        usage_error("--signal: not a signal that ends a command: " + run_signal);
        return kExitUsage;
      }
      run.signal = *sig;
    }
  }
  if (!ok) return kExitUsage;
  for (const auto* retry : {&acquire.retry_delay, &run.retry_delay}) {
    if (*retry > redlock::cli::kMaxDelay) {
      usage_error("--retry-delay is longer than " +
                  redlock::tools::format_duration(redlock::cli::kMaxDelay));
      return kExitUsage;
    }
  }
  {
    auto max_ttl = redlock::tools::parse_duration(max_ttl_flag);
    if (!max_ttl || max_ttl->count() == 0 || *max_ttl > redlock::cli::kMaxMaxTtl) {
      usage_error("--max-ttl: " + (!max_ttl ? max_ttl.error()
                                   : max_ttl->count() == 0
                                       ? std::string("must be more than 0")
                                       : "longer than " + redlock::tools::format_duration(
                                                              redlock::cli::kMaxMaxTtl)));
      return kExitUsage;
    }
    globals.max_ttl = *max_ttl;
    if (restart_grace_flag) {
      auto grace = redlock::tools::parse_duration(*restart_grace_flag);
      if (!grace || *grace > redlock::cli::kMaxRestartGrace) {
        usage_error("--restart-grace: " +
                    (grace ? "longer than " +
                                 redlock::tools::format_duration(redlock::cli::kMaxRestartGrace)
                           : grace.error()));
        return kExitUsage;
      }
      globals.restart_grace = *grace;
    }
    if (node_timeout_flag) {
      auto timeout = redlock::tools::parse_duration(*node_timeout_flag);
      if (!timeout || timeout->count() == 0 || *timeout > redlock::cli::kMaxDelay) {
        usage_error("--node-timeout: " + (!timeout ? timeout.error()
                                          : timeout->count() == 0
                                              ? std::string("must be more than 0")
                                              : "longer than " + redlock::tools::format_duration(
                                                                     redlock::cli::kMaxDelay)));
        return kExitUsage;
      }
      globals.node_timeout = *timeout;
    }
    globals.fencing = !no_fencing;
    globals.tls.verify_peer = !tls_insecure;
  }
  if (ttl.count() > 0) {
    if (auto problem = redlock::tools::ttl_problem(ttl, globals.max_ttl, globals.node_timeout)) {
      usage_error(*problem);
      return kExitUsage;
    }
  }

  auto nodes = redlock::cli::resolve_nodes(
      {nodes_flag, config_flag, env("REDLOCK_NODES"), env("XDG_CONFIG_HOME"), env("HOME")});
  if (!nodes) {
    usage_error(nodes.error());
    return kExitUsage;
  }
  globals.nodes = std::move(nodes->nodes);

  if (sub == acquire_cmd) return redlock::cli::cmd_acquire(globals, acquire);
  if (sub == release_cmd) {
    return redlock::cli::cmd_release(globals, release_resource, release_token);
  }
  if (sub == extend_cmd) {
    return redlock::cli::cmd_extend(globals, extend_resource, extend_token, extend_ttl_ms);
  }
  if (sub == status_cmd) {
    return redlock::cli::cmd_status(globals, status_timeout_ms, status_clock_ms);
  }
  return redlock::cli::cmd_run(globals, run);
}

}  // namespace

int main(int argc, char** argv) {
  // A node that closes its connection must not kill the tool with SIGPIPE,
  // nor a closed stdout (`redlock acquire x | true`): writes fail instead,
  // and acquire releases a lock whose token it could not print. `run` gives
  // its command the default back.
  ::signal(SIGPIPE, SIG_IGN);
  // The commands catch what can go wrong between a grant and its output
  // themselves (they release the lock); this only keeps anything else from
  // ending in std::terminate.
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "redlock: internal error: " << e.what() << '\n';
  } catch (...) {
    std::cerr << "redlock: internal error\n";
  }
  return kExitFailure;
}
