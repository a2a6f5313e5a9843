"""LoRA: the modules PEFT wraps for a ``target_modules`` list, their adapter sizes, and the defaults.

Module names are transformers' own (ModelSpec.training, filled per family by the parser), which is
what PEFT matches (peft/tuners/tuners_utils.py: a module is targeted when its name equals, or its
full key ends with, one of the names; ``all-linear`` is every nn.Linear/Conv1D but the output head).
Adapter sizes: A (r x in) + B (out x r) per wrapped module (Hu et al. 2021, arXiv:2106.09685);
PEFT's ParamWrapper on a fused experts parameter (E experts) holds A (r*E x in) and B (out x r*E),
and 2r for the fused gate_up (peft/tuners/lora/layer.py ParamWrapper; peft 0.21.2 with transformers 5:
the v4 names gate_proj/up_proj/down_proj are converted to the fused experts, so a MoE model's dense
and shared-expert MLPs are left without adapters, by name and by all-linear). Every family's trainable
count is checked against PEFT's (benchmarks/activations/measured_families.json, tests).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from llm_mem.errors import UsageError
from llm_mem.params import inventory
from llm_mem.spec import ModelSpec

# Every module name the bundled families give their linear layers, plus PEFT's keywords. A name not
# here is a typo (PEFT would raise "Target modules ... not found in the base model").
LORA_TARGET_NAMES = frozenset({
    "q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "query_key_value", "c_attn", "c_proj", "c_fc", "dense",
    "out_proj", "fc1", "fc2", "dense_h_to_4h", "dense_4h_to_h", "gate_proj", "up_proj", "down_proj", "gate_up_proj",
    "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "gate", "experts", "project_in", "project_out",
    "all-linear",
})
ALL_LINEAR = "all-linear"


class LoraModule(NamedTuple):
    """One module PEFT can wrap: its name, what it computes (a role), its layer and shape."""

    name: str
    role: str  # attn_qkv (one fused projection), attn_q/k/v, attn_o, mlp_up (gate/up or fused), mlp_down,
    #            attn_q_a/q_b/kv_a/kv_b (MLA), router, expert_up, expert_down
    layer: int | None
    in_features: int
    out_features: int
    copies: int = 1  # routed experts behind one ParamWrapper
    linear: bool = True  # all-linear wraps it
    aliases: tuple[str, ...] = ()  # other target names that reach it
    rank_mult: int = 1  # PEFT's fused gate_up ParamWrapper has rank 2r (two v4 Linears in one)


def _mlp_modules(spec: ModelSpec, i: int, width: int, prefix: str = "") -> list[LoraModule]:
    h, tc = spec.hidden_size, spec.training
    ups = tc.up_modules if spec.mlp_kind == "gated" else tc.up_modules[:1]
    per = 2 * width if spec.mlp_kind == "gated" and len(ups) == 1 else width
    out = [LoraModule(prefix + n, "mlp_up", i, h, per) for n in ups]
    out.append(LoraModule(prefix + tc.down_module, "mlp_down", i, width, h))
    if tc.lora_experts:  # PEFT's v5 conversion points gate_proj/up_proj/down_proj at the fused experts:
        # the dense and shared MLP Linears are then not wrapped, by name or by all-linear (measured)
        out = [m._replace(name="mlp:" + m.name, linear=False) for m in out]
    return out


@lru_cache(maxsize=64)
def lora_modules(spec: ModelSpec) -> tuple[LoraModule, ...]:
    """Every module of the model PEFT could wrap, in order, as transformers 5 builds it."""
    if spec.counted:  # a model built by transformers on the meta device: its own names
        return tuple(LoraModule(t.name.rsplit(".", 2)[-2], t.role, t.layer, t.shape[1], t.shape[0], t.copies)
                     for t in inventory(spec) if len(t.shape) == 2 and t.role not in ("embed", "lm_head", "pos_embed"))
    h, a, kv, d = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim
    tc = spec.training
    out: list[LoraModule] = []
    if spec.embed_proj_dim:  # OPT's project_in / project_out around the decoder
        out += [LoraModule("project_in", "embed_proj", None, spec.embed_proj_dim, h),
                LoraModule("project_out", "embed_proj", None, h, spec.embed_proj_dim)]
    for i in range(spec.num_layers):
        if spec.mla is not None:
            m = spec.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            if m.q_lora_rank:
                out += [LoraModule("q_a_proj", "attn_q_a", i, h, m.q_lora_rank),
                        LoraModule("q_b_proj", "attn_q_b", i, m.q_lora_rank, a * qk)]
            else:
                out.append(LoraModule("q_proj", "attn_q", i, h, a * qk))
            out += [LoraModule("kv_a_proj_with_mqa", "attn_kv_a", i, h, m.kv_lora_rank + m.qk_rope_head_dim),
                    LoraModule("kv_b_proj", "attn_kv_b", i, m.kv_lora_rank, a * (m.qk_nope_head_dim + m.v_head_dim)),
                    LoraModule(tc.o_module, "attn_o", i, a * m.v_head_dim, h)]
        else:
            if len(tc.qkv_modules) == 1:
                out.append(LoraModule(tc.qkv_modules[0], "attn_qkv", i, h, (a + 2 * kv) * d))
            else:
                out += [LoraModule(n, role, i, h, w) for n, role, w in
                        zip(tc.qkv_modules, ("attn_q", "attn_k", "attn_v"), (a * d, kv * d, kv * d))]
            out.append(LoraModule(tc.o_module, "attn_o", i, a * d, h))
        moe = spec.moe
        if moe is None or not moe.moe_layers[i]:
            out += _mlp_modules(spec, i, spec.intermediate_size)
            continue
        e, im = moe.num_experts, moe.expert_intermediate_size
        out.append(LoraModule("gate", "router", i, h, e, linear=tc.lora_experts))
        if tc.lora_experts:
            out += [LoraModule("experts", "expert_up", i, h, 2 * im, e, aliases=("gate_proj", "up_proj"), rank_mult=2),
                    LoraModule("experts", "expert_down", i, im, h, e, aliases=("down_proj",))]
        if moe.shared_intermediate_size:
            out += _mlp_modules(spec, i, moe.shared_intermediate_size, "shared_experts.")
    return tuple(out)


def _matches(mod: LoraModule, name: str) -> bool:
    if name == ALL_LINEAR:
        return mod.linear
    return mod.name == name or mod.name.endswith("." + name) or name in mod.aliases


def resolve_targets(spec: ModelSpec, targets: tuple[str, ...] | None) -> tuple[tuple[str, ...], str | None]:
    """The targets a run uses and, when they are the default, the sentence that says where it comes from."""
    if targets is not None:
        return targets, None
    default = spec.training.lora_default_targets
    if default:
        return default, (f"LoRA targets {', '.join(default)}: PEFT's default for {spec.model_type} "
                         "(TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING); --lora-targets changes them")
    return (ALL_LINEAR,), (f"LoRA targets all-linear: PEFT has no default for {spec.model_type} (it asks for "
                           "target_modules), all-linear is what recipes pass; --lora-targets changes them")


def lora_target_modules(spec: ModelSpec, targets: tuple[str, ...]) -> list[LoraModule]:
    """The modules PEFT wraps for ``targets`` (an error when a name matches nothing in this model)."""
    mods = lora_modules(spec)
    for name in targets:
        if name not in LORA_TARGET_NAMES:
            raise UsageError(f"unknown LoRA target {name!r}", f"choose from {', '.join(sorted(LORA_TARGET_NAMES))}")
        if not any(_matches(m, name) for m in mods):
            names = sorted({m.name.rsplit(".", 1)[-1] for m in mods})
            raise UsageError(f"{spec.model_type} has no module named {name!r} (PEFT would raise)",
                             f"its linear modules: {', '.join(names)}; or all-linear")
    return [m for m in mods if any(_matches(m, n) for n in targets)]


def adapter_params(m: LoraModule, rank: int) -> int:
    """A (r x in) + B (out x r), per expert behind a ParamWrapper."""
    return rank * m.rank_mult * m.copies * (m.in_features + m.out_features)


def lora_params(spec: ModelSpec, targets: tuple[str, ...], rank: int) -> int:
    """Trainable LoRA parameters: what PEFT's print_trainable_parameters reports."""
    return sum(adapter_params(m, rank) for m in lora_target_modules(spec, targets))
