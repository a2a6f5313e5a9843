"""KV cache bytes: GQA/MQA, explicit head_dim, K and V widths apart, the MLA latent, sliding-window
and linear-attention layers.

Per token and attention layer a standard cache holds K (kv_heads x head_dim) and V
(kv_heads x v_head_dim). MLA (DeepSeek-V2 paper arXiv:2405.04434, eq. 9-10) caches the compressed
latent c_kv (kv_lora_rank) plus the decoupled RoPE key (qk_rope_head_dim) once for all heads, and
no V: vLLM 0.34 (MLAAttentionSpec head_size = kv_lora_rank + rope, head_size_v = 0), llama.cpp
b10470 (llama-kv-cache.cpp: ``has_v = !is_mla``) and transformers 5 all keep only the latent.

How many tokens each layer keeps is the engine's rule; the engines (llm_mem.runtimes) pass
``tokens_per_layer``. This module only multiplies.

Layers that mix tokens without attention (Mamba, Gated DeltaNet, LFM2's short conv; llm_mem.mixers)
keep a constant state per sequence instead: conv window + recurrent state, whatever the context. It is
added per sequence, in the model's 16-bit dtype by default (transformers and vLLM keep it in the
model dtype; llama.cpp in F32: ``state_bits``).
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_mem.choices import KvDtype
from llm_mem.dtypes import GGML_BY_NAME
from llm_mem.mixers import state_elements
from llm_mem.spec import ModelSpec

# Bits per cached element. llama.cpp's block types for -ctk/-ctv are ggml types (llm_mem.dtypes
# GGML_TYPES: q8_0 = 34 B per 32, q4_0 = 18 B per 32, ...); fp8 KV is one byte in vLLM 0.34
# (utils/torch_utils.py STR_DTYPE_TO_TORCH_DTYPE maps fp8, fp8_e4m3, fp8_e5m2 to uint8).
_GGML_KV = {KvDtype.q8_0: "Q8_0", KvDtype.q5_1: "Q5_1", KvDtype.q5_0: "Q5_0", KvDtype.q4_1: "Q4_1",
            KvDtype.iq4_nl: "IQ4_NL", KvDtype.q4_0: "Q4_0"}
_FLOAT_KV_BITS = {KvDtype.fp32: 32.0, KvDtype.bf16: 16.0, KvDtype.fp16: 16.0, KvDtype.fp8: 8.0,
                  KvDtype.fp8_e5m2: 8.0}


def kv_bits(dtype: KvDtype | str) -> float:
    """Bits per cached element of a KV dtype."""
    d = KvDtype(dtype)
    if d in _GGML_KV:
        return GGML_BY_NAME[_GGML_KV[d]].bpw
    return _FLOAT_KV_BITS[d]


# DeepSeek-V3.2's lightning-indexer key in vLLM 0.34: index_head_dim fp8 bytes plus one fp32 scale per 128
# elements, whatever the KV dtype (model_executor/models/deepseek_v2.py Indexer: DeepseekV32IndexerCache
# head_dim = head_dim + head_dim // quant_block_size * 4, dtype uint8, quant_block_size 128)
VLLM_INDEX_BITS = 8 + 32 / 128


@dataclass(frozen=True)
class KvWidths:
    """Elements one token adds to one attention layer's cache."""

    k: int
    v: int
    latent: bool  # the MLA latent (K only)
    index: int = 0  # DeepSeek-V3.2's indexer key (ModelSpec.indexer_head_dim)

    @property
    def total(self) -> int:
        return self.k + self.v


def kv_widths(spec: ModelSpec, kv_heads: int | None = None) -> KvWidths:
    """K and V elements per token per attention layer (``kv_heads``: per rank, default all)."""
    if spec.encoder:  # a bidirectional encoder caches nothing between passes
        return KvWidths(0, 0, False)
    if spec.mla is not None:
        return KvWidths(spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim, 0, True, spec.indexer_head_dim)
    heads = spec.num_kv_heads if kv_heads is None else kv_heads
    return KvWidths(heads * spec.head_dim, heads * (spec.v_head_dim or spec.head_dim), False)


@dataclass(frozen=True)
class KvCache:
    """The cache for one workload, with the per-token figures users compare."""

    total: int  # bytes for every sequence's cached tokens
    per_token_full: int  # bytes per token if every attention layer held the full context
    per_1k_tokens: int  # bytes for 1,024 tokens of one sequence under the engine's window rules
    per_layer: list[int]  # bytes per layer
    cached_tokens: list[int]  # tokens each layer holds, per sequence
    mla_latent: bool
    note: str | None = None


def layer_bytes(widths: KvWidths, tokens: int, k_bits: float, v_bits: float, index_bits: float | None = None) -> int:
    """Bytes of ``tokens`` tokens in one layer's cache. The indexer key (DeepSeek-V3.2) is kept like K unless
    ``index_bits`` says otherwise: transformers 5.24 keeps it in the model dtype (DynamicIndexedLayer
    concatenates the keys as computed), vLLM in its own fp8 layout (VLLM_INDEX_BITS)."""
    ib = k_bits if index_bits is None else index_bits
    return int(tokens * (widths.k * k_bits + widths.v * v_bits + widths.index * ib) / 8)


def state_bytes(spec: ModelSpec, sequences: int, bits: float = 16.0, trim: int = 0) -> list[int]:
    """Per layer, the constant state of ``sequences`` sequences (0 for attention-only layers); ``trim``:
    conv columns the engine keeps fewer than the kernel (llm_mem.mixers.state_elements)."""
    return [int(e * sequences * bits / 8) for e in state_elements(spec, trim)]


def kv_cache(spec: ModelSpec, tokens_per_layer: list[int], sequences: int, k_dtype: KvDtype | str,
             v_dtype: KvDtype | str | None = None, tokens_1k: list[int] | None = None,
             kv_heads: int | None = None, note: str | None = None, state_bits: float = 16.0) -> KvCache:
    """KV bytes when layer i keeps ``tokens_per_layer[i]`` tokens for each of ``sequences`` sequences
    (0 for layers with no KV: linear attention, recurrent state), plus the constant state of the layers
    that have one. ``tokens_1k``: the same rule at a 1,024-token context, for the per-1k figure."""
    kb = kv_bits(k_dtype)
    vb = kv_bits(v_dtype if v_dtype is not None else k_dtype)
    w = kv_widths(spec, kv_heads)
    state = state_bytes(spec, sequences, state_bits)
    per_layer = [layer_bytes(w, t * sequences, kb, vb) + st for t, st in zip(tokens_per_layer, state)]
    attn_layers = sum(spec.kv_layers)
    per_1k = sum(layer_bytes(w, t, kb, vb) for t in (tokens_1k or [min(t, 1024) for t in tokens_per_layer]))
    per_1k += sum(state_bytes(spec, 1, state_bits))
    if spec.encoder:
        note = "encoder-only model (bidirectional attention): no KV cache, each pass reads the whole input"
    if any(state):
        note = ((note + "; ") if note else "") + (f"{sum(state) / 2**20:,.1f} MiB of it is the constant "
                                                  "state of the state-space / linear-attention layers")
    return KvCache(sum(per_layer), layer_bytes(w, attn_layers, kb, vb), per_1k, per_layer, list(tokens_per_layer),
                   w.latent, note)


def full_context_tokens(spec: ModelSpec, context: int) -> list[int]:
    """Every attention layer holds the whole context; linear-attention layers and layers that reuse another
    layer's K and V hold none."""
    return [context if own else 0 for own in spec.kv_layers]
