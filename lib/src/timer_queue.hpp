// timer_queue.hpp: the loop's deadlines, the pure part.
//
// Every operation keeps a timer or two (a round's node timeout, a waiter's
// retry): scheduling and cancelling one is on the hot path, and a waiting
// acquire keeps one for as long as it waits. A timer is a slot in a vector
// (slots are reused) and an entry in a binary min-heap of (when, id); the id
// names its slot, so cancel() finds it without a second index. Nothing is
// allocated per timer beyond the function's own captures, once the vectors
// have grown. An operation's timer has an owner (held weakly, in the slot):
// its function then captures a plain `this` and a word, which std::function
// keeps in its own buffer, so such a timer allocates nothing at all.
//
// Threading: one thread (the loop's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "rules.hpp"

namespace redlock::detail {

class TimerQueue {
 public:
  // Never 0, and never handed out twice (until 2^40 timers were added).
  using Id = std::uint64_t;
  // Timers pending at once, at most.
  static constexpr std::size_t kMaxTimers = std::size_t{1} << 24;

  // A timer handed out by pop_due(): runs its function, unless it has an
  // owner and the owner is gone.
  class Due {
   public:
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
    // The owner, if any, is held until the function returns.
    void operator()() const;

   private:
    friend class TimerQueue;
    std::function<void()> fn_;
    std::weak_ptr<const void> owner_;  // empty (not merely expired): no owner
  };

  // `fn` runs when pop_due() hands it out, at or after `when`. Timers due at
  // the same time come out in the order they were added. Throws
  // std::length_error past kMaxTimers.
  Id add(Clock::time_point when, std::function<void()> fn);
  // The same, for `owner`'s timer: `fn` runs only if `owner` is still alive.
  Id add(Clock::time_point when, std::weak_ptr<const void> owner, std::function<void()> fn);
  // Removes the timer. Cancelling 0, a timer already handed out or one
  // already cancelled does nothing (false).
  bool cancel(Id id);
  // The earliest timer, if due at `now`, out of the queue (empty when none
  // is due).
  [[nodiscard]] Due pop_due(Clock::time_point now);
  // Drops every timer.
  void clear();

  [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }
  // The earliest timer's (empty() must be false).
  [[nodiscard]] Clock::time_point next_when() const noexcept { return heap_.front().when; }
  [[nodiscard]] Id next_id() const noexcept { return heap_.front().id; }

 private:
  static constexpr unsigned kSlotBits = 24;
  static constexpr Id kSlotMask = (Id{1} << kSlotBits) - 1;
  static constexpr std::uint64_t kSequenceEnd = std::uint64_t{1} << (64 - kSlotBits);

  struct Slot {
    Id id = 0;  // 0: free
    std::size_t heap_pos = 0;
    Due due;
  };
  struct Entry {
    Clock::time_point when;
    Id id;  // its sequence number orders timers due at the same time
    [[nodiscard]] bool before(const Entry& other) const noexcept {
      return when < other.when || (when == other.when && id < other.id);
    }
  };

  Id insert(Clock::time_point when, Due due);
  // Takes heap_[pos] out, frees its slot and returns its timer.
  Due remove_at(std::size_t pos);
  void place(std::size_t pos, const Entry& entry) noexcept;
  void sift_up(std::size_t pos) noexcept;
  void sift_down(std::size_t pos) noexcept;

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;  // slots not in use
  std::vector<Entry> heap_;
  std::uint64_t sequence_ = 1;
};

}  // namespace redlock::detail
