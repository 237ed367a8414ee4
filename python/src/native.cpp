#include "native.hpp"

#include <pybind11/stl.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

namespace redlock::python {
namespace {

using std::chrono::milliseconds;

// Upper bound of every duration crossing from Python: 1e9 s. Far beyond any
// option the engine accepts, and small enough that adding it to a
// steady_clock time point in nanoseconds cannot overflow.
constexpr std::int64_t kMaxDurationMs = 1'000'000'000'000;

// How often a wait on the main thread wakes up to run signal handlers.
constexpr milliseconds kSignalSlice{50};

std::atomic<int> g_blocking_calls{0};
std::atomic<unsigned long> g_main_thread{0};

Error closed_error() { return Error(ErrorCode::kShuttingDown, "the client is closed"); }

void check_ms(const char* what, std::int64_t value, std::int64_t min) {
  if (value < min || value > kMaxDurationMs) {
    throw py::value_error(std::string(what) + " = " + std::to_string(value) +
                          " ms is out of range [" + std::to_string(min) + ", " +
                          std::to_string(kMaxDurationMs) + "]");
  }
}

// A result handed from the loop thread to a blocked caller.
template <typename T>
struct Pending {
  std::mutex mutex;
  std::condition_variable ready;
  std::optional<Result<T>> value;
  std::atomic<bool> done{false};  // value is set: a spinning waiter reads this

  void put(Result<T> r) {
    {
      std::lock_guard lock(mutex);
      value.emplace(std::move(r));
    }
    done.store(true, std::memory_order_release);
    ready.notify_one();
  }
};

// Without the GIL: checks for the result, yielding between checks, for as
// long as `gate` allows (ClientOptions::blocking_spin, while recent waits
// were short), before the caller sleeps on the condition variable. A result
// that comes by then needs no wake-up of a sleeping thread.
template <typename T>
void spin(const Pending<T>& pending, const SpinGate& gate) {
  detail::spin_until([&pending] { return pending.done.load(std::memory_order_acquire); },
                     gate.spin());
}

template <typename T>
auto fill(const std::shared_ptr<Pending<T>>& pending) {
  return [pending](Result<T> r) { pending->put(std::move(r)); };
}

// Counts the threads inside a blocking wait (see blocking_calls()).
struct BlockingCall {
  BlockingCall() { g_blocking_calls.fetch_add(1); }
  ~BlockingCall() { g_blocking_calls.fetch_sub(1); }
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;
};

// GIL held on entry and on return; released while waiting. The wait is
// recorded in `gate`.
template <typename T>
Result<T> wait_plain(Pending<T>& pending, SpinGate& gate) {
  BlockingCall counted;
  py::gil_scoped_release nogil;
  const auto start = std::chrono::steady_clock::now();
  spin(pending, gate);
  std::unique_lock lock(pending.mutex);
  pending.ready.wait(lock, [&] { return pending.value.has_value(); });
  gate.record(std::chrono::steady_clock::now() - start);
  return std::move(*pending.value);
}

// The same, waking every kSignalSlice to run Python's signal handlers (they
// only run on the main thread). Empty when one raised: the error is set.
template <typename T>
std::optional<Result<T>> wait_interruptible(Pending<T>& pending, SpinGate& gate) {
  BlockingCall counted;
  const auto start = std::chrono::steady_clock::now();
  for (bool first = true;; first = false) {
    {
      py::gil_scoped_release nogil;
      if (first) spin(pending, gate);
      std::unique_lock lock(pending.mutex);
      if (pending.ready.wait_for(lock, kSignalSlice, [&] { return pending.value.has_value(); })) {
        gate.record(std::chrono::steady_clock::now() - start);
        return std::move(*pending.value);
      }
    }
    if (PyErr_CheckSignals() != 0) return std::nullopt;
  }
}

bool on_main_thread() { return PyThread_get_thread_ident() == g_main_thread.load(); }

// Runs an engine callback's outcome on the dispatcher's thread, with the GIL,
// if the client still exists.
template <typename T, typename Finish>
auto via_dispatcher(const std::shared_ptr<Dispatcher>& dispatcher, std::weak_ptr<NativeClient> weak,
                    Finish finish) {
  return [dispatcher, weak = std::move(weak), finish](Result<T> r) {
    (void)dispatcher->push([weak, finish, r = std::move(r)]() mutable {
      if (auto self = weak.lock()) finish(*self, std::move(r));
    });
  };
}

// Python logging levels, as numbers (logging.DEBUG is 10, ...).
int python_level(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return 5;
    case spdlog::level::debug:
      return 10;
    case spdlog::level::info:
      return 20;
    case spdlog::level::warn:
      return 30;
    case spdlog::level::err:
      return 40;
    default:
      return 50;
  }
}

spdlog::level::level_enum spdlog_level(int python) {
  if (python <= 5) return spdlog::level::trace;
  if (python <= 10) return spdlog::level::debug;
  if (python <= 20) return spdlog::level::info;
  if (python <= 30) return spdlog::level::warn;
  if (python <= 40) return spdlog::level::err;
  return spdlog::level::critical;
}

// The engine's log records, handed to logging.getLogger("redlock") by the
// dispatcher (the engine logs on its loop thread, which never takes the GIL).
class PythonLogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit PythonLogSink(std::shared_ptr<Dispatcher> dispatcher)
      : dispatcher_(std::move(dispatcher)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const int level = python_level(msg.level);
    std::string text(msg.payload.data(), msg.payload.size());
    (void)dispatcher_->push([level, text = std::move(text)] {
      try {
        py::module_::import("logging").attr("getLogger")("redlock").attr("log")(level, text);
      } catch (py::error_already_set&) {
        // Logging is shutting down or a handler failed: drop the record.
      }
    });
  }
  void flush_() override {}

