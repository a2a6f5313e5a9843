"""plan(model, workload, gpus) -> Plan: which strategies fit, at what cost, and which we recommend.

Strategies: single GPU; tensor parallel inside a node; pipeline across nodes; CPU offload
(llama.cpp -ngl / accelerate device_map); layer streaming (AirLLM). Speeds are roofline bounds:
decode reads the active weights and the KV cache once per step, so tokens/s <= bandwidth / bytes;
prefill needs 2 x active parameters FLOPs per token (Kaplan et al. 2020, arXiv:2001.08361, sec. 2.1).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_mem.catalog import Gpu
from llm_mem.estimate import estimate
from llm_mem.estimators.overhead import runtime_overhead
from llm_mem.report import Report
from llm_mem.requests import DEFAULT_CPU_GBPS, DEFAULT_DISK_GBPS
from llm_mem.spec import ResolvedModel
from llm_mem.units import GB, GIB, MIB
from llm_mem.workload import Workload

Strategy = Literal["single", "tensor_parallel", "pipeline", "offload", "streaming"]

# vLLM's default --gpu-memory-utilization (vllm/engine/arg_utils.py EngineArgs.gpu_memory_utilization = 0.9).
VLLM_GPU_UTIL = 0.9
# llama.cpp's automatic fitting leaves a margin per device (common/arg.cpp --fit-target default 1024 MiB).
LLAMACPP_MARGIN = 1024 * MIB
# Default disk read speed for layer streaming: a PCIe 3.0 x4 NVMe's sequential read
# (Samsung 970 EVO Plus datasheet: 3,500 MB/s). Override with --disk-gbps.
# Host memory bandwidth for layers left on the CPU: dual-channel DDR5-4800 = 2 x 38.4 GB/s
# (JEDEC DDR5-4800: 4800 MT/s x 8 bytes per channel). Override with --cpu-gbps.
# (Both live in llm_mem.requests, where the request models default to them.)
# The GPUs `plan MODEL` compares when no --gpu is given: the data-center and consumer cards most
# deployments use (NVIDIA H100 and A100, AMD MI250, L40S, RTX 4090).
DEFAULT_PLAN_GPUS = ("H100-SXM-80GB", "A100-SXM-80GB", "MI250-2X64GB", "L40S-48GB", "RTX-4090-24GB")
# --max-context's upper bound when a config names no max_position_embeddings: 128k, Llama 3.1's
# window and the longest common default; --max-batch searches up to 4096 sequences (vLLM's largest
# default max_num_seqs is 1024, llama.cpp's slots far fewer).
UNKNOWN_MAX_CONTEXT = 131072
MAX_BATCH_SEARCH = 4096
# PCIe when the catalog has none (budget-only GPUs): PCIe 4.0 x16 one direction, 31 GB/s (ML-ENG network README).
DEFAULT_PCIE_GBPS = 31.0


class PlanOption(BaseModel):
    """One way to run the workload. Sizes are bytes; speeds are roofline upper bounds."""

    model_config = ConfigDict(frozen=True)

    strategy: Strategy
    fits: bool
    gpus: int
    nodes: int = 1
    gpu: str
    per_gpu_bytes: int
    budget_bytes: int
    tokens_per_s: float | None = None
    prefill_s: float | None = None
    seconds_per_token: float | None = None
    host_bytes: int = 0
    disk_bytes: int = 0
    gpu_layers: int | None = None
    reason: str
    launch: list[str] = Field(default_factory=list)
    assumptions: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    """The planner's answer for one model and workload."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = "1"
    model: str
    workload: Workload
    total_bytes: int
    options: list[PlanOption]
    recommended: PlanOption | None
    notes: list[str] = Field(default_factory=list)


def budget(gpu: Gpu, runtime: str) -> int:
    """Bytes one device gives the model under a runtime's margin rules. A bare budget
    (`--gpu 24GB`) is what the user says the model may use: taken exactly, for every runtime."""
    if gpu.is_budget:
        return gpu.usable_bytes
    if runtime == "vllm":
        # vLLM budgets gpu_memory_utilization of the device total, not of what is free
        return int(gpu.device_total_bytes * VLLM_GPU_UTIL)
    if runtime == "llamacpp":
        return gpu.usable_bytes - LLAMACPP_MARGIN
    return gpu.usable_bytes


