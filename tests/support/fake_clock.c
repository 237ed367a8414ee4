/* fake_clock.c: an LD_PRELOAD shim that makes a process's clocks run at
 * another rate, and its wall clock jump, for the clock sanity tests.
 *
 *   REDLOCK_FAKE_CLOCK_RATE=1.5    every clock runs 1.5x as fast from the
 *                                  moment the shim loads (REALTIME, MONOTONIC
 *                                  and BOOTTIME, with their variants: a fast
 *                                  oscillator drives them all)
 *   REDLOCK_FAKE_CLOCK_FILE=PATH   a file of two little-endian int64 values,
 *                                  offset_ns and ~offset_ns, mapped shared and
 *                                  read on every call: offset_ns is added to
 *                                  the wall clock only (a step, as when an
 *                                  operator or NTP sets the time). A write of
 *                                  both makes the clock jump at once; a torn
 *                                  read (the pair does not match) keeps the
 *                                  last good offset.
 *
 * Wraps clock_gettime, gettimeofday and time. libfaketime hangs a
 * jemalloc-linked redis-server because resolving the real functions
 * (dlsym) allocates while jemalloc is starting up and reading the clock.
 * This shim resolves nothing: it asks the kernel directly (the clock_gettime
 * system call, no vDSO), and its one-time setup (pthread_once) only reads
 * the environment and maps the file; nothing here allocates.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define kClocks 16
#define kNanos 1000000000LL

static pthread_once_t once = PTHREAD_ONCE_INIT;
static double rate = 1.0;
static int64_t base_ns[kClocks];
static int scaled[kClocks];
static const int64_t* control;
static int64_t last_offset;

static int real_clock(clockid_t id, struct timespec* ts) {
  return (int)syscall(SYS_clock_gettime, id, ts);
}

static int64_t to_ns(const struct timespec* ts) {
  return (int64_t)ts->tv_sec * kNanos + ts->tv_nsec;
}

static int is_wall(clockid_t id) { return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE; }

static void setup(void) {
  const char* text = getenv("REDLOCK_FAKE_CLOCK_RATE");
  if (text != NULL && *text != '\0') {
    char* end = NULL;
    const double v = strtod(text, &end);
    if (end != text && *end == '\0' && v > 0.0 && v < 1000.0) rate = v;
  }
  const clockid_t ids[] = {CLOCK_REALTIME,         CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC,
                           CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC_RAW,   CLOCK_BOOTTIME};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; ++i) {
    struct timespec ts;
    if (ids[i] >= 0 && ids[i] < kClocks && real_clock(ids[i], &ts) == 0) {
      base_ns[ids[i]] = to_ns(&ts);
      scaled[ids[i]] = 1;
    }
  }
  const char* path = getenv("REDLOCK_FAKE_CLOCK_FILE");
  if (path != NULL && *path != '\0') {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st;
      if (fstat(fd, &st) == 0 && st.st_size >= (off_t)(2 * sizeof(int64_t))) {
        void* p = mmap(NULL, 2 * sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) control = (const int64_t*)p;
      }
      close(fd);
    }
  }
}

__attribute__((constructor)) static void load(void) { pthread_once(&once, setup); }

static int64_t offset_ns(void) {
  if (control == NULL) return 0;
  const int64_t offset = __atomic_load_n(&control[0], __ATOMIC_ACQUIRE);
  const int64_t check = __atomic_load_n(&control[1], __ATOMIC_ACQUIRE);
  if (check == ~offset) __atomic_store_n(&last_offset, offset, __ATOMIC_RELAXED);
  return __atomic_load_n(&last_offset, __ATOMIC_RELAXED);
}

int clock_gettime(clockid_t id, struct timespec* ts) {
  pthread_once(&once, setup);
  if (real_clock(id, ts) != 0) return -1;
  if (id < 0 || id >= kClocks || !scaled[id]) return 0;
  int64_t ns = base_ns[id] + (int64_t)((double)(to_ns(ts) - base_ns[id]) * rate);
  if (is_wall(id)) ns += offset_ns();
  int64_t sec = ns / kNanos;
  int64_t rem = ns % kNanos;
  if (rem < 0) {
    rem += kNanos;
    --sec;
  }
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = (long)rem;
  return 0;
}

int gettimeofday(struct timeval* restrict tv, void* restrict tz) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  /* glibc declares tv non-null, but callers pass NULL to ask for tz only. */
  struct timeval* volatile out = tv;
  if (out != NULL) {
    out->tv_sec = ts.tv_sec;
    out->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
  }
  if (tz != NULL) {
    struct timezone* zone = (struct timezone*)tz;
    zone->tz_minuteswest = 0;
    zone->tz_dsttime = 0;
  }
  return 0;
}

time_t time(time_t* out) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
  if (out != NULL) *out = ts.tv_sec;
  return ts.tv_sec;
}