 private:
  std::shared_ptr<Dispatcher> dispatcher_;
};

}  // namespace

// --- errors --------------------------------------------------------------------

py::tuple node_results(const std::vector<NodeResult>& nodes) {
  py::tuple out(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    out[i] = py::make_tuple(n.node, std::string(to_string(n.status)), n.detail,
                            static_cast<double>(n.rtt.count()) / 1e6);
  }
  return out;
}

py::object make_error(const Error& error) {
  return py::cast(
      EngineError{static_cast<int>(error.code()), error.message(), node_results(error.nodes())});
}

int blocking_calls() noexcept { return g_blocking_calls.load(); }

void set_main_thread(unsigned long ident) noexcept { g_main_thread.store(ident); }

// --- AcquireSpec -----------------------------------------------------------------

AcquireOptions AcquireSpec::options(std::int64_t max_wait_ms) const {
  if (max_wait_ms != -1) check_ms("max_wait", max_wait_ms, 0);
  AcquireOptions o;
  o.max_wait = max_wait_ms < 0 ? milliseconds::max() : milliseconds(max_wait_ms);
  o.max_attempts = 0;
  o.retry_delay = milliseconds(retry_delay_ms);
  o.retry_jitter = milliseconds(retry_jitter_ms);
  o.min_validity = milliseconds(min_validity_ms);
  o.node_timeout = milliseconds(node_timeout_ms);
  o.wake_on_release = wake_on_release;
  o.contest_gate = contest_gate;
  return o;
}

AutoExtendOptions AcquireSpec::keep() const {
  AutoExtendOptions k;
  k.extend_at_remaining = extend_at_remaining;
  k.ttl = milliseconds(extend_ttl_ms);
  // Like Client::acquire_guard: the extensions use the acquire's node timeout.
  k.node_timeout = milliseconds(node_timeout_ms);
  k.max_extensions = max_extensions;
  k.max_hold = milliseconds(max_hold_ms);
  return k;
}

// --- NativeLock --------------------------------------------------------------------

NativeLock::NativeLock(std::weak_ptr<NativeClient> owner, Lock lock)
    : owner_(std::move(owner)), lock_(std::move(lock)), pid_(::getpid()) {}

NativeLock::NativeLock(std::weak_ptr<NativeClient> owner, LockGuard guard)
    : owner_(std::move(owner)), lock_(guard.lock()), guard_(std::move(guard)), pid_(::getpid()) {}

NativeLock::~NativeLock() {
  // In a forked child the guard's engine is a copy whose threads do not
  // exist and whose mutexes may be locked: never touch it.
  if (guard_ && ::getpid() != pid_) (void)new LockGuard(std::move(*guard_));
}

