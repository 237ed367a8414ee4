// wake.hpp: wake-on-release, the pure parts.
//
// A release (the release script) announces each key it deleted with PUBLISH
// on the resource's release channel (keys.hpp). A waiting acquire listens on
// its resources' channels and starts its next round as soon as an
// announcement comes, instead of sleeping out its jittered retry delay
// (retry.hpp says when). These are the parts without I/O: the
// reference-counted table of who listens to what, and the reading of
// subscribed-mode replies.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol.hpp"
#include "rules.hpp"

namespace redlock::detail {

// Which listeners want which channels. A channel is subscribed while it has
// at least one listener: add() says when the first one comes (SUBSCRIBE),
// remove() when the last one goes (UNSUBSCRIBE). A channel whose last
// listener went may instead be kept subscribed, idle, for a while
// (remove(..., keep)), so that a client that waits on the same resource
// again soon neither subscribes again nor misses an announcement made
// before its SUBSCRIBE would have arrived; expire() drops it later.
class ChannelTable {
 public:
  using ListenerId = std::uint64_t;

  // True when `channel` was not subscribed before (neither listened to nor
  // kept). Adding a pair twice, or listener 0, is a no-op (false).
  bool add(const std::string& channel, ListenerId listener);
  // True when `listener` was the channel's last one and the channel is
  // dropped. With `keep`, the channel stays subscribed, idle since `now`,
  // and remove() answers false. Removing a pair that is not there is a
  // no-op (false).
  bool remove(const std::string& channel, ListenerId listener, Clock::time_point now = {},
              bool keep = false);
  // Drops the channels idle since `cutoff` or earlier, and returns them.
  std::vector<std::string> expire(Clock::time_point cutoff);
  // An announcement on `channel` came at `at` (ignored when it is not
  // subscribed).
  void heard(const std::string& channel, Clock::time_point at);
  // Whether one came on `channel` at or after `since`.
  [[nodiscard]] bool heard_since(const std::string& channel, Clock::time_point since) const;

  // The channel's listeners, in id order (a copy: waking one may change the
  // table).
  [[nodiscard]] std::vector<ListenerId> listeners(const std::string& channel) const;
  // Every subscribed channel (idle ones included), in order (to subscribe
  // after a reconnect).
  [[nodiscard]] std::vector<std::string> channels() const;
  [[nodiscard]] bool contains(const std::string& channel) const;
  [[nodiscard]] std::size_t idle() const noexcept { return idle_; }
  [[nodiscard]] std::size_t size() const noexcept { return map_.size(); }
  [[nodiscard]] bool empty() const noexcept { return map_.empty(); }

 private:
  // A channel's listeners: nearly always one (a waiter per resource), kept
  // without a heap block of its own, and the others behind one pointer.
  class Listeners {
   public:
    bool insert(ListenerId id);
    bool erase(ListenerId id);
    [[nodiscard]] bool empty() const noexcept { return first_ == 0; }
    [[nodiscard]] std::vector<ListenerId> ids() const;  // in id order

   private:
    ListenerId first_ = 0;  // 0: none (ids start at 1); set whenever more_ has any
    std::unique_ptr<std::vector<ListenerId>> more_;
  };
  struct Entry {
    Listeners listeners;
    Clock::time_point idle_since{};                      // when listeners became empty
    Clock::time_point heard = Clock::time_point::min();  // the last announcement
  };
  std::map<std::string, Entry, std::less<>> map_;
  std::size_t idle_ = 0;  // entries without listeners
};

// A reply read on a connection in subscribed mode (RESP2).
struct PushEvent {
  enum class Kind : std::uint8_t {
    kMessage,      // ["message", channel, payload] (or "smessage": sharded pub/sub)
    kSubscribe,    // ["subscribe", channel, count]
    kUnsubscribe,  // ["unsubscribe", channel, count]
    kError,        // an error reply (NOPERM for a channel the ACL denies, ...)
    kOther         // anything else (a PONG, a pattern message, ...): ignored
  };
  Kind kind = Kind::kOther;
  std::string channel;  // kMessage, kSubscribe, kUnsubscribe
  std::string error;    // kError: the error text
};

[[nodiscard]] PushEvent read_push(const Reply& reply);

// SUBSCRIBE or UNSUBSCRIBE of `channels`, as wire commands of at most
// `per_command` channels each (none for no channels).
[[nodiscard]] std::vector<std::string> subscription_commands(
    std::string_view verb, const std::vector<std::string>& channels, std::size_t per_command = 512);

}  // namespace redlock::detail
