# Warnings and sanitizers live on INTERFACE targets that our own targets link
# PRIVATE, so they never leak into consumers.
add_library(redlock_warnings INTERFACE)
target_compile_options(redlock_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual
  -Wimplicit-fallthrough)

option(REDLOCK_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" OFF)
if(REDLOCK_WARNINGS_AS_ERRORS)
  target_compile_options(redlock_warnings INTERFACE -Werror)
endif()

set(REDLOCK_SANITIZE "" CACHE STRING "Sanitizers to build with: address,undefined or thread")
add_library(redlock_sanitizers INTERFACE)
if(REDLOCK_SANITIZE)
  target_compile_options(redlock_sanitizers INTERFACE
    -fsanitize=${REDLOCK_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(redlock_sanitizers INTERFACE -fsanitize=${REDLOCK_SANITIZE})
endif()

# Everything we build, including the tests, links this one target.
add_library(redlock_dev_flags INTERFACE)
target_link_libraries(redlock_dev_flags INTERFACE redlock_warnings redlock_sanitizers)
