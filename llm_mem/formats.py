"""Weight storage formats: bits per weight, derived from each format's block layout, and which
tensors each scheme leaves unquantized.

Bits per weight (bpw) include the format's own scales/zeros, so bytes = ceil(numel * bpw / 8).
GGUF block layouts are from ggml/src/ggml-common.h (block_q4_K etc.); QK_K = 256 super-blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from llm_mem.dtypes import GGML_BPW
from llm_mem.errors import UsageError

# --- GGUF: bits per weight of each ggml type, from the one table in llm_mem.dtypes ---------------
QK_K = 256  # ggml-common.h: #define QK_K 256
GGUF_BPW: dict[str, float] = dict(GGML_BPW)

# --- other formats ---------------------------------------------------------------------------
# bitsandbytes 4-bit: 4-bit codes + one absmax per 64 weights (blocksize 64 default in
# bitsandbytes/functional.py quantize_4bit). fp32 absmax: 32/64 = 0.5 bit. With double quant
# (QLoRA paper, Dettmers et al. 2023, sec. 3): absmax in 8 bits per 64 + fp32 per 256 blocks:
# 8/64 + 32/(64*256) = 0.127 bit.
BNB4_BLOCK = 64
BNB4_BPW = 4 + 32 / BNB4_BLOCK
BNB4_DQ_BPW = 4 + 8 / BNB4_BLOCK + 32 / (BNB4_BLOCK * 256)
# MXFP4 (OCP Microscaling Formats spec v1.0): blocks of 32 FP4 (e2m1) values with one shared
# 8-bit E8M0 scale: 4 + 8/32 = 4.25 bpw.
MXFP4_BPW = 4 + 8 / 32
# NVFP4 (NVIDIA ModelOpt / compressed-tensors nvfp4-pack-quantized): e2m1 values, one fp8 e4m3 scale per
# 16 elements and one fp32 global scale per tensor: 4 + 8/16 = 4.5 bpw.
NVFP4_BPW = 4 + 8 / 16


@dataclass(frozen=True)
class Format:
    """How weights are stored. `linear_bpw` applies to quantized Linear weights; the roles in
    `keep_roles` stay at `keep_bits` (the compute dtype, bf16 unless the user picks fp32/fp16)."""

    key: str
    label: str
    linear_bits: float  # nominal bits of a quantized weight (for display)
    keep_roles: frozenset[str] = frozenset()
    experts_only: bool = False  # MXFP4 in gpt-oss quantizes the MoE experts only
    per_row_bytes: int = 0  # extra bytes per output row (bnb int8 keeps an fp32 scale per row)
    group_size: int | None = None  # GPTQ/AWQ
    gguf_recipe: str | None = None
    note: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


NOT_LINEAR = frozenset({"embed", "pos_embed", "embed_proj", "lm_head", "norm", "bias", "router", "expert_bias"})
# bitsandbytes via transformers: every nn.Linear except the output embedding (get_keys_to_not_convert
# in transformers/integrations/bitsandbytes.py) is converted; embeddings are nn.Embedding.
BNB_KEEP = frozenset({"embed", "pos_embed", "embed_proj", "lm_head", "norm", "bias", "expert_bias"})


FLOAT_FORMATS = {
    "fp32": Format("fp32", "fp32 (32-bit float)", 32, aliases=("float32", "f32", "32")),
    "bf16": Format("bf16", "bf16 (16-bit bfloat)", 16, aliases=("bfloat16",)),
    "fp16": Format("fp16", "fp16 (16-bit float)", 16, aliases=("float16", "f16", "half", "16")),
}
QUANT_FORMATS = {
    "fp8": Format("fp8", "fp8 e4m3, per-tensor scale (embeddings and lm_head in bf16)", 8,
                  keep_roles=NOT_LINEAR, aliases=("float8", "e4m3", "fp8-e4m3"),
                  note="vLLM/compressed-tensors FP8 keeps embed_tokens and lm_head in bf16"),
    "int8": Format("int8", "int8 (bitsandbytes LLM.int8)", 8, keep_roles=BNB_KEEP, per_row_bytes=4,
                   aliases=("8", "8bit", "llm.int8", "bnb-int8"),
                   note="bitsandbytes Int8Params keep one fp32 scale per output row (SCB)"),
    "nf4": Format("nf4", "nf4 (bitsandbytes 4-bit, double quant, block 64)", BNB4_DQ_BPW, keep_roles=BNB_KEEP,
                  aliases=("int4", "4", "4bit", "bnb-nf4", "bnb4")),
    "fp4": Format("fp4", "fp4 (bitsandbytes 4-bit, double quant, block 64)", BNB4_DQ_BPW, keep_roles=BNB_KEEP,
                  aliases=("bnb-fp4",)),
    "gptq": Format("gptq", "GPTQ 4-bit, group 128, act-order g_idx", 4, keep_roles=NOT_LINEAR, group_size=128,
                   aliases=("gptq-int4", "gptq4")),
    "gptq-int8": Format("gptq-int8", "GPTQ 8-bit, group 128", 8, keep_roles=NOT_LINEAR, group_size=128,
                        aliases=("gptq8",)),
    "awq": Format("awq", "AWQ 4-bit, group 128 (GEMM)", 4, keep_roles=NOT_LINEAR, group_size=128,
                  aliases=("awq-int4", "awq4")),
    "mxfp4": Format("mxfp4", "MXFP4 (4-bit e2m1, e8m0 scale per 32) on MoE experts", MXFP4_BPW,
                    keep_roles=NOT_LINEAR, experts_only=True),
    # compressed-tensors / llm-compressor schemes (vLLM compressed_tensors.py), stored as the checkpoint says
    "w8a8": Format("w8a8", "int8 W8A8, per-channel scales (compressed-tensors)", 8, keep_roles=NOT_LINEAR,
                   aliases=("int8-w8a8", "w8a8-int8")),
    "w4a16": Format("w4a16", "int4 W4A16, group 128 (compressed-tensors pack-quantized)", 4, keep_roles=NOT_LINEAR,
                    group_size=128, aliases=("int4-w4a16",)),
    "nvfp4": Format("nvfp4", "NVFP4 (4-bit e2m1, fp8 scale per 16)", NVFP4_BPW, keep_roles=NOT_LINEAR,
                    aliases=("fp4-nvidia",)),
}
# GGUF whole-file recipes (llama.cpp `llama-quantize` ftypes) and plain per-tensor types.
GGUF_RECIPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q5_1", "Q4_K_M", "Q4_K_S", "Q4_0", "Q4_1",
                "IQ4_XS", "IQ4_NL", "Q3_K_L", "Q3_K_M", "Q3_K_S", "IQ3_M", "IQ3_S", "IQ3_XS", "IQ3_XXS",
                "Q2_K", "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S", "MXFP4_MOE")
# Stored F32 in every GGUF file: 1-D tensors, norms, the MoE router (ffn_gate_inp) and position embeddings
# (convert_hf_to_gguf.py forces them F32; llama-quant.cpp tensor_allows_quantization leaves them alone).
GGUF_F32_ROLES = frozenset({"norm", "bias", "expert_bias", "router", "pos_embed"})
_RECIPE_BASE = {"Q5_K_M": "Q5_K", "Q5_K_S": "Q5_K", "Q4_K_M": "Q4_K", "Q4_K_S": "Q4_K", "Q3_K_L": "Q3_K",
                "Q3_K_M": "Q3_K", "Q3_K_S": "Q3_K", "Q2_K_S": "Q2_K", "IQ3_M": "IQ3_S", "IQ3_XS": "IQ3_S",
                "IQ2_M": "IQ2_S", "IQ2_S": "IQ2_XS",
                "MXFP4_MOE": "MXFP4"}  # llama-quant.cpp llama_ftype_get_default_type
for _r in GGUF_RECIPES:
    QUANT_FORMATS[_r] = Format(_r, f"GGUF {_r} (llama.cpp per-tensor mix)", GGUF_BPW[_RECIPE_BASE.get(_r, _r)],
                               keep_roles=GGUF_F32_ROLES, gguf_recipe=_r,
                               aliases=(_r.lower(),))
# GGUF's unquantized float files: named apart from the fp16/bf16 precisions (norms stay F32 in GGUF)
for _r in ("F32", "F16", "BF16"):
    QUANT_FORMATS[f"GGUF-{_r}"] = Format(f"GGUF-{_r}", f"GGUF {_r} (norms F32)", 16.0,
                                         keep_roles=GGUF_F32_ROLES, gguf_recipe=_r)
ALL_FORMATS = {**FLOAT_FORMATS, **QUANT_FORMATS}
_LOOKUP: dict[str, Format] = {}
for _f in ALL_FORMATS.values():  # keys first, then aliases; the first claim of a name wins
    _LOOKUP.setdefault(_f.key.lower(), _f)
for _f in ALL_FORMATS.values():
    for _a in _f.aliases:
        _LOOKUP.setdefault(_a.lower(), _f)
PRECISION_CHOICES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4", "all")


# Unsloth's dynamic GGUF files are named UD-<type> and add _XL / _XXL mixes (Q4_K_XL...) that keep
# some tensors at higher types (unsloth.ai/docs "Unsloth Dynamic 2.0 GGUFs"). No recipe in llama.cpp
# makes them, so without the file they are sized as the nearest llama-quantize recipe.
_DYNAMIC_BASE = {"Q2_K_XL": "Q2_K", "Q3_K_XL": "Q3_K_M", "Q4_K_XL": "Q4_K_M", "Q5_K_XL": "Q5_K_M",
                 "Q6_K_XL": "Q6_K", "Q8_K_XL": "Q8_0", "IQ1_M_XL": "IQ1_M", "IQ2_XXL": "IQ2_M",
                 "IQ3_XXL": "IQ3_M"}


def _dynamic_gguf(name: str) -> Format | None:
    """A GGUF file tag that is not a llama-quantize recipe (UD-Q4_K_XL, Q4_K_XL, UD-IQ1_S)."""
    tag = name.strip().upper()
    tag = tag[3:] if tag.startswith("UD-") else tag
    base = _LOOKUP.get(tag.lower()) or _LOOKUP.get(_DYNAMIC_BASE.get(tag, "").lower())
    if base is None or base.gguf_recipe is None:
        return None
    if tag == base.key and not name.strip().upper().startswith("UD-"):
        return base
    return replace(base, label=f"GGUF {name.strip()} (dynamic mix; sized as {base.key} unless the file is read)")


def lookup_format(name: str) -> Format | None:
    """A Format by key or alias (case-insensitive), None when unknown."""
    return _LOOKUP.get(name.strip().lower()) or _dynamic_gguf(name)


def get_format(name: str) -> Format:
    """A Format by key or alias (case-insensitive); UsageError listing the choices otherwise."""
    f = lookup_format(name)
    if f is None:
        raise UsageError(
            f"unknown precision or quant format {name!r}",
            "precisions: fp32, bf16, fp16, fp8, int8, int4; formats: nf4, fp4, gptq, awq, mxfp4, "
            "GGUF types such as Q8_0, Q4_K_M, IQ2_XS",
        )
    return f
