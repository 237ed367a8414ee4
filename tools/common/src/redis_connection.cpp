// RedisConnection over hiredis's blocking API: redisConnectWithTimeout,
// redisSetTimeout, redisCommandArgv, redisAppendCommandArgv and
// redisBufferWrite, identical in hiredis 0.14 and 1.x.
#include "redlock/tools/redis_connection.hpp"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace redlock::tools {
namespace {

using std::chrono::milliseconds;

timeval to_timeval(milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
  return tv;
}

// hiredis writes with write(2): a server that dies under us would raise
// SIGPIPE. While this thread has a connection open, SIGPIPE stays blocked on
// it, and one raised meanwhile is swallowed when the last one closes.
// Counted per thread, so connections may close in any order.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    if (depth_++ > 0) return;
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock() {
    if (--depth_ > 0) return;
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      ::sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{};
        while (::sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  static thread_local int depth_;
  static thread_local sigset_t pipe_set_;
  static thread_local sigset_t old_mask_;
  static thread_local bool was_pending_;
};

thread_local int SigpipeBlock::depth_ = 0;
thread_local sigset_t SigpipeBlock::pipe_set_{};
thread_local sigset_t SigpipeBlock::old_mask_{};
thread_local bool SigpipeBlock::was_pending_ = false;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

RedisReply convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r.elements);
      for (std::size_t k = 0; k < r.elements; ++k) out.elements.push_back(convert(*r.element[k]));
      break;
    default:
      // RESP3 types do not occur: nothing here sends HELLO 3.
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

void render(const RedisReply& reply, std::string& out) {
  switch (reply.type) {
    case RedisReply::Type::kString:
    case RedisReply::Type::kStatus:
    case RedisReply::Type::kError:
      out += reply.str;
      break;
    case RedisReply::Type::kInteger:
      out += std::to_string(reply.integer);
      break;
    case RedisReply::Type::kNil:
      out += "(nil)";
      break;
    case RedisReply::Type::kArray:
      for (std::size_t k = 0; k < reply.elements.size(); ++k) {
        if (k > 0) out += '\n';
        render(reply.elements[k], out);
      }
      break;
  }
}

struct Argv {
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  explicit Argv(const std::vector<std::string>& argv) {
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      args.push_back(a.c_str());
      lens.push_back(a.size());
    }
  }
  [[nodiscard]] int count() const { return static_cast<int>(args.size()); }
};

}  // namespace

// Declaration order matters: the context is closed before SIGPIPE is
// unblocked.
struct RedisConnection::State {
  SigpipeBlock sigpipe_block;
  milliseconds timeout{0};
  std::unique_ptr<redisContext, ContextDeleter> context;

  [[nodiscard]] std::string io_error() const {
    const std::string what = context->errstr;
    // A blocking read that hits SO_RCVTIMEO fails with EAGAIN.
    if (context->err == REDIS_ERR_IO && what == std::strerror(EAGAIN)) {
      return "timed out after " + std::to_string(timeout.count()) + " ms";
    }
    if (context->err == REDIS_ERR_EOF) return "connection closed by the server";
    return what;
  }
};

tl::expected<RedisConnection, std::string> RedisConnection::open(const std::string& host, int port,
                                                                 milliseconds timeout) {
  auto state = std::make_unique<State>();
  state->timeout = timeout;
  state->context.reset(redisConnectWithTimeout(host.c_str(), port, to_timeval(timeout)));
  if (!state->context) return tl::make_unexpected(std::string("cannot allocate a connection"));
  if (state->context->err != 0) {
    std::string why = state->context->errstr;
    if (why == std::strerror(EINPROGRESS) || why.find("timed out") != std::string::npos) {
      why = "timed out after " + std::to_string(timeout.count()) + " ms";
    }
    return tl::make_unexpected("connect: " + why);
  }
  if (redisSetTimeout(state->context.get(), to_timeval(timeout)) != REDIS_OK) {
    return tl::make_unexpected("set timeout: " + state->io_error());
  }
  return RedisConnection(std::move(state));
}

RedisConnection::RedisConnection(std::unique_ptr<State> state) : state_(std::move(state)) {}
RedisConnection::RedisConnection(RedisConnection&&) noexcept = default;
RedisConnection& RedisConnection::operator=(RedisConnection&&) noexcept = default;
RedisConnection::~RedisConnection() = default;

tl::expected<RedisReply, std::string> RedisConnection::run(const std::vector<std::string>& argv) {
  if (argv.empty()) return tl::make_unexpected(std::string("empty command"));
  Argv a(argv);
  void* raw = redisCommandArgv(state_->context.get(), a.count(), a.args.data(), a.lens.data());
  if (raw == nullptr) return tl::make_unexpected(state_->io_error());
  const std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
  return convert(*reply);
}

tl::expected<void, std::string> RedisConnection::send(const std::vector<std::string>& argv) {
  if (argv.empty()) return tl::make_unexpected(std::string("empty command"));
  Argv a(argv);
  if (redisAppendCommandArgv(state_->context.get(), a.count(), a.args.data(), a.lens.data()) !=
      REDIS_OK) {
    return tl::make_unexpected(state_->io_error());
  }
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(state_->context.get(), &done) != REDIS_OK) {
      return tl::make_unexpected(state_->io_error());
    }
  }
  return {};
}

std::string reply_text(const RedisReply& reply) {
  std::string out;
  render(reply, out);
  return out;
}

std::optional<std::string> info_field(std::string_view info, std::string_view field) {
  std::size_t pos = 0;
  while (pos < info.size()) {
    auto end = info.find('\n', pos);
    if (end == std::string_view::npos) end = info.size();
    std::string_view line = info.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > field.size() && line.substr(0, field.size()) == field &&
        line[field.size()] == ':') {
      return std::string(line.substr(field.size() + 1));
    }
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace redlock::tools
