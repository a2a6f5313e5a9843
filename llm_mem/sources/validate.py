"""config.json checked once, at the boundary, before the parser reads it (`parse_config`'s first line).

Every field the parser reads is checked for its type, sign and plausibility here, so that the parser
can trust what it reads and a bad config is one `ConfigError` line naming the field, never a
traceback, a negative size or a truthy ``"false"``:

* sizes are integers (never ``true``, ``4096.0``, ``"4096"``, a list or a dict), positive, and within
  the bounds of `llm_mem.sources.limits` that no real model reaches (10,000,000 layers is refused
  before anything is allocated);
* switches are ``true``/``false`` (or 0/1); the string ``"false"`` is refused, never read as true;
* dropout rates are numbers in [0, 1]; names are strings;
* NaN and Infinity are refused in every field read (they are not integers, nor rates in [0, 1]);
* anywhere in the document: no integer beyond 64 bits, no nesting deeper than `MAX_CONFIG_DEPTH`;
* across fields: experts per token at most the experts, a head dimension that is not zero, the
  fields a family cannot do without (DeepSeek's MLA ranks, the MoE expert width), ``layer_types``
  one per layer, quantization group sizes positive or -1 (GPTQ/AWQ: one group per row).

``null`` reads as "not given" for every field the parser has a default for; the few it cannot default
are refused. ``sliding_window`` 0 reads as "no window" (transformers' own Qwen2-MoE default).

A model type llm-mem has no native layout for is built by transformers (llm_mem.sources.counted), which
reads its own fields its own way (Gemma-4's per-layer head dimensions, Mamba's infinite
``time_step_limit``): there only the bounds apply, to every integer of a size field, so that nothing
huge reaches the model constructor. `llm_mem.spec.ModelSpec` re-checks the resulting invariants for
every source (GGUF, Ollama, Hub, local).
"""

from __future__ import annotations

from typing import Any

from llm_mem.errors import ConfigError, quote
from llm_mem.sources import limits as lim
from llm_mem.sources.vision import supported

