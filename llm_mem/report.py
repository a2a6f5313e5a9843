"""The estimate report: a frozen pydantic model whose JSON dump is the `estimate --json` contract
(docs/json.md; schema in docs/schemas/estimate.schema.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_mem.errors import InternalError
from llm_mem.params import ParameterCounts
from llm_mem.runtimes import Capacity, EngineSettings
from llm_mem.spec import Source
from llm_mem.workload import Workload

__all__ = ["Architecture", "Capacity", "Component", "ComponentName", "EngineSettings", "KvSummary", "Report",
           "WeightsSummary", "Workload"]

SCHEMA_VERSION = "1"

ComponentName = Literal[
    "weights", "kv_cache", "activations", "logits", "runtime_overhead", "cuda_graphs",
    "gradients", "optimizer_states", "master_weights", "lora_adapters", "activation_recompute",
    "reference_model", "value_model", "rollout_engine",  # RL post-training (llm_mem.estimators.rl)
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Component(_Frozen):
    """One line of the breakdown. `low`/`high` carry the measured uncertainty band."""

    name: ComponentName
    bytes: int
    low: int
    high: int
    note: str | None = None


class KvSummary(_Frozen):
    """KV cache figures users compare across models."""

    dtype: str
    bytes_per_token: int  # all layers, one sequence, full-attention layers at full length
    bytes_per_1k_tokens: int  # 1,024 tokens of one sequence (window caps applied)
    mla_latent: bool


class WeightsSummary(_Frozen):
    """How the weights are stored."""

    format: str
    label: str
    source: Literal["checkpoint", "requested"]
    bytes: int
    checkpoint_bytes: int | None = None  # exact tensor bytes from safetensors headers, when read
    embedding_bytes: int
    lm_head_bytes: int
    largest_layer_bytes: int  # the largest decoder layer
    experts_bytes: int = 0  # all routed experts (a decode step reads top-k of them)
    largest_unit_bytes: int  # the largest of: a layer, the embedding, the lm_head (streaming peak)
    per_layer_bytes: list[int]
    checkpoint_repo: str | None = None  # the published quantized checkpoint these weights are, when one is


class Architecture(_Frozen):
    """The normalised architecture, echoed for scripts."""

    model_type: str
    family: str
    known: bool
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    intermediate_size: int
    max_position_embeddings: int | None
    experts: int | None = None
    experts_per_token: int | None = None
    attention: Literal["mha", "gqa", "mqa", "mla"]
    sliding_window: int | None = None
    sliding_layers: int = 0


class Report(_Frozen):
    """Everything `llm-mem estimate` says about one model and workload."""

    schema_version: str = SCHEMA_VERSION
    model: str
    source: Source
    architecture: Architecture
    parameters: ParameterCounts
    workload: Workload
    weights: WeightsSummary
    kv_cache: KvSummary
    components: list[Component]
    total_bytes: int
    total_low_bytes: int
    total_high_bytes: int
    host_bytes: int = 0  # host RAM the run needs (llama.cpp's CPU layers, ZeRO-Offload), not in total_bytes
    # training: bytes of two components never live together (gradients, and the activations and logits freed
    # before they are allocated: llm_mem.estimate_training.gradient_overlap), subtracted from the total
    overlap_bytes: int = 0
    per_gpu: bool = False  # True when components are per data-parallel GPU (--gpus)
    notes: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    engine: EngineSettings | None = None  # the serving engine's settings, defaults resolved (inference)
    capacity: Capacity | None = None  # the engine's KV pool and concurrency on the GPU (with --gpu)
    verify: dict[str, Any] | None = None

    def stderr_lines(self, as_json: bool) -> list[str]:
        """With --json the notes and warnings go to stderr (the table shows them itself)."""
        return [f"note: {n}" for n in self.notes] + [f"warning: {w}" for w in self.warnings] if as_json else []

    @model_validator(mode="after")
    def _invariants(self) -> Report:
        """The last check before a report leaves: no negative part, no missing weights or KV cache where
        the model has them, totals that add up. Breaking one is our bug (InternalError, exit 3); input is
        refused earlier (config.json by llm_mem.sources.validate, settings by Workload)."""
        problem = report_problem(self)
        if problem:
            raise InternalError(f"estimate of {self.model}: {problem}")
        return self

    def component(self, name: str) -> int:
        """Bytes of a component, 0 when absent."""
        return next((c.bytes for c in self.components if c.name == name), 0)


def report_problem(r: Report) -> str | None:
    """What is impossible in a report, or None."""
    for c in r.components:
        if not 0 <= c.low <= c.bytes <= c.high:
            return f"component {c.name} has bytes {c.bytes} outside its band [{c.low}, {c.high}] or below 0"
    if r.host_bytes < 0:
        return f"host bytes {r.host_bytes} are negative"
    if not 0 <= r.overlap_bytes <= sum(c.bytes for c in r.components):
        return f"overlap {r.overlap_bytes} is negative or larger than the components"
    if r.total_bytes != sum(c.bytes for c in r.components) - r.overlap_bytes:
        return f"total {r.total_bytes} is not the sum of the components less their overlap"
    if r.parameters.total < 1 or r.weights.bytes < 1:
        return "the model has no weights"
    if r.component("weights") == 0 and r.host_bytes == 0 and r.workload.train is None:
        return "the weights are neither on the GPU nor in host memory"
    kv = next((c.bytes for c in r.components if c.name == "kv_cache"), None)
    if kv == 0 and r.kv_cache.bytes_per_token > 0 and r.host_bytes == 0:
        return "the KV cache is empty although the model caches keys and values"
    return None
