"""config.json (a dict) -> ModelSpec. Every key alias, default and family quirk lives here.

Defaults that a config may omit are the defaults of the matching transformers configuration
class (transformers/models/<family>/configuration_<family>.py), so that a config saved without
them is read the way transformers reads it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from llm_mem.errors import ConfigError
from llm_mem.sources import families, hybrid, vision
from llm_mem.sources.counted import counted_spec, header_spec
from llm_mem.sources.quant import parse_quantization
from llm_mem.sources.train_caps import training_caps
from llm_mem.sources.validate import check_config
from llm_mem.spec import LayerKind, MlaSpec, ModelSpec, MoeSpec, StoredTensor

LLAMA_LIKE = {
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2",
    "gemma3_text", "phi3", "deepseek_v2", "deepseek_v3", "deepseek_v32", "gpt_oss", "granite",
}
# DeepSeek's MLA + MoE layout (DeepSeek-V3.2 adds the lightning indexer: llm_mem.sources.families)
DEEPSEEK = frozenset({"deepseek_v2", "deepseek_v3", "deepseek_v32",
                      # MiniCPM3, Youtu-LLM: DeepSeek's MLA with a dense MLP (modeling_minicpm3.py, modeling_youtu.py)
                      "minicpm3", "youtu"})
LLAMA_LIKE |= set(families.FAMILIES)  # read the Llama way, then their switches (llm_mem.sources.families)
KNOWN_FAMILIES = LLAMA_LIKE | {"gpt2", "opt", "bloom", "falcon", "gpt_neox"} | hybrid.HYBRID_FAMILIES
# Families whose attention is one fused query_key_value projection and a "dense" output.
FUSED_QKV = frozenset({"gpt2", "opt", "bloom", "gpt_neox", "falcon"})
# Families transformers 5.24 builds without an SDPA path, so its default attention is eager
# (modeling_gpt_oss.py, modeling_bloom.py, modeling_gemma2.py: _supports_sdpa = False; gpt-oss's sinks
# and Gemma-2's logit soft-capping need the eager softmax; Gemma-2 had SDPA in 4.57).
NO_SDPA = frozenset({"gpt_oss", "gemma2", "bloom"})
# llama.cpp's architecture for each family (convert_hf_to_gguf.py model classes -> gguf MODEL_ARCH):
# Mistral and Mixtral convert to LLM_ARCH_LLAMA; DeepSeek V2 and V3 to deepseek2. OPT has no converter.
LLAMACPP_ARCH = {
    "llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "qwen2", "qwen2_moe": "qwen2moe",
    "qwen3": "qwen3", "qwen3_moe": "qwen3moe", "gemma": "gemma", "gemma2": "gemma2", "gemma3_text": "gemma3",
    "phi3": "phi3", "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2", "gpt_oss": "gpt-oss",
    "olmo2": "olmo2", "granite": "granite", "gpt2": "gpt2", "bloom": "bloom", "falcon": "falcon",
    "gpt_neox": "gptneox",
}
# Classes that build only the language model of a multimodal wrapper config (transformers 5.24
# modeling_llama4.py Llama4ForCausalLM, modeling_gemma3.py Gemma3ForCausalLM, modeling_qwen3_5(_moe).py
# Qwen3_5(Moe)ForCausalLM: the text_config alone).
TEXT_ONLY_CLASSES = frozenset({"Llama4ForCausalLM", "Gemma3ForCausalLM", "Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM"})
# Multimodal wrappers whose language model sits in `text_config`.
# (the wrappers' sub_configs_defaults: text_config's model_type when it does not say)
_WRAPPER_TEXT_TYPES = {"gemma3": "gemma3_text", "llava": "llama", "mistral3": "mistral", "llama4": "llama4_text",
                       "shieldgemma2": "gemma3_text", "paligemma": "gemma", "llava_next": "llama",
                       "llava_next_video": "llama", "vipllava": "llama", "video_llava": "llama",
                       "llava_onevision": "qwen2"}


# Language models of multimodal wrappers that are an existing family under another model_type (transformers
# 5.24 modeling_qwen2_vl.py Qwen2VLTextModel, modeling_qwen2_5_vl.py, modeling_qwen3_vl.py Qwen3VLTextModel,
# modeling_qwen3_vl_moe.py Qwen3VLMoeTextModel: Qwen2's, Qwen3's and Qwen3-MoE's decoder layers).
FAMILY_OF = {"qwen2_vl_text": "qwen2", "qwen2_5_vl_text": "qwen2", "qwen3_vl_text": "qwen3",
             "qwen3_vl_moe_text": "qwen3_moe",
             # modeling_qwen3_5(_moe).py: Qwen3-Next's decoder layers (Gated DeltaNet with its projections split
             # into in_proj_qkv / in_proj_z / in_proj_b / in_proj_a, the same sizes; gated full attention)
             "qwen3_5_text": "qwen3_next", "qwen3_5_moe_text": "qwen3_next",
             # model types whose configs transformers 5.24 builds with another family's class
             # (models/auto/modeling_auto.py: sarvam_mla -> DeepseekV3ForCausalLM, sarvam_moe -> Glm4MoeForCausalLM)
             "sarvam_mla": "deepseek_v3", "sarvam_moe": "glm4_moe",
             # modeling_glm4_moe_lite.py / modeling_glm_moe_dsa.py: DeepSeek-V3's and DeepSeek-V3.2's layers
             "glm4_moe_lite": "deepseek_v3", "glm_moe_dsa": "deepseek_v32",
             # modeling_mistral4.py (MLA + routed and shared experts), modeling_solar_open.py (GLM-4-MoE's
             # layer without q/k norms): the same modules and defaults that matter for the count
             "mistral4": "deepseek_v3", "solar_open": "glm4_moe",
             # modeling_biogpt.py: OPT's decoder (learned positions offset by 2, LayerNorms, fc1 / fc2 with biases)
             "biogpt": "opt",
             # Kimi K2's config names its DeepSeek-V3 text model "kimi_k2" (configuration_kimi_k25.py
             # __post_init__ maps it to deepseek_v3)
             "kimi_k2": "deepseek_v3"}


def family_of(model_type: str) -> str:
    """The family whose layout a model_type uses."""
    return FAMILY_OF.get(model_type, model_type)


def is_native(raw: dict[str, Any]) -> bool:
    """Whether llm-mem lays out the parameters of the class this config builds itself (else transformers
    counts them, llm_mem.sources.counted). A multimodal wrapper is native when its text model is and either
    its class is the text model alone or its towers are laid out natively."""
    cfg = unwrap_text_config(raw)
    family = family_of(str(cfg.get("model_type") or "").lower())
    if (family not in KNOWN_FAMILIES or hybrid.unsupported(cfg, family) is not None
            or families.unsupported(cfg, family) is not None):
        return False
    if cfg is raw:
        return True
    return _text_only(raw) or vision.supported(raw)


def _text_only(raw: dict[str, Any]) -> bool:
    archs = raw.get("architectures")
    return isinstance(archs, list) and bool(archs) and archs[0] in TEXT_ONLY_CLASSES


def _first(d: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return default


def _int(d: dict[str, Any], *keys: str, default: int | None = None, required: bool = True) -> int:
    v = _first(d, *keys, default=default)
    if v is None:
        if required:
            raise ConfigError(f"config.json has no {' / '.join(keys)}", "is this a decoder-only LLM config?")
        return 0
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or int(v) != v:
        raise ConfigError(f"config.json field {keys[0]} = {v!r} is not a non-negative integer")
    return int(v)


def unwrap_text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Return the language-model part of a multimodal wrapper config (or cfg itself)."""
    text = cfg.get("text_config")
    flat = vision.FLAT_TEXT_TYPES.get(str(cfg.get("model_type")))
    if flat is not None and text is None and isinstance(cfg.get("vision_config"), dict):
        text = {**{k: v for k, v in cfg.items() if k != "vision_config"}, "model_type": flat}
    if isinstance(text, dict) and ("hidden_size" in text or "num_hidden_layers" in text):
        merged = dict(text)
        mt = cfg.get("model_type")
        merged.setdefault("model_type", _WRAPPER_TEXT_TYPES.get(str(mt)) or text.get("model_type") or mt)
        # a wrapper's quantization_config / dtype apply to the whole checkpoint
        for key in ("quantization_config", "torch_dtype", "dtype"):
            if key in cfg and key not in merged:
                merged[key] = cfg[key]
        return merged
    return cfg


