"""The planner's typed answer (the `plan --json` contract) and the GPU budget each runtime allows."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_mem.catalog import Gpu
from llm_mem.workload import Workload

Strategy = Literal["single", "tensor_parallel", "pipeline", "offload", "expert_offload", "streaming"]
Verdict = Literal["fits", "borderline", "no"]


class LayoutInfo(BaseModel):
    """How an option spreads the model over GPUs (vLLM's terms; a training plan's are Megatron's)."""

    model_config = ConfigDict(frozen=True)

    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    enable_expert_parallel: bool = False
    context_parallel_size: int = 1  # training: Megatron's --context-parallel-size


class TrainTime(BaseModel):
    """Training throughput and time of one option (llm_mem.planner.train_time): FLOPs per token at a stated
    model FLOPs utilization of the GPUs' dense peak."""

    model_config = ConfigDict(frozen=True)

    flops_per_token: float  # training FLOPs per trained token, every model the step runs included
    peak_tflops: float  # one GPU's dense peak in the compute dtype (gpu_catalog.yaml tflops)
    mfu: float  # model FLOPs utilization assumed
    gpus: int
    tokens_per_s: float  # the whole job: gpus x peak x mfu / flops_per_token
    tokens: int | None = None  # --train-tokens
    hours: float | None = None  # tokens / tokens_per_s / 3600
    assumptions: list[str] = Field(default_factory=list)


class PlanOption(BaseModel):
    """One way to run the workload. Sizes are bytes per GPU; speeds are roofline upper bounds."""

    model_config = ConfigDict(frozen=True)

    strategy: Strategy
    fits: bool
    verdict: Verdict = "no"  # "borderline": the margin is inside the estimate's error band
    margin_bytes: int = 0  # budget - per-GPU need (negative: short by that much)
    runtime: str = "transformers"
    gpus: int
    nodes: int = 1
    gpu: str
    per_gpu_bytes: int
    per_gpu_high_bytes: int = 0  # the upper end of the estimate's error band
    budget_bytes: int
    layout: LayoutInfo = Field(default_factory=LayoutInfo)
    weights_format: str | None = None
    checkpoint: str | None = None  # the repo or file the launch command loads
    tokens_per_s: float | None = None
    prefill_s: float | None = None
    seconds_per_token: float | None = None
    host_bytes: int = 0
    disk_bytes: int = 0
    gpu_layers: int | None = None  # llama.cpp -ngl (the output layer counted) / accelerate layers on the GPU
    cpu_moe_layers: int | None = None  # layers whose experts stay in host RAM (--n-cpu-moe)
    kv_pool_tokens: int | None = None  # vLLM: the KV pool on the busiest GPU at this layout
    max_concurrency: float | None = None  # vLLM: requests of `context` tokens served at once
    reason: str
    launch: list[str] = Field(default_factory=list)
    assumptions: list[str] = Field(default_factory=list)
    train_time: TrainTime | None = None  # training plans: tokens/s and hours (llm_mem.planner.train_time)


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


def budget(gpu: Gpu, runtime: str, utilization: float | None = None) -> int:
    """Bytes one device gives the model under a runtime. A bare budget (``--gpu 24GB``) is what the user
    says the model may use, taken exactly. Otherwise the device's usable memory (its total less the CUDA
    context, llm_mem.catalog); vLLM with --gpu-memory-utilization caps it at that share of the total."""
    if gpu.is_budget:
        return gpu.usable_bytes
    if runtime == "vllm" and utilization is not None:
        return min(int(gpu.device_total_bytes * utilization), gpu.usable_bytes)
    return gpu.usable_bytes


def verdict(need: int, high: int, budget_bytes: int) -> tuple[bool, Verdict, int]:
    """(fits, verdict, margin): "borderline" when the need fits but its upper error band does not, or
    misses by less than the band."""
    margin = budget_bytes - need
    band = max(high - need, 0)
    if margin >= band:
        return True, "fits", margin
    if margin >= 0:
        return True, "borderline", margin
    if -margin <= band:
        return False, "borderline", margin
    return False, "no", margin
