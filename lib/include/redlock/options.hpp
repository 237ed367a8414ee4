// redlock/options.hpp: the options of the client and of each call:
// ClientOptions, AcquireOptions, ExtendOptions, AutoExtendOptions, LockOptions.
//
// Plain structs, validated by Client::connect and Client::acquire: a value out
// of range is refused with ErrorCode::kInvalidArgument and a message naming
// the field; nothing is clamped silently.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace redlock {

class Error;
class MetricsSink;

// TLS to the nodes that ask for it: rediss:// nodes, and sentinels:// nodes
// (both the sentinels and the masters they name). Every other node is plain
// text, whatever is set here; a TLS node is never reached in plain text.
// Client::connect reads every file named here and refuses what it cannot use
// with ErrorCode::kInvalidArgument naming the field and the file. TLS 1.2 is
// the oldest version spoken; a reconnect to the same server resumes the
// session it had.
struct TlsOptions {
  // The certificate authorities the servers' certificates must chain to (PEM):
  // a file and/or a directory whose files are read at connect(). Neither: the
  // system's trust store (OpenSSL's default file and directory, or the
  // SSL_CERT_FILE and SSL_CERT_DIR environment variables).
  std::string ca_file;
  std::string ca_dir;
  // A client certificate (PEM, with its chain) and its private key (PEM, not
  // encrypted), for servers that require one (tls-auth-clients yes). The key
  // may be in cert_file itself; a key without a certificate is refused.
  std::string cert_file;
  std::string key_file;
  // The name every server certificate must be issued for, also sent as SNI.
  // Empty: each node's own host as written (the name, not the address it
  // resolves to); an IP address must be among the certificate's IP
  // addresses. A sentinels:// node's masters are the addresses the sentinels
  // name.
  std::string server_name;
  // Check the servers' certificates: the chain, the dates and the name.
  // false lets anyone on the path pose as a node and read tokens and
  // passwords: for tests only. The client then logs a warning once.
  bool verify_peer = true;
};

struct ClientOptions {
  // The independent Redis masters. One to kMaxNodes of them, no duplicates; a
  // majority (size / 2 + 1) must agree for a lock to be granted. Each is one
  // of:
  //   host:port, ip:port, [ipv6]:port
  //   unix:/path/to/socket
  //   redis://[user[:password]@]host[:port][/db]
  //   sentinel://[user[:password]@]host:port,host:port,.../master-name[/db]
  //     (a Sentinel-managed master: one vote, followed across failovers)
  //   cluster://[user[:password]@]host:port,host:port,...
  //     (a Redis Cluster, named by some of its nodes: one vote; each lock's
  //     commands go to the master of its hash slot, so the resources of one
  //     lock must share a slot, see Client::acquire_all)
  //   rediss://... and sentinels://...: the same over TLS (see `tls`)
  // Passwords never appear in logs, errors or Client::nodes().
  std::vector<std::string> nodes;

  // Credentials sent on every (re)connect to the nodes whose address carries
  // none: a password (AUTH password), or an ACL user and password.
  std::string username;
  std::string password;

  // Certificates and names for the rediss:// and sentinels:// nodes.
  TlsOptions tls;

  // Clock drift allowance as a share of the ttl, in [0, 0.5). Every grant
  // subtracts ttl * drift_factor + 2 ms from the validity.
  double drift_factor = 0.01;

  // How long one node may take to answer one command before its vote counts
  // as "no". 0 picks a small fraction of each lock's ttl: ttl / 200, kept
  // within [10 ms, 250 ms] (the Redlock spec suggests 5-50 ms for a 10 s ttl).
  std::chrono::milliseconds node_timeout{0};

  // Longest a release waits for the nodes before reporting what it has.
  std::chrono::milliseconds release_timeout{1000};

  // When a release reports (Client::release, async_release, LockGuard).
  // kMajority: as soon as a majority of the nodes deleted the key, when the
  // lock is free for the next holder; the nodes that have not answered yet
  // show as kPending in the ReleaseReport, and their deletes carry on in the
  // background (one that fails is replayed when the node is back, like any
  // release, and a key that is missed expires with its ttl). A stalled node
  // then delays no release. Otherwise, and always with kEveryNode: once every
  // node answered, or release_timeout passed. Either way every node is asked,
  // and safety does not change: a release only ever deletes keys that carry
  // the lock's own token. kEveryNode is for callers that read every node's
  // outcome (the redlock CLI's report).
  enum class ReleaseWait { kMajority, kEveryNode };
  ReleaseWait release_wait = ReleaseWait::kMajority;

  // After each reply, request or write, the loop thread keeps polling its
  // sockets for this long before it goes to sleep, yielding the CPU to any
  // other runnable thread between polls. Replies and requests that come
  // within it are picked up without a thread wake-up, which on loopback and
  // fast networks is a large share of a round trip (measured in
  // bench/README.md). Costs up to this much CPU time after each burst of
  // activity; 0 turns it off. At most 10 ms.
  std::chrono::microseconds busy_poll{100};