def _tflops(gpu: Gpu, report: Report) -> float | None:
    key = "fp32" if report.weights.format == "fp32" else "bf16"
    if report.weights.format == "fp8" and gpu.tflops.get("fp8"):
        key = "fp8"
    return gpu.tflops.get(key) or gpu.tflops.get("fp16")


def bytes_read_per_step(report: Report) -> int:
    """Weights a decode step reads (MoE: top-k experts only; not the embedding table, from which it
    reads one row) plus the KV cache it attends to."""
    w = report.weights
    arch = report.architecture
    # a tied head reads the embedding matrix, so only an untied embedding table is skipped
    weights = w.bytes - (w.embedding_bytes if w.lm_head_bytes else 0)
    if arch.experts and arch.experts_per_token:
        weights -= w.experts_bytes - w.experts_bytes * arch.experts_per_token // arch.experts
    return weights + report.component("kv_cache")


def _speed(report: Report, gpu: Gpu, n: int) -> tuple[float | None, float | None]:
    """(decode tokens/s across the batch, prefill seconds) bounds on n GPUs of this kind."""
    tps = None
    if gpu.bandwidth_gbps:
        step = bytes_read_per_step(report) / (gpu.bandwidth_gbps * GB * n)
        tps = report.workload.batch / step if step > 0 else None
    pre = None
    tf = _tflops(gpu, report)
    if tf:
        flops = 2 * report.parameters.active * report.workload.context * report.workload.batch
        pre = flops / (tf * 1e12 * n)
    return tps, pre


def _tp_ok(report: Report, n: int) -> str | None:
    a = report.architecture
    if a.heads % n:
        return f"TP {n} does not divide {a.heads} attention heads"
    if a.attention != "mla" and a.kv_heads % n and n % a.kv_heads:
        return f"TP {n} and {a.kv_heads} KV heads neither divide the other"
    return None


