// connection_pool.hpp: ConnectionPool<Conn>, up to N database connections
// shared by threads; each borrower has one connection to itself until it
// gives it back.
//
// Threading: borrow() and the Lease destructor are thread-safe. A lease is
// used by one thread. Connections are made lazily by the factory, outside
// the pool's mutex; a lease marked broken() is dropped instead of returned.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <tl/expected.hpp>
#include <utility>
#include <vector>

namespace redlock::chatroom {

template <typename Conn, typename Error>
class ConnectionPool {
 public:
  using Factory = std::function<tl::expected<std::unique_ptr<Conn>, Error>()>;

  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Conn> conn) noexcept
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          conn_(std::move(other.conn_)),
          broken_(other.broken_) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->give_back(std::move(conn_), broken_);
    }
    Conn& operator*() const noexcept { return *conn_; }
    Conn* operator->() const noexcept { return conn_.get(); }
    // The connection is unusable: close it rather than hand it out again.
    void broken() noexcept { broken_ = true; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Conn> conn_;
    bool broken_ = false;
  };

  ConnectionPool(std::size_t size, Factory factory)
      : size_(size == 0 ? 1 : size), factory_(std::move(factory)) {}

  // Hands out an idle connection, makes a new one while fewer than `size`
  // exist, or waits for one to come back. Error: the factory's.
  tl::expected<Lease, Error> borrow() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    auto made = factory_();
    if (!made) {
      lock.lock();
      --open_;
      cv_.notify_one();
      return tl::make_unexpected(made.error());
    }
    return Lease(this, std::move(*made));
  }

 private:
  void give_back(std::unique_ptr<Conn> conn, bool broken) {
    {
      std::lock_guard lock(mutex_);
      if (broken || !conn) {
        --open_;
      } else {
        idle_.push_back(std::move(conn));
      }
    }
    cv_.notify_one();
    // A broken connection is closed here, outside the mutex.
  }

  const std::size_t size_;
  Factory factory_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::size_t open_ = 0;
};

}  // namespace redlock::chatroom
