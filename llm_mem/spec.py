"""The typed architecture description every estimator reads.

`sources/parse.py` is the only place that knows config.json's key aliases and family quirks;
it turns a raw dict into a frozen `ModelSpec`. Estimators never see the raw config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

LayerKind = Literal["full", "sliding", "linear"]
NormKind = Literal["rms", "layer"]
MlpKind = Literal["gated", "plain"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MlaSpec(_Frozen):
    """DeepSeek multi-head latent attention (DeepSeek-V2 paper, arXiv:2405.04434, section 2.1)."""

    kv_lora_rank: int
    q_lora_rank: int | None
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


class MoeSpec(_Frozen):
    """Routed experts (+ optional shared experts) and which layers carry them."""

    num_experts: int
    top_k: int
    expert_intermediate_size: int
    shared_intermediate_size: int = 0  # total width of the shared expert(s); 0 = none
    shared_expert_gate: bool = False  # Qwen2-MoE's sigmoid gate on the shared expert
    router_bias: bool = False  # gpt-oss router has a bias
    expert_bias: bool = False  # gpt-oss experts have biases
    moe_layers: tuple[bool, ...]  # per layer: True where the MLP is the MoE block


QuantMethod = Literal["bitsandbytes", "gptq", "awq", "fp8", "int8", "int4", "nvfp4", "mxfp4", "other"]
ScaleLayout = Literal["tensor", "channel", "group", "block"]


class QuantConfig(_Frozen):
    """A checkpoint's own `quantization_config`, normalised to what its weights are stored as.

    ``method`` is the storage (fp8, int8 W8A8, int4 W4A16, nvfp4...), whatever tool wrote it;
    ``source_method`` keeps the config's own ``quant_method`` (fbgemm_fp8, compressed-tensors,
    modelopt...). ``skip_modules`` are the modules the checkpoint keeps unquantized
    (modules_to_not_convert, ignore, ignored_layers, exclude_modules), as the config names them."""

    method: QuantMethod
    source_method: str = ""
    bits: float | None = None
    group_size: int | None = None  # GPTQ/AWQ/W4A16 group; -1 = per channel
    quant_type: str | None = None  # bnb nf4/fp4/int8, fp8 e4m3
    double_quant: bool = False
    block_size: tuple[int, ...] | None = None  # fp8 weight_block_size
    scale: ScaleLayout | None = None  # how the weight scales are laid out
    skip_modules: tuple[str, ...] = ()
    quantize_lm_head: bool = False  # ModelOpt quantizes the head unless excluded; others never


class ModelSpec(_Frozen):
    """A decoder-only transformer, normalised from config.json."""

    model_type: str
    family: str  # the family whose parameter layout we use ("generic" when unknown)
    architecture: str | None = None
    known: bool = True  # False: generic fallback, estimate from standard fields only

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    v_head_dim: int | None = None  # value head width when it differs from the key's (old DeepSeek GGUFs)
    intermediate_size: int
    max_position_embeddings: int | None = None
    tie_word_embeddings: bool = False
    torch_dtype: str | None = None

    # parameter layout details
    norm: NormKind = "rms"
    norms_per_layer: int = 2
    final_norm: bool = True
    embedding_norm: bool = False  # BLOOM's word_embeddings_layernorm
    qk_norm: bool = False  # Qwen3 / Gemma3 per-head q/k RMSNorm
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_kind: MlpKind = "gated"
    mlp_bias: bool = False
    attention_sinks: bool = False  # gpt-oss learned per-head sink logits
    position_embeddings: int = 0  # rows of a learned absolute position table (GPT-2, OPT)
    embed_proj_dim: int | None = None  # OPT's word_embed_proj_dim when != hidden
    parallel_attn: bool = False  # GPT-J/NeoX/Falcon parallel residual (affects activations)
    mtp_layers: int = 0  # DeepSeek-V3 multi-token-prediction layers (in checkpoint, not instantiated)

    # capabilities the parser fills from the family, so that estimators never branch on a family name
    fused_qkv: bool = False  # one query_key_value projection + "dense" output (GPT-2, OPT, BLOOM, NeoX, Falcon)
    eager_softmax_fp32: bool = True  # eager attention softmaxes in fp32 (GPT-2 keeps the compute dtype)
    moe_routing_fp32: bool = False  # routing weights stay fp32 into the weighted sum (DeepSeek)
    sdpa: bool = True  # transformers has an SDPA path for the family (gpt-oss: no, its sinks need eager)
    llamacpp_arch: str | None = None  # llama.cpp's LLM_ARCH name, for llama-quantize's per-arch rules

    # attention layout
    mla: MlaSpec | None = None
    layer_types: tuple[LayerKind, ...]
    sliding_window: int | None = None
    alibi: bool = False

    moe: MoeSpec | None = None
    quantization: QuantConfig | None = None
    hidden_act: str | None = None
    attention_dropout: float = 0.0
    hidden_dropout: float = 0.0

    def __hash__(self) -> int:
        """Hashed once: the estimators' caches (inventory, weight bytes) key on the spec, and a frozen
        pydantic model would otherwise rehash every field on every look-up."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((type(self), tuple(self.__dict__[k] for k in type(self).model_fields)))
            self.__dict__["_hash"] = cached
        return cached

    @property
    def is_moe(self) -> bool:
        """True when at least one layer routes tokens to experts."""
        return self.moe is not None and any(self.moe.moe_layers)


class StoredTensor(_Frozen):
    """One tensor as a checkpoint file stores it (read from a safetensors or GGUF header)."""

    name: str  # as stored: "model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"
    layer: int | None  # decoder layer index, None for embeddings, head, final norm, vision tower
    role: str  # llm_mem.params roles (attn_q, expert_up, embed, lm_head, norm...), "vision", "mmproj", "other"
    dtype: str  # safetensors dtype (BF16, F8_E4M3, I32...) or ggml type (Q4_K, MXFP4, F32...)
    numel: int
    nbytes: int


class Checkpoint(_Frozen):
    """What a model's weight files hold, read from their headers (never the data)."""

    format: Literal["safetensors", "gguf"]
    files: tuple[str, ...]  # file names (local paths or repo file names), in order
    total_bytes: int  # exact tensor bytes (headers and padding excluded)
    dtype_counts: dict[str, int]  # elements per dtype / ggml type
    tensors: tuple[StoredTensor, ...] = ()  # per tensor, when the source reads them one by one
    label: str = ""  # e.g. "GGUF Q4_K_M (file type 15)", "safetensors BF16"
    projector_bytes: int = 0  # a GGUF mmproj file's tensors (vision tower + projector), not in total_bytes
    adapter_bytes: int = 0  # LoRA adapter files found beside the weights, not in total_bytes
    notes: tuple[str, ...] = ()


class Source(_Frozen):
    """Where a model description came from, shown in every report."""

    kind: Literal["local", "bundled", "hub", "gguf", "ollama"]
    location: str  # path, bundled file name, or repo id@revision
    note: str | None = None


class ResolvedModel(_Frozen):
    """What a source hands to the estimators: the spec, its origin and checkpoint facts."""

    name: str
    spec: ModelSpec
    source: Source
    checkpoint: Checkpoint | None = None  # the weight files' headers, when a source read them
    warnings: tuple[str, ...] = ()

    @property
    def checkpoint_dtypes(self) -> dict[str, int] | None:
        """Elements per dtype in the checkpoint's headers (None when not read)."""
        return self.checkpoint.dtype_counts if self.checkpoint is not None else None
