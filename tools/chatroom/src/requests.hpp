// requests.hpp: what chatroomd reads from a request (bodies, path segments,
// query parameters) and the JSON it answers with, as pure functions that
// need no server: the HTTP routes, the unit tests and the fuzz target call
// them alike.
//
// A request that cannot be used is answered 422 with every problem found,
// in FastAPI's shape:
//   {"detail": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}, ...]}
// `loc` says where ("body" and a field, "body" and a byte offset for a body
// that is not JSON, "path" or "query" and a name), `type` is the machine
// name of the problem (FastAPI's: json_invalid, model_attributes_type,
// missing, string_type, string_too_short, string_too_long, string_unicode,
// value_error, int_parsing, greater_than_equal, less_than_equal), `msg` the
// sentence for people. Unknown body fields are ignored, as FastAPI does.
//
// Every JSON text built here is valid UTF-8, whatever bytes came in: a
// message never quotes the request's bytes, and the dump replaces any
// invalid byte with U+FFFD instead of throwing.
//
// Thread-safe; no I/O. Never throws but std::bad_alloc.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace redlock::chatroom {

struct Problem {
  nlohmann::json loc;  // ["body", "name"], ["body", 12], ["path", "name"], ...
  std::string msg;
  std::string type;
  nlohmann::json ctx;  // null, or e.g. {"max_length": 64}
};
using Problems = std::vector<Problem>;

// The largest body chatroomd reads (larger ones are answered 413).
inline constexpr std::size_t kMaxBodyBytes = 64 * 1024;

struct CreateRoomRequest {
  std::string name;
};
struct NewMessageRequest {
  std::string author;
  std::string text;
};

// POST /chatrooms {"name": ...}
[[nodiscard]] tl::expected<CreateRoomRequest, Problems> parse_create_room(std::string_view body);
// POST /chatrooms/{name}/messages {"author": ..., "text": ...}
[[nodiscard]] tl::expected<NewMessageRequest, Problems> parse_new_message(std::string_view body);
// The {name} segment of a path, as the server decoded it (%FF is a byte).
[[nodiscard]] Problems path_name_problems(std::string_view name);
// ?limit=N: from 1 to `max`; `fallback` when absent.
[[nodiscard]] tl::expected<std::size_t, Problems> parse_limit(std::optional<std::string_view> text,
                                                              std::size_t fallback,
                                                              std::size_t max);

// {"detail": [...]}, the 422 body.
[[nodiscard]] std::string problems_body(const Problems& problems);
// {"detail": "text"}, every other error's body.
[[nodiscard]] std::string detail_body(std::string_view text);
// `json` as text, invalid UTF-8 replaced (never throws on bytes).
[[nodiscard]] std::string json_text(const nlohmann::json& json);

}  // namespace redlock::chatroom
