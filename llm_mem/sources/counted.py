"""A ModelSpec for a model type without a native layout: parameters as transformers builds them.

The inventory is the class's own ``named_parameters()`` (llm_mem.sources.meta_count, cached); the sizes
the KV cache and activation estimators read (hidden size, layers, heads, KV heads, head size) come from
the config as transformers resolves it, so those parts are the standard-transformer estimate and the
report says so.
"""

from __future__ import annotations

from typing import Any

from llm_mem.sources.quant import parse_quantization
from llm_mem.sources.roles import hf_role
from llm_mem.spec import LayerKind, ModelSpec, StoredTensor

_ALIASES = {
    "hidden_size": ("hidden_size", "n_embd", "n_embed", "d_model", "dim"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "num_key_value_heads": ("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"),
    "head_dim": ("head_dim",),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
    "intermediate_size": ("intermediate_size", "ffn_hidden_size", "n_inner", "ffn_dim"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions", "seq_length"),
}


def _size(fields: dict[str, int], cfg: dict[str, Any], name: str) -> int | None:
    """A positive integer size: transformers' resolved value first, then the config's aliases."""
    v = fields.get(name)
    if v is None:
        v = next((cfg[k] for k in _ALIASES[name] if isinstance(cfg.get(k), int) and not isinstance(cfg[k], bool)),
                 None)
    return v if isinstance(v, int) and v > 0 else None


def _kinds(cfg: dict[str, Any], n: int) -> tuple[LayerKind, ...]:
    window = cfg.get("sliding_window")
    lt = cfg.get("layer_types")
    if isinstance(lt, list) and len(lt) == n:
        kinds: list[LayerKind] = ["sliding" if "sliding" in str(t) or "chunked" in str(t) else
                                  "linear" if "linear" in str(t) or "mamba" in str(t) else "full" for t in lt]
        return tuple(kinds)
    one: LayerKind = "sliding" if isinstance(window, int) and window > 0 else "full"
    return (one,) * n


def counted_spec(raw: dict[str, Any], cfg: dict[str, Any], model_type: str) -> ModelSpec:
    """The spec of ``raw`` with transformers' parameter inventory (ConfigError when it cannot be counted)."""
    from llm_mem.sources import meta_count  # lazily: it needs importlib.metadata and, uncached, torch

    model_type = str(raw.get("model_type") or model_type).lower()  # the wrapper's type builds the whole class
    c = meta_count.count(raw, model_type)
    return _inventory_spec(raw, cfg, model_type, c.tensors, c.fields, c.cls, c.note)


# Stored dtypes that hold one parameter per element (safetensors names). Packed formats (GPTQ/AWQ int32,
# bitsandbytes uint8, MXFP4 blocks) store several parameters per element and a header cannot count them.
_PLAIN_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})


def header_spec(raw: dict[str, Any], cfg: dict[str, Any], tensors: tuple[StoredTensor, ...]) -> ModelSpec | None:
    """The spec of a model type without a native layout, with the inventory its safetensors headers list
    (every tensor, exact), or None when the headers cannot count its parameters (a packed quantized
    checkpoint). KV cache and activations use the config's standard attention fields."""
    if not tensors or any(t.dtype not in _PLAIN_DTYPES for t in tensors):
        return None
    model_type = str(raw.get("model_type") or cfg.get("model_type") or "").lower()
    archs = cfg.get("architectures") or raw.get("architectures")
    cls = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else model_type
    inventory = tuple((t.name, t.shape, 1) for t in tensors)
    note = (f"parameters from the checkpoint's safetensors headers ({len(tensors):,} tensors); llm-mem has no "
            f"native layout for {model_type!r}, so the KV cache and activations assume standard attention "
            "from config.json")
    return _inventory_spec(raw, cfg, model_type, inventory, {}, cls, note).model_copy(update={"from_headers": True})


def _inventory_spec(raw: dict[str, Any], cfg: dict[str, Any], model_type: str,
                    tensors: tuple[tuple[str, tuple[int, ...], int], ...], f: dict[str, int], cls: str,
                    note: str) -> ModelSpec:
    """A generic spec around a known tensor inventory; sizes from ``f`` (transformers' resolved config
    fields, when counted) and then the config's own names."""
    placed = [hf_role(name) for name, _, _ in tensors]
    embed = next((shape for (_, shape, _), (_, role) in zip(tensors, placed) if role == "embed" and len(shape) == 2),
                 None)
    top_layer = max((layer for layer, _ in placed if layer is not None), default=0)
    h = _size(f, cfg, "hidden_size") or (embed[1] if embed else 1)
    n = _size(f, cfg, "num_hidden_layers") or top_layer + 1
    vocab = _size(f, cfg, "vocab_size") or (embed[0] if embed else 1)
    heads = _size(f, cfg, "num_attention_heads")
    kinds: tuple[LayerKind, ...]
    if heads is None:  # no attention (a pure state-space or recurrent model): no per-token KV cache
        linear: LayerKind = "linear"
        heads, kv, head_dim, kinds = 1, 1, h, (linear,) * n
    else:
        kv = _size(f, cfg, "num_key_value_heads") or heads
        kv = kv if heads % kv == 0 else heads
        head_dim = _size(f, cfg, "head_dim") or max(h // heads, 1)
        kinds = _kinds(cfg, n)
    window = cfg.get("sliding_window")
    dtype = cfg.get("torch_dtype") or cfg.get("dtype") or raw.get("torch_dtype") or raw.get("dtype")
    act = next((cfg[k] for k in ("hidden_act", "hidden_activation", "activation_function") if cfg.get(k)), None)
    return ModelSpec(
        model_type=model_type, family="generic", architecture=cls, known=False,
        vocab_size=vocab, hidden_size=h, num_layers=n, num_heads=heads, num_kv_heads=kv, head_dim=head_dim,
        intermediate_size=_size(f, cfg, "intermediate_size") or 4 * h,
        max_position_embeddings=_size(f, cfg, "max_position_embeddings"),
        tie_word_embeddings=not any(role == "lm_head" for _, role in placed),
        torch_dtype=str(dtype).replace("torch.", "") if dtype else None,
        quantization=parse_quantization(cfg.get("quantization_config") or raw.get("quantization_config")),
        hidden_act=str(act) if act else None, layer_types=kinds,
        sliding_window=window if isinstance(window, int) and window > 0 else None,
        counted=tensors, counted_by=note,
    )
