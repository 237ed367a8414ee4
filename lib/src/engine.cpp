#include "engine.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "acquire_op.hpp"
#include "cluster_node.hpp"
#include "extend_op.hpp"
#include "health_op.hpp"
#include "inspect_op.hpp"
#include "node.hpp"
#include "release_op.hpp"
#include "token.hpp"
#include "validate.hpp"

namespace redlock::detail {

Engine::Engine(ClientOptions options)
    : options_(std::move(options)), spin_gate_(options_.blocking_spin) {
  restart_grace_ = options_.restart_grace.value_or(
      options_.max_ttl +
      std::chrono::ceil<milliseconds>(drift_allowance(options_.max_ttl, options_.drift_factor)));
  logger_ = options_.logger;
  if (!logger_) {
    // A private logger: never registered, never the global default one.
    logger_ = std::make_shared<spdlog::logger>("redlock",
                                               std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger_->set_level(spdlog::level::warn);
  }
}

Result<std::shared_ptr<Engine>> Engine::start(ClientOptions options) {
  auto parsed = validate_client_options(options);
  if (!parsed) return Unexpected(parsed.error());

  // TLS: every file is read now, on the caller's thread, and a bad one fails
  // connect() rather than every node later.
  const bool any_tls =
      std::any_of(parsed->begin(), parsed->end(), [](const NodeAddress& a) { return a.tls; });
  const TlsOptions& t = options.tls;
  const bool tls_set = !t.ca_file.empty() || !t.ca_dir.empty() || !t.cert_file.empty() ||
                       !t.key_file.empty() || !t.server_name.empty() || !t.verify_peer;
  std::unique_ptr<TlsContext> tls;
  if (any_tls || tls_set) {
    auto created = TlsContext::create(t);
    if (!created) return Unexpected(created.error());
    tls = std::move(*created);
  }

  std::shared_ptr<Engine> engine(new Engine(std::move(options)));
  Engine& e = *engine;
  e.tls_ = std::move(tls);
  if (any_tls && !e.tls_->verify_peer()) {
    e.logger_->warn(
        "TLS peer verification is off (tls.verify_peer = false): the nodes' certificates are "
        "not checked, so anyone on the network path can pose as a node");
  } else if (!any_tls && tls_set) {
    e.logger_->warn(
        "TLS options are set, but no node is a rediss:// or sentinels:// node: every node is "
        "reached in plain text");
  }
  e.metrics_ = std::make_unique<Metrics>(parsed->size(), e.options_.metrics_sink);
  auto loop = Loop::create(e.options_.busy_poll);
  if (!loop) return Unexpected(loop.error());
  e.loop_ = std::move(*loop);
  e.node_ctx_ = std::make_unique<NodeContext>(NodeContext{
      *e.loop_, e.options_, e.restart_grace_, *e.logger_, *e.metrics_, e, e.tls_.get()});
  for (std::size_t i = 0; i < parsed->size(); ++i) {
    auto& address = (*parsed)[i];
    e.node_names_.push_back(address.display);
    if (address.kind == NodeAddress::Kind::kCluster) {
      e.has_cluster_ = true;
      e.nodes_.push_back(std::make_unique<ClusterNode>(*e.node_ctx_, i, std::move(address)));
    } else {
      e.nodes_.push_back(std::make_unique<Node>(*e.node_ctx_, i, std::move(address)));
    }
  }
  e.wake_ = std::make_unique<WakeHub>(*e.node_ctx_, e.nodes_);
  e.ctx_ = std::make_unique<OpContext>(
      OpContext{e, *e.loop_, *e.metrics_, *e.logger_, e.options_, e.active_, e.wake_.get()});

  // The thread keeps the engine alive, so a shutdown started on the loop
  // thread itself (a Client destroyed in its own callback) can detach.
  if (auto started = e.loop_->start([&e] { e.on_start(); }, [&e] { e.on_stop(); }, nullptr, engine);
      !started) {
    return Unexpected(started.error());
  }
  std::unique_lock lk(e.mutex_);
  e.cv_.wait_for(lk, e.options_.connect_timeout + milliseconds(100),
                 [&] { return e.first_attempts_ >= e.nodes_.size(); });
  return engine;
}

Engine::~Engine() { shutdown(); }

void Engine::shutdown() noexcept {
  if (loop_) loop_->stop();
}

void Engine::on_start() {
  for (auto& n : nodes_) n->start();
  if (options_.clock_check_interval.count() > 0) {
    loop_->schedule(loop_->now() + options_.clock_check_interval, [this] { clock_tick(); });
  }
}

void Engine::on_stop() {
  // Complete every pending operation (an acquire in flight releases what it
  // may have set), then write what is queued and close the connections.
  active_.abort_all();
  loop_->flush();
  for (auto& n : nodes_) n->close();
  wake_->close();
}

void Engine::clock_tick() {
  if (loop_->stopping()) return;
  for (auto& n : nodes_) n->sample_clock();
  loop_->schedule(loop_->now() + options_.clock_check_interval, [this] { clock_tick(); });
}

Result<void> Engine::post_acquire(std::vector<std::string> resources, milliseconds ttl,
                                  const AcquireOptions& options, AcquireCallback callback) {
  AcquireDone done(std::move(callback));
  return post_acquire_op(std::move(resources), ttl, options, done);
}

Result<void> Engine::post_acquire(std::vector<std::string> resources, milliseconds ttl,
                                  const AcquireOptions& options,
                                  std::promise<Result<Lock>>& promise) {
  AcquireDone done(std::move(promise));
  auto posted = post_acquire_op(std::move(resources), ttl, options, done);
  if (!posted) promise = std::get<std::promise<Result<Lock>>>(std::move(done));
  return posted;
}

Result<void> Engine::post_acquire_op(std::vector<std::string> resources, milliseconds ttl,
                                     const AcquireOptions& options, AcquireDone& done) {
  if (auto ok = validate_resources(resources); !ok) return ok;
  if (has_cluster_) {
    if (auto ok = validate_one_slot(resources); !ok) return ok;
  }
  if (auto ok = validate_acquire(resources.front(), ttl, options, options_); !ok) return ok;
  if (const auto* callback = std::get_if<AcquireCallback>(&done); callback && !*callback) {
    return Unexpected(Error(ErrorCode::kInvalidArgument, "acquire callback is empty"));
  }
  auto token = make_token();
  if (!token) return Unexpected(token.error());
  auto op = std::make_shared<AcquireOp>(*ctx_, std::move(resources), std::move(*token), ttl,
                                        options, std::move(done));
  auto posted = post([op] { op->start(); });
  if (!posted) done = op->take_done();  // never started: the caller's again
  return posted;
}

Result<void> Engine::post_extend(const Lock& lock, milliseconds ttl, const ExtendOptions& options,
                                 AcquireCallback callback) {
  if (auto ok = validate_resources(lock.resources()); !ok) return ok;
  if (has_cluster_) {
    if (auto ok = validate_one_slot(lock.resources()); !ok) return ok;
  }
  if (auto ok = validate_lock_token(lock.token()); !ok) return ok;
  if (auto ok = validate_extend(ttl, options, options_); !ok) return ok;
  if (!callback) return Unexpected(Error(ErrorCode::kInvalidArgument, "extend callback is empty"));
  if (lock.expired()) {
    return Unexpected(Error(ErrorCode::kExpired, describe(lock.resources()) +
                                                     ": the lock has expired; it can only be "
                                                     "acquired again"));
  }
  return post([this, lock, ttl, options, cb = std::move(callback)]() mutable {
    start_extend(*ctx_, lock, ttl, options, std::move(cb));
  });
}

Result<void> Engine::post_release(const Lock& lock, ReleaseCallback callback) {
  if (auto ok = validate_resources(lock.resources()); !ok) return ok;
  if (auto ok = validate_lock_token(lock.token()); !ok) return ok;
  auto key_expiry = lock.valid_until() + std::chrono::seconds(1);
  return post([this, resources = lock.resources(), token = lock.token(), key_expiry,
               cb = std::move(callback)]() mutable {
    start_release(*ctx_, std::move(resources), std::move(token), key_expiry, {}, std::move(cb),
                  /*announce=*/true);
  });
}

Result<void> Engine::post_health(milliseconds timeout, HealthCallback callback) {
  if (timeout.count() <= 0 || timeout > kMaxDelay) {
    return Unexpected(Error(
        ErrorCode::kInvalidArgument,
        "health timeout must be from 1 ms to 1 h, not " + std::to_string(timeout.count()) + " ms"));
  }
  if (!callback) return Unexpected(Error(ErrorCode::kInvalidArgument, "health callback is empty"));
  return post([this, timeout, cb = std::move(callback)]() mutable {
    start_health(*ctx_, timeout, std::move(cb));
  });
}

Result<void> Engine::post_inspect(std::string resource, milliseconds timeout,
                                  InspectCallback callback) {
  if (auto ok = validate_resource(resource); !ok) return ok;
  if (timeout.count() <= 0 || timeout > kMaxDelay) {
    return Unexpected(
        Error(ErrorCode::kInvalidArgument, "inspect timeout must be from 1 ms to 1 h, not " +
                                               std::to_string(timeout.count()) + " ms"));
  }
  if (!callback) return Unexpected(Error(ErrorCode::kInvalidArgument, "inspect callback is empty"));
  return post([this, resource = std::move(resource), timeout, cb = std::move(callback)]() mutable {
    start_inspect(*ctx_, std::move(resource), timeout, std::move(cb));
  });
}

MetricsSnapshot Engine::metrics_snapshot() const {
  const auto now = Clock::now();
  std::vector<Metrics::NodeState> states;
  states.reserve(nodes_.size());
  std::size_t voting = 0;
  for (const auto& n : nodes_) {
    states.push_back({n->answering(now), n->voting(now)});
    voting += states.back().voting ? 1U : 0U;
  }
  return metrics_->snapshot(node_names_, states, voting >= quorum(nodes_.size()));
}

bool Engine::quorum_available() const {
  const auto now = Clock::now();
  std::size_t voting = 0;
  for (const auto& n : nodes_) voting += n->voting(now) ? 1U : 0U;
  return voting >= quorum(nodes_.size());
}

std::vector<bool> Engine::connected() const {
  std::vector<bool> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n->connected_any_thread());
  return out;
}

void Engine::node_ready(std::size_t node) { wake_->node_ready(node); }

void Engine::node_attempted(std::size_t) {
  std::lock_guard lk(mutex_);
  ++first_attempts_;
  cv_.notify_all();
}

void Engine::replay_release(std::size_t node, std::vector<std::string> resources, std::string token,
                            Clock::time_point until) {
  std::vector<bool> only(nodes_.size(), false);
  only[node] = true;
  start_release(*ctx_, std::move(resources), std::move(token), until, std::move(only), nullptr);
}

std::optional<std::size_t> Engine::same_server(std::size_t node, std::string_view run_id) const {
  for (std::size_t j = 0; j < nodes_.size(); ++j) {
    if (j != node && nodes_[j]->has_server(run_id)) return j;
  }
  return std::nullopt;
}

}  // namespace redlock::detail