# Positive integers: field -> upper bound. Every alias the parsers read (parse.py, counted.py).
_SIZES: dict[str, int] = {
    **dict.fromkeys(("hidden_size", "n_embd", "n_embed", "d_model", "dim"), lim.MAX_HIDDEN),
    **dict.fromkeys(("num_hidden_layers", "n_layer", "num_layers", "n_layers"), lim.MAX_CONFIG_LAYERS),
    **dict.fromkeys(("num_attention_heads", "n_head", "num_heads", "n_heads", "attention_heads"), lim.MAX_HEADS),
    **dict.fromkeys(("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"), lim.MAX_HEADS),
    **dict.fromkeys(("vocab_size", "padded_vocab_size"), lim.MAX_VOCAB),
    **dict.fromkeys(("intermediate_size", "ffn_hidden_size", "n_inner", "ffn_dim", "ffn_hidden_dim",
                     "moe_intermediate_size"), lim.MAX_INTERMEDIATE),
    **dict.fromkeys(("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length"),
                    lim.MAX_POSITIONS),
    **dict.fromkeys(("head_dim", "qk_nope_head_dim", "v_head_dim"), lim.MAX_HEAD_DIM),
    **dict.fromkeys(("kv_lora_rank", "q_lora_rank", "word_embed_proj_dim"), lim.MAX_HIDDEN),
    **dict.fromkeys(("num_experts_per_tok", "experts_per_token", "moe_topk"), lim.MAX_EXPERTS),
    **dict.fromkeys(("sliding_window_pattern", "full_attention_interval", "decoder_sparse_step", "moe_layer_freq"),
                    lim.MAX_CONFIG_LAYERS),
    "num_ln_in_parallel_attn": 2,  # Falcon: one or two layer norms before the parallel block
    # family fields of llm_mem.sources.encoders / families / hybrid (ELECTRA, Llama 4, DeepSeek-V3.2, Zamba,
    # Kimi Linear, X-MOD, ModernBERT-decoder): widths, head counts, periods
    **dict.fromkeys(("embedding_size", "attention_hidden_size", "adapter_rank"), lim.MAX_HIDDEN),
    **dict.fromkeys(("intermediate_size_mlp",), lim.MAX_INTERMEDIATE),
    **dict.fromkeys(("index_head_dim", "attention_head_dim", "linear_head_dim"), lim.MAX_HEAD_DIM),
    **dict.fromkeys(("index_n_heads", "linear_num_heads", "n_mamba_heads", "adapter_reduction_factor"),
                    lim.MAX_HEADS),
    **dict.fromkeys(("interleave_moe_layer_step", "no_rope_layer_interval", "global_attn_every_n_layers",
                     "attn_layer_period"), lim.MAX_CONFIG_LAYERS),
    "attention_chunk_size": lim.MAX_POSITIONS,
}
# Non-negative integers (0 means "none": a dense model, no shared expert, no dense prefix).
_COUNTS: dict[str, int] = {
    **dict.fromkeys(("num_local_experts", "num_experts", "n_routed_experts", "n_shared_experts"), lim.MAX_EXPERTS),
    **dict.fromkeys(("first_k_dense_replace", "max_window_layers", "num_nextn_predict_layers"),
                    lim.MAX_CONFIG_LAYERS),
    "shared_expert_intermediate_size": lim.MAX_INTERMEDIATE,
    "qk_rope_head_dim": lim.MAX_HEAD_DIM,
    "sliding_window": lim.MAX_POSITIONS,  # 0: no window (read as null)
    # BERT's token-type table (0: none), Zamba2's shared blocks, Kimi Linear's shared experts, Zamba's offset
    "type_vocab_size": lim.MAX_VOCAB,
    **dict.fromkeys(("num_mem_blocks", "num_shared_experts", "attn_layer_offset"), lim.MAX_CONFIG_LAYERS),
    "local_attention": lim.MAX_POSITIONS,
}
# Fields the parser reads as int(cfg.get(key, default)): null there is refused, not defaulted.
_NOT_NULL = frozenset({"first_k_dense_replace", "moe_layer_freq", "decoder_sparse_step", "max_window_layers"})
# Switches: field -> the families whose parser reads it (None: every family).
_FLAGS: dict[str, frozenset[str] | None] = {
    "tie_word_embeddings": None, "attention_bias": None, "mlp_bias": None, "use_sliding_window": None,
    **dict.fromkeys(("enable_bias", "do_layer_norm_before", "_remove_final_layer_norm"), frozenset({"opt"})),
    "use_parallel_residual": frozenset({"gpt_neox"}),
    **dict.fromkeys(("new_decoder_architecture", "multi_query", "parallel_attn", "bias", "alibi"),
                    frozenset({"falcon"})),
}
_FRACTIONS = ("attention_dropout", "attn_pdrop", "hidden_dropout", "resid_pdrop", "dropout")
_TEXTS = ("model_type", "torch_dtype", "dtype", "hidden_act", "hidden_activation", "activation_function",
          "activation")
# A name or a dtype is short; a longer "string" is junk (and would be repeated in reports).
_MAX_TEXT = 200
_MOE_FAMILIES_NEEDING_WIDTH = frozenset({"deepseek_v2", "deepseek_v3", "qwen2_moe", "qwen3_moe"})
_MLA_FIELDS = ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")


def _field(where: str, key: str) -> str:
    return f"config.json field {where}{key}"


def check_config(raw: Any) -> None:
    """Refuse a config.json whose fields the parser could misread; one ConfigError line naming the field."""
    if not isinstance(raw, dict):
        raise ConfigError("config.json is not a JSON object")
    _walk(raw)
    text = raw.get("text_config")
    if text is not None and not isinstance(text, dict):
        raise ConfigError(f"{_field('', 'text_config')} = {quote(text)} is not an object")
    parts = [(raw, "")] + ([(text, "text_config.")] if isinstance(text, dict) else [])
    for d, where in parts:  # the model type decides which parser reads the rest
        mt = d.get("model_type")
        if mt is not None and (not isinstance(mt, str) or len(mt) > _MAX_TEXT):
            raise ConfigError(f"{_field(where, 'model_type')} = {quote(mt)} is not a model type name")
    from llm_mem.sources.parse import KNOWN_FAMILIES, family_of, unwrap_text_config  # parse imports this module

    view = unwrap_text_config(raw)  # the part the parser reads: a wrapper's text model, merged
    where = "" if view is raw or "text_config" not in raw else "text_config."
    family = family_of(str(view.get("model_type") or "").lower())
    if family not in KNOWN_FAMILIES:  # transformers reads it: only the bounds
        for d, at in parts:
            _bounds_only(d, at)
        return
    for d, at in parts:
        _check_fields(d, at, family)
    _check_model(view, where, family)
    for qc, at in ((raw.get("quantization_config"), ""), (view.get("quantization_config"), where)):
        if qc is not None:
            _check_quant(qc, at + "quantization_config")
    if view is not raw:
        _check_vision(raw)


