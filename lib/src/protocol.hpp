// protocol.hpp: the Redis wire protocol: commands encoded here (RESP arrays of
// bulk strings, byte for byte what hiredis's redisFormatCommandArgv writes),
// replies parsed by hiredis's redisReader (identical in hiredis 0.14 and 1.x),
// plus the Lua scripts the engine runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
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

// RESP encoding of one command (binary-safe arguments), appended to `out`.
void append_command(std::string& out, std::span<const std::string_view> argv);
// The same, as a string of its own.
[[nodiscard]] std::string format_command(std::span<const std::string_view> argv);
[[nodiscard]] inline std::string format_command(std::initializer_list<std::string_view> argv) {
  return format_command(std::span<const std::string_view>(argv.begin(), argv.size()));
}

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
  struct Build;

  redisReader* reader_ = nullptr;
  // The reader builds each reply here, in place (elements of arrays inside
  // their parent), so a reply costs no allocation of its own.
  Reply root_;
};

// A Lua script and its SHA1, as SCRIPT LOAD returns it (checked by a test).
struct Script {
  std::string_view body;
  std::string_view sha;
};

// Compare-and-delete over KEYS: deletes each key that holds ARGV[1] (the
// token); returns how many it deleted. When ARGV[2] is "1" it announces each
// deletion on the key's release channel, ARGV[2 + i] for KEYS[i] (keys.hpp),
// for the waiters, with PUBLISH; when it is "2", with SPUBLISH (sharded
// pub/sub, on a Redis Cluster: the message stays within the channel's
// shard). With pcall: a user whose ACL denies the channel still releases,
// and its waiters poll.
inline constexpr Script kReleaseScript{
    "local n = 0 for i, key in ipairs(KEYS) do if redis.call(\"get\", key) == ARGV[1] then n "
    "= n + redis.call(\"del\", key) if ARGV[2] == \"1\" then redis.pcall(\"publish\", ARGV[2 "
    "+ i], \"\") elseif ARGV[2] == \"2\" then redis.pcall(\"spublish\", ARGV[2 + i], \"\") "
    "end end end return n",
    "7990d1e6282281fcc52ef2c0b4ea049e4eab3959"};

// All or none: if no key of KEYS exists, sets each to ARGV[1] with a ttl of
// ARGV[2] ms and returns 1; otherwise sets nothing and returns 0.
inline constexpr Script kAcquireAllScript{
    "for _, key in ipairs(KEYS) do if redis.call(\"exists\", key) == 1 then return 0 end end for "
    "_, key in ipairs(KEYS) do redis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2]) end return 1",
    "dc4d7c29de229e329ab4e4455922fc17df149110"};

// Compare-and-pexpire over KEYS: if every key holds ARGV[1] (or is missing
// and ARGV[3] is "1", re-create), sets each to ARGV[1] with a ttl of ARGV[2]
// ms and returns 1; otherwise changes nothing and returns 0.
inline constexpr Script kExtendScript{
    "for _, key in ipairs(KEYS) do local v = redis.call(\"get\", key) if v ~= ARGV[1] and not "
    "(ARGV[3] == \"1\" and v == false) then return 0 end end for _, key in ipairs(KEYS) do "
    "redis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2]) end return 1",
    "30a5926790cc17f08a8cdf2123b79b5902469cb7"};

