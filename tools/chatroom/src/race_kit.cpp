#include "race_kit.hpp"

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace redlock::chatroom::race {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kStopGrace{10000};
constexpr std::size_t kMaxSamples = 8;
constexpr std::string_view kListening = "listening on http://";

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail(const std::string& text, std::size_t max = 3000) {
  return text.size() <= max ? text : text.substr(text.size() - max);
}

// "127.0.0.1:PORT" from the replica's "listening on http://HOST:PORT ..." line.
std::optional<std::string> announced_address(const std::filesystem::path& log) {
  const std::string text = read_text(log);
  const auto at = text.find(kListening);
  if (at == std::string::npos) return std::nullopt;
  const auto start = at + kListening.size();
  const auto end = text.find_first_of(" \n", start);
  if (end == std::string::npos) return std::nullopt;
  return text.substr(start, end - start);
}

std::pair<std::string, int> split(const std::string& address) {
  const auto colon = address.rfind(':');
  return {address.substr(0, colon), std::stoi(address.substr(colon + 1))};
}

std::unique_ptr<httplib::Client> client_for(const std::string& address, milliseconds timeout) {
  const auto [host, port] = split(address);
  auto client = std::make_unique<httplib::Client>(host, port);
  client->set_connection_timeout(timeout);
  client->set_read_timeout(timeout);
  client->set_write_timeout(timeout);
  return client;
}

bool healthy(const std::string& address) {
  auto client = client_for(address, milliseconds(1000));
  auto res = client->Get("/healthz");
  return res && res->status == 200;
}

}  // namespace

