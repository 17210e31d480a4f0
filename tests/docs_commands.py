#!/usr/bin/env python3
"""Runs the shell commands of README.md and docs/*.md, as written, on a fresh checkout.

Usage (from the project root): tests/docs_commands.py BUILD/hcsim [--list]

1. A fresh checkout: every file git lists (tracked, plus untracked files git does not ignore, with
   their working-tree content, so the test runs before a commit) is copied to a temporary folder,
   and the given hcsim binary is placed at TMP/build/hcsim, where the docs call it. The checkout
   sits in TMP/.. beside a `shared` link to the real checkout's ../shared, when that exists, so
   the public traces are found where the docs say (../shared/traces-public).
2. Commands are taken from the ```sh, ```bash, ```shell and ```console blocks of README.md, then
   docs/*.md in name order. In a block with lines starting with `$ `, those lines are the commands
   and the lines after them their output; in any other block every line that is not blank and
   not a comment is a command. A line ending in a backslash continues on the next.
3. Each command runs with `bash -e -o pipefail -c COMMAND` in the checkout's root, in order (a
   file's commands may use what an earlier one wrote), under a per-command timeout.

The exit status a command must end with is 0, unless its trailing comment says otherwise with the
words `exit N` (a comment after `#`, anywhere in it: `./build/hcsim run /tmp/bad.json  # exit 2`).

Skipped, each with its reason printed: what CI has not got (a GPU node, Slurm, the public traces,
an upstream SGLang clone), the build and setup commands (the test is given the build), this test
itself, and the few commands over the time budget, named in SLOW below.

After the last command, the checkout's root may hold nothing new but build/ and results/: any
other new file or folder fails the test, named.

One line per command (ran, skipped or FAILED, seconds, file:line), then a total. Exit 0 when every
command that ran ended as the docs say and the root is clean, 1 otherwise, 2 on a bad invocation,
77 (skipped, for meson) outside a git checkout.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

PER_COMMAND_TIMEOUT_S = 240
LANGUAGES = {"sh", "bash", "shell", "console", "shell-session"}
ALLOWED_NEW_IN_ROOT = {"build", "results"}

# Commands over the time budget of a CI test (~5 minutes on 2 cores, for all of them together):
# a regular expression on the command, and why.
SLOW = [
    (r"^tools/policy-study\.sh", "regenerates the whole policy study (~3 min on 2 cores) and rebuilds with ninja"),
    (r"^tools/fuzz\.sh", "runs libFuzzer for minutes, in its own clang build (tools/bootstrap.sh --fuzz)"),
    (r"^tools/sanitize\.sh", "builds and tests two sanitizer trees; CI (.ci/run) runs it itself"),
]


def skip_reason(cmd, shared_dir):
    """Why a command is not run here, or None to run it."""
    first = cmd.lstrip()
    if "docs_commands.py" in cmd and "--list" not in cmd:
        return "this test itself"
    if "gpu-pack/" in cmd or "multi-gpu" in cmd:
        return "needs a GPU node (gpu-pack/)"
    if re.search(r"\bhcsim\s+(--limit\s+\S+\s+)*(gpu|validate)\b", cmd) and "--device host" not in cmd:
        return "needs a GPU (no --device host)"
    if re.search(r"(^|&&\s*)(tools/bootstrap\.sh|meson setup|ninja\b|meson test|tools/gpu-node\.sh)", first):
        return "build or setup: the test is given the build"
    if re.search(r"\bsbatch\b|tools/slurm-sweep\.sh", cmd) and shutil.which("sbatch") is None:
        return "needs Slurm (no sbatch here)"
    if re.match(r"git\s+(show|grep|log|diff)\b", first):
        return "runs in a clone of upstream SGLang"
    if ("HCSIM_TRACES" in cmd or "../shared" in cmd) and not os.path.isdir(os.path.join(shared_dir, "traces-public")):
        return "needs the public traces (../shared/traces-public is absent)"
    if re.match(r"parallel\b", first) and shutil.which("parallel") is None:
        return "needs GNU parallel (tools/bootstrap.sh installs it)"
    for pattern, why in SLOW:
        if re.search(pattern, first):
            return "over the time budget: " + why
    return None


def expected_exit(cmd):
    """0, or N when the command's trailing comment says `exit N`."""
    m = re.search(r"(?:^|\s)#(?!!)(.*)$", cmd)
    if m:
        e = re.search(r"\bexit (\d+)\b", m.group(1))
        if e:
            return int(e.group(1))
    return 0


def join_continued(lines):
    """Joins lines ending in a backslash with the next; yields (first line index, text)."""
    out, buf, start = [], None, 0
    for i, line in lines:
        if buf is None:
            buf, start = line, i
        else:
            buf = buf[:-1] + " " + line.lstrip()
        if not buf.rstrip().endswith("\\"):
            out.append((start, buf.rstrip()))
            buf = None
    if buf is not None:
        out.append((start, buf.rstrip()))
    return out


