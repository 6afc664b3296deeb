# SPDX-License-Identifier: MIT
# libpunch: the objects of the layers in PUNCH_LIBRARY_LAYERS (top-level
# CMakeLists.txt) linked once as a shared library and once as a static
# archive. The layers stay static libraries of their own for the tests and
# the layer check; their objects are compiled once and used by both.
#
#   libpunch  -> libpunch.so.0.1.0, SONAME libpunch.so.0 (punch::punch)
#   libpunch_static -> libpunch.a (punch::punch_static)
#
# Bump PUNCH_SOVERSION with every change that breaks a program linked
# against the previous libpunch.so (a removed or changed punch_* function or
# struct); the Debian package name follows it (libpunch0).
set(PUNCH_SOVERSION 0)

set(punch_objects)
set(punch_external_deps)
foreach(layer ${PUNCH_LIBRARY_LAYERS})
  if(NOT TARGET punch_${layer})
    message(FATAL_ERROR "PUNCH_LIBRARY_LAYERS names '${layer}', which is no layer (punch_layer)")
  endif()
  get_target_property(type punch_${layer} TYPE)
  if(type STREQUAL "STATIC_LIBRARY")
    list(APPEND punch_objects $<TARGET_OBJECTS:punch_${layer}>)
    get_target_property(deps punch_${layer} LINK_LIBRARIES)
  else()
    get_target_property(deps punch_${layer} INTERFACE_LINK_LIBRARIES)
  endif()
  foreach(dep ${deps})
    if(dep MATCHES "^punch_(.*)$")
      if(NOT CMAKE_MATCH_1 IN_LIST PUNCH_LIBRARY_LAYERS)
        message(FATAL_ERROR "libpunch: layer '${layer}' needs '${CMAKE_MATCH_1}'; "
                            "add it to PUNCH_LIBRARY_LAYERS")
      endif()
    elseif(dep)
      list(APPEND punch_external_deps ${dep})
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES punch_external_deps)

# The public headers, in the order a reader takes them (the API reference,
# cmake/install.cmake, and docs.api_reference follow it): the sans-I/O
# agent, the platform, key files, the driver, the streams.
set(punch_man3_headers)
foreach(h punch.h io.h keyfile.h driver.h stream.h)
  list(APPEND punch_man3_headers ${CMAKE_SOURCE_DIR}/include/punch/${h})
endforeach()
file(GLOB punch_headers_found ${CMAKE_SOURCE_DIR}/include/punch/*.h)
foreach(h ${punch_headers_found})
  if(NOT h IN_LIST punch_man3_headers)
    message(FATAL_ERROR "cmake/library.cmake: add ${h} to the public headers' list")
  endif()
endforeach()

# Only the functions include/punch/*.h declares leave the shared library: a
# version script made from the headers (cmake/export_map.cmake) at build time.
set(punch_map ${CMAKE_CURRENT_BINARY_DIR}/libpunch.map)
file(GLOB punch_public_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/include/punch/*.h)
add_custom_command(OUTPUT ${punch_map}
  COMMAND ${CMAKE_COMMAND} -DHEADER_DIR=${CMAKE_SOURCE_DIR}/include/punch -DOUT=${punch_map}
          -P ${CMAKE_CURRENT_LIST_DIR}/export_map.cmake
  DEPENDS ${punch_public_headers} ${CMAKE_CURRENT_LIST_DIR}/export_map.cmake
  COMMENT "Exports of libpunch.so from include/punch/")
add_library(libpunch SHARED ${punch_objects} ${punch_map})
add_library(libpunch_static STATIC ${punch_objects})
foreach(lib libpunch libpunch_static)
  target_include_directories(${lib} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${lib} PRIVATE ${punch_external_deps})
  target_compile_features(${lib} PUBLIC c_std_11)
endforeach()
set_target_properties(libpunch PROPERTIES
  OUTPUT_NAME punch EXPORT_NAME punch
  VERSION ${PROJECT_VERSION} SOVERSION ${PUNCH_SOVERSION}
  LINK_DEPENDS ${punch_map})
target_link_options(libpunch PRIVATE -Wl,--version-script=${punch_map})
# Every symbol the library uses must resolve at its own link, so a layer
# left out of PUNCH_LIBRARY_LAYERS or a library missing from a layer's DEPS
# fails here and not in a user's program. The sanitizers' and libFuzzer's
# runtimes link into executables only, so their builds skip the check.
if(NOT PUNCH_SANITIZE AND NOT PUNCH_FUZZ)
  target_link_options(libpunch PRIVATE -Wl,--no-undefined)
endif()
set_target_properties(libpunch_static PROPERTIES
  OUTPUT_NAME punch EXPORT_NAME punch_static)

# The names an installed package gives, for programs built in the tree.
add_library(punch::punch ALIAS libpunch)
add_library(punch::punch_static ALIAS libpunch_static)
