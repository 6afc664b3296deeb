# SPDX-License-Identifier: MIT
# What `cmake --install` puts where (GNUInstallDirs), and in which component.
# The components are the Debian packages of cmake/package.cmake:
#   lib     libpunch0     libpunch.so.0
#   dev     libpunch-dev  include/punch/*.h, libpunch.so, libpunch.a, punch.pc,
#                         the CMake package (find_package(punch))
#   cli     punch         bin/punch, punch(1), its bash completion
#   server  punchd        sbin/punchd, punchd(8), its bash completion,
#                         punchd.service, /etc/punch/punchd.conf
#   nat     punch-nat     sbin/punch-nat, punch-nat(8)
# (and each its share/doc/PACKAGE/copyright, cmake/package.cmake).
# Every install() names its COMPONENT: one that does not would make a
# package of its own ("Unspecified"), which scripts/package refuses.

install(TARGETS libpunch EXPORT punchTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev)
install(TARGETS libpunch_static EXPORT punchTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/punch DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev FILES_MATCHING PATTERN "*.h")

# The API reference: a man page (section 3) per public function, made from
# the comments of include/punch/*.h at every build (scripts/api_man.py), so
# it cannot fall out of step with the header; docs.api_reference fails
# when a public function has no comment.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(punch_man3 ${CMAKE_BINARY_DIR}/man3)
add_custom_command(OUTPUT ${punch_man3}/libpunch.3
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${punch_man3}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${punch_man3}
  COMMAND Python3::Interpreter ${CMAKE_SOURCE_DIR}/scripts/api_man.py --out ${punch_man3}
          --version ${PROJECT_VERSION} ${punch_man3_headers}
  DEPENDS ${punch_man3_headers} ${CMAKE_SOURCE_DIR}/scripts/api_man.py
  COMMENT "API reference (man3) from include/punch/")
add_custom_target(punch_man3 ALL DEPENDS ${punch_man3}/libpunch.3)
install(DIRECTORY ${punch_man3}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man3 COMPONENT dev)

install(TARGETS punch RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
install(TARGETS punchd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT server)
install(TARGETS punch-nat RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT nat)

# For operators (issue 13): the man pages (docs/man, gzipped at build time
# as Debian wants them), bash completion, punchd's systemd unit and its
# config file. With the prefix /usr (a distribution package) the config
# goes to /etc, else under the prefix; punchd itself reads
# /etc/punch/punchd.conf (or --config FILE).
set(punch_man_pages punch.1:cli punchd.8:server punch-nat.8:nat)
set(punch_man_gz)
foreach(entry ${punch_man_pages})
  string(REPLACE ":" ";" entry ${entry})
  list(GET entry 0 page)
  list(GET entry 1 component)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  set(gz ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
    COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/docs/man/${page} > ${gz}
    DEPENDS ${CMAKE_SOURCE_DIR}/docs/man/${page} VERBATIM)
  list(APPEND punch_man_gz ${gz})
  install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT ${component})
endforeach()
add_custom_target(man_pages ALL DEPENDS ${punch_man_gz})

set(punch_completions ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions)
install(FILES ${CMAKE_SOURCE_DIR}/dist/bash-completion/punch DESTINATION ${punch_completions}
  COMPONENT cli)
install(FILES ${CMAKE_SOURCE_DIR}/dist/bash-completion/punchd DESTINATION ${punch_completions}
  COMPONENT server)

set(PUNCHD_PATH ${CMAKE_INSTALL_FULL_SBINDIR}/punchd)
configure_file(${CMAKE_SOURCE_DIR}/dist/systemd/punchd.service.in
  ${CMAKE_CURRENT_BINARY_DIR}/punchd.service @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/punchd.service DESTINATION lib/systemd/system
  COMPONENT server)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(punch_confdir /etc/punch)
else()
  set(punch_confdir ${CMAKE_INSTALL_SYSCONFDIR}/punch)
endif()
install(FILES ${CMAKE_SOURCE_DIR}/dist/punchd.conf DESTINATION ${punch_confdir} COMPONENT server)

# How a user of libpunch.a finds what the layers link (punch_external_deps,
# cmake/library.cmake): a pkg-config module for punch.pc, a find_package or
# pkg_check_modules call for punchConfig.cmake that recreates the same
# imported target the exported punch::punch_static names. They are QUIET:
# punch::punch (libpunch.so) needs none of them.
set(PUNCH_PC_REQUIRES)
set(PUNCH_PC_LIBS_PRIVATE)
set(PUNCH_CONFIG_DEPS)
foreach(dep ${punch_external_deps})
  string(REGEX REPLACE "^PkgConfig::" "" prefix ${dep})
  if(NOT prefix STREQUAL dep AND ${prefix}_MODULE_NAME)
    set(module ${${prefix}_MODULE_NAME})
    list(APPEND PUNCH_PC_REQUIRES ${module})
    string(APPEND PUNCH_CONFIG_DEPS
           "if(PkgConfig_FOUND)\n  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})\nendif()\n")
  elseif(dep STREQUAL "ZLIB::ZLIB")
    list(APPEND PUNCH_PC_REQUIRES zlib)
    string(APPEND PUNCH_CONFIG_DEPS "find_package(ZLIB QUIET)\n")
  elseif(dep STREQUAL "Threads::Threads")
    list(APPEND PUNCH_PC_LIBS_PRIVATE -pthread)
    string(APPEND PUNCH_CONFIG_DEPS "find_package(Threads QUIET)\n")
  elseif(dep STREQUAL NATPMP_LIBRARY OR dep STREQUAL "${NATPMP_LIBRARY}")
    # libnatpmp has no pkg-config module; the exported target names the file.
    list(APPEND PUNCH_PC_LIBS_PRIVATE -lnatpmp)
  else()
    message(FATAL_ERROR "cmake/install.cmake: say how punch.pc and punchConfig.cmake find ${dep}")
  endif()
endforeach()
list(JOIN PUNCH_PC_REQUIRES " " PUNCH_PC_REQUIRES)
list(JOIN PUNCH_PC_LIBS_PRIVATE " " PUNCH_PC_LIBS_PRIVATE)

# punch.pc takes its prefix when installed, so `cmake --install --prefix DIR`
# writes one that points into DIR.
set(punch_pc ${CMAKE_CURRENT_BINARY_DIR}/punch.pc)
configure_file(${CMAKE_CURRENT_LIST_DIR}/punch.pc.in ${punch_pc}.body @ONLY)
install(CODE "
  file(READ \"${punch_pc}.body\" body)
  file(WRITE \"${punch_pc}\" \"prefix=\${CMAKE_INSTALL_PREFIX}\\n\${body}\")
" COMPONENT dev)
install(FILES ${punch_pc} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

include(CMakePackageConfigHelpers)
set(punch_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/punch)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/punchConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/punchConfig.cmake INSTALL_DESTINATION ${punch_cmake_dir})
# 0.x: a minor release may change the API, so only the same minor matches.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/punchConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/punchConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/punchConfigVersion.cmake
  DESTINATION ${punch_cmake_dir} COMPONENT dev)
install(EXPORT punchTargets NAMESPACE punch:: DESTINATION ${punch_cmake_dir} COMPONENT dev)
