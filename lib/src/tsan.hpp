// tsan.hpp: hand-offs that ThreadSanitizer cannot see, declared to it.
//
// Under the tsan preset, tests/tsan.supp leaves the calls libuv makes out of
// TSan's view (libuv closes sockets with a raw syscall that TSan does not
// intercept, which made reused descriptors look like races). That also hides
// the locks and the eventfd through which libuv hands a uv_queue_work item
// to its thread pool and back to the loop thread, so both hand-offs are
// declared here: tsan_release() by the side that gives the item away,
// tsan_acquire() by the side that takes it, before it reads it. Without
// TSan both are empty.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define REDLOCK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define REDLOCK_TSAN 1
#endif
#endif

#ifdef REDLOCK_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace redlock::detail {

inline void tsan_release([[maybe_unused]] void* addr) noexcept {
#ifdef REDLOCK_TSAN
  __tsan_release(addr);
#endif
}

inline void tsan_acquire([[maybe_unused]] void* addr) noexcept {
#ifdef REDLOCK_TSAN
  __tsan_acquire(addr);
#endif
}

}  // namespace redlock::detail