# A vision tower's sizes (llm_mem.sources.vision reads them from vision_config): field -> bound. The
# largest published towers: InternViT-6B (hidden 3,200, 45 layers, 25 heads), Pixtral 1,540-pixel images.
_TOWER_SIZES = {"hidden_size": lim.MAX_HIDDEN, "intermediate_size": lim.MAX_INTERMEDIATE,
                "num_hidden_layers": lim.MAX_CONFIG_LAYERS, "num_attention_heads": lim.MAX_HEADS,
                "head_dim": lim.MAX_HEAD_DIM, "num_channels": 64}
# The Qwen-VL and Llama 4 towers' own fields (llm_mem.sources.vision), checked where that module lays the tower
# out: depth, widths, heads, merger and adapter sizes.
_NATIVE_TOWER_SIZES = {"depth": lim.MAX_CONFIG_LAYERS, "embed_dim": lim.MAX_HIDDEN, "num_heads": lim.MAX_HEADS,
                       "in_channels": 64, "in_chans": 64, "out_hidden_size": lim.MAX_HIDDEN,
                       "num_position_embeddings": lim.MAX_POSITIONS, "vision_output_dim": lim.MAX_INTERMEDIATE,
                       "projector_input_dim": lim.MAX_INTERMEDIATE, "projector_output_dim": lim.MAX_INTERMEDIATE,
                       "spatial_merge_size": 64}
# Image and patch sides: Pixtral's 1,540 pixels is the largest default; 2^16 pixels a side is generous.
MAX_IMAGE_SIDE = 2**16
# A wrapper's own fields the projector reads: tokens per image (Gemma 3: 256; LLaVA: 576), the patch merge.
_WRAPPER_SIZES = {"mm_tokens_per_image": lim.MAX_POSITIONS, "image_seq_length": lim.MAX_POSITIONS,
                  "spatial_merge_size": 64}


def _side(d: dict[str, Any], key: str, where: str) -> int | None:
    """An image or patch side: a positive int, or [height, width] of them (the first is read)."""
    v = d.get(key)
    if isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return _integer({key: v[0]}, key, where, 1, MAX_IMAGE_SIDE)
    if key in d and v is None:
        raise ConfigError(f"{_field(where, key)} is null", "give a number, or leave the field out")
    return _integer(d, key, where, 1, MAX_IMAGE_SIDE)


def _check_vision(raw: dict[str, Any]) -> None:
    """The wrapper fields and vision_config of an image-text-to-text config whose tower we lay out."""
    for key, high in _WRAPPER_SIZES.items():
        if key in raw:
            if raw[key] is None:
                raise ConfigError(f"{_field('', key)} is null", "give a number, or leave the field out")
            _integer(raw, key, "", 1, high)
    layer = raw.get("vision_feature_layer")
    if layer is not None and not ((isinstance(layer, int) and not isinstance(layer, bool) and abs(layer) <= 4096)
                                  or (isinstance(layer, list) and 0 < len(layer) <= 4096
                                  and all(isinstance(x, int) and not isinstance(x, bool) for x in layer))):
        raise ConfigError(f"{_field('', 'vision_feature_layer')} = {quote(layer)} is not a layer index or a list")
    bias = raw.get("multimodal_projector_bias")
    if bias is not None and not isinstance(bias, bool):
        raise ConfigError(f"{_field('', 'multimodal_projector_bias')} = {quote(bias)} is not true or false")
    v = raw.get("vision_config")
    if not isinstance(v, dict):
        return  # absent: the wrapper's defaults; not an object: transformers builds the model
    where = "vision_config."
    for key, high in {**_TOWER_SIZES, **(_NATIVE_TOWER_SIZES if supported(raw) else {})}.items():
        if key in v:
            if v[key] is None:
                raise ConfigError(f"{_field(where, key)} is null", "give a number, or leave the field out")
            _integer(v, key, where, 1, high)
    image, patch = _side(v, "image_size", where), _side(v, "patch_size", where)
    if image is not None and patch is not None and patch > image:
        raise ConfigError(f"config.json: vision_config.patch_size {patch} is larger than its image_size {image}")
    merge = raw.get("spatial_merge_size")
    if image is not None and patch is not None and isinstance(merge, int) and image // patch < merge:
        raise ConfigError(f"config.json: an image of {image // patch} patches a side cannot merge {merge} x {merge}")
    use_head = v.get("vision_use_head")
    if use_head is not None and not isinstance(use_head, bool):
        raise ConfigError(f"{_field(where, 'vision_use_head')} = {quote(use_head)} is not true or false")


