"""config.json fields of state-space and hybrid families -> ModelSpec fields (``mixers``, MoE, norms).

Each family's defaults are its transformers 5.24 configuration class's (configuration_<family>.py);
the module shapes they feed are in llm_mem.mixers. ``fields`` returns the keyword arguments the
parser adds to (or overrides in) the spec; ``unsupported`` names a config option whose layout is not
modelled here, so that the parser hands such a config to transformers instead of guessing.
"""

from __future__ import annotations

from typing import Any

from llm_mem.mixers import LinearAttnSpec, MixerKind, Mixers, ShortConvSpec, SsmSpec, dt_rank
from llm_mem.spec import LayerKind, MoeSpec

# Families with no attention layer at all (the parser must not look for attention heads).
ATTENTION_FREE = frozenset({"mamba", "falcon_mamba", "mamba2"})
HYBRID_FAMILIES = ATTENTION_FREE | {"jamba", "bamba", "falcon_h1", "granitemoehybrid", "nemotron_h", "qwen3_next",
                                    "lfm2"}
# Legacy layer-type names (transformers 5.24 configuration_utils.py _LEGACY_LAYER_TYPE_REMAP).
_REMAP = {"mamba": "linear_attention", "attention": "full_attention"}
# Nemotron-H's hybrid_override_pattern characters (configuration_nemotron_h.py _pattern_to_list).
_PATTERN = {"M": "linear_attention", "*": "full_attention", "-": "mlp", "E": "moe"}


def _get(cfg: dict[str, Any], key: str, default: Any) -> Any:
    v = cfg.get(key)
    return default if v is None else v


def _types(cfg: dict[str, Any], *keys: str) -> list[str] | None:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, list) and v:
            return [_REMAP.get(str(t), str(t)) for t in v]
    return None


def nemotron_types(cfg: dict[str, Any]) -> list[str]:
    """Nemotron-H's block per layer: layers_block_type / layer_types, else hybrid_override_pattern, else the
    class default (configuration_nemotron_h.py __post_init__)."""
    found = _types(cfg, "layers_block_type", "layer_types")
    if found is not None:
        return found
    pattern = cfg.get("hybrid_override_pattern")
    if isinstance(pattern, str) and pattern:
        return [_PATTERN.get(c, "?") for c in pattern]
    return ["linear_attention", "moe", "full_attention", "mlp"]


def layer_count(cfg: dict[str, Any], family: str) -> int | None:
    """The layer count where the layer list decides it (Nemotron-H ignores num_hidden_layers)."""
    return len(nemotron_types(cfg)) if family == "nemotron_h" else None


def unsupported(cfg: dict[str, Any], family: str) -> str | None:
    """A config option of the family whose layout llm-mem does not lay out natively, or None."""
    if family == "nemotron_h":
        if cfg.get("moe_latent_size") is not None:
            return "moe_latent_size"
        if any(t not in ("linear_attention", "full_attention", "mlp", "moe") for t in nemotron_types(cfg)):
            return "hybrid_override_pattern"
    return None


def _mamba2(cfg: dict[str, Any], h: int, prefix: str = "mamba_") -> SsmSpec:
    """A Mamba-2 mixer from the hybrids' mamba_* fields (Bamba, GraniteMoeHybrid: d_inner = mamba_expand x
    hidden, configuration_bamba.py / configuration_granitemoehybrid.py)."""
    return SsmSpec(version=2, d_inner=int(_get(cfg, f"{prefix}expand", 2)) * h,
                   d_state=int(_get(cfg, f"{prefix}d_state", 256)), d_conv=int(_get(cfg, f"{prefix}d_conv", 4)),
                   n_heads=int(_get(cfg, f"{prefix}n_heads", 128)), n_groups=int(_get(cfg, f"{prefix}n_groups", 1)),
                   conv_bias=bool(_get(cfg, f"{prefix}conv_bias", True)),
                   in_bias=bool(_get(cfg, f"{prefix}proj_bias", False)),
                   out_bias=bool(_get(cfg, f"{prefix}proj_bias", False)), gated_norm=True)


