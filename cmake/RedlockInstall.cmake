# Install rules for the library: headers (with the generated export.hpp and
# version.hpp), the library, a CMake package (redlockConfig.cmake, a version
# file, the exported targets) and a pkg-config file. Included from
# lib/CMakeLists.txt when REDLOCK_INSTALL is on.
#
# One build installs one flavour, static or shared (BUILD_SHARED_LIBS). Both
# can go into the same prefix by building and installing twice: each flavour
# has its own export file (redlock-static-targets.cmake,
# redlock-shared-targets.cmake) and redlockConfig.cmake picks one; the headers,
# the config files and redlock.pc are identical in both flavours.
include(CMakePackageConfigHelpers)

set(REDLOCK_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/redlock"
  CACHE STRING "Where to install redlockConfig.cmake, relative to the prefix")
mark_as_advanced(REDLOCK_INSTALL_CMAKEDIR)

get_target_property(redlock_type redlock TYPE)
if(redlock_type STREQUAL "SHARED_LIBRARY")
  set(redlock_flavour shared)
else()
  set(redlock_flavour static)
endif()

install(DIRECTORY
    "${PROJECT_SOURCE_DIR}/lib/include/redlock"
    "${REDLOCK_GENERATED_INCLUDEDIR}/redlock"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  COMPONENT redlock_Development
  FILES_MATCHING PATTERN "*.hpp")

install(TARGETS redlock
  EXPORT redlock-${redlock_flavour}-targets
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT redlock_Runtime
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT redlock_Runtime
    NAMELINK_COMPONENT redlock_Development
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT redlock_Development)

install(EXPORT redlock-${redlock_flavour}-targets
  NAMESPACE redlock::
  DESTINATION "${REDLOCK_INSTALL_CMAKEDIR}"
  COMPONENT redlock_Development)

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/redlockConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/redlockConfig.cmake"
  INSTALL_DESTINATION "${REDLOCK_INSTALL_CMAKEDIR}")

# Before 1.0 a minor release may break the API and the ABI, so a request for
# 0.1 accepts 0.1.x only; from 1.0 on, any 1.y.z satisfies a request for 1.x.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(redlock_compatibility SameMinorVersion)
else()
  set(redlock_compatibility SameMajorVersion)
endif()
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/redlockConfigVersion.cmake"
  COMPATIBILITY ${redlock_compatibility})

install(FILES
    "${PROJECT_BINARY_DIR}/redlockConfig.cmake"
    "${PROJECT_BINARY_DIR}/redlockConfigVersion.cmake"
  DESTINATION "${REDLOCK_INSTALL_CMAKEDIR}"
  COMPONENT redlock_Development)

# redlock.pc gets its prefix when it is installed, so that
# `cmake --install --prefix <dir>` writes <dir> into it; libdir and includedir
# are relative to ${prefix} unless the cache made them absolute.
foreach(dir IN ITEMS LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(redlock_pc_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(redlock_pc_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(redlock_pc_prefix "@CMAKE_INSTALL_PREFIX@")
configure_file("${PROJECT_SOURCE_DIR}/cmake/redlock.pc.in"
  "${PROJECT_BINARY_DIR}/redlock.pc.in" @ONLY)
install(CODE "configure_file(\"${PROJECT_BINARY_DIR}/redlock.pc.in\"
  \"${PROJECT_BINARY_DIR}/redlock.pc\" @ONLY)"
  COMPONENT redlock_Development)
install(FILES "${PROJECT_BINARY_DIR}/redlock.pc"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  COMPONENT redlock_Development)