def _per_gpu(report: Report, tp: int, pp: int) -> int:
    """Per-GPU bytes with `tp`-way tensor and `pp`-way pipeline parallelism. Tensor parallelism
    splits linear weights, the vocab-parallel embedding/head, KV heads (replicated once tp exceeds
    the KV heads; the MLA latent is replicated) and one layer's activations; pipeline stages split
    the layers (weights and KV). Each GPU pays its own runtime overhead."""
    a = report.architecture
    kv = report.component("kv_cache")
    if a.attention == "mla":
        kv_tp = kv
    else:
        kv_tp = kv * max(1, tp // a.kv_heads) // tp if tp <= a.kv_heads else kv // a.kv_heads
    kv_share = kv_tp // pp
    acts = report.component("activations") // tp + report.component("logits")
    overhead, _ = runtime_overhead(report.workload.runtime, kv_share + acts)
    return report.component("weights") // (tp * pp) + kv_share + acts + overhead


def _splits(n: int, node: int, report: Report) -> list[tuple[int, int]]:
    """(tp, pp) ways to use n GPUs: tensor parallel inside a node (a power of two dividing the
    heads), pipeline stages for the rest; largest tp first."""
    out = []
    tp = 1
    while tp <= min(n, node):
        if n % tp == 0 and n // tp <= report.architecture.layers and _tp_ok(report, tp) is None:
            out.append((tp, n // tp))
        tp *= 2
    return sorted(out, reverse=True)


def _launch(model: str, report: Report, strategy: Strategy, n: int, gpu: Gpu, gpu_layers: int | None = None,
            tp: int | None = None) -> list[str]:
    w = report.workload
    b = budget(gpu, "transformers")
    if strategy in ("single", "tensor_parallel", "pipeline"):
        tp = tp or n
        hints = [f"vllm serve {model} --tensor-parallel-size {tp}"
                 + (f" --pipeline-parallel-size {n // tp}" if n > tp else "")
                 + f" --max-model-len {w.context} --gpu-memory-utilization {VLLM_GPU_UTIL}"
                 + (" --kv-cache-dtype fp8" if w.kv_dtype == "fp8" else ""),
                 f"llama-server -m MODEL.gguf -ngl 999 -c {w.context * w.batch}"
                 + (f" --split-mode layer  # {n} GPUs" if n > 1 else "")]
        mem = ", ".join(f'{i}: "{b / GIB:.0f}GiB"' for i in range(min(n, 8)))
        hints.append(f'AutoModelForCausalLM.from_pretrained("{model}", device_map="auto", max_memory={{{mem}}})')
        return hints
    if strategy == "offload":
        return [f"llama-server -m MODEL.gguf -ngl {gpu_layers} -c {w.context * w.batch}"
                + (" -ot 'exps=CPU'" if report.architecture.experts else ""),
                f'AutoModelForCausalLM.from_pretrained("{model}", device_map="auto", '
                f'max_memory={{0: "{b / GIB:.0f}GiB", "cpu": "{report.weights.bytes / GIB * 1.1:.0f}GiB"}})']
    return [f'airllm.AutoModel.from_pretrained("{model}")  # streams one layer at a time from disk']


def _streaming(model: str, report: Report, gpu: Gpu, disk_gbps: float, runtime: str) -> PlanOption:
    """AirLLM-style layer streaming: hold one layer (or the embedding / lm_head) at a time."""
    w = report.weights
    n_layers = report.architecture.layers
    kv_layer = report.component("kv_cache") // max(n_layers, 1)
    peak = w.largest_unit_bytes + report.component("activations") + report.component("logits") + kv_layer \
        + report.component("runtime_overhead")
    b = budget(gpu, runtime)
    pcie = gpu.pcie_gbps or DEFAULT_PCIE_GBPS
    rate = min(disk_gbps, pcie)
    sec = w.bytes / (rate * GB)
    fits = peak <= b
    why = (f"peak {peak / GB:.2f} GB = largest piece {w.largest_unit_bytes / GB:.2f} GB + one layer's KV and "
           f"activations + runtime; every token reads all {w.bytes / GB:.1f} GB of weights at "
           f"{rate:.1f} GB/s (min of disk {disk_gbps} and PCIe {pcie} GB/s): {sec:.1f} s per token")
    if not fits:
        why = f"even one piece does not fit: {why}"
    return PlanOption(strategy="streaming", fits=fits, gpus=1, gpu=gpu.id, per_gpu_bytes=peak, budget_bytes=b,
                      tokens_per_s=report.workload.batch / sec, seconds_per_token=sec, disk_bytes=w.bytes,
                      reason=why, launch=_launch(model, report, "streaming", 1, gpu),
                      assumptions=[f"disk read {disk_gbps} GB/s (--disk-gbps)", f"host->GPU {pcie} GB/s PCIe",
                                   "compute time ignored: disk-bound"])


def host_ram_bytes() -> int | None:
    """This machine's physical RAM (POSIX sysconf), the default host budget for offload."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _offload(model: str, report: Report, gpu: Gpu, runtime: str, cpu_gbps: float,
             host_ram: int | None, headroom: int = 0) -> PlanOption:
    """llama.cpp -ngl N / accelerate device_map: as many whole layers on the GPU as fit (leaving
    ``headroom`` bytes of the budget free), the rest in host RAM."""
    w = report.weights
    n = report.architecture.layers
    b = budget(gpu, runtime)
    kv = report.component("kv_cache")
    fixed = w.lm_head_bytes + report.component("activations") + report.component("logits") + \
        report.component("runtime_overhead")
    per_layer = [lb + kv // max(n, 1) for lb in w.per_layer_bytes]
    room = b - headroom - fixed
    on_gpu = 0
    used = 0
    for lb in per_layer:
        if used + lb > room:
            break
        used += lb
        on_gpu += 1
    cpu_bytes = sum(w.per_layer_bytes[on_gpu:]) + w.embedding_bytes
    gpu_bytes = fixed + used
    fits = on_gpu >= 1 and (host_ram is None or cpu_bytes <= host_ram)
    read_gpu = sum(w.per_layer_bytes[:on_gpu]) + w.lm_head_bytes
    read_cpu = sum(w.per_layer_bytes[on_gpu:])
    step = read_gpu / ((gpu.bandwidth_gbps or 100) * GB) + read_cpu / (cpu_gbps * GB)
    tps = report.workload.batch / step if step else None
    why = (f"{on_gpu}/{n} layers on the GPU ({gpu_bytes / GB:.1f} GB), {cpu_bytes / GB:.1f} GB of weights in host RAM "
           f"read at {cpu_gbps} GB/s per token")
    if on_gpu < 1:
        why = f"not even one layer fits next to the head, KV and workspace: {why}"
    elif not fits:
        why = f"{why}, but host RAM is {host_ram / GB:.0f} GB (--host-ram)"
    return PlanOption(strategy="offload", fits=fits, gpus=1, gpu=gpu.id, per_gpu_bytes=gpu_bytes, budget_bytes=b,
                      tokens_per_s=tps, host_bytes=cpu_bytes, gpu_layers=on_gpu, reason=why,
                      launch=_launch(model, report, "offload", 1, gpu, on_gpu),
                      assumptions=[f"host memory bandwidth {cpu_gbps} GB/s (--cpu-gbps)",
                                   f"host RAM {host_ram / GB:.0f} GB (--host-ram)" if host_ram else "host RAM unlimited"])


def plan_for_gpu(model: ResolvedModel, report: Report, gpu: Gpu, count: int | None,
                 disk_gbps: float = DEFAULT_DISK_GBPS, cpu_gbps: float = DEFAULT_CPU_GBPS,
                 host_ram: int | None = None, headroom: int = 0) -> list[PlanOption]:
    """Every strategy on one GPU kind; `count` fixes the number of GPUs, None lets us choose.
    A bare memory budget (`--gpu 8GB`) is one device: it is never multiplied. ``headroom``: bytes
    of the budget that offload must leave free (a check's min_headroom)."""
    if gpu.is_budget and count is None:
        count = 1
    rt = report.workload.runtime
    b = budget(gpu, rt)
    total = report.total_bytes
    opts: list[PlanOption] = []
    name = model.name
    if report.workload.train is not None and count not in (None, 1):
        # training on N GPUs is data parallel: the per-GPU figures are the estimate with --gpus N
        if report.workload.gpus != count:
            report = estimate(model, report.workload.model_copy(update={"gpus": count}))
        per = report.total_bytes
        fits = per <= b
        zero = f", ZeRO-{report.workload.zero}" if report.workload.zero else ""
        return [PlanOption(strategy="single", fits=fits, gpus=count, gpu=gpu.id, per_gpu_bytes=per, budget_bytes=b,
                           reason=f"data parallel over {count} GPUs{zero}: {per / GB:.1f} GB per GPU of "
                                  f"{b / GB:.1f} GB usable" + ("" if fits else f": {(per - b) / GB:.1f} GB short"))]
    if count in (None, 1):
        tps, pre = _speed(report, gpu, 1)
        fits = total <= b
        why = (f"needs {total / GB:.1f} GB of {b / GB:.1f} GB usable" +
               ("" if fits else f": {(total - b) / GB:.1f} GB short"))
        opts.append(PlanOption(strategy="single", fits=fits, gpus=1, gpu=gpu.id, per_gpu_bytes=total, budget_bytes=b,
                               tokens_per_s=tps, prefill_s=pre, reason=why,
                               launch=_launch(name, report, "single", 1, gpu)))
    if report.workload.train is None and count != 1:
        node = gpu.node_size or 8
        step = gpu.devices_per_card  # whole cards: an MI250 is two devices
        candidates = [count] if count and count > 1 else list(range(max(2, step), 65, step))
        best: PlanOption | None = None
        for n in candidates:
            splits = _splits(n, node, report)
            if not splits:
                if best is None and count:
                    best = PlanOption(strategy="tensor_parallel", fits=False, gpus=n, gpu=gpu.id, per_gpu_bytes=0,
                                      budget_bytes=b, reason=_tp_ok(report, min(n, node)) or f"no way to split {n}")
                continue
            tp, pp = min(splits, key=lambda t: _per_gpu(report, *t))
            per = _per_gpu(report, tp, pp)
            nodes = math.ceil(n / node)
            strategy: Strategy = "tensor_parallel" if pp == 1 else "pipeline"
            fits = per <= b
            tps, _ = _speed(report, gpu, tp)  # stages run one after another: decode sees tp GPUs' bandwidth
            _, pre = _speed(report, gpu, n)
            why = (f"{per / GB:.1f} GB per GPU of {b / GB:.1f} GB usable: TP {tp}" + (f" x PP {pp}" if pp > 1 else "")
                   + (f" on {nodes} nodes of {node}" if nodes > 1 else ""))
            opt = PlanOption(strategy=strategy, fits=fits, gpus=n, nodes=nodes, gpu=gpu.id, per_gpu_bytes=per,
                             budget_bytes=b, tokens_per_s=tps, prefill_s=pre, reason=why,
                             launch=_launch(name, report, strategy, n, gpu, tp=tp) if fits else [])
            if fits:
                best = opt
                break
            best = best if best is not None and count is None else opt
        if best is not None and not (opts and opts[0].fits):
            if not best.fits and count is None:
                best = best.model_copy(update={"reason": f"does not fit on up to 64 GPUs: {best.reason}"})
            opts.append(best)
    if report.workload.train is None and count in (None, 1):
        opts.append(_offload(name, report, gpu, rt, cpu_gbps, host_ram, headroom))
        opts.append(_streaming(name, report, gpu, disk_gbps, rt))
    return opts


_ORDER = {"single": 0, "tensor_parallel": 1, "pipeline": 2, "offload": 3, "streaming": 4}


def recommend(options: list[PlanOption]) -> PlanOption | None:
    """The first fitting option in order single > TP > pipeline > offload > streaming, fewest GPUs first."""
    fitting = [o for o in options if o.fits]
    if not fitting:
        return None
    return min(fitting, key=lambda o: (_ORDER[o.strategy], o.gpus))


def plan(model: ResolvedModel, workload: Workload, gpus: list[tuple[Gpu, int | None]],
         disk_gbps: float = DEFAULT_DISK_GBPS, cpu_gbps: float = DEFAULT_CPU_GBPS,
         report: Report | None = None, host_ram: int | None = None, headroom: int = 0) -> Plan:
    """Evaluate every strategy on each (gpu, count) and pick a recommendation."""
    report = report or estimate(model, workload)
    options: list[PlanOption] = []
    for gpu, count in gpus:
        options += plan_for_gpu(model, report, gpu, count, disk_gbps, cpu_gbps, host_ram, headroom)
    notes = ["speeds are roofline upper bounds: memory bandwidth for decode, peak dense TFLOPS for prefill"]
    return Plan(model=model.name, workload=workload, total_bytes=report.total_bytes, options=options,
                recommended=recommend(options), notes=notes + report.notes)


def largest_fitting(model: ResolvedModel, workload: Workload, gpu: Gpu, count: int | None, field: str,
                    upper: int) -> tuple[int, Plan | None]:
    """Largest `field` (context or batch) for which a resident strategy (single / TP) fits; 0 if none."""
    count = count or 1  # "the largest that fits on this GPU": one device unless a count is given

    def ok(v: int) -> Plan | None:
        p = plan(model, workload.model_copy(update={field: v}), [(gpu, count)])
        r = p.recommended
        return p if r is not None and r.strategy in ("single", "tensor_parallel", "pipeline") else None

    best = ok(1)
    if best is None:
        return 0, None
    lo, hi = 1, max(upper, 1)
    while lo < hi:  # invariant: ok(lo) fits, and `best` is its plan
        mid = (lo + hi + 1) // 2
        p = ok(mid)
        if p is not None:
            lo, best = mid, p
        else:
            hi = mid - 1
    return lo, best
