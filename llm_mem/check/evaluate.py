"""Evaluating checks: plan each entry on its GPUs with the same planner as `llm-mem plan`, and
judge it (pass / fail / error)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from llm_mem.check.file import RESIDENT_STRATEGIES as RESIDENT
from llm_mem.check.file import Check, CheckSet, headroom_bytes
from llm_mem.check.report import CheckReport, CheckResult, Status
from llm_mem.errors import LlmMemError, UsageError
from llm_mem.units import fmt_gb
from llm_mem.workload import resolve_workload

if TYPE_CHECKING:
    from llm_mem.planner import PlanOption
    from llm_mem.spec import ResolvedModel

ALLOWABLE = ("offload", "streaming")
_ORDER = {"single": 0, "tensor_parallel": 1, "pipeline": 2, "data_parallel": 3, "expert_offload": 4, "offload": 4,
          "streaming": 5}
# The planner's strategies a check names otherwise: llama.cpp's MoE experts in host RAM (--n-cpu-moe) are
# CPU offload, passed by `allow: [offload]` and reported as `offload` (the reason names the experts).
_CHECK_STRATEGY = {"expert_offload": "offload"}


def _gb(n: int) -> str:
    return fmt_gb(n)


def _words(strategy: str, n: int, gpu: str) -> str:
    """How an option runs, in words: 'tensor parallel over 2 x L4-24GB'."""
    return {"single": f"on 1 x {gpu}", "tensor_parallel": f"tensor parallel over {n} x {gpu}",
            "pipeline": f"pipelined over {n} x {gpu}", "data_parallel": f"per GPU, data parallel over {n} x {gpu}",
            "offload": f"with CPU offload on 1 x {gpu}", "streaming": f"streaming layers on 1 x {gpu}"}[strategy]


def evaluate(check: Check, resolved: ResolvedModel) -> CheckResult:
    """Plan ``check`` on its GPUs and judge it (pass / fail). Raises LlmMemError when the model and
    workload cannot be estimated (the caller turns that into an ``error`` result)."""
    from llm_mem import planner as pl

    gguf = resolved.checkpoint is not None and resolved.checkpoint.format == "gguf"
    w = resolve_workload(check.workload, resolved.spec, gguf_file=gguf)
    budget = pl.budget(check.gpu, w.runtime)
    free = headroom_bytes(check.headroom, budget)
    limit = budget - free
    # training: the estimate is per data-parallel GPU (workload.gpus), so plan one GPU of them
    count = 1 if w.train else check.count
    # the offload split leaves the headroom free: the planner places fewer layers on the GPU
    plan = pl.plan(resolved, w, [(check.gpu, count)], host_ram=check.host_ram, headroom=free, hint=False)
    label = "data_parallel" if w.train and check.count > 1 else None
    options = list(plan.options)
    options.sort(key=lambda o: (_ORDER[o.strategy], o.gpus))
    base = dict(name=check.name, model=resolved.name, gpu=check.gpu.id, count=check.count,
                budget_bytes=budget, headroom_bytes=free, line=check.line)

    def strategy_of(o: PlanOption) -> str:
        return label if (label and o.strategy == "single") else _CHECK_STRATEGY.get(o.strategy, o.strategy)

    def how(o: PlanOption) -> str:
        s = strategy_of(o)
        return _words(s, check.count if s == "data_parallel" else o.gpus, check.gpu.id)

    def result(status: Status, o: PlanOption, reason: str) -> CheckResult:
        return CheckResult(status=status, strategy=strategy_of(o), per_gpu_bytes=o.per_gpu_bytes, reason=reason,
                           **base)

    passing = [o for o in options if o.fits and o.per_gpu_bytes <= limit]
    for o in passing:
        if o.strategy in RESIDENT or strategy_of(o) in check.allow:
            why = (f"fits {how(o)}: {_gb(o.per_gpu_bytes)} of {_gb(budget)} usable per GPU ({w.runtime}), "
                   f"{_gb(budget - o.per_gpu_bytes)} free" + (f" >= {_gb(free)} headroom" if free else ""))
            if strategy_of(o) in ALLOWABLE:
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
    others = list(dict.fromkeys(strategy_of(x) for x in passing if strategy_of(x) in ALLOWABLE
                                and strategy_of(x) not in check.allow))
    if others:
        why += "; would run with " + " or ".join(others) + " (not allowed: add it to allow)"
    return result("fail", o, why)


def run_checks(checks: CheckSet, resolve: Optional[Callable[..., ResolvedModel]] = None) -> CheckReport:
    """Evaluate every check. A model that cannot be resolved or estimated (unknown, gated, Hub
    unreachable or offline) is an ``error`` result naming the entry's line, never a pass."""
    if resolve is None:
        from llm_mem.sources import resolve_model

        resolve = resolve_model
    cache: dict[tuple[str, Optional[str], Optional[str]], Any] = {}
    results: list[CheckResult] = []
    for c in checks.checks:
        key = (c.model, c.revision, c.workload.quant)
        if key not in cache:
            try:  # a GGUF repo's file is the one its quant names (llama.cpp's -hf repo:QUANT)
                cache[key] = resolve(c.model, revision=c.revision, quant=c.workload.quant)
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