_FULL: LayerKind = "full"
_SLIDING: LayerKind = "sliding"


def _layer_types(cfg: dict[str, Any], family: str, n: int) -> tuple[tuple[LayerKind, ...], int | None]:
    """Per-layer attention kind and the sliding window, from the per-layer fields."""
    window = cfg.get("sliding_window")
    window = int(window) if isinstance(window, (int, float)) and window > 0 else None
    lt = cfg.get("layer_types")
    if isinstance(lt, list) and len(lt) == n:
        kinds: list[LayerKind] = []
        for item in lt:
            t = str(item)
            kinds.append("sliding" if "sliding" in t or "chunked" in t else "linear" if "linear" in t else "full")
        return tuple(kinds), window
    interval = cfg.get("full_attention_interval")
    if isinstance(interval, int) and interval > 0:  # Qwen3-Next: linear attention except every Nth layer
        every: list[LayerKind] = ["full" if (i + 1) % interval == 0 else "linear" for i in range(n)]
        return tuple(every), window
    if window is None:
        return (_FULL,) * n, None
    pattern: list[LayerKind] | None = None
    if family == "gemma2":  # Gemma2Config: layer i slides when (i + 1) % 2 == 1
        pattern = ["sliding" if (i + 1) % 2 else "full" for i in range(n)]
    elif family == "gemma3_text":  # Gemma3TextConfig: sliding_window_pattern (default 6)
        period = int(cfg.get("sliding_window_pattern", 6) or 6)
        pattern = ["sliding" if (i + 1) % period else "full" for i in range(n)]
    elif family in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe"):
        if not cfg.get("use_sliding_window", False):
            return (_FULL,) * n, None
        start = int(cfg.get("max_window_layers", n))
        pattern = ["sliding" if i >= start else "full" for i in range(n)]
    if pattern is not None:
        return tuple(pattern), window
    # Mistral v0.1, Phi-3: one window on every layer
    return (_SLIDING,) * n, window


