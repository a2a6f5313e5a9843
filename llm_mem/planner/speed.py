"""Roofline speed bounds: decode reads the active weights and the KV cache once per step, so tokens/s <=
bandwidth / bytes; prefill needs 2 x active parameters FLOPs per token (Kaplan et al. 2020,
arXiv:2001.08361, sec. 2.1). Each bound names the link it crosses: HBM, NVLink or PCIe for tensor
parallel all-reduces, host RAM for offloaded layers and CPU experts, disk for streaming."""

from __future__ import annotations

from llm_mem.catalog import Gpu
from llm_mem.report import Report
from llm_mem.units import GB

# Host link when the catalog has none (budget-only GPUs): PCIe 4.0 x16 one direction, 31 GB/s
# (stas00/ml-engineering network README).
DEFAULT_PCIE_GBPS = 31.0
# Memory bandwidth when a GPU has no catalog figure (a bare --gpu 24GB budget): an RTX 4090-class card's
# 1008 GB/s (gpu_catalog.yaml); stated in the option's assumptions whenever it is used.
DEFAULT_GPU_GBPS = 1008.0


def bytes_read_per_step(report: Report) -> int:
    """Weights a decode step reads (MoE: top-k experts only; not the embedding table, from which it reads
    one row) plus the KV cache it attends to."""
    w = report.weights
    arch = report.architecture
    weights = w.bytes - (w.embedding_bytes if w.lm_head_bytes else 0)
    if arch.experts and arch.experts_per_token:
        weights -= w.experts_bytes - w.experts_bytes * arch.experts_per_token // arch.experts
    return weights + report.component("kv_cache")


def active_expert_bytes(report: Report) -> int:
    """Routed-expert bytes one token reads (top-k of every MoE layer)."""
    arch, w = report.architecture, report.weights
    if not (arch.experts and arch.experts_per_token):
        return 0
    return w.experts_bytes * arch.experts_per_token // arch.experts


def gpu_bandwidth(gpu: Gpu) -> tuple[float, str | None]:
    """GB/s of the GPU's memory, and the assumption made when the catalog has none."""
    if gpu.bandwidth_gbps:
        return gpu.bandwidth_gbps, None
    return DEFAULT_GPU_GBPS, f"memory bandwidth unknown for {gpu.id}: assumed {DEFAULT_GPU_GBPS:g} GB/s"


def link(gpu: Gpu, tp: int) -> tuple[float, str]:
    """(GB/s one direction, name) of the link tensor-parallel all-reduces cross on ``tp`` GPUs."""
    ic = gpu.interconnect
    if ic is not None and ic.per_direction_gbps and (ic.domain_size is None or tp <= ic.domain_size):
        return ic.per_direction_gbps, ic.name
    pcie = gpu.pcie_gbps or DEFAULT_PCIE_GBPS
    return pcie, f"PCIe {gpu.pcie or ''} ({pcie:g} GB/s)".replace("  ", " ")


def allreduce_seconds(report: Report, tp: int, link_gbps: float, tokens: int) -> float:
    """Time of the two ring all-reduces per layer (after attention and after the MLP) that a step of
    ``tokens`` tokens needs under TP: each moves 2 (tp-1)/tp x tokens x hidden x 2 bytes (NCCL ring)."""
    if tp <= 1:
        return 0.0
    per = 2 * (tp - 1) / tp * tokens * report.architecture.hidden_size * 2
    return 2 * report.architecture.layers * per / (link_gbps * GB)


def tflops(gpu: Gpu, weights_format: str) -> float | None:
    key = "fp32" if weights_format == "fp32" else "bf16"
    if weights_format == "fp8" and gpu.tflops.get("fp8"):
        key = "fp8"
    return gpu.tflops.get(key) or gpu.tflops.get("fp16")


def prefill_seconds(report: Report, gpu: Gpu, gpus: int) -> float | None:
    """Compute-bound time to prefill the batch's prompts on ``gpus`` GPUs."""
    tf = tflops(gpu, report.weights.format)
    if not tf:
        return None
    flops = 2 * report.parameters.active * report.workload.context * report.workload.batch
    return flops / (tf * 1e12 * gpus)
