"""Per-tensor GGUF types of llama.cpp's quantization recipes (`llama-quantize` ftypes).

Our own re-statement of the rules in llama.cpp src/llama-quant.cpp:
* `llama_ftype_get_default_type`: each ftype's base type;
* `llama_tensor_get_type_impl`: which tensors get another type (output.weight, token_embd, attn_v,
  attn_k, attn_q, ffn_down, attn_output, ffn_gate/ffn_up), by ftype, layer and model hparams;
* `tensor_type_fallback`: rows whose length is not a multiple of the type's block fall back;
* `tensor_allows_quantization`: 1-D tensors, norms, the MoE router (ffn_gate_inp) and position
  embeddings are never quantized.
Block sizes are from ggml/src/ggml-common.h (QK_K = 256 for k- and i-quants, 32 for the legacy types
and IQ4_NL). The mix makes real files larger than the base type's nominal bits.

The file's tensors are walked in llama.cpp's order (by layer, llama-model-loader's weight_name_comparer),
keeping the per-kind counters llama-quant.cpp keeps (i_attention_wv, i_ffn_down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from llm_mem.dtypes import GGML_TYPES
from llm_mem.formats import GGUF_BPW
from llm_mem.params import MULTIMODAL_ROLES, Tensor, inventory
from llm_mem.spec import ModelSpec

# llama-quant.cpp llama_ftype_get_default_type: the ftype's base ggml type.
BASE_TYPE = {
    "Q2_K": "Q2_K", "Q2_K_S": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
    "Q8_0": "Q8_0", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1",
    "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S", "IQ3_XXS": "IQ3_XXS",
    "IQ3_XS": "IQ3_S", "IQ3_S": "IQ3_S", "IQ3_M": "IQ3_S", "IQ1_S": "IQ1_S", "IQ1_M": "IQ1_M",
    "IQ4_NL": "IQ4_NL", "IQ4_XS": "IQ4_XS", "F16": "F16", "BF16": "BF16", "F32": "F32",
    "MXFP4_MOE": "MXFP4",
}
# Stacked (3-D) expert tensors: LLAMA_FTYPE_MOSTLY_MXFP4_MOE stores them MXFP4 and every other quantizable
# tensor Q8_0 (llama-quant.cpp b10470, llama_tensor_get_type_impl: `tensor->ne[2] > 1 ? MXFP4 : Q8_0`).
_STACKED_EXPERTS = frozenset({"expert_gate", "expert_up", "expert_down"})
# Elements per block of each ggml type (ggml-common.h; the one table in llm_mem.dtypes).
BLOCK = {t.name: t.block for t in GGML_TYPES}
# llama-quant.cpp tensor_type_fallback: the type used when a row (ne[0]) is not a multiple of the block;
# if the fallback's block does not divide the row either, the tensor is stored F16.
_FALLBACK = {"IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_S": "IQ4_NL",
             "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL", "Q2_K": "Q4_0", "Q3_K": "Q4_0",
             "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}
# llama_tensor_get_type_impl: the ftypes of its first low-bit i-quant branch (IQ2_XXS ... IQ1_M).
_LOW_IQ = frozenset({"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"})
# ... and the ftypes whose output.weight (and tied token_embd) becomes Q5_K instead of Q6_K.
_OUTPUT_Q5_K = frozenset({"IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"})
# ... the ftypes whose attn_output becomes Q5_K in 8-expert models (Mixtral).
_ATTN_OUT_Q5_K_8X = frozenset({"Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M",
                               "IQ3_S", "IQ3_M", "IQ4_XS"})
# llama-quant.cpp tensor_requires_imatrix: ftypes that put IQ1/IQ2/IQ3_XXS tensors (or Q2_K in Q2_K_S) in the
# file, which llama-quantize refuses to make without an importance matrix.
IMATRIX_REQUIRED = frozenset({"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS",
                              "Q2_K_S"})
# Roles (llm_mem.params) per llama-quant.cpp tensor_category. attn_kv_b is absent: convert_hf_to_gguf.py splits
# DeepSeek's kv_b_proj into attn_k_b / attn_v_b, whose names match no category (see gguf_tensors).
_ATTN_V_LIKE = frozenset({"attn_v", "attn_qkv"})  # category_is_attn_v: ATTENTION_V, ATTENTION_QKV (, KV_B)
_FFN_DOWN = frozenset({"mlp_down", "expert_down", "shared_down"})  # names containing "ffn_down"
_FFN_GATE_UP = frozenset({"mlp_gate", "mlp_up", "expert_gate", "expert_up", "shared_gate", "shared_up"})
# Never quantized, and stored F32 by convert_hf_to_gguf.py (1-D tensors, norms, FFN_GATE_INP, POS_EMBD);
# tensor_allows_quantization skips ffn_gate_inp, position embeddings and < 2-D tensors.
# ssm_param: conv1d, A_log, D, dt_bias of state-space / linear-attention mixers (llama-quantize keeps ssm_conv1d,
# ssm_a, ssm_d, ssm_dt.bias in F32: llama-quant.cpp quantize = ... !ssm_conv1d / ssm_x / ssm_dt; ggml 1-D tensors)
F32_ROLES = frozenset({"norm", "bias", "expert_bias", "router", "router_bias", "pos_embed", "ssm_param"})
# GGUF tensor names (llama.cpp gguf-py constants.py TENSOR_NAMES) of our roles.
_GGUF_NAME = {
    "embed": "token_embd", "lm_head": "output", "pos_embed": "position_embd", "attn_q": "attn_q",
    "attn_k": "attn_k", "attn_v": "attn_v", "attn_qkv": "attn_qkv", "attn_o": "attn_output",
    "attn_q_a": "attn_q_a", "attn_q_b": "attn_q_b", "attn_kv_a": "attn_kv_a_mqa",
    "mlp_gate": "ffn_gate", "mlp_up": "ffn_up", "mlp_down": "ffn_down", "expert_gate": "ffn_gate_exps",
    "expert_up": "ffn_up_exps", "expert_down": "ffn_down_exps", "shared_gate": "ffn_gate_shexp",
    "shared_up": "ffn_up_shexp", "shared_down": "ffn_down_shexp", "router": "ffn_gate_inp",
}


def use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp use_more_bits: the first and last eighth of layers, and every third in between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


@dataclass(frozen=True)
class GgufModel:
    """The hparams llama_tensor_get_type_impl reads (qs.model.hparams, qs.model.type/arch, qs state)."""

    n_layer: int  # hparams.n_layer; llama-quant.cpp sets n_ffn_down = n_layer
    n_gqa: int = 1  # hparams.n_gqa() = n_head / n_head_kv (integer division)
    n_expert: int = 0  # hparams.n_expert (0 for dense models)
    n_attention_wv: int = 0  # attn_v-like tensors in the file (init_quantize_state_counters)
    falcon: bool = False  # arch == LLM_ARCH_FALCON
    is_70b: bool = False  # model.type == LLM_TYPE_70B
    tied: bool = False  # has_tied_embeddings: the file has no output.weight
    imatrix: bool = False  # qs.has_imatrix


def _is_70b(spec: ModelSpec) -> bool:
    """model.type == LLM_TYPE_70B, set by llama.cpp's per-arch load_hparams: LLM_ARCH_LLAMA (HF llama/mistral)
    with 80 layers, no experts and n_head != n_head_kv (src/models/llama.cpp; MHA is 65B); LLM_ARCH_QWEN2 with 80
    layers (src/models/qwen2.cpp: Qwen2.5-72B)."""
    if spec.num_layers != 80 or spec.is_moe:
        return False
    if spec.llamacpp_arch == "llama":
        return spec.num_heads != spec.num_kv_heads
    return spec.llamacpp_arch == "qwen2"


def gguf_model(spec: ModelSpec, recipe: str, imatrix: bool | None = None) -> GgufModel:
    """The hparams of `spec` that llama-quantize's recipe rules read. imatrix None: the recipes that require an
    importance matrix have one (IMATRIX_REQUIRED), the others none (llama-quantize's default)."""
    n_attn_v = sum(1 for t in inventory(spec) if t.role in _ATTN_V_LIKE)
    return GgufModel(
        n_layer=spec.num_layers, n_gqa=spec.num_heads // max(spec.num_kv_heads, 1),
        n_expert=spec.moe.num_experts if spec.moe is not None else 0, n_attention_wv=n_attn_v,
        falcon=spec.llamacpp_arch == "falcon", is_70b=_is_70b(spec), tied=spec.tie_word_embeddings,
        imatrix=recipe in IMATRIX_REQUIRED if imatrix is None else imatrix,
    )


def tensor_type(recipe: str, role: str, layer: int | None, in_features: int, m: GgufModel,
                i_attn_v: int = 0, i_ffn_down: int = 0) -> str:
    """The ggml type llama-quantize gives one tensor under `recipe` (e.g. Q4_K_M).

    i_attn_v / i_ffn_down: how many attn_v-like / ffn_down tensors come before this one in the file
    (llama-quant.cpp qs.i_attention_wv, qs.i_ffn_down). Every rule is llama_tensor_get_type_impl's.
    """
    if role in F32_ROLES:
        return "F32"
    if recipe == "MXFP4_MOE":
        return "MXFP4" if role in _STACKED_EXPERTS else "Q8_0"
    base = BASE_TYPE[recipe]
    if recipe in ("F32", "F16", "BF16"):  # ggml_is_quantized(default_type) is false: no mix, no fallback
        return base
    t = _mix_type(recipe, base, role, layer, in_features, m, i_attn_v, i_ffn_down)
    # tensor_type_fallback: ne[0] (= in_features) must be a multiple of the type's block
    if in_features % BLOCK[t]:
        t = _FALLBACK.get(t, t)
        if in_features % BLOCK[t]:
            t = "F16"
    return t


def _mix_type(ft: str, t: str, role: str, layer: int | None, in_f: int, m: GgufModel, i_v: int,
              i_down: int) -> str:
    """llama_tensor_get_type_impl, branch by branch (new_type starts as the ftype's base type `t`)."""
    n = m.n_layer
    # OUTPUT (and TOKEN_EMBD when tied): Falcon or a row not a multiple of the base block -> Q8_0;
    # the low-bit i-quants -> Q5_K; anything but Q8_0 -> Q6_K
    if role == "lm_head" or (role == "embed" and m.tied):
        if m.falcon or in_f % BLOCK[t]:
            return "Q8_0"
        if ft in _OUTPUT_Q5_K:
            return "Q5_K"
        return t if t == "Q8_0" else "Q6_K"
    if role == "embed":  # TOKEN_EMBD, untied
        if ft in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            return "Q2_K"
        if ft in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
            return "IQ3_S"
        return t
    if ft in _LOW_IQ:  # the IQ2_XXS/IQ2_XS/IQ1_S/IQ2_S/IQ2_M/IQ1_M branch
        if role in _ATTN_V_LIKE:
            if m.n_gqa >= 4 or m.n_expert >= 4:
                return "Q4_K"
            return "IQ3_S" if ft in ("IQ2_S", "IQ2_M") else "Q2_K"
        if m.n_expert == 8 and role == "attn_k":
            return "Q4_K"
        if role in _FFN_DOWN:  # the raw tensor counter against n_layer/8 (no layer_info here)
            if i_down < n // 8:
                return "IQ3_S" if ft in ("IQ2_S", "IQ2_M") else "Q2_K"
            return t
        if role == "attn_o":
            if m.n_expert == 8:
                return "Q5_K"
            if ft in ("IQ1_S", "IQ1_M"):
                return "IQ2_XXS"
            if ft in ("IQ2_S", "IQ2_M"):
                return "IQ3_S"
        return t
    if role in _ATTN_V_LIKE:
        if ft == "Q2_K":
            t = "Q4_K" if m.n_gqa >= 4 else "Q3_K"
        elif ft == "Q2_K_S" and m.n_gqa >= 4:
            t = "Q4_K"
        elif ft == "IQ3_XXS":
            t = "Q4_K" if m.n_gqa >= 4 else "IQ3_XXS" if m.imatrix else "IQ3_S"
        elif (ft in ("IQ3_XS", "IQ3_S") and m.n_gqa >= 4) or ft == "IQ3_M":
            t = "Q4_K"
        elif ft == "Q3_K_M":
            t = "Q5_K" if i_v < 2 else "Q4_K"
        elif ft == "Q3_K_L" or (ft in ("IQ4_NL", "IQ4_XS") and m.n_gqa >= 4):
            t = "Q5_K"
        elif ft in ("Q4_K_M", "Q5_K_M") and use_more_bits(i_v, m.n_attention_wv):
            t = "Q6_K"
        elif ft == "Q4_K_S" and i_v < 4:
            t = "Q5_K"
        if m.is_70b and t in ("Q3_K", "Q4_K"):  # 70B: 8 heads share attn_v, more bits cost little
            t = "Q5_K"
        if m.n_expert == 8:
            t = "Q8_0"
        return t
    if role == "attn_k":
        if m.n_expert == 8:
            return "Q8_0"
        if ft == "IQ3_XS":
            return "IQ3_XXS"
        if ft == "IQ3_XXS":
            return "IQ2_S"
        return t
    if role == "attn_q":
        if ft == "IQ3_XS":
            return "IQ3_XXS"
        if ft == "IQ3_XXS":
            return "IQ2_S"
        return t
    if role in _FFN_DOWN:
        # layer_info: with experts the layer comes from the tensor name, else from the counter
        i = layer if m.n_expert > 1 and layer is not None else i_down
        if ft == "Q2_K":
            t = "Q3_K"
        elif ft == "Q2_K_S":
            if i < n // 8:
                t = "Q4_K"
        elif ft == "IQ3_XXS" and not m.imatrix:
            t = "Q4_K" if i < n // 8 else "Q3_K"
        elif ft == "Q3_K_M":
            t = "Q5_K" if i < n // 16 else "Q4_K" if not m.falcon or use_more_bits(i, n) else "Q3_K"
        elif ft == "IQ3_M" and (i < n // 8 or (m.n_expert == 8 and use_more_bits(i, n))):
            t = "Q4_K"
        elif ft == "Q3_K_L":
            t = "Q4_K" if m.falcon else "Q5_K"
        elif ft == "Q4_K_M":
            if m.falcon:
                t = "Q6_K" if i < n // 16 else "Q5_K" if use_more_bits(i, n) else "Q4_K"
            elif use_more_bits(i, n):
                t = "Q6_K"
        elif i < n // 8 and ft in ("IQ4_NL", "IQ4_XS") and not m.imatrix:
            t = "Q5_K"
        elif ft == "Q5_K_M" and use_more_bits(i, n):
            t = "Q6_K"
        elif ft == "Q4_K_S" and not m.falcon and i < n // 8:
            t = "Q5_K"
        elif ft in ("Q4_0", "Q5_0") and m.imatrix and i < n // 8:
            t = "Q4_1" if ft == "Q4_0" else "Q5_1"
        return t
    if role == "attn_o":
        if m.falcon:
            return "Q4_K" if ft == "Q3_K_L" else t
        if m.n_expert == 8:
            return "Q5_K" if ft in _ATTN_OUT_Q5_K_8X else t
        return {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}.get(ft, t)
    if role in _FFN_GATE_UP:  # FFN_GATE / FFN_UP (ffn_gate_inp, the router, never gets here: F32_ROLES)
        i = layer if layer is not None else 0  # layer_info: experts by name; dense, one per layer
        if ft == "IQ3_XS" and n // 8 <= i < 7 * n // 8:
            return "IQ3_XXS"
    return t


class GgufTensor(NamedTuple):
    """One tensor of the GGUF file: its GGUF name, the inventory tensor it comes from, size and type."""

    name: str
    source: str  # llm_mem.params Tensor.name
    numel: int
    ggml_type: str

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor data (ggml_row_size x rows)."""
        return _nbytes(self.numel, self.ggml_type)


def _nbytes(numel: int, ggml_type: str) -> int:
    return math.ceil(numel * GGUF_BPW[ggml_type] / 8)


def _gguf_name(role: str, layer: int | None, source: str) -> str:
    if role == "router" and "shared_expert_gate" in source:
        return f"blk.{layer}.ffn_gate_inp_shexp.weight"
    base = _GGUF_NAME.get(role)
    if base is None:
        return source
    return f"{base}.weight" if layer is None else f"blk.{layer}.{base}.weight"


# The only roles whose type reads the tensor's layer or the attn_v / ffn_down counters (_mix_type: the
# attn_v-like, ffn_down and ffn_gate/up branches). Every other role's type is a function of (recipe, role,
# row length, hparams), so _walk types each (role, shape, copies) of those once per file.
_POSITIONAL = _ATTN_V_LIKE | _FFN_DOWN | _FFN_GATE_UP
_Typed = tuple[Tensor, str | None, int, str, int]  # tensor, split part (or None), elements, ggml type, bytes


def _walk(recipe: str, spec: ModelSpec, imatrix: bool | None) -> list[_Typed]:
    """Every tensor llama-quantize writes for `spec` under `recipe`, in the file's order: the inventory tensor
    it comes from, the split part's name (None: the tensor itself), elements, ggml type and bytes."""
    m = gguf_model(spec, recipe, imatrix)
    # A checkpoint whose experts are MXFP4 (gpt-oss) keeps them MXFP4 in every published GGUF: the converter
    # writes them as MXFP4 (conversion/gpt_oss.py repack_mxfp4) and the quantizers keep them ("All quants keep
    # the feed forward networks at mxfp4": bartowski/openai_gpt-oss-20b-GGUF README, llama.cpp b6096; Q6_K
    # 12.04 GB vs MXFP4 12.1 GB). Only the other tensors follow the recipe.
    mxfp4_experts = spec.quantization is not None and spec.quantization.method == "mxfp4"
    out: list[_Typed] = []
    # (elements, type, bytes) of the non-positional roles by (role, shape, copies): the same wherever they sit
    fixed: dict[tuple[str, tuple[int, ...], int], tuple[int, str, int]] = {}
    i_v = i_down = 0
    for t in inventory(spec):
        role = t.role
        if role in MULTIMODAL_ROLES:  # the vision tower and projector go to a separate mmproj file
            continue
        if role == "attn_kv_b" and spec.mla is not None:
            # convert_hf_to_gguf.py (DeepseekV2Model.modify_tensors) splits kv_b_proj per head into
            # attn_k_b (transposed: rows of qk_nope_head_dim) and attn_v_b (rows of kv_lora_rank); neither name
            # matches a tensor_category, so both keep the base type (after the row-length fallback).
            a, r = spec.num_heads, spec.mla.kv_lora_rank
            nope, v = spec.mla.qk_nope_head_dim, spec.mla.v_head_dim
            for part, rows, numel in (("attn_k_b", nope, a * nope * r), ("attn_v_b", r, a * v * r)):
                ty = tensor_type(recipe, part, t.layer, rows, m)
                out.append((t, part, numel, ty, _nbytes(numel, ty)))
            continue
        positional = role in _POSITIONAL
        hit = None if positional else fixed.get((role, t.shape, t.copies))
        if hit is None:
            in_f = t.shape[1] if len(t.shape) > 1 else t.shape[0]
            ty = tensor_type(recipe, role, t.layer, in_f, m, i_v, i_down)
            if mxfp4_experts and role in _STACKED_EXPERTS:  # F16 files too: unsloth's gpt-oss-120b F16 is 60.87 GiB
                ty = "MXFP4"
            numel = t.numel
            hit = (numel, ty, _nbytes(numel, ty))
            if not positional:
                fixed[role, t.shape, t.copies] = hit
        numel, ty, nbytes = hit
        out.append((t, None, numel, ty, nbytes))
        i_v += role in _ATTN_V_LIKE
        i_down += role in _FFN_DOWN
    return out


@lru_cache(maxsize=256)
def gguf_tensors(recipe: str, spec: ModelSpec, imatrix: bool | None = None) -> tuple[GgufTensor, ...]:
    """Every tensor llama-quantize writes for `spec` under `recipe`, with its ggml type."""
    return tuple(GgufTensor(_gguf_name(t.role, t.layer, t.name) if part is None else f"blk.{t.layer}.{part}.weight",
                            t.name, numel, ty) for t, part, numel, ty, _ in _walk(recipe, spec, imatrix))


@lru_cache(maxsize=256)
def tensor_bytes(recipe: str, spec: ModelSpec, imatrix: bool | None = None) -> dict[str, int]:
    """Bytes per inventory tensor (llm_mem.params Tensor.name) in the GGUF file."""
    out: dict[str, int] = {}
    for t, _, _, _, nbytes in _walk(recipe, spec, imatrix):  # no GGUF names: the planner sizes many files
        out[t.name] = out.get(t.name, 0) + nbytes
    return out


def tensor_types(recipe: str, spec: ModelSpec, imatrix: bool | None = None) -> dict[str, str]:
    """GGUF tensor name (e.g. blk.0.attn_v.weight) -> ggml type."""
    return {g.name: g.ggml_type for g in gguf_tensors(recipe, spec, imatrix)}
