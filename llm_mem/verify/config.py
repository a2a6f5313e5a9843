"""The raw config.json again (ResolvedModel keeps only the parsed spec) and the reduced config
that --verify instantiates: the shortest prefix of the layer stack holding one layer of each kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_mem.errors import VerifyError
from llm_mem.sources.parse import unwrap_text_config
from llm_mem.spec import ModelSpec, ResolvedModel

# Keys that must not reach AutoConfig.for_model: remote code hooks, the checkpoint's own
# quantization (random weights are never quantized by from_config), bookkeeping, and the dtype
# (we pass the measured dtype to from_config ourselves). Same list as benchmarks/activations.
DROP_KEYS = {"architectures", "auto_map", "_name_or_path", "transformers_version", "torch_dtype", "dtype",
             "quantization_config"}
# Config keys holding one entry per layer; they are cut to the reduced layer count
# (transformers validates len(layer_types) == num_hidden_layers, e.g. GptOssConfig, Gemma3TextConfig).
PER_LAYER_KEYS = ("layer_types", "no_rope_layers")
# Aliases of the layer count across config classes (GPT-2 n_layer, generic num_layers...).
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def raw_config(resolved: ResolvedModel) -> dict[str, Any]:
    """Read the model's config.json dict again from where the estimate found it."""
    src = resolved.source
    if src.kind == "local":
        from llm_mem.sources.configfile import load_config_file

        return load_config_file(Path(src.location))
    if src.kind == "bundled":
        from llm_mem.sources.bundled import find_bundled, load_bundled_config, registry

        entry = next((m for m in registry() if m.file == src.location), None) or find_bundled(resolved.name)
        if entry is None:
            raise VerifyError(f"bundled config {src.location} not found", "reinstall llm-mem")
        return load_bundled_config(entry)
    # hub: the estimate just downloaded config.json into the user's cache; read it from there only
    from llm_mem.sources.configfile import load_config_file

    repo, _, revision = src.location.partition("@")
    try:
        import huggingface_hub as hh

        path = hh.hf_hub_download(repo, "config.json", revision=revision or None, local_files_only=True)
    except Exception as exc:
        raise VerifyError(f"config.json of {repo} is not in the Hugging Face cache ({type(exc).__name__})",
                          "run the estimate once online, or pass --config PATH") from None
    return load_config_file(Path(path))


def layer_kinds(spec: ModelSpec) -> list[str]:
    """Per layer, the kind that decides its weights, KV and activations: attention kind + MLP kind."""
    moe = spec.moe.moe_layers if spec.moe is not None else (False,) * spec.num_layers
    return [f"{att}+{'moe' if m else 'dense'}" for att, m in zip(spec.layer_types, moe)]


def reduced_layer_count(kinds: list[str]) -> int:
    """The shortest prefix of the stack holding one layer of every distinct kind. A prefix (not a
    hand-picked set) keeps every config rule (first_k_dense_replace, decoder_sparse_step,
    sliding_window_pattern...) meaning what it means in the full model."""
    wanted = set(kinds)
    seen: set[str] = set()
    for i, k in enumerate(kinds):
        seen.add(k)
        if seen == wanted:
            return i + 1
    return len(kinds)


def reduced_config_kwargs(raw: dict[str, Any], n_layers: int) -> tuple[str, dict[str, Any]]:
    """(model_type, kwargs for AutoConfig.for_model) for the language model cut to n_layers."""
    cfg = unwrap_text_config(raw)
    model_type = str(cfg.get("model_type") or "")
    kw = {k: v for k, v in cfg.items() if k not in DROP_KEYS and k != "model_type"}
    full = next((int(kw[k]) for k in LAYER_KEYS if isinstance(kw.get(k), int)), None)
    if full is None:
        raise VerifyError("config.json names no layer count", "cannot build a reduced model")
    for k in LAYER_KEYS:
        if k in kw:
            kw[k] = n_layers
    for k in PER_LAYER_KEYS:
        if isinstance(kw.get(k), list) and len(kw[k]) == full:
            kw[k] = kw[k][:n_layers]
    return model_type, kw