def _moe(cfg: dict[str, Any], family: str, n: int, h: int) -> MoeSpec | None:
    experts = _first(cfg, "num_local_experts", "num_experts", "n_routed_experts")
    if not experts:
        return None
    experts = int(experts)
    top_k = int(_first(cfg, "num_experts_per_tok", "experts_per_token", "moe_topk", default=2))
    # Glm4MoeDecoderLayer (and GLM-4.5V's text model): MoE from first_k_dense_replace, as DeepSeek's
    if family in DEEPSEEK or family in ("glm4_moe", "glm4v_moe_text"):
        first_dense = int(cfg.get("first_k_dense_replace", 0))
        freq = int(cfg.get("moe_layer_freq", 1))
        layers = tuple(i >= first_dense and i % freq == 0 for i in range(n))
        types = cfg.get("mlp_layer_types")  # DeepseekV32Config / Glm4MoeLiteConfig: "dense" or "sparse" per layer
        if isinstance(types, list) and len(types) == n:
            layers = tuple(t == "sparse" for t in types)
        moe_i = int(cfg["moe_intermediate_size"])
        return MoeSpec(
            num_experts=experts, top_k=top_k, expert_intermediate_size=moe_i,
            shared_intermediate_size=moe_i * int(cfg.get("n_shared_experts") or 0), moe_layers=layers,
        )
    if family in ("qwen2_moe", "qwen3_moe", "qwen3_next"):
        step = int(cfg.get("decoder_sparse_step", 1))
        only_mlp = set(cfg.get("mlp_only_layers") or [])
        layers = tuple(i not in only_mlp and (i + 1) % step == 0 for i in range(n))
        shared = int(cfg.get("shared_expert_intermediate_size") or 0)
        return MoeSpec(
            num_experts=experts, top_k=top_k, expert_intermediate_size=int(cfg["moe_intermediate_size"]),
            shared_intermediate_size=shared, shared_expert_gate=shared > 0, moe_layers=layers,
        )
    inter = int(_first(cfg, "moe_intermediate_size", "intermediate_size", default=4 * h))
    # GraniteMoeShared: a gated shared MLP of shared_intermediate_size beside the experts (none when 0)
    shared = int(cfg.get("shared_intermediate_size") or 0) if family in ("granitemoeshared", "granitemoe_swa") else 0
    return MoeSpec(
        num_experts=experts, top_k=top_k, expert_intermediate_size=inter, shared_intermediate_size=shared,
        router_bias=family == "gpt_oss", expert_bias=family == "gpt_oss", moe_layers=(True,) * n,
    )


def _torch_dtype(cfg: dict[str, Any]) -> str | None:
    dt = _first(cfg, "torch_dtype", "dtype")
    return str(dt).replace("torch.", "") if dt else None