def fields(cfg: dict[str, Any], family: str, n: int, h: int) -> dict[str, Any]:
    """The spec fields of a state-space or hybrid ``family`` (n layers, hidden size h)."""
    kw: dict[str, Any] = {} if family == "qwen3_next" else {"moe": None}  # Qwen3-Next: the parser's Qwen MoE
    kinds: list[MixerKind]
    mlp: list[bool]
    ssm = linear = conv = None
    parallel = gated_attn = False
    if family in ("mamba", "falcon_mamba"):
        # MambaConfig / FalconMambaConfig: intermediate = expand x hidden unless the file has intermediate_size
        # (__post_init__ sets it, then the file's own value, a plain attribute, is set over it),
        # time_step_rank "auto", tie True; MambaBlock: one RMSNorm and the mixer, no MLP
        d_inner = int(_get(cfg, "intermediate_size", int(_get(cfg, "expand", 2)) * h))
        ssm = SsmSpec(version=1, d_inner=d_inner, d_state=int(_get(cfg, "state_size", 16)),
                      d_conv=int(_get(cfg, "conv_kernel", 4)), dt_rank=dt_rank(h, cfg.get("time_step_rank")),
                      conv_bias=bool(_get(cfg, "use_conv_bias", True)), in_bias=bool(_get(cfg, "use_bias", False)),
                      out_bias=bool(_get(cfg, "use_bias", False)))
        kinds, mlp = ["mamba"] * n, [False] * n
        kw.update(norms_per_layer=1, tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", True)))
    elif family == "mamba2":
        # Mamba2Config: expand 2, state_size 128, num_heads 128, n_groups 8, conv_kernel 4, tie False
        bias = bool(_get(cfg, "use_bias", False))
        ssm = SsmSpec(version=2, d_inner=int(_get(cfg, "expand", 2)) * h, d_state=int(_get(cfg, "state_size", 128)),
                      d_conv=int(_get(cfg, "conv_kernel", 4)), n_heads=int(_get(cfg, "num_heads", 128)),
                      n_groups=int(_get(cfg, "n_groups", 8)), conv_bias=bool(_get(cfg, "use_conv_bias", True)),
                      in_bias=bias, out_bias=bias, gated_norm=True)
        kinds, mlp = ["mamba"] * n, [False] * n
        kw.update(norms_per_layer=1, tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", False)))
    elif family == "jamba":
        # JambaConfig: attention where i % attn_layer_period == attn_layer_offset (8, 4), experts where
        # i % expert_layer_period == expert_layer_offset (2, 1) when num_experts > 1; JambaMambaMixer with
        # dt/B/C RMSNorms
        ssm = SsmSpec(version=1, d_inner=int(_get(cfg, "mamba_expand", 2)) * h,
                      d_state=int(_get(cfg, "mamba_d_state", 16)), d_conv=int(_get(cfg, "mamba_d_conv", 4)),
                      dt_rank=dt_rank(h, cfg.get("mamba_dt_rank")), conv_bias=bool(_get(cfg, "mamba_conv_bias", True)),
                      in_bias=bool(_get(cfg, "mamba_proj_bias", False)),
                      out_bias=bool(_get(cfg, "mamba_proj_bias", False)), bcdt_norms=True)
        ap, ao = int(_get(cfg, "attn_layer_period", 8)), int(_get(cfg, "attn_layer_offset", 4))
        ep, eo = int(_get(cfg, "expert_layer_period", 2)), int(_get(cfg, "expert_layer_offset", 1))
        kinds = ["attention" if i % ap == ao else "mamba" for i in range(n)]
        mlp = [True] * n
        experts = int(_get(cfg, "num_experts", 16))
        if experts > 1:
            kw["moe"] = MoeSpec(num_experts=experts, top_k=int(_get(cfg, "num_experts_per_tok", 2)),
                                expert_intermediate_size=int(_get(cfg, "intermediate_size", 14336)),
                                moe_layers=tuple(i % ep == eo for i in range(n)))
        kw["tie_word_embeddings"] = bool(_get(cfg, "tie_word_embeddings", False))
    elif family == "bamba":
        # BambaConfig: attention at attn_layer_indices (None: none), a gated MLP in every layer
        ssm = _mamba2(cfg, h)
        at = set(cfg.get("attn_layer_indices") or [])
        kinds, mlp = ["attention" if i in at else "mamba" for i in range(n)], [True] * n
        kw["tie_word_embeddings"] = bool(_get(cfg, "tie_word_embeddings", False))
    elif family == "falcon_h1":
        # FalconH1DecoderLayer: attention and FalconH1Mixer side by side in every layer; the mixer's width is
        # mamba_d_ssm (else expand x hidden), its gated norm only with mamba_rms_norm, out_proj bias projectors_bias
        d_ssm = cfg.get("mamba_d_ssm")
        ssm = SsmSpec(version=2, d_inner=int(d_ssm) if d_ssm else int(_get(cfg, "mamba_expand", 2)) * h,
                      d_state=int(_get(cfg, "mamba_d_state", 256)), d_conv=int(_get(cfg, "mamba_d_conv", 4)),
                      n_heads=int(_get(cfg, "mamba_n_heads", 128)), n_groups=int(_get(cfg, "mamba_n_groups", 1)),
                      conv_bias=bool(_get(cfg, "mamba_conv_bias", True)),
                      in_bias=bool(_get(cfg, "mamba_proj_bias", False)),
                      out_bias=bool(_get(cfg, "projectors_bias", False)),
                      gated_norm=bool(_get(cfg, "mamba_rms_norm", False)))
        kinds, mlp, parallel = ["attention"] * n, [True] * n, True
        kw["tie_word_embeddings"] = bool(_get(cfg, "tie_word_embeddings", False))
    elif family == "granitemoehybrid":
        # GraniteMoeHybridDecoderLayer: mamba where layer_types says linear_attention (legacy "mamba"), else
        # attention; the MoE block when num_local_experts > 0, and always the shared MLP (shared_intermediate_size)
        ssm = _mamba2(cfg, h)
        types = _types(cfg, "layer_types", "layers_block_type") or ["linear_attention"] * n
        kinds, mlp = ["mamba" if t == "linear_attention" else "attention" for t in types], [True] * n
        experts = int(_get(cfg, "num_local_experts", 8))
        shared = int(_get(cfg, "shared_intermediate_size", 1024))
        if experts > 0:
            kw["moe"] = MoeSpec(num_experts=experts, top_k=int(_get(cfg, "num_experts_per_tok", 2)),
                                expert_intermediate_size=int(_get(cfg, "intermediate_size", 11008)),
                                shared_intermediate_size=shared, moe_layers=(True,) * n)
        else:  # no experts: the shared MLP is the layer's only MLP
            kw["intermediate_size"] = shared
        kw["tie_word_embeddings"] = bool(_get(cfg, "tie_word_embeddings", False))
    elif family == "nemotron_h":
        # NemotronHBlock: one norm and one mixer per layer (mamba, attention, a non-gated MLP or the MoE of
        # non-gated experts plus one shared MLP of moe_shared_expert_intermediate_size)
        types = nemotron_types(cfg)
        ssm = SsmSpec(version=2, d_inner=int(_get(cfg, "mamba_num_heads", 128)) * int(_get(cfg, "mamba_head_dim", 64)),
                      d_state=int(_get(cfg, "ssm_state_size", 128)), d_conv=int(_get(cfg, "conv_kernel", 4)),
                      n_heads=int(_get(cfg, "mamba_num_heads", 128)), n_groups=int(_get(cfg, "n_groups", 8)),
                      conv_bias=bool(_get(cfg, "use_conv_bias", True)),
                      in_bias=bool(_get(cfg, "mamba_proj_bias", False)), out_bias=bool(_get(cfg, "use_bias", False)),
                      gated_norm=True)
        kinds = ["mamba" if t == "linear_attention" else "attention" if t == "full_attention" else "none"
                 for t in types]
        mlp = [t in ("mlp", "moe") for t in types]
        if "moe" in types:
            kw["moe"] = MoeSpec(num_experts=int(_get(cfg, "n_routed_experts", 8)),
                                top_k=int(_get(cfg, "num_experts_per_tok", 2)),
                                expert_intermediate_size=int(_get(cfg, "moe_intermediate_size", 7688)),
                                shared_intermediate_size=int(_get(cfg, "moe_shared_expert_intermediate_size", 7688)),
                                moe_layers=tuple(t == "moe" for t in types))
        kw.update(norms_per_layer=1, mlp_kind="plain", mlp_bias=bool(_get(cfg, "mlp_bias", False)),
                  tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", False)))
    elif family == "qwen3_next":
        # Qwen3NextConfig: Gated DeltaNet except every full_attention_interval-th layer (4); the attention's
        # q_proj also yields the output gate; q/k RMSNorm per head
        types = _types(cfg, "layer_types") or ["full_attention" if (i + 1) % int(_get(cfg, "full_attention_interval",
                                                                                       4)) == 0
                                               else "linear_attention" for i in range(n)]
        linear = LinearAttnSpec(key_heads=int(_get(cfg, "linear_num_key_heads", 16)),
                                value_heads=int(_get(cfg, "linear_num_value_heads", 32)),
                                key_head_dim=int(_get(cfg, "linear_key_head_dim", 128)),
                                value_head_dim=int(_get(cfg, "linear_value_head_dim", 128)),
                                conv_kernel=int(_get(cfg, "linear_conv_kernel_dim", 4)))
        kinds = ["linear_attention" if t == "linear_attention" else "attention" for t in types]
        mlp, gated_attn = [True] * n, True
        kw.update(qk_norm=True, tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", False)))
    elif family == "lfm2":
        # Lfm2Config: conv layers where layer_types says "conv" (default: attention in every layer),
        # conv_L_cache 3 taps; Lfm2MLP shrinks intermediate_size to 2/3, times block_ffn_dim_multiplier,
        # rounded up to block_multiple_of; tie_embedding is the old name of tie_word_embeddings
        types = _types(cfg, "layer_types") or ["full_attention" if i in (cfg.get("full_attn_idxs") or range(n))
                                               else "conv" for i in range(n)]
        conv = ShortConvSpec(kernel=int(_get(cfg, "conv_L_cache", 3)), bias=bool(_get(cfg, "conv_bias", False)))
        kinds, mlp = ["short_conv" if t == "conv" else "attention" for t in types], [True] * n
        inter = int(_get(cfg, "block_ff_dim", _get(cfg, "intermediate_size", 12288)))
        if _get(cfg, "block_auto_adjust_ff_dim", True):
            inter = int(2 * inter / 3)
            mult = cfg.get("block_ffn_dim_multiplier", 1.0)
            if mult is not None:
                m = int(_get(cfg, "block_multiple_of", 256))
                inter = m * ((int(float(mult) * inter) + m - 1) // m)
        tie = cfg.get("tie_word_embeddings", cfg.get("tie_embedding"))
        kw.update(qk_norm=True, intermediate_size=inter, tie_word_embeddings=True if tie is None else bool(tie))
    else:
        raise ValueError(family)
    if family in ATTENTION_FREE:
        kw.update(num_heads=1, num_kv_heads=1, head_dim=h)
    if family in ("jamba", "nemotron_h", "lfm2"):  # their attention projections never have biases
        kw.update(qkv_bias=False, o_bias=False)      # (JambaAttention, NemotronHAttention, Lfm2Attention)
    kw["mixers"] = Mixers(kinds=tuple(kinds), mlp=tuple(mlp), parallel_ssm=parallel, gated_attention=gated_attn,
                          ssm=ssm, linear=linear, conv=conv)
    lt: tuple[LayerKind, ...] = tuple("full" if k == "attention" else "linear" for k in kinds)
    kw["layer_types"] = lt
    return kw
