// module.cpp: the bindings of redlock._native. Private to the redlock
// package, which checks arguments and converts durations before calling in;
// see native.hpp for the threading rules.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "native.hpp"

namespace py = pybind11;
using redlock::python::AcquireSpec;
using redlock::python::AsyncOp;
using redlock::python::EngineError;
using redlock::python::NativeClient;
using redlock::python::NativeLock;

namespace {

using std::chrono::milliseconds;

constexpr std::int64_t kMaxMs = 1'000'000'000'000;  // 1e9 s, as native.cpp

void check_ms(const char* what, std::int64_t value, std::int64_t min) {
  if (value < min || value > kMaxMs) {
    throw py::value_error(std::string(what) + " = " + std::to_string(value) +
                          " ms is out of range [" + std::to_string(min) + ", " +
                          std::to_string(kMaxMs) + "]");
  }
}

double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

py::dict histogram(const redlock::Histogram& h) {
  py::dict d;
  d["upper_bounds"] = h.upper_bounds;
  d["counts"] = h.counts;
  d["count"] = h.count;
  d["sum"] = h.sum;
  return d;
}

py::dict metrics_dict(const redlock::MetricsSnapshot& s) {
  py::dict d;
  d["acquire_latency_us"] = histogram(s.acquire_latency_us);
  d["rounds_per_acquire"] = histogram(s.rounds_per_acquire);
  d["acquires_granted"] = s.acquires_granted;
  py::dict failed;
  for (std::size_t i = 0; i < s.acquires_failed.size(); ++i) {
    failed[py::str(std::string(redlock::to_string(static_cast<redlock::ErrorCode>(i))))] =
        s.acquires_failed[i];
  }
  d["acquires_failed"] = failed;
  d["contended_rounds"] = s.contended_rounds;
  d["extensions"] = s.extensions;
  d["extensions_failed"] = s.extensions_failed;
  d["locks_lost"] = s.locks_lost;
  d["late_replies_released"] = s.late_replies_released;
  d["fence_raises"] = s.fence_raises;
  d["wakeups"] = s.wakeups;
  py::list nodes;
  for (const auto& n : s.nodes) {
    py::dict node;
    node["node"] = n.node;
    node["connected"] = n.connected;
    node["reconnects"] = n.reconnects;
    node["restarts"] = n.restarts;
    node["timeouts"] = n.timeouts;
    node["errors"] = n.errors;
    node["rtt_us"] = histogram(n.rtt_us);
    node["clock_suspect"] = n.clock_suspect;
    node["clock_reason"] = n.clock_reason;
    node["clock_rate"] =
        n.clock_rate ? py::object(py::float_(*n.clock_rate)) : py::object(py::none());
    node["clock_alarms"] = n.clock_alarms;
    nodes.append(std::move(node));
  }
  d["nodes"] = std::move(nodes);
  return d;
}

AcquireSpec make_spec(std::int64_t ttl_ms, std::int64_t retry_delay_ms,
                      std::int64_t retry_jitter_ms, std::int64_t min_validity_ms,
                      std::int64_t node_timeout_ms, bool wake_on_release, bool auto_extend,
                      double extend_at_remaining, std::int64_t extend_ttl_ms, int max_extensions,
                      std::int64_t max_hold_ms, bool contest_gate) {
  check_ms("ttl", ttl_ms, 1);
  check_ms("retry_delay", retry_delay_ms, 0);
  check_ms("retry_jitter", retry_jitter_ms, 0);
  check_ms("min_validity", min_validity_ms, 1);
  check_ms("node_timeout", node_timeout_ms, 0);
  check_ms("extend_ttl", extend_ttl_ms, 0);
  check_ms("max_hold", max_hold_ms, 0);
  if (!std::isfinite(extend_at_remaining))
    throw py::value_error("extend_at_remaining is not finite");
  if (max_extensions < 0) throw py::value_error("max_extensions is negative");
  AcquireSpec s;
  s.ttl_ms = ttl_ms;
  s.retry_delay_ms = retry_delay_ms;
  s.retry_jitter_ms = retry_jitter_ms;
  s.min_validity_ms = min_validity_ms;
  s.node_timeout_ms = node_timeout_ms;
  s.wake_on_release = wake_on_release;
  s.contest_gate = contest_gate;
  s.auto_extend = auto_extend;
  s.extend_at_remaining = extend_at_remaining;
  s.extend_ttl_ms = extend_ttl_ms;
  s.max_extensions = max_extensions;
  s.max_hold_ms = max_hold_ms;
  return s;
}

// ClientOptions::tls from the Python tls dict's checked values.
redlock::TlsOptions tls_options(std::string ca_file, std::string ca_dir, std::string cert_file,
                                std::string key_file, std::string server_name, bool verify) {
  redlock::TlsOptions t;
  t.ca_file = std::move(ca_file);
  t.ca_dir = std::move(ca_dir);
  t.cert_file = std::move(cert_file);
  t.key_file = std::move(key_file);
  t.server_name = std::move(server_name);
  t.verify_peer = verify;
  return t;
}

py::object connect(std::vector<std::string> nodes, std::string username, std::string password,
                   double drift_factor, std::int64_t node_timeout_ms,
                   std::int64_t release_timeout_ms, bool release_wait_every_node,
                   std::int64_t busy_poll_us, std::int64_t blocking_spin_us,
                   std::int64_t connect_timeout_ms, std::int64_t reconnect_min_ms,
                   std::int64_t reconnect_max_ms, std::int64_t max_ttl_ms,
                   std::optional<std::int64_t> restart_grace_ms,
                   std::int64_t clock_check_interval_ms, bool exclude_suspect_clocks, bool fencing,
                   redlock::TlsOptions tls, int log_level) {
  check_ms("node_timeout", node_timeout_ms, 0);
  check_ms("release_timeout", release_timeout_ms, 0);
  check_ms("connect_timeout", connect_timeout_ms, 0);
  check_ms("reconnect_min", reconnect_min_ms, 0);
  check_ms("reconnect_max", reconnect_max_ms, 0);
  check_ms("max_ttl", max_ttl_ms, 0);
  check_ms("clock_check_interval", clock_check_interval_ms, 0);
  if (restart_grace_ms) check_ms("restart_grace", *restart_grace_ms, 0);
  if (busy_poll_us < 0 || busy_poll_us > kMaxMs) throw py::value_error("busy_poll is out of range");
  if (blocking_spin_us < 0 || blocking_spin_us > kMaxMs) {
    throw py::value_error("blocking_spin is out of range");
  }
  if (!std::isfinite(drift_factor)) throw py::value_error("drift_factor is not finite");
  redlock::ClientOptions o;
  o.nodes = std::move(nodes);
  o.username = std::move(username);
  o.password = std::move(password);
  o.drift_factor = drift_factor;
  o.node_timeout = milliseconds(node_timeout_ms);
  o.release_timeout = milliseconds(release_timeout_ms);
  o.release_wait = release_wait_every_node ? redlock::ClientOptions::ReleaseWait::kEveryNode
                                           : redlock::ClientOptions::ReleaseWait::kMajority;
  o.busy_poll = std::chrono::microseconds(busy_poll_us);
  o.blocking_spin = std::chrono::microseconds(blocking_spin_us);
  o.connect_timeout = milliseconds(connect_timeout_ms);
  o.reconnect_min = milliseconds(reconnect_min_ms);
  o.reconnect_max = milliseconds(reconnect_max_ms);
  o.max_ttl = milliseconds(max_ttl_ms);
  if (restart_grace_ms) o.restart_grace = milliseconds(*restart_grace_ms);
  o.clock_check_interval = milliseconds(clock_check_interval_ms);
  o.exclude_suspect_clocks = exclude_suspect_clocks;
  o.fencing = fencing;
  o.tls = std::move(tls);
  return NativeClient::connect(std::move(o), log_level);
}

// The engine, or an EngineError to return instead.
template <typename Fn>
py::object with_engine(NativeClient& c, Fn fn) {
  redlock::Error why;
  redlock::Client* client = c.usable(&why);
  if (client == nullptr) return redlock::python::make_error(why);
  auto value = fn(*client);
  if constexpr (std::is_base_of_v<py::object, decltype(value)>) {
    return value;
  } else {
    return py::cast(std::move(value));
  }
}

py::object lost_error(const NativeLock& lock) {
  auto e = lock.lost_error();
  return e ? redlock::python::make_error(*e) : py::object(py::none());
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "The engine behind the redlock package (private: use the redlock package).";

  m.def("connect", &connect, py::kw_only(), py::arg("nodes"), py::arg("username"),
        py::arg("password"), py::arg("drift_factor"), py::arg("node_timeout_ms"),
        py::arg("release_timeout_ms"), py::arg("release_wait_every_node"), py::arg("busy_poll_us"),
        py::arg("blocking_spin_us"), py::arg("connect_timeout_ms"), py::arg("reconnect_min_ms"),
        py::arg("reconnect_max_ms"), py::arg("max_ttl_ms"), py::arg("restart_grace_ms"),
        py::arg("clock_check_interval_ms"), py::arg("exclude_suspect_clocks"), py::arg("fencing"),
        py::arg("tls"), py::arg("log_level"),
        "A NativeClient, or an EngineError (the options, or the engine could not start)");
  py::class_<redlock::TlsOptions>(m, "TlsOptions",
                                  "ClientOptions::tls (build it with tls_options)");
  m.def("tls_options", &tls_options, py::kw_only(), py::arg("ca_file"), py::arg("ca_dir"),
        py::arg("cert_file"), py::arg("key_file"), py::arg("server_name"), py::arg("verify"),
        "ClientOptions::tls; the files are read by connect()");
  m.def("set_main_thread", &redlock::python::set_main_thread,
        "The ident of the thread whose waits run signal handlers");
  m.def("blocking_calls", &redlock::python::blocking_calls,
        "How many threads are waiting in a blocking call now");
  m.def("version", [] { return std::string(redlock::version()); });
  m.def("defaults", [] {
    // The library's ClientOptions defaults, in the units the Python API
    // takes (seconds), so that a test can keep the two in step.
    const redlock::ClientOptions o;
    const auto s = [](auto d) { return std::chrono::duration<double>(d).count(); };
    py::dict d;
    d["drift_factor"] = o.drift_factor;
    d["release_timeout"] = s(o.release_timeout);
    d["release_wait"] = o.release_wait == redlock::ClientOptions::ReleaseWait::kEveryNode
                            ? "every_node"
                            : "majority";
    d["busy_poll"] = s(o.busy_poll);
    d["blocking_spin"] = s(o.blocking_spin);
    d["connect_timeout"] = s(o.connect_timeout);
    d["reconnect_min"] = s(o.reconnect_min);
    d["reconnect_max"] = s(o.reconnect_max);
    d["max_ttl"] = s(o.max_ttl);
    d["clock_check_interval"] = s(o.clock_check_interval);
    d["exclude_suspect_clocks"] = o.exclude_suspect_clocks;
    d["fencing"] = o.fencing;
    return d;
  });
  m.def("error_code_names", [] {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < redlock::kErrorCodeCount; ++i) {
      names.emplace_back(redlock::to_string(static_cast<redlock::ErrorCode>(i)));
    }
    return names;
  });