Lock NativeLock::current() const { return guard_ && guard_->owns_lock() ? guard_->lock() : lock_; }

std::optional<Error> NativeLock::lost_error() const {
  return guard_ ? guard_->lost_error() : std::nullopt;
}

Lock NativeLock::take() {
  released_ = true;
  if (guard_) {
    auto held = guard_->dismiss();  // stops the extensions
    guard_.reset();
    if (held) return std::move(*held);
  }
  return lock_;
}

void NativeLock::update(Lock extended) { lock_ = std::move(extended); }

void NativeLock::abandon() noexcept {
  if (auto owner = owner_.lock()) {
    owner->release_nowait(*this);
  } else if (!released_ && ::getpid() == pid_) {
    // The client is gone: a guard's destructor would release in the
    // background, but its engine is gone too. The key expires with its ttl.
    released_ = true;
  }
}

// --- NativeClient ------------------------------------------------------------------

py::object NativeClient::connect(ClientOptions options, int log_level) {
  std::shared_ptr<NativeClient> self(new NativeClient());
  self->pid_ = ::getpid();
  self->dispatcher_ = Dispatcher::start();
  auto logger = std::make_shared<spdlog::logger>(
      "redlock", std::make_shared<PythonLogSink>(self->dispatcher_));
  logger->set_level(spdlog_level(log_level));
  options.logger = std::move(logger);
  self->spin_gate_ = std::make_unique<SpinGate>(options.blocking_spin);
  Result<std::unique_ptr<Client>> client;
  {
    BlockingCall counted;
    py::gil_scoped_release nogil;
    client = Client::connect(std::move(options));
  }
  if (!client) return make_error(client.error());  // ~NativeClient stops the dispatcher
  self->nodes_ = (*client)->nodes();
  self->client_ = std::move(*client);
  return py::cast(std::move(self));
}

NativeClient::~NativeClient() {
  if (forked()) {
    // The loop and dispatcher threads do not exist in this process: joining
    // them would hang, and their mutexes may be held. Leak both.
    (void)client_.release();
    (void)new std::shared_ptr<Dispatcher>(std::move(dispatcher_));
    return;
  }
  py::error_scope keep;  // a destructor must not clobber an exception in flight
  try {
    close();
  } catch (...) {
    // Nothing to report to from a destructor.
  }
}

bool NativeClient::forked() const noexcept { return pid_ != 0 && ::getpid() != pid_; }

Client* NativeClient::usable(Error* why) {
  if (forked()) {
    *why = Error(ErrorCode::kShuttingDown,
                 "this client was made in process " + std::to_string(pid_) +
                     " and cannot be used in a child process after fork() (this is process " +
                     std::to_string(::getpid()) + "): make a new Client in the child");
    return nullptr;
  }
  if (!client_) {
    *why = closed_error();
    return nullptr;
  }
  return client_.get();
}

void NativeClient::close() {
  if (closing_ || forked()) return;
  closing_ = true;
  std::unique_ptr<Client> client = std::move(client_);
  {
    py::gil_scoped_release nogil;
    // Completes pending operations with kShuttingDown (their outcomes go to
    // the dispatcher) and joins the loop thread, which never needs the GIL.
    client.reset();
    // Delivers those outcomes (it takes the GIL, released here), then ends.
    if (dispatcher_) dispatcher_->stop();
  }
  fail_targets();
}

std::uint64_t NativeClient::add_target(py::object loop, py::object callback, py::object subject) {
  const auto id = next_id_++;
  targets_.emplace(id, Target{std::move(loop), std::move(callback), std::move(subject)});
  return id;
}

py::object NativeClient::make_lock(Lock lock, const std::optional<AutoExtendOptions>& keep) {
  if (!keep) return py::cast(std::make_unique<NativeLock>(weak_from_this(), std::move(lock)));
  if (!client_) return make_error(closed_error());  // nothing left to extend it
  auto guard = LockGuard::keep_alive(*client_, lock, *keep);
  if (!guard) {
    (void)client_->async_release(lock, [](const Result<ReleaseReport>&) {});
    return make_error(guard.error());
  }
  return py::cast(std::make_unique<NativeLock>(weak_from_this(), std::move(*guard)));
}

