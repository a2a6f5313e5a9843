"""Llama-shaped families whose modules differ from Llama's in a few switches (biases, norms, q/k norms,
MoE blocks), as spec fields. ``fields(cfg, family)`` returns what the parser overrides after reading the
config the Llama way; ``unsupported(cfg, family)`` names an option whose layout is not modelled here
(the parser then lets transformers count the model).

Every entry is read off transformers 5.24 models/<family>/modeling_<family>.py (the nn.Linear bias
arguments, the norms of the decoder layer) and configuration_<family>.py (defaults, attribute_map).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Fields = dict[str, Any]


def _b(cfg: dict[str, Any], key: str, default: bool) -> bool:
    v = cfg.get(key)
    return default if v is None else bool(v)


def _tie(cfg: dict[str, Any], default: bool) -> Fields:
    return {"tie_word_embeddings": _b(cfg, "tie_word_embeddings", default)}


def _attn(cfg: dict[str, Any], key: str = "attention_bias", default: bool = False, o: bool | None = None) -> Fields:
    """q/k/v biases from ``key``; o_proj the same unless ``o`` fixes it."""
    b = _b(cfg, key, default)
    return {"qkv_bias": b, "o_bias": b if o is None else o}


# family -> fields. Comments: the modeling file's layer, where it differs from Llama.
FAMILIES: dict[str, Callable[[dict[str, Any]], Fields]] = {
    # CwmAttention: q/k/v/o never biased; CwmMLP mlp_bias; CwmConfig tie False
    "cwm": lambda c: {**_attn(c, "-", False), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    # Ernie4_5: every projection biased by use_bias; tie True
    "ernie4_5": lambda c: {**_attn(c, "use_bias"), "mlp_bias": _b(c, "use_bias", False), **_tie(c, True)},
    # ExaoneConfig / InternLM3Config / IQuestCoderConfig build LlamaForCausalLM (modeling_auto mapping);
    # InternLM3Config attribute_map: qkv_bias -> attention_bias, bias -> mlp_bias
    "exaone": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    "internlm3": lambda c: {**_attn(c, "qkv_bias" if "qkv_bias" in c else "attention_bias"),
                            "mlp_bias": _b(c, "bias" if "bias" in c else "mlp_bias", False), **_tie(c, False)},
    "iquestcoder": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    # HeliumAttention: o_proj (hidden, hidden) without bias (unsupported() checks heads x head_dim == hidden)
    "helium": lambda c: {**_attn(c, o=False), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    # Ministral3: no biases; tie False
    "ministral3": lambda c: {**_attn(c, "-", False), "mlp_bias": False, **_tie(c, False)},
    # SmolLM3: attention_bias on all four projections; tie True
    "smollm3": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, True)},
    # VaultGemma: two norms (input, pre-feedforward), MLP without bias; tie True
    "vaultgemma": lambda c: {**_attn(c), "mlp_bias": False, **_tie(c, True)},
    # OlmoLayerNorm has no weight and no bias: no norm parameters at all
    "olmo": lambda c: {**_attn(c), "mlp_bias": False, "norms_per_layer": 0, "final_norm": False, **_tie(c, False)},
    # Olmo2/Olmo3: q_norm over heads x head_dim, k_norm over kv heads x head_dim
    "olmo2": lambda c: {**_attn(c), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True, **_tie(c, False)},
    "olmo3": lambda c: {**_attn(c), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True, **_tie(c, False)},
    # Olmoe: q_norm over hidden, k_norm over (hidden / heads) x kv heads; MoE router (experts, hidden)
    "olmoe": lambda c: {**_attn(c), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True, **_tie(c, False)},
    # GraniteMoe(Shared): attention_bias on all four; experts only (plus the shared MLP)
    "granitemoe": lambda c: {**_attn(c), **_tie(c, False)},
    "granitemoeshared": lambda c: {**_attn(c), **_tie(c, False)},
    # SeedOss: q/k/v bias attention_bias (default True), o_proj attention_out_bias (default False)
    "seed_oss": lambda c: {**_attn(c, default=True, o=_b(c, "attention_out_bias", False)),
                           "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    # Exaone4: no biases, q/k RMSNorm per head
    "exaone4": lambda c: {**_attn(c, "-", False), "mlp_bias": False, "qk_norm": True, **_tie(c, False)},
    # MiniMaxM2: no biases, q/k norm over all heads; router (experts, hidden); e_score_correction_bias is a buffer
    "minimax_m2": lambda c: {**_attn(c, "-", False), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True,
                             **_tie(c, False)},
    # Glm / Glm4: q/k/v bias attention_bias (default True), o_proj without; fused gate_up (same count);
    # Glm4 adds post_self_attn_layernorm and post_mlp_layernorm
    "glm": lambda c: {**_attn(c, default=True, o=False), "mlp_bias": False, **_tie(c, False)},
    "glm4": lambda c: {**_attn(c, default=True, o=False), "mlp_bias": False, "norms_per_layer": 4, **_tie(c, False)},
    # Glm4Moe: DeepSeek-style layout (first_k_dense_replace, shared = moe_intermediate_size x n_shared_experts),
    # q/k/v bias attention_bias, o_proj without, q/k norm per head when use_qk_norm
    "glm4_moe": lambda c: {**_attn(c, o=False), "mlp_bias": False, "qk_norm": _b(c, "use_qk_norm", False),
                           **_tie(c, False)},
    # Cohere: one LayerNorm per layer (parallel attention and MLP), LayerNorms without bias, q/k norms over
    # (heads, head_dim) when use_qk_norm; Cohere2 the same without q/k norms; tie True
    "cohere": lambda c: {**_attn(c), "mlp_bias": False, "norm": "layer", "norm_bias": False, "norms_per_layer": 1,
                         "qk_norm": _b(c, "use_qk_norm", False), "qk_norm_full": True, **_tie(c, True)},
    "cohere2": lambda c: {**_attn(c), "mlp_bias": False, "norm": "layer", "norm_bias": False, "norms_per_layer": 1,
                          **_tie(c, True)},
    # Starcoder2: LayerNorms with bias, plain c_fc / c_proj MLP; use_bias on every projection; tie True
    "starcoder2": lambda c: {**_attn(c, "use_bias", True), "mlp_kind": "plain", "mlp_bias": _b(c, "use_bias", True),
                             "norm": "layer", **_tie(c, True)},
    # StableLm: LayerNorms with bias, no post-attention norm with use_parallel_residual, q/k bias
    # use_qkv_bias, o_proj (hidden, hidden) without bias, per-head q/k LayerNorms without bias (qk_layernorm)
    "stablelm": lambda c: {**_attn(c, "use_qkv_bias", o=False), "mlp_bias": False, "norm": "layer",
                           "norms_per_layer": 1 if _b(c, "use_parallel_residual", False) else 2,
                           "qk_norm": _b(c, "qk_layernorm", False), "qk_norm_full": True,
                           **_tie(c, False)},
    # PhiMoE: LayerNorms with bias (elementwise_affine), attention_bias on all four, router without bias
    "phimoe": lambda c: {**_attn(c), "norm": "layer", **_tie(c, False)},
    # Arcee: plain up/down MLP (ReLU^2) with mlp_bias
    "arcee": lambda c: {**_attn(c), "mlp_kind": "plain", "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
}


def _heads_span_hidden(cfg: dict[str, Any]) -> bool:
    h, a = cfg.get("hidden_size"), cfg.get("num_attention_heads")
    d = cfg.get("head_dim")
    return not (isinstance(h, int) and isinstance(a, int) and a and isinstance(d, int) and a * d != h)


def unsupported(cfg: dict[str, Any], family: str) -> str | None:
    """An option of ``family`` that these fields do not lay out, or None."""
    if family in ("helium", "stablelm", "olmoe") and not _heads_span_hidden(cfg):
        return "num_attention_heads x head_dim != hidden_size"  # an o_proj or q_norm of hidden width
    if family == "phimoe" and cfg.get("lm_head_bias"):
        return "lm_head_bias"
    return None


def fields(cfg: dict[str, Any], family: str) -> Fields:
    """The spec fields ``family`` overrides (empty for families read the Llama way)."""
    fn = FAMILIES.get(family)
    return fn(cfg) if fn is not None else {}
