#include "dispatcher.hpp"

#include <pybind11/pybind11.h>

#include <utility>

namespace py = pybind11;

namespace redlock::python {
namespace {

bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

}  // namespace

std::shared_ptr<Dispatcher> Dispatcher::start() {
  std::shared_ptr<Dispatcher> self(new Dispatcher());
  self->thread_ = std::thread([self] { self->run(); });
  return self;
}

Dispatcher::~Dispatcher() {
  // stop() joined or detached it, unless the process forked and the client
  // leaked this object (then the destructor never runs at all).
  if (thread_.joinable()) thread_.detach();
}

bool Dispatcher::push(Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

void Dispatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // it finishes the current batch and the queue, then ends
  } else {
    thread_.join();
  }
}

void Dispatcher::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return !tasks_.empty() || stopping_; });
    if (tasks_.empty()) return;  // stopping, and everything was delivered
    std::deque<Task> batch;
    batch.swap(tasks_);
    lock.unlock();
    run_batch(batch);
    lock.lock();
  }
}

void Dispatcher::run_batch(std::deque<Task>& batch) {
  // Once the interpreter is finalizing, a thread that asks for the GIL is
  // ended on the spot (Python 3.11 calls pthread_exit). The module closes
  // every client at exit, before that, so only a client made after that
  // point gets here: its outcomes are dropped, and locks expire with their ttl.
  if (finalizing()) {
    batch.clear();
    return;
  }
  py::gil_scoped_acquire gil;
  for (auto& task : batch) task();
  // Tasks may hold Python objects: drop them while the GIL is held.
  batch.clear();
}

}  // namespace redlock::python
