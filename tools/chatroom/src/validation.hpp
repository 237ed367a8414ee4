// validation.hpp: what chatroomd accepts as a room name, an author and a
// message. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace redlock::chatroom {

inline constexpr std::size_t kMaxNameBytes = 64;
inline constexpr std::size_t kMaxAuthorBytes = 64;
inline constexpr std::size_t kMaxTextBytes = 4096;

// Why `name` is not a valid room name, or nullopt if it is: 1 to 64 bytes of
// valid UTF-8, no control characters (C0, DEL, C1), no '/' (a name is one
// path segment of /chatrooms/{name}).
[[nodiscard]] std::optional<std::string> room_name_problem(std::string_view name);

// The same rules for a message's author (1 to 64 bytes) and text (1 to 4096
// bytes; newlines and tabs allowed, '/' too).
[[nodiscard]] std::optional<std::string> author_problem(std::string_view author);
[[nodiscard]] std::optional<std::string> text_problem(std::string_view text);

}  // namespace redlock::chatroom