py::object NativeClient::acquire(const std::string& resource, const AcquireSpec& spec,
                                 std::int64_t max_wait_ms) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  auto pending = std::make_shared<Pending<Lock>>();
  std::stop_source stop;
  AcquireOptions options = spec.options(max_wait_ms);
  options.stop = stop.get_token();
  if (auto posted =
          client->async_acquire(resource, milliseconds(spec.ttl_ms), options, fill(pending));
      !posted) {
    return make_error(posted.error());
  }
  std::optional<Result<Lock>> outcome;
  if (on_main_thread()) {
    outcome = wait_interruptible(*pending, *spin_gate_);
  } else {
    outcome = wait_plain(*pending, *spin_gate_);
  }
  if (!outcome) {
    // A signal handler raised (Ctrl-C): end the acquire; the engine releases
    // what its open round set, and a grant that raced the stop is released
    // here before the exception goes on.
    py::error_already_set interrupted;
    stop.request_stop();
    Result<Lock> last = wait_plain(*pending, *spin_gate_);
    if (last && client_) {
      auto done = std::make_shared<Pending<ReleaseReport>>();
      if (client_->async_release(*last, fill(done))) (void)wait_plain(*done, *spin_gate_);
    }
    throw interrupted;
  }
  if (!*outcome) return make_error(outcome->error());
  std::optional<AutoExtendOptions> keep;
  if (spec.auto_extend) keep = spec.keep();
  return make_lock(std::move(**outcome), keep);
}

py::object NativeClient::acquire_async(const std::string& resource, const AcquireSpec& spec,
                                       std::int64_t max_wait_ms, py::object loop,
                                       py::object callback) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  auto op = std::make_shared<AsyncOp>();
  AcquireOptions options = spec.options(max_wait_ms);
  options.stop = op->stop.get_token();
  std::optional<AutoExtendOptions> keep;
  if (spec.auto_extend) keep = spec.keep();
  const auto id = add_target(std::move(loop), std::move(callback), py::none());
  auto finish = [id, keep](NativeClient& self, Result<Lock> r) {
    self.finish_acquire(id, std::move(r), keep);
  };
  if (auto posted =
          client->async_acquire(resource, milliseconds(spec.ttl_ms), options,
                                via_dispatcher<Lock>(dispatcher_, weak_from_this(), finish));
      !posted) {
    targets_.erase(id);
    return make_error(posted.error());
  }
  return py::cast(op);
}

void NativeClient::finish_acquire(std::uint64_t id, Result<Lock> result,
                                  const std::optional<AutoExtendOptions>& keep) {
  settle(id, result ? make_lock(std::move(*result), keep) : make_error(result.error()));
}

py::object NativeClient::release(NativeLock& lock) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  if (lock.released()) throw py::value_error("the lock was already released");
  const Lock held = lock.take();
  auto pending = std::make_shared<Pending<ReleaseReport>>();
  if (auto posted = client->async_release(held, fill(pending)); !posted) {
    return make_error(posted.error());
  }
  Result<ReleaseReport> report = wait_plain(*pending, *spin_gate_);
  if (!report) return make_error(report.error());
  return py::make_tuple(report->deleted, node_results(report->nodes));
}

py::object NativeClient::release_async(NativeLock& lock, py::object loop, py::object callback) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  if (lock.released()) throw py::value_error("the lock was already released");
  const Lock held = lock.take();
  const auto id = add_target(std::move(loop), std::move(callback), py::none());
  auto finish = [id](NativeClient& self, Result<ReleaseReport> r) {
    py::object value;
    if (r) {
      value = py::make_tuple(r->deleted, node_results(r->nodes));
    } else {
      value = make_error(r.error());
    }
    self.settle(id, std::move(value));
  };
  if (auto posted = client->async_release(
          held, via_dispatcher<ReleaseReport>(dispatcher_, weak_from_this(), finish));
      !posted) {
    targets_.erase(id);
    return make_error(posted.error());
  }
  return py::none();
}

