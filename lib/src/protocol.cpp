#include "protocol.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>
#include <limits>

namespace redlock::detail {
namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  if (r->str != nullptr && (out.type == Reply::Type::kStatus || out.type == Reply::Type::kString ||
                            out.type == Reply::Type::kError)) {
    out.str.assign(r->str, r->len);
  }
  out.integer = r->integer;
  if (out.type == Reply::Type::kArray) {
    out.elements.reserve(r->elements);
    for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
  }
  return out;
}

std::size_t decimal_digits(std::size_t v) noexcept {
  std::size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

char* put_decimal(char* p, std::size_t v) noexcept {
  return std::to_chars(p, p + std::numeric_limits<std::size_t>::digits10 + 1, v).ptr;
}

// Writes "<prefix><n>\r\n".
char* put_header(char* p, char prefix, std::size_t n) noexcept {
  *p++ = prefix;
  p = put_decimal(p, n);
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

}  // namespace

// The exact size is computed first, so that the command is written in place
// with one allocation at most (none when `out` has room).
void append_command(std::string& out, std::span<const std::string_view> argv) {
  std::size_t size = 3 + decimal_digits(argv.size());
  for (auto a : argv) size += 5 + decimal_digits(a.size()) + a.size();
  const std::size_t at = out.size();
  out.resize(at + size);
  char* p = out.data() + at;
  p = put_header(p, '*', argv.size());
  for (auto a : argv) {
    p = put_header(p, '$', a.size());
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    p += a.size();
    *p++ = '\r';
    *p++ = '\n';
  }
}

std::string format_command(std::span<const std::string_view> argv) {
  std::string out;
  append_command(out, argv);
  return out;
}

ReplyParser::ReplyParser() : reader_(redisReaderCreate()) {}
ReplyParser::~ReplyParser() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

Result<void> ReplyParser::feed(const char* data, std::size_t len) {
  if (reader_ == nullptr)
    return Unexpected(Error(ErrorCode::kInternal, "reply parser not allocated"));
  if (redisReaderFeed(reader_, data, len) != REDIS_OK) {
    return Unexpected(
        Error(ErrorCode::kInternal, std::string("protocol error: ") + reader_->errstr));
  }
  return {};
}

Result<std::optional<Reply>> ReplyParser::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    return Unexpected(
        Error(ErrorCode::kInternal, std::string("protocol error: ") + reader_->errstr));
  }
  if (raw == nullptr) return std::optional<Reply>{};
  auto* reply = static_cast<redisReply*>(raw);
  Reply out = convert(reply);
  freeReplyObject(reply);
  return std::optional<Reply>(std::move(out));
}

std::string set_nx_px_command(std::string_view key, std::string_view token, long long ttl_ms) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, ttl_ms);
  (void)ec;
  const std::string_view argv[] = {
      "SET", key, token, "NX", "PX", std::string_view(buf, static_cast<std::size_t>(end - buf))};
  return format_command(argv);
}

std::string script_command(const Script& script, bool by_sha, const std::vector<std::string>& keys,
                           const std::vector<std::string_view>& args) {
  char numkeys[24];
  const auto [end, ec] = std::to_chars(numkeys, numkeys + sizeof numkeys, keys.size());
  (void)ec;
  // Most scripts run over one key with at most three arguments: no
  // allocation for the argument list then.
  constexpr std::size_t kInline = 8;
  std::string_view inline_argv[kInline];
  std::vector<std::string_view> heap_argv;
  const std::size_t argc = 3 + keys.size() + args.size();
  std::string_view* argv = inline_argv;
  if (argc > kInline) {
    heap_argv.resize(argc);
    argv = heap_argv.data();
  }
  std::size_t i = 0;
  argv[i++] = by_sha ? std::string_view("EVALSHA") : std::string_view("EVAL");
  argv[i++] = by_sha ? script.sha : script.body;
  argv[i++] = std::string_view(numkeys, static_cast<std::size_t>(end - numkeys));
  for (const auto& k : keys) argv[i++] = k;
  for (auto a : args) argv[i++] = a;
  return format_command(std::span<const std::string_view>(argv, argc));
}

}  // namespace redlock::detail
