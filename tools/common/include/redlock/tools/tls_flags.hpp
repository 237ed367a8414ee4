// redlock/tools/tls_flags.hpp: the TLS options of a tool's command line, the
// same in every tool that connects to lock nodes.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "redlock/options.hpp"

namespace redlock::tools {

// How a tool spells its TLS options. `flag_prefix` comes before "tls-" in each
// flag ("--" gives --tls-ca, "--lock-" gives --lock-tls-ca), `env_prefix`
// before "TLS_" in each environment variable ("REDLOCK_" gives
// REDLOCK_TLS_CA), and `nodes` is how the help text names the nodes ("nodes",
// "lock nodes").
struct TlsFlagNames {
  std::string flag_prefix = "--";
  std::string env_prefix = "REDLOCK_";
  std::string nodes = "nodes";
};

// Adds --tls-ca, --tls-ca-dir, --tls-cert, --tls-key, --tls-server-name
// (into `tls`) and --tls-insecure (into `insecure`: the caller sets
// tls.verify_peer = !insecure after parsing), each with its environment
// variable.
void add_tls_flags(CLI::App& app, TlsOptions& tls, bool& insecure, const TlsFlagNames& names = {});

}  // namespace redlock::tools