namespace {

py::object lock_state(const redlock::LockState& s) {
  py::object ttl = py::none();
  if (s.ttl != std::chrono::milliseconds::max()) ttl = py::int_(s.ttl.count());
  return py::make_tuple(s.held, s.holding, s.free, ttl);
}

template <typename T>
py::object or_none(const std::optional<T>& v) {
  return v ? py::cast(*v) : py::none();
}

template <typename Rep, typename Period>
py::object count_or_none(const std::optional<std::chrono::duration<Rep, Period>>& v) {
  return v ? py::cast(v->count()) : py::none();
}

py::dict shard_health(const redlock::ShardHealth& s) {
  py::dict d;
  d["master"] = s.master;
  d["slots"] = s.slots;
  d["replicas"] = s.replicas;
  d["reachable"] = s.reachable;
  d["error"] = s.error;
  d["voting"] = s.voting;
  d["not_voting_reason"] = s.not_voting_reason;
  return d;
}

py::dict node_health(const redlock::NodeHealth& n) {
  py::dict d;
  d["node"] = n.node;
  d["reachable"] = n.reachable;
  d["answering"] = n.answering;
  d["voting"] = n.voting;
  d["not_voting_reason"] = n.not_voting_reason;
  d["votes_again_in_ms"] = count_or_none(n.votes_again_in);
  d["error"] = n.error;
  d["version"] = n.version;
  d["run_id"] = n.run_id;
  d["uptime_s"] = count_or_none(n.uptime);
  d["rtt_us"] = count_or_none(n.rtt);
  d["aof_enabled"] = or_none(n.aof_enabled);
  d["appendfsync"] = n.appendfsync;
  d["maxmemory_policy"] = n.maxmemory_policy;
  d["eviction_can_drop_locks"] = n.eviction_can_drop_locks;
  d["clock_suspect"] = n.clock_suspect;
  d["clock_reason"] = n.clock_reason;
  d["clock_rate"] = or_none(n.clock_rate);
  d["tls"] = n.tls;
  d["tls_protocol"] = n.tls_protocol;
  d["tls_cipher"] = n.tls_cipher;
  d["tls_peer_subject"] = n.tls_peer_subject;
  d["tls_peer_not_after"] = n.tls_peer_not_after
                                ? py::cast(std::chrono::duration_cast<std::chrono::seconds>(
                                               n.tls_peer_not_after->time_since_epoch())
                                               .count())
                                : py::none();
  d["tls_resumed"] = n.tls_resumed;
  py::list shards;
  for (const auto& shard : n.shards) shards.append(shard_health(shard));
  d["shards"] = shards;
  return d;
}

}  // namespace

py::object NativeClient::health(std::int64_t timeout_ms) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  auto pending = std::make_shared<Pending<redlock::HealthReport>>();
  if (auto posted = client->async_health(milliseconds(timeout_ms), fill(pending)); !posted) {
    return make_error(posted.error());
  }
  Result<redlock::HealthReport> report = wait_plain(*pending, *spin_gate_);
  if (!report) return make_error(report.error());
  py::dict d;
  d["quorum"] = report->quorum;
  d["voting"] = report->voting;
  d["quorum_available"] = report->quorum_available();
  py::list nodes;
  for (const auto& n : report->nodes) nodes.append(node_health(n));
  d["nodes"] = nodes;
  return d;
}

py::object NativeClient::inspect(const std::string& resource, std::int64_t timeout_ms) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  auto pending = std::make_shared<Pending<redlock::LockState>>();
  if (auto posted = client->async_inspect(resource, milliseconds(timeout_ms), fill(pending));
      !posted) {
    return make_error(posted.error());
  }
  Result<redlock::LockState> state = wait_plain(*pending, *spin_gate_);
  if (!state) return make_error(state.error());
  return lock_state(*state);
}

py::object NativeClient::inspect_async(const std::string& resource, std::int64_t timeout_ms,
                                       py::object loop, py::object callback) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  const auto id = add_target(std::move(loop), std::move(callback), py::none());
  auto finish = [id](NativeClient& self, Result<redlock::LockState> r) {
    self.settle(id, r ? lock_state(*r) : make_error(r.error()));
  };
  if (auto posted = client->async_inspect(
          resource, milliseconds(timeout_ms),
          via_dispatcher<redlock::LockState>(dispatcher_, weak_from_this(), finish));
      !posted) {
    targets_.erase(id);
    return make_error(posted.error());
  }
  return py::none();
}

