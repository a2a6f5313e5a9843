"""Training plans: the workload on one GPU (or the data-parallel count asked for), and when that does not fit,
the fewest GPUs that shard it: the workload's own --zero / --fsdp, or else PyTorch FSDP2 full sharding
(llm_mem.estimators.fsdp), the sharding transformers' Trainer and TRL reach through accelerate; when data
parallelism cannot fit it (activations and logits are not split), the fewest GPUs of a Megatron-LM layout
(tensor, sequence and context parallel: llm_mem.estimators.megatron)."""

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
    elif "tensor_model_parallel_size" in update:
        flags = [f"--tensor-model-parallel-size {tp}"] * (tp > 1) + ["--sequence-parallel"] * w.sequence_parallel
        flags += [f"--context-parallel-size {cp}"] * (cp > 1) + ["--zero 1"] * bool(w.zero) + [f"--gpus {n}"]
        what += f" (add {' '.join(flags)})"
    layout = LayoutInfo(tensor_parallel_size=tp, context_parallel_size=cp, data_parallel_size=n // (tp * cp))
    return make_option("tensor_parallel" if tp > 1 else "single", r, gpu, n, r.total_bytes, r.total_high_bytes, b,
                       why_line(r.total_bytes, b, what), host_bytes=r.host_bytes, layout=layout,
                       nodes=nodes_for(n, gpu.node_size or DEFAULT_NODE_SIZE))


def training_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """The workload on ``count`` GPUs (one when not given); with no count and no fit, the fewest GPUs (powers
    of two up to the search's cap) that shard it enough."""
    w = ctx.workload
    first = _option(ctx, gpu, count or w.gpus, {})
    sharded = bool(w.zero) or w.fsdp is not None or w.megatron
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
        if w.megatron:
            hint = (" (data parallelism splits no activations: try --grad-checkpointing, a larger "
                    "--tensor-model-parallel-size or --context-parallel-size)")
        last = last.model_copy(update={"reason": f"does not fit on up to {MAX_SEARCH_GPUS} GPUs: {last.reason}{hint}"})
    found = [o for o in (borderline, last) if o is not None]
    options = [first] + (found if len(found) < 2 or found[0] is not found[1] else found[:1])
    if (last is None or last.verdict != "fits") and not sharded:
        mega = megatron_option(ctx, gpu)
        if mega is not None:
            options.append(mega)
    return options


# Context-parallel sizes the search tries (Megatron's ring attention; powers of two, as its 2 x CP chunks).
_CP_SIZES = (1, 2, 4, 8, 16, 32)


def megatron_option(ctx: Context, gpu: Gpu) -> PlanOption | None:
    """When data parallelism cannot fit full training (its activations and logits are not split), the fewest
    GPUs of a Megatron-LM layout that do: TP up to a node (with sequence parallelism) x CP x DP, the
    distributed optimizer over DP x CP (llm_mem.estimators.megatron). Ties go to less TP, then less CP.
    None when no layout within the search's GPUs fits, or the workload is not one Megatron sizes."""
    from llm_mem.choices import Attention, TrainMode
    from llm_mem.estimators.megatron import MEGATRON_OPTIMIZERS

    w, spec = ctx.workload, ctx.model.spec
    if w.train is not TrainMode.full or w.zero > 1 or str(w.offload) != "none" or w.trainer is not None or \
            w.optimizer not in MEGATRON_OPTIMIZERS or spec.mixers is not None:
        return None
    node = gpu.node_size or DEFAULT_NODE_SIZE
    tps = [t for t in (1, 2, 4, 8) if t <= node and spec.num_heads % t == 0 and spec.num_kv_heads % t == 0]
    cps = [c for c in _CP_SIZES if c == 1 or (w.attention is not Attention.eager and w.context % (2 * c) == 0)]
    best: tuple[int, int, int, PlanOption] | None = None
    for tp in tps:
        for cp in cps:
            if tp * cp == 1 or tp * cp > MAX_SEARCH_GPUS:
                continue
            found = _fewest(ctx, gpu, tp, cp, best[0] if best else MAX_SEARCH_GPUS)
            if found is not None and (best is None or (found.gpus, tp, cp) < best[:3]):
                best = (found.gpus, tp, cp, found)
    return best[3] if best else None


def _fewest(ctx: Context, gpu: Gpu, tp: int, cp: int, cap: int) -> PlanOption | None:
    """The fewest GPUs (TP x CP x a power of two, at most ``cap``) on which this layout fits."""
    def at(n: int) -> PlanOption | None:
        update: dict[str, object] = {"tensor_model_parallel_size": tp, "sequence_parallel": tp > 1,
                                     "context_parallel_size": cp, "zero": 1 if n > tp else 0}
        try:
            return _option(ctx, gpu, n, update)
        except LlmMemError:
            return None

    counts = []
    n = tp * cp
    while n <= cap:
        counts.append(n)
        n *= 2
    if not counts:
        return None
    top = at(counts[-1])  # the distributed optimizer shrinks with DP; activations do not: try the most first
    if top is None or top.verdict != "fits":
        return None
    lo, hi = 0, len(counts) - 1  # counts[hi] fits
    while lo < hi:
        mid = (lo + hi) // 2
        opt = at(counts[mid])
        if opt is not None and opt.verdict == "fits":
            hi, top = mid, opt
        else:
            lo = mid + 1
    return top if top.gpus == counts[hi] else at(counts[hi])
