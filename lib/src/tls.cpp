#include "tls.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>
#include <system_error>

namespace redlock::detail {
namespace {

namespace fs = std::filesystem;

// TLS sessions kept for resumption: one per endpoint; a client has a few
// dozen endpoints at most (nodes, subscribers, sentinels, the masters they
// named), so a bound only matters for a master that keeps moving.
constexpr std::size_t kMaxSessions = 256;
// Plaintext is decrypted in pieces of at most this much.
constexpr std::size_t kReadChunk = 16 * 1024;

Unexpected invalid(std::string message) {
  return Unexpected(Error(ErrorCode::kInvalidArgument, std::move(message)));
}

// The reason of OpenSSL's most recent error on this thread ("no such file",
// "wrong version number"), and clears the queue.
std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  if (const char* reason = ERR_reason_error_string(e)) return reason;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

bool is_ip_literal(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// Every PEM certificate in `path` into `store`; how many were read.
std::size_t load_pem_file(X509_STORE* store, const fs::path& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) return 0;
  std::size_t n = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++n;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the end of the file reads as an error
  return n;
}

// Every certificate in the files of `dir` (not its sub-directories), read
// now: OpenSSL's own directory lookup reads files during verification, which
// would be file I/O on the loop thread. `seen` skips files reached twice
// (the hash links of a c_rehash directory).
Result<std::size_t> load_pem_dir(X509_STORE* store, const fs::path& dir, std::set<fs::path>& seen) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return Unexpected(Error(ErrorCode::kInvalidArgument, ec.message()));
  std::size_t n = 0;
  for (const auto& entry : it) {
    std::error_code fe;
    if (!entry.is_regular_file(fe)) continue;
    auto real = fs::canonical(entry.path(), fe);
    if (fe || !seen.insert(real).second) continue;
    n += load_pem_file(store, real);
  }
  return n;
}

// The system's trust store, OpenSSL's default file and directories (or
// SSL_CERT_FILE and SSL_CERT_DIR), read now.
std::size_t load_system_store(X509_STORE* store) {
  const char* file = std::getenv(X509_get_default_cert_file_env());
  if (file == nullptr) file = X509_get_default_cert_file();
  const char* dirs = std::getenv(X509_get_default_cert_dir_env());
  if (dirs == nullptr) dirs = X509_get_default_cert_dir();
  std::set<fs::path> seen;
  std::size_t n = load_pem_file(store, file);
  std::error_code ec;
  if (auto real = fs::canonical(file, ec); !ec) seen.insert(real);
  const std::string list = dirs;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto colon = list.find(':', start);
    if (colon == std::string::npos) colon = list.size();
    if (colon > start) {
      if (auto loaded = load_pem_dir(store, list.substr(start, colon - start), seen)) n += *loaded;
    }
    start = colon + 1;
  }
  return n;
}

// Never prompt on a terminal for a key's pass phrase: an encrypted key fails
// to load instead.
int no_password(char*, int, int, void*) { return 0; }

std::optional<std::chrono::system_clock::time_point> to_time_point(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string subject_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data);  // BIO_get_mem_data
  std::string out(data, size > 0 ? static_cast<std::size_t>(size) : 0);
  BIO_free(bio);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------

