# Dependency lookup. Everything comes from Debian 12 packages (see
# scripts/install-deps.sh); pkg-config first, CMake packages where Debian ships
# them.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv>=1.40)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis>=0.14)
# TLS to the nodes (lib/src/tls.cpp), OpenSSL over the engine's own sockets.
# A prefix of our own: FindOpenSSL's OPENSSL_* variables stay untouched for a
# parent project that uses both.
pkg_check_modules(REDLOCK_OPENSSL REQUIRED IMPORTED_TARGET openssl>=3.0)
find_package(spdlog REQUIRED CONFIG)
find_package(tl-expected REQUIRED CONFIG)

if(REDLOCK_BUILD_TOOLS OR REDLOCK_BUILD_TESTS OR REDLOCK_BUILD_BENCH)
  find_package(CLI11 REQUIRED CONFIG)
endif()
if(REDLOCK_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(REDLOCK_BUILD_BENCH)
  find_package(benchmark REQUIRED CONFIG)
endif()