// Fenced acquire. KEYS: the n resources, then their n fencing counters. If
// no resource key exists: sets each to ARGV[1] with a ttl of ARGV[2] ms,
// sets every counter to one more than the largest of them (or, when a counter
// is missing and this is larger, to the node's clock in microseconds since
// the epoch, or to the client's seed ARGV[3] if that is larger still) and
// returns that fence; otherwise changes nothing and returns 0. The client
// seeds with its own clock plus a lead (kFenceSeedLead): nodes whose clocks
// are not that far ahead of the client's all start a fresh counter at the
// seed, so their grants agree and need no raise round. Counters are written
// with %d: Lua's tostring would print 1.7e+15.
// How far ahead of the client's clock a fresh fencing counter is seeded.
inline constexpr std::chrono::microseconds kFenceSeedLead{1'000'000};
inline constexpr Script kFencedAcquireScript{
    "local n = #KEYS / 2 for i = 1, n do if redis.call(\"exists\", KEYS[i]) == 1 then return 0 "
    "end end local f, missing = 0, false for i = n + 1, #KEYS do local c = "
    "tonumber(redis.call(\"get\", KEYS[i])) if c == nil then missing = true elseif c > f then "
    "f = c end end f = f + 1 if missing then local t = redis.call(\"time\") local now = "
    "tonumber(t[1]) * 1000000 + tonumber(t[2]) local seed = tonumber(ARGV[3]) if seed and seed > "
    "now then now = seed end if now > f then f = now end end local v = "
    "string.format(\"%d\", f) for i = 1, n do redis.call(\"set\", KEYS[i], ARGV[1], \"PX\", "
    "ARGV[2]) end for i = n + 1, #KEYS do redis.call(\"set\", KEYS[i], v) end return f",
    "a37bd94687228264dc94d019389d26a5012b8e77"};

// The fenced acquire of one resource (KEYS: its key, then its counter),
// with kFencedAcquireScript's reply and counter rule in two commands instead
// of four: SET NX PX, then INCR of the counter. INCR of a missing counter
// answers 1 (a counter is never 0: it starts at a clock), and the counter is
// then seeded as above. A counter INCR cannot raise (not an integer, or at
// its limit, or not allowed by the user's ACL) undoes the SET and answers
// "fence counter: INCR " and Redis's reason: no grant from it. A refusal
// says whose the key is: 0 another token's, -1 this token's (left by an
// earlier round whose release did not arrive), so that a failed round need
// not release where another token holds the key.
inline constexpr Script kFencedAcquireOneScript{
    "if not redis.call(\"set\", KEYS[1], ARGV[1], \"NX\", \"PX\", ARGV[2]) then if "
    "redis.call(\"get\", KEYS[1]) == ARGV[1] then return -1 end return 0 end "
    "local f = redis.pcall(\"incr\", KEYS[2]) if type(f) == \"table\" then "
    "redis.call(\"del\", KEYS[1]) return redis.error_reply(\"ERR fence counter: INCR \" .. "
    "string.gsub(f.err, \"^ERR \", \"\")) end if f == 1 then local t = redis.call(\"time\") "
    "f = tonumber(t[1]) * 1000000 + tonumber(t[2]) local seed = tonumber(ARGV[3]) if seed and "
    "seed > f then f = seed end redis.call(\"set\", KEYS[2], string.format(\"%d\", f)) end "
    "return f",
    "a2fdb4248e2477c693c637e5f2501c8eff1e83f9"};

// Compare-and-raise over fencing counters (KEYS): each counter below ARGV[1]
// (or missing) is set to ARGV[1]. Returns 1.
inline constexpr Script kRaiseFenceScript{
    "local f = tonumber(ARGV[1]) for _, key in ipairs(KEYS) do local c = "
    "tonumber(redis.call(\"get\", key)) if c == nil or c < f then redis.call(\"set\", key, "
    "ARGV[1]) end end return 1",
    "b9de2aab3ad9b989ba4437bdea4a30618b484ff4"};

inline constexpr Script kAllScripts[] = {kReleaseScript,          kAcquireAllScript,
                                         kExtendScript,           kFencedAcquireScript,
                                         kFencedAcquireOneScript, kRaiseFenceScript};

// The EVAL form of an EVALSHA command of one of kAllScripts (the body in
// place of the SHA1, every other argument as it was), for a node whose
// script cache lost it (NOSCRIPT); empty for anything else.
[[nodiscard]] std::string eval_form(std::string_view evalsha);

[[nodiscard]] std::string set_nx_px_command(std::string_view key, std::string_view token,
                                            long long ttl_ms);
// EVALSHA (by_sha) or EVAL of `script` over `keys` with `args`.
[[nodiscard]] std::string script_command(const Script& script, bool by_sha,
                                         const std::vector<std::string>& keys,
                                         const std::vector<std::string_view>& args);

}  // namespace redlock::detail
