#include "protocol.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>
#include <limits>
#include <type_traits>

namespace redlock::detail {
namespace {

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

// hiredis's reply-object callbacks, building Replies instead of redisReply
// trees. Only the root lives in ReplyParser::root_; every other object is an
// element of its parent's vector, sized when the parent was made and never
// resized, so the pointers the reader holds stay valid. Nothing here may
// throw into hiredis: a failure returns null, which the reader reports as an
// error.
struct ReplyParser::Build {
  // Far above any reply redlock asks for, and bounded so that a bogus
  // length cannot make the client construct billions of elements.
  static constexpr std::size_t kMaxElements = 1 << 20;

  static Reply* slot(const redisReadTask* task) noexcept {
    if (task->parent != nullptr) {
      auto* parent = static_cast<Reply*>(task->parent->obj);
      return &parent->elements[static_cast<std::size_t>(task->idx)];
    }
    auto* root = &static_cast<ReplyParser*>(task->privdata)->root_;
    *root = Reply{};
    return root;
  }

  static void* string(const redisReadTask* task, char* str, std::size_t len) noexcept {
    Reply* r = slot(task);
    switch (task->type) {
      case REDIS_REPLY_STATUS:
        r->type = Reply::Type::kStatus;
        break;
      case REDIS_REPLY_STRING:
        r->type = Reply::Type::kString;
        break;
      case REDIS_REPLY_ERROR:
        r->type = Reply::Type::kError;
        break;
      default:  // RESP3 only (never negotiated): kept as nil, as before
        r->type = Reply::Type::kNil;
        return r;
    }
    try {
      r->str.assign(str, len);
    } catch (...) {
      return nullptr;
    }
    return r;
  }

  // `Count` is int in hiredis 0.14, size_t in 1.x.
  template <typename Count>
  static void* array(const redisReadTask* task, Count count) noexcept {
    if constexpr (std::is_signed_v<Count>) {
      if (count < 0) return nullptr;
    }
    const auto n = static_cast<std::size_t>(count);
    if (n > kMaxElements) return nullptr;
    Reply* r = slot(task);
    // RESP3 aggregates (never negotiated) keep their elements' storage but
    // read as nil, as before.
    r->type = task->type == REDIS_REPLY_ARRAY ? Reply::Type::kArray : Reply::Type::kNil;
    try {
      r->elements.resize(n);
    } catch (...) {
      return nullptr;
    }
    return r;
  }

  static void* integer(const redisReadTask* task, long long value) noexcept {
    Reply* r = slot(task);
    r->type = Reply::Type::kInteger;
    r->integer = value;
    return r;
  }

  static void* nil(const redisReadTask* task) noexcept {
    Reply* r = slot(task);
    r->type = Reply::Type::kNil;
    return r;
  }

  // hiredis 1.x, RESP3 only.
  static void* double_value(const redisReadTask* task, double, char*, std::size_t) noexcept {
    return nil(task);
  }
  static void* bool_value(const redisReadTask* task, int value) noexcept {
    Reply* r = slot(task);
    r->type = Reply::Type::kNil;
    r->integer = value;
    return r;
  }

  // Only ever the root (hiredis frees nothing but its current reply).
  static void free_object(void* obj) noexcept {
    if (obj != nullptr) *static_cast<Reply*>(obj) = Reply{};
  }

  template <typename Functions>
  static Functions make() noexcept {
    Functions f{};
    f.createString = &string;
    f.createArray = &array;
    f.createInteger = &integer;
    f.createNil = &nil;
    if constexpr (requires { f.createDouble; }) f.createDouble = &double_value;
    if constexpr (requires { f.createBool; }) f.createBool = &bool_value;
    f.freeObject = &free_object;
    return f;
  }
};

ReplyParser::ReplyParser() {
  static redisReplyObjectFunctions functions = Build::make<redisReplyObjectFunctions>();
  reader_ = redisReaderCreateWithFunctions(&functions);
  if (reader_ != nullptr) reader_->privdata = this;
}

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
  if (raw != &root_) return Unexpected(Error(ErrorCode::kInternal, "protocol error: stray reply"));
  std::optional<Reply> out(std::move(root_));
  root_ = Reply{};
  return out;
}

std::string eval_form(std::string_view evalsha) {
  // "*<n>\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n" and the rest, as
  // append_command writes it.
  const auto header_end = evalsha.find("\r\n");
  if (evalsha.empty() || evalsha.front() != '*' || header_end == std::string_view::npos) return {};
  const std::string_view head = evalsha.substr(0, header_end + 2);
  constexpr std::string_view kVerb = "$7\r\nEVALSHA\r\n$40\r\n";
  std::string_view rest = evalsha.substr(head.size());
  if (!rest.starts_with(kVerb)) return {};
  rest.remove_prefix(kVerb.size());
  if (rest.size() < 42 || rest.substr(40, 2) != "\r\n") return {};
  const std::string_view sha = rest.substr(0, 40);
  rest.remove_prefix(42);
  for (const auto& script : kAllScripts) {
    if (script.sha != sha) continue;
    std::string out;
    out.reserve(head.size() + 16 + script.body.size() + rest.size());
    out.append(head).append("$4\r\nEVAL\r\n$").append(std::to_string(script.body.size()));
    out.append("\r\n").append(script.body).append("\r\n").append(rest);
    return out;
  }
  return {};
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
