// Checks that the headers a program is compiled with and the library it runs
// with are the same redlock version: a stale install or a wrong
// LD_LIBRARY_PATH shows up here. Exit 0 when they match.
#include <iostream>
#include <redlock/redlock.hpp>
#include <string_view>

int main() {
  constexpr std::string_view kHeaders = REDLOCK_VERSION;
  const std::string_view library = redlock::version();
  std::cout << "redlock headers " << kHeaders << ", library " << library << "\n";
  static_assert(REDLOCK_VERSION_MAJOR >= 0 && REDLOCK_VERSION_MINOR >= 0 &&
                REDLOCK_VERSION_PATCH >= 0);
  return library == kHeaders ? 0 : 1;
}
