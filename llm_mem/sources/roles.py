"""Stored tensor names -> (decoder layer, role), for GGUF names and Hugging Face (safetensors) names.

Roles are those of llm_mem.params (attn_q ... pos_embed), plus "vision" (a vision tower inside the
checkpoint), "mmproj" (a multimodal projector) and "other" (anything we cannot place: its bytes still
count, it just is not attributed to a component).
"""

from __future__ import annotations

import re

# -- GGUF: llama.cpp gguf-py/gguf/constants.py TENSOR_NAMES ---------------------------------------------

_GGUF_GLOBAL = {
    "token_embd": "embed", "token_embd_norm": "norm", "token_types": "embed", "position_embd": "pos_embed",
    "output": "lm_head", "output_norm": "norm", "rope_freqs": "other", "rope_factors_long": "other",
    "rope_factors_short": "other",
}
# blk.N.<part>: the part's role (biases of linear layers become "bias", of experts "expert_bias")
_GGUF_BLOCK = {
    "attn_q": "attn_q", "attn_k": "attn_k", "attn_v": "attn_v", "attn_qkv": "attn_qkv", "attn_output": "attn_o",
    "attn_q_a": "attn_q_a", "attn_q_b": "attn_q_b", "attn_kv_a_mqa": "attn_kv_a", "attn_kv_b": "attn_kv_b",
    # current DeepSeek files split kv_b into per-head K and V absorptions (llama.cpp convert_hf_to_gguf.py)
    "attn_k_b": "attn_kv_b", "attn_v_b": "attn_kv_b",
    "attn_sinks": "bias",  # gpt-oss per-head sink logits (llm_mem.params gives them the "bias" role)
    "ffn_gate": "mlp_gate", "ffn_up": "mlp_up", "ffn_down": "mlp_down",
    "ffn_gate_exps": "expert_gate", "ffn_up_exps": "expert_up", "ffn_down_exps": "expert_down",
    "ffn_gate_up_exps": "expert_up",
    "ffn_gate_shexp": "shared_gate", "ffn_up_shexp": "shared_up", "ffn_down_shexp": "shared_down",
    "ffn_gate_inp": "router", "ffn_gate_inp_shexp": "router", "exp_probs_b": "router",
}
_GGUF_BLK = re.compile(r"^blk\.(\d+)\.(.+?)(?:\.(weight|bias|scale))?$")


def gguf_role(name: str) -> tuple[int | None, str]:
    """(layer, role) of a tensor named as llama.cpp names it: ``blk.3.attn_q.weight`` -> (3, "attn_q")."""
    m = _GGUF_BLK.match(name)
    if m is None:
        base, _, suffix = name.rpartition(".")
        if suffix not in ("weight", "bias"):
            base = name
        role = _GGUF_GLOBAL.get(base, "other")
        if suffix == "bias" and role in ("lm_head", "embed"):
            role = "bias"
        return None, role
    layer, part, suffix = int(m[1]), m[2], m[3]
    if part.startswith("nextn."):
        return layer, "other"  # multi-token-prediction heads (llama.cpp loads them only for MTP)
    if part.endswith("norm") or "norm_" in part or part.startswith("post_"):
        return layer, "norm"
    role = _GGUF_BLOCK.get(part, "other")
    if suffix == "bias":
        if role.startswith("expert_"):
            return layer, "expert_bias"
        if role not in ("other", "router"):
            return layer, "bias"
    return layer, role


# -- Hugging Face names (transformers modeling_<family>.py module paths) --------------------------------

_VISION = re.compile(r"(^|\.)(vision_tower|vision_model|visual|vision_encoder|image_encoder|vit|audio_tower)\.")
_PROJECTOR = re.compile(r"(^|\.)(multi_modal_projector|mm_projector|vision_projection|image_newline)(\.|$)")
# ".layers.N." / ".h.N." / ".blocks.N." / ".block.N." after a model prefix (or at the start)
_HF_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|block|decoder\.layers)\.(\d+)\.(.+)$")
# the storage suffixes of quantized checkpoints: the role is the module's
_QUANT_SUFFIX = re.compile(
    r"\.(qweight|qzeros|scales|g_idx|weight_scale_inv|weight_scale|input_scale|weight_scale_2|"
    r"weight_packed|weight_shape|weight_zero_point|absmax|quant_map|nested_absmax|nested_quant_map|SCB|"
    r"quant_state\.[\w.]+|blocks|_blocks|_scales)$")

