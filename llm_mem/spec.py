"""The typed architecture description every estimator reads.

`sources/parse.py` is the only place that knows config.json's key aliases and family quirks;
it turns a raw dict into a frozen `ModelSpec`. Estimators never see the raw config.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from llm_mem.errors import ConfigError
from llm_mem.mixers import Mixers

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


class TrainingCaps(_Frozen):
    """What a family's transformers modules do in training, filled by the parser
    (llm_mem/sources/train_caps.py) so that the training estimators never branch on a family name.
    Module names are transformers' nn.Linear names, the names PEFT's ``target_modules`` match."""

    lora_default_targets: tuple[str, ...] = ()  # PEFT's target map for the model_type; () = PEFT has none
    qkv_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")  # one name: one fused projection
    o_module: str = "o_proj"
    up_modules: tuple[str, ...] = ("gate_proj", "up_proj")  # gated MLP: two names, or one fused gate_up
    down_module: str = "down_proj"
    # PEFT's all-linear reaches the MoE router and the fused routed experts (transformers 5 fused them from
    # per-expert Linears, and PEFT maps all-linear onto the fused parameters); False: attention and dense only
    lora_experts: bool = False
    qkv_split_copies: bool = False  # the fused projection's q/k/v parts are copied out (Falcon's reshape)
    kv_broadcast: bool = False  # one K/V head broadcast by matmul, no repeat_kv: SDPA takes its math path (Falcon)
    attn_softcap: float | None = None  # tanh soft-capping of attention scores (Gemma-2)
    router_fp32_input: bool = False  # the MoE router upcasts its input to fp32 (DeepSeek)
    router_scores: Literal["softmax", "sigmoid", "topk_softmax"] = "softmax"  # gpt-oss: softmax of the top-k
    router_norm_topk: bool = False  # the top-k weights are renormalised (norm_topk_prob)
    routing_fp32: bool = False  # the routing weights multiply the experts' output in fp32 (Mixtral, DeepSeek)
    expert_clamp_glu: bool = False  # gpt-oss's clamped GLU with (up + 1)
    logit_softcap: float | None = None  # tanh soft-capping of the final logits (Gemma-2)
    norm_fp32_scale: bool = False  # RMSNorm multiplies by its weight in fp32 (Gemma's 1 + weight, gpt-oss)
    q_head_major: bool = False  # RoPE's cat leaves q head-major (partial rotary): SDPA's output is copied
    embed_dropout: float = 0.0  # dropout on the embeddings (GPT-2's embd_pdrop)
    ckpt_mask_arg: bool = False  # eager passes its 4D causal mask positionally: checkpointing keeps it (GPT-2)


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
    qk_norm_full: bool = False  # the q/k norms span all heads (OLMo-2: heads x head_dim), not one head
    norm_bias: bool | None = None  # LayerNorms without bias (Cohere); None: RMSNorm no bias, LayerNorm a bias
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
    training: TrainingCaps = TrainingCaps()  # what the family's modules save and name in training

    # attention layout
    mla: MlaSpec | None = None
    # the last N layers reuse the K and V of an earlier layer of their kind: no k/v projections and no cache of
    # their own (Gemma-3n's num_kv_shared_layers: transformers 5.24 Gemma3nTextAttention, vLLM 0.34 KV sharing,
    # llama.cpp n_layer_kv_from_start)
    kv_shared_layers: int = 0
    # DeepSeek-V3.2's lightning indexer: one key of this width per token per layer, cached beside the MLA latent
    # (transformers 5.24 cache_utils.py DynamicIndexedLayer.indexer_keys; vLLM 0.34 DeepseekV32IndexerCache)
    indexer_head_dim: int = 0
    layer_types: tuple[LayerKind, ...]
    sliding_window: int | None = None
    alibi: bool = False

    moe: MoeSpec | None = None
    # token mixers other than attention (state-space, linear attention, short conv) per layer, with the
    # constant per-sequence state they keep instead of KV (llm_mem.mixers); None: attention in every layer
    mixers: Mixers | None = None
    # towers and projectors around the language model (vision, audio), as (name, role, shape) tensors:
    # roles "vision" and "mmproj" (llm_mem.sources.roles); their weights count, they hold no KV
    multimodal: tuple[tuple[str, str, tuple[int, ...]], ...] = ()
    image_tokens: int | None = None  # context tokens one image adds (the largest image, where it varies)
    # tensors outside the pattern the fields above describe, as transformers 5.24 builds them: (layer, name,
    # role, shape), layer -1 for a model-level one (BERT's token-type table and LM-head transform, a head bias,
    # Zamba's shared attention block), filled by the family modules (llm_mem/sources/encoders.py, classic.py,
    # hybrid.py)
    extra: tuple[tuple[int, str, str, tuple[int, ...]], ...] = ()
    # a bidirectional encoder (BERT, RoBERTa...): every pass reads the whole input and nothing is kept between
    # passes, so inference holds no KV cache (vLLM 0.34 runs them with encoder-only attention, no KV pages)
    encoder: bool = False
    # a model type without a native layout: the parameters transformers built on the meta device as
    # (name, shape, copies), and the line that says so (llm_mem.sources.meta_count); empty when native
    counted: tuple[tuple[str, tuple[int, ...], int], ...] = ()
    counted_by: str | None = None
    from_headers: bool = False  # the inventory is the checkpoint's safetensors headers (weights: their bytes)
    quantization: QuantConfig | None = None
    hidden_act: str | None = None
    attention_dropout: float = 0.0
    hidden_dropout: float = 0.0

    def __init__(self, **data: Any) -> None:
        """Validate; a description that breaks a type or an invariant is one ConfigError line, whatever
        its source (config.json, GGUF, Ollama), never a pydantic traceback."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"model description: {where + ': ' if where else ''}{msg}") from None

    @model_validator(mode="after")
    def _invariants(self) -> ModelSpec:
        problem = spec_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def __hash__(self) -> int:
        """Hashed once: the estimators' caches (inventory, weight bytes) key on the spec, and a frozen
        pydantic model would otherwise rehash every field on every look-up."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((type(self), tuple(self.__dict__[k] for k in type(self).model_fields)))
            self.__dict__["_hash"] = cached
        return cached

    @property
    def kv_layers(self) -> tuple[bool, ...]:
        """Per layer, whether it keeps a KV cache of its own: not a linear-attention / state-space layer, not
        one that reuses an earlier layer's K and V (kv_shared_layers), not an encoder."""
        own = self.num_layers - self.kv_shared_layers
        return tuple(k != "linear" and i < own and not self.encoder for i, k in enumerate(self.layer_types))

    @property
    def is_moe(self) -> bool:
        """True when at least one layer routes tokens to experts."""
        return self.moe is not None and any(self.moe.moe_layers)


