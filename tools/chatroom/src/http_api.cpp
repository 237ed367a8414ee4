#include "http_api.hpp"

#include <httplib.h>

#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chat_service.hpp"
#include "redlock/redlock.hpp"
#include "requests.hpp"
#include "service_metrics.hpp"

namespace redlock::chatroom {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr std::size_t kDefaultLimit = 100;
constexpr std::size_t kMaxLimit = 1000;

// Retry-After on 503s, in seconds: a busy lock or a replica shutting down
// clears soon (or another replica answers); lock nodes that are down or
// sitting out a restart grace take longer.
constexpr const char* kRetrySoon = "1";
constexpr const char* kRetryLater = "5";

// A request is read, handled and answered on one worker thread: the
// pre-routing hook stamps its start here and the logger hook reads it.
thread_local std::optional<Clock::time_point> t_request_start;

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(json_text(body), "application/json");
}

void detail(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(detail_body(text), "application/json");
}

void unavailable(httplib::Response& res, const std::string& text, const char* retry_after) {
  detail(res, 503, text);
  res.set_header("Retry-After", retry_after);
}

void unprocessable(httplib::Response& res, const Problems& problems) {
  res.status = 422;
  res.set_content(problems_body(problems), "application/json");
}

json room_json(const Room& room) {
  return {{"id", room.id}, {"name", room.name}, {"created_at", room.created_at}};
}

json message_json(const Message& m) {
  return {{"id", m.id},
          {"kind", m.kind},
          {"author", m.author},
          {"text", m.text},
          {"created_at", m.created_at}};
}

// Answers for a create path that did not end with a room.
void room_failure(const RoomOutcome& outcome, httplib::Response& res, const ServiceLog& log) {
  switch (outcome.outcome) {
    case Outcome::kLockTimeout:
      unavailable(res, "Lock wait timeout", kRetrySoon);
      return;
    case Outcome::kLockUnavailable:
      unavailable(res, "Lock service unavailable", kRetryLater);
      return;
    case Outcome::kShuttingDown:
      unavailable(res, "Shutting down", kRetrySoon);
      return;
    case Outcome::kLockLost:
      unavailable(res, "Lock lost", kRetrySoon);
      return;
    case Outcome::kCreated:
    case Outcome::kExisted:
    case Outcome::kFailed:
      break;
  }
  if (log) log("create failed: " + outcome.detail);
  detail(res, 500, "Internal error");
}

void store_failure(const StoreError& error, httplib::Response& res, const ServiceLog& log) {
  if (log) log("store: " + error.message);
  if (error.kind == StoreErrorKind::kUnavailable) {
    unavailable(res, "Store unavailable", kRetryLater);
    return;
  }
  detail(res, 500, "Internal error");
}

// The room named by the path, 404 if there is none; nullopt with the answer
// written otherwise.
std::optional<Room> path_room(ChatService& service, const httplib::Request& req,
                              httplib::Response& res, const ServiceLog& log) {
  const std::string name = req.matches[1];
  if (auto problems = path_name_problems(name); !problems.empty()) {
    unprocessable(res, problems);
    return std::nullopt;
  }
  auto found = service.find_room(name);
  if (!found) {
    store_failure(found.error(), res, log);
    return std::nullopt;
  }
  if (!*found) {
    detail(res, 404, "Not found");
    return std::nullopt;
  }
  return **found;
}

}  // namespace