tl::expected<std::unique_ptr<Replicas>, std::string> Replicas::start(
    std::size_t n, const ReplicaOptions& options) {
  auto replicas = std::unique_ptr<Replicas>(new Replicas());
  std::error_code ec;
  std::filesystem::create_directories(options.log_dir, ec);
  for (std::size_t i = 0; i < n; ++i) {
    const auto log = options.log_dir / ("replica" + std::to_string(i + 1) + ".log");
    std::filesystem::remove(log, ec);
    tools::SpawnOptions spawn;
    spawn.argv = {options.chatroomd.string(), "--listen", "127.0.0.1:0", "--store", options.store};
    if (!options.nodes.empty()) {
      std::string nodes;
      for (const auto& node : options.nodes) nodes += (nodes.empty() ? "" : ",") + node;
      spawn.argv.insert(spawn.argv.end(), {"--nodes", nodes});
    }
    spawn.argv.insert(spawn.argv.end(), options.extra_args.begin(), options.extra_args.end());
    spawn.stdout_path = log;
    spawn.stderr_path = log;
    auto process = tools::Subprocess::spawn(spawn);
    if (!process) {
      replicas->stop();
      return tl::make_unexpected("replica " + std::to_string(i + 1) + ": " +
                                 process.error().message);
    }
    replicas->processes_.push_back(std::move(*process));
    replicas->logs_.push_back(log);
  }
  // Started together, awaited one after the other: the waits overlap.
  for (std::size_t i = 0; i < n; ++i) {
    const auto deadline = Clock::now() + options.start_timeout;
    std::optional<std::string> address;
    bool up = false;
    while (Clock::now() < deadline) {
      if (!replicas->processes_[i].running() || replicas->processes_[i].poll()) break;
      if (!address) address = announced_address(replicas->logs_[i]);
      if (address && healthy(*address)) {
        up = true;
        break;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (!up) {
      const std::string why =
          replicas->processes_[i].running() ? "did not become healthy" : "exited during start";
      const std::string log = tail(read_text(replicas->logs_[i]));
      replicas->stop();
      return tl::make_unexpected("replica " + std::to_string(i + 1) + " " + why + "; log " +
                                 replicas->logs_[i].string() + ":\n" + log);
    }
    replicas->addresses_.push_back(*address);
  }
  return replicas;
}

Replicas::~Replicas() { stop(); }

std::vector<int> Replicas::stop() {
  // All at once, so that they shut down in parallel.
  for (auto& p : processes_) p.signal(SIGTERM);
  for (auto& p : processes_) {
    auto status = p.poll();
    if (!status) status = p.wait_for(kStopGrace);
    if (!status) {
      p.signal(SIGKILL);
      status = p.wait();
    }
    exit_codes_.push_back(tools::exit_code(*status));
  }
  processes_.clear();
  return exit_codes_;
}

std::string Replicas::log_tail(std::size_t i) const { return tail(read_text(logs_.at(i))); }

RaceResult run_race(const RaceOptions& options) {
  RaceResult result;
  result.requests = options.requests;
  if (options.addresses.empty() || options.requests == 0) return result;
  // A name that is not UTF-8 is sent with U+FFFD in its place (and refused
  // by chatroomd as a name would be anyway); the dump never throws.
  const std::string body = nlohmann::json{{"name", options.name}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::mutex mutex;
  std::condition_variable go_cv;
  bool go = false;
  std::atomic<std::size_t> next{0};

  auto worker = [&] {
    std::vector<std::unique_ptr<httplib::Client>> clients(options.addresses.size());
    {
      std::unique_lock lock(mutex);
      go_cv.wait(lock, [&] { return go; });
    }
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= options.requests) return;
      const std::size_t replica = i % options.addresses.size();
      if (!clients[replica]) {
        clients[replica] = client_for(options.addresses[replica], options.request_timeout);
      }
      auto res = clients[replica]->Post("/chatrooms", body, "application/json");
      std::lock_guard lock(mutex);
      if (!res) {
        ++result.failed;
        if (result.samples.size() < kMaxSamples) {
          result.samples.push_back(options.addresses[replica] + ": " +
                                   httplib::to_string(res.error()));
        }
        continue;
      }
      ++result.by_status[res->status];
      switch (res->status) {
        case 201:
          ++result.created;
          break;
        case 200:
          ++result.existed;
          break;
        case 503:
          ++result.unavailable;
          break;
        default:
          ++result.other;
          if (result.samples.size() < kMaxSamples) {
            result.samples.push_back(options.addresses[replica] + ": " +
                                     std::to_string(res->status) + " " + res->body);
          }
          break;
      }
    }
  };
  const std::size_t threads =
      std::max<std::size_t>(1, std::min(options.concurrency, options.requests));
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
  // Give the threads a moment to reach the gate, then open it for all.
  std::this_thread::sleep_for(milliseconds(20));
  const auto t0 = Clock::now();
  {
    std::lock_guard lock(mutex);
    go = true;
  }
  go_cv.notify_all();
  for (auto& t : pool) t.join();
  result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  return result;
}

tl::expected<double, std::string> scrape_sum(const std::vector<std::string>& addresses,
                                             std::string_view metric) {
  double total = 0;
  for (const auto& address : addresses) {
    auto client = client_for(address, milliseconds(5000));
    auto res = client->Get("/metrics");
    if (!res) return tl::make_unexpected(address + ": " + httplib::to_string(res.error()));
    if (res->status != 200) {
      return tl::make_unexpected(address + ": GET /metrics: " + std::to_string(res->status));
    }
    std::istringstream lines(res->body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty() || line.front() == '#') continue;
      if (line.compare(0, metric.size(), metric) != 0) continue;
      const char after = line.size() > metric.size() ? line[metric.size()] : '\0';
      if (after != ' ' && after != '{') continue;
      const auto space = line.rfind(' ');
      total += std::stod(line.substr(space + 1));
    }
  }
  return total;
}

Verdict check(const RaceResult& race, const RoomAudit& audit, double unique_conflicts) {
  Verdict v;
  auto problem = [&v](std::string text) {
    v.clean = false;
    v.problems.push_back(std::move(text));
  };
  if (race.created != 1) problem(std::to_string(race.created) + " requests answered 201 (want 1)");
  if (race.other != 0 || race.failed != 0) {
    problem(std::to_string(race.other) + " answers other than 201/200/503 and " +
            std::to_string(race.failed) + " requests without an answer");
  }
  if (audit.rooms != 1) problem(std::to_string(audit.rooms) + " rooms by that name (want 1)");
  if (audit.created_messages != 1) {
    problem(std::to_string(audit.created_messages) + " \"room created\" messages (want 1)");
  }
  if (audit.created_events != 1) {
    problem(std::to_string(audit.created_events) + " \"room_created\" outbox events (want 1)");
  }
  if (unique_conflicts != 0) {
    problem(std::to_string(static_cast<long long>(unique_conflicts)) +
            " creates got past the look-up and were stopped only by the UNIQUE constraint");
  }
  return v;
}

}  // namespace redlock::chatroom::race