def spec_problem(s: ModelSpec) -> str | None:
    """What makes a description impossible (a zero or negative size, per-layer lists of the wrong length,
    more experts per token than experts), or None. Every estimator may rely on these."""
    sizes = {"vocab_size": s.vocab_size, "hidden_size": s.hidden_size, "num_layers": s.num_layers,
             "num_heads": s.num_heads, "num_kv_heads": s.num_kv_heads, "head_dim": s.head_dim,
             "intermediate_size": s.intermediate_size}
    for name, v in sizes.items():
        if v < 1:
            return f"{name} is {v}; it must be positive"
    for name, opt in (("v_head_dim", s.v_head_dim), ("max_position_embeddings", s.max_position_embeddings),
                      ("sliding_window", s.sliding_window), ("embed_proj_dim", s.embed_proj_dim)):
        if opt is not None and opt < 1:
            return f"{name} is {opt}; it must be positive or absent"
    for name, count in (("norms_per_layer", s.norms_per_layer), ("position_embeddings", s.position_embeddings),
                        ("mtp_layers", s.mtp_layers), ("indexer_head_dim", s.indexer_head_dim),
                        ("kv_shared_layers", s.kv_shared_layers)):
        if count < 0:
            return f"{name} is {count}; it must not be negative"
    if s.kv_shared_layers >= s.num_layers:
        return f"{s.kv_shared_layers} KV-sharing layers of {s.num_layers}: none would produce the cache"
    if s.num_kv_heads > s.num_heads:
        return f"{s.num_kv_heads} KV heads for {s.num_heads} attention heads"
    if len(s.layer_types) != s.num_layers:
        return f"{len(s.layer_types)} layer kinds for {s.num_layers} layers"
    for name, rate in (("attention_dropout", s.attention_dropout), ("hidden_dropout", s.hidden_dropout)):
        if not 0 <= rate <= 1:  # NaN fails too
            return f"{name} is {rate}; a rate is between 0 and 1"
    if s.moe is not None:
        m = s.moe
        if m.num_experts < 1 or not 1 <= m.top_k <= m.num_experts:
            return f"{m.top_k} experts per token of {m.num_experts} experts"
        if m.expert_intermediate_size < 1 or m.shared_intermediate_size < 0:
            return "expert widths must be positive"
        if len(m.moe_layers) != s.num_layers:
            return f"{len(m.moe_layers)} MoE layer flags for {s.num_layers} layers"
    if s.mla is not None:
        a = s.mla
        if a.kv_lora_rank < 1 or a.v_head_dim < 1 or (a.q_lora_rank is not None and a.q_lora_rank < 1):
            return "MLA ranks and the value head width must be positive"
        if a.qk_nope_head_dim < 0 or a.qk_rope_head_dim < 0 or a.qk_nope_head_dim + a.qk_rope_head_dim < 1:
            return "MLA query/key head widths must add up to a positive width"
    if any(layer >= s.num_layers or any(d < 1 for d in shape) for layer, _, _, shape in s.extra):
        return "an extra tensor's layer or shape is out of range"
    if s.mixers is not None and not len(s.mixers.kinds) == len(s.mixers.mlp) == s.num_layers:
        return f"{len(s.mixers.kinds)} mixer kinds and {len(s.mixers.mlp)} MLP flags for {s.num_layers} layers"
    return None


class StoredTensor(_Frozen):
    """One tensor as a checkpoint file stores it (read from a safetensors or GGUF header)."""

    name: str  # as stored: "model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"
    layer: int | None  # decoder layer index, None for embeddings, head, final norm, vision tower
    role: str  # llm_mem.params roles (attn_q, expert_up, embed, lm_head, norm...), "vision", "mmproj", "other"
    dtype: str  # safetensors dtype (BF16, F8_E4M3, I32...) or ggml type (Q4_K, MXFP4, F32...)
    numel: int
    nbytes: int
    shape: tuple[int, ...] = ()  # logical shape as stored (safetensors); () where the source gives none


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
