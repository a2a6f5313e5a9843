"""Training plans: the workload on one GPU (or the data-parallel count asked for), and when that does not fit,
the fewest GPUs that shard it: the workload's own --zero / --fsdp, or else PyTorch FSDP2 full sharding
(llm_mem.estimators.fsdp), the sharding transformers' Trainer and TRL reach through accelerate."""

from __future__ import annotations

from llm_mem.catalog import Gpu
from llm_mem.choices import Fsdp
from llm_mem.errors import LlmMemError
from llm_mem.planner.common import MAX_SEARCH_GPUS, Context, make_option, report_for, why_line
from llm_mem.planner.layouts import DEFAULT_NODE_SIZE, nodes_for
from llm_mem.planner.model import LayoutInfo, PlanOption, budget


def _describe(zero: int, fsdp: Fsdp | None, n: int, shard: int, tp: int = 1, cp: int = 1) -> str:
    if tp * cp > 1:  # Megatron-LM's layout (llm_mem.estimators.megatron)
        grid = " x ".join([f"TP {tp}"] * (tp > 1) + [f"CP {cp}"] * (cp > 1) + [f"DP {n // (tp * cp)}"])
        return f"Megatron {grid} over {n} GPUs" + (", distributed optimizer" if zero else "")
    if n == 1:
        return "one GPU"
    if fsdp is Fsdp.hybrid:
        return f"FSDP2 HSDP over {n} GPUs (shard groups of {shard})"
    if fsdp is Fsdp.full:
        return f"FSDP2 full shard over {n} GPUs"
    return f"data parallel over {n} GPUs" + (f", ZeRO-{zero}" if zero else "")


def _option(ctx: Context, gpu: Gpu, n: int, update: dict[str, object]) -> PlanOption:
    changes = dict(update)
    if n != ctx.workload.gpus:
        changes["gpus"] = n
    r = report_for(ctx, gpu, **changes) if changes else report_for(ctx, gpu)
    w = r.workload
    b = budget(gpu, "transformers")
    tp, cp = w.tensor_model_parallel_size, w.context_parallel_size
    what = _describe(w.zero, w.fsdp, n, w.shard_group, tp, cp)
    if "fsdp" in update:
        what += f" (add --fsdp {update['fsdp']} --gpus {n})"
    return make_option("single", r, gpu, n, r.total_bytes, r.total_high_bytes, b, why_line(r.total_bytes, b, what),
                       host_bytes=r.host_bytes, layout=LayoutInfo(tensor_parallel_size=tp, context_parallel_size=cp,
                                                      data_parallel_size=n // (tp * cp)),
                       nodes=nodes_for(n, gpu.node_size or DEFAULT_NODE_SIZE))


def training_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """The workload on ``count`` GPUs (one when not given); with no count and no fit, the fewest GPUs (powers
    of two up to the search's cap) that shard it enough."""
    w = ctx.workload
    first = _option(ctx, gpu, count or w.gpus, {})
    sharded = bool(w.zero) or w.fsdp is not None or w.tensor_model_parallel_size * w.context_parallel_size > 1
    if first.fits or gpu.is_budget:
        return [first]
    if count is not None:  # the count is given: shard over it when the workload does not
        return [first] if sharded or count == 1 else [first, _option(ctx, gpu, count, {"fsdp": Fsdp.full})]
    update: dict[str, object] = {} if sharded else {"fsdp": Fsdp.full}
    last: PlanOption | None = None
    borderline: PlanOption | None = None  # the fewest GPUs that fit only inside the error band, shown too
    n = max(2, w.gpus * 2)
    while n <= MAX_SEARCH_GPUS:
        try:
            opt = _option(ctx, gpu, n, update)
        except LlmMemError:  # a layout this count cannot take (an HSDP shard size that does not divide it)
            n *= 2
            continue
        last = opt
        if opt.verdict == "fits":
            break
        if opt.fits and borderline is None:
            borderline = opt
        n *= 2
    if last is not None and not last.fits:
        hint = "" if w.grad_checkpointing else " (activations are not sharded: try --grad-checkpointing)"
        if w.tensor_model_parallel_size * w.context_parallel_size > 1:
            hint = (" (data parallelism splits no activations: try --grad-checkpointing, a larger "
                    "--tensor-model-parallel-size or --context-parallel-size)")
        last = last.model_copy(update={"reason": f"does not fit on up to {MAX_SEARCH_GPUS} GPUs: {last.reason}{hint}"})
    found = [o for o in (borderline, last) if o is not None]
    return [first] + (found if len(found) < 2 or found[0] is not found[1] else found[:1])