  py::class_<EngineError>(m, "EngineError")
      .def_readonly("code", &EngineError::code)
      .def_readonly("message", &EngineError::message)
      .def_readonly("nodes", &EngineError::nodes)
      .def("__repr__", [](const EngineError& e) {
        return "<EngineError " + std::to_string(e.code) + ": " + e.message + ">";
      });

  py::class_<AcquireSpec>(m, "AcquireSpec")
      .def(py::init(&make_spec), py::kw_only(), py::arg("ttl_ms"), py::arg("retry_delay_ms"),
           py::arg("retry_jitter_ms"), py::arg("min_validity_ms"), py::arg("node_timeout_ms"),
           py::arg("wake_on_release"), py::arg("auto_extend"), py::arg("extend_at_remaining"),
           py::arg("extend_ttl_ms"), py::arg("max_extensions"), py::arg("max_hold_ms"),
           py::arg("contest_gate") = false)
      .def_readonly("ttl_ms", &AcquireSpec::ttl_ms)
      .def_readonly("auto_extend", &AcquireSpec::auto_extend);

  py::class_<NativeLock>(m, "NativeLock")
      .def_property_readonly("resource",
                             [](const NativeLock& l) { return py::bytes(l.current().resource()); })
      .def_property_readonly("token", [](const NativeLock& l) { return l.current().token(); })
      .def_property_readonly("fence", [](const NativeLock& l) { return l.current().fence(); })
      .def_property_readonly("ttl", [](const NativeLock& l) { return seconds(l.current().ttl()); })
      .def_property_readonly("remaining",
                             [](const NativeLock& l) { return seconds(l.current().remaining()); })
      .def_property_readonly("expired", [](const NativeLock& l) { return l.current().expired(); })
      .def_property_readonly(
          "votes",
          [](const NativeLock& l) { return redlock::python::node_results(l.current().votes()); })
      .def_property_readonly("released", &NativeLock::released)
      .def_property_readonly("auto_extended", &NativeLock::auto_extended)
      .def_property_readonly("lost", &NativeLock::lost)
      .def_property_readonly("lost_error", &lost_error)
      .def("abandon", &NativeLock::abandon,
           "Releases in the background, through the client if it is still open");

