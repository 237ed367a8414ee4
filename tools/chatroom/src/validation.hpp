// validation.hpp: what chatroomd accepts as a room name, an author and a
// message. Pure functions, thread-safe.
//
// The rules (tools/chatroom/README.md):
//   room name  1 to 64 bytes of UTF-8; no control characters (C0, DEL, C1);
//              no '/' (a name is one path segment of /chatrooms/{name})
//   author     1 to 64 bytes of UTF-8; no control characters
//   text       1 to 4096 bytes of UTF-8; no control characters but newline,
//              carriage return and tab
// Sizes are in bytes, as stored. Names are compared byte for byte: no
// Unicode normalisation, "café" in NFC and NFD are two rooms.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace redlock::chatroom {

inline constexpr std::size_t kMaxNameBytes = 64;
inline constexpr std::size_t kMaxAuthorBytes = 64;
inline constexpr std::size_t kMaxTextBytes = 4096;

struct FieldProblem {
  enum class Kind { kEmpty, kTooLong, kNotUtf8, kControlCharacter, kSlash };
  Kind kind;
  std::string message;  // "name is empty", "name is longer than 64 bytes", ...
  std::size_t max_bytes = 0;
};

// The first problem of each kind of value, or nullopt if it is valid.
[[nodiscard]] std::optional<FieldProblem> room_name_field_problem(std::string_view name);
[[nodiscard]] std::optional<FieldProblem> author_field_problem(std::string_view author);
[[nodiscard]] std::optional<FieldProblem> text_field_problem(std::string_view text);

// The same, as the message alone.
[[nodiscard]] std::optional<std::string> room_name_problem(std::string_view name);
[[nodiscard]] std::optional<std::string> author_problem(std::string_view author);
[[nodiscard]] std::optional<std::string> text_problem(std::string_view text);

}  // namespace redlock::chatroom
