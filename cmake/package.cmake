# SPDX-License-Identifier: MIT
# Debian packages from the tree with CPack (scripts/package builds them):
# one package per install component of cmake/install.cmake, the run-time
# dependencies found by dpkg-shlibdeps from the binaries themselves.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME punch)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "punch maintainers <punch@example.org>")
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPack would put it above every
# package's own first line (the Debian synopsis) below.
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
# Installed under DESTDIR, so CMAKE_INSTALL_PREFIX stays /usr and punch.pc
# (written when installed) says /usr, not the staging folder.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
# A shlibs file in libpunch0, so a package built against libpunch depends on
# it. Its policy stays CPack's "=": while punch is 0.x its ABI is not
# promised between releases, so such a package wants the very version.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libpunch${PUNCH_SOVERSION})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_LIB_DESCRIPTION
  "NAT traversal library (hole punching, relay fallback, Noise IK)\n\
libpunch lets two programs behind NATs and firewalls reach each other\n\
directly, falling back to a relay only when no direct path exists.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libpunch-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# punch.pc's Requires.private and libpunch.a need the libraries' own -dev
# packages; the dependency on libpunch0 comes from the component's DEPENDS.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libsodium-dev, nettle-dev, zlib1g-dev, libusrsctp-dev, libssl-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "NAT traversal library - development files\n\
Headers (punch/punch.h), libpunch.so, the static libpunch.a, punch.pc and the\n\
CMake package: find_package(punch) and target_link_libraries(app punch::punch).")
set(CPACK_COMPONENT_DEV_DEPENDS lib)

set(CPACK_DEBIAN_CLI_PACKAGE_NAME punch)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION net)
set(CPACK_COMPONENT_CLI_DESCRIPTION
  "peer-to-peer connections across NATs from the command line\n\
punch registers with a punchd server and reaches other peers by name:\n\
listen, connect (stdin/stdout), forward TCP ports, vpn, natcheck.")

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME punchd)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION net)
set(CPACK_COMPONENT_SERVER_DESCRIPTION
  "rendezvous, STUN and relay server for punch peers\n\
punchd answers STUN Binding requests (RFC 8489, RFC 5780), introduces punch\n\
peers to each other and relays between them when no direct path exists.")

# The config file is a conffile: dpkg keeps an operator's edits on upgrade
# and asks before replacing them (Debian policy §10.7.3).
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/debian-server/conffiles "/etc/punch/punchd.conf\n")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_BINARY_DIR}/debian-server/conffiles)

set(CPACK_DEBIAN_NAT_PACKAGE_NAME punch-nat)
set(CPACK_DEBIAN_NAT_PACKAGE_SECTION net)
set(CPACK_COMPONENT_NAT_DESCRIPTION
  "user-space NAT with every RFC 4787 behaviour\n\
punch-nat translates IPv4 UDP, TCP and ICMP for a Linux network namespace,\n\
with a chosen mapping, filtering and port allocation; P2P-friendly by default.")

# Debian policy §12.5: every package carries the copyright and license of
# what it holds, as /usr/share/doc/PACKAGE/copyright.
foreach(component lib dev cli server nat)
  string(TOUPPER ${component} upper)
  install(FILES ${CMAKE_SOURCE_DIR}/LICENSE RENAME copyright COMPONENT ${component}
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${CPACK_DEBIAN_${upper}_PACKAGE_NAME})
endforeach()

include(CPack)
