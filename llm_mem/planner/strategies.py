"""The strategies, per runtime: resident on one GPU or a layout over several, CPU offload of layers,
MoE experts in host RAM, layer streaming. Each option carries its verdict, speed bound and launch lines."""

from __future__ import annotations

from dataclasses import dataclass

from llm_mem.catalog import Gpu
from llm_mem.choices import Runtime
from llm_mem.errors import UsageError
from llm_mem.estimate import estimate
from llm_mem.layout import Layout, tp_problem
from llm_mem.planner import launch, speed
from llm_mem.planner.layouts import DEFAULT_NODE_SIZE, nodes_for, vllm_layout
from llm_mem.planner.model import LayoutInfo, PlanOption, Strategy, budget, verdict
from llm_mem.report import Report
from llm_mem.runtimes.llamacpp import FIT_TARGET
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


def _report(ctx: Context, gpu: Gpu | None, **update: object) -> Report:
    if ctx.report is not None and not update:
        return ctx.report
    w = ctx.workload.replace(**update) if update else ctx.workload
    return estimate(ctx.model, w, gpu)


def _gguf_repo(ctx: Context) -> str | None:
    from llm_mem.sources.bundled import find_bundled, quantized_checkpoint

    b = find_bundled(ctx.model.name)
    q = quantized_checkpoint(b.id, "gguf") if b is not None else None
    return q.repo if q is not None else None