_ATTN = {
    "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_o", "out_proj": "attn_o",
    "query": "attn_q", "key": "attn_k", "value": "attn_v",
    "qkv_proj": "attn_qkv", "query_key_value": "attn_qkv", "c_attn": "attn_qkv", "W_pack": "attn_qkv",
    "Wqkv": "attn_qkv", "dense": "attn_o", "c_proj": "attn_o",
    "q_a_proj": "attn_q_a", "q_b_proj": "attn_q_b", "kv_a_proj_with_mqa": "attn_kv_a", "kv_b_proj": "attn_kv_b",
}
_MLP = {
    "gate_proj": "gate", "up_proj": "up", "down_proj": "down", "w1": "gate", "w3": "up", "w2": "down",
    "fc1": "up", "fc2": "down", "c_fc": "up", "c_proj": "down", "dense_h_to_4h": "up", "dense_4h_to_h": "down",
    "gate_up_proj": "up", "fc_in": "up", "fc_out": "down",
}
_ATTN_PARENTS = ("self_attn", "attn", "attention", "self_attention", "mixer")
_MLP_PARENTS = ("mlp", "feed_forward", "ffn", "block_sparse_moe")


def _mlp_role(sub: list[str]) -> str | None:
    """Role of a path under an MLP/MoE module: router, routed experts, shared experts, dense MLP."""
    if not sub:
        return None
    if sub[0] in ("router", "gate", "shared_expert_gate", "shared_experts_gate"):
        return "router"
    if sub[-1] == "e_score_correction_bias":
        return "router"
    kind, rest = "mlp", sub
    if sub[0] == "experts":
        kind, rest = "expert", sub[1:]
        if rest and rest[0].isdigit():
            rest = rest[1:]
    elif sub[0] in ("shared_expert", "shared_experts", "shared_mlp"):
        kind, rest = "shared", sub[1:]
    proj = _MLP.get(rest[0]) if rest else None
    return f"{kind}_{proj}" if proj is not None else None


def hf_role(name: str) -> tuple[int | None, str]:
    """(layer, role) of a tensor named as transformers names it:
    ``model.layers.3.self_attn.q_proj.weight`` -> (3, "attn_q"). Unknown names -> (layer, "other")."""
    if _PROJECTOR.search(name):
        return None, "mmproj"
    if _VISION.search(name):
        return None, "vision"
    base = _QUANT_SUFFIX.sub("", name)
    is_bias = base.endswith((".bias", "_bias"))
    for suffix in (".weight", ".bias"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    m = _HF_LAYER.search(base)
    if m is None:
        leaf = base.rsplit(".", 1)[-1]
        if leaf in ("lm_head", "embed_out", "output"):
            return None, "bias" if is_bias else "lm_head"
        if leaf in ("embed_tokens", "wte", "word_embeddings", "embed_in", "tok_embeddings", "embeddings"):
            return None, "embed"
        if leaf in ("wpe", "embed_positions", "position_embeddings"):
            return None, "pos_embed"
        if "norm" in leaf or leaf.startswith("ln_") or leaf == "ln_f":
            return None, "norm"
        return None, "other"
    layer = int(m[1])
    parts = m[2].split(".")
    leaf = parts[-1]
    if "norm" in leaf or leaf.startswith("ln_") or "layernorm" in leaf:
        return layer, "norm"
    if parts[0] in _ATTN_PARENTS:
        sub = parts[1:]
        if sub == ["sinks"]:
            return layer, "bias"
        if sub and sub[0] in _ATTN:
            return layer, "bias" if is_bias else _ATTN[sub[0]]
        return layer, "other"
    if parts[0] in _MLP_PARENTS:
        sub = parts[1:]
        if sub and sub[0] == "experts" and len(sub) == 2 and sub[1].endswith("_bias"):
            return layer, "expert_bias"  # gpt-oss experts.gate_up_proj_bias
        if sub and sub[0] == "experts" and len(sub) == 2:
            stacked = sub[1]
            if stacked.startswith(("gate_up_proj", "up_proj")):
                return layer, "expert_up"
            if stacked.startswith("down_proj"):
                return layer, "expert_down"
            if stacked.startswith("gate_proj"):
                return layer, "expert_gate"
        role = _mlp_role(sub)
        if role is None:
            return layer, "other"
        if is_bias:
            if role.startswith("expert_"):
                return layer, "expert_bias"
            if role != "router":
                return layer, "bias"
        return layer, role
    if parts[0] in _MLP:  # OPT's fc1/fc2 sit directly in the layer
        return layer, "bias" if is_bias else f"mlp_{_MLP[parts[0]]}"
    return layer, "other"