  // A blocking call of Client or LockGuard (acquire, release, extend, ...)
  // checks for its result for up to this long, yielding the CPU between
  // checks, before its thread goes to sleep, while the recent blocking calls
  // (a moving average) took no more than half of this; otherwise it sleeps at
  // once.
  // A result that comes within it costs no thread wake-up, which on one
  // local node is a quarter of a cycle; spinning through a longer wait only
  // takes the CPU from the servers and the loop (bench/README.md). 0 turns it
  // off. At most 10 ms. (The Python module's blocking calls spin the same way.)
  std::chrono::microseconds blocking_spin{150};

  // TCP connect deadline per attempt; connect() waits at most this long for
  // the first connections before returning (nodes that are down are retried
  // in the background and count as "no" votes meanwhile).
  std::chrono::milliseconds connect_timeout{1000};

  // Reconnect backoff for a broken node: doubles from min to max, with jitter.
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};

  // The largest ttl acquire() and extend() accept. It also sets how long a
  // restarted node stays out of the vote (restart_grace), so keep it close to
  // the longest ttl you use; every client of a cluster should agree on it. A
  // lock held for longer than this is best held with automatic extension.
  std::chrono::milliseconds max_ttl{std::chrono::seconds(60)};

  // Restart-aware voting (the Redlock spec's "delayed restarts", enforced by
  // the client). A node whose run_id changed since the client last connected
  // to it (it restarted, or a Sentinel failover put a replica in its place)
  // does not count toward a majority for this long after the client noticed;
  // a node the client meets for the first time does not count until it has
  // been up this long. It may have lost keys that a lock granted before the
  // restart still relies on. Unset: max_ttl plus its drift allowance.
  // 0: off (only for nodes whose data survives restarts, e.g. with
  // appendfsync always, or for a cluster this program just started empty).
  std::optional<std::chrono::milliseconds> restart_grace;

  // Clock sanity. Redlock assumes that every node's clock runs at nearly the
  // rate of the client's: a key's ttl runs out on the node's clock while the
  // lock's validity is counted on the client's. Every clock_check_interval
  // the client asks each connected node for its TIME (on the node's
  // connection, pipelined with the locks) and compares how far the node's
  // clock moved with how far its own monotonic clock did, the round trip
  // being the error bar. A node whose clock runs faster or slower than
  // drift_factor allows (but never less than 0.1 %, twice what NTP slewing
  // may do), or jumps, is reported: a warning in the log, NodeMetrics::clock_suspect and
  // clock_reason, and an info once it looks sane again (a window of 20
  // intervals with no jump and the rate within bounds). 0: off. Otherwise
  // from 10 ms to 1 h. Needs the TIME command (ACL +time).
  std::chrono::milliseconds clock_check_interval{1000};

  // Leave a node whose clock is suspect out of the vote, as a restarted one
  // is (NodeStatus::kNotVoting, with the clock's reason as the detail): a
  // grant that rests on a node whose keys expire early can be lost before
  // its validity ends. A server the client has not timed yet does not vote
  // either: its first TIME samples are taken 10 ms apart, and it votes once
  // they span long enough to catch a clock running twice as fast (about
  // 10 ms on a local network; a little over one round trip on a distant
  // node; connect() waits for it). Smaller rate errors are caught over the
  // window, and until then such a node can still carry a grant. Off:
  // suspect nodes are only reported. No effect when clock_check_interval is
  // 0, or on a node that refuses TIME (its clock cannot be timed).
  bool exclude_suspect_clocks = true;

  // Fencing tokens: every granted lock carries a number that strictly
  // increases across the successive holders of a resource (Lock::fence()).
  // The counters live on the nodes next to the locks, in keys named
  // "redlock:{<tag>}:fence:<resource>" (the key layout:
  // docs/deployment.md). Costs a Lua script instead of SET NX, and
  // now and then one more round trip. Off: Lock::fence() is 0.
  bool fencing = true;

  // Where logs go. Null: a private logger named "redlock" writing warnings and
  // errors to stderr; the global spdlog default logger is never used.
  std::shared_ptr<spdlog::logger> logger;

  // Also told of every event the engine counts (see metrics.hpp), on the
  // loop thread; the engine's own counters are kept either way.
  std::shared_ptr<MetricsSink> metrics_sink;

  static constexpr std::size_t kMaxNodes = 64;
};

struct AcquireOptions {
  // Retry bounds, whichever comes first. max_wait: no attempt starts after it
  // has passed since the call (0: no time budget). max_attempts: at most this
  // many rounds (0: no count limit). Both 0: exactly one round (try-lock).
  // When max_wait is what stopped the retries the error is kLockWaitTimeout.
  // milliseconds::max() waits for ever. retry_delay and retry_jitter: at most
  // one hour each.
  std::chrono::milliseconds max_wait{0};
  int max_attempts = 0;

