"""config.json fields of state-space and hybrid families -> ModelSpec fields (``mixers``, MoE, norms).

Each family's defaults are its transformers 5.24 configuration class's (configuration_<family>.py);
the module shapes they feed are in llm_mem.mixers. ``fields`` returns the keyword arguments the
parser adds to (or overrides in) the spec; ``unsupported`` names a config option whose layout is not
modelled here, so that the parser hands such a config to transformers instead of guessing.
"""

from __future__ import annotations

from typing import Any

from llm_mem.mixers import (
    KdaSpec,
    LightningAttnSpec,
    LinearAttnSpec,
    MixerKind,
    Mixers,
    ShortConvSpec,
    SsmSpec,
    dt_rank,
)
from llm_mem.spec import LayerKind, MlaSpec, MoeSpec

# Families with no attention layer at all (the parser must not look for attention heads).
ATTENTION_FREE = frozenset({"mamba", "falcon_mamba", "mamba2"})
HYBRID_FAMILIES = ATTENTION_FREE | {"jamba", "bamba", "falcon_h1", "granitemoehybrid", "nemotron_h", "qwen3_next",
                                    "lfm2", "lfm3", "zamba", "zamba2", "minimax", "kimi_linear", "olmo_hybrid"}
# Legacy layer-type names (transformers 5.24 configuration_utils.py _LEGACY_LAYER_TYPE_REMAP).
_REMAP = {"mamba": "linear_attention", "attention": "full_attention"}
# Nemotron-H's hybrid_override_pattern characters (configuration_nemotron_h.py _pattern_to_list).
_PATTERN = {"M": "linear_attention", "*": "full_attention", "-": "mlp", "E": "moe"}


def _get(cfg: dict[str, Any], key: str, default: Any) -> Any:
    v = cfg.get(key)
    return default if v is None else v


def _first(cfg: dict[str, Any], *keys: str, default: Any) -> Any:
    """The first of ``keys`` the config sets (a field and its attribute_map alias), else ``default``."""
    return next((cfg[k] for k in keys if cfg.get(k) is not None), default)


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


def zamba_types(cfg: dict[str, Any], family: str) -> list[str]:
    """Zamba's block per layer ("hybrid": a Mamba layer after the shared attention block): layers_block_type,
    else the class default (configuration_zamba.py / configuration_zamba2.py __post_init__)."""
    found = _types(cfg, "layers_block_type", "layer_types")
    if found is not None:
        return found
    if family == "zamba":
        period, offset = int(_get(cfg, "attn_layer_period", 6)), int(_get(cfg, "attn_layer_offset", 4))
        n = int(_get(cfg, "num_hidden_layers", 76))
        return ["linear_attention"] * 2 + ["hybrid"] + ["hybrid" if i % period == offset else "linear_attention"
                                                         for i in range(n - 3)]
    return (["linear_attention"] + (["linear_attention"] * 5 + ["hybrid"]) * 7 + ["linear_attention"] * 4
            + ["hybrid"] + ["linear_attention"] * 3 + ["hybrid"] + ["linear_attention"] * 2)


def layer_count(cfg: dict[str, Any], family: str) -> int | None:
    """The layer count where the layer list decides it (Nemotron-H ignores num_hidden_layers; Zamba's model
    builds one layer per layers_block_type entry)."""
    if family in ("zamba", "zamba2"):
        return len(zamba_types(cfg, family))
    return len(nemotron_types(cfg)) if family == "nemotron_h" else None


