// protocol.hpp: the Redis wire protocol, through hiredis's formatter and
// redisReader only (both identical in hiredis 0.14 and 1.x), plus the Lua
// scripts the engine runs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redlock/result.hpp"

struct redisReader;

namespace redlock::detail {

struct Reply {
  enum class Type : std::uint8_t { kStatus, kString, kInteger, kNil, kArray, kError };
  Type type = Type::kNil;
  long long integer = 0;
  std::string str;  // status, string or error text
  std::vector<Reply> elements;

  [[nodiscard]] bool is_status(std::string_view s) const noexcept {
    return type == Type::kStatus && str == s;
  }
  [[nodiscard]] bool is_error() const noexcept { return type == Type::kError; }
};

// RESP encoding of one command (binary-safe arguments).
[[nodiscard]] std::string format_command(const std::vector<std::string_view>& argv);

// Incremental RESP parser: feed bytes as they arrive, take replies out.
class ReplyParser {
 public:
  ReplyParser();
  ~ReplyParser();
  ReplyParser(const ReplyParser&) = delete;
  ReplyParser& operator=(const ReplyParser&) = delete;

  // Errors: kInternal when the reader is in an error state.
  [[nodiscard]] Result<void> feed(const char* data, std::size_t len);
  // One complete reply if there is one. Errors: kInternal on a protocol error.
  [[nodiscard]] Result<std::optional<Reply>> next();

 private:
  redisReader* reader_;
};

// Compare-and-delete: deletes KEYS[1] only if it holds ARGV[1]; returns 1 or 0.
inline constexpr std::string_view kReleaseScript =
    "if redis.call(\"get\", KEYS[1]) == ARGV[1] then return redis.call(\"del\", KEYS[1]) "
    "else return 0 end";
// SHA1 of kReleaseScript, as SCRIPT LOAD returns it (checked by a test).
inline constexpr std::string_view kReleaseScriptSha = "cf0e94b2e9ffc7e04395cf88f7583fc309985910";

[[nodiscard]] std::string set_nx_px_command(std::string_view key, std::string_view token,
                                            long long ttl_ms);
[[nodiscard]] std::string evalsha_command(std::string_view sha, std::string_view key,
                                          std::string_view arg);
[[nodiscard]] std::string eval_command(std::string_view script, std::string_view key,
                                       std::string_view arg);

}  // namespace redlock::detail