void NativeClient::release_nowait(NativeLock& lock) noexcept {
  if (lock.released()) return;
  try {
    const Lock held = lock.take();
    if (client_ && !forked())
      (void)client_->async_release(held, [](const Result<ReleaseReport>&) {});
  } catch (...) {
    // Out of memory while queueing: the key expires with its ttl.
  }
}

py::object NativeClient::extend(NativeLock& lock, std::int64_t ttl_ms, bool recreate_missing,
                                std::int64_t min_validity_ms, std::int64_t node_timeout_ms) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  if (lock.released()) throw py::value_error("the lock was already released");
  if (lock.auto_extended()) throw py::value_error("the engine extends this lock itself");
  check_ms("ttl", ttl_ms, 1);
  check_ms("min_validity", min_validity_ms, 1);
  check_ms("node_timeout", node_timeout_ms, 0);
  ExtendOptions options;
  options.recreate_missing = recreate_missing;
  options.min_validity = milliseconds(min_validity_ms);
  options.node_timeout = milliseconds(node_timeout_ms);
  auto pending = std::make_shared<Pending<Lock>>();
  if (auto posted =
          client->async_extend(lock.current(), milliseconds(ttl_ms), options, fill(pending));
      !posted) {
    return make_error(posted.error());
  }
  Result<Lock> extended = wait_plain(*pending, *spin_gate_);
  if (!extended) return make_error(extended.error());
  lock.update(std::move(*extended));
  return py::none();
}

py::object NativeClient::extend_async(py::object lock_object, std::int64_t ttl_ms,
                                      bool recreate_missing, std::int64_t min_validity_ms,
                                      std::int64_t node_timeout_ms, py::object loop,
                                      py::object callback) {
  Error why;
  Client* client = usable(&why);
  if (client == nullptr) return make_error(why);
  auto& lock = lock_object.cast<NativeLock&>();
  if (lock.released()) throw py::value_error("the lock was already released");
  if (lock.auto_extended()) throw py::value_error("the engine extends this lock itself");
  check_ms("ttl", ttl_ms, 1);
  check_ms("min_validity", min_validity_ms, 1);
  check_ms("node_timeout", node_timeout_ms, 0);
  ExtendOptions options;
  options.recreate_missing = recreate_missing;
  options.min_validity = milliseconds(min_validity_ms);
  options.node_timeout = milliseconds(node_timeout_ms);
  const Lock current = lock.current();
  const auto id = add_target(std::move(loop), std::move(callback), std::move(lock_object));
  auto finish = [id](NativeClient& self, Result<Lock> r) { self.finish_extend(id, std::move(r)); };
  if (auto posted =
          client->async_extend(current, milliseconds(ttl_ms), options,
                               via_dispatcher<Lock>(dispatcher_, weak_from_this(), finish));
      !posted) {
    targets_.erase(id);
    return make_error(posted.error());
  }
  return py::none();
}

void NativeClient::finish_extend(std::uint64_t id, Result<Lock> result) {
  if (!result) {
    settle(id, make_error(result.error()));
    return;
  }
  if (auto it = targets_.find(id); it != targets_.end()) {
    it->second.subject.cast<NativeLock&>().update(std::move(*result));
  }
  settle(id, py::none());
}

void NativeClient::settle(std::uint64_t id, py::object value) {
  auto node = targets_.extract(id);
  if (node.empty()) {
    discard(value);
    return;
  }
  Target target = std::move(node.mapped());
  try {
    target.loop.attr("call_soon_threadsafe")(target.callback, value);
  } catch (py::error_already_set&) {
    // The event loop is closed: nobody will take the outcome.
    discard(value);
  }
}

void NativeClient::discard(const py::object& value) noexcept {
  try {
    if (py::isinstance<NativeLock>(value)) release_nowait(value.cast<NativeLock&>());
  } catch (...) {
    // The key expires with its ttl.
  }
}

void NativeClient::fail_targets() {
  auto targets = std::move(targets_);
  targets_.clear();
  for (auto& [id, target] : targets) {
    try {
      target.loop.attr("call_soon_threadsafe")(target.callback, make_error(closed_error()));
    } catch (py::error_already_set&) {
      // The event loop is closed: nobody waits for this outcome.
    }
  }
}

}  // namespace redlock::python
