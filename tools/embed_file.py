#!/usr/bin/env python3
"""Writes a C++ source defining `const char* NAME` with the bytes of a file, for `hcsim demo`."""
import sys

src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(src, encoding="utf-8").read()
delim = "hcsim_embedded"
assert ")" + delim + '"' not in text
with open(out, "w", encoding="utf-8") as f:
    f.write("// Generated from %s by tools/embed_file.py; do not edit.\n" % src)
    f.write("namespace hcsim {\nextern const char* const %s;\n" % name)
    f.write('const char* const %s = R"%s(%s)%s";\n}  // namespace hcsim\n' % (name, delim, text, delim))
