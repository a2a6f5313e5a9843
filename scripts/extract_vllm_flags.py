#!/usr/bin/env python3
"""Statically extract the option strings accepted by `vllm serve`.

Standard library only; vLLM is never imported.  The script reads the vLLM
source (a checked-out / unpacked source tree, or a bare git directory plus a
commit) and parses it with `ast`:

* `make_arg_parser` (the function `vllm/entrypoints/cli/serve.py` imports:
  `vllm/entrypoints/common/cli_args.py` in 0.3x, `vllm/entrypoints/openai/
  cli_args.py` in older releases): literal `parser.add_argument(...)` calls,
  and calls `SomeClass.add_cli_args(parser)`.
* `EngineArgs.add_cli_args` / `AsyncEngineArgs.add_cli_args`
  (`vllm/engine/arg_utils.py`): every `group.add_argument("--flag", "-f",
  **xxx_kwargs["field"])` call.  `xxx_kwargs = get_kwargs(SomeConfig)`, and
  `get_kwargs` (`_compute_kwargs`) gives a field
  `action=argparse.BooleanOptionalAction` when its type hint contains `bool`
  (unless it is a dataclass type, or exactly `bool | str | None`).  The
  field's annotation is therefore resolved in the config class (and its
  bases, and through type aliases) to decide whether `--no-<flag>` exists.
* `FrontendArgs.add_cli_args` (inherited from `BaseFrontendArgs` in 0.3x):
  a loop over `get_kwargs(cls)` that adds `f"--{key.replace('_', '-')}"` for
  every dataclass field of the frontend class (and its bases).
* `FlexibleArgumentParser` (`vllm/utils/argparse_utils.py`): when it
  re-registers `BooleanOptionalAction` as `EnableDisableAction`, every
  `--enable-x` boolean also accepts `--disable-x` (and vice versa); the
  `--no-` forms stay accepted (hidden from --help).  Its `parse_args` also
  rewrites `-O<n>` / `-O <n>` to `--optimization-level`, so `-O` is reported.

Usage:
    extract_vllm_flags.py --src /path/to/vllm-source [-o flags.txt] [--json meta.json]
    extract_vllm_flags.py --git-dir /path/to/repo.git [--commit HEAD] [-o ...]

The first output line is `# vllm <version> <commit>`, then one flag per line
(sorted).  `--json` writes per-flag metadata (value/no value, source line,
hidden or not).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

# --------------------------------------------------------------------------
# Source access
# --------------------------------------------------------------------------


class Source:
    """Read files of a vLLM source tree (directory or git commit)."""

    def __init__(self, src: str | None = None, git_dir: str | None = None,
                 commit: str = "HEAD"):
        self.src = src
        self.git_dir = git_dir
        self.commit = commit
        self._cache: dict[str, str | None] = {}
        self._proc = None
        self._listing: list[str] | None = None
        if git_dir is not None:
            self.commit = self._git("rev-parse", commit).strip()

    # -- git helpers -------------------------------------------------------
    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", self.git_dir, *args],
            check=True, capture_output=True, text=True,
        ).stdout

    def _cat(self, path: str) -> str | None:
        if self._proc is None:
            self._proc = subprocess.Popen(
                ["git", "--git-dir", self.git_dir, "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(f"{self.commit}:{path}\n".encode())
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().decode().split()
        if len(header) < 3 or header[1] == "missing":
            return None
        size = int(header[2])
        data = self._proc.stdout.read(size)
        self._proc.stdout.read(1)  # trailing newline
        if header[1] != "blob":
            return None
        return data.decode("utf-8", errors="replace")

    # -- public ------------------------------------------------------------
    def read(self, path: str) -> str | None:
        if path not in self._cache:
            if self.git_dir is not None:
                self._cache[path] = self._cat(path)
            else:
                full = os.path.join(self.src, path)
                try:
                    with open(full, encoding="utf-8") as f:
                        self._cache[path] = f.read()
                except OSError:
                    self._cache[path] = None
        return self._cache[path]

    def exists(self, path: str) -> bool:
        return self.read(path) is not None

    def list_py(self, prefix: str) -> list[str]:
        if self._listing is None:
            if self.git_dir is not None:
                out = self._git("ls-tree", "-r", "--name-only", self.commit, "vllm")
                self._listing = [p for p in out.splitlines() if p.endswith(".py")]
            else:
                listing = []
                base = os.path.join(self.src, "vllm")
                for root, _dirs, files in os.walk(base):
                    for fn in files:
                        if fn.endswith(".py"):
                            rel = os.path.relpath(os.path.join(root, fn), self.src)
                            listing.append(rel.replace(os.sep, "/"))
                self._listing = sorted(listing)
        return [p for p in self._listing if p.startswith(prefix)]

    def version_and_commit(self) -> tuple[str, str]:
        version, commit = "unknown", "unknown"
        text = self.read("vllm/_version.py")
        if text:
            m = re.search(r"__version__\s*=\s*version\s*=\s*['\"]([^'\"]+)", text) or \
                re.search(r"version\s*=\s*['\"]([^'\"]+)", text)
            if m:
                version = m.group(1)
            m = re.search(r"commit_id\s*=\s*['\"]([^'\"]+)", text)
            if m:
                commit = m.group(1)
        if self.git_dir is not None:
            commit = self.commit
            if version == "unknown":
                with contextlib.suppress(subprocess.CalledProcessError):
                    version = self._git("describe", "--tags", self.commit).strip()
        if version == "unknown" and self.src:
            pkg = self.read("PKG-INFO")
            if pkg:
                m = re.search(r"^Version:\s*(\S+)", pkg, re.M)
                if m:
                    version = m.group(1)
        if commit == "unknown" and self.src and os.path.isdir(os.path.join(self.src, ".git")):
            with contextlib.suppress(subprocess.CalledProcessError, OSError):
                commit = subprocess.run(
                    ["git", "-C", self.src, "rev-parse", "HEAD"],
                    check=True, capture_output=True, text=True).stdout.strip()
        return version, commit


# --------------------------------------------------------------------------
# Module / class / alias resolution
# --------------------------------------------------------------------------


@dataclass
class ClassInfo:
    name: str
    module: str          # file path
    node: ast.ClassDef
    is_dataclass: bool


class Index:
    def __init__(self, source: Source):
        self.source = source
        self._trees: dict[str, ast.Module | None] = {}

    def tree(self, path: str) -> ast.Module | None:
        if path not in self._trees:
            text = self.source.read(path)
            try:
                self._trees[path] = ast.parse(text) if text is not None else None
            except SyntaxError:
                self._trees[path] = None
        return self._trees[path]

    def module_to_path(self, module: str) -> str | None:
        base = module.replace(".", "/")
        for cand in (base + ".py", base + "/__init__.py"):
            if self.source.exists(cand):
                return cand
        return None

    @staticmethod
    def _pkg_of(path: str) -> str:
        parts = path[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        else:
            parts = parts[:-1]
        return ".".join(parts)

    def _abs_module(self, path: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        pkg = self._pkg_of(path).split(".")
        if node.level > 1:
            pkg = pkg[: len(pkg) - (node.level - 1)]
        return ".".join(pkg + ([node.module] if node.module else []))

    # `lookup` is defined below as `_lookup` and attached to the class.


def _lookup(self: Index, path: str, name: str, depth: int = 0):
    """Find the definition of `name` as seen from module `path`.

    Returns ("class", ClassInfo) | ("alias", (path, expr)) | None.
    """
    if depth > 12:
        return None
    tree = self.tree(path)
    if tree is None:
        return None
    stmts: list[ast.stmt] = []

    def collect(body):
        for st in body:
            stmts.append(st)
            if isinstance(st, ast.If):
                collect(st.body)
                collect(st.orelse)
            elif isinstance(st, ast.Try):
                collect(st.body)
                collect(st.orelse)
                for h in st.handlers:
                    collect(h.body)
                collect(st.finalbody)

    collect(tree.body)
    # 1. definitions in this module
    for st in stmts:
        if isinstance(st, ast.ClassDef) and st.name == name:
            return ("class", ClassInfo(name, path, st, _is_dataclass(st)))
        if isinstance(st, ast.Assign):
            for tgt in st.targets:
                if isinstance(tgt, ast.Name) and tgt.id == name:
                    return ("alias", (path, st.value))
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) \
                and st.target.id == name and st.value is not None:
            return ("alias", (path, st.value))
        if sys.version_info >= (3, 12) and isinstance(st, getattr(ast, "TypeAlias", ())) \
                and getattr(st.name, "id", None) == name:
            return ("alias", (path, st.value))
    # 2. follow imports
    for st in stmts:
        if isinstance(st, ast.ImportFrom):
            for alias in st.names:
                if (alias.asname or alias.name) != name:
                    continue
                mod = self._abs_module(path, st)
                target = self.module_to_path(mod)
                if target is not None:
                    res = _lookup(self, target, alias.name, depth + 1)
                    if res is not None:
                        return res
                # `from pkg import submodule`
                return None
    return None


Index.lookup = _lookup  # type: ignore[assignment]


def _is_dataclass(node: ast.ClassDef) -> bool:
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("dataclass", "config"):
            return True
    return False


# --------------------------------------------------------------------------
# Type hint analysis (mirrors arg_utils._compute_kwargs)
# --------------------------------------------------------------------------

BUILTIN_SCALARS = {"bool", "str", "int", "float", "bytes", "complex", "object"}


def flatten_hint(index: Index, path: str, expr: ast.expr, depth: int = 0) -> set[str]:
    """Return the set of top-level type-hint kinds in an annotation.

    Kinds: 'bool', 'str', 'int', 'float', 'None', 'dataclass', 'literal',
    'list', 'dict', 'tuple', 'set', 'other'.
    """
    if depth > 20:
        return {"other"}
    if isinstance(expr, ast.Constant):
        if expr.value is None:
            return {"None"}
        if isinstance(expr.value, str):  # string annotation
            try:
                return flatten_hint(index, path, ast.parse(expr.value, mode="eval").body, depth + 1)
            except SyntaxError:
                return {"other"}
        return {"other"}
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return flatten_hint(index, path, expr.left, depth + 1) | \
            flatten_hint(index, path, expr.right, depth + 1)
    if isinstance(expr, ast.Subscript):
        head = _dotted(expr.value)
        last = head.split(".")[-1]
        elts = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
        if last == "Optional":
            return flatten_hint(index, path, elts[0], depth + 1) | {"None"}
        if last == "Union":
            out: set[str] = set()
            for e in elts:
                out |= flatten_hint(index, path, e, depth + 1)
            return out
        if last == "Annotated":
            return flatten_hint(index, path, elts[0], depth + 1)
        if last in ("ClassVar", "InitVar"):
            return {"classvar"}
        if last == "Literal":
            return {"literal"}
        if last in ("list", "List", "Sequence"):
            return {"list"}
        if last in ("dict", "Dict", "Mapping"):
            return {"dict"}
        if last in ("tuple", "Tuple"):
            return {"tuple"}
        if last in ("set", "Set", "frozenset"):
            return {"set"}
        if last == "type":
            return {"other"}
        return {"other"}
    if isinstance(expr, (ast.Name, ast.Attribute)):
        name = _dotted(expr)
        last = name.split(".")[-1]
        if name in BUILTIN_SCALARS:
            return {name}
        if name in ("list", "dict", "tuple", "set"):
            return {name}
        if last in ("Any",):
            return {"other"}
        if isinstance(expr, ast.Name):
            res = index.lookup(path, name)
            if res is not None:
                kind, info = res
                if kind == "class":
                    return {"dataclass"} if info.is_dataclass else {"other"}
                if kind == "alias":
                    apath, aexpr = info
                    # `X: TypeAlias = ...`, `X = Literal[...]`, `X = A | B`
                    if _looks_like_type(aexpr):
                        return flatten_hint(index, apath, aexpr, depth + 1)
        return {"other"}
    return {"other"}


def _looks_like_type(expr: ast.expr) -> bool:
    return isinstance(expr, (ast.Subscript, ast.BinOp, ast.Name, ast.Attribute)) or (
        isinstance(expr, ast.Constant) and (expr.value is None or isinstance(expr.value, str))
    )


def _dotted(expr: ast.expr) -> str:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return _dotted(expr.value) + "." + expr.attr
    return ""


def kind_from_hints(hints: set[str]) -> str:
    """'bool_optional' | 'optional_value' | 'value' (like _compute_kwargs)."""
    if "dataclass" in hints:
        return "value"
    if hints == {"bool", "str", "None"}:
        return "optional_value"
    if "bool" in hints:
        return "bool_optional"
    return "value"


@dataclass
class FieldInfo:
    name: str
    hints: set[str]
    kind: str


def dataclass_fields(index: Index, cls: ClassInfo, seen=None) -> dict[str, FieldInfo]:
    """Fields of a (pydantic/std) dataclass, bases first, like dataclasses.fields."""
    seen = seen or set()
    key = (cls.module, cls.name)
    if key in seen:
        return {}
    seen.add(key)
    out: dict[str, FieldInfo] = {}
    for base in cls.node.bases:
        bname = _dotted(base)
        if not bname or bname in ("object",):
            continue
        res = index.lookup(cls.module, bname.split(".")[-1]) if "." not in bname else None
        if res and res[0] == "class":
            out.update(dataclass_fields(index, res[1], seen))
    for st in cls.node.body:
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
            hints = flatten_hint(index, cls.module, st.annotation)
            if "classvar" in hints:
                continue
            out[st.target.id] = FieldInfo(st.target.id, hints, kind_from_hints(hints))
    return out


# --------------------------------------------------------------------------
# Flag collection
# --------------------------------------------------------------------------


@dataclass
class Flag:
    option_strings: list[str]
    kind: str                 # bool_optional | store_true | value | optional_value | ...
    source: str               # file:line
    suppressed: bool = False
    note: str = ""
    extra: dict = field(default_factory=dict)


ACTION_KINDS = {
    "store_true": "store_true",
    "store_false": "store_false",
    "store_const": "store_const",
    "append_const": "store_const",
    "count": "count",
    "help": "help",
    "version": "version",
}


def action_kind(expr: ast.expr) -> str:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return ACTION_KINDS.get(expr.value, "value")
    name = _dotted(expr)
    if name.split(".")[-1] == "BooleanOptionalAction":
        return "bool_optional"
    # custom Action classes (e.g. LoRAParserAction, DeprecatedLogConfigFileAction)
    return "value"


class KwargsEnv:
    """Track `x = get_kwargs(Cls)`, `y = x["field"]`, and edits of "action"."""

    def __init__(self, index: Index, module: str):
        self.index = index
        self.module = module
        self.vars: dict[str, tuple] = {}
        # (cls_key, field) -> overridden action kind
        self.action_override: dict[tuple, str | None] = {}

    def cls_of(self, expr: ast.expr, default_cls: ClassInfo | None = None) -> ClassInfo | None:
        if isinstance(expr, ast.Name):
            if expr.id == "cls" and default_cls is not None:
                return default_cls
            res = self.index.lookup(self.module, expr.id)
            if res and res[0] == "class":
                return res[1]
        return None

    def eval_ref(self, expr: ast.expr, default_cls=None):
        """Return ('cls', ClassInfo) or ('field', ClassInfo, name) or None."""
        if isinstance(expr, ast.Call) and _dotted(expr.func).split(".")[-1] == "get_kwargs" \
                and expr.args:
            c = self.cls_of(expr.args[0], default_cls)
            return ("cls", c) if c else None
        if isinstance(expr, ast.Name) and expr.id in self.vars:
            return self.vars[expr.id]
        if isinstance(expr, ast.Subscript):
            base = self.eval_ref(expr.value, default_cls)
            key = expr.slice
            if base and base[0] == "cls" and isinstance(key, ast.Constant) \
                    and isinstance(key.value, str):
                return ("field", base[1], key.value)
        return None

    def observe(self, stmt: ast.stmt, default_cls=None):
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            tgt = stmt.targets[0]
            if isinstance(tgt, ast.Name):
                ref = self.eval_ref(stmt.value, default_cls)
                if ref:
                    self.vars[tgt.id] = ref
            elif isinstance(tgt, ast.Subscript) and isinstance(tgt.slice, ast.Constant) \
                    and tgt.slice.value == "action":
                ref = self.eval_ref(tgt.value, default_cls)
                if ref and ref[0] == "field":
                    self.action_override[(ref[1].module, ref[1].name, ref[2])] = \
                        action_kind(stmt.value)
        elif isinstance(stmt, ast.Delete):
            for tgt in stmt.targets:
                if isinstance(tgt, ast.Subscript) and isinstance(tgt.slice, ast.Constant) \
                        and tgt.slice.value == "action":
                    ref = self.eval_ref(tgt.value, default_cls)
                    if ref and ref[0] == "field":
                        self.action_override[(ref[1].module, ref[1].name, ref[2])] = None

    def field_kind(self, cls: ClassInfo, name: str) -> str:
        key = (cls.module, cls.name, name)
        if key in self.action_override:
            ov = self.action_override[key]
            if ov is None:
                return kind_from_hints(dataclass_fields(self.index, cls)[name].hints) \
                    .replace("bool_optional", "value")
            return ov
        fields_ = dataclass_fields(self.index, cls)
        if name not in fields_:
            return "value"
        return fields_[name].kind

    def kind_of_starstar(self, expr: ast.expr, default_cls=None) -> str | None:
        """Kind contributed by `**expr` in an add_argument call (or None)."""
        if isinstance(expr, ast.Dict):
            kind = None
            for k, v in zip(expr.keys, expr.values):
                if k is None:
                    kind = self.kind_of_starstar(v, default_cls) or kind
                elif isinstance(k, ast.Constant) and k.value == "action":
                    kind = action_kind(v)
                elif isinstance(k, ast.Constant) and k.value == "nargs" and \
                        isinstance(v, ast.Constant) and v.value == "?":
                    kind = "optional_value"
            return kind
        ref = self.eval_ref(expr, default_cls)
        if ref and ref[0] == "field" and ref[1] is not None:
            return self.field_kind(ref[1], ref[2])
        return None


def _lineno(path: str, node: ast.AST) -> str:
    return f"{path}:{getattr(node, 'lineno', '?')}"


def collect_add_argument(call: ast.Call, env: KwargsEnv, path: str,
                         default_cls=None) -> Flag | None:
    opts = []
    for a in call.args:
        if isinstance(a, ast.Constant) and isinstance(a.value, str):
            opts.append(a.value)
        else:
            return None  # non-literal: handled by the caller (loops)
    opts = [o for o in opts if o.startswith("-")]
    if not opts:
        return None  # positional argument (e.g. model_tag)
    kind = None
    suppressed = False
    nargs_q = False
    for kw in call.keywords:
        if kw.arg is None:
            k = env.kind_of_starstar(kw.value, default_cls)
            if k:
                kind = k
        elif kw.arg == "action":
            kind = action_kind(kw.value)
        elif kw.arg == "help" and _dotted(kw.value).endswith("SUPPRESS"):
            suppressed = True
        elif kw.arg == "nargs" and isinstance(kw.value, ast.Constant) and kw.value.value == "?":
            nargs_q = True
    if kind is None:
        kind = "optional_value" if nargs_q else "value"
    return Flag(opts, kind, _lineno(path, call), suppressed)


class Collector:
    def __init__(self, index: Index):
        self.index = index
        self.flags: list[Flag] = []
        self.visited_methods: set[tuple] = set()
        self.log: list[str] = []

    # -- generic body walker ---------------------------------------------
    def walk_body(self, body: list[ast.stmt], path: str, env: KwargsEnv,
                  default_cls: ClassInfo | None = None):
        for stmt in body:
            env.observe(stmt, default_cls)
            # generated flags: for key, value in X.items(): add_argument(f"--{key...}")
            if isinstance(stmt, ast.For):
                self.handle_for(stmt, path, env, default_cls)
            for node in ast.walk(stmt):
                if isinstance(node, ast.For) and node is not stmt:
                    self.handle_for(node, path, env, default_cls)
            for node in _calls_in_order(stmt):
                fn = node.func
                if isinstance(fn, ast.Attribute) and fn.attr == "add_argument":
                    if _inside_for_generated(node, stmt):
                        continue
                    flag = collect_add_argument(node, env, path, default_cls)
                    if flag:
                        self.flags.append(flag)
                elif isinstance(fn, ast.Attribute) and fn.attr == "add_cli_args":
                    target = fn.value
                    cls = None
                    if isinstance(target, ast.Name):
                        if target.id == "cls" and default_cls is not None:
                            cls = default_cls
                        else:
                            res = self.index.lookup(path, target.id)
                            if res and res[0] == "class":
                                cls = res[1]
                    elif isinstance(target, ast.Call) and _dotted(target.func) == "super" \
                            and default_cls is not None:
                        base = self.first_base_with(default_cls, "add_cli_args", skip_self=True)
                        if base:
                            self.run_method(base[0], base[1], default_cls)
                        continue
                    if cls is not None:
                        owner = self.first_base_with(cls, "add_cli_args")
                        if owner:
                            self.run_method(owner[0], owner[1], cls)

    def handle_for(self, loop: ast.For, path: str, env: KwargsEnv, default_cls):
        # for key, value in frontend_kwargs.items(): group.add_argument(f"--{key...}", **value)
        it = loop.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute)
                and it.func.attr == "items"):
            return
        ref = env.eval_ref(it.func.value, default_cls)
        if not ref or ref[0] != "cls" or ref[1] is None:
            return
        gen_cls = ref[1]
        has_gen = False
        for node in ast.walk(loop):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "add_argument" and any(isinstance(a, ast.JoinedStr) for a in node.args):
                has_gen = True
        if not has_gen:
            return
        fields_ = dataclass_fields(self.index, gen_cls)
        for name, _finfo in fields_.items():
            kind = env.field_kind(gen_cls, name)
            self.flags.append(Flag(["--" + name.replace("_", "-")], kind,
                                   _lineno(path, loop), note=f"generated from {gen_cls.name}.{name}"))
        self.log.append(f"generated {len(fields_)} flags from fields of {gen_cls.name} "
                        f"({gen_cls.module})")

    def first_base_with(self, cls: ClassInfo, method: str, skip_self=False, seen=None):
        seen = seen or set()
        if (cls.module, cls.name) in seen:
            return None
        seen.add((cls.module, cls.name))
        if not skip_self:
            for st in cls.node.body:
                if isinstance(st, ast.FunctionDef) and st.name == method:
                    return (cls, st)
        for base in cls.node.bases:
            bname = _dotted(base)
            res = self.index.lookup(cls.module, bname) if bname and "." not in bname else None
            if res and res[0] == "class":
                found = self.first_base_with(res[1], method, False, seen)
                if found:
                    return found
        return None

    def run_method(self, owner: ClassInfo, fn: ast.FunctionDef, bound_cls: ClassInfo):
        key = (owner.module, owner.name, fn.name, bound_cls.name)
        if key in self.visited_methods:
            return
        self.visited_methods.add(key)
        env = KwargsEnv(self.index, owner.module)
        # `_customize_cli_kwargs` edits (e.g. action = LoRAParserAction)
        self.apply_customizers(bound_cls, env)
        self.log.append(f"parsed {owner.name}.{fn.name} ({owner.module}:{fn.lineno}) "
                        f"for {bound_cls.name}")
        self.walk_body(fn.body, owner.module, env, bound_cls)

    def apply_customizers(self, cls: ClassInfo, env: KwargsEnv, seen=None):
        seen = seen or set()
        if (cls.module, cls.name) in seen:
            return
        seen.add((cls.module, cls.name))
        for base in cls.node.bases:
            bname = _dotted(base)
            res = self.index.lookup(cls.module, bname) if bname and "." not in bname else None
            if res and res[0] == "class":
                self.apply_customizers(res[1], env, seen)
        for st in cls.node.body:
            if isinstance(st, ast.FunctionDef) and st.name.startswith("_customize"):
                arg_names = [a.arg for a in st.args.args]
                sub = KwargsEnv(self.index, cls.module)
                for a in arg_names:
                    if a.endswith("kwargs"):
                        sub.vars[a] = ("cls", cls)
                for node in ast.walk(st):
                    if isinstance(node, (ast.Assign, ast.Delete)):
                        sub.observe(node, cls)
                for (m, n, f), v in sub.action_override.items():
                    # apply to the bound class's field (same name)
                    env.action_override[(m, n, f)] = v

    # -- entry -------------------------------------------------------------
    def run_function(self, path: str, fn: ast.FunctionDef):
        env = KwargsEnv(self.index, path)
        self.log.append(f"parsed {fn.name} ({path}:{fn.lineno})")
        self.walk_body(fn.body, path, env, None)


def _calls_in_order(stmt: ast.stmt):
    calls = [n for n in ast.walk(stmt) if isinstance(n, ast.Call)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return calls


def _inside_for_generated(call: ast.Call, stmt: ast.stmt) -> bool:
    """add_argument calls with f-string names inside for-loops are generated."""
    return any(isinstance(a, (ast.JoinedStr, ast.Starred)) for a in call.args) and \
        not all(isinstance(a, ast.Constant) for a in call.args)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def find_function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def locate_make_arg_parser(index: Index) -> tuple[str, ast.FunctionDef]:
    serve = "vllm/entrypoints/cli/serve.py"
    tree = index.tree(serve)
    candidates = []
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "make_arg_parser":
                        p = index.module_to_path(index._abs_module(serve, node))
                        if p:
                            candidates.append(p)
    candidates += ["vllm/entrypoints/common/cli_args.py",
                   "vllm/entrypoints/openai/cli_args.py"]
    for p in candidates:
        t = index.tree(p)
        if t is not None:
            fn = find_function(t, "make_arg_parser")
            if fn is not None:
                return p, fn
    raise SystemExit("could not find make_arg_parser")


def parser_features(index: Index) -> dict:
    text = index.source.read("vllm/utils/argparse_utils.py") or \
        index.source.read("vllm/utils/__init__.py") or ""
    return {
        "enable_disable": bool(re.search(
            r"register\(\s*[\"']action[\"']\s*,\s*BooleanOptionalAction\s*,\s*EnableDisableAction",
            text)),
        "dash_O": "--optimization-level" in text and '"-O"' in text,
    }


def expand(flags: list[Flag], feats: dict) -> list[dict]:
    rows: dict[str, dict] = {}

    def add(opt, flag: Flag, takes_value: str, hidden=False, derived_from=None):
        if opt in rows:
            return
        rows[opt] = {
            "flag": opt,
            "takes_value": takes_value,
            "kind": flag.kind,
            "canonical": next((o for o in flag.option_strings if o.startswith("--")),
                              flag.option_strings[0]),
            "source": flag.source,
            "hidden": hidden or flag.suppressed,
        }
        if derived_from:
            rows[opt]["derived_from"] = derived_from
        if flag.note:
            rows[opt]["note"] = flag.note

    for flag in flags:
        tv = {"bool_optional": "no", "store_true": "no", "store_false": "no",
              "store_const": "no", "count": "no", "help": "no", "version": "no",
              "optional_value": "optional"}.get(flag.kind, "yes")
        for opt in flag.option_strings:
            add(opt, flag, tv)
        if flag.kind == "bool_optional":
            for opt in flag.option_strings:
                if opt.startswith("--") and not opt.startswith("--no-"):
                    add("--no-" + opt[2:], flag, "no",
                        hidden=feats["enable_disable"], derived_from=opt)
            if feats["enable_disable"]:
                for opt in flag.option_strings:
                    for pre, inv in (("--enable-", "--disable-"), ("--disable-", "--enable-")):
                        if opt.startswith(pre):
                            add(inv + opt[len(pre):], flag, "no", derived_from=opt)
    if feats["dash_O"] and "--optimization-level" in rows and "-O" not in rows:
        base = rows["--optimization-level"]
        rows["-O"] = dict(base, flag="-O", note="rewritten to --optimization-level by "
                          "FlexibleArgumentParser.parse_args (-O3, -O 3, -O=3)")
    return sorted(rows.values(), key=lambda r: (r["flag"].lstrip("-").lower(), r["flag"]))


DEFAULT_REQUIRED = [
    "--tensor-parallel-size", "-tp", "--pipeline-parallel-size", "-pp",
    "--enable-expert-parallel", "--max-model-len", "--gpu-memory-utilization",
    "--max-num-seqs", "--max-num-batched-tokens", "--enforce-eager",
    "--kv-cache-dtype", "--quantization", "-q", "--dtype",
    "--distributed-executor-backend", "--data-parallel-size", "--trust-remote-code",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--src", help="vLLM source tree (directory containing vllm/)")
    g.add_argument("--git-dir", help="bare git dir (or .git) of a vLLM clone")
    ap.add_argument("--commit", default="HEAD", help="commit for --git-dir (default HEAD)")
    ap.add_argument("-o", "--output", default="-", help="flag list (default stdout)")
    ap.add_argument("--json", help="also write per-flag metadata as JSON")
    ap.add_argument("--visible-only", action="store_true",
                    help="omit --no-X forms hidden from --help and SUPPRESSed flags")
    ap.add_argument("--require", default="",
                    help="comma-separated flags that must exist, e.g. "
                    "--require=--max-model-len,-tp (use '=' since values start with '-')")
    ap.add_argument("--check", action="store_true",
                    help="fail unless the core flags a memory calculator prints exist "
                    "(see DEFAULT_REQUIRED)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    source = Source(src=args.src, git_dir=args.git_dir, commit=args.commit)
    index = Index(source)
    version, commit = source.version_and_commit()

    col = Collector(index)
    path, fn = locate_make_arg_parser(index)
    col.run_function(path, fn)
    # The serve parser also gets -h/--help from argparse itself.
    col.flags.insert(0, Flag(["-h", "--help"], "help", "argparse (add_help=True)"))
    feats = parser_features(index)
    rows = expand(col.flags, feats)
    if args.visible_only:
        rows = [r for r in rows if not r["hidden"]]

    lines = [f"# vllm {version} {commit}"] + [r["flag"] for r in rows]
    text = "\n".join(lines) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"vllm_version": version, "commit": commit,
                       "parser_features": feats, "parsed": col.log,
                       "flags": rows}, f, indent=1)
    if args.verbose:
        for entry in col.log:
            print("[info]", entry, file=sys.stderr)
        print(f"[info] {len(rows)} flags", file=sys.stderr)
    required = [r for r in args.require.split(",") if r]
    if args.check:
        required += DEFAULT_REQUIRED
    missing = [r for r in required if r not in {row["flag"] for row in rows}]
    if missing:
        print("missing required flags: " + " ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
