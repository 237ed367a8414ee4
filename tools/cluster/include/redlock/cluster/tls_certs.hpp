// redlock/cluster/tls_certs.hpp: certificates for local TLS nodes (the
// tests and redlock-bench --tls), made with the openssl command once per
// process (tls_files()), in a temporary directory that is removed when the
// process exits.
//
//   ca        the CA every server and client certificate chains to
//   server    CN=localhost; SAN DNS:localhost, IP:127.0.0.1, IP:::1; for
//             servers and, with clientAuth, for a replica or a sentinel
//             speaking TLS to its master
//   client    CN=redlock-client, a client certificate (mutual TLS)
//   other_ca  an unrelated CA: trusting it instead of `ca` must fail
//
// Also tls_server_args(), the redis-server arguments of a TLS port, and
// free_tcp_ports() to pick TLS ports.
//
// Threading: call from the test's main thread. Errors: tls_files() returns
// the openssl command that failed with its output.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <tl/expected.hpp>
#include <vector>

#include "redlock/cluster/free_ports.hpp"

extern char** environ;

namespace redlock::testing {

struct TlsFiles {
  std::filesystem::path dir;
  std::filesystem::path ca_cert, ca_key;
  std::filesystem::path server_cert, server_key;
  std::filesystem::path client_cert, client_key;
  std::filesystem::path other_ca_cert;
};

namespace tls_detail {

// Runs openssl with `args` in `dir` (fork/exec, no shell); its output goes
// to dir/openssl.log. Error: the command and the end of its output.
inline tl::expected<void, std::string> openssl(const std::filesystem::path& dir,
                                               std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  const auto log = dir / "openssl.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  std::filesystem::current_path(dir, ec);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "openssl", &actions, nullptr, argv.data(), environ);
  std::filesystem::current_path(cwd, ec);
  posix_spawn_file_actions_destroy(&actions);
  std::string command;
  for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
  if (rc != 0) return tl::make_unexpected("cannot run " + command + ": " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  std::ifstream in(log);
  std::stringstream out;
  out << in.rdbuf();
  return tl::make_unexpected(command + " failed: " + out.str());
}

inline tl::expected<void, std::string> key(const std::filesystem::path& dir,
                                           const std::string& name) {
  return openssl(dir, {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                       name + ".key"});
}

// A certificate for `name`.key with `subject` and the extensions in `ext`,
// signed by `issuer` (or by itself when issuer is empty).
inline tl::expected<void, std::string> cert(const std::filesystem::path& dir,
                                            const std::string& name, const std::string& subject,
                                            const std::string& ext, const std::string& issuer,
                                            int serial) {
  std::ofstream(dir / (name + ".ext")) << ext;
  if (auto ok = key(dir, name); !ok) return ok;
  if (auto ok = openssl(
          dir, {"req", "-new", "-key", name + ".key", "-subj", subject, "-out", name + ".csr"});
      !ok) {
    return ok;
  }
  std::vector<std::string> args = {
      "x509",     "-req",        "-in",         name + ".csr",          "-days", "30",
      "-extfile", name + ".ext", "-set_serial", std::to_string(serial), "-out",  name + ".crt"};
  if (issuer.empty()) {
    args.insert(args.end(), {"-signkey", name + ".key"});
  } else {
    args.insert(args.end(), {"-CA", issuer + ".crt", "-CAkey", issuer + ".key"});
  }
  return openssl(dir, args);
}

class Holder {
 public:
  Holder() {
    std::string templ = (std::filesystem::temp_directory_path() / "redlock-tls.XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      error_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    const std::filesystem::path dir = templ;
    files_.dir = dir;
    const std::string ca_ext =
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n";
    const std::string leaf =
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "authorityKeyIdentifier=keyid\n";
    tl::expected<void, std::string> ok;
    if (ok) ok = cert(dir, "ca", "/O=redlock tests/CN=redlock test CA", ca_ext, "", 1);
    if (ok) ok = cert(dir, "other_ca", "/O=elsewhere/CN=another CA", ca_ext, "", 2);
    if (ok) {
      ok = cert(dir, "server", "/O=redlock tests/CN=localhost",
                leaf +
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n",
                "ca", 3);
    }
    if (ok) {
      ok = cert(dir, "client", "/O=redlock tests/CN=redlock-client",
                leaf + "extendedKeyUsage=clientAuth\n", "ca", 4);
    }
    if (!ok) {
      error_ = ok.error();
      return;
    }
    files_.ca_cert = dir / "ca.crt";
    files_.ca_key = dir / "ca.key";
    files_.server_cert = dir / "server.crt";
    files_.server_key = dir / "server.key";
    files_.client_cert = dir / "client.crt";
    files_.client_key = dir / "client.key";
    files_.other_ca_cert = dir / "other_ca.crt";
  }
  ~Holder() {
    std::error_code ec;
    if (!files_.dir.empty()) std::filesystem::remove_all(files_.dir, ec);
  }
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;

  tl::expected<const TlsFiles*, std::string> get() const {
    if (!error_.empty()) return tl::make_unexpected(error_);
    return &files_;
  }

 private:
  TlsFiles files_;
  std::string error_;
};

}  // namespace tls_detail

// The test binary's certificates, made on the first call.
inline tl::expected<const TlsFiles*, std::string> tls_files() {
  static const tls_detail::Holder holder;
  return holder.get();
}

using redlock::cluster::free_tcp_ports;

// redis-server arguments for a TLS port with the test certificates.
// `auth_clients`: require a client certificate (mutual TLS). `tls_port` may
// be ClusterOptions::kExtraPort, for a port the local cluster picks.
inline std::vector<std::string> tls_server_args(const TlsFiles& f, std::string_view tls_port,
                                                bool auth_clients = false) {
  return {"--tls-port",         std::string(tls_port),
          "--tls-cert-file",    f.server_cert.string(),
          "--tls-key-file",     f.server_key.string(),
          "--tls-ca-cert-file", f.ca_cert.string(),
          "--tls-auth-clients", auth_clients ? "yes" : "no"};
}
inline std::vector<std::string> tls_server_args(const TlsFiles& f, int tls_port,
                                                bool auth_clients = false) {
  return tls_server_args(f, std::to_string(tls_port), auth_clients);
}

}  // namespace redlock::testing
