// http_api.hpp: chatroomd's HTTP routes on a cpp-httplib server.
//
//   POST /chatrooms                  {"name"}          201 created, 200 existed
//   POST /chatrooms/{name}/messages  {"author","text"} 201 (creates the room first if needed)
//   GET  /chatrooms/{name}                             200, 404
//   GET  /chatrooms/{name}/messages[?limit=N]          200, 404
//   GET  /healthz                                      200, 503 (store unreachable)
//   GET  /readyz                                       200, 503 (store, or no lock quorum)
//   GET  /metrics                                      Prometheus text
//
// Errors: 422 {"detail": [{"loc", "msg", "type"}, ...]} for a request that
// cannot be used (requests.hpp); otherwise {"detail": "..."}: 404 no such
// room, 413 body too large, 503 with Retry-After: "Lock wait timeout" (the
// room's lock is held by another, or contended, past --lock-wait), "Lock
// service unavailable" (too few lock nodes answer or vote), "Shutting down",
// "Lock lost", "Store unavailable"; 500 "Internal error" (the cause goes to
// the log, never to the client).
//
// Threading: handlers run on the server's worker threads; everything they
// touch is thread-safe. The service, metrics and client must outlive the
// server.
#pragma once

#include <functional>
#include <string>

namespace httplib {
class Server;
}

namespace redlock {
class Client;
}

namespace redlock::chatroom {

class ChatService;
class ServiceMetrics;

// Where the routes report what the client is not told (a store error, an
// exception): called on the worker threads, must be thread-safe.
using ServiceLog = std::function<void(const std::string&)>;

// Installs the routes, the request metrics (pre-routing and logger hooks)
// and an exception handler answering 500. `client` null: no lock metrics.
void install_routes(httplib::Server& server, ChatService& service, ServiceMetrics& metrics,
                    Client* client, ServiceLog log = nullptr);

}  // namespace redlock::chatroom
