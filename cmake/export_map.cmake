# SPDX-License-Identifier: MIT
# cmake -DHEADER_DIR=DIR -DOUT=FILE -P export_map.cmake
# Writes the linker version script of libpunch.so: the functions that the
# public headers (DIR/*.h) declare are global, everything else is local. The
# layers call each other through punch_* functions too; those stay inside
# the library, so its ABI is exactly what include/punch/ shows.
# A declaration is a punch_ name right before "(" (STYLE: no space there)
# on a line that is no typedef (a function type such as a callback's).
file(GLOB headers ${HEADER_DIR}/*.h)
set(names)
foreach(header ${headers})
  file(STRINGS ${header} lines REGEX "punch_[a-z0-9_]+\\(")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[ \t]*typedef")
      continue()
    endif()
    string(REGEX MATCHALL "(^|[^A-Za-z0-9_])punch_[a-z0-9_]+\\(" calls "${line}")
    foreach(call ${calls})
      string(REGEX MATCH "punch_[a-z0-9_]+" name "${call}")
      list(APPEND names ${name})
    endforeach()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES names)
list(SORT names)
list(JOIN names ";\n    " globals)
file(WRITE ${OUT}.new "/* Generated from ${HEADER_DIR}/*.h by cmake/export_map.cmake */\n"
     "{\n  global:\n    ${globals};\n  local:\n    *;\n};\n")
# Rewritten only when it changes, so editing a comment relinks nothing.
file(COPY_FILE ${OUT}.new ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.new)
