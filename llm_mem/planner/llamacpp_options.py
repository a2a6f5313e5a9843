"""llama.cpp strategies: every layer on one GPU, a layer split over the GPUs of one machine (-sm layer -ts, mixed
cards too), MoE experts in host RAM (--n-cpu-moe) and partial offload (-ngl), each with its speed bound."""

from __future__ import annotations

from llm_mem.catalog import Gpu
from llm_mem.planner import launch, speed
from llm_mem.planner.common import Context, gguf_repo, make_option, report_for, why_line
from llm_mem.planner.layouts import DEFAULT_NODE_SIZE
from llm_mem.planner.model import PlanOption, Strategy, budget
from llm_mem.report import Report
from llm_mem.runtimes.llamacpp import FIT_TARGET
from llm_mem.units import GB


def _llamacpp_single(ctx: Context, gpu: Gpu, r: Report, strategy: Strategy, what: str,
                     cpu_moe_layers: int | None = None) -> PlanOption:
    b = budget(gpu, "llamacpp")
    e = r.engine
    assert e is not None
    host_ok = ctx.host_ram is None or r.host_bytes <= ctx.host_ram
    tps, assumptions = _llamacpp_speed(ctx, r, gpu, cpu_moe_layers)
    reason = why_line(r.total_bytes, b, what)
    if r.host_bytes:
        reason += f"; {r.host_bytes / GB:.1f} GB in host RAM"
    if not host_ok:
        reason += f", but host RAM is {ctx.host_ram / GB:.0f} GB (--host-ram)"  # type: ignore[operator]
    opt = make_option(strategy, r, gpu, 1, r.total_bytes, r.total_high_bytes, b, reason, host_bytes=r.host_bytes,
                  gpu_layers=e.n_gpu_layers, tokens_per_s=tps, cpu_moe_layers=cpu_moe_layers,
                  prefill_s=speed.prefill_seconds(r, gpu, 1), assumptions=assumptions,
                  launch=launch.llama_server(r.model, r, gguf_repo(ctx), e.n_gpu_layers, e.n_cpu_moe))
    if not host_ok:
        opt = opt.model_copy(update={"fits": False, "verdict": "no", "launch": []})
    return opt


def llamacpp_options(ctx: Context, gpu: Gpu, count: int | None) -> list[PlanOption]:
    """Whole model on one GPU or a layer split over several; else MoE experts or layers in host RAM."""
    spec = ctx.model.spec
    out: list[PlanOption] = []
    base = report_for(ctx, gpu)
    if count in (None, 1):
        w = ctx.workload  # the user's -ngl / --n-cpu-moe, said as given (not "every layer on the GPU")
        what = "llama.cpp, every layer on the GPU"
        if w.n_gpu_layers is not None and w.n_gpu_layers <= spec.num_layers:
            what = (f"llama.cpp -ngl {w.n_gpu_layers}: {max(w.n_gpu_layers - 1, 0)}/{spec.num_layers} layers"
                    + (" and the output layer" if w.n_gpu_layers else "") + " on the GPU")
        if w.n_cpu_moe:
            what += f", experts of the first {w.n_cpu_moe} layers in host RAM"
        out.append(_llamacpp_single(ctx, gpu, base, "single", what))
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
            r = report_for(ctx, gpu, n_cpu_moe=k)
            if r.total_bytes <= b:
                out.append(_llamacpp_single(ctx, gpu, r, "expert_offload",
                                            f"llama.cpp, experts of the first {k}/{spec.num_layers} layers in host RAM",
                                            cpu_moe_layers=k))
                break
    lo, hi = 0, spec.num_layers + 1  # -ngl: largest that fits (0: nothing on the GPU)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if report_for(ctx, gpu, n_gpu_layers=mid).total_bytes <= b:
            lo = mid
        else:
            hi = mid - 1
    if lo >= 1:
        r = report_for(ctx, gpu, n_gpu_layers=lo)
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
    reason = why_line(need[worst], budgets[worst], f"{what} over {n} GPUs ({names}), -ts by memory")
    if r.host_bytes:
        reason += f"; {r.host_bytes / GB:.1f} GB in host RAM"
    host_ok = ctx.host_ram is None or r.host_bytes <= ctx.host_ram
    if not host_ok:
        reason += f", but host RAM is {ctx.host_ram / GB:.0f} GB (--host-ram)"  # type: ignore[operator]
    splits = [round(x / (1 << 30), 1) for x in room]
    tps, assumptions = _llamacpp_speed(ctx, r, min(pool, key=lambda g: speed.gpu_bandwidth(g)[0]), cpu_moe)
    opt = make_option(strategy, r, pool[worst], n, need[worst], high, budgets[worst], reason,
                  host_bytes=r.host_bytes, tokens_per_s=tps, gpu_layers=r.engine.n_gpu_layers if r.engine else None,
                  cpu_moe_layers=cpu_moe,
                  prefill_s=speed.prefill_seconds(r, pool[0], 1),
                  assumptions=["layers run one GPU after another: decode speed of the slowest GPU", *assumptions],
                  launch=launch.llama_server(r.model, r, gguf_repo(ctx), ngl, cpu_moe, splits))
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
            o = _split_option(ctx, report_for(ctx, pool[0], n_cpu_moe=k), pool, "expert_offload",
                              f"llama.cpp, experts of the first {k}/{spec.num_layers} layers in host RAM, split",
                              cpu_moe=k)
            if o.fits:
                out.append(o)
                break
    lo, hi = 0, spec.num_layers + 1
    best: PlanOption | None = None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        o = _split_option(ctx, report_for(ctx, pool[0], n_gpu_layers=mid), pool, "offload",
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


