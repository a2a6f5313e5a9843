"""plan(model, workload, gpus) -> Plan: which strategies fit, at what cost, and which we recommend.

``model`` holds the answer's types and the runtimes' budgets, ``layouts`` the layouts the engines'
recipes use, ``strategies`` the options per runtime, ``speed`` the roofline bounds, ``launch`` the
commands, ``fit`` the table for ``plan --gpu X`` without a model, ``sweep`` memory against context or
batch as a chart.
"""

from __future__ import annotations

import os

from llm_mem.catalog import Gpu
from llm_mem.choices import Runtime
from llm_mem.estimate import estimate
from llm_mem.layout import tp_problem
from llm_mem.planner.model import LayoutInfo, Plan, PlanOption, Strategy, Verdict, budget, verdict
from llm_mem.planner.speed import bytes_read_per_step
from llm_mem.planner.strategies import Context, options_for, pool_options
from llm_mem.report import Report
from llm_mem.requests import DEFAULT_CPU_GBPS, DEFAULT_DISK_GBPS
from llm_mem.spec import ResolvedModel
from llm_mem.workload import Workload

# The GPUs `plan MODEL` compares when no --gpu is given: the data-center and consumer cards most
# deployments use (NVIDIA H100 and A100, AMD MI250, L40S, RTX 4090).
DEFAULT_PLAN_GPUS = ("H100-SXM-80GB", "A100-SXM-80GB", "MI250-2X64GB", "L40S-48GB", "RTX-4090-24GB")
# --max-context's upper bound when a config names no max_position_embeddings: 128k, Llama 3.1's
# window and the longest common default; --max-batch searches up to 4096 sequences (vLLM's largest
# default max_num_seqs is 1024, llama.cpp's slots 256 at most).
UNKNOWN_MAX_CONTEXT = 131072
MAX_BATCH_SEARCH = 4096
RESIDENT: tuple[Strategy, ...] = ("single", "tensor_parallel", "pipeline")
_ORDER = {"single": 0, "tensor_parallel": 1, "pipeline": 2, "expert_offload": 3, "offload": 4, "streaming": 5}

#: A target the planner places the model on: (one GPU kind, a count or None), or a pool of mixed GPUs.
Target = tuple[Gpu, int | None] | list[Gpu]


def recommend(options: list[PlanOption]) -> PlanOption | None:
    """The first fitting option in order single > TP > pipeline > expert offload > offload > streaming,
    fewest GPUs first; a clear fit before a borderline one."""
    fitting = [o for o in options if o.fits]
    if not fitting:
        return None
    return min(fitting, key=lambda o: (o.verdict != "fits", _ORDER[o.strategy], o.gpus))


def host_ram_bytes() -> int | None:
    """This machine's physical RAM (POSIX sysconf), the default host budget for offload."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def plan(model: ResolvedModel, workload: Workload, gpus: list[Target],
         disk_gbps: float = DEFAULT_DISK_GBPS, cpu_gbps: float = DEFAULT_CPU_GBPS,
         report: Report | None = None, host_ram: int | None = None, headroom: int = 0,
         hint: bool = True) -> Plan:
    """Evaluate every strategy on each target and pick a recommendation. ``headroom``: bytes of each
    GPU's budget an offload split must leave free (a check's min_headroom). ``hint``: when transformers
    cannot hold the model, name vLLM's layout in a note (a second search over every GPU count; the
    searches that call plan() at many values and show no notes turn it off)."""
    ctx = Context(model, workload, disk_gbps, cpu_gbps, host_ram, headroom, report)
    options: list[PlanOption] = []
    for target in gpus:
        if isinstance(target, list):
            options += pool_options(ctx, target)
        else:
            options += options_for(ctx, *target)
    base = report or estimate(model, workload, gpus[0][0] if gpus and isinstance(gpus[0], tuple) else None)
    notes = ["speeds are roofline upper bounds: memory bandwidth for decode, peak dense TFLOPS for prefill"]
    best = recommend(options)
    if hint and workload.runtime is Runtime.transformers and workload.train is None and (
            best is None or best.strategy not in RESIDENT):
        pointer = _serving_hint(ctx, model, workload, gpus)
        if pointer:
            notes.insert(0, pointer)
    return Plan(model=model.name, workload=workload, total_bytes=base.total_bytes, options=options,
                recommended=best, notes=notes + base.notes)


def _serving_hint(ctx: Context, model: ResolvedModel, workload: Workload, gpus: list[Target]) -> str | None:
    """When transformers cannot hold the model on one machine: the vLLM layout that can (vLLM serves
    across machines with Ray; transformers' device_map is one process), as a pointer, not an option."""
    from llm_mem.errors import LlmMemError

    try:
        w = workload.replace(runtime=Runtime.vllm)
        vctx = Context(model, w, ctx.disk_gbps, ctx.cpu_gbps, ctx.host_ram, ctx.headroom, None)
        found = [o for t in gpus if isinstance(t, tuple) for o in options_for(vctx, *t)]
    except LlmMemError:
        return None
    best = recommend([o for o in found if o.strategy in RESIDENT])
    if best is None:
        return None
    return (f"transformers holds the model on one machine only (device_map is one process); vLLM serves it "
            f"on {best.gpus} x {best.gpu}: {best.reason} (add --runtime vllm)")


def largest_fitting(model: ResolvedModel, workload: Workload, gpu: Gpu, count: int | None, field: str,
                    upper: int, limit: int | None = None) -> tuple[int, Plan | None]:
    """Largest ``field`` (context or batch) for which a resident strategy fits on ``count`` GPUs (one
    device unless a count is given); 0 if none. The search starts below ``upper``; when ``upper`` still
    fits it doubles, up to ``limit``, so the answer is never the search's own cap unless it is ``limit``
    (which the caller reports as "at least")."""
    count = count or 1

    def ok(v: int) -> Plan | None:
        p = plan(model, workload.replace(**{field: v}), [(gpu, count)], hint=False)
        r = p.recommended
        return p if r is not None and r.strategy in RESIDENT else None

    best = ok(1)
    if best is None:
        return 0, None
    lo, hi = 1, max(upper, 1)
    limit = max(limit or hi, hi)
    top = ok(hi) if hi > 1 else best
    while top is not None:  # the upper end fits: look further, or stop at the limit
        lo, best = hi, top
        if hi >= limit:
            return hi, best
        hi = min(hi * 2, limit)
        top = ok(hi)
    hi -= 1  # ok(hi) does not fit
    while lo < hi:  # invariant: ok(lo) fits, and `best` is its plan
        mid = (lo + hi + 1) // 2
        p = ok(mid)
        if p is not None:
            lo, best = mid, p
        else:
            hi = mid - 1
    return lo, best


def _tp_ok(report: Report, n: int) -> str | None:
    """Why TP ``n`` cannot split the report's model (kept for callers of the first planner)."""
    a = report.architecture
    if a.heads % n:
        return f"TP {n} does not divide {a.heads} attention heads"
    if a.attention != "mla" and a.kv_heads % n and n % a.kv_heads:
        return f"TP {n} and {a.kv_heads} KV heads neither divide the other"
    return None


__all__ = ["DEFAULT_PLAN_GPUS", "MAX_BATCH_SEARCH", "RESIDENT", "UNKNOWN_MAX_CONTEXT", "LayoutInfo", "Plan",
           "PlanOption", "Runtime", "Strategy", "Target", "Verdict", "budget", "bytes_read_per_step",
           "host_ram_bytes", "largest_fitting", "plan", "recommend", "tp_problem", "verdict"]
