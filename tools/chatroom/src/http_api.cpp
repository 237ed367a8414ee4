#include "http_api.hpp"

#include <httplib.h>

#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chat_service.hpp"
#include "redlock/redlock.hpp"
#include "service_metrics.hpp"
#include "validation.hpp"

namespace redlock::chatroom {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr std::size_t kDefaultLimit = 100;
constexpr std::size_t kMaxLimit = 1000;

// A request is read, handled and answered on one worker thread: the
// pre-routing hook stamps its start here and the logger hook reads it.
thread_local std::optional<Clock::time_point> t_request_start;

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void detail(httplib::Response& res, int status, const std::string& text) {
  reply(res, status, json{{"detail", text}});
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

// The JSON object in the body, or a 400 already written.
std::optional<json> body_object(const httplib::Request& req, httplib::Response& res) {
  try {
    auto body = json::parse(req.body);
    if (!body.is_object()) {
      detail(res, 400, "Invalid JSON: expected an object");
      return std::nullopt;
    }
    return body;
  } catch (const json::parse_error& e) {
    detail(res, 400, std::string("Invalid JSON: ") + e.what());
    return std::nullopt;
  }
}

// body[field] as a string, or a 400 already written.
std::optional<std::string> string_field(const json& body, const char* field,
                                        httplib::Response& res) {
  const auto it = body.find(field);
  if (it == body.end() || !it->is_string()) {
    detail(res, 400, std::string("\"") + field + "\" must be a string");
    return std::nullopt;
  }
  return it->get<std::string>();
}

// Answers for a create path that did not end with a room.
void room_failure(const RoomOutcome& outcome, httplib::Response& res) {
  switch (outcome.outcome) {
    case Outcome::kLockTimeout:
      detail(res, 503, "Lock wait timeout");
      return;
    case Outcome::kShuttingDown:
      detail(res, 503, "Shutting down");
      return;
    case Outcome::kLockLost:
      detail(res, 503, "Lock lost");
      return;
    case Outcome::kCreated:
    case Outcome::kExisted:
    case Outcome::kFailed:
      break;
  }
  detail(res, 500, outcome.detail.empty() ? "Internal error" : outcome.detail);
}

// The room named by the path, 404 if there is none; nullopt with the answer
// written otherwise.
std::optional<Room> path_room(ChatService& service, const httplib::Request& req,
                              httplib::Response& res) {
  const std::string name = req.matches[1];
  if (auto problem = room_name_problem(name)) {
    detail(res, 400, "Invalid room name: " + *problem);
    return std::nullopt;
  }
  auto found = service.find_room(name);
  if (!found) {
    detail(res, 500, found.error().message);
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
                    Client* client) {
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
  // malformed request) get a JSON body like ours.
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&,
                                                                   httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    detail(res, res.status, res.status == 404 ? "Not found" : "HTTP " + std::to_string(res.status));
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, const std::exception_ptr& ep) {
        std::string what = "Internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what += std::string(": ") + e.what();
        } catch (...) {
        }
        detail(res, 500, what);
      });

  server.Post("/chatrooms", [&service](const httplib::Request& req, httplib::Response& res) {
    auto body = body_object(req, res);
    if (!body) return;
    auto name = string_field(*body, "name", res);
    if (!name) return;
    if (auto problem = room_name_problem(*name)) {
      detail(res, 400, "Invalid room name: " + *problem);
      return;
    }
    const auto outcome = service.ensure_room(*name);
    if (!outcome.room) {
      room_failure(outcome, res);
      return;
    }
    reply(res, outcome.outcome == Outcome::kCreated ? 201 : 200, room_json(*outcome.room));
  });

  server.Post(R"(/chatrooms/([^/]+)/messages)",
              [&service](const httplib::Request& req, httplib::Response& res) {
                const std::string name = req.matches[1];
                if (auto problem = room_name_problem(name)) {
                  detail(res, 400, "Invalid room name: " + *problem);
                  return;
                }
                auto body = body_object(req, res);
                if (!body) return;
                auto author = string_field(*body, "author", res);
                if (!author) return;
                auto text = string_field(*body, "text", res);
                if (!text) return;
                if (auto problem = author_problem(*author)) {
                  detail(res, 400, "Invalid author: " + *problem);
                  return;
                }
                if (auto problem = text_problem(*text)) {
                  detail(res, 400, "Invalid text: " + *problem);
                  return;
                }
                const auto outcome = service.ensure_room(name);
                if (!outcome.room) {
                  room_failure(outcome, res);
                  return;
                }
                auto message = service.append_message(*outcome.room, *author, *text);
                if (!message) {
                  detail(res, 500, message.error().message);
                  return;
                }
                reply(res, 201, message_json(*message));
              });

  server.Get(R"(/chatrooms/([^/]+))",
             [&service](const httplib::Request& req, httplib::Response& res) {
               if (auto room = path_room(service, req, res)) reply(res, 200, room_json(*room));
             });

  server.Get(R"(/chatrooms/([^/]+)/messages)",
             [&service](const httplib::Request& req, httplib::Response& res) {
               std::size_t limit = kDefaultLimit;
               if (req.has_param("limit")) {
                 const std::string text = req.get_param_value("limit");
                 const bool digits = !text.empty() && text.size() <= 6 &&
                                     text.find_first_not_of("0123456789") == std::string::npos;
                 if (!digits || std::stoul(text) < 1 || std::stoul(text) > kMaxLimit) {
                   detail(res, 400, "limit must be a number from 1 to 1000");
                   return;
                 }
                 limit = std::stoul(text);
               }
               auto room = path_room(service, req, res);
               if (!room) return;
               auto messages = service.messages(*room, limit);
               if (!messages) {
                 detail(res, 500, messages.error().message);
                 return;
               }
               json list = json::array();
               for (const auto& m : *messages) list.push_back(message_json(m));
               reply(res, 200, json{{"room", room_json(*room)}, {"messages", list}});
             });

  server.Get("/healthz", [&service](const httplib::Request&, httplib::Response& res) {
    auto ok = service.ping();
    if (!ok) {
      reply(res, 503, json{{"status", "unavailable"}, {"detail", ok.error().message}});
      return;
    }
    reply(res, 200, json{{"status", "ok"}, {"lock", service.uses_lock() ? "redlock" : "none"}});
  });

  server.Get("/metrics", [&metrics, client](const httplib::Request&, httplib::Response& res) {
    std::string text = metrics.render();
    if (client != nullptr) text += to_prometheus(client->metrics());
    res.status = 200;
    res.set_content(text, "text/plain; version=0.0.4");
  });
}

}  // namespace redlock::chatroom
