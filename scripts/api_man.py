#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The API reference of libpunch, made from its public headers.

    api_man.py --check HEADER...           list the undocumented functions (exit 1)
    api_man.py --out DIR HEADER...         write man pages (section 3) into DIR

A public function is documented by the comment right above its
declaration: with nothing between them but preprocessor lines, enums and
typedefs. A function declared right under another one (no blank line)
shares that one's comment only when the comment names it. The pages are
one per function (SYNOPSIS: its header and declaration; DESCRIPTION: the
comment, and the header's opening comment in libpunch(3)), so `man
punch_agent_new` works once the package is installed, and the reference
is rebuilt from the headers at every build: it cannot fall out of step.
"""
import argparse
import os
import re
import sys

DECL = re.compile(r"\b(punch_[a-z0-9_]+)\(")


def strip_comment(lines):
    """The text of a /* ... */ block, without its markers and stars."""
    text = []
    for line in lines:
        line = line.strip()
        line = re.sub(r"^/\*+ ?", "", line)
        line = re.sub(r"\*+/$", "", line)
        line = re.sub(r"^\* ?", "", line)
        text.append(line.rstrip())
    while text and not text[0]:
        text.pop(0)
    while text and not text[-1]:
        text.pop()
    return "\n".join(text)


def comment_above(lines, i):
    """(comment text, name of the declaration between) above line i."""
    between = None
    j = i - 1
    while j >= 0:
        s = lines[j].strip()
        if not s:
            return None, between
        if s.endswith("*/"):
            k = j
            while k >= 0 and "/*" not in lines[k]:
                k -= 1
            if lines[k].strip().startswith("/*"):
                return strip_comment(lines[k:j + 1]), between
            # a trailing comment on a code line: part of the code
        m = DECL.search(s)
        if m and not s.startswith("typedef") and between is None and s.endswith(";"):
            between = m.group(1)
        j -= 1
    return None, between


def declarations(path):
    """Yield (name, declaration text, comment or None) for each function."""
    lines = open(path, encoding="utf-8").read().split("\n")
    depth = 0  # inside a struct, enum or comment block
    in_comment = False
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if in_comment:
            in_comment = "*/" not in s
            i += 1
            continue
        if s.startswith("/*") and "*/" not in s:
            in_comment = True
            i += 1
            continue
        code = re.sub(r"/\*.*?\*/", "", s)
        m = DECL.search(code)
        if depth == 0 and m and not code.startswith(("typedef", "#")):
            start = i
            decl = [lines[i].rstrip()]
            while not decl[-1].rstrip().endswith(";") and i + 1 < len(lines):
                i += 1
                decl.append(lines[i].rstrip())
            text, between = comment_above(lines, start)
            if text is not None and between is not None and m.group(1) not in text:
                text = None  # shares a comment that does not name it
            yield m.group(1), "\n".join(decl), text
        depth += code.count("{") - code.count("}")
        if code.startswith('extern "C"'):
            depth -= 1
        i += 1


def header_doc(path):
    """The opening comment of a header (after the SPDX line)."""
    text = open(path, encoding="utf-8").read()
    m = re.search(r"/\*\n(.*?)\*/", text, re.S)
    return strip_comment(m.group(0).split("\n")) if m else ""


def roff(text):
    out = []
    for line in text.split("\n"):
        line = line.replace("\\", "\\e")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line if line else ".PP")
    return "\n".join(out)


def summary(text):
    """The comment's first sentence, on one line, for the NAME section."""
    one = " ".join(text.split())
    m = re.match(r"(.+?[.:;])(\s|$)", one)
    one = m.group(1).rstrip(".:;") if m else one
    return one if len(one) <= 72 else one[:69].rsplit(" ", 1)[0] + " ..."


def write_page(out, name, header, decl, text, version):
    with open(os.path.join(out, name + ".3"), "w", encoding="utf-8") as f:
        f.write(f'.TH {name.upper()} 3 "" "libpunch {version}" "libpunch"\n')
        f.write(f".SH NAME\n{name} \\- {roff(summary(text))}\n")
        f.write(f".SH SYNOPSIS\n.nf\n#include <punch/{header}>\n.PP\n{roff(decl)}\n.fi\n")
        f.write(f".PP\nLink with \\fI-lpunch\\fP (pkg-config: punch).\n")
        f.write(f".SH DESCRIPTION\n.nf\n{roff(text)}\n.fi\n")
        f.write(".SH SEE ALSO\n.BR libpunch (3)\n")


def write_index(out, headers, funcs, version):
    with open(os.path.join(out, "libpunch.3"), "w", encoding="utf-8") as f:
        f.write(f'.TH LIBPUNCH 3 "" "libpunch {version}" "libpunch"\n')
        f.write(".SH NAME\nlibpunch \\- peer-to-peer connectivity across NATs\n")
        for h in headers:
            base = os.path.basename(h)
            f.write(f".SH <punch/{base}>\n.nf\n{roff(header_doc(h))}\n.fi\n.PP\n")
            for name in funcs[base]:
                f.write(f".BR {name} (3)\n")
        f.write(".SH SEE ALSO\ndocs/tutorial.md in the source tree, "
                ".BR punch (1)\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--version", default="")
    ap.add_argument("headers", nargs="+")
    a = ap.parse_args()
    missing, funcs, n = [], {}, 0
    for h in a.headers:
        base = os.path.basename(h)
        funcs[base] = []
        for name, decl, text in declarations(h):
            n += 1
            funcs[base].append(name)
            if text is None:
                missing.append(f"{base}: {name}")
            elif a.out:
                write_page(a.out, name, base, decl, text, a.version)
    if a.out:
        write_index(a.out, a.headers, funcs, a.version)
    if missing:
        print(f"api_man: {len(missing)} of {n} public functions have no comment "
              "right above their declaration (or one naming them):", file=sys.stderr)
        for m in missing:
            print("  " + m, file=sys.stderr)
        return 1
    if a.check:
        print(f"api_man: all {n} public functions of {len(a.headers)} headers documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
