#include "timer_queue.hpp"

#include <stdexcept>
#include <utility>

namespace redlock::detail {

void TimerQueue::Due::operator()() const {
  // Whether owner_ ever named an object: an expired owner still shares its
  // control block, which only an empty weak_ptr does not.
  const std::weak_ptr<const void> none;
  const bool owned = owner_.owner_before(none) || none.owner_before(owner_);
  if (!owned) {
    fn_();
    return;
  }
  if (const auto alive = owner_.lock()) fn_();
}

TimerQueue::Id TimerQueue::add(Clock::time_point when, std::function<void()> fn) {
  Due due;
  due.fn_ = std::move(fn);
  return insert(when, std::move(due));
}

TimerQueue::Id TimerQueue::add(Clock::time_point when, std::weak_ptr<const void> owner,
                               std::function<void()> fn) {
  Due due;
  due.fn_ = std::move(fn);
  due.owner_ = std::move(owner);
  return insert(when, std::move(due));
}

TimerQueue::Id TimerQueue::insert(Clock::time_point when, Due due) {
  std::uint32_t slot = 0;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    if (slots_.size() >= kMaxTimers) throw std::length_error("redlock: too many timers pending");
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  const Id id = (sequence_ << kSlotBits) | slot;
  // After 2^40 timers the sequence starts again (at 1: an id is never 0).
  sequence_ = sequence_ + 1 == kSequenceEnd ? 1 : sequence_ + 1;
  slots_[slot].id = id;
  slots_[slot].due = std::move(due);
  heap_.push_back(Entry{when, id});
  slots_[slot].heap_pos = heap_.size() - 1;
  sift_up(heap_.size() - 1);
  return id;
}

bool TimerQueue::cancel(Id id) {
  const auto slot = static_cast<std::size_t>(id & kSlotMask);
  if (id == 0 || slot >= slots_.size() || slots_[slot].id != id) return false;
  // Destroyed here, after the queue is consistent again: what the function
  // holds may cancel or add timers as it goes.
  const auto dropped = remove_at(slots_[slot].heap_pos);
  return true;
}

TimerQueue::Due TimerQueue::pop_due(Clock::time_point now) {
  if (heap_.empty() || heap_.front().when > now) return {};
  return remove_at(0);
}

void TimerQueue::clear() {
  // Moved out first, for the same reason as in cancel().
  auto slots = std::move(slots_);
  slots_.clear();
  free_.clear();
  heap_.clear();
}

TimerQueue::Due TimerQueue::remove_at(std::size_t pos) {
  const auto slot = static_cast<std::uint32_t>(heap_[pos].id & kSlotMask);
  auto due = std::exchange(slots_[slot].due, Due{});
  slots_[slot].id = 0;
  free_.push_back(slot);
  const Entry last = heap_.back();
  heap_.pop_back();
  if (pos < heap_.size()) {
    place(pos, last);
    if (pos > 0 && last.before(heap_[(pos - 1) / 2])) {
      sift_up(pos);
    } else {
      sift_down(pos);
    }
  }
  return due;
}

void TimerQueue::place(std::size_t pos, const Entry& entry) noexcept {
  heap_[pos] = entry;
  slots_[static_cast<std::size_t>(entry.id & kSlotMask)].heap_pos = pos;
}

void TimerQueue::sift_up(std::size_t pos) noexcept {
  const Entry entry = heap_[pos];
  while (pos > 0) {
    const std::size_t parent = (pos - 1) / 2;
    if (!entry.before(heap_[parent])) break;
    place(pos, heap_[parent]);
    pos = parent;
  }
  place(pos, entry);
}

void TimerQueue::sift_down(std::size_t pos) noexcept {
  const Entry entry = heap_[pos];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * pos + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1].before(heap_[child])) ++child;
    if (!heap_[child].before(entry)) break;
    place(pos, heap_[child]);
    pos = child;
  }
  place(pos, entry);
}

}  // namespace redlock::detail
