#!/usr/bin/env python3
"""Statically extract every command-line option string from llama.cpp's common/arg.cpp.

Standard library only. Reads the C++ source as text (no compilation) and finds every
``common_arg(`` call inside ``common_params_parser_init``: its first brace-initializer list
(``{"-c", "--ctx-size"}``) and, for boolean options, the second list of negated forms
(``{"--no-mmap"}``). The method chain after the call (``.set_examples({...})``,
``.set_excludes({...})``, ``.set_env("...")``) is parsed too, as are the enclosing
``if (ex == LLAMA_EXAMPLE_X) { ... } else { ... }`` blocks, so the script can tell which
options ``llama-server`` accepts, using the same rule as ``add_opt`` in arg.cpp:

    (arg.in_example(ex) || arg.in_example(LLAMA_EXAMPLE_COMMON)) && !arg.is_exclude(ex)

(``common_arg::examples`` defaults to ``{LLAMA_EXAMPLE_COMMON}``.)

Outputs (into --out-dir, default: the folder of this script):
  llamacpp_flags.txt       every option string, one a line (first line: "# llama.cpp <build> <commit>")
  llama_server_flags.txt   only the option strings llama-server accepts (same header)
  llamacpp_flags.tsv       one row per option: flags, negated flags, examples, excludes, env,
                           server (yes/no), removed (handler calls arg_removed), deprecated

Usage:
  extract_llamacpp_flags.py --src /path/to/llama.cpp [--git-dir DIR] [--build b1234] [--commit SHA]
  extract_llamacpp_flags.py --arg-cpp common/arg.cpp --build b10470 --commit 34af94c...

If --build/--commit are not given and git is available, they are derived from the
source tree (``git rev-list --count HEAD`` is how llama.cpp numbers its b<N> builds).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

REQUIRED = [
    "-ngl", "--n-gpu-layers", "-c", "--ctx-size", "-np", "--parallel", "-fa", "--flash-attn",
    "-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "-ub", "--ubatch-size", "-b",
    "--batch-size", "-ot", "--override-tensor", "--n-cpu-moe", "-ts", "--tensor-split",
    "-sm", "--split-mode", "-m", "--model", "-hf", "--jinja",
]


# --------------------------------------------------------------------------- lexing helpers

def strip_comments(src: str) -> str:
    """Blank out // and /* */ comments, keeping string/char literals and line numbers intact."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        nxt = src[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and nxt == "*":
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join("\n" if ch == "\n" else " " for ch in src[i:j]))
            i = j
        elif c == "R" and nxt == '"':
            # raw string literal R"delim( ... )delim"
            m = re.match(r'R"([^(\s]*)\(', src[i:])
            if m:
                end = src.find(")" + m.group(1) + '"', i + m.end())
                end = n if end < 0 else end + len(m.group(1)) + 2
                out.append(src[i:end])
                i = end
            else:
                out.append(c)
                i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def skip_literal(src: str, i: int) -> int:
    """src[i] is a quote; return the index just past the literal."""
    q = src[i]
    j = i + 1
    while j < len(src) and src[j] != q:
        j += 2 if src[j] == "\\" else 1
    return j + 1


