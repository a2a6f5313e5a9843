"""`llm-mem plan --gpu X` without a model: which bundled models fit that device, at which
precision, with what largest context, and how (resident, offload or streaming)."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from llm_mem.catalog import Gpu
from llm_mem.estimate import estimate
from llm_mem.planner.model import budget
from llm_mem.report import Workload
from llm_mem.sources.bundled import load_bundled_config, registry
from llm_mem.sources.parse import parse_config
from llm_mem.spec import ResolvedModel, Source

FIT_PRECISIONS = ("bf16", "int8", "int4")
_CONTEXT_STEP = 256  # the answer is rounded down to a multiple of 256 tokens


class FitRow(BaseModel):
    """One model at one precision on the device."""

    model_config = ConfigDict(frozen=True)

    model: str
    precision: str
    strategy: str  # single / tensor_parallel / streaming / none
    max_context: int | None  # largest context that fits resident (None when it does not)
    bytes_at_4k: int | None
    reason: str


class FitTable(BaseModel):
    """The answer to "what can I run on this GPU?"."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = "1"
    gpu: str
    count: int
    budget_bytes: int
    runtime: str
    rows: list[FitRow]


def _largest_steps(total: Callable[[int], int], t1: int, cap: int, max_steps: int) -> int:
    """Largest k in [1, max_steps] with total(k * 256) <= cap, given total(256) = t1 <= cap.
    Totals are linear in context except where sliding windows cap the KV cache, so a linear
    guess from two points lands on the answer; a bracketed binary search makes it exact."""
    step = _CONTEXT_STEP
    if total(max_steps * step) <= cap:
        return max_steps
    lo, hi = 1, max_steps  # total(lo) fits, total(hi) does not
    slope = (total(2 * step) - t1) / step
    if slope > 0:
        guess = min(max(int(1 + (cap - t1) / slope / step), 1), max_steps - 1)
        if total(guess * step) <= cap:
            lo = guess
            hi = guess + 1 if total((guess + 1) * step) > cap else hi
        else:
            hi = guess
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if total(mid * step) <= cap:
            lo = mid
        else:
            hi = mid
    return lo


def fit_table(gpu: Gpu, count: int | None, workload: Workload) -> FitTable:
    """Every bundled model x precision: the largest resident context, else whether streaming works."""
    n = count or 1
    b = budget(gpu, workload.runtime)
    rows: list[FitRow] = []
    for entry in registry():
        spec = parse_config(load_bundled_config(entry))
        m = ResolvedModel(name=entry.id, spec=spec, source=Source(kind="bundled", location=entry.file))
        max_pos = spec.max_position_embeddings or 131072
        for prec in FIT_PRECISIONS:
            w = workload.model_copy(update={"precision": prec, "quant": None})
            try:
                small = estimate(m, w.model_copy(update={"context": _CONTEXT_STEP}))
            except Exception as e:
                rows.append(FitRow(model=entry.id, precision=prec, strategy="none", max_context=None,
                                   bytes_at_4k=None, reason=str(e)))
                continue
            at4k = estimate(m, w.model_copy(update={"context": min(4096, max_pos)})).total_bytes
            if small.total_bytes > b * n:
                stream = small.weights.largest_unit_bytes + small.component("runtime_overhead")
                ok = stream <= b
                rows.append(FitRow(model=entry.id, precision=prec, strategy="streaming" if ok else "none",
                                   max_context=None, bytes_at_4k=at4k,
                                   reason=(f"only by layer streaming (largest piece {stream / 1e9:.1f} GB)" if ok
                                           else "too large even for layer streaming")))
                continue
            ctx_steps = _largest_steps(lambda c: estimate(m, w.model_copy(update={"context": c})).total_bytes,
                                       small.total_bytes, b * n, max_pos // _CONTEXT_STEP)
            ctx = ctx_steps * _CONTEXT_STEP
            rows.append(FitRow(model=entry.id, precision=prec, strategy="single" if n == 1 else "tensor_parallel",
                               max_context=ctx, bytes_at_4k=at4k,
                               reason="full context" if ctx >= max_pos else f"KV cache limits context to {ctx:,}"))
    return FitTable(gpu=gpu.id, count=n, budget_bytes=b, runtime=workload.runtime, rows=rows)
