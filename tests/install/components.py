#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Every install() in the CMake files names a COMPONENT (cmake/install.cmake:
# one that does not would land in a Debian package of its own). Reads each
# call whole, quotes and nested parentheses included, and names the file and
# line of any without one. Also run on a fixture that lacks one, to show it
# catches it.
#
# usage: components.py SOURCE_DIR [--expect-fail FILE]
import os
import re
import sys


def calls(text):
    """Yield (line, body) of each install( ... ) call."""
    for m in re.finditer(r'(?im)^[ \t]*install[ \t]*\(', text):
        depth, i, quoted = 1, m.end(), False
        while i < len(text) and depth:
            c = text[i]
            if c == '\\' and quoted:
                i += 1
            elif c == '"':
                quoted = not quoted
            elif not quoted and c == '(':
                depth += 1
            elif not quoted and c == ')':
                depth -= 1
            i += 1
        yield text.count('\n', 0, m.start()) + 1, text[m.end():i - 1]


def unquoted(body):
    return re.sub(r'"(\\.|[^"\\])*"', '""', body)


def check(paths):
    bad, n = [], 0
    for path in paths:
        with open(path) as f:
            text = re.sub(r'(?m)#.*$', '', f.read())
        for line, body in calls(text):
            n += 1
            if not re.search(r'\bCOMPONENT\s+\S', unquoted(body)):
                bad.append('%s:%d' % (path, line))
    return n, bad


def cmake_files(root):
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(('.', 'build'))]
        for f in files:
            if f == 'CMakeLists.txt' or f.endswith('.cmake'):
                yield os.path.join(d, f)


if len(sys.argv) == 4 and sys.argv[2] == '--expect-fail':
    n, bad = check([sys.argv[3]])
    if not bad:
        sys.exit('FAIL: the fixture %s passed: the check catches nothing' % sys.argv[3])
    print('ok: the check catches %s' % ', '.join(bad))
    sys.exit(0)
n, bad = check(sorted(cmake_files(sys.argv[1])))
if bad:
    sys.exit('FAIL: install() without a COMPONENT at %s' % ', '.join(bad))
print('ok: all %d install() calls name a COMPONENT' % n)
