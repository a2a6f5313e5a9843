"""The workload: what the model is asked to do, validated once for every caller.

The CLI, check files and library callers build a :class:`Workload` the same way: from the
settings the user gave (fields left out keep their defaults). Validation happens here and only
here: types, ranges, and the cross-field rules (a training flag without ``--train``, a llama.cpp
cache type on vLLM...). Which fields were given is pydantic's ``model_fields_set``, so a flag
that does not apply to the mode or runtime is an error rather than silently ignored.

Defaults that depend on the model (the context when none is given) are filled by
:func:`resolve_workload`, once, before any estimator runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llm_mem.choices import (
    LLAMACPP_KV,
    VLLM_KV,
    Attention,
    FlashAttn,
    Fsdp,
    KvDtype,
    Logits,
    MixedPrecision,
    Offload,
    Optimizer,
    Precision,
    Runtime,
    Trainer,
    TrainMode,
)
from llm_mem.errors import CombinationError, SettingError, UsageError, flag_of

if TYPE_CHECKING:
    from llm_mem.spec import ModelSpec

#: Without --context: 4096 tokens, or the model's max_position_embeddings when smaller; stated in
#: every report, never silently the model's 128k maximum.
DEFAULT_CONTEXT = 4096
# Bounds no real workload reaches; beyond them an input is a typo or an attack, refused in one line
# (docs/limits.md). Context: 2^26 = 67M tokens, 6.7x Llama 4 Scout's 10M, the longest published.
MAX_CONTEXT = 2**26
MAX_BATCH = 2**20  # a million concurrent sequences
MAX_LORA_RANK = 2**16  # rank 65,536: above every hidden size in the bundled set
MAX_GPUS = 2**17  # 131,072 GPUs: beyond the largest published training clusters (~100k)
# PEFT's LoraConfig defaults (peft/tuners/lora/config.py: r=8, lora_dropout=0.0); the default targets are
# PEFT's per-family map, ModelSpec.lora_default_targets (resolved by llm_mem.estimators.lora).
DEFAULT_LORA_RANK = 8
MAX_BLOCK_SIZE = 2**16  # vLLM block sizes are 16-1024 tokens in practice
MAX_LAYERS = 2**16  # the deepest published models have ~200 layers
# llama.cpp's LLAMA_MAX_SEQ (src/llama-cparams.h): the most sequences (server slots) a context holds.
LLAMACPP_MAX_SEQ = 256
# Settings each runtime reads; given for another runtime they are an error, never silently ignored.
RUNTIME_FIELDS: dict[str, frozenset[Runtime]] = {
    "gpu_memory_utilization": frozenset({Runtime.vllm}),
    "max_num_seqs": frozenset({Runtime.vllm}),
    "max_num_batched_tokens": frozenset({Runtime.vllm}),
    "block_size": frozenset({Runtime.vllm}),
    "enforce_eager": frozenset({Runtime.vllm}),
    "tensor_parallel_size": frozenset({Runtime.vllm}),
    "data_parallel_size": frozenset({Runtime.vllm}),
    "enable_expert_parallel": frozenset({Runtime.vllm}),
    "pipeline_parallel_size": frozenset({Runtime.vllm, Runtime.llamacpp, Runtime.transformers}),
    "flash_attn": frozenset({Runtime.llamacpp}),
    "ubatch_size": frozenset({Runtime.llamacpp}),
    "batch_size": frozenset({Runtime.llamacpp}),
    "parallel": frozenset({Runtime.llamacpp}),
    "ctx_size": frozenset({Runtime.llamacpp}),
    "n_gpu_layers": frozenset({Runtime.llamacpp}),
    "n_cpu_moe": frozenset({Runtime.llamacpp}),
    "attention": frozenset({Runtime.transformers}),
    "logits": frozenset({Runtime.transformers}),
}
# The hint for a setting given to the wrong runtime: the runtime's own knob for the same thing.
_RUNTIME_HINTS = {
    "attention": "vLLM always uses its flash-attention kernels; llama.cpp's knob is --flash-attn on|off|auto",
    "flash_attn": "with transformers use --attention flash|sdpa|eager",
    "parallel": "llama.cpp's server slots; with vLLM and transformers use --batch",
}
# Fields whose None is a value a caller may set in Workload.replace (the rest: None = leave default).
_NULLABLE_CHANGES = frozenset({"precision", "quant", "train", "gpu_memory_utilization", "max_num_seqs",
                               "max_num_batched_tokens", "block_size", "ubatch_size", "batch_size", "parallel",
                               "n_gpu_layers", "n_cpu_moe", "ctx_size"})
# The flags that only make sense with --train.
TRAINING_FIELDS = ("lora_rank", "lora_targets", "lora_dropout", "optimizer", "mixed_precision", "grad_checkpointing",
                   "zero", "gpus", "offload", "gradient_accumulation_steps")
# ---- training frameworks' memory features (issue 17): --trainer and its switches, training only ----
# None = what the --trainer preset sets (llm_mem.estimate_training TRAINER_PRESETS), or off without one.
FRAMEWORK_FIELDS = ("trainer", "fused_ce", "chunked_ce", "activation_offloading", "optimizer_in_bwd", "packing",
                    "torch_compile", "prepare_kbit")
# ---- FSDP2 and RL post-training: flags that only make sense with --train (Workload._check_fsdp_rl) ----
FSDP_RL_FIELDS = ("fsdp", "fsdp_shard_size", "fsdp_offload", "num_generations", "beta",
                  "rollout_gpu_memory_utilization", "use_peft", "tensor_model_parallel_size", "sequence_parallel",
                  "context_parallel_size")
# HSDP's default shard group: the GPUs of one node, 8 on HGX/DGX baseboards (gpu_catalog.yaml node_size; the
# intra-node group torch's fully_shard docstring suggests, torch.cuda.device_count()).
FSDP_GPUS_PER_NODE = 8
# The flags that only make sense with --train lora|qlora.
LORA_FIELDS = ("lora_rank", "lora_targets", "lora_dropout")


class Workload(BaseModel):
    """What the model is asked to do. Inference unless ``train`` is set. Part of every report's
    JSON (``workload``): each setting used, defaults included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    precision: Precision | None = None  # as requested; None = the checkpoint's own format
    quant: str | None = None  # a format name (llm_mem.formats), kept as typed
    context: int = Field(default=DEFAULT_CONTEXT, ge=1, le=MAX_CONTEXT)
    batch: int = Field(default=1, ge=1, le=MAX_BATCH)
    kv_dtype: KvDtype = KvDtype.bf16
    attention: Attention = Attention.sdpa
    runtime: Runtime = Runtime.transformers
    logits: Logits = Logits.last
    train: TrainMode | None = None
    lora_rank: int = Field(default=DEFAULT_LORA_RANK, ge=1, le=MAX_LORA_RANK)
    lora_targets: tuple[str, ...] | None = None  # None: PEFT's default modules for the family
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    optimizer: Optimizer = Optimizer.adamw
    mixed_precision: MixedPrecision = MixedPrecision.bf16
    grad_checkpointing: bool | None = None  # None: the recipe's default (on for qlora, off otherwise)
    zero: int = Field(default=0, ge=0, le=3)
    gpus: int = Field(default=1, ge=1, le=MAX_GPUS)
    offload: Offload = Offload.none
    # micro-batches per optimizer step (transformers' and torchtune's gradient_accumulation_steps); above 1 the
    # gradients stay allocated through the next forwards (llm_mem.estimate_training.gradient_overlap)
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=MAX_BATCH)
    # ---- training frameworks' memory features (FRAMEWORK_FIELDS; None: the --trainer preset's, else off) ----
    trainer: Trainer | None = None  # the framework whose default recipe sets the switches below
    fused_ce: bool | None = None  # fused linear cross-entropy (Liger, Unsloth, TRL chunked_nll): a chunk of logits
    chunked_ce: bool | None = None  # torchtune's chunked cross-entropy, 8 chunks of tokens
    activation_offloading: bool | None = None  # saved activations in host RAM, one layer's worth on the GPU
    optimizer_in_bwd: bool | None = None  # torchtune optimizer_in_bwd: each gradient freed after its step
    packing: bool | None = None  # sequences packed to the context: no padding (stated, bytes per token unchanged)
    torch_compile: bool | None = None  # torch.compile of each decoder layer (estimators.training.compile_unmodelled)
    # QLoRA: PEFT's prepare_model_for_kbit_training (every unquantized parameter to fp32, so the activations run
    # in fp32 too); None: on without a trainer or under --trainer hf, off under the other trainers'
    prepare_kbit: bool | None = None
    # ---- FSDP2 and RL post-training (FSDP_RL_FIELDS; llm_mem.estimators.fsdp / rl; _check_fsdp_rl) ----
    fsdp: Fsdp | None = None  # None: no FSDP (plain data parallel, or --zero)
    fsdp_shard_size: int | None = Field(default=None, ge=1, le=MAX_GPUS)  # hybrid: GPUs per shard group
    fsdp_offload: bool = False  # CPUOffloadPolicy: sharded params, grads and optimizer states on the CPU
    num_generations: int | None = Field(default=None, ge=2, le=MAX_BATCH)  # GRPO completions per prompt
    beta: float | None = Field(default=None, ge=0, le=1e6)  # KL coefficient; 0 drops the reference model
    rollout_gpu_memory_utilization: float | None = Field(default=None, gt=0, lt=1)  # colocated vLLM's share
    use_peft: bool = False  # RL with a LoRA policy (TRL's ModelConfig.use_peft / a peft_config)
    # ---- Megatron-LM's model parallelism for training (MEGATRON_FIELDS; llm_mem.estimators.megatron) ----
    tensor_model_parallel_size: int = Field(default=1, ge=1, le=MAX_GPUS)
    sequence_parallel: bool = False
    context_parallel_size: int = Field(default=1, ge=1, le=MAX_GPUS)
    # ---- parallel layout (vLLM's flag names; llm_mem.layout) ----
    tensor_parallel_size: int = Field(default=1, ge=1, le=MAX_GPUS)
    pipeline_parallel_size: int = Field(default=1, ge=1, le=MAX_GPUS)
    data_parallel_size: int = Field(default=1, ge=1, le=MAX_GPUS)
    enable_expert_parallel: bool = False
    # ---- vLLM (None: vLLM's own default, resolved from the GPU by llm_mem.runtimes.vllm) ----
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    max_num_seqs: int | None = Field(default=None, ge=1, le=MAX_BATCH)
    max_num_batched_tokens: int | None = Field(default=None, ge=1, le=MAX_CONTEXT)
    block_size: int | None = Field(default=None, ge=1, le=MAX_BLOCK_SIZE)
    enforce_eager: bool = False
    # ---- llama.cpp (None: llama.cpp's default, resolved by llm_mem.runtimes.llamacpp) ----
    flash_attn: FlashAttn = FlashAttn.auto
    ubatch_size: int | None = Field(default=None, ge=1, le=MAX_CONTEXT)
    batch_size: int | None = Field(default=None, ge=1, le=MAX_CONTEXT)
    parallel: int | None = Field(default=None, ge=1, le=LLAMACPP_MAX_SEQ)
    ctx_size: int | None = Field(default=None, ge=1, le=MAX_CONTEXT)  # llama.cpp -c: cells over all slots
    n_gpu_layers: int | None = Field(default=None, ge=0, le=MAX_LAYERS)
    n_cpu_moe: int | None = Field(default=None, ge=0, le=MAX_LAYERS)

    def __init__(self, **data: Any) -> None:
        """Validate; any problem is one SettingError naming the field (never a pydantic traceback)."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            from llm_mem.settings import validation_problem

            field, msg = validation_problem(exc)
            raise SettingError(field, msg) from None

    @model_validator(mode="before")
    @classmethod
    def _gguf_runs_on_llamacpp(cls, data: Any) -> Any:
        """A GGUF type given with --quant and no --runtime means llama.cpp, the engine that loads it."""
        if isinstance(data, dict) and "runtime" not in data and isinstance(data.get("quant"), str):
            from llm_mem.formats import QUANT_FORMATS, lookup_format

            fmt = lookup_format(data["quant"])
            if fmt is not None and fmt.gguf_recipe and fmt.key in QUANT_FORMATS and data.get("train") is None:
                return {**data, "runtime": Runtime.llamacpp}
        return data

    @model_validator(mode="before")
    @classmethod
    def _megatron_gpus(cls, data: Any) -> Any:
        """Without --gpus, a Megatron layout spans TP x CP GPUs (one data-parallel replica)."""
        if isinstance(data, dict) and data.get("gpus") is None and data.get("train") is not None:
            t, c = data.get("tensor_model_parallel_size") or 1, data.get("context_parallel_size") or 1
            if isinstance(t, int) and isinstance(c, int) and not isinstance(t * c, bool) and 1 < t * c <= MAX_GPUS:
                return {**data, "gpus": t * c}
        return data

    @model_validator(mode="before")
    @classmethod
    def _ctx_size_per_slot(cls, data: Any) -> Any:
        """llama.cpp's -c is the context of all slots together: each of -np slots gets ctx-size / np
        (llama-context.cpp n_ctx_seq = n_ctx / n_seq_max without --kv-unified)."""
        if not isinstance(data, dict) or data.get("ctx_size") is None:
            return data
        if data.get("context") is not None:
            raise SettingError("ctx_size", "give --context (per sequence) or -c/--ctx-size (all slots), not both")
        total = cls._tokens(data["ctx_size"])
        slots = data.get("parallel") or data.get("batch") or 1
        if not isinstance(total, int) or not isinstance(slots, int) or isinstance(slots, bool):
            return data  # the field validators report the bad value
        if total < slots:
            raise SettingError("ctx_size", f"{total} cells cannot hold {slots} slots")
        return {**data, "ctx_size": total, "context": total // slots}

    @field_validator("context", "ctx_size", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        from llm_mem.units import parse_tokens

        if isinstance(value, bool):
            raise ValueError("a token count, not true/false")
        if isinstance(value, (str, float)):
            try:
                return parse_tokens(value)
            except UsageError as err:
                raise ValueError(err.one_line()) from None
        return value

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, value: Any) -> Any:
        if isinstance(value, str) and Precision.parse(value) is Precision.all:
            raise ValueError("'all' compares precisions side by side (estimate only); a workload needs one")
        return value

    @field_validator("quant", mode="before")
    @classmethod
    def _quant(cls, value: Any) -> Any:
        from llm_mem.formats import get_format

        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ValueError("a format name such as nf4, gptq, awq or Q4_K_M")
        try:
            get_format(value)
        except UsageError as err:
            raise ValueError(err.one_line()) from None
        return value.strip()

    @field_validator("lora_targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            if not all(isinstance(t, str) for t in value):
                raise ValueError("LoRA targets are module names")
            names = tuple(t.strip() for t in value)
            if not any(names):
                raise ValueError("empty list of LoRA target modules")
            if not all(names):
                raise ValueError("an empty module name in the list (two commas, or one at an end)")
            from llm_mem.estimators.lora import LORA_TARGET_NAMES

            unknown = [t for t in names if t not in LORA_TARGET_NAMES]
            if unknown:
                raise ValueError(f"unknown LoRA target {unknown[0]!r} (transformers' module names: "
                                 f"{', '.join(sorted(LORA_TARGET_NAMES))})")
            value = names
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Workload:
        if self.train is None:
            for f in TRAINING_FIELDS + FRAMEWORK_FIELDS:
                if self.given(f):
                    if f == "gpus":
                        raise CombinationError(f, "data-parallel GPUs apply to training",
                                               "for inference name the count in the GPU, e.g. --gpu 2xL4")
                    raise CombinationError(f, "{}: training settings apply to training only",
                                           "add --train full|lora|qlora, or drop it")
        else:
            from llm_mem.workload_rules import check_training

            check_training(self)
        self._check_runtime()
        return self

    def _check_runtime(self) -> None:
        """Settings that the chosen runtime does not read are errors, and so are values it refuses."""
        for name, runtimes in RUNTIME_FIELDS.items():
            if self.runtime not in runtimes and self.given(name):
                names = " or ".join(str(r) for r in sorted(runtimes))
                raise CombinationError(name, f"{{}} is a {names} setting; {self.runtime} does not read it",
                                       _RUNTIME_HINTS.get(name, f"add --runtime {sorted(runtimes)[0]}, or drop it"))
        if self.runtime is Runtime.llamacpp and self.kv_dtype not in LLAMACPP_KV:
            raise CombinationError("kv_dtype", f"llama.cpp has no {self.kv_dtype} KV cache",
                                   "llama.cpp caches in f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, iq4_nl or q4_0")
        if self.runtime is not Runtime.llamacpp and self.kv_dtype in LLAMACPP_KV - VLLM_KV:
            raise CombinationError("kv_dtype", f"{self.kv_dtype} is a llama.cpp cache type",
                                   "add --runtime llamacpp, or use fp8")
        if self.runtime is Runtime.transformers and self.kv_dtype is KvDtype.fp8_e5m2:
            raise CombinationError("kv_dtype", "transformers' caches hold the compute dtype; fp8_e5m2 is vLLM's",
                                   "add --runtime vllm")
        if self.parallel is not None and self.given("batch") and self.parallel != self.batch:
            raise CombinationError("parallel", f"{{}} {self.parallel} slots but --batch {self.batch} sequences",
                                   "for llama.cpp they are the same: give one")
        if self.n_cpu_moe is not None and self.n_gpu_layers is not None and self.n_cpu_moe > self.n_gpu_layers:
            raise CombinationError("n_cpu_moe", "{} counts layers whose experts stay on the CPU; it exceeds "
                                   "--n-gpu-layers", "lower it, or raise --n-gpu-layers")
        if self.ubatch_size is not None and self.batch_size is not None and self.ubatch_size > self.batch_size:
            raise CombinationError("ubatch_size", "{} is larger than --batch-size (llama.cpp clamps it)",
                                   "llama.cpp's physical batch is at most its logical batch")

    # ---- FSDP2 and RL post-training: their own rules, kept apart from the ZeRO / LoRA ones above ----
    @model_validator(mode="after")
    def _check_fsdp_rl(self) -> Workload:
        from llm_mem.workload_rules import check_fsdp_rl

        check_fsdp_rl(self)
        return self

    @property
    def megatron(self) -> bool:
        """Whether a Megatron-LM tensor or context parallel layout is asked for (llm_mem.estimators.megatron)."""
        return self.tensor_model_parallel_size * self.context_parallel_size > 1

    @property
    def adapters(self) -> bool:
        """Whether LoRA adapters train (--train lora|qlora, or an RL policy with --use-peft) over a frozen base."""
        return self.train in (TrainMode.lora, TrainMode.qlora) or self.use_peft

    @property
    def shard_group(self) -> int:
        """GPUs one FSDP shard group spans: every GPU (full), --fsdp-shard-size or GPUs per node (hybrid)."""
        if self.fsdp is Fsdp.hybrid:
            return self.fsdp_shard_size or min(self.gpus, FSDP_GPUS_PER_NODE)
        return self.gpus

    def replace(self, **changes: Any) -> Workload:
        """A copy with ``changes`` applied and validated (model_copy would skip validation, leaving raw
        strings where Enums belong)."""
        data = {k: getattr(self, k) for k in self.model_fields_set if k != "ctx_size"}  # context holds its share
        data.update(changes)
        return type(self)(**{k: v for k, v in data.items() if v is not None or k in _NULLABLE_CHANGES})

    @property
    def layout_gpus(self) -> int:
        """GPUs the serving layout spans: tensor x pipeline x data parallel."""
        return self.tensor_parallel_size * self.pipeline_parallel_size * self.data_parallel_size

    def given(self, name: str) -> bool:
        """Whether the user set ``name`` to something other than its default. (A default value
        given explicitly changes nothing, so a JSON dump read back validates.)"""
        return name in self.model_fields_set and getattr(self, name) != type(self).model_fields[name].default


field_flag = flag_of


def resolve_workload(w: Workload, spec: ModelSpec, *, gguf_file: bool = False) -> Workload:
    """Fill the defaults that depend on the model and runtime: without --context, 4096 tokens or the
    model's max_position_embeddings when that is smaller; llama.cpp's f16 KV cache. A GGUF file served
    without --runtime runs on llama.cpp, the engine that loads it."""
    if gguf_file and w.train is None and "runtime" not in w.model_fields_set and w.runtime is not Runtime.llamacpp:
        w = w.replace(runtime=Runtime.llamacpp)
    update: dict[str, Any] = {}
    mx = spec.max_position_embeddings
    if "context" not in w.model_fields_set and mx and mx < w.context:
        update["context"] = mx
    if w.runtime is Runtime.llamacpp and "kv_dtype" not in w.model_fields_set:
        update["kv_dtype"] = KvDtype.fp16  # llama.cpp caches f16 by default (common/common.h cache_type_k/v)
    return w.model_copy(update=update) if update else w
