#include "protocol.hpp"

#include <hiredis/hiredis.h>

#include <charconv>

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

}  // namespace

std::string format_command(const std::vector<std::string_view>& argv) {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (auto a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  char* raw = nullptr;
  const int n =
      redisFormatCommandArgv(&raw, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  if (n < 0 || raw == nullptr) return {};
  std::string out(raw, static_cast<std::size_t>(n));
  redisFreeCommand(raw);
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
  return format_command(
      {"SET", key, token, "NX", "PX", std::string_view(buf, static_cast<std::size_t>(end - buf))});
}

std::string script_command(const Script& script, bool by_sha, const std::vector<std::string>& keys,
                           const std::vector<std::string_view>& args) {
  const std::string numkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back(by_sha ? "EVALSHA" : "EVAL");
  argv.push_back(by_sha ? script.sha : script.body);
  argv.push_back(numkeys);
  for (const auto& k : keys) argv.push_back(k);
  for (auto a : args) argv.push_back(a);
  return format_command(argv);
}

}  // namespace redlock::detail
