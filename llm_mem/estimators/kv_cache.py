"""KV cache bytes: GQA/MQA, explicit head_dim, MLA latent, sliding-window and hybrid layers.

Per token and layer a standard cache holds K and V: 2 * kv_heads * head_dim elements.
MLA (DeepSeek-V2 paper arXiv:2405.04434, eq. 9-10) caches the compressed latent c_kv
(kv_lora_rank) plus the decoupled RoPE key (qk_rope_head_dim) once for all heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llm_mem.errors import UsageError
from llm_mem.spec import ModelSpec

Runtime = Literal["transformers", "vllm", "llamacpp"]

# Bits per cached element. q8_0 / q4_0 are llama.cpp's block types for `--cache-type-k/v`
# (ggml-common.h: block_q8_0 = 34 B per 32, block_q4_0 = 18 B per 32).
KV_DTYPE_BITS = {"fp32": 32.0, "bf16": 16.0, "fp16": 16.0, "fp8": 8.0, "q8_0": 34 * 8 / 32, "q4_0": 18 * 8 / 32}


def kv_bits(kv_dtype: str, runtime: Runtime) -> float:
    """Bits per cached element; refuses dtypes the runtime cannot cache in."""
    key = kv_dtype.lower().replace("float16", "fp16").replace("bfloat16", "bf16").replace("fp8_e4m3", "fp8")
    if key not in KV_DTYPE_BITS:
        raise UsageError(f"unknown --kv-dtype {kv_dtype!r}", f"choose one of {', '.join(KV_DTYPE_BITS)}")
    if key in ("q8_0", "q4_0") and runtime != "llamacpp":
        raise UsageError(f"--kv-dtype {key} is a llama.cpp cache type", "add --runtime llamacpp, or use fp8")
    return KV_DTYPE_BITS[key]


@dataclass(frozen=True)
class KvCache:
    """The cache for one workload, with the per-token figures users compare."""

    total: int  # bytes for batch x context
    per_token_full: int  # bytes per token if every layer held the full context (all layers)
    per_1k_tokens: int  # bytes for 1,024 tokens of one sequence at this context
    per_layer: list[int]  # bytes per layer for the workload
    cached_tokens: list[int]  # tokens each layer holds
    mla_latent: bool
    note: str | None = None


def elements_per_token_layer(spec: ModelSpec, runtime: Runtime) -> tuple[int, bool]:
    """Cached elements per token in one attention layer, and whether it is the MLA latent."""
    if spec.mla is not None:
        # vLLM, SGLang, llama.cpp and transformers 5 (modeling_deepseek_v2/v3: cache.update(k_nope, k_pe))
        # all cache the compressed latent
        return spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim, True
    return 2 * spec.num_kv_heads * spec.head_dim, False


def cached_tokens_per_layer(spec: ModelSpec, context: int, runtime: Runtime) -> list[int]:
    """Tokens each layer keeps at the peak. Sliding layers keep min(context, window) in llama.cpp's
    iSWA cache; vLLM sizes them at full length in hybrid (sliding + full) models, as its KV manager
    allocates per full-attention spec; transformers' DynamicSlidingWindowLayer keeps a view of the
    last window-1 tokens whose storage is the whole prefill, so right after prefill a sliding layer
    still holds the full context (measured with --verify on gpt-oss-20b)."""
    kinds = spec.layer_types
    hybrid = "sliding" in kinds and "full" in kinds
    out = []
    for k in kinds:
        if k == "linear":
            out.append(0)
        elif k == "sliding" and spec.sliding_window and runtime != "transformers" and not (runtime == "vllm" and hybrid):
            out.append(min(context, spec.sliding_window))
        else:
            out.append(context)
    return out


def kv_cache(spec: ModelSpec, context: int, batch: int, kv_dtype: str, runtime: Runtime) -> KvCache:
    """KV cache bytes for `batch` sequences of `context` tokens."""
    bits = kv_bits(kv_dtype, runtime)
    elems, latent = elements_per_token_layer(spec, runtime)
    tokens = cached_tokens_per_layer(spec, context, runtime)
    per_layer = [int(t * batch * elems * bits / 8) for t in tokens]
    attn_layers = sum(1 for k in spec.layer_types if k != "linear")
    per_token_full = int(attn_layers * elems * bits / 8)
    per_1k = int(sum(min(t, 1024) for t in cached_tokens_per_layer(spec, max(context, 1024), runtime))
                 * elems * bits / 8)
    note = None
    if spec.mla is not None:
        note = f"MLA latent cache: {elems} values per token per layer (kv_lora_rank + rope dims)"
    if runtime == "transformers" and "sliding" in spec.layer_types and spec.sliding_window and context > spec.sliding_window:
        note = (f"transformers keeps the whole prefill in sliding-window layers until the first decode step; "
                f"llama.cpp caps them at the {spec.sliding_window}-token window (--runtime llamacpp)")
    if "linear" in spec.layer_types:
        note = "linear-attention layers keep a fixed-size state, not counted per token"
    return KvCache(sum(per_layer), per_token_full, per_1k, per_layer, tokens, latent, note)
