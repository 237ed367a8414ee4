// chatroomd's request bodies, path names and ?limit: anything is either a
// valid request (whose fields pass the rules) or a list of problems, and
// the answer for it is valid UTF-8 JSON in FastAPI's shape.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "redlock/tools/text.hpp"
#include "requests.hpp"
#include "validation.hpp"

namespace {

void check_answer(const redlock::chatroom::Problems& problems) {
  if (problems.empty()) std::abort();
  const std::string body = redlock::chatroom::problems_body(problems);
  if (!redlock::tools::is_valid_utf8(body)) std::abort();
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.at("detail").is_array()) std::abort();
  for (const auto& p : json.at("detail")) {
    if (!p.at("loc").is_array() || !p.at("msg").is_string() || !p.at("type").is_string()) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string path_name = in.ConsumeRandomLengthString(80);
  const std::string limit = in.ConsumeRandomLengthString(12);
  const std::string body = in.ConsumeRemainingBytesAsString();

  if (auto room = redlock::chatroom::parse_create_room(body)) {
    if (redlock::chatroom::room_name_problem(room->name)) std::abort();
  } else {
    check_answer(room.error());
  }
  if (auto message = redlock::chatroom::parse_new_message(body)) {
    if (redlock::chatroom::author_problem(message->author) ||
        redlock::chatroom::text_problem(message->text)) {
      std::abort();
    }
  } else {
    check_answer(message.error());
  }
  const auto path = redlock::chatroom::path_name_problems(path_name);
  if (path.empty() != !redlock::chatroom::room_name_problem(path_name)) std::abort();
  if (!path.empty()) check_answer(path);
  if (auto n = redlock::chatroom::parse_limit(limit, 100, 1000)) {
    if (*n < 1 || *n > 1000) std::abort();
  } else {
    check_answer(n.error());
  }
  if (!redlock::tools::is_valid_utf8(redlock::chatroom::detail_body(body))) std::abort();
  return 0;
}