Result<std::unique_ptr<TlsContext>> TlsContext::create(const TlsOptions& o) {
  if (!o.key_file.empty() && o.cert_file.empty()) {
    return invalid("tls.key_file " + in_quotes(o.key_file) +
                   " is set without tls.cert_file: a client key needs its certificate");
  }
  ERR_clear_error();
  std::unique_ptr<TlsContext> self(new TlsContext);
  self->verify_peer_ = o.verify_peer;
  self->server_name_ = o.server_name;
  self->ctx_ = SSL_CTX_new(TLS_client_method());
  if (self->ctx_ == nullptr) {
    return Unexpected(
        Error(ErrorCode::kInternal, "cannot create a TLS context: " + openssl_reason()));
  }
  SSL_CTX* ctx = self->ctx_;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_default_passwd_cb(ctx, no_password);
  // Sessions are kept per endpoint by this context (not OpenSSL's cache,
  // which is keyed by session id and not by the server asked).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &TlsSession::on_new_session);
  SSL_CTX_set_verify(ctx, o.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);

  if (!o.server_name.empty()) {
    const bool ok = std::all_of(o.server_name.begin(), o.server_name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_' ||
             c == ':' || c == '*';
    });
    if (!ok) return invalid("tls.server_name " + in_quotes(o.server_name) + " is not a host name");
  }

  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  if (!o.ca_file.empty()) {
    if (SSL_CTX_load_verify_file(ctx, o.ca_file.c_str()) != 1) {
      return invalid("tls.ca_file " + in_quotes(o.ca_file) + ": cannot read CA certificates (" +
                     openssl_reason() + ")");
    }
  }
  if (!o.ca_dir.empty()) {
    std::set<fs::path> seen;
    auto loaded = load_pem_dir(store, o.ca_dir, seen);
    if (!loaded) {
      return invalid("tls.ca_dir " + in_quotes(o.ca_dir) + ": " + loaded.error().message());
    }
    if (*loaded == 0) {
      return invalid("tls.ca_dir " + in_quotes(o.ca_dir) + " holds no PEM certificate");
    }
  }
  if (o.ca_file.empty() && o.ca_dir.empty() && o.verify_peer && load_system_store(store) == 0) {
    return invalid(
        "no trusted CA: the system's trust store is empty or missing; set tls.ca_file or "
        "tls.ca_dir");
  }

  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
      return invalid("tls.cert_file " + in_quotes(o.cert_file) + ": cannot read the certificate (" +
                     openssl_reason() + ")");
    }
    const std::string& key = o.key_file.empty() ? o.cert_file : o.key_file;
    const auto mismatch = [&](const std::string& why) {
      return invalid("tls.key_file " + in_quotes(key) + " does not match the certificate in " +
                     "tls.cert_file " + in_quotes(o.cert_file) + " (" + why + ")");
    };
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
      // OpenSSL checks the key against the certificate as it loads it: a
      // key that was read but is another certificate's is not unreadable.
      const unsigned long e = ERR_peek_last_error();
      const std::string why = openssl_reason();
      if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
        return mismatch(why);
      }
      if (o.key_file.empty()) {
        return invalid("tls.cert_file " + in_quotes(o.cert_file) +
                       " holds no private key; set tls.key_file (" + why + ")");
      }
      return invalid("tls.key_file " + in_quotes(o.key_file) + ": cannot read the private key (" +
                     why + "; an encrypted key is not supported)");
    }
    if (SSL_CTX_check_private_key(ctx) != 1) return mismatch(openssl_reason());
  }
  ERR_clear_error();
  return self;
}

TlsContext::~TlsContext() {
  for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
  SSL_CTX_free(ctx_);
}

ssl_session_st* TlsContext::session(const std::string& key) const {
  auto it = sessions_.find(key);
  return it == sessions_.end() ? nullptr : it->second;
}

void TlsContext::keep_session(const std::string& key, ssl_session_st* session) {
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    SSL_SESSION_free(it->second);
    it->second = session;
    return;
  }
  if (sessions_.size() >= kMaxSessions) {
    for (auto& [k, s] : sessions_) SSL_SESSION_free(s);
    sessions_.clear();
  }
  sessions_.emplace(key, session);
}

void TlsContext::forget_session(const std::string& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  SSL_SESSION_free(it->second);
  sessions_.erase(it);
}

// ---------------------------------------------------------------------------

TlsSession::TlsSession(TlsContext& context, std::string name, std::string endpoint)
    : context_(context), name_(std::move(name)), endpoint_(std::move(endpoint)) {}

Result<std::unique_ptr<TlsSession>> TlsSession::create(TlsContext& context, const std::string& name,
                                                       const std::string& endpoint) {
  ERR_clear_error();
  // The session cache is keyed by the name too: a session verified for one
  // name must never stand for another.
  std::unique_ptr<TlsSession> self(new TlsSession(context, name, endpoint + " " + name));
  const auto fail = [] {
    return Unexpected(Error(ErrorCode::kInternal, "cannot start TLS: " + openssl_reason()));
  };
  self->ssl_ = SSL_new(context.ctx_);
  if (self->ssl_ == nullptr) return fail();
  self->in_ = BIO_new(BIO_s_mem());
  self->out_ = BIO_new(BIO_s_mem());
  if (self->in_ == nullptr || self->out_ == nullptr) {
    BIO_free(self->in_);
    BIO_free(self->out_);
    self->in_ = self->out_ = nullptr;
    return fail();
  }
  // An empty input BIO means "wait for more", not the end of the stream.
  BIO_ctrl(self->in_, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, nullptr);  // BIO_set_mem_eof_return
  SSL_set_bio(self->ssl_, self->in_, self->out_);
  SSL_set_connect_state(self->ssl_);
  SSL_set_ex_data(self->ssl_, 0, self.get());
  const bool ip = is_ip_literal(name);
  if (context.verify_peer_) {
    // The chain is checked by the context's SSL_VERIFY_PEER; the name here.
    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(self->ssl_), name.c_str())
                      : SSL_set1_host(self->ssl_, name.c_str());
    if (ok != 1) return fail();
    SSL_set_hostflags(self->ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  // SNI carries host names only (RFC 6066).
  // (SSL_set_tlsext_host_name, without the macro's cast.)
  if (!ip && SSL_ctrl(self->ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                      const_cast<char*>(name.c_str())) != 1) {
    return fail();
  }
  if (ssl_session_st* saved = context.session(self->endpoint_)) SSL_set_session(self->ssl_, saved);
  return self;
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) {
    SSL_set_ex_data(ssl_, 0, nullptr);
    SSL_free(ssl_);  // frees both BIOs
  }
}

