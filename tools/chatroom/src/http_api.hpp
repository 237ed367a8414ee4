// http_api.hpp: chatroomd's HTTP routes on a cpp-httplib server.
//
//   POST /chatrooms                  {"name"}          201 created, 200 existed
//   POST /chatrooms/{name}/messages  {"author","text"} 201 (creates the room first if needed)
//   GET  /chatrooms/{name}                             200, 404
//   GET  /chatrooms/{name}/messages[?limit=N]          200, 404
//   GET  /healthz                                      200, 503 (store unreachable)
//   GET  /metrics                                      Prometheus text
//
// Errors are JSON {"detail": "..."}: 400 bad input, 404 no such room, 503
// {"detail": "Lock wait timeout"} when the room's lock could not be had in
// time, 503 "Shutting down", 500 store failures.
//
// Threading: handlers run on the server's worker threads; everything they
// touch is thread-safe. The service, metrics and client must outlive the
// server.
#pragma once

namespace httplib {
class Server;
}

namespace redlock {
class Client;
}

namespace redlock::chatroom {

class ChatService;
class ServiceMetrics;

// Installs the routes, the request metrics (pre-routing and logger hooks)
// and an exception handler answering 500. `client` null: no lock metrics.
void install_routes(httplib::Server& server, ChatService& service, ServiceMetrics& metrics,
                    Client* client);

}  // namespace redlock::chatroom