@contextlib.contextmanager
def _family_fields(family: str) -> Iterator[None]:
    """The family modules (families, encoders, classic, hybrid, vision) read their own fields with int() and
    bool() after llm_mem.sources.validate checked the common ones: a malformed one there (a string, a list, a
    zero divisor) is one ConfigError line, never a traceback."""
    try:
        yield
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as e:
        raise ConfigError(f"config.json: a {family} field has an unusable value ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:120] if str(e) else ''})",
                          f"compare it with transformers' configuration class for {family}") from None


def parse_config(raw: dict[str, Any], stored: tuple[StoredTensor, ...] = ()) -> ModelSpec:
    """Normalise a config.json dict into a ModelSpec. Raises ConfigError on missing fields.

    ``stored``: the checkpoint's safetensors tensors when they were read; a model type without a native
    layout then takes its inventory from them (exact for any architecture, no transformers), before
    transformers' meta-device count."""
    check_config(raw)  # every field this module reads: type, sign, bounds (llm_mem.sources.validate)
    with _family_fields(str(unwrap_text_config(raw).get("model_type") or "")[:60]):
        return _parse(raw, stored)


def _parse(raw: dict[str, Any], stored: tuple[StoredTensor, ...]) -> ModelSpec:
    cfg = unwrap_text_config(raw)
    model_type = str(cfg.get("model_type") or "").lower()
    if not model_type:
        raise ConfigError("config.json has no model_type", "is this a transformers config.json?")
    if not is_native(raw):
        return header_spec(raw, cfg, stored) or counted_spec(raw, cfg, model_type)
    family = family_of(model_type)
    archs = cfg.get("architectures") or raw.get("architectures")
    architecture = archs[0] if isinstance(archs, list) and archs else None

    h = _int(cfg, "hidden_size", "n_embd", "n_embed", "d_model", "dim")
    n = hybrid.layer_count(cfg, family) or _int(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    heads = (1 if family in hybrid.ATTENTION_FREE else
             _int(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads", "attention_heads"))
    vocab = _int(cfg, "vocab_size", "padded_vocab_size")
    if h == 0 or n == 0 or heads == 0 or vocab == 0:
        raise ConfigError("config.json has a zero hidden size, layer count, head count or vocabulary")
    kv = _int(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num", default=heads)
    head_dim = _int(cfg, "head_dim", default=h // heads) or h // heads
    widths = cfg.get("intermediate_size")  # Gemma-3n: one width per layer, all equal (families.unsupported)
    inter = _int({**cfg, "intermediate_size": widths[0]} if isinstance(widths, list) and widths else cfg,
                 "intermediate_size", "ffn_hidden_size", "n_inner", "ffn_dim", "ffn_hidden_dim", default=0,
                 required=False)
    max_pos = _first(cfg, "max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")
    tie_default = family in ("gpt2", "opt", "bloom", "falcon", "gemma", "gemma2", "gemma3_text", "generic")
    kw: dict[str, Any] = dict(
        model_type=model_type, family=family, architecture=architecture, known=family != "generic",
        vocab_size=vocab, hidden_size=h, num_layers=n, num_heads=heads, num_kv_heads=kv, head_dim=head_dim,
        intermediate_size=inter or 4 * h, max_position_embeddings=int(max_pos) if max_pos else None,
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", tie_default)),
        torch_dtype=_torch_dtype(cfg) or _torch_dtype(raw),
        quantization=parse_quantization(cfg.get("quantization_config") or raw.get("quantization_config")),
        hidden_act=_first(cfg, "hidden_act", "hidden_activation", "activation_function", "activation"),
        attention_dropout=float(_first(cfg, "attention_dropout", "attn_pdrop", default=0.0) or 0.0),
        hidden_dropout=float(_first(cfg, "hidden_dropout", "resid_pdrop", "dropout", default=0.0) or 0.0),
    )
    kw["layer_types"], kw["sliding_window"] = _layer_types(cfg, family, n)
    kw.update(fused_qkv=family in FUSED_QKV, eager_softmax_fp32=family not in ("gpt2", "falcon"),
              moe_routing_fp32=family in DEEPSEEK, sdpa=family not in NO_SDPA,
              llamacpp_arch=LLAMACPP_ARCH.get(family), training=training_caps(family, model_type, cfg))

    if family in LLAMA_LIKE or family in hybrid.HYBRID_FAMILIES:
        bias = bool(cfg.get("attention_bias", False))
        kw.update(qkv_bias=bias or family in {"qwen2", "qwen2_moe"}, o_bias=bias,
                  mlp_bias=bool(cfg.get("mlp_bias", False)),
                  qk_norm=family in ("qwen3", "qwen3_moe", "gemma3_text", "olmo2"),
                  attention_sinks=family == "gpt_oss")
        if family in ("gemma2", "gemma3_text"):
            kw["norms_per_layer"] = 4
        kw["moe"] = _moe(cfg, family, n, h)
        if family in DEEPSEEK:
            kw["mla"] = MlaSpec(
                kv_lora_rank=int(cfg["kv_lora_rank"]), q_lora_rank=cfg.get("q_lora_rank"),
                qk_nope_head_dim=int(cfg["qk_nope_head_dim"]), qk_rope_head_dim=int(cfg["qk_rope_head_dim"]),
                v_head_dim=int(cfg["v_head_dim"]),
            )
            kw["head_dim"] = int(cfg["qk_nope_head_dim"]) + int(cfg["qk_rope_head_dim"])
            kw["mtp_layers"] = int(cfg.get("num_nextn_predict_layers", 0) or 0)
        if family in hybrid.HYBRID_FAMILIES:
            kw.update(hybrid.fields(cfg, family, n, h))
        kw.update(families.fields(cfg, family))
    elif family == "gpt2":
        kw.update(norm="layer", qkv_bias=True, o_bias=True, mlp_kind="plain", mlp_bias=True,
                  position_embeddings=_int(cfg, "n_positions", "max_position_embeddings", default=1024),
                  intermediate_size=inter or 4 * h)
    elif family == "opt":
        proj = int(cfg.get("word_embed_proj_dim") or h)
        kw.update(norm="layer", qkv_bias=bool(cfg.get("enable_bias", True)), o_bias=bool(cfg.get("enable_bias", True)),
                  mlp_kind="plain", mlp_bias=bool(cfg.get("enable_bias", True)),
                  # OPTLearnedPositionalEmbedding keeps an offset of 2 rows (modeling_opt.py)
                  position_embeddings=int(cfg.get("max_position_embeddings", 2048)) + 2,
                  embed_proj_dim=proj if proj != h else None,
                  final_norm=bool(cfg.get("do_layer_norm_before", True))
                  and not cfg.get("_remove_final_layer_norm", False))
    elif family == "bloom":
        kw.update(norm="layer", qkv_bias=True, o_bias=True, mlp_kind="plain", mlp_bias=True,
                  embedding_norm=True, alibi=True, intermediate_size=4 * h)
    elif family == "gpt_neox":
        bias = bool(cfg.get("attention_bias", True))
        kw.update(norm="layer", qkv_bias=bias, o_bias=bias, mlp_kind="plain", mlp_bias=True,
                  parallel_attn=bool(cfg.get("use_parallel_residual", True)))
    elif family == "falcon":
        new_arch = bool(cfg.get("new_decoder_architecture", False))
        if new_arch:
            kv = _int(cfg, "num_kv_heads", default=heads)
        elif cfg.get("multi_query", True):
            kv = 1
        else:
            kv = heads
        parallel = bool(cfg.get("parallel_attn", True))
        n_ln = int(cfg.get("num_ln_in_parallel_attn") or 2) if new_arch else (1 if parallel else 2)
        bias = bool(cfg.get("bias", False))
        kw.update(norm="layer", num_kv_heads=kv, qkv_bias=bias, o_bias=bias, mlp_kind="plain", mlp_bias=bias,
                  norms_per_layer=n_ln, parallel_attn=parallel or new_arch, alibi=bool(cfg.get("alibi", False)),
                  intermediate_size=inter or 4 * h)
    if cfg is not raw and not _text_only(raw):  # the towers and projector of an image-text-to-text class
        mm = vision.multimodal(raw, cfg, kw["tie_word_embeddings"])
        assert mm is not None  # is_native checked it
        kw.update(multimodal=mm.tensors, image_tokens=mm.image_tokens, tie_word_embeddings=mm.tie_word_embeddings)
    if kw["num_heads"] % max(kw["num_kv_heads"], 1) and kw.get("mla") is None:
        raise ConfigError(f"num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv})")
    return ModelSpec(**kw)
