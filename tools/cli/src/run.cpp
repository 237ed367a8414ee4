// run: a command under a lock the engine keeps extending.
//
// The main thread blocks SIGINT, SIGTERM, SIGHUP and SIGCHLD before the
// Client (and its loop thread) exists, so those signals are only ever read
// from a signalfd here. The engine reports a lost lock through on_lost, on its
// loop thread, which only writes one byte to a pipe; everything else happens
// on the main thread, in one poll() loop.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>

#include "cli_support.hpp"
#include "commands.hpp"
#include "redlock/tools/duration.hpp"
#include "redlock/tools/subprocess.hpp"
#include "redlock/tools/text.hpp"

namespace redlock::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&&) = delete;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

// A non-blocking pipe used as a doorbell between threads.
struct Doorbell {
  UniqueFd read_end;
  UniqueFd write_end;
  static std::optional<Doorbell> make() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return std::nullopt;
    return Doorbell{UniqueFd(fds[0]), UniqueFd(fds[1])};
  }
};

void ring(int fd) noexcept {
  const char byte = 1;
  // Full pipe: it is ringing already.
  [[maybe_unused]] const auto n = ::write(fd, &byte, 1);
}

void drain(int fd) noexcept {
  char buf[64];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

// Signals delivered since the last call, in order.
std::vector<signalfd_siginfo> read_signals(int fd) {
  std::vector<signalfd_siginfo> out;
  signalfd_siginfo info{};
  while (::read(fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) out.push_back(info);
  return out;
}

bool is_stop_signal(std::uint32_t signo) {
  return signo == SIGINT || signo == SIGTERM || signo == SIGHUP;
}

void say(const std::string& message) { std::cerr << "redlock: " << message << '\n'; }

std::string command_name(const RunArgs& args) { return args.command.front(); }

// Runs the command under the held lock until it ends; returns run's exit
// status. The lock is released before it returns, unless it throws.
int supervise(const Globals& globals, const RunArgs& args, LockGuard& held, int signal_fd,
              int lost_fd);

}  // namespace

int cmd_run(const Globals& globals, const RunArgs& args) {
  const WaitBudget budget{Clock::now(), args.wait};
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&handled, sig);
  if (::pthread_sigmask(SIG_BLOCK, &handled, nullptr) != 0) {
    say("cannot block signals");
    return kExitFailure;
  }
  const UniqueFd signals(::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK));
  auto lost_bell = Doorbell::make();
  auto acquired_bell = Doorbell::make();
  if (signals.get() < 0 || !lost_bell || !acquired_bell) {
    say(std::string("cannot set up signal handling: ") + std::strerror(errno));
    return kExitFailure;
  }

  // Declared after the doorbells: the Client (whose on_lost rings one) is
  // destroyed, and its loop thread joined, before they are closed.
  auto client = connect_client(
      globals, [&](ClientOptions& o) { o.connect_timeout = budget.connect_timeout(); });
  if (!client) {
    return report_error(globals, client.error(), globals.nodes.size() / 2 + 1, args.resource);
  }
  const std::size_t quorum = (*client)->quorum();

  std::stop_source cancel;
  AcquireOptions how;
  how.max_wait = budget.left();
  how.retry_delay = args.retry_delay;
  how.retry_jitter = args.retry_delay / 2;
  how.stop = cancel.get_token();
  AutoExtendOptions keep;
  keep.max_extensions = 0;  // bounded by max_hold instead
  keep.max_hold = args.max_hold;
  keep.on_lost = [fd = lost_bell->write_end.get()](const Error&) { ring(fd); };

  // The acquire blocks; it runs on a thread of its own so that this one can
  // turn a SIGINT/SIGTERM during the wait into a cancellation.
  std::optional<Result<LockGuard>> acquired;
  std::thread acquirer([&] {
    acquired.emplace((*client)->acquire_guard(args.resource, args.ttl, how, keep));
    ring(acquired_bell->write_end.get());
  });
  int interrupted_by = 0;
  for (;;) {
    pollfd fds[2] = {{signals.get(), POLLIN, 0}, {acquired_bell->read_end.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    for (const auto& info : read_signals(signals.get())) {
      if (is_stop_signal(info.ssi_signo) && interrupted_by == 0) {
        interrupted_by = static_cast<int>(info.ssi_signo);
        cancel.request_stop();
      }
    }
    if ((fds[1].revents & POLLIN) != 0) break;
  }
  acquirer.join();
  Result<LockGuard> guard = std::move(*acquired);
  if (interrupted_by != 0) {
    if (guard) (void)guard->release();
    say("interrupted by SIG" + tools::signal_name(interrupted_by) + " while waiting for " +
        tools::quoted(args.resource));
    return 128 + interrupted_by;
  }
  if (!guard) return report_error(globals, guard.error(), quorum, args.resource);
  // From here on the lock is held: whatever happens, it is released before
  // this returns (the guard would only release it asynchronously, and the
  // client's shutdown would cut that short).
  try {
    return supervise(globals, args, *guard, signals.get(), lost_bell->read_end.get());
  } catch (const std::exception& e) {
    (void)guard->release();
    say(std::string("internal error: ") + e.what() + "; the lock was released");
  } catch (...) {
    (void)guard->release();
    say("internal error; the lock was released");
  }
  return kExitFailure;
}

namespace {

int supervise(const Globals& globals, const RunArgs& args, LockGuard& held, int signal_fd,
              int lost_fd) {
  LockGuard* guard = &held;
  if (globals.verbose) {
    const Lock lock = guard->lock();
    say("acquired " + tools::quoted(args.resource) + " (token " + lock.token() + ", valid for " +
        std::to_string(lock.remaining().count()) + " ms); running " + command_name(args));
  }

  tools::SpawnOptions spawn;
  spawn.argv = args.command;
  spawn.env = {"REDLOCK_RESOURCE=" + args.resource, "REDLOCK_TOKEN=" + guard->lock().token(),
               "REDLOCK_FENCE=" + std::to_string(guard->lock().fence())};
  spawn.inherit_stdin = true;
  // If redlock itself dies nothing keeps the lock any more: the command gets
  // the same signal as for a lost lock.
  spawn.parent_death_signal = args.signal;
  auto child = tools::Subprocess::spawn(spawn);
  if (!child) {
    (void)guard->release();
    say(child.error().message);
    return child.error().error_number == ENOENT ? 127 : 126;
  }

  bool lost = false;
  std::optional<Clock::time_point> kill_at;
  auto on_lost = [&] {
    lost = true;
    const auto why = guard->lost_error();
    say("lost the lock on " + tools::quoted(args.resource) + " (" +
        (why ? to_string(*why) : std::string("lost")) + "); sending SIG" +
        tools::signal_name(args.signal) + " to " + command_name(args) + " (pid " +
        std::to_string(child->pid()) + ")");
    child->signal(args.signal);
    if (args.kill_after.count() > 0) kill_at = Clock::now() + args.kill_after;
  };
  while (!child->poll()) {
    if (!lost && guard->lost()) on_lost();
    // The engine rings when the lock is lost; the timeout is only a bound
    // for the SIGKILL deadline and a second look at lost().
    int timeout_ms = 500;
    if (kill_at) {
      const auto left = std::chrono::duration_cast<milliseconds>(*kill_at - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<long long>(left.count(), 0, 500));
    }
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {lost_fd, POLLIN, 0}};
    if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR) break;
    drain(lost_fd);
    for (const auto& info : read_signals(signal_fd)) {
      // A terminal's ^C reaches the whole foreground process group, the
      // command included (si_code SI_KERNEL): forward only what was sent to
      // redlock alone.
      if (is_stop_signal(info.ssi_signo) && info.ssi_code != SI_KERNEL) {
        if (globals.verbose) {
          say("forwarding SIG" + tools::signal_name(static_cast<int>(info.ssi_signo)) + " to " +
              command_name(args));
        }
        child->signal(static_cast<int>(info.ssi_signo));
      }
    }
    if (!lost && guard->lost()) on_lost();
    if (kill_at && Clock::now() >= *kill_at) {
      say(command_name(args) + " still runs " + tools::format_duration(args.kill_after) +
          " after SIG" + tools::signal_name(args.signal) + "; sending SIGKILL");
      child->signal(SIGKILL);
      kill_at.reset();
    }
  }
  const int status = child->wait();
  if (!lost && guard->lost()) {
    lost = true;
    const auto why = guard->lost_error();
    say("lost the lock on " + tools::quoted(args.resource) + " while " + command_name(args) +
        " ran (" + (why ? to_string(*why) : std::string("lost")) + ")");
  }
  auto released = guard->release();
  if (globals.verbose && released) {
    say("released " + tools::quoted(args.resource) + " (deleted on " +
        std::to_string(released->deleted) + " nodes)");
  }
  if (lost) return kExitLockLost;
  return tools::exit_code(status);
}

}  // namespace
}  // namespace redlock::cli
