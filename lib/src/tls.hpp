// tls.hpp: TLS for the engine's connections: OpenSSL over memory BIOs.
//
// A TlsContext is one client's SSL_CTX, built from ClientOptions::tls when
// the client connects (every file is read then, on the caller's thread, never
// on the loop thread), and a cache of one TLS session per endpoint, so that a
// reconnect to the same server resumes instead of running a full handshake.
//
// A TlsSession is one connection attempt's TLS state and does no I/O: the
// Connection hands it the ciphertext it read and gets plaintext back, hands
// it plaintext and writes the ciphertext it gets back. Until the handshake is
// done, plaintext handed to it waits in the caller's buffer; nothing is ever
// sent in the clear. The libuv stream stays the transport, so every socket the
// engine opens can speak TLS without anything from hiredis.
//
// Threading: a TlsContext is created on any thread and then used on the loop
// thread only; a TlsSession lives on the loop thread. Ownership: the Engine
// owns the TlsContext, which outlives every connection; a Connection owns its
// TlsSession and frees it with the attempt's socket (also when the attempt is
// dropped half-way through the handshake).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "redlock/options.hpp"
#include "redlock/result.hpp"

struct ssl_st;
struct ssl_ctx_st;
struct bio_st;
struct ssl_session_st;

namespace redlock::detail {

// Why TLS failed on a connection. `permanent`: a refusal that will not go
// away by itself (a certificate that does not verify, a protocol mismatch),
// retried at the slowest pace like a wrong password.
struct TlsFailure {
  std::string why;
  bool permanent = true;
};

// What the handshake established.
struct TlsPeer {
  std::string protocol;  // "TLSv1.3"
  std::string cipher;    // "TLS_AES_256_GCM_SHA384"
  std::string subject;   // the server certificate's subject, RFC 2253
  std::optional<std::chrono::system_clock::time_point> not_after;
  bool resumed = false;  // an earlier session was resumed (no full handshake)
};

class TlsContext {
 public:
  // Reads the CA file and directory (or the system's trust store when
  // neither is set), the client certificate and its key. Errors:
  // kInvalidArgument naming the option and the file, with OpenSSL's reason.
  [[nodiscard]] static Result<std::unique_ptr<TlsContext>> create(const TlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  [[nodiscard]] bool verify_peer() const noexcept { return verify_peer_; }
  // The name certificates are checked against when TlsOptions::server_name
  // overrides the nodes' own ("" when it does not).
  [[nodiscard]] const std::string& server_name() const noexcept { return server_name_; }

 private:
  friend class TlsSession;
  TlsContext() = default;

  // The session saved for `key`, if any (still owned by the cache).
  [[nodiscard]] ssl_session_st* session(const std::string& key) const;
  // Takes the caller's reference to `session`.
  void keep_session(const std::string& key, ssl_session_st* session);
  void forget_session(const std::string& key);

  ssl_ctx_st* ctx_ = nullptr;
  bool verify_peer_ = true;
  std::string server_name_;
  std::unordered_map<std::string, ssl_session_st*> sessions_;
};

class TlsSession {
 public:
  // `name`: what the server's certificate must be issued for (a DNS name, or
  // an IP literal checked against its IP addresses) and, for a DNS name, the
  // SNI sent. `endpoint`: which saved session to offer and to update (the
  // address connected to). Error: kInternal (OpenSSL could not allocate).
  [[nodiscard]] static Result<std::unique_ptr<TlsSession>> create(TlsContext& context,
                                                                  const std::string& name,
                                                                  const std::string& endpoint);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Starts the handshake (its first flight goes to output()).
  [[nodiscard]] std::optional<TlsFailure> start();
  // Ciphertext from the socket: drives the handshake, then appends what it
  // decrypts to `plain`.
  [[nodiscard]] std::optional<TlsFailure> receive(const char* data, std::size_t size,
                                                  std::string& plain);
  // Encrypts `plain` and empties it, once the handshake is done; until then
  // leaves it untouched.
  [[nodiscard]] std::optional<TlsFailure> encrypt(std::string& plain);
  // Queues a close_notify alert (a graceful end).
  void close_notify();
  // Ciphertext waiting for the socket. The caller takes what it writes.
  [[nodiscard]] std::string& output();
  [[nodiscard]] bool has_output() const;

  [[nodiscard]] bool established() const noexcept { return established_; }
  // What the handshake established (empty until established()).
  [[nodiscard]] const TlsPeer& peer() const noexcept { return peer_; }

 private:
  friend class TlsContext;
  TlsSession(TlsContext& context, std::string name, std::string endpoint);
  std::optional<TlsFailure> handshake();
  TlsFailure failure(int code);
  void on_established();
  static int on_new_session(ssl_st* ssl, ssl_session_st* session);

  TlsContext& context_;
  std::string name_;
  std::string endpoint_;
  ssl_st* ssl_ = nullptr;
  bio_st* in_ = nullptr;   // ciphertext from the socket (owned by ssl_)
  bio_st* out_ = nullptr;  // ciphertext for the socket (owned by ssl_)
  std::string output_;
  bool established_ = false;
  TlsPeer peer_;
};

}  // namespace redlock::detail