void install_routes(httplib::Server& server, ChatService& service, ServiceMetrics& metrics,
                    Client* client, ServiceLog log) {
  server.set_payload_max_length(kMaxBodyBytes);
  server.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    t_request_start = Clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_logger([&metrics](const httplib::Request& req, const httplib::Response& res) {
    double seconds = 0;
    if (t_request_start) {
      seconds = std::chrono::duration<double>(Clock::now() - *t_request_start).count();
      t_request_start.reset();
    }
    metrics.observe_request(route_of(req.method, req.path), res.status, seconds);
  });
  // Answers httplib makes itself (404 for an unknown path, 400 for a
  // malformed request, 413 for a body over kMaxBodyBytes) get a JSON body
  // like ours.
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string text = "HTTP " + std::to_string(res.status);
        if (res.status == 404) text = "Not found";
        if (res.status == 413) {
          text = "Request body larger than " + std::to_string(kMaxBodyBytes) + " bytes";
        }
        detail(res, res.status, text);
        return httplib::Server::HandlerResponse::Handled;
      }));
  // Nothing in the handlers is meant to throw; if something does, the
  // client gets a plain 500 (the exception's text, which may quote the
  // request, goes to the log only).
  server.set_exception_handler(
      [log](const httplib::Request& req, httplib::Response& res, const std::exception_ptr& ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        if (log) log("exception in " + req.method + " " + req.path + ": " + what);
        detail(res, 500, "Internal error");
      });

  server.Post("/chatrooms", [&service, log](const httplib::Request& req, httplib::Response& res) {
    auto request = parse_create_room(req.body);
    if (!request) {
      unprocessable(res, request.error());
      return;
    }
    const auto outcome = service.ensure_room(request->name);
    if (!outcome.room) {
      room_failure(outcome, res, log);
      return;
    }
    reply(res, outcome.outcome == Outcome::kCreated ? 201 : 200, room_json(*outcome.room));
  });

  server.Post(R"(/chatrooms/([^/]+)/messages)", [&service, log](const httplib::Request& req,
                                                                httplib::Response& res) {
    const std::string name = req.matches[1];
    Problems problems = path_name_problems(name);
    auto request = parse_new_message(req.body);
    if (!request) {
      problems.insert(problems.end(), request.error().begin(), request.error().end());
    }
    if (!problems.empty()) {
      unprocessable(res, problems);
      return;
    }
    const auto outcome = service.ensure_room(name);
    if (!outcome.room) {
      room_failure(outcome, res, log);
      return;
    }
    auto message = service.append_message(*outcome.room, request->author, request->text);
    if (!message) {
      store_failure(message.error(), res, log);
      return;
    }
    reply(res, 201, message_json(*message));
  });

  server.Get(R"(/chatrooms/([^/]+))",
             [&service, log](const httplib::Request& req, httplib::Response& res) {
               if (auto room = path_room(service, req, res, log)) reply(res, 200, room_json(*room));
             });

  server.Get(R"(/chatrooms/([^/]+)/messages)",
             [&service, log](const httplib::Request& req, httplib::Response& res) {
               std::optional<std::string> limit_text;
               if (req.has_param("limit")) limit_text = req.get_param_value("limit");
               auto limit = parse_limit(limit_text, kDefaultLimit, kMaxLimit);
               Problems problems = path_name_problems(req.matches[1].str());
               if (!limit) {
                 problems.insert(problems.end(), limit.error().begin(), limit.error().end());
               }
               if (!problems.empty()) {
                 unprocessable(res, problems);
                 return;
               }
               auto room = path_room(service, req, res, log);
               if (!room) return;
               auto messages = service.messages(*room, *limit);
               if (!messages) {
                 store_failure(messages.error(), res, log);
                 return;
               }
               json list = json::array();
               for (const auto& m : *messages) list.push_back(message_json(m));
               reply(res, 200, json{{"room", room_json(*room)}, {"messages", list}});
             });

  // Liveness: the process serves and its store answers. A replica that is
  // alive but cannot create rooms (no lock quorum) says so in /readyz.
  server.Get("/healthz", [&service](const httplib::Request&, httplib::Response& res) {
    auto ok = service.ping();
    if (!ok) {
      reply(res, 503, json{{"status", "unavailable"}, {"detail", ok.error().message}});
      return;
    }
    reply(res, 200,
          json{{"status", "ok"},
               {"lock", service.uses_lock() ? "redlock" : "none"},
               {"lock_quorum", service.lock_available()}});
  });

  // Readiness: every route can be served now: the store answers and a
  // majority of the lock nodes votes. A load balancer sends traffic
  // elsewhere while this is 503.
  server.Get("/readyz", [&service, client](const httplib::Request&, httplib::Response& res) {
    auto store = service.ping();
    const bool lock = service.lock_available();
    json body = {{"status", store && lock ? "ready" : "unavailable"},
                 {"store", store ? "ok" : store.error().message},
                 {"lock", !service.uses_lock() ? "none"
                          : lock               ? "ok"
                                               : "no quorum"}};
    if (client != nullptr) {
      const auto m = client->metrics();
      std::size_t voting = 0;
      for (const auto& n : m.nodes) voting += n.voting ? 1 : 0;
      body["lock_nodes"] = {
          {"voting", voting}, {"total", m.nodes.size()}, {"quorum", client->quorum()}};
    }
    reply(res, store && lock ? 200 : 503, body);
    if (!(store && lock)) res.set_header("Retry-After", kRetryLater);
  });

  server.Get("/metrics", [&metrics, client](const httplib::Request&, httplib::Response& res) {
    std::string text = metrics.render();
    if (client != nullptr) text += to_prometheus(client->metrics());
    res.status = 200;
    res.set_content(text, "text/plain; version=0.0.4");
  });
}

}  // namespace redlock::chatroom