def _bounds_only(d: dict[str, Any], where: str) -> None:
    """A size field of a model type transformers builds: every integer in it within the bounds."""
    for key, high in (*_SIZES.items(), *_COUNTS.items()):
        v = d.get(key)
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, int) and not isinstance(x, bool) and x > high:
                raise ConfigError(f"{_field(where, key)} = {x:,} exceeds {high:,}, beyond any published model",
                                  "the bounds and their sources: docs/limits.md")


def _walk(raw: dict[str, Any]) -> None:
    """No integer over 64 bits and no nesting deeper than MAX_CONFIG_DEPTH, anywhere. (Infinity is a real
    value in some configs: Mamba-2's time_step_limit defaults to (0.0, inf).)"""
    stack: list[tuple[Any, str, int]] = [(raw, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > lim.MAX_CONFIG_DEPTH:
            raise ConfigError(f"config.json nests objects and arrays more than {lim.MAX_CONFIG_DEPTH} deep "
                              f"(at {path[:60]})", "a real config nests at most a few levels")
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > lim.MAX_CONFIG_INT:
            raise ConfigError(f"{_field('', path[:80])} holds a {node.bit_length()}-bit integer, "
                              "beyond 64 bits")


def _integer(d: dict[str, Any], key: str, where: str, low: int, high: int) -> int | None:
    """d[key] as an int in [low, high]; None when absent or null."""
    v = d.get(key)
    if v is None:
        if key in d and key in _NOT_NULL:
            raise ConfigError(f"{_field(where, key)} is null", "give a number, or leave the field out")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        kind = "true/false" if isinstance(v, bool) else type(v).__name__
        raise ConfigError(f"{_field(where, key)} = {quote(v)} is a {kind}, not an integer")
    if v < low:
        raise ConfigError(f"{_field(where, key)} = {v} must be at least {low}")
    if v > high:
        raise ConfigError(f"{_field(where, key)} = {v:,} exceeds {high:,}, beyond any published model",
                          "the bounds and their sources: docs/limits.md")
    return v


def _check_fields(d: dict[str, Any], where: str, family: str) -> None:
    for key, high in _SIZES.items():
        if key == "intermediate_size" and family == "gemma3n_text" and isinstance(d.get(key), list):
            for i, v in enumerate(d[key]):  # Gemma3nTextConfig: one width per layer
                _integer({key: v}, key, f"{where}[{i}] ", 1, high)
        elif key in d:
            _integer(d, key, where, 1, high)
    for key, high in _COUNTS.items():
        if key in d:
            _integer(d, key, where, 0, high)
    for key, families in _FLAGS.items():
        v = d.get(key)
        if v is None or (families is not None and family not in families):
            continue
        if isinstance(v, bool) or (isinstance(v, int) and v in (0, 1)):
            continue
        hint = "write true or false without quotes" if isinstance(v, str) else None
        raise ConfigError(f"{_field(where, key)} = {quote(v)} is not true or false", hint)
    for key in _FRACTIONS:
        v = d.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
            raise ConfigError(f"{_field(where, key)} = {quote(v)} is not a rate between 0 and 1")
    for key in _TEXTS:
        v = d.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > _MAX_TEXT):
            raise ConfigError(f"{_field(where, key)} = {quote(v)} is not a name")
    archs = d.get("architectures")
    if archs is not None and (not isinstance(archs, list) or not all(isinstance(a, str) and len(a) <= _MAX_TEXT
                                                                      for a in archs)):
        raise ConfigError(f"{_field(where, 'architectures')} = {quote(archs)} is not a list of class names")


def _first_int(d: dict[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = d.get(k)
        if v is not None:
            return int(v)  # checked by _check_fields
    return None


def _check_model(d: dict[str, Any], where: str, family: str) -> None:
    """Rules across fields, on the part of the config the parser reads (the text model of a wrapper)."""
    n = _first_int(d, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    h = _first_int(d, "hidden_size", "n_embd", "n_embed", "d_model", "dim")
    heads = _first_int(d, "num_attention_heads", "n_head", "num_heads", "n_heads", "attention_heads")
    if h is not None and heads is not None and d.get("head_dim") is None and h < heads:
        raise ConfigError(f"config.json: hidden_size {h} is smaller than num_attention_heads {heads}, "
                          "leaving a head dimension of 0", "give head_dim, or check the two fields")
    experts = _first_int(d, "num_local_experts", "num_experts", "n_routed_experts") or 0
    top_k = _first_int(d, "num_experts_per_tok", "experts_per_token", "moe_topk")
    if experts and (top_k if top_k is not None else 2) > experts:
        shown = top_k if top_k is not None else "2 (the default)"
        raise ConfigError(f"config.json: {shown} experts per token but only {experts} experts",
                          "num_experts_per_tok must be at most the number of experts")
    if family in ("deepseek_v2", "deepseek_v3"):
        for key in _MLA_FIELDS:
            if d.get(key) is None:
                raise ConfigError(f"config.json has no {where}{key}", f"{family} configs carry the MLA ranks")
        if d["qk_nope_head_dim"] + d["qk_rope_head_dim"] < 1:
            raise ConfigError("config.json: qk_nope_head_dim + qk_rope_head_dim is 0")
    if family == "opt" and "max_position_embeddings" in d and d["max_position_embeddings"] is None:
        raise ConfigError(f"{_field(where, 'max_position_embeddings')} is null",  # OPT's learned position table
                          "give a number, or leave the field out (default 2048)")
    if experts and family in _MOE_FAMILIES_NEEDING_WIDTH and d.get("moe_intermediate_size") is None:
        raise ConfigError(f"config.json has no {where}moe_intermediate_size", f"{family} experts need their width")
    lt = d.get("layer_types")
    if lt is not None:
        if not isinstance(lt, list) or not all(isinstance(t, str) and len(t) <= _MAX_TEXT for t in lt):
            raise ConfigError(f"{_field(where, 'layer_types')} = {quote(lt)} is not a list of layer kinds")
        if n is not None and len(lt) != n:
            raise ConfigError(f"{_field(where, 'layer_types')} has {len(lt)} entries for {n} layers")
    only = d.get("mlp_only_layers")
    if only is not None and (not isinstance(only, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < (n or lim.MAX_CONFIG_LAYERS) for i in only)):
        raise ConfigError(f"{_field(where, 'mlp_only_layers')} = {quote(only)} is not a list of layer indexes")


def _group(d: dict[str, Any], key: str, where: str) -> None:
    """A quantization group size: positive, or -1 (GPTQ/AutoAWQ: no grouping, one group per row)."""
    v = d.get(key)
    if v is None or (v == -1 and not isinstance(v, bool)):
        return
    _integer(d, key, where, 1, lim.MAX_QUANT_GROUP)


def _check_quant(qc: Any, where: str) -> None:
    if not isinstance(qc, dict):
        raise ConfigError(f"{_field('', where)} = {quote(qc)} is not an object")
    at = where + "."
    for key in ("bits", "w_bit", "num_bits"):
        if key in qc:
            _integer(qc, key, at, 1, 32)
    for key in ("group_size", "q_group_size"):
        _group(qc, key, at)
    for key in ("load_in_4bit", "load_in_8bit", "_load_in_4bit", "bnb_4bit_use_double_quant"):
        v = qc.get(key)
        if v is not None and not isinstance(v, bool):
            raise ConfigError(f"{_field(at, key)} = {quote(v)} is not true or false")
    method = qc.get("quant_method")
    if method is not None and (not isinstance(method, str) or len(method) > _MAX_TEXT):
        raise ConfigError(f"{_field(at, 'quant_method')} = {quote(method)} is not a name")
    block = qc.get("weight_block_size")
    if block is not None:
        _block(block, at + "weight_block_size")
    inner = qc.get("quantization")
    if isinstance(inner, dict):
        _group(inner, "group_size", at + "quantization.")
    groups = qc.get("config_groups")
    if isinstance(groups, dict):
        for name, group in groups.items():
            weights = group.get("weights") if isinstance(group, dict) else None
            if isinstance(weights, dict):
                wat = f"{at}config_groups.{str(name)[:40]}.weights."
                if "num_bits" in weights:
                    _integer(weights, "num_bits", wat, 1, 32)
                _group(weights, "group_size", wat)
                if weights.get("block_structure") is not None:
                    _block(weights["block_structure"], wat + "block_structure")


def _block(block: Any, where: str) -> None:
    if not isinstance(block, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= lim.MAX_QUANT_GROUP for b in block):
        raise ConfigError(f"{_field('', where)} = {quote(block)} is not a list of positive block sizes")