  // Pause between rounds: uniform in [retry_delay - retry_jitter,
  // retry_delay + retry_jitter], so contenders do not retry in lock-step.
  std::chrono::milliseconds retry_delay{200};
  std::chrono::milliseconds retry_jitter{100};

  // A grant with less validity left than this is treated as a failure and
  // released at once (a client that stalled while replies were in flight must
  // not believe it holds the lock). At least 1 ms.
  std::chrono::milliseconds min_validity{1};

  // Overrides ClientOptions::node_timeout for this acquire (0: keep it).
  std::chrono::milliseconds node_timeout{0};

  // Wake-on-release. When a round finds the resource held and the acquire
  // will retry, it subscribes (one extra connection per node and client,
  // opened on first use) to the release announcements of its resources: a
  // release (Client::release, a LockGuard) publishes on each node
  // "redlock:{<tag>}:released:<resource>", and the waiter starts its next round at once
  // instead of sleeping out retry_delay. Retries stay bounded by max_attempts
  // and max_wait; when the jittered delay would end past max_wait, the waiter
  // still waits until max_wait for an announcement. The jittered retry stays
  // the fallback: an announcement is missed when it comes before the
  // subscription is active, when the key simply expires, or when a node's
  // subscriber connection is down or refused by an ACL (docs/deployment.md).
  // Several waiters woken by one release all try; after a split vote they
  // retry after short random pauses (a few round trips) for a few rounds.
  bool wake_on_release = true;

  // Contested rounds ask one node first (with wake_on_release and two or
  // more nodes). Once a round found the lock held on its resources' gate
  // node (the node at index hash slot % nodes.size(), the same in every
  // client configured with the same node list in the same order), the
  // rounds that follow the gate's release announcements, and the retries of
  // a contest, send their command to the gate alone, and to the other nodes
  // only once the gate granted it (or could not answer). Waiters woken by
  // one release then meet at one node instead of splitting the vote among
  // several, and one that loses at the gate leaves the other nodes alone
  // and waits for the gate's next announcement, without a contest pause.
  // Of one client's gated waiters on a resource, only the oldest asks the
  // gate at each release. The winner pays one round trip to the gate before
  // the others. The first round of an acquire, and the rounds its retry
  // timer starts, go to every node at once. Safety is the same either way: a
  // majority still has to agree within the validity, timed from before the
  // first send.
  //
  // Off by default: it trades the median wait for the tail. On a loaded
  // 2-core machine it halved the p99 wait of 8 threads of one client at
  // equal throughput, but for 8 single-waiter processes it cut the p99 less
  // and raised the median (bench/README.md): waiters of different clients
  // all try the gate at each release, where a contest's random pauses keep
  // most of them asleep.
  bool contest_gate = false;

  // Cancels the acquire from any thread (std::stop_source::request_stop):
  // a waiting or retrying acquire ends with kCancelled, and any key it had
  // set is released.
  std::stop_token stop;
};

struct ExtendOptions {
  // If a node no longer has the key (it expired there, or the node restarted
  // empty), set it again, but only while the lock is still valid. Off by
  // default: a missing key is never re-created silently.
  bool recreate_missing = false;
  // As in AcquireOptions: an extension leaving less validity than this fails.
  std::chrono::milliseconds min_validity{1};
  // Overrides ClientOptions::node_timeout (0: keep it). The round never runs
  // past the lock's current validity either way.
  std::chrono::milliseconds node_timeout{0};
};

// Automatic extension of a held lock (Client::acquire_guard, with_lock).
struct AutoExtendOptions {
  // Extend when this share of the validity the lock had at its last grant or
  // extension remains, in (0, 1). An extension that gets no quorum is tried
  // again while the lock is still valid; one refused by a majority (the key is
  // gone or has another token) ends it at once.
  double extend_at_remaining = 0.5;
  // The ttl of each extension (0: the ttl the lock was acquired with).
  std::chrono::milliseconds ttl{0};
  // Node timeout of each extension round (0: the acquire's, when the guard
  // comes from acquire_guard or with_lock; else ClientOptions::node_timeout).
  std::chrono::milliseconds node_timeout{0};
  // The Redlock spec asks for a bound on re-acquisitions: at most this many
  // extensions (0: no count limit) and/or no extension that would hold the
  // lock past max_hold after it was granted (0: no time limit). At least one
  // of the two must be set. When a bound stops the extensions the lock runs
  // out at its validity and is then reported lost.
  int max_extensions = 100;
  std::chrono::milliseconds max_hold{0};
  // Called once, on the loop thread, when the lock is lost: an extension was
  // refused, or the validity ran out. Must not block.
  std::function<void(const Error&)> on_lost;
};

// Options of Client::with_lock.
struct LockOptions {
  AcquireOptions acquire;
  AutoExtendOptions extend;
};

}  // namespace redlock
