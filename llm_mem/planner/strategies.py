"""The strategies, per runtime: resident on one GPU or a layout over several, CPU offload of layers,
MoE experts in host RAM, layer streaming. Each option carries its verdict, speed bound and launch lines."""

from __future__ import annotations

from llm_mem.catalog import Gpu
from llm_mem.choices import Runtime
from llm_mem.errors import UsageError
from llm_mem.layout import Layout, tp_problem
from llm_mem.planner import launch, speed
from llm_mem.planner.common import MAX_SEARCH_GPUS, Context, make_option, report_for, why_line
from llm_mem.planner.layouts import DEFAULT_NODE_SIZE, nodes_for, vllm_layout
from llm_mem.planner.llamacpp_options import llamacpp_options, llamacpp_split, llamacpp_split_offload
from llm_mem.planner.model import LayoutInfo, PlanOption, Strategy, budget
from llm_mem.report import Report
from llm_mem.units import GB


# ---- vLLM -------------------------------------------------------------------------------------------
def _vllm(ctx: Context, gpu: Gpu, layout: Layout) -> PlanOption:
    r = report_for(ctx, gpu, tensor_parallel_size=layout.tp, pipeline_parallel_size=layout.pp,
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
    reason = why_line(r.total_bytes, cap.budget_bytes, what) + (
        f"; KV pool {cap.kv_pool_tokens:,} tokens, {cap.max_concurrency:g} requests of {r.workload.context:,} at once")
    strategy: Strategy = "single" if n == 1 else ("pipeline" if layout.pp > 1 else "tensor_parallel")
    assumptions = [f"tensor-parallel all-reduces over {link_name}"] if layout.tp > 1 else []
    if bw_note:
        assumptions.append(bw_note)
    return make_option(strategy, r, gpu, n, r.total_bytes, r.total_high_bytes, cap.budget_bytes, reason, nodes=nodes,
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
    if gpu.is_budget:  # a bare size (--gpu 48GB) is one card unless a count is given (--gpu 4x48GB)
        candidates = [count] if count else [1]
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


# ---- transformers -----------------------------------------------------------------------------------
def transformers_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """One GPU, device_map="auto" over the GPUs of one machine, CPU offload, layer streaming."""
    r = report_for(ctx, gpu)
    b = budget(gpu, "transformers")
    out: list[PlanOption] = []
    if count in (None, 1):
        bw, bw_note = speed.gpu_bandwidth(gpu)
        tps = r.workload.batch / (speed.bytes_read_per_step(r) / (bw * GB))
        transient = r.total_bytes - r.component("weights")
        out.append(make_option("single", r, gpu, 1, r.total_bytes, r.total_high_bytes, b,
                           why_line(r.total_bytes, b, "transformers on one GPU"), tokens_per_s=tps,
                           prefill_s=speed.prefill_seconds(r, gpu, 1), assumptions=[bw_note] if bw_note else [],
                           launch=[launch.transformers_snippet(r.model, r, [gpu], [max(b - transient, 0)])]))
        if out[0].fits or gpu.is_budget or count == 1:  # --gpu 1xT4: one GPU, no device_map split to try
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
        reason = why_line(need[worst], budgets[worst], f"transformers device_map over {n} GPUs of one machine")
        opt = make_option("pipeline", r, pool[worst], n, need[worst], high, budgets[worst], reason, tokens_per_s=tps,
                      prefill_s=speed.prefill_seconds(r, pool[0], 1),
                      assumptions=["layers run one GPU after another: decode speed of one GPU"],
                      launch=[launch.transformers_snippet(r.model, r, pool,
                                                          [x - k for x, k in zip(room, kv_share)])])
        if n > node:  # an explicit count beyond one machine: device_map is one process on one machine
            return opt.model_copy(update={
                "fits": False, "verdict": "no", "launch": [],
                "reason": f"transformers' device_map places layers over the GPUs of one machine, and a "
                          f"{pool[0].id} machine holds {node}; for {n} GPUs over several machines use "
                          "--runtime vllm (tensor parallel in a node, pipeline across nodes)"})
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
    opt = make_option("offload", r, gpu, 1, gpu_bytes, gpu_bytes, budget(gpu, "transformers"), why,
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
    return make_option("streaming", r, gpu, 1, peak, peak, b, why, tokens_per_s=r.workload.batch / sec,
                   seconds_per_token=sec, disk_bytes=w.bytes, launch=[launch.airllm_snippet(r.model, r)],
                   assumptions=[f"disk read {ctx.disk_gbps:g} GB/s (--disk-gbps)", f"host->GPU {pcie:g} GB/s PCIe",
                                "compute time ignored: disk-bound"])


# ---- training ---------------------------------------------------------------------------------------
def training_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """Training on one GPU or data parallel over ``count``, else the fewest GPUs that shard it
    (llm_mem.planner.training; the estimate is per data-parallel GPU)."""
    from llm_mem.planner.training import training_options as options

    return options(ctx, gpu, count)


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
        opt = llamacpp_split(ctx, report_for(ctx, gpus[0]), gpus, False)
        if opt is None or opt.fits:
            return [opt] if opt is not None else []
        return [opt, *llamacpp_split_offload(ctx, gpus)]
    if w.runtime is Runtime.vllm:
        smallest = min(gpus, key=lambda g: budget(g, "vllm"))
        opts = vllm_options(ctx, smallest, len(gpus))
        return [o.model_copy(update={"reason": f"{o.reason} (vLLM shards equally: every card counts as "
                                               f"{smallest.id})"}) for o in opts]
    opt = transformers_split(ctx, report_for(ctx, gpus[0]), gpus, False)
    return [opt] if opt is not None else []


__all__ = ["MAX_SEARCH_GPUS", "Context", "options_for", "pool_options", "streaming"]