int TlsSession::on_new_session(ssl_st* ssl, ssl_session_st* session) {
  auto* self = static_cast<TlsSession*>(SSL_get_ex_data(ssl, 0));
  if (self == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  // A copy: OpenSSL marks the connection's own session object not
  // resumable when the connection ends without our close_notify (a server
  // that closed it, a reset), which is exactly when a reconnect wants it.
  ssl_session_st* copy = SSL_SESSION_dup(session);
  if (copy == nullptr) return 0;
  self->context_.keep_session(self->endpoint_, copy);
  return 0;  // the connection keeps its reference; the cache has its copy
}

std::optional<TlsFailure> TlsSession::start() {
  ERR_clear_error();
  return handshake();
}

std::optional<TlsFailure> TlsSession::handshake() {
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    on_established();
    return std::nullopt;
  }
  const int code = SSL_get_error(ssl_, rc);
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return std::nullopt;
  return failure(code);
}

std::optional<TlsFailure> TlsSession::receive(const char* data, std::size_t size,
                                              std::string& plain) {
  ERR_clear_error();
  if (size > 0 && BIO_write(in_, data, static_cast<int>(size)) != static_cast<int>(size)) {
    return TlsFailure{"TLS failed: cannot buffer what was read (" + openssl_reason() + ")", false};
  }
  if (!established_) {
    if (auto failed = handshake()) return failed;
    if (!established_) return std::nullopt;
  }
  for (;;) {
    const std::size_t old = plain.size();
    plain.resize(old + kReadChunk);
    std::size_t got = 0;
    const int rc = SSL_read_ex(ssl_, plain.data() + old, kReadChunk, &got);
    plain.resize(old + (rc == 1 ? got : 0));
    if (rc == 1) continue;
    const int code = SSL_get_error(ssl_, rc);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return std::nullopt;
    return failure(code);
  }
}

std::optional<TlsFailure> TlsSession::encrypt(std::string& plain) {
  if (!established_ || plain.empty()) return std::nullopt;
  ERR_clear_error();
  std::size_t written = 0;
  // The output BIO grows as needed: a write takes everything at once.
  if (SSL_write_ex(ssl_, plain.data(), plain.size(), &written) != 1 || written != plain.size()) {
    return failure(SSL_get_error(ssl_, 0));
  }
  plain.clear();
  return std::nullopt;
}

void TlsSession::close_notify() {
  if (!established_) return;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string& TlsSession::output() {
  const std::size_t pending = BIO_ctrl_pending(out_);
  if (pending > 0) {
    const std::size_t old = output_.size();
    output_.resize(old + pending);
    const int got = BIO_read(out_, output_.data() + old, static_cast<int>(pending));
    output_.resize(old + (got > 0 ? static_cast<std::size_t>(got) : 0));
  }
  return output_;
}

bool TlsSession::has_output() const { return !output_.empty() || BIO_ctrl_pending(out_) > 0; }

void TlsSession::on_established() {
  established_ = true;
  peer_.protocol = SSL_get_version(ssl_);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_)) {
    peer_.cipher = SSL_CIPHER_get_name(cipher);
  }
  if (X509* cert = SSL_get0_peer_certificate(ssl_)) {
    peer_.subject = subject_of(cert);
    peer_.not_after = to_time_point(X509_get0_notAfter(cert));
  }
  peer_.resumed = SSL_session_reused(ssl_) == 1;
}

TlsFailure TlsSession::failure(int code) {
  const std::string stage = established_ ? "TLS failed: " : "TLS handshake failed: ";
  if (code == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    return {"connection closed by the server (TLS close_notify)", false};
  }
  if (code != SSL_ERROR_SSL) {
    ERR_clear_error();
    return {stage + "unexpected error " + std::to_string(code), false};
  }
  // A certificate that does not verify: say why, in OpenSSL's words, and
  // never offer the saved session of that endpoint again.
  const long verify = SSL_get_verify_result(ssl_);
  if (!established_ && verify != X509_V_OK) {
    ERR_clear_error();
    context_.forget_session(endpoint_);
    std::string why = stage + "certificate verify failed: " + X509_verify_cert_error_string(verify);
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      why += " (the certificate is not issued for " + in_quotes(name_) + ")";
    }
    return {why, true};
  }
  const unsigned long e = ERR_peek_last_error();
  std::string why = stage + openssl_reason();
  if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
    switch (ERR_GET_REASON(e)) {
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
        why += " (does the server speak TLS on this port?)";
        break;
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        why += " (the server requires a client certificate: tls.cert_file and tls.key_file)";
        break;
      default:
        break;
    }
  }
  context_.forget_session(endpoint_);
  return {why, true};
}

}  // namespace redlock::detail
