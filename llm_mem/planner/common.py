"""What every strategy shares: the planning context, the estimate it plans with, one option with its
verdict and the one-line reason."""

from __future__ import annotations

from dataclasses import dataclass

from llm_mem.catalog import Gpu
from llm_mem.estimate import estimate
from llm_mem.planner import launch
from llm_mem.planner.model import PlanOption, Strategy, verdict
from llm_mem.report import Report
from llm_mem.spec import ResolvedModel
from llm_mem.units import GB
from llm_mem.workload import Workload

# The most GPUs a search tries before it says "does not fit": 64 nodes of 8.
MAX_SEARCH_GPUS = 512


@dataclass(frozen=True)
class Context:
    """Everything a strategy needs besides the GPU."""

    model: ResolvedModel
    workload: Workload
    disk_gbps: float
    cpu_gbps: float
    host_ram: int | None
    headroom: int = 0
    report: Report | None = None  # a calibrated report (--verify) to plan with instead of estimating


def report_for(ctx: Context, gpu: Gpu | None, **update: object) -> Report:
    if ctx.report is not None and not update:
        return ctx.report
    w = ctx.workload.replace(**update) if update else ctx.workload
    return estimate(ctx.model, w, gpu)


def gguf_repo(ctx: Context) -> str | None:
    from llm_mem.sources.bundled import find_bundled, quantized_checkpoint

    b = find_bundled(ctx.model.name)
    q = quantized_checkpoint(b.id, "gguf") if b is not None else None
    return q.repo if q is not None else None


def make_option(strategy: Strategy, r: Report, gpu: Gpu, n: int, need: int, high: int, b: int, reason: str,
            **kw: object) -> PlanOption:
    fits, v, margin = verdict(need, high, b)
    fields: dict[str, object] = dict(strategy=strategy, fits=fits, verdict=v, margin_bytes=margin,
                                     runtime=str(r.workload.runtime), gpus=n, gpu=gpu.id, per_gpu_bytes=need,
                                     per_gpu_high_bytes=high, budget_bytes=b, weights_format=r.weights.format,
                                     checkpoint=launch.checkpoint_id(r.model, r), reason=reason)
    fields.update(kw)
    if not fits:
        fields["launch"] = []
    return PlanOption.model_validate(fields)


def why_line(need: int, b: int, what: str) -> str:
    short = "" if need <= b else f": {(need - b) / GB:.1f} GB short"
    return f"{what}: {need / GB:.1f} GB per GPU of {b / GB:.1f} GB usable{short}"