def match_close(src: str, i: int) -> int:
    """src[i] is an opening bracket; return index of its matching closing bracket."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    stack = [pairs[src[i]]]
    j = i + 1
    while j < len(src):
        c = src[j]
        if c in "\"'":
            j = skip_literal(src, j)
            continue
        if c == "R" and j + 1 < len(src) and src[j + 1] == '"':
            m = re.match(r'R"([^(\s]*)\(', src[j:])
            if m:
                end = src.find(")" + m.group(1) + '"', j + m.end())
                j = end + len(m.group(1)) + 2
                continue
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")}]":
            if not stack or c != stack[-1]:
                raise ValueError(f"unbalanced bracket at offset {j}")
            stack.pop()
            if not stack:
                return j
        j += 1
    raise ValueError("no matching bracket")


STR_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse_string_list(body: str) -> list[str] | None:
    """Parse the inside of `{ "a", "b" }`; None if it is not a plain list of string literals."""
    items = [p.strip() for p in body.split(",") if p.strip()]
    out = []
    for it in items:
        m = STR_RE.fullmatch(it)
        if not m:
            return None
        out.append(m.group(1))
    return out


def parse_enum_list(body: str) -> list[str]:
    return [p.strip() for p in body.split(",") if p.strip()]


# --------------------------------------------------------------------------- model

@dataclass
class Opt:
    line: int
    args: list[str]
    args_neg: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=lambda: ["LLAMA_EXAMPLE_COMMON"])
    excludes: list[str] = field(default_factory=list)
    env: str = ""
    cond: str = ""          # e.g. "ex == LLAMA_EXAMPLE_SERVER" or "!(ex == LLAMA_EXAMPLE_SERVER)"
    removed: bool = False
    deprecated: bool = False

    def all_flags(self) -> list[str]:
        return [a for a in self.args + self.args_neg if a.startswith("-")]

    def in_example(self, ex: str) -> bool:
        return ex in self.examples

    def usable_by(self, ex: str) -> bool:
        # condition of the enclosing `if (ex == ...)` block, if any
        m = re.fullmatch(r"(!?)\(?ex == (LLAMA_EXAMPLE_\w+)\)?", self.cond)
        if m:
            neg, want = m.group(1) == "!", m.group(2)
            if (ex == want) == neg:
                return False
        inherit_common = ex != "LLAMA_EXAMPLE_DOWNLOAD"
        ok = self.in_example(ex) or (inherit_common and self.in_example("LLAMA_EXAMPLE_COMMON"))
        return ok and ex not in self.excludes


# --------------------------------------------------------------------------- extraction

def find_function_body(src: str, name: str) -> tuple[int, int]:
    m = re.search(r"\b" + re.escape(name) + r"\s*\([^;{]*\)\s*\{", src)
    if not m:
        raise SystemExit(f"function {name} not found")
    start = m.end() - 1
    return start, match_close(src, start)


def condition_blocks(src: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    """Blocks `if (ex == LLAMA_EXAMPLE_X) {...}` and their `else {...}` within [lo, hi)."""
    blocks = []
    for m in re.finditer(r"\bif\s*\(\s*(ex\s*==\s*LLAMA_EXAMPLE_\w+)\s*\)\s*\{", src[lo:hi]):
        cond = re.sub(r"\s+", " ", m.group(1))
        b0 = lo + m.end() - 1
        b1 = match_close(src, b0)
        blocks.append((b0, b1, cond))
        rest = src[b1 + 1:hi]
        me = re.match(r"\s*else\s*\{", rest)
        if me:
            e0 = b1 + 1 + me.end() - 1
            e1 = match_close(src, e0)
            blocks.append((e0, e1, "!(" + cond + ")"))
    return blocks


def named_example_lists(src: str) -> dict[str, list[str]]:
    """Variables such as `static std::initializer_list<enum llama_example> mmproj_examples = {...};`."""
    out = {}
    for m in re.finditer(r"llama_example\s*>\s*(\w+)\s*=\s*\{", src):
        b0 = m.end() - 1
        out[m.group(1)] = parse_enum_list(src[b0 + 1:match_close(src, b0)])
    return out


def extract(src_raw: str) -> list[Opt]:
    src = strip_comments(src_raw)
    named = named_example_lists(src)
    lo, hi = find_function_body(src, "common_params_parser_init")
    blocks = condition_blocks(src, lo, hi)

    opts: list[Opt] = []
    for m in re.finditer(r"\bcommon_arg\s*\(", src[lo:hi]):
        p0 = lo + m.end() - 1
        p1 = match_close(src, p0)
        inner = src[p0 + 1:p1]
        lists = []
        k = 0
        # leading brace lists of string literals: {args} and optionally {args_neg}
        while True:
            while k < len(inner) and inner[k].isspace():
                k += 1
            if k >= len(inner) or inner[k] != "{":
                break
            e = match_close(inner, k)
            lst = parse_string_list(inner[k + 1:e])
            if lst is None:
                break
            lists.append(lst)
            k = e + 1
            while k < len(inner) and inner[k].isspace():
                k += 1
            if k < len(inner) and inner[k] == ",":
                k += 1
            if len(lists) == 2:
                break
        if not lists:
            continue
        line = src.count("\n", 0, p0) + 1
        opt = Opt(line=line, args=lists[0], args_neg=lists[1] if len(lists) > 1 else [])
        opt.removed = "arg_removed(" in inner
        opt.deprecated = "DEPRECATED" in inner

        # method chain after the call
        j = p1 + 1
        while True:
            mm = re.match(r"\s*\.\s*(set_\w+)\s*\(", src[j:])
            if not mm:
                break
            c0 = j + mm.end() - 1
            c1 = match_close(src, c0)
            arg = src[c0 + 1:c1].strip()
            meth = mm.group(1)
            if meth in ("set_examples", "set_excludes"):
                body = arg.strip()
                if body.startswith("{") and body.endswith("}"):
                    vals = parse_enum_list(body[1:-1])
                elif body in named:
                    vals = named[body]
                else:
                    print(f"warning: line {src.count(chr(10), 0, c0) + 1}: unresolved {meth}({body})", file=sys.stderr)
                    vals = [body]
                if meth == "set_examples":
                    opt.examples = vals
                else:
                    opt.excludes = vals
            elif meth == "set_env":
                sm = STR_RE.search(arg)
                opt.env = sm.group(1) if sm else arg
            j = c1 + 1

        conds = [c for (b0, b1, c) in blocks if b0 < p0 < b1]
        opt.cond = conds[-1] if conds else ""
        if opt.all_flags():
            opts.append(opt)
    return opts


# --------------------------------------------------------------------------- version info

def git_info(git_dir: str | None, src_root: str | None) -> tuple[str, str]:
    cmd = ["git"]
    if git_dir:
        cmd += ["--git-dir", git_dir]
    elif src_root:
        cmd += ["-C", src_root]
    else:
        return "", ""
    try:
        commit = subprocess.run(cmd + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        count = subprocess.run(cmd + ["rev-list", "--count", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        return "b" + count, commit
    except (OSError, subprocess.CalledProcessError):
        return "", ""


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", help="llama.cpp source root (uses <src>/common/arg.cpp)")
    ap.add_argument("--arg-cpp", help="path to common/arg.cpp (overrides --src)")
    ap.add_argument("--git-dir", help="git dir to read build number/commit from")
    ap.add_argument("--build", help="build label, e.g. b10470")
    ap.add_argument("--commit", help="commit sha")
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args(argv)

    path = a.arg_cpp or (os.path.join(a.src, "common", "arg.cpp") if a.src else None)
    if not path or not os.path.isfile(path):
        ap.error("give --src or --arg-cpp pointing at llama.cpp's common/arg.cpp")
    with open(path, encoding="utf-8") as f:
        text = f.read()

    build, commit = a.build or "", a.commit or ""
    if not (build and commit):
        gb, gc = git_info(a.git_dir, a.src)
        build, commit = build or gb or "unknown", commit or gc or "unknown"
    header = f"# llama.cpp {build} {commit}"

    opts = extract(text)

    all_flags: list[str] = []
    server_flags: list[str] = []
    for o in opts:
        for fl in o.all_flags():
            if fl not in all_flags:
                all_flags.append(fl)
            if o.usable_by("LLAMA_EXAMPLE_SERVER") and not o.removed and fl not in server_flags:
                server_flags.append(fl)

    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "llamacpp_flags.txt"), "w", encoding="utf-8") as f:
        f.write(header + "\n")
        f.writelines(fl + "\n" for fl in all_flags)
    with open(os.path.join(a.out_dir, "llama_server_flags.txt"), "w", encoding="utf-8") as f:
        f.write(header + " (options accepted by llama-server: LLAMA_EXAMPLE_COMMON + LLAMA_EXAMPLE_SERVER, minus excludes and removed)\n")
        f.writelines(fl + "\n" for fl in server_flags)
    with open(os.path.join(a.out_dir, "llamacpp_flags.tsv"), "w", encoding="utf-8") as f:
        f.write(header + "\n")
        f.write("line\tflags\tnegated\texamples\texcludes\tcondition\tenv\tserver\tremoved\tdeprecated\n")
        for o in opts:
            f.write("\t".join([
                str(o.line), ",".join(o.args), ",".join(o.args_neg),
                ",".join(e.replace("LLAMA_EXAMPLE_", "") for e in o.examples),
                ",".join(e.replace("LLAMA_EXAMPLE_", "") for e in o.excludes),
                o.cond.replace("LLAMA_EXAMPLE_", ""), o.env,
                "yes" if o.usable_by("LLAMA_EXAMPLE_SERVER") else "no",
                "yes" if o.removed else "no", "yes" if o.deprecated else "no",
            ]) + "\n")

    missing_all = [r for r in REQUIRED if r not in all_flags]
    missing_srv = [r for r in REQUIRED if r not in server_flags]
    print(f"{header}: {len(opts)} options, {len(all_flags)} option strings, "
          f"{len(server_flags)} usable by llama-server")
    if missing_all or missing_srv:
        print(f"MISSING from all: {missing_all}; MISSING from server: {missing_srv}", file=sys.stderr)
        return 1
    print("validation OK: all required flags present in both lists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
