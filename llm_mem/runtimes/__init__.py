"""Serving engines as they run today: each module resolves the engine's own defaults (from the GPU
where the engine does), sizes what the engine allocates on one GPU, and reports the figures the
engine's users read (vLLM's KV pool and concurrency, llama.cpp's buffers).

* ``transformers`` - transformers 5.24 (the version the bundled parameter truth was built with)
* ``vllm`` - vLLM 0.34.0
* ``llamacpp`` - llama.cpp b10470

The versions are stated in every report (``engine.version``) and in docs/methodology.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from llm_mem.estimators.kv_cache import KvCache


class EngineSettings(BaseModel):
    """The engine settings an estimate assumed, defaults resolved (part of the JSON: ``engine``).
    Fields that do not apply to the runtime are null."""

    model_config = ConfigDict(frozen=True)

    runtime: str
    version: str  # the engine version whose defaults and formulas are modelled
    gpu: str | None = None  # the GPU whose defaults the engine picked (vLLM), None when GPU-independent
    attention: str | None = None  # transformers' attention implementation
    # vLLM
    gpu_memory_utilization: float | None = None  # None: unset (vLLM sizes the KV cache from measured memory)
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    block_size: int | None = None
    enforce_eager: bool | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    enable_expert_parallel: bool = False
    # llama.cpp
    flash_attn: bool | None = None
    n_ctx: int | None = None  # total KV cells (-c), all slots
    n_parallel: int | None = None  # -np slots
    n_ubatch: int | None = None
    n_batch: int | None = None
    n_gpu_layers: int | None = None  # -ngl, counting the output layer as llama.cpp does
    n_cpu_moe: int | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None


class Capacity(BaseModel):
    """What the engine makes of one GPU: the KV pool and how many requests it serves at once.
    vLLM's log prints these as "Available KV cache memory", "GPU KV cache size: N tokens" and
    "Maximum concurrency for L tokens per request: Cx"."""

    model_config = ConfigDict(frozen=True)

    device_total_bytes: int  # the GPU total the engine sees
    budget_bytes: int  # what the engine may use on it
    available_kv_bytes: int  # memory left for the KV cache (vLLM: "Available KV cache memory")
    kv_pool_tokens: int  # tokens the pool holds at this context (vLLM: "GPU KV cache size")
    max_concurrency: float  # requests of `context` tokens the pool holds at once
    blocks: int | None = None  # vLLM KV blocks
    bytes_per_block: int | None = None


@dataclass
class Part:
    """One component the engine allocates, with what it is."""

    name: str
    bytes: int
    note: str


@dataclass
class EngineMemory:
    """What an engine allocates on its busiest GPU for a workload, besides the weights."""

    kv: KvCache
    parts: list[Part]  # activations, logits, cuda_graphs, runtime_overhead
    settings: EngineSettings
    capacity: Capacity | None = None
    host_bytes: int = 0  # host RAM the engine needs besides the process (offloaded layers, KV)
    gpu_weights: int | None = None  # weights on the GPU when the engine keeps some in host RAM
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
