"""Transient memory of a forward pass at inference: the live tensors of one layer at its peak
(no autograd graph is kept, so layers do not accumulate), the logits, and engine workspaces.

Element sizes: activations in the compute dtype (2 bytes for bf16/fp16); softmax of eager
attention upcasts to fp32 (transformers eager_attention_forward: `softmax(..., dtype=float32)`),
and logits are upcast to fp32 before sampling/loss (transformers `logits.float()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llm_mem.spec import ModelSpec

Attention = Literal["eager", "sdpa", "flash"]
LogitsMode = Literal["last", "full"]

# vLLM V1 profiles one forward of max_num_batched_tokens tokens; default 8192 for the OpenAI
# server on data-center GPUs (vllm/engine/arg_utils.py, _set_default_args_v1).
VLLM_MAX_BATCHED_TOKENS = 8192
# vLLM V1 profiles a dummy sampler run over max_num_seqs rows: 1024 on GPUs with >= 70 GiB
# (vllm/engine/arg_utils.py, default_max_num_seqs; 256 on smaller ones). Its top-k/top-p path
# (vllm/v1/sample/ops/topk_topp_sampler.py) holds per logit: fp32 logits 4 + sorted values 4 +
# int64 sort indices 8 + softmax probs 4 + cumsum 4 + scattered-back logits 4 + int64 scatter
# indices 8 = 36 bytes. llm-d's V1 profiles (benchmarks/accuracy) land 6-9% above this.
VLLM_MAX_NUM_SEQS = 1024
VLLM_SAMPLER_BYTES_PER_LOGIT = 36
# llama.cpp processes prompts in micro-batches of n_ubatch tokens (common/common.h: n_ubatch = 512).
LLAMACPP_UBATCH = 512


@dataclass(frozen=True)
class Transient:
    """Peak transient bytes of a phase, split into activations and logits."""

    activations: int
    logits: int
    phase: str  # which phase sets the peak: "prefill" or "decode"
    note: str | None = None


def layer_peak(spec: ModelSpec, tokens: int, batch: int, kv_len: int, attention: Attention,
               elem: int = 2) -> int:
    """Live bytes at the peak of one decoder layer processing `tokens` (over `batch` sequences)
    that attend to `kv_len` keys each."""
    h, a, kv, d = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim
    q_len = tokens // max(batch, 1)
    # the layer's input (still referenced by the decoder loop), the residual sum and the normed copy
    # (measured with --verify: benchmarks/verify/RESULTS.md)
    residual = 3 * tokens * h * elem
    qkv = tokens * (a + 2 * kv) * d * elem
    rope = tokens * (a + kv) * d * elem  # rotated q, k are new tensors
    attn_out = tokens * a * d * elem
    if spec.mla is not None:
        m = spec.mla
        qkv = tokens * a * (2 * (m.qk_nope_head_dim + m.qk_rope_head_dim) + m.v_head_dim) * elem
    scores = 0
    if attention == "eager":
        # attn_weights (compute dtype) + fp32 softmax + cast back, for q_len x kv_len per head
        scores = batch * a * q_len * kv_len * (elem + 4 + elem)
    attn_stage = qkv + rope + attn_out + scores
    if spec.moe is not None and any(spec.moe.moe_layers):
        moe = spec.moe
        # router logits in fp32, top-k routing, per-expert gathered tokens (~tokens*k/E) and the
        # combined output; shared experts run on every token
        routed = tokens * moe.top_k
        # transformers' grouped-mm experts (integrations/moe.py) hold four routed x h tensors at the peak:
        # gathered inputs, down-projection output, the routing-weighted product and its un-permuted copy
        # DeepSeek keeps its routing weights in fp32, so the routing-weighted product is fp32
        # (measured with --verify on DeepSeek-V2-Lite: benchmarks/verify/RESULTS.md)
        weighted = 4 if spec.moe_routing_fp32 else elem
        mlp_stage = (tokens * moe.num_experts * 4 + routed * h * (3 * elem + weighted)
                     + 3 * tokens * moe.shared_intermediate_size * elem)
        dense_i = spec.intermediate_size if not all(moe.moe_layers) else 0
        mlp_stage = max(mlp_stage, 3 * tokens * dense_i * elem)
    else:
        width = spec.intermediate_size
        mlp_stage = (3 if spec.mlp_kind == "gated" else 2) * tokens * width * elem
    return residual + max(attn_stage, mlp_stage)


def logits_bytes(spec: ModelSpec, positions: int, elem: int = 2) -> int:
    """Logits for `positions` positions: the compute-dtype output plus its fp32 upcast."""
    return positions * spec.vocab_size * (elem + 4)


def inference_transient(spec: ModelSpec, context: int, batch: int, attention: Attention,
                        runtime: str, logits: LogitsMode, elem: int = 2) -> Transient:
    """The larger of prefill and decode transients for a prompt filling `context` tokens."""
    if runtime == "vllm":
        tokens = min(context * batch, VLLM_MAX_BATCHED_TOKENS)
        # flash-attention kernels, chunked prefill: no s^2 term; sampler logits for max_num_seqs rows
        act = layer_peak(spec, tokens, max(1, tokens // context), min(context, tokens), "flash", elem)
        sampler = VLLM_MAX_NUM_SEQS * spec.vocab_size * VLLM_SAMPLER_BYTES_PER_LOGIT
        # the forward's activations are freed before the sampler runs: the profile peak is the larger
        phase = "prefill" if act >= sampler else "sampler"
        return Transient(max(act, sampler), 0, phase,
                         f"vLLM V1 profile: a forward of {tokens} batched tokens, then a sampler run over "
                         f"{VLLM_MAX_NUM_SEQS} rows x {spec.vocab_size:,} logits (36 bytes each)")
    if runtime == "llamacpp":
        ub = min(LLAMACPP_UBATCH, context * batch)
        kq = ub * context * spec.num_heads * 4 + ub * context * 2 if attention != "flash" else ub * context * 2
        width = spec.intermediate_size if spec.moe is None else max(spec.intermediate_size,
                                                                    spec.moe.expert_intermediate_size)
        other = ub * (width + spec.hidden_size) * 4
        logit = ub * spec.vocab_size * 4
        # ggml's graph allocator reuses the attention-score buffer for the logits (they are never live together)
        return Transient(max(kq, logit) + other, 0, "prefill",
                         f"llama.cpp compute buffer for n_ubatch={ub}" + ("" if attention == "flash" else ", no flash-attn"))
    tokens = context * batch
    prefill = layer_peak(spec, tokens, batch, context, attention, elem)
    decode = layer_peak(spec, batch, batch, context, attention, elem)
    positions = tokens if logits == "full" else batch
    phase = "prefill" if prefill >= decode else "decode"
    return Transient(max(prefill, decode), logits_bytes(spec, positions, elem), phase)