def _option(strategy: Strategy, r: Report, gpu: Gpu, n: int, need: int, high: int, b: int, reason: str,
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


def _why(need: int, b: int, what: str) -> str:
    short = "" if need <= b else f": {(need - b) / GB:.1f} GB short"
    return f"{what}: {need / GB:.1f} GB per GPU of {b / GB:.1f} GB usable{short}"


# ---- vLLM -------------------------------------------------------------------------------------------
def _vllm(ctx: Context, gpu: Gpu, layout: Layout) -> PlanOption:
    r = _report(ctx, gpu, tensor_parallel_size=layout.tp, pipeline_parallel_size=layout.pp,
                data_parallel_size=layout.dp, enable_expert_parallel=layout.ep)
    cap = r.capacity
    assert cap is not None
    node = gpu.node_size or DEFAULT_NODE_SIZE
    n = layout.gpus
    nodes = nodes_for(n, node)
    bw, bw_note = speed.gpu_bandwidth(gpu)
    step = speed.bytes_read_per_step(r) / layout.pp / (bw * GB)  # stages run one after another
    link_gbps, link_name = speed.link(gpu, layout.tp)
    step = step * layout.pp + speed.allreduce_seconds(r, layout.tp, link_gbps, r.workload.batch)
    tps = r.workload.batch / step if step > 0 else None
    what = f"vLLM {layout.describe()}" + (f" on {nodes} nodes of {node}" if nodes > 1 else "")
    reason = _why(r.total_bytes, cap.budget_bytes, what) + (
        f"; KV pool {cap.kv_pool_tokens:,} tokens, {cap.max_concurrency:g} requests of {r.workload.context:,} at once")
    strategy: Strategy = "single" if n == 1 else ("pipeline" if layout.pp > 1 else "tensor_parallel")
    assumptions = [f"tensor-parallel all-reduces over {link_name}"] if layout.tp > 1 else []
    if bw_note:
        assumptions.append(bw_note)
    return _option(strategy, r, gpu, n, r.total_bytes, r.total_high_bytes, cap.budget_bytes, reason, nodes=nodes,
                   layout=LayoutInfo(tensor_parallel_size=layout.tp, pipeline_parallel_size=layout.pp,
                                     data_parallel_size=layout.dp, enable_expert_parallel=layout.ep),
                   tokens_per_s=tps, prefill_s=speed.prefill_seconds(r, gpu, n), kv_pool_tokens=cap.kv_pool_tokens,
                   max_concurrency=cap.max_concurrency, assumptions=assumptions,
                   launch=launch.vllm_serve(r.model, r, layout.tp, layout.pp, layout.dp, layout.ep, nodes))


def vllm_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """A given layout, or the fewest GPUs in the recipe layout (single GPU first)."""
    w = ctx.workload
    spec = ctx.model.spec
    node = gpu.node_size or DEFAULT_NODE_SIZE
    given = w.given("tensor_parallel_size") or w.given("pipeline_parallel_size") or w.given("data_parallel_size")
    if given:
        layout = Layout(w.tensor_parallel_size, w.pipeline_parallel_size, w.data_parallel_size,
                        w.enable_expert_parallel)
        if count is not None and count != layout.gpus:
            raise UsageError(f"the layout spans {layout.gpus} GPUs but --gpu names {count}",
                             "give the count once: --gpu NxGPU, or -tp/-pp/-dp")
        return [_vllm(ctx, gpu, layout)]
    candidates = [count] if count else range(gpu.devices_per_card, MAX_SEARCH_GPUS + 1, gpu.devices_per_card)
    if gpu.is_budget:
        candidates = [1]
    last: PlanOption | None = None
    out: list[PlanOption] = []
    for n in candidates:
        found = vllm_layout(spec, n, node)
        if found is None:
            if count:
                why = tp_problem(spec, min(n, node)) or f"no tensor x pipeline split of {n} GPUs"
                return [PlanOption(strategy="tensor_parallel", fits=False, runtime="vllm", gpus=n, gpu=gpu.id,
                                   per_gpu_bytes=0, budget_bytes=budget(gpu, "vllm"), reason=why)]
            continue
        layout = found
        if w.enable_expert_parallel and spec.is_moe and layout.tp * layout.dp > 1:
            layout = Layout(layout.tp, layout.pp, layout.dp, True)
        opt = _vllm(ctx, gpu, layout)
        if n == 1 and count is None:
            out.append(opt)  # single GPU, shown even when it does not fit
            if opt.fits:
                return out
            continue
        last = opt
        if opt.fits or count:
            break
    if last is not None:
        if not last.fits and count is None:
            last = last.model_copy(update={"reason": f"does not fit on up to {MAX_SEARCH_GPUS} GPUs: {last.reason}"})
        out.append(last)
    return out


# ---- llama.cpp --------------------------------------------------------------------------------------
def _llamacpp_single(ctx: Context, gpu: Gpu, r: Report, strategy: Strategy, what: str,
                     cpu_moe_layers: int | None = None) -> PlanOption:
    b = budget(gpu, "llamacpp")
    e = r.engine
    assert e is not None
    host_ok = ctx.host_ram is None or r.host_bytes <= ctx.host_ram
    tps, assumptions = _llamacpp_speed(ctx, r, gpu, cpu_moe_layers)
    reason = _why(r.total_bytes, b, what)
    if r.host_bytes:
        reason += f"; {r.host_bytes / GB:.1f} GB in host RAM"
    if not host_ok:
        reason += f", but host RAM is {ctx.host_ram / GB:.0f} GB (--host-ram)"  # type: ignore[operator]
    opt = _option(strategy, r, gpu, 1, r.total_bytes, r.total_high_bytes, b, reason, host_bytes=r.host_bytes,
                  gpu_layers=e.n_gpu_layers, tokens_per_s=tps, cpu_moe_layers=cpu_moe_layers,
                  prefill_s=speed.prefill_seconds(r, gpu, 1), assumptions=assumptions,
                  launch=launch.llama_server(r.model, r, _gguf_repo(ctx), e.n_gpu_layers, e.n_cpu_moe))
    if not host_ok:
        opt = opt.model_copy(update={"fits": False, "verdict": "no", "launch": []})
    return opt


def llamacpp_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """Whole model on one GPU or a layer split over several; else MoE experts or layers in host RAM."""
    spec = ctx.model.spec
    out: list[PlanOption] = []
    base = _report(ctx, gpu)
    if count in (None, 1):
        out.append(_llamacpp_single(ctx, gpu, base, "single", "llama.cpp, every layer on the GPU"))
        if out[0].fits:
            return out
    if (count is not None and count > 1) or (count is None and not gpu.is_budget):
        multi = llamacpp_split(ctx, base, [gpu] * (count or 2), count is None)
        if multi is not None:
            out.append(multi)
            if multi.fits and count is None:
                return out
    if count not in (None, 1):
        return out
    b = budget(gpu, "llamacpp") - FIT_TARGET - ctx.headroom  # what llama.cpp's --fit would leave free
    if spec.is_moe:
        for k in range(1, spec.num_layers + 1):  # experts of the first k layers to host RAM (--n-cpu-moe)
            r = _report(ctx, gpu, n_cpu_moe=k)
            if r.total_bytes <= b:
                out.append(_llamacpp_single(ctx, gpu, r, "expert_offload",
                                            f"llama.cpp, experts of the first {k}/{spec.num_layers} layers in host RAM",
                                            cpu_moe_layers=k))
                break
    lo, hi = 0, spec.num_layers + 1  # -ngl: largest that fits (0: nothing on the GPU)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _report(ctx, gpu, n_gpu_layers=mid).total_bytes <= b:
            lo = mid
        else:
            hi = mid - 1
    if lo >= 1:
        r = _report(ctx, gpu, n_gpu_layers=lo)
        out.append(_llamacpp_single(ctx, gpu, r, "offload", f"llama.cpp -ngl {lo}: {lo - 1}/{spec.num_layers} "
                                    "layers and the output layer on the GPU"))
    return out


def _split_option(ctx: Context, r: Report, pool: list[Gpu], strategy: Strategy, what: str,
                  ngl: int | None = None, cpu_moe: int | None = None) -> PlanOption:
    """One llama.cpp layer split (-sm layer) over ``pool``, -ts by free memory: each GPU holds its share of
    the GPU-resident layers and KV and a whole compute buffer (it does not shrink with fewer layers)."""
    n = len(pool)
    compute = r.component("activations")
    shared = r.component("weights") + r.component("kv_cache")
    budgets = [budget(g, "llamacpp") - (FIT_TARGET + ctx.headroom if strategy != "pipeline" else 0) for g in pool]
    room = [max(bb - compute, 0) for bb in budgets]
    total_room = sum(room)
    share = [x / total_room for x in room] if total_room else [1 / n] * n
    need = [int(shared * s) + compute for s in share]
    worst = max(range(n), key=lambda i: need[i] - budgets[i])
    high = int(need[worst] * (r.total_high_bytes / r.total_bytes)) if r.total_bytes else need[worst]
    names = ", ".join(sorted({g.id for g in pool}))
    reason = _why(need[worst], budgets[worst], f"{what} over {n} GPUs ({names}), -ts by memory")
    if r.host_bytes:
        reason += f"; {r.host_bytes / GB:.1f} GB in host RAM"
    host_ok = ctx.host_ram is None or r.host_bytes <= ctx.host_ram
    if not host_ok:
        reason += f", but host RAM is {ctx.host_ram / GB:.0f} GB (--host-ram)"  # type: ignore[operator]
    splits = [round(x / (1 << 30), 1) for x in room]
    tps, assumptions = _llamacpp_speed(ctx, r, min(pool, key=lambda g: speed.gpu_bandwidth(g)[0]), cpu_moe)
    opt = _option(strategy, r, pool[worst], n, need[worst], high, budgets[worst], reason,
                  host_bytes=r.host_bytes, tokens_per_s=tps, gpu_layers=r.engine.n_gpu_layers if r.engine else None,
                  cpu_moe_layers=cpu_moe,
                  prefill_s=speed.prefill_seconds(r, pool[0], 1),
                  assumptions=["layers run one GPU after another: decode speed of the slowest GPU", *assumptions],
                  launch=launch.llama_server(r.model, r, _gguf_repo(ctx), ngl, cpu_moe, splits))
    if not host_ok:
        opt = opt.model_copy(update={"fits": False, "verdict": "no", "launch": []})
    return opt


def llamacpp_split(ctx: Context, base: Report, gpus: list[Gpu], search: bool) -> PlanOption | None:
    """llama.cpp's layer split over the GPUs of one machine (``search``: 2, 3... of ``gpus[0]`` up to a node)."""
    node = gpus[0].node_size or DEFAULT_NODE_SIZE
    step = gpus[0].devices_per_card
    counts = range(max(2, step), node + 1, step) if search else [len(gpus)]
    opt = None
    for n in counts:
        opt = _split_option(ctx, base, gpus if not search else [gpus[0]] * n, "pipeline", "llama.cpp layer split")
        if opt.fits:
            return opt
    return opt


def llamacpp_split_offload(ctx: Context, pool: list[Gpu]) -> list[PlanOption]:
    """When the split does not hold the model: MoE experts of the first layers in host RAM (--n-cpu-moe),
    and the most layers the pool holds with the rest on the CPU (-ngl), each split by -ts."""
    spec = ctx.model.spec
    out: list[PlanOption] = []
    if spec.is_moe:
        for k in range(1, spec.num_layers + 1):
            o = _split_option(ctx, _report(ctx, pool[0], n_cpu_moe=k), pool, "expert_offload",
                              f"llama.cpp, experts of the first {k}/{spec.num_layers} layers in host RAM, split",
                              cpu_moe=k)
            if o.fits:
                out.append(o)
                break
    lo, hi = 0, spec.num_layers + 1
    best: PlanOption | None = None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        o = _split_option(ctx, _report(ctx, pool[0], n_gpu_layers=mid), pool, "offload",
                          f"llama.cpp -ngl {mid}: {mid - 1}/{spec.num_layers} layers and the output layer", ngl=mid)
        if o.fits:
            lo, best = mid, o
        else:
            hi = mid - 1
    return out + ([best] if best is not None else [])


def _llamacpp_speed(ctx: Context, r: Report, gpu: Gpu, cpu_moe: int | None) -> tuple[float | None, list[str]]:
    """Decode tokens/s bound: GPU-resident bytes at the GPU's bandwidth, the rest at host memory's."""
    bw, bw_note = speed.gpu_bandwidth(gpu)
    read = speed.bytes_read_per_step(r)
    gpu_read = min(r.component("weights") + r.component("kv_cache"), read)
    cpu_read = max(read - gpu_read, 0)
    if cpu_moe:  # CPU experts: only the active ones are read, by the CPU
        cpu_read = speed.active_expert_bytes(r) * cpu_moe // max(r.architecture.layers, 1)
        gpu_read = max(read - cpu_read, 0)
    step = gpu_read / (bw * GB) + cpu_read / (ctx.cpu_gbps * GB)
    assumptions = [f"host memory {ctx.cpu_gbps:g} GB/s (--cpu-gbps) for CPU-resident weights"] if cpu_read else []
    if bw_note:
        assumptions.append(bw_note)
    return (r.workload.batch / step if step else None), assumptions


# ---- transformers -----------------------------------------------------------------------------------
def transformers_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """One GPU, device_map="auto" over the GPUs of one machine, CPU offload, layer streaming."""
    r = _report(ctx, gpu)
    b = budget(gpu, "transformers")
    out: list[PlanOption] = []
    if count in (None, 1):
        bw, bw_note = speed.gpu_bandwidth(gpu)
        tps = r.workload.batch / (speed.bytes_read_per_step(r) / (bw * GB))
        transient = r.total_bytes - r.component("weights")
        out.append(_option("single", r, gpu, 1, r.total_bytes, r.total_high_bytes, b,
                           _why(r.total_bytes, b, "transformers on one GPU"), tokens_per_s=tps,
                           prefill_s=speed.prefill_seconds(r, gpu, 1), assumptions=[bw_note] if bw_note else [],
                           launch=[launch.transformers_snippet(r.model, r, [gpu], [max(b - transient, 0)])]))
        if out[0].fits or gpu.is_budget:
            if not out[0].fits:
                out += transformers_offload(ctx, r, gpu)
            return out
    multi = transformers_split(ctx, r, [gpu] * (count or 2), count is None)
    if multi is not None:
        out.append(multi)
    if count in (None, 1) and not (multi and multi.fits):
        out += transformers_offload(ctx, r, gpu)
    return out


def transformers_split(ctx: Context, r: Report, gpus: list[Gpu], search: bool) -> PlanOption | None:
    """device_map="auto" over the GPUs of one machine: layers placed in order up to each GPU's
    max_memory; each GPU keeps its layers' KV and one layer's activations."""
    node = gpus[0].node_size or DEFAULT_NODE_SIZE
    step = gpus[0].devices_per_card
    counts = range(max(2, step), node + 1, step) if search else [len(gpus)]
    transient = r.component("activations") + r.component("logits") + r.component("runtime_overhead")
    shared = r.component("weights") + r.component("kv_cache")
    opt = None
    for n in counts:
        pool = gpus if not search else [gpus[0]] * n
        budgets = [budget(g, "transformers") for g in pool]
        room = [max(bb - transient - ctx.headroom, 0) for bb in budgets]
        total_room = sum(room) or 1
        need = [int(shared * x / total_room) + transient for x in room]
        worst = max(range(n), key=lambda i: need[i] - budgets[i])
        high = int(need[worst] * r.total_high_bytes / r.total_bytes) if r.total_bytes else need[worst]
        kv_share = [int(r.component("kv_cache") * x / total_room) for x in room]
        bw, _ = speed.gpu_bandwidth(pool[0])
        tps = r.workload.batch / (speed.bytes_read_per_step(r) / (bw * GB))
        reason = _why(need[worst], budgets[worst], f"transformers device_map over {n} GPUs of one machine")
        opt = _option("pipeline", r, pool[worst], n, need[worst], high, budgets[worst], reason, tokens_per_s=tps,
                      prefill_s=speed.prefill_seconds(r, pool[0], 1),
                      assumptions=["layers run one GPU after another: decode speed of one GPU"],
                      launch=[launch.transformers_snippet(r.model, r, pool,
                                                          [x - k for x, k in zip(room, kv_share)])])
        if opt.fits:
            return opt
    return opt


def transformers_offload(ctx: Context, r: Report, gpu: Gpu) -> list[PlanOption]:
    """accelerate's CPU offload (whole layers on the GPU, the rest in host RAM, moved in per forward)
    and AirLLM layer streaming."""
    out = []
    w = r.weights
    b = budget(gpu, "transformers") - ctx.headroom
    n = r.architecture.layers
    transient = r.total_bytes - r.component("weights")
    room = b - transient - w.lm_head_bytes - w.largest_layer_bytes  # + one offloaded layer moved in
    on_gpu, used = 0, 0
    for lb in w.per_layer_bytes:
        if used + lb > room:
            break
        used += lb
        on_gpu += 1
    cpu_bytes = w.bytes - used - w.lm_head_bytes
    gpu_bytes = used + w.lm_head_bytes + w.largest_layer_bytes + transient
    host_ok = ctx.host_ram is None or cpu_bytes <= ctx.host_ram
    pcie = gpu.pcie_gbps or speed.DEFAULT_PCIE_GBPS
    bw, _ = speed.gpu_bandwidth(gpu)
    step = used / (bw * GB) + cpu_bytes / (pcie * GB)
    why = (f"accelerate offload: {on_gpu}/{n} layers resident on the GPU ({gpu_bytes / GB:.1f} GB), "
           f"{cpu_bytes / GB:.1f} GB of weights in host RAM moved over PCIe ({pcie:g} GB/s) every forward")
    if not host_ok:
        why += f", but host RAM is {ctx.host_ram / GB:.0f} GB (--host-ram)"  # type: ignore[operator]
    opt = _option("offload", r, gpu, 1, gpu_bytes, gpu_bytes, budget(gpu, "transformers"), why,
                  host_bytes=cpu_bytes, gpu_layers=on_gpu, tokens_per_s=r.workload.batch / step if step else None,
                  assumptions=[f"host->GPU {pcie:g} GB/s PCIe", f"host RAM {ctx.host_ram / GB:.0f} GB (--host-ram)"
                               if ctx.host_ram else "host RAM unlimited"],
                  launch=[launch.transformers_snippet(r.model, r, [gpu], [used + w.lm_head_bytes], cpu_bytes)])
    if not host_ok:
        opt = opt.model_copy(update={"fits": False, "verdict": "no", "launch": []})
    out.append(opt)
    out.append(streaming(ctx, r, gpu))
    return out


def streaming(ctx: Context, r: Report, gpu: Gpu) -> PlanOption:
    """AirLLM: hold one layer (or the embedding / head) at a time, read every layer from disk per token."""
    w = r.weights
    n_layers = r.architecture.layers
    kv_layer = r.component("kv_cache") // max(n_layers, 1)
    peak = (w.largest_unit_bytes + r.component("activations") + r.component("logits") + kv_layer
            + r.component("runtime_overhead"))
    b = budget(gpu, "transformers")
    pcie = gpu.pcie_gbps or speed.DEFAULT_PCIE_GBPS
    rate = min(ctx.disk_gbps, pcie)
    sec = w.bytes / (rate * GB)
    why = (f"peak {peak / GB:.2f} GB = largest piece {w.largest_unit_bytes / GB:.2f} GB + one layer's KV and "
           f"activations; every token reads all {w.bytes / GB:.1f} GB of weights at {rate:.1f} GB/s "
           f"(min of disk {ctx.disk_gbps:g} and PCIe {pcie:g} GB/s): {sec:.1f} s per token")
    if peak > b:
        why = f"even one piece does not fit: {why}"
    return _option("streaming", r, gpu, 1, peak, peak, b, why, tokens_per_s=r.workload.batch / sec,
                   seconds_per_token=sec, disk_bytes=w.bytes, launch=[launch.airllm_snippet(r.model, r)],
                   assumptions=[f"disk read {ctx.disk_gbps:g} GB/s (--disk-gbps)", f"host->GPU {pcie:g} GB/s PCIe",
                                "compute time ignored: disk-bound"])


# ---- training ---------------------------------------------------------------------------------------
def training_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """Training on one GPU or data parallel over ``count`` (the estimate is per data-parallel GPU)."""
    n = count or 1
    r = _report(ctx, gpu, gpus=n) if n != ctx.workload.gpus else _report(ctx, gpu)
    b = budget(gpu, "transformers")
    zero = f", ZeRO-{r.workload.zero}" if r.workload.zero else ""
    what = "one GPU" if n == 1 else f"data parallel over {n} GPUs{zero}"
    return [_option("single", r, gpu, n, r.total_bytes, r.total_high_bytes, b, _why(r.total_bytes, b, what),
                    host_bytes=r.host_bytes)]


def options_for(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """Every strategy of the workload's runtime on ``count`` GPUs of one kind (None: the planner chooses).
    A bare memory budget (``--gpu 8GB``) is one device: it is never multiplied."""
    if gpu.is_budget and count is None:
        count = 1
    w = ctx.workload
    if w.train is not None:
        return training_options(ctx, gpu, count)
    if w.runtime is Runtime.vllm:
        return vllm_options(ctx, gpu, count)
    if w.runtime is Runtime.llamacpp:
        return llamacpp_options(ctx, gpu, count)
    return transformers_options(ctx, gpu, count)


def pool_options(ctx: Context, gpus: list[Gpu]) -> list[PlanOption]:
    """Mixed GPUs in one machine (``--gpu 4090,3090``): llama.cpp and transformers split layers by each
    card's memory; vLLM needs equal shares, so every card counts as the smallest."""
    w = ctx.workload
    if w.runtime is Runtime.llamacpp:
        opt = llamacpp_split(ctx, _report(ctx, gpus[0]), gpus, False)
        if opt is None or opt.fits:
            return [opt] if opt is not None else []
        return [opt, *llamacpp_split_offload(ctx, gpus)]
    if w.runtime is Runtime.vllm:
        smallest = min(gpus, key=lambda g: budget(g, "vllm"))
        opts = vllm_options(ctx, smallest, len(gpus))
        return [o.model_copy(update={"reason": f"{o.reason} (vLLM shards equally: every card counts as "
                                               f"{smallest.id})"}) for o in opts]
    opt = transformers_split(ctx, _report(ctx, gpus[0]), gpus, False)
    return [opt] if opt is not None else []


__all__ = ["MAX_SEARCH_GPUS", "Context", "options_for", "pool_options", "streaming"]
