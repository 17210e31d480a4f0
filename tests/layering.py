#!/usr/bin/env python3
"""The shape of the code, checked (docs/architecture.md, "Layers"):

  - each folder includes only the folders below it:
        policy/   nothing of the project
        run/      policy/
        sim/      policy/, run/
        backend/  policy/, run/            (sim/ and backend/ stand side by side)
        tools/    everything; fuzz/ and tests/ likewise
  - no include cycle between files (a.h/a.cpp count as one unit, "a");
  - no function longer than 100 lines (signature to closing brace), in any tracked C++ or CUDA file;
  - tools/hcsim.cpp, the command table and main, stays under 300 lines.

Usage (from the project root): tests/layering.py
Prints each breach as FILE:LINE: what, then one line `layering: N breaches`; exits 1 if N > 0.
The function finder is lexical: it blanks comments, strings and character literals, then takes a
block opened right after `)` (and optional qualifiers) outside any function as a function body.
"""
import os
import re
import subprocess
import sys

ALLOWED = {
    "policy": set(),
    "run": {"policy"},
    "sim": {"policy", "run"},
    "backend": {"policy", "run"},
}
FUNCTION_LINES_MAX = 100
COMMAND_TABLE = "tools/hcsim.cpp"
COMMAND_TABLE_LINES_MAX = 300
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE = re.compile(r"\.(h|cpp|cu)$")


def tracked_sources():
    out = subprocess.run(["git", "ls-files", "*.h", "*.cpp", "*.cu"], capture_output=True, text=True, check=True).stdout
    return [p for p in out.split() if os.path.isfile(p)]


def blank(text):
    """Comments, strings (raw strings too) and character literals become spaces; newlines stay."""
    out, i, n = [], 0, len(text)
    spaces = lambda s: re.sub(r"[^\n]", " ", s)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            j = text.find(")" + m.group(1) + '"', i) + len(m.group(1)) + 2 if m else i + 2
        elif text[i] == '"' or (text[i] == "'" and not (i > 0 and text[i - 1].isalnum())):
            j = i + 1
            while j < n and text[j] != text[i]:
                j += 2 if text[j] == "\\" else 1
            j += 1
        else:
            out.append(text[i])
            i += 1
            continue
        out.append(spaces(text[i:j]))
        i = j
    return "".join(out)


FUNCTION_HEAD = re.compile(r"\)\s*(const|override|noexcept|final|mutable|->[^{;]*|\s)*$")
CONTROL = re.compile(r"^(if|for|while|switch|catch)\b")


def long_functions(path):
    """(first line, length, head) of each function body over the bound."""
    text = blank(open(path, encoding="utf-8", errors="replace").read())
    stack, found, last, line = [], [], 0, 1
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        elif c == "{":
            head = text[last:i].strip()
            if any(isinstance(s, tuple) for s in stack):
                stack.append("block")
            elif FUNCTION_HEAD.search(head) and not CONTROL.match(head.split("\n")[-1].strip()):
                k = last
                while k < i and text[k] in " \t\n":
                    k += 1
                stack.append((text.count("\n", 0, k) + 1, re.sub(r"\s+", " ", head)[:90]))
            else:
                stack.append("scope")
            last = i + 1
        elif c == "}":
            top = stack.pop() if stack else None
            if isinstance(top, tuple) and line - top[0] + 1 > FUNCTION_LINES_MAX:
                found.append((top[0], line - top[0] + 1, top[1]))
            last = i + 1
        elif c == ";":
            last = i + 1
    return found


def unit(path):
    return SOURCE.sub("", path)


def cycles(graph):
    """Strongly connected components of more than one unit (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def main():
    if not os.path.isdir("policy") or not os.path.isdir("run"):
        print("layering: run from the project root (no policy/ or run/ here)", file=sys.stderr)
        return 2
    breaches = []
    graph = {}
    for path in tracked_sources():
        text = open(path, encoding="utf-8", errors="replace").read()
        folder = path.split("/")[0]
        for match in INCLUDE.finditer(text):
            included = match.group(1)
            line = text.count("\n", 0, match.start()) + 1
            target = included.split("/")[0]
            if folder in ALLOWED and target in ALLOWED and target != folder and target not in ALLOWED[folder]:
                breaches.append(f"{path}:{line}: {folder}/ includes {included}; {folder}/ may include "
                                f"{', '.join(sorted(ALLOWED[folder])) or 'nothing of the project'}")
            if unit(included) != unit(path):
                graph.setdefault(unit(path), set()).add(unit(included))
        for first, length, head in long_functions(path):
            breaches.append(f"{path}:{first}: a function of {length} lines (at most {FUNCTION_LINES_MAX}): {head}")
    for component in cycles(graph):
        breaches.append(f"{component[0]}: an include cycle: {' -> '.join(component)}")
    lines = sum(1 for _ in open(COMMAND_TABLE, encoding="utf-8"))
    if lines >= COMMAND_TABLE_LINES_MAX:
        breaches.append(f"{COMMAND_TABLE}:1: {lines} lines; the command table and main stay under {COMMAND_TABLE_LINES_MAX}")
    for b in breaches:
        print(b)
    print(f"layering: {len(breaches)} breaches")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
