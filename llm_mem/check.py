"""CI sizing checks (`llm-mem check`): a YAML file of deployments that must fit, evaluated with the
planner. Pure core: no typer, no rich; the command lives in llm_mem/cli_check.py.

File format (docs/check.md)::

    version: 1
    defaults:            # merged into every entry (an entry's own keys win)
      runtime: vllm
      min_headroom: 10%
    checks:
      - name: chat-8b
        model: meta-llama/Llama-3.1-8B
        gpu: L4          # one device; "2xL4" = two, tensor parallel
        precision: int4
        context: 8k

An entry passes when a fitting plan option is resident on the GPUs it names (single GPU, tensor
parallel, or pipeline when the count spans nodes) -- or is a strategy listed in ``allow`` (offload,
streaming) -- and leaves at least ``min_headroom`` of each GPU's budget free. Every problem in the
file raises CheckFileError as ``FILE:LINE: field X: problem``; problems found while evaluating an
entry (unknown model, Hub unreachable) become ``error`` results, never a silent pass.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

from llm_mem.errors import CheckFileError, LlmMemError, UsageError

if TYPE_CHECKING:
    from llm_mem.catalog import Catalog, Gpu
    from llm_mem.planner import PlanOption
    from llm_mem.report import Workload
    from llm_mem.spec import ResolvedModel

SCHEMA_VERSION = "1"
FILE_VERSION = 1
DEFAULT_CONTEXT = 4096  # as `estimate` / `plan`: 4096 tokens, or the model's maximum when smaller
RESIDENT = ("single", "tensor_parallel", "pipeline")
ALLOWABLE = ("offload", "streaming")
_ORDER = {"single": 0, "tensor_parallel": 1, "pipeline": 2, "data_parallel": 3, "offload": 4, "streaming": 5}
_PERCENT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")

Status = Literal["pass", "fail", "error"]
CheckStrategy = Literal["single", "tensor_parallel", "pipeline", "data_parallel", "offload", "streaming"]


# --------------------------------------------------------------------------- the file's entries
class _Settings(BaseModel):
    """Keys allowed both under ``defaults:`` and in an entry. Types only; meaning is checked later."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Optional[str] = None
    gpu: Optional[str] = None
    revision: Optional[str] = None
    precision: Optional[str] = None
    quant: Optional[str] = None
    context: Optional[Union[StrictInt, str]] = None
    batch: StrictInt = Field(default=1, ge=1)
    kv_dtype: str = "bf16"
    attention: Literal["eager", "sdpa", "flash"] = "sdpa"
    runtime: Literal["transformers", "vllm", "llamacpp"] = "transformers"
    logits: Literal["last", "full"] = "last"
    train: Optional[Literal["full", "lora", "qlora"]] = None
    lora_rank: StrictInt = Field(default=16, ge=1)
    lora_targets: Optional[Union[list[str], str]] = None
    optimizer: str = "adamw"
    mixed_precision: Literal["bf16", "fp16", "none"] = "bf16"
    grad_checkpointing: StrictBool = False
    zero: StrictInt = Field(default=0, ge=0, le=3)
    gpus: Optional[StrictInt] = Field(default=None, ge=1)
    offload: Literal["none", "optimizer", "parameters"] = "none"
    host_ram: Optional[str] = None
    min_headroom: Optional[Union[StrictInt, str]] = None
    allow: list[Literal["offload", "streaming"]] = Field(default_factory=list)

    @field_validator("attention", "runtime", "logits", "train", "mixed_precision", "offload", "allow",
                     mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower()
        if isinstance(value, list):
            return [v.strip().lower() if isinstance(v, str) else v for v in value]
        return value

    @field_validator("model", "gpu", "precision", "quant", "kv_dtype", "optimizer", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # YAML reads a bare 4090 or 8 as a number; these fields are names
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value


class CheckEntry(_Settings):
    """One entry of ``checks:`` after ``defaults:`` are merged in."""

    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    gpu: str = Field(min_length=1)


class Check(BaseModel):
    """A validated entry, ready to evaluate: the device resolved, the workload built."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    model: str
    revision: Optional[str] = None
    gpu: Any  # llm_mem.catalog.Gpu (kept Any so that importing this module stays cheap)
    count: int
    workload: Any  # llm_mem.report.Workload
    context_given: bool
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


# --------------------------------------------------------------------------- results
class CheckResult(BaseModel):
    """The verdict on one entry. Sizes are bytes per GPU; ``headroom_bytes`` is the free memory the
    entry asked for (``min_headroom``), ``budget_bytes`` what the runtime lets the model use."""

    model_config = ConfigDict(frozen=True)

    name: str
    model: str
    gpu: str
    count: int
    status: Status
    strategy: Optional[CheckStrategy] = None
    per_gpu_bytes: Optional[int] = None
    budget_bytes: Optional[int] = None
    headroom_bytes: Optional[int] = None
    reason: str
    line: Optional[int] = None


class CheckReport(BaseModel):
    """What `llm-mem check --json` prints (schema: docs/schemas/check.schema.json)."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = SCHEMA_VERSION
    file: Optional[str] = None
    results: list[CheckResult]
    passed: int
    failed: int
    errors: int

    @property
    def exit_code(self) -> int:
        """0 when every entry passes, 1 when one fails, 2 when one could not be evaluated."""
        return 2 if self.errors else 1 if self.failed else 0


# --------------------------------------------------------------------------- YAML with line numbers
def _compose(text: str, where: str) -> tuple[Any, Any]:
    """(node, data): the composed YAML (for line numbers) and the same document constructed."""
    import yaml  # lazily: start-up time matters

    try:
        loader = yaml.SafeLoader(text)
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
        raise CheckFileError(f"{where}: not valid YAML: {exc}") from None
    return node, data


def _line(node: Any) -> int:
    return node.start_mark.line + 1


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


def _pydantic_problem(exc: ValidationError) -> tuple[str, str]:
    """(field, message) of the first error, in words."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    field = loc[0] if loc else "?"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field" + (f" (did you mean {_close(field)}?)" if _close(field) else "")
    elif err["type"] == "missing":
        msg = "required, missing"
    elif len(loc) > 1 and loc[-1].isdigit():
        msg = f"item {int(loc[-1]) + 1}: {msg}"
    elif len(loc) > 1 and loc[1] not in ("str", "int", "list[str]"):
        msg = f"{msg} ({'.'.join(loc[1:])})"
    return field, msg


def _close(field: str) -> str:
    import difflib

    names = list(CheckEntry.model_fields) + ["name"]
    close = difflib.get_close_matches(field.replace("-", "_"), names, n=1)
    return close[0] if close else ""


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


def _build(entry: CheckEntry, catalog: Catalog, where: str, line: Optional[int],
           field_where: Callable[[str], str], base_dir: Optional[Path] = None) -> Check:
    """Turn a typed entry into a Check; every problem names its field via ``field_where``."""
    from llm_mem.catalog import resolve_gpu
    from llm_mem.estimators.kv_cache import kv_bits
    from llm_mem.estimators.training import OPTIMIZERS
    from llm_mem.formats import get_format
    from llm_mem.report import Workload
    from llm_mem.units import parse_size, parse_tokens

    def fail(field: str, err: Exception) -> CheckFileError:
        msg = err.one_line() if isinstance(err, LlmMemError) else str(err)
        return CheckFileError(f"{field_where(field)}: {msg}; in check {entry.name!r}")

    def guard(field: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (LlmMemError, ValueError) as err:
            raise fail(field, err) from None

    if entry.precision is not None:
        if entry.precision.strip().lower() == "all":
            raise fail("precision", UsageError("'all' compares precisions; a check needs one"))
        guard("precision", lambda: get_format(entry.precision))
    if entry.quant is not None:
        guard("quant", lambda: get_format(entry.quant))
    context = guard("context", lambda: parse_tokens(entry.context)) if entry.context is not None else None
    guard("kv_dtype", lambda: kv_bits(entry.kv_dtype, entry.runtime))
    optimizer = entry.optimizer.strip().lower()
    if optimizer not in OPTIMIZERS:
        raise fail("optimizer", UsageError(f"unknown optimizer {entry.optimizer!r}",
                                           f"choose one of {', '.join(OPTIMIZERS)}"))
    headroom = guard("min_headroom", lambda: parse_headroom(entry.min_headroom))
    host_ram = guard("host_ram", lambda: parse_size(entry.host_ram)) if entry.host_ram else None
    req = guard("gpu", lambda: resolve_gpu(entry.gpu, catalog))
    count = req.count or 1
    gpus = entry.gpus
    if entry.train is None:
        if entry.gpus is not None:
            raise fail("gpus", UsageError("data-parallel GPUs apply to training",
                                          "for inference name the count in gpu, e.g. 2xL4"))
        for f in ("zero", "offload"):
            if getattr(entry, f) not in (0, "none"):
                raise fail(f, UsageError(f"{f} applies to training", "add train: full, lora or qlora"))
    else:
        if gpus is not None and req.count is not None and gpus != req.count:
            raise fail("gpus", UsageError(f"{gpus} data-parallel GPUs, but gpu {entry.gpu!r} names {req.count}"))
        count = gpus or count
        gpus = count
        if entry.offload == "parameters" and entry.zero != 3:
            raise fail("offload", UsageError("offload: parameters needs zero: 3"))
        if entry.offload == "optimizer" and entry.zero == 0:
            raise fail("offload", UsageError("offload: optimizer needs zero: 1, 2 or 3"))
        if entry.train == "full" and entry.quant:
            raise fail("quant", UsageError("full fine-tuning cannot train a quantized base", "use train: qlora"))
    targets = None
    if entry.lora_targets is not None:
        raw = entry.lora_targets.split(",") if isinstance(entry.lora_targets, str) else entry.lora_targets
        targets = tuple(t.strip() for t in raw if t.strip())
        if not targets:
            raise fail("lora_targets", UsageError("empty list of LoRA target modules"))
    kw: dict[str, Any] = dict(
        precision=entry.precision, quant=entry.quant, context=context or DEFAULT_CONTEXT, batch=entry.batch,
        kv_dtype=entry.kv_dtype.strip().lower(), attention=entry.attention, runtime=entry.runtime,
        logits=entry.logits, train=entry.train, lora_rank=entry.lora_rank, optimizer=optimizer,
        mixed_precision=entry.mixed_precision, grad_checkpointing=entry.grad_checkpointing, zero=entry.zero,
        gpus=gpus or 1, offload=entry.offload,
    )
    if targets:
        kw["lora_targets"] = targets
    model = entry.model.strip()
    if base_dir is not None and model.startswith(("./", "../")):
        # a relative model path is relative to the check file; keep it a path to resolve_model's eyes
        model = os.path.normpath(base_dir / model)
        if not os.path.isabs(model) and not model.startswith("."):
            model = f".{os.sep}{model}"
    return Check(name=entry.name, model=model, revision=entry.revision, gpu=req.gpu, count=count,
                 workload=Workload(**kw), context_given=context is not None, headroom=headroom,
                 allow=tuple(dict.fromkeys(entry.allow)), host_ram=host_ram, where=where, line=line)


def load_checks(path: Path | str, catalog: Optional[Catalog] = None) -> CheckSet:
    """Read and validate a check file. Raises CheckFileError ``FILE:LINE: field X: problem`` for the
    first problem found (YAML syntax, unknown or mistyped field, bad size/precision/GPU...)."""
    from llm_mem.catalog import load_catalog

    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckFileError(f"no such check file: {where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckFileError(f"cannot read check file {where}: {exc}") from None
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
        raise CheckFileError(f"{where}:{_line(top['version'][1])}: field version: {version!r} is not supported",
                             f"this llm-mem reads version {FILE_VERSION}")

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
        try:
            _Settings.model_validate(defaults)
        except ValidationError as exc:
            field, msg = _pydantic_problem(exc)
            line = _line(default_keys[field][1]) if field in default_keys else _line(dnode)
            raise CheckFileError(f"{where}:{line}: field {field}: {msg}; in defaults") from None

    if "checks" not in top:
        raise CheckFileError(f"{where}:{_line(node)}: field checks: required, missing", "add a `checks:` list")
    cnode = top["checks"][1]
    if not isinstance(cnode, yaml.SequenceNode) or not cnode.value:
        raise CheckFileError(f"{where}:{_line(cnode)}: field checks: must be a non-empty list of entries")

    checks: list[Check] = []
    seen: dict[str, int] = {}
    for i, (enode, raw) in enumerate(zip(cnode.value, data["checks"])):
        eline = _line(enode)
        if not isinstance(enode, yaml.MappingNode) or not isinstance(raw, dict):
            raise CheckFileError(f"{where}:{eline}: checks item {i + 1}: must be a mapping (name, model, gpu...)")
        ekeys = _keys(enode, where, f"checks item {i + 1}")
        merged = {**defaults, **raw}
        label = raw.get("name") if isinstance(raw.get("name"), str) else f"item {i + 1}"
        try:
            entry = CheckEntry.model_validate(merged)
        except ValidationError as exc:
            field, msg = _pydantic_problem(exc)
            line = _field_line(field, ekeys, default_keys, eline)
            raise CheckFileError(f"{where}:{line}: field {field}: {msg}; in check {label!r}") from None
        if entry.name in seen:
            raise CheckFileError(f"{where}:{_line(ekeys['name'][1])}: field name: {entry.name!r} is already "
                                 f"the name of the check on line {seen[entry.name]}")
        seen[entry.name] = eline

        def field_where(field: str, ekeys: dict[str, Any] = ekeys, eline: int = eline) -> str:
            return f"{where}:{_field_line(field, ekeys, default_keys, eline)}: field {field}"

        checks.append(_build(entry, catalog, f"{where}:{eline}", eline, field_where, base_dir))
    return CheckSet(file=where, checks=checks)


def single_check(options: dict[str, Any], catalog: Catalog) -> CheckSet:
    """One check from command-line options (``--model``, ``--gpu``, ``--precision``...). Keys are entry
    fields; None values are left at their defaults. Errors name the flag."""
    raw = {k: v for k, v in options.items() if v is not None and v != []}
    raw.setdefault("name", f"{raw.get('model', '?')} on {raw.get('gpu', '?')}")
    try:
        entry = CheckEntry.model_validate(raw)
    except ValidationError as exc:
        field, msg = _pydantic_problem(exc)
        raise CheckFileError(f"--{field.replace('_', '-')}: {msg}") from None
    return CheckSet(file=None, checks=[_build(entry, catalog, "", None,
                                              lambda f: f"--{f.replace('_', '-')}")])


# --------------------------------------------------------------------------- evaluation
def _shrunk(gpu: Gpu, runtime: str, free: int) -> Gpu:
    """The same device with its budget (``planner.budget``) ``free`` bytes smaller, so that the
    planner's offload split leaves them free. Every memory figure is cut by the same amount; the
    runtime's rule (e.g. vLLM's 90% of the device) decides how much that must be."""
    from llm_mem.planner import budget

    def cut(d: int) -> Gpu:
        update = {"usable_bytes": max(gpu.usable_bytes - d, 1), "memory_bytes": max(gpu.memory_bytes - d, 1)}
        if gpu.framework_total_bytes:
            update["framework_total_bytes"] = max(gpu.framework_total_bytes - d, 1)
        return gpu.model_copy(update=update)

    full = budget(gpu, runtime)
    target = full - free
    g = cut(free)
    slope = (full - budget(g, runtime)) / free  # budget bytes lost per byte of memory cut (vLLM: 0.9)
    if slope <= 0:
        return g
    d = math.ceil(free / slope)
    for _ in range(8):  # integer rounding in the budget rule: a few bytes more at most
        g = cut(d)
        got = budget(g, runtime)
        if got <= target:
            break
        d += max(math.ceil((got - target) / slope), 1)
    return g


def _gb(n: int) -> str:
    from llm_mem.units import GB

    return f"{n / GB:,.2f} GB"


def _words(strategy: str, n: int, gpu: str) -> str:
    """How an option runs, in words: 'tensor parallel over 2 x L4-24GB'."""
    return {"single": f"on 1 x {gpu}", "tensor_parallel": f"tensor parallel over {n} x {gpu}",
            "pipeline": f"pipelined over {n} x {gpu}", "data_parallel": f"per GPU, data parallel over {n} x {gpu}",
            "offload": f"with CPU offload on 1 x {gpu}", "streaming": f"streaming layers on 1 x {gpu}"}[strategy]


def evaluate(check: Check, resolved: ResolvedModel) -> CheckResult:
    """Plan ``check`` on its GPUs and judge it (pass / fail). Raises LlmMemError when the model and
    workload cannot be estimated (the caller turns that into an ``error`` result)."""
    from llm_mem import planner as pl

    w: Workload = check.workload
    mx = resolved.spec.max_position_embeddings
    if not check.context_given and mx and mx < w.context:
        w = w.model_copy(update={"context": mx})
    budget = pl.budget(check.gpu, w.runtime)
    free = headroom_bytes(check.headroom, budget)
    limit = budget - free
    # training: the estimate is per data-parallel GPU (workload.gpus), so plan one GPU of them
    count = 1 if w.train else check.count
    plan = pl.plan(resolved, w, [(check.gpu, count)], host_ram=check.host_ram)
    label = "data_parallel" if w.train and check.count > 1 else None
    options = list(plan.options)
    if free > 0 and any(o.strategy == "offload" for o in options):
        # the planner fills the budget with layers; with a headroom, place fewer on the GPU
        off = pl.plan(resolved, w, [(_shrunk(check.gpu, w.runtime, free), count)], host_ram=check.host_ram)
        options = [o for o in options if o.strategy != "offload"]
        options += [o.model_copy(update={"budget_bytes": budget}) for o in off.options if o.strategy == "offload"]
    options.sort(key=lambda o: (_ORDER[o.strategy], o.gpus))
    base = dict(name=check.name, model=resolved.name, gpu=check.gpu.id, count=check.count,
                budget_bytes=budget, headroom_bytes=free, line=check.line)

    def strategy_of(o: PlanOption) -> str:
        return label if (label and o.strategy == "single") else o.strategy

    def how(o: PlanOption) -> str:
        s = strategy_of(o)
        return _words(s, check.count if s == "data_parallel" else o.gpus, check.gpu.id)

    def result(status: Status, o: PlanOption, reason: str) -> CheckResult:
        return CheckResult(status=status, strategy=strategy_of(o), per_gpu_bytes=o.per_gpu_bytes, reason=reason,
                           **base)

    passing = [o for o in options if o.fits and o.per_gpu_bytes <= limit]
    for o in passing:
        if o.strategy in RESIDENT or o.strategy in check.allow:
            why = (f"fits {how(o)}: {_gb(o.per_gpu_bytes)} of {_gb(budget)} usable per GPU ({w.runtime}), "
                   f"{_gb(budget - o.per_gpu_bytes)} free" + (f" >= {_gb(free)} headroom" if free else ""))
            if o.strategy in ALLOWABLE:
                why += f"; {o.reason}"
            return result("pass", o, why)
    # nothing passes: explain with the resident option (what the deployment asked for)
    resident = [o for o in plan.options if o.strategy in RESIDENT]
    if not resident:
        return CheckResult(status="fail", reason=f"the planner has no resident option for {check.count} x "
                           f"{check.gpu.id} ({'training' if w.train else 'inference'})", **base)
    o = resident[0]
    if o.fits:
        why = (f"fits {how(o)} but leaves {_gb(budget - o.per_gpu_bytes)} of {_gb(budget)} free per GPU, "
               f"under the {_gb(free)} headroom asked (min_headroom)")
    elif o.per_gpu_bytes > budget:
        why = (f"does not fit {how(o)}: needs {_gb(o.per_gpu_bytes)} per GPU, {_gb(budget)} usable "
               f"({w.runtime}), {_gb(o.per_gpu_bytes - limit)} short"
               + (f" counting the {_gb(free)} headroom" if free else ""))
    else:  # e.g. a tensor-parallel degree that does not divide the attention heads
        why = f"does not fit {how(o)}: {o.reason}"
    others = [x for x in passing if x.strategy in ALLOWABLE and x.strategy not in check.allow]
    if others:
        why += "; would run with " + " or ".join(x.strategy for x in others) + " (not allowed: add it to allow)"
    return result("fail", o, why)


def run_checks(checks: CheckSet, resolve: Optional[Callable[..., ResolvedModel]] = None) -> CheckReport:
    """Evaluate every check. A model that cannot be resolved or estimated (unknown, gated, Hub
    unreachable or offline) is an ``error`` result naming the entry's line, never a pass."""
    if resolve is None:
        from llm_mem.sources import resolve_model as resolve
    cache: dict[tuple[str, Optional[str]], Any] = {}
    results: list[CheckResult] = []
    for c in checks.checks:
        key = (c.model, c.revision)
        if key not in cache:
            try:
                cache[key] = resolve(c.model, revision=c.revision)
            except LlmMemError as err:
                cache[key] = err
        got = cache[key]
        try:
            if isinstance(got, LlmMemError):
                raise got
            results.append(evaluate(c, got))
        except LlmMemError as err:
            results.append(CheckResult(name=c.name, model=c.model, gpu=c.gpu.id, count=c.count, status="error",
                                       reason=f"{c.where}: {err.one_line()}" if c.where else err.one_line(),
                                       line=c.line))
    return CheckReport(file=checks.file, results=results, passed=sum(r.status == "pass" for r in results),
                       failed=sum(r.status == "fail" for r in results),
                       errors=sum(r.status == "error" for r in results))


def select(checks: CheckSet, names: list[str]) -> CheckSet:
    """Only the named entries (``--only``); an unknown name is a UsageError listing the names."""
    if not names:
        return checks
    if checks.file is None:
        raise UsageError("--only picks entries of a check file", "give the FILE, or drop --only")
    known = {c.name for c in checks.checks}
    missing = [n for n in names if n not in known]
    if missing:
        raise UsageError(f"no check named {missing[0]!r} in {checks.file or 'the command line'}",
                         f"names: {', '.join(sorted(known))}")
    return checks.model_copy(update={"checks": [c for c in checks.checks if c.name in names]})


def junit_xml(report: CheckReport) -> str:
    """The report as JUnit XML: testsuite ``llm-mem``, one testcase per entry, ``<failure>`` for a
    fail and ``<error>`` for an entry that could not be evaluated, each with the reason."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="llm-mem", tests=str(len(report.results)), failures=str(report.failed),
                       errors=str(report.errors), skipped="0")
    if report.file:
        suite.set("file", report.file)
    classname = "llm-mem.check" + (f".{Path(report.file).stem}" if report.file else "")
    for r in report.results:
        case = ET.SubElement(suite, "testcase", name=r.name, classname=classname)
        if report.file and r.line:
            case.set("file", report.file)
            case.set("line", str(r.line))
        if r.status == "fail":
            ET.SubElement(case, "failure", message=r.reason, type="does-not-fit").text = r.reason
        elif r.status == "error":
            ET.SubElement(case, "error", message=r.reason, type="check-error").text = r.reason
        else:
            ET.SubElement(case, "system-out").text = r.reason
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