def extract(path):
    """The commands of one Markdown file: a list of (line number, command)."""
    with open(path, encoding="utf-8") as f:
        text = f.read().split("\n")
    commands, i = [], 0
    while i < len(text):
        fence = re.match(r"^\s*```+\s*([\w-]*)", text[i])
        if not fence:
            i += 1
            continue
        lang, body, i = fence.group(1).lower(), [], i + 1
        while i < len(text) and not re.match(r"^\s*```", text[i]):
            body.append((i + 1, text[i]))
            i += 1
        i += 1  # past the closing fence
        if lang not in LANGUAGES:
            continue
        if any(line.startswith("$ ") for _, line in body):
            picked, continuing = [], False
            for n, line in body:
                if line.startswith("$ ") or continuing:
                    picked.append((n, line[2:] if line.startswith("$ ") and not continuing else line))
                    continuing = line.rstrip().endswith("\\")
            body = picked
        else:
            body = [(n, line) for n, line in body if line.strip() and not line.lstrip().startswith("#")]
        commands.extend(join_continued(body))
    return commands


def listed_files(root):
    """The checkout's files as git lists them, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sorted({p for p in out.split("\0") if p})


def make_checkout(root, files, hcsim, work):
    checkout = os.path.join(work, "checkout")
    for rel in files:
        src, dst = os.path.join(root, rel), os.path.join(checkout, rel)
        if not os.path.lexists(src):
            continue  # deleted in the working tree, not yet in git
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    os.makedirs(os.path.join(checkout, "build"), exist_ok=True)
    shutil.copy2(hcsim, os.path.join(checkout, "build", "hcsim"))
    real_shared = os.path.join(os.path.dirname(root), "shared")
    if os.path.isdir(real_shared):
        os.symlink(real_shared, os.path.join(work, "shared"))
    return checkout


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    hcsim = os.path.abspath(argv[1])
    listing = "--list" in argv[2:]
    root = os.path.abspath(os.getcwd())
    if not os.access(hcsim, os.X_OK):
        print(f"docs_commands: {hcsim}: not an executable", file=sys.stderr)
        return 2
    docs = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(root, "docs")) if f.endswith(".md"))
    plan = [(doc, n, cmd) for doc in docs for n, cmd in extract(os.path.join(root, doc))]
    if listing:
        for doc, n, cmd in plan:
            print(f"{doc}:{n}: {cmd}")
        return 0

    files = listed_files(root)
    if files is None:
        print("docs_commands: not a git checkout (or no git): nothing to copy a fresh checkout from; skipped")
        return 77  # meson's code for a skipped test
    work = tempfile.mkdtemp(prefix="hcsim-docs.")
    failures, ran, skipped, t_all = [], 0, 0, time.monotonic()
    try:
        checkout = make_checkout(root, files, hcsim, work)
        before = set(os.listdir(checkout))
        env = {k: v for k, v in os.environ.items() if k != "HCSIM_TRACES"}
        shared = os.path.join(work, "shared")
        for doc, n, cmd in plan:
            where = f"{doc}:{n}"
            why = skip_reason(cmd, shared)
            if why:
                skipped += 1
                print(f"skipped          {where}: {cmd}\n                   ({why})", flush=True)
                continue
            want = expected_exit(cmd)
            t0 = time.monotonic()
            try:
                p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", cmd], cwd=checkout, env=env, stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=PER_COMMAND_TIMEOUT_S)
                rc, out = p.returncode, (p.stdout + p.stderr).decode(errors="replace")
            except subprocess.TimeoutExpired as e:
                rc, out = None, ((e.stdout or b"") + (e.stderr or b"")).decode(errors="replace")
            dt = time.monotonic() - t0
            ran += 1
            if rc == want:
                print(f"ran     {dt:7.2f} s  {where}: {cmd}", flush=True)
                continue
            got = f"timed out after {PER_COMMAND_TIMEOUT_S} s" if rc is None else f"exit {rc}"
            hint = ""
            if "hcsim: command not found" in out:
                hint = " (call ./build/hcsim, as the docs do)"
            failures.append(f"{where}: {cmd}: {got}, expected exit {want}{hint}")
            print(f"FAILED  {dt:7.2f} s  {where}: {cmd}\n        {got}, expected exit {want}{hint}; its output ends:", flush=True)
            for line in out.strip().split("\n")[-15:]:
                print("          | " + line)
        new = sorted(set(os.listdir(checkout)) - before - ALLOWED_NEW_IN_ROOT)
        if new:
            failures.append("new in the checkout's root (write under results/ or /tmp): " + ", ".join(new))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t_all
    print(f"docs_commands: {ran} ran, {skipped} skipped, {len(failures)} failure(s), {total:.1f} s in all")
    for f in failures:
        print("  FAILED " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
