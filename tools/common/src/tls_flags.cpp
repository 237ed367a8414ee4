#include "redlock/tools/tls_flags.hpp"

namespace redlock::tools {

void add_tls_flags(CLI::App& app, TlsOptions& tls, bool& insecure, const TlsFlagNames& names) {
  const auto flag = [&](const char* name) {
    std::string f = names.flag_prefix;
    f += "tls-";
    f += name;
    return f;
  };
  const auto env = [&](const char* name) {
    std::string e = names.env_prefix;
    e += "TLS_";
    e += name;
    return e;
  };
  const std::string& nodes = names.nodes;
  std::string help = "CA certificates (PEM) the ";
  help += nodes;
  help += "' certificates must chain to (default: the system's trust store)";
  app.add_option(flag("ca"), tls.ca_file, help)->envname(env("CA"));
  app.add_option(flag("ca-dir"), tls.ca_dir, "A directory of CA certificates (PEM)")
      ->envname(env("CA_DIR"));
  help = "Client certificate (PEM) for ";
  help += nodes;
  help += " that require one (mutual TLS)";
  app.add_option(flag("cert"), tls.cert_file, help)->envname(env("CERT"));
  app.add_option(flag("key"), tls.key_file,
                 "The client certificate's private key (PEM, not encrypted)")
      ->envname(env("KEY"));
  help = "The name every ";
  help += nodes.substr(0, nodes.size() - 1);  // "nodes" -> "node"
  help += "'s certificate must be issued for, also sent as SNI (default: each node's host)";
  app.add_option(flag("server-name"), tls.server_name, help)->envname(env("SERVER_NAME"));
  help = "Do not verify the ";
  help += nodes;
  help += "' certificates (tests only: anyone on the path could pose as a node)";
  app.add_flag(flag("insecure"), insecure, help)->envname(env("INSECURE"));
}

}  // namespace redlock::tools
