"""Exact logical parameter inventory of a ModelSpec.

Each model becomes a tuple of `Tensor`s (one per weight/bias/norm, experts stacked in `copies`),
mirroring the modules transformers instantiates (modeling_<family>.py). Counts are logical
(unpacked) parameters; tests compare them with `sum(p.numel() for p in model.parameters())`
on the meta device (tests/data/golden_params.json, made by scripts/ground_truth_params.py).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from llm_mem.mixers import MIXER_LINEAR_ROLES, mixer_tensors
from llm_mem.sources.roles import hf_role
from llm_mem.spec import ModelSpec

# Roles of linear weights that quantization schemes convert (the "Linear" layers of a block).
LINEAR_ROLES = frozenset({
    "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_o", "attn_q_a", "attn_q_b", "attn_kv_a", "attn_kv_b",
    "mlp_gate", "mlp_up", "mlp_down", "expert_gate", "expert_up", "expert_down",
    "shared_gate", "shared_up", "shared_down",
}) | MIXER_LINEAR_ROLES
ATTENTION_ROLES = frozenset({"attn_q", "attn_k", "attn_v", "attn_qkv", "attn_o", "attn_q_a", "attn_q_b",
                             "attn_kv_a", "attn_kv_b"})
EXPERT_ROLES = frozenset({"expert_gate", "expert_up", "expert_down", "expert_bias"})
# Towers around the language model (llm_mem.sources.roles): counted, never quantized, no KV.
MULTIMODAL_ROLES = frozenset({"vision", "mmproj"})


class Tensor(NamedTuple):
    """One logical parameter tensor. ``copies`` > 1 stacks identical experts."""

    name: str
    role: str
    layer: int | None  # decoder layer index, None for embeddings/head/final norm
    shape: tuple[int, ...]  # (out_features, in_features) for linear weights
    copies: int = 1

    @property
    def numel(self) -> int:
        """Elements in all copies."""
        return math.prod(self.shape) * self.copies


class ParameterCounts(BaseModel):
    """The parameter breakdown reported to users (part of the JSON contract)."""

    model_config = ConfigDict(frozen=True)

    total: int
    embedding: int  # token (+ learned position) embeddings
    lm_head: int  # 0 when tied to the embedding
    per_layer: list[int]
    final_norm_and_other: int
    multimodal: int = 0  # vision / audio towers and their projectors (image-text-to-text classes)
    experts_per_layer: list[int]  # routed experts' parameters per layer (0 for dense layers)
    per_expert: int  # parameters of one routed expert (0 for dense models)
    active: int  # parameters touched per token (MoE: top-k experts + shared + dense parts)
    largest_layer: int


def _linear(name: str, role: str, layer: int | None, out: int, inp: int, bias: bool,
            copies: int = 1) -> list[Tensor]:
    ts = [Tensor(f"{name}.weight", role, layer, (out, inp), copies)]
    if bias:
        ts.append(Tensor(f"{name}.bias", "bias", layer, (out,), copies))
    return ts


def _norm(spec: ModelSpec, name: str, layer: int | None, dim: int) -> list[Tensor]:
    ts = [Tensor(f"{name}.weight", "norm", layer, (dim,))]
    if spec.norm == "layer" if spec.norm_bias is None else spec.norm_bias:
        ts.append(Tensor(f"{name}.bias", "norm", layer, (dim,)))
    return ts


def _attention(spec: ModelSpec, i: int) -> list[Tensor]:
    h, a, kv, d = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim
    p = f"layers.{i}.attn"
    ts: list[Tensor] = []
    if spec.mla is not None:
        m = spec.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            ts += _linear(f"{p}.q_a_proj", "attn_q_a", i, m.q_lora_rank, h, spec.qkv_bias)
            ts += _norm(spec, f"{p}.q_a_layernorm", i, m.q_lora_rank)
            ts += _linear(f"{p}.q_b_proj", "attn_q_b", i, a * qk, m.q_lora_rank, False)
        else:
            ts += _linear(f"{p}.q_proj", "attn_q", i, a * qk, h, False)
        ts += _linear(f"{p}.kv_a_proj_with_mqa", "attn_kv_a", i, m.kv_lora_rank + m.qk_rope_head_dim, h,
                      spec.qkv_bias)
        ts += _norm(spec, f"{p}.kv_a_layernorm", i, m.kv_lora_rank)
        ts += _linear(f"{p}.kv_b_proj", "attn_kv_b", i, a * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank,
                      False)
        ts += _linear(f"{p}.o_proj", "attn_o", i, h, a * m.v_head_dim, spec.o_bias)
        return ts
    gate = 2 if spec.mixers is not None and spec.mixers.gated_attention else 1  # q and its output gate
    own_kv = i < spec.num_layers - spec.kv_shared_layers  # a KV-sharing layer has no k/v projections (Gemma-3n)
    ts += _linear(f"{p}.q_proj", "attn_q", i, gate * a * d, h, spec.qkv_bias)
    if own_kv:
        ts += _linear(f"{p}.k_proj", "attn_k", i, kv * d, h, spec.qkv_bias)
        ts += _linear(f"{p}.v_proj", "attn_v", i, kv * d, h, spec.qkv_bias)
    ts += _linear(f"{p}.o_proj", "attn_o", i, h, a * d, spec.o_bias)
    if spec.qk_norm:
        qw, kw = (a * d, kv * d) if spec.qk_norm_full else (d, d)
        ts.append(Tensor(f"{p}.q_norm.weight", "norm", i, (qw,)))
        if own_kv:
            ts.append(Tensor(f"{p}.k_norm.weight", "norm", i, (kw,)))
    if spec.attention_sinks:
        ts.append(Tensor(f"{p}.sinks", "bias", i, (a,)))
    return ts


def _mlp(spec: ModelSpec, i: int, prefix: str, role: str, width: int, copies: int = 1,
         bias: bool | None = None) -> list[Tensor]:
    h = spec.hidden_size
    bias = spec.mlp_bias if bias is None else bias
    ts: list[Tensor] = []
    if spec.mlp_kind == "gated":
        ts += _linear(f"{prefix}.gate_proj", f"{role}_gate", i, width, h, bias, copies)
        ts += _linear(f"{prefix}.up_proj", f"{role}_up", i, width, h, bias, copies)
    else:
        ts += _linear(f"{prefix}.up_proj", f"{role}_up", i, width, h, bias, copies)
    ts += _linear(f"{prefix}.down_proj", f"{role}_down", i, h, width, bias, copies)
    if role == "expert":  # expert biases are not "bias"-role singletons: they stack with the experts
        ts = [t._replace(role="expert_bias") if t.role == "bias" else t for t in ts]
    return ts


def _feed_forward(spec: ModelSpec, i: int) -> list[Tensor]:
    p = f"layers.{i}.mlp"
    moe = spec.moe
    if moe is None or not moe.moe_layers[i]:
        return _mlp(spec, i, p, "mlp", spec.intermediate_size)
    h = spec.hidden_size
    ts = _linear(f"{p}.router", "router", i, moe.num_experts, h, moe.router_bias)
    ts = [t._replace(role="router") for t in ts]
    # DeepSeek-V3's router e_score_correction_bias is a registered buffer in transformers, not a
    # parameter (its checkpoint stores it: 14,848 more elements across 58 MoE layers).
    ts += _mlp(spec, i, f"{p}.experts", "expert", moe.expert_intermediate_size, moe.num_experts,
               bias=moe.expert_bias)
    if moe.shared_intermediate_size:
        ts += _mlp(spec, i, f"{p}.shared_experts", "shared", moe.shared_intermediate_size)
        if moe.shared_expert_gate:
            ts += [t._replace(role="router") for t in _linear(f"{p}.shared_expert_gate", "router", i, 1, h, False)]
    return ts


def _layer(spec: ModelSpec, i: int) -> list[Tensor]:
    h = spec.hidden_size
    ts: list[Tensor] = []
    mx = spec.mixers
    kind = mx.kinds[i] if mx is not None else "attention"
    if kind != "attention":
        ts += [Tensor(t.name, t.role, i, t.shape) for t in mixer_tensors(spec, i, kind)]
    elif spec.fused_qkv:
        p = f"layers.{i}.attn"
        qkv_out = (spec.num_heads + 2 * spec.num_kv_heads) * spec.head_dim
        ts += _linear(f"{p}.query_key_value", "attn_qkv", i, qkv_out, h, spec.qkv_bias)
        ts += _linear(f"{p}.dense", "attn_o", i, h, spec.num_heads * spec.head_dim, spec.o_bias)
    else:
        ts += _attention(spec, i)
    if mx is not None and mx.parallel_ssm and kind == "attention":
        ts += [Tensor(t.name, t.role, i, t.shape) for t in mixer_tensors(spec, i, "mamba")]
    if mx is None or mx.mlp[i]:
        ts += _feed_forward(spec, i)
    for k in range(spec.norms_per_layer):
        ts += _norm(spec, f"layers.{i}.norm{k}", i, h)
    return ts


def _counted(spec: ModelSpec) -> tuple[Tensor, ...]:
    """The tensors transformers built (llm_mem.sources.meta_count), placed by their names."""
    out = []
    for name, shape, copies in spec.counted:
        layer, role = hf_role(name)
        if layer is not None and layer >= spec.num_layers:  # an encoder's or a second stack's layers
            layer = None
        out.append(Tensor(name, role, layer, shape, copies))
    return tuple(out)


@lru_cache(maxsize=64)
def inventory(spec: ModelSpec) -> tuple[Tensor, ...]:
    """Every parameter tensor of the model as transformers instantiates it (tied weights once)."""
    if spec.counted:
        return _counted(spec)
    h, v = spec.hidden_size, spec.vocab_size
    emb_dim = spec.embed_proj_dim or h
    ts: list[Tensor] = [Tensor("embed_tokens.weight", "embed", None, (v, emb_dim))]
    if spec.position_embeddings:
        ts.append(Tensor("embed_positions.weight", "pos_embed", None, (spec.position_embeddings, h)))
    if spec.embed_proj_dim:  # OPT-350m: project_in / project_out, no bias
        ts.append(Tensor("project_in.weight", "embed_proj", None, (h, emb_dim)))
        ts.append(Tensor("project_out.weight", "embed_proj", None, (emb_dim, h)))
    if spec.embedding_norm:
        ts += _norm(spec, "embed_norm", None, h)
    for i in range(spec.num_layers):
        ts += _layer(spec, i)
    ts += [Tensor(name, role, layer if layer >= 0 else None, shape) for layer, name, role, shape in spec.extra]
    if spec.final_norm:
        ts += _norm(spec, "final_norm", None, h)
    if not spec.tie_word_embeddings:
        ts.append(Tensor("lm_head.weight", "lm_head", None, (v, emb_dim)))
    ts += [Tensor(name, role, None, shape) for name, role, shape in spec.multimodal]
    return tuple(ts)


@lru_cache(maxsize=64)
def count_parameters(spec: ModelSpec) -> ParameterCounts:
    """The exact parameter breakdown: totals, embeddings, head, per layer, per expert, active."""
    ts = inventory(spec)
    n = spec.num_layers
    per_layer = [0] * n
    experts = [0] * n
    embedding = lm_head = other = multimodal = 0
    for t in ts:
        if t.layer is not None:
            per_layer[t.layer] += t.numel
            if t.role in EXPERT_ROLES:
                experts[t.layer] += t.numel
        elif t.role in ("embed", "pos_embed"):
            embedding += t.numel
        elif t.role == "lm_head":
            lm_head += t.numel
        elif t.role in MULTIMODAL_ROLES:
            multimodal += t.numel
        else:
            other += t.numel
    total = embedding + lm_head + other + multimodal + sum(per_layer)
    moe = spec.moe
    per_expert = 0
    active = total
    if moe is not None and any(moe.moe_layers):
        first = moe.moe_layers.index(True)
        per_expert = experts[first] // moe.num_experts
        # a token reads top_k experts of each MoE layer; the rest of the model is dense
        active = total - sum(experts) + sum(e // moe.num_experts * moe.top_k for e in experts)
    return ParameterCounts(
        total=total, embedding=embedding, lm_head=lm_head, per_layer=per_layer, final_norm_and_other=other,
        multimodal=multimodal, experts_per_layer=experts, per_expert=per_expert, active=active,
        largest_layer=max(per_layer + [embedding, lm_head]),
    )
