"""The check file: YAML with line numbers, entries validated into `Check`s.

An entry holds the check's own fields (``ENTRY_FIELDS``: name, model, gpu, headroom...) and any
workload setting; the workload is built by `llm_mem.settings.build_workload`, the same path the
CLI takes, so a file and a flag are validated alike. Every problem raises CheckFileError as
``FILE:LINE: field X: problem``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_mem.errors import CheckFileError, CombinationError, LlmMemError, SettingError, UsageError, quote
from llm_mem.requests import MAX_MODEL_NAME, MAX_REVISION, name_text
from llm_mem.settings import build_workload, validation_problem
from llm_mem.units import NUMBER
from llm_mem.workload import Workload

if TYPE_CHECKING:
    from llm_mem.catalog import Catalog

FILE_VERSION = 1
# An entry passes on these strategies; offload and streaming only when it lists them in `allow`.
RESIDENT_STRATEGIES = ("single", "tensor_parallel", "pipeline")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PERCENT_RE = re.compile(r"^\s*" + NUMBER + r"\s*%\s*$")  # linear: llm_mem.units.NUMBER
# The largest check file read (a real one is a few KB); bigger is refused before parsing.
MAX_CHECK_FILE_BYTES = 2 * 2**20
# The most entries in one file: each is a plan (a few ms) and a line of output; real files hold tens.
MAX_CHECK_ENTRIES = 1000
# The most values (scalars, lists, mappings) in one file: 1,000 entries of a dozen fields are ~30,000.
MAX_YAML_NODES = 100_000
# The deepest nesting of lists and mappings read (a check file nests 3: checks, an entry, `allow`).
MAX_YAML_DEPTH = 32
# The longest check name (a JUnit testcase name and an --only key; real ones are a few words).
MAX_CHECK_NAME = 200


class EntryFields(BaseModel):
    """The fields of an entry that are the check's own, not the workload's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    gpu: str = Field(min_length=1)
    revision: Optional[str] = None
    host_ram: Optional[str] = None
    min_headroom: Optional[int | str] = None
    allow: list[str] = Field(default_factory=list)

    @field_validator("model", "gpu", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # YAML reads a bare 4090 or 8 as a number; these fields are names
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        return name_text(value, MAX_MODEL_NAME)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        # a check's name is a JUnit testcase name, an --only key and the head of its stderr line
        return name_text(value, MAX_CHECK_NAME)

    @field_validator("revision", mode="before")
    @classmethod
    def _revision(cls, value: Any) -> Any:
        return name_text(value, MAX_REVISION)

    @field_validator("allow", mode="before")
    @classmethod
    def _allow(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, v in enumerate(value):
                if not isinstance(v, str) or v.strip().lower() not in ("offload", "streaming"):
                    raise ValueError(f"item {i + 1}: {v!r} is not offload or streaming")
            return [v.strip().lower() for v in value]
        return value


ENTRY_FIELDS = tuple(EntryFields.model_fields)
WORKLOAD_FIELDS = tuple(Workload.model_fields)


class Check(BaseModel):
    """A validated entry, ready to evaluate: the device resolved, the workload built."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    model: str
    revision: Optional[str] = None
    gpu: Any  # llm_mem.catalog.Gpu
    count: int
    workload: Workload
    headroom: tuple[str, float] = ("bytes", 0)  # ("percent", 10.0) or ("bytes", 2e9)
    allow: tuple[str, ...] = ()
    host_ram: Optional[int] = None
    where: str = ""  # "FILE:LINE" of the entry; empty for a check from the command line
    line: Optional[int] = None


class CheckSet(BaseModel):
    """A parsed check file (or one check from the command line)."""

    model_config = ConfigDict(frozen=True)

    file: Optional[str] = None
    checks: list[Check]


# --------------------------------------------------------------------------- YAML with line numbers
def _compose(text: str, where: str) -> tuple[Any, Any]:
    """(node, data): the composed YAML (for line numbers) and the same document constructed."""
    import yaml  # lazily: start-up time matters

    from llm_mem.sources.configfile import yaml_loader

    try:
        _check_shape(text, where)
        loader = yaml_loader()(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise CheckFileError(f"{where}:{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CheckFileError(f"{where}: not valid YAML: {str(exc)[:200]}") from None
    return node, data


def _check_shape(text: str, where: str) -> None:
    """Refuse a file of more than MAX_YAML_NODES values or MAX_YAML_DEPTH levels before it is composed."""
    from llm_mem.sources.configfile import yaml_shape_problem

    problem = yaml_shape_problem(text, MAX_YAML_NODES, MAX_YAML_DEPTH)
    if problem is not None:
        line, what = problem
        raise CheckFileError(f"{where}:{line}: {what}",
                             f"a check file nests 3 levels; {MAX_CHECK_ENTRIES:,} entries hold ~30,000 values")


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _keys(node: Any, where: str, what: str) -> dict[str, Any]:
    """Key -> (key node, value node) of a mapping node; duplicate keys are an error (YAML would
    silently keep the last one)."""
    out: dict[str, Any] = {}
    for key, value in node.value:
        k = str(key.value)
        if k in out:
            raise CheckFileError(f"{where}:{_line(key)}: field {k}: given twice in {what}")
        out[k] = (key, value)
    return out


def _field_line(field: str, entry_keys: dict[str, Any], default_keys: dict[str, Any], entry_line: int) -> int:
    if field in entry_keys:
        return _line(entry_keys[field][1])
    if field in default_keys:
        return _line(default_keys[field][1])
    return entry_line


def _unknown_field(field: str) -> str:
    close = difflib.get_close_matches(field.replace("-", "_"), [*ENTRY_FIELDS, *WORKLOAD_FIELDS], n=1)
    return "unknown field" + (f" (did you mean {close[0]}?)" if close else "")


# --------------------------------------------------------------------------- meaning of the fields
def parse_headroom(value: Any) -> tuple[str, float]:
    """``"10%"`` -> ("percent", 10.0); ``"2GB"`` / ``"512MiB"`` -> ("bytes", n); ``0`` -> no headroom.
    A bare number other than 0 is refused: say % or a unit."""
    from llm_mem.units import parse_size

    if value is None or value == 0 or (isinstance(value, str) and value.strip() in ("0", "0%")):
        return ("bytes", 0)
    if isinstance(value, str):
        m = _PERCENT_RE.match(value)
        if m:
            pct = float(m.group(1))
            if not 0 <= pct < 100:
                raise UsageError(f"{value!r} must be a percentage from 0 to below 100")
            return ("percent", pct)
        if re.match(r"^\s*[0-9.]+\s*$", value) is None:
            return ("bytes", parse_size(value))
    raise UsageError(f"cannot read {value!r} as headroom",
                     "use a percentage of the budget (10%) or a size (2GB, 1.5GiB)")


def headroom_bytes(headroom: tuple[str, float], budget_bytes: int) -> int:
    """Free bytes per GPU that a check demands: a percentage of the runtime's budget, or a size."""
    kind, value = headroom
    return math.ceil(budget_bytes * value / 100) if kind == "percent" else int(value)


def _build(raw: dict[str, Any], catalog: Catalog, where: str, line: Optional[int],
           field_where: Callable[[str], str], base_dir: Optional[Path] = None) -> Check:
    """Turn an entry's fields (defaults merged in) into a Check; every problem names its field."""
    from llm_mem.catalog import resolve_gpu
    from llm_mem.units import parse_size

    label = raw.get("name") if isinstance(raw.get("name"), str) else "?"

    def fail(field: str, err: Exception) -> CheckFileError:
        msg = err.one_line() if isinstance(err, LlmMemError) else str(err)
        return CheckFileError(f"{field_where(field)}: {msg}; in check {label!r}")

    def guard(field: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (LlmMemError, ValueError) as err:
            raise fail(field, err) from None

    for key in raw:
        if key not in ENTRY_FIELDS and key not in WORKLOAD_FIELDS:
            raise fail(key, UsageError(_unknown_field(key)))
    own = {k: v for k, v in raw.items() if k in ENTRY_FIELDS}
    try:
        entry = EntryFields.model_validate(own)
    except ValidationError as exc:
        field, msg = validation_problem(exc)
        if exc.errors()[0]["type"] == "missing":
            msg = "required, missing"
        raise fail(field, UsageError(msg)) from None
    headroom = guard("min_headroom", lambda: parse_headroom(entry.min_headroom))
    host_ram = guard("host_ram", lambda: parse_size(entry.host_ram or "")) if entry.host_ram else None
    req = guard("gpu", lambda: resolve_gpu(entry.gpu, catalog))
    count = req.count or 1
    settings = {k: v for k, v in raw.items() if k in WORKLOAD_FIELDS}
    if settings.get("train") is not None:
        gpus = settings.get("gpus")
        if gpus is not None and req.count is not None and gpus != req.count:
            raise fail("gpus", UsageError(f"{gpus} data-parallel GPUs, but gpu {entry.gpu!r} names {req.count}"))
        count = gpus if isinstance(gpus, int) and not isinstance(gpus, bool) else count
        settings["gpus"] = count if count > 1 else settings.get("gpus")

    def placed(field: str) -> str:
        return field_where(field)

    try:
        workload = build_workload(settings, where=placed)
    except UsageError as err:
        raise CheckFileError(f"{err.one_line()}; in check {label!r}") from None
    model = entry.model.strip()
    if base_dir is not None and model.startswith(("./", "../")):
        # a relative model path is relative to the check file; keep it a path to resolve_model's eyes
        model = os.path.normpath(base_dir / model)
        if not os.path.isabs(model) and not model.startswith("."):
            model = f".{os.sep}{model}"
    return Check(name=entry.name, model=model, revision=entry.revision, gpu=req.gpu, count=count,
                 workload=workload, headroom=headroom, allow=tuple(dict.fromkeys(entry.allow)),
                 host_ram=host_ram, where=where, line=line)


def load_checks(path: Path | str, catalog: Optional[Catalog] = None) -> CheckSet:
    """Read and validate a check file. Raises CheckFileError ``FILE:LINE: field X: problem`` for the
    first problem found (YAML syntax, unknown or mistyped field, bad size/precision/GPU...)."""
    from llm_mem.catalog import load_catalog
    from llm_mem.sources.configfile import read_limited

    path = Path(path)
    where = str(path)
    try:
        text = read_limited(path, MAX_CHECK_FILE_BYTES, "check file").decode("utf-8")
    except FileNotFoundError:
        raise CheckFileError(f"no such check file: {where}") from None
    except UnicodeDecodeError:
        raise CheckFileError(f"cannot read check file {where}: not UTF-8 text") from None
    except LlmMemError as err:
        raise CheckFileError(err.one_line()) from None
    return parse_checks(text, where, catalog if catalog is not None else load_catalog(), base_dir=path.parent)


def parse_checks(text: str, where: str, catalog: Catalog, base_dir: Optional[Path] = None) -> CheckSet:
    """Validate the text of a check file; ``where`` names it in errors. See :func:`load_checks`."""
    import yaml

    node, data = _compose(text, where)
    if node is None:
        raise CheckFileError(f"{where}:1: empty check file", "start with `version: 1` and a `checks:` list")
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        raise CheckFileError(f"{where}:{_line(node)}: the file must be a mapping with `version: 1` and `checks:`")
    top = _keys(node, where, "the file")
    for key, (knode, _) in top.items():
        if key not in ("version", "defaults", "checks"):
            raise CheckFileError(f"{where}:{_line(knode)}: field {key}: unknown top-level field",
                                 "the file has version, defaults and checks")
    if "version" not in top:
        raise CheckFileError(f"{where}:1: field version: required, missing", "add `version: 1`")
    version = data.get("version")
    if version != FILE_VERSION or isinstance(version, bool):
        raise CheckFileError(f"{where}:{_line(top['version'][1])}: field version: {quote(version)} is not "
                             "supported", f"this llm-mem reads version {FILE_VERSION}")

    defaults: dict[str, Any] = {}
    default_keys: dict[str, Any] = {}
    if "defaults" in top and data.get("defaults") is not None:
        dnode = top["defaults"][1]
        if not isinstance(dnode, yaml.MappingNode):
            raise CheckFileError(f"{where}:{_line(dnode)}: field defaults: must be a mapping of entry fields")
        default_keys = _keys(dnode, where, "defaults")
        defaults = data["defaults"]
        if "name" in defaults:
            raise CheckFileError(f"{where}:{_line(default_keys['name'][0])}: field name: names are per entry, "
                                 "not a default")
        for key, (knode, _) in default_keys.items():
            if key not in ENTRY_FIELDS and key not in WORKLOAD_FIELDS:
                raise CheckFileError(f"{where}:{_line(knode)}: field {key}: {_unknown_field(key)}; in defaults")
        try:  # each default's own type and range; cross-field rules are judged per entry, defaults merged
            Workload(**{k: v for k, v in defaults.items() if k in WORKLOAD_FIELDS and v is not None})
        except CombinationError:
            pass
        except SettingError as err:
            placed = err.placed(f"{where}:{_field_line(err.field, {}, default_keys, 1)}: field {err.field}")
            raise CheckFileError(f"{placed.one_line()}; in defaults") from None

    if "checks" not in top:
        raise CheckFileError(f"{where}:{_line(node)}: field checks: required, missing", "add a `checks:` list")
    cnode = top["checks"][1]
    if not isinstance(cnode, yaml.SequenceNode) or not cnode.value:
        raise CheckFileError(f"{where}:{_line(cnode)}: field checks: must be a non-empty list of entries")
    if len(cnode.value) > MAX_CHECK_ENTRIES:
        raise CheckFileError(f"{where}:{_line(cnode)}: field checks: {len(cnode.value):,} entries, more than "
                             f"{MAX_CHECK_ENTRIES:,}", "split the file; each entry is a full plan (~2 ms)")

    checks: list[Check] = []
    seen: dict[str, int] = {}
    for i, (enode, raw) in enumerate(zip(cnode.value, data["checks"])):
        eline = _line(enode)
        if not isinstance(enode, yaml.MappingNode) or not isinstance(raw, dict):
            raise CheckFileError(f"{where}:{eline}: checks item {i + 1}: must be a mapping (name, model, gpu...)")
        ekeys = _keys(enode, where, f"checks item {i + 1}")
        name = raw.get("name")
        if isinstance(name, str) and name in seen:
            raise CheckFileError(f"{where}:{_line(ekeys['name'][1])}: field name: {name!r} is already "
                                 f"the name of the check on line {seen[name]}")

        def field_where(field: str, ekeys: dict[str, Any] = ekeys, eline: int = eline) -> str:
            return f"{where}:{_field_line(field, ekeys, default_keys, eline)}: field {field}"

        check = _build({**defaults, **raw}, catalog, f"{where}:{eline}", eline, field_where, base_dir)
        seen[check.name] = eline
        checks.append(check)
    return CheckSet(file=where, checks=checks)


def single_check(options: dict[str, Any], catalog: Catalog) -> CheckSet:
    """One check from command-line options (``--model``, ``--gpu``, ``--precision``...). Keys are entry
    fields; None values are left at their defaults. Errors name the flag."""
    raw = {k: v for k, v in options.items() if v is not None and v != []}
    model, gpu = (_CONTROL_RE.sub("?", str(raw.get(k, "?"))) for k in ("model", "gpu"))  # their own fields say why
    raw.setdefault("name", f"{model[:120]} on {gpu[:60]}")
    flag: Callable[[str], str] = lambda f: f"--{f.replace('_', '-')}"
    try:
        return CheckSet(file=None, checks=[_build(raw, catalog, "", None, flag)])
    except CheckFileError as err:
        raise CheckFileError(err.message.rsplit("; in check", 1)[0], err.hint) from None
