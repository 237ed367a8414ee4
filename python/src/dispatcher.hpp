// dispatcher.hpp: Dispatcher, the one thread of a Python client that takes
// the GIL on the engine's behalf.
//
// The engine's loop thread never takes the GIL: waiting for it there would
// stall every node connection and timer of the client for as long as some
// Python thread keeps it (up to the switch interval, 5 ms, each time), and
// would deadlock a close() made while holding it. Instead, the loop thread's
// callbacks push a task here and return; the dispatcher's thread takes the
// GIL and runs the tasks, which hand outcomes to asyncio loops
// (loop.call_soon_threadsafe) and log records to Python's logging.
//
// Threading: push() from any thread, never blocks on the GIL. stop() from a
// thread that does not hold the GIL (the dispatcher needs it to finish), or
// from the dispatcher's own thread (a task that drops the last reference to
// its client), where it only asks the thread to end after the current task.
// Tasks run in the order pushed, with the GIL held, and must not throw.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace redlock::python {

class Dispatcher {
 public:
  using Task = std::function<void()>;

  // Starts the thread. Throws std::system_error if it cannot.
  [[nodiscard]] static std::shared_ptr<Dispatcher> start();
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Queues `task`; false (and the task is dropped) once stop() was called.
  bool push(Task task);
  // Runs the tasks already queued, then ends the thread and joins it.
  void stop();

 private:
  Dispatcher() = default;
  void run();
  void run_batch(std::deque<Task>& batch);

  std::mutex mutex_;  // guards tasks_ and stopping_
  std::condition_variable wake_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  // Last: the thread starts once everything above exists. It holds a
  // shared_ptr to this object, so a thread left to finish on its own (stop()
  // called from the thread itself) never runs on freed memory.
  std::thread thread_;
};

}  // namespace redlock::python
