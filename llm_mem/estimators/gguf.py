"""Per-tensor GGUF types of llama.cpp's quantization recipes.

Follows `llama_tensor_get_type` in llama.cpp src/llama-quant.cpp: each ftype has a base type,
and some tensors get more bits (output.weight, attn_v and ffn_down in some layers, attn_output).
Norms and biases stay F32. The mix makes real files larger than the base type's nominal bits.
"""

from __future__ import annotations

BASE_TYPE = {
    "Q2_K": "Q2_K", "Q2_K_S": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
    "Q8_0": "Q8_0", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1",
    "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S", "IQ3_XXS": "IQ3_XXS",
    "IQ3_M": "IQ3_S", "IQ1_S": "IQ1_S", "IQ1_M": "IQ1_M", "IQ4_NL": "IQ4_NL", "IQ4_XS": "IQ4_XS",
    "F16": "F16", "BF16": "BF16",
}
_LOW_IQ = {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M"}
# k-quant / i-quant types need rows divisible by QK_K = 256; llama.cpp falls back (llama-quant.cpp).
_FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "IQ2_XXS": "Q4_0", "IQ2_XS": "Q4_0", "IQ2_S": "Q4_0",
             "IQ3_XXS": "Q4_0", "IQ3_S": "Q4_0", "IQ1_S": "Q4_0", "IQ1_M": "Q4_0", "Q4_K": "Q5_0",
             "IQ4_XS": "IQ4_NL", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp: the first and last eighth of layers, and every third in between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_type(recipe: str, role: str, layer: int | None, n_layers: int, n_gqa: int, in_features: int,
                tied: bool) -> str:
    """The ggml type llama-quantize gives one tensor under `recipe` (e.g. Q4_K_M)."""
    base = BASE_TYPE[recipe]
    if role in ("norm", "bias", "expert_bias", "router_bias"):
        return "F32"
    if recipe in ("F16", "BF16"):
        return base
    t = base
    if role == "lm_head" or (role == "embed" and tied):
        t = "Q8_0" if recipe == "Q8_0" else "Q5_K" if recipe in _LOW_IQ else "Q6_K"
    elif role in ("embed", "pos_embed"):
        if recipe in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            t = "Q2_K"
        elif recipe in ("IQ2_S", "IQ2_M"):
            t = "IQ3_S"
    elif role in ("attn_v", "attn_qkv") and layer is not None:
        if recipe == "Q2_K":
            t = "Q4_K" if n_gqa >= 4 else "Q3_K"
        elif recipe == "Q2_K_S" and n_gqa >= 4:
            t = "Q4_K"
        elif recipe == "Q3_K_M":
            t = "Q5_K" if layer < 2 else "Q4_K"
        elif recipe == "Q3_K_L":
            t = "Q5_K"
        elif recipe in ("Q4_K_M", "Q5_K_M") and use_more_bits(layer, n_layers):
            t = "Q6_K"
        elif recipe == "Q4_K_S" and layer < 4:
            t = "Q5_K"
        elif recipe in ("IQ4_NL", "IQ4_XS") and n_gqa >= 4:
            t = "Q5_K"
        elif recipe in ("IQ3_XXS", "IQ3_M") or recipe in _LOW_IQ:
            t = "Q4_K" if n_gqa >= 4 else "Q3_K" if recipe in _LOW_IQ else "IQ3_S"
    elif role in ("mlp_down", "expert_down", "shared_down") and layer is not None:
        if recipe == "Q2_K":
            t = "Q3_K"
        elif recipe == "Q2_K_S" and layer < n_layers // 8:
            t = "Q4_K"
        elif recipe == "Q3_K_M":
            t = "Q5_K" if layer < n_layers // 16 else "Q4_K" if use_more_bits(layer, n_layers) else "Q3_K"
        elif recipe == "Q3_K_L":
            t = "Q5_K"
        elif recipe in ("Q4_K_M", "Q5_K_M") and use_more_bits(layer, n_layers):
            t = "Q6_K"
        elif recipe == "Q4_K_S" and layer < n_layers // 8:
            t = "Q5_K"
    elif role == "attn_o":
        t = {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K"}.get(recipe, base)
    if in_features % 256 and t in _FALLBACK:
        t = _FALLBACK[t]
    return t
