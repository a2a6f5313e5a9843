"""Transient memory of a forward pass at inference: the live tensors of one layer at its peak
(no autograd graph is kept, so layers do not accumulate), the logits, and engine workspaces.

Element sizes: activations in the compute dtype (2 bytes for bf16/fp16); softmax of eager
attention upcasts to fp32 (transformers eager_attention_forward: `softmax(..., dtype=float32)`),
and logits are upcast to fp32 before sampling/loss (transformers `logits.float()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llm_mem.choices import Attention
from llm_mem.spec import ModelSpec

LogitsMode = Literal["last", "full"]

@dataclass(frozen=True)
class Transient:
    """Peak transient bytes of a phase, split into activations and logits."""

    activations: int
    logits: int
    phase: str  # which phase sets the peak: "prefill" or "decode"
    note: str | None = None


def layer_peak(spec: ModelSpec, tokens: int, batch: int, kv_len: int, attention: Attention,
               elem: int = 2, tp: int = 1) -> int:
    """Live bytes at the peak of one decoder layer processing `tokens` (over `batch` sequences)
    that attend to `kv_len` keys each. Under tensor parallelism (``tp``) each rank computes 1/tp of
    the heads and of the MLP width; the residual stream is whole on every rank."""
    h, d = spec.hidden_size, spec.head_dim
    a = max(1, spec.num_heads // tp)
    kv = max(1, spec.num_kv_heads // tp)
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
                     + 3 * tokens * moe.shared_intermediate_size // tp * elem)
        dense_i = spec.intermediate_size // tp if not all(moe.moe_layers) else 0
        mlp_stage = max(mlp_stage, 3 * tokens * dense_i * elem)
    else:
        width = spec.intermediate_size // tp
        mlp_stage = (3 if spec.mlp_kind == "gated" else 2) * tokens * width * elem
    return residual + max(attn_stage, mlp_stage)


def logits_bytes(spec: ModelSpec, positions: int, elem: int = 2) -> int:
    """Logits for `positions` positions: the compute-dtype output plus its fp32 upcast."""
    return positions * spec.vocab_size * (elem + 4)