def unsupported(cfg: dict[str, Any], family: str) -> str | None:
    """A config option of the family whose layout llm-mem does not lay out natively, or None."""
    allowed = {"olmo_hybrid": ("linear_attention", "full_attention"),
               "lfm3": ("conv", "full_attention", "sliding_attention")}.get(family)
    if allowed is not None:
        types = _types(cfg, "layer_types")
        if types is None or any(t not in allowed for t in types):
            return "layer_types"
    if family == "kimi_linear":
        n = int(_get(cfg, "num_hidden_layers", 27))
        for key, allowed in (("layer_types", ("linear_attention", "full_attention")), ("mlp_layer_types",
                                                                                        ("dense", "sparse"))):
            v = cfg.get(key)
            if not isinstance(v, list) or len(v) != n or any(t not in allowed for t in v):
                return key
    if family == "minimax" and any(t not in ("full_attention", "linear_attention") for t in _types(cfg, "layer_types")
                                   or []):
        return "layer_types"
    if family in ("zamba", "zamba2") and any(t not in ("linear_attention", "hybrid") for t in zamba_types(cfg, family)):
        return "layers_block_type"
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
    ssm = linear = conv = lightning = kda = None
    parallel = gated_attn = False
    attn: set[int] = set()  # layers that keep KV besides their mixer (Zamba's hybrid layers)
    sliding: set[int] = set()  # attention layers that keep a window of tokens (LFM3)
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
        linear = _gated_deltanet(cfg)
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
    elif family == "lfm3":
        # Lfm3DecoderLayer: LFM2's short conv (conv_L_cache taps, conv_bias) where layer_types says "conv", else
        # attention (q/k/v/o biased by attention_bias, per-head q/k norms, a bias-free per-head output gate g_proj
        # with use_attention_gate); a gated MLP of intermediate_size as given; two more norms with
        # use_sandwich_norm (post_operator_norm, post_ffn_norm); sliding layers keep sliding_window tokens
        types = _types(cfg, "layer_types") or []
        conv = ShortConvSpec(kernel=int(_get(cfg, "conv_L_cache", 7)), bias=bool(_get(cfg, "conv_bias", False)))
        kinds, mlp = ["short_conv" if t == "conv" else "attention" for t in types], [True] * n
        heads = int(_get(cfg, "num_attention_heads", 16))
        if _get(cfg, "use_attention_gate", True):
            kw["extra"] = tuple((i, f"layers.{i}.attn.g_proj.weight", "attn_q", (heads, h))
                                for i, k in enumerate(kinds) if k == "attention")
        bias = bool(_get(cfg, "attention_bias", False))
        sandwich = bool(_get(cfg, "use_sandwich_norm", True))
        kw.update(qk_norm=True, qkv_bias=bias, o_bias=bias, norms_per_layer=4 if sandwich else 2,
                  intermediate_size=int(_get(cfg, "intermediate_size", 7680)),
                  tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", True)))
        window = _get(cfg, "sliding_window", 256)
        sliding = {i for i, t in enumerate(types) if t == "sliding_attention"} if window else set()
        kw["sliding_window"] = int(window) if sliding else None
    elif family == "olmo_hybrid":
        # OlmoHybridDecoderLayer: Gated DeltaNet where layer_types says linear_attention (q/k/v/g, a/b projections,
        # a conv over q, k, v, dt_bias and A_log per value head, an o_norm of the value width: Qwen3-Next's counts,
        # split), else OLMo 2's attention (q/k RMSNorms over all heads, no output gate); a gated MLP everywhere
        types = _types(cfg, "layer_types") or []
        linear = _gated_deltanet(cfg)
        kinds = ["linear_attention" if t == "linear_attention" else "attention" for t in types]
        mlp = [True] * n
        kw.update(qk_norm=True, qk_norm_full=True, qkv_bias=bool(_get(cfg, "attention_bias", False)),
                  o_bias=bool(_get(cfg, "attention_bias", False)),
                  tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", False)))
    elif family == "minimax":
        # MiniMaxDecoderLayer: lightning attention where layer_types says linear_attention (MiniMaxConfig: every
        # second layer, from layer 1), Mixtral's attention elsewhere; the Mixtral MoE block in every layer
        heads = int(_get(cfg, "num_attention_heads", 32))
        types = _types(cfg, "layer_types") or ["full_attention" if (i + 1) % 2 else "linear_attention"
                                               for i in range(n)]
        lightning = LightningAttnSpec(heads=heads, head_dim=int(_get(cfg, "head_dim", h // heads)))
        kinds, mlp = ["lightning" if t == "linear_attention" else "attention" for t in types], [True] * n
        kw["moe"] = MoeSpec(num_experts=int(_get(cfg, "num_local_experts", 8)),
                            top_k=int(_get(cfg, "num_experts_per_tok", 2)),
                            expert_intermediate_size=int(_get(cfg, "intermediate_size", 14336)), moe_layers=(True,) * n)
        kw.update(qkv_bias=False, o_bias=False, tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", False)))
    elif family == "kimi_linear":
        # KimiLinearDecoderLayer: Kimi Delta Attention where layer_types says linear_attention, else MLA
        # (KimiLinearAttention: DeepSeek's latent attention, q_proj when q_lora_rank is None); the MoE block
        # (routed experts of moe_intermediate_size, num_shared_experts shared ones, a bias-free router whose
        # e_score_correction_bias is a buffer) where mlp_layer_types says "sparse", a dense MLP elsewhere
        types = _types(cfg, "layer_types") or []
        heads = int(_get(cfg, "num_attention_heads", 32))
        kda = KdaSpec(heads=int(_get(cfg, "linear_num_heads", 32)), head_dim=int(_get(cfg, "linear_head_dim", 128)),
                      conv_kernel=int(_get(cfg, "linear_conv_kernel_dim", 4)))
        kinds, mlp = ["kda" if t == "linear_attention" else "attention" for t in types], [True] * n
        moe_i = int(_get(cfg, "moe_intermediate_size", 1024))
        kw["moe"] = MoeSpec(num_experts=int(_first(cfg, "num_experts", "num_local_experts", default=256)),
                            top_k=int(_first(cfg, "num_experts_per_token", "num_experts_per_tok", default=8)),
                            expert_intermediate_size=moe_i,
                            shared_intermediate_size=moe_i * int(_first(cfg, "num_shared_experts", "n_shared_experts",
                                                                        default=1)),
                            moe_layers=tuple(t == "sparse" for t in cfg.get("mlp_layer_types") or []))
        nope, rope = int(_get(cfg, "qk_nope_head_dim", 128)), int(_get(cfg, "qk_rope_head_dim", 64))
        kw.update(mla=MlaSpec(kv_lora_rank=int(_get(cfg, "kv_lora_rank", 512)), q_lora_rank=cfg.get("q_lora_rank"),
                              qk_nope_head_dim=nope, qk_rope_head_dim=rope,
                              v_head_dim=int(_get(cfg, "v_head_dim", 128))),
                  head_dim=nope + rope, num_kv_heads=heads, qkv_bias=bool(_get(cfg, "attention_bias", False)),
                  o_bias=bool(_get(cfg, "attention_bias", False)),
                  tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", False)))
    elif family in ("zamba", "zamba2"):
        ssm, attn = _zamba(cfg, family, h, kw)
        kinds, mlp = ["mamba"] * n, [False] * n
    else:
        raise ValueError(family)
    if family in ATTENTION_FREE:
        kw.update(num_heads=1, num_kv_heads=1, head_dim=h)
    if family in ("jamba", "nemotron_h", "lfm2"):  # their attention projections never have biases
        kw.update(qkv_bias=False, o_bias=False)      # (JambaAttention, NemotronHAttention, Lfm2Attention)
    kw["mixers"] = Mixers(kinds=tuple(kinds), mlp=tuple(mlp), parallel_ssm=parallel, gated_attention=gated_attn,
                          ssm=ssm, linear=linear, conv=conv, lightning=lightning, kda=kda)
    lt: tuple[LayerKind, ...] = tuple(("sliding" if i in sliding else "full") if k == "attention" or i in attn
                                      else "linear" for i, k in enumerate(kinds))
    kw["layer_types"] = lt
    return kw


def _zamba(cfg: dict[str, Any], family: str, h: int, kw: dict[str, Any]) -> tuple[SsmSpec, set[int]]:
    """Zamba / Zamba2: a Mamba layer (input RMSNorm, mixer, no MLP) everywhere; at each "hybrid" layer the
    shared attention block runs first on [hidden, embeddings] (2 x hidden wide), then its own bias-free
    ``linear`` (hidden x hidden). The shared block's weights exist once (Zamba2: num_mem_blocks copies, used
    in turn, with one LoRA-style adapter per hybrid layer), laid out here at the first layer that uses them
    (where transformers names them); each hybrid layer keeps its own KV, every layer its SSM state.

    modeling_zamba.py ZambaMambaMixer (per-head x_proj / dt_proj: Mamba-1's counts), ZambaAttentionDecoderLayer,
    ZambaHybridLayer; modeling_zamba2.py Zamba2MambaMixer (Mamba-2), Zamba2Attention (q/k/v adapters with
    use_shared_attention_adapter), Zamba2MLP (gate_up_proj, gate_up_proj_adapter_list), Zamba2Model.get_layers."""
    types = zamba_types(cfg, family)
    hybrid = [i for i, t in enumerate(types) if t == "hybrid"]
    heads = int(_get(cfg, "num_attention_heads", 16 if family == "zamba" else 32))
    kv_heads = int(_get(cfg, "num_key_value_heads", heads))
    inter = int(_get(cfg, "intermediate_size", 14848 if family == "zamba" else 4 * h) or 4 * h)
    if family == "zamba":  # ZambaConfig: attention_hidden_size / attention_head_dim default from 2 x hidden
        width = int(_get(cfg, "attention_hidden_size", 2 * h))
        hd = int(_get(cfg, "attention_head_dim", 2 * h // heads))
        ssm = SsmSpec(version=1, d_inner=int(_get(cfg, "mamba_expand", 2)) * h,
                      d_state=int(_get(cfg, "mamba_d_state", 16)), d_conv=int(_get(cfg, "mamba_d_conv", 4)),
                      dt_rank=dt_rank(h, cfg.get("mamba_dt_rank")), conv_bias=bool(_get(cfg, "mamba_conv_bias", True)),
                      in_bias=bool(_get(cfg, "mamba_proj_bias", False)),
                      out_bias=bool(_get(cfg, "mamba_proj_bias", False)))
        blocks, bias, rank, qkv_adapters = 1, False, 0, False
    else:  # Zamba2Config.__post_init__ sets both from 2 x hidden, whatever the file says
        width, hd = 2 * h, 2 * h // heads
        bias = bool(_get(cfg, "add_bias_linear", False))
        ssm = SsmSpec(version=2, d_inner=int(_get(cfg, "mamba_expand", 2)) * h,
                      d_state=int(_get(cfg, "mamba_d_state", 64)), d_conv=int(_get(cfg, "mamba_d_conv", 4)),
                      n_heads=int(_get(cfg, "n_mamba_heads", 8)), n_groups=int(_get(cfg, "mamba_ngroups", 1)),
                      conv_bias=bool(_get(cfg, "use_conv_bias", True)), in_bias=bias, out_bias=bias, gated_norm=True)
        blocks = int(_get(cfg, "num_mem_blocks", 1))
        rank = int(_get(cfg, "adapter_rank", 128))
        qkv_adapters = bool(_get(cfg, "use_shared_attention_adapter", False))
    extra: list[tuple[int, str, str, tuple[int, ...]]] = []

    def lin(layer: int, name: str, role: str, o: int, i: int, b: bool = False) -> None:
        extra.append((layer, f"{name}.weight", role, (o, i)))
        if b:
            extra.append((layer, f"{name}.bias", "bias", (o,)))

    block = "shared_transf" if family == "zamba" else "shared_transformer"
    for b, at in enumerate(hybrid[:blocks]):
        p = f"layers.{at}.{block}"
        lin(at, f"{p}.self_attn.q_proj", "attn_q", heads * hd, width)
        lin(at, f"{p}.self_attn.k_proj", "attn_k", kv_heads * hd, width)
        lin(at, f"{p}.self_attn.v_proj", "attn_v", kv_heads * hd, width)
        lin(at, f"{p}.self_attn.o_proj", "attn_o", h, heads * hd)
        if family == "zamba":
            for proj in ("gate_proj", "up_proj"):
                lin(at, f"{p}.feed_forward.{proj}", f"mlp_{proj[:-5]}", inter, h)
            lin(at, f"{p}.feed_forward.down_proj", "mlp_down", h, inter)
        else:
            lin(at, f"{p}.feed_forward.gate_up_proj", "mlp_up", 2 * inter, h, bias)
            lin(at, f"{p}.feed_forward.down_proj", "mlp_down", h, inter, bias)
            for slot in range(b, len(hybrid), blocks):  # the hybrid layers that run this block
                for q in ("q", "k", "v") if qkv_adapters else ():
                    lin(at, f"{p}.self_attn.linear_{q}_adapter_list.{slot}.0", "attn_q", rank, width)
                    lin(at, f"{p}.self_attn.linear_{q}_adapter_list.{slot}.1", "attn_q", width, rank)
                lin(at, f"{p}.feed_forward.gate_up_proj_adapter_list.{slot}.0", "mlp_up", rank, h)
                lin(at, f"{p}.feed_forward.gate_up_proj_adapter_list.{slot}.1", "mlp_up", 2 * inter, rank)
        extra += [(at, f"{p}.input_layernorm.weight", "norm", (width,)),
                  (at, f"{p}.pre_ff_layernorm.weight", "norm", (h,))]
    for at in hybrid:
        lin(at, f"layers.{at}.linear", "attn_o", h, h)
    kw.update(num_heads=heads, num_kv_heads=kv_heads, head_dim=hd, intermediate_size=inter, norms_per_layer=1,
              qkv_bias=False, o_bias=False, extra=tuple(extra),
              tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", True)))
    return ssm, set(hybrid)


def _gated_deltanet(cfg: dict[str, Any]) -> LinearAttnSpec:
    """Gated DeltaNet's sizes with Qwen3NextConfig's defaults (16 key / 32 value heads of 128, conv kernel 4);
    OLMo-hybrid reads the same keys."""
    return LinearAttnSpec(key_heads=int(_get(cfg, "linear_num_key_heads", 16)),
                          value_heads=int(_get(cfg, "linear_num_value_heads", 32)),
                          key_head_dim=int(_get(cfg, "linear_key_head_dim", 128)),
                          value_head_dim=int(_get(cfg, "linear_value_head_dim", 128)),
                          conv_kernel=int(_get(cfg, "linear_conv_kernel_dim", 4)))