  py::class_<AsyncOp, std::shared_ptr<AsyncOp>>(m, "AsyncOp")
      .def("cancel", &AsyncOp::cancel, "Ends the acquire (any thread); idempotent");

  py::class_<NativeClient, std::shared_ptr<NativeClient>>(m, "NativeClient")
      .def("acquire", &NativeClient::acquire, py::arg("resource"), py::arg("spec"),
           py::arg("max_wait_ms"))
      .def("acquire_async", &NativeClient::acquire_async, py::arg("resource"), py::arg("spec"),
           py::arg("max_wait_ms"), py::arg("loop"), py::arg("callback"))
      .def("release", &NativeClient::release, py::arg("lock"))
      .def("release_async", &NativeClient::release_async, py::arg("lock"), py::arg("loop"),
           py::arg("callback"))
      .def("release_nowait", &NativeClient::release_nowait, py::arg("lock"))
      .def("inspect", &NativeClient::inspect, py::arg("resource"), py::arg("timeout_ms"))
      .def("health", &NativeClient::health, py::arg("timeout_ms"))
      .def("inspect_async", &NativeClient::inspect_async, py::arg("resource"),
           py::arg("timeout_ms"), py::arg("loop"), py::arg("callback"))
      .def("extend", &NativeClient::extend, py::arg("lock"), py::arg("ttl_ms"),
           py::arg("recreate_missing"), py::arg("min_validity_ms"), py::arg("node_timeout_ms"))
      .def("extend_async", &NativeClient::extend_async, py::arg("lock"), py::arg("ttl_ms"),
           py::arg("recreate_missing"), py::arg("min_validity_ms"), py::arg("node_timeout_ms"),
           py::arg("loop"), py::arg("callback"))
      .def("close", &NativeClient::close)
      .def_property_readonly("closed", &NativeClient::closed)
      .def_property_readonly("forked", &NativeClient::forked)
      .def_property_readonly("nodes", [](NativeClient& c) { return c.node_names(); })
      .def_property_readonly("quorum",
                             [](NativeClient& c) { return c.node_names().size() / 2 + 1; })
      .def("connected",
           [](NativeClient& c) {
             return with_engine(c, [](redlock::Client& e) { return e.connected(); });
           })
      .def("metrics",
           [](NativeClient& c) {
             return with_engine(c, [](redlock::Client& e) { return metrics_dict(e.metrics()); });
           })
      .def(
          "prometheus",
          [](NativeClient& c, const std::string& prefix) {
            return with_engine(
                c, [&](redlock::Client& e) { return redlock::to_prometheus(e.metrics(), prefix); });
          },
          py::arg("prefix") = "redlock");
}
