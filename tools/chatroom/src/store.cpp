#include "store.hpp"

namespace redlock::chatroom {

StoreResult<std::unique_ptr<Store>> open_store(const std::string& url, std::size_t pool_size) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.rfind(kSqlite, 0) == 0) return open_sqlite_store(url.substr(kSqlite.size()), pool_size);
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return open_postgres_store(url, pool_size);
  }
  return tl::make_unexpected(StoreError{
      StoreErrorKind::kFailed,
      "unknown store \"" + url + "\": expected sqlite:PATH or postgresql://user@host:port/db"});
}

}  // namespace redlock::chatroom
