"""Parameters counted by transformers itself, for a model type llm-mem has no native layout for.

The model class is built from the config on PyTorch's meta device (shapes, no memory, nothing
downloaded) and its ``named_parameters()`` become the inventory. Only classes built into transformers
are used (the class ``architectures`` names when transformers defines it, else the auto class for
the model type); ``auto_map`` and remote code are never looked at. Needs the ``verify`` extra (torch +
transformers); imported lazily, so an estimate on a model with a native layout never imports torch.

Results are cached under the user cache directory (``$LLM_MEM_CACHE``, else
``$XDG_CACHE_HOME/llm-mem``, else ``~/.cache/llm-mem``), keyed by a hash of the config and the
transformers version, so a second estimate of the same config does not import torch either.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from llm_mem.errors import ConfigError

CACHE_FORMAT = 1  # bump when the cached JSON changes shape
# The sizes the parser reads, as transformers' config resolves them (attribute_map aliases included).
STANDARD_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
                   "vocab_size", "intermediate_size", "max_position_embeddings")
# Routed experts kept as one module per expert (nn.ModuleList): folded into one tensor with copies.
_EXPERT_INDEX = re.compile(r"\.experts\.(\d+)\.")
# Keys that would make transformers do more than build the class: quantize it, or look for remote code.
_DROPPED_KEYS = ("quantization_config", "auto_map")


@dataclass(frozen=True)
class Counted:
    """What transformers built: its version and class, every parameter tensor, and its standard sizes."""

    transformers: str
    cls: str
    tensors: tuple[tuple[str, tuple[int, ...], int], ...]  # (name, shape, copies), tied weights once
    fields: dict[str, int]

    @property
    def total(self) -> int:
        """All parameters of the class (what ``sum(p.numel() for p in model.parameters())`` says)."""
        total = 0
        for _, shape, copies in self.tensors:
            n = copies
            for d in shape:
                n *= d
            total += n
        return total

    @property
    def note(self) -> str:
        """The line the report carries."""
        return f"parameters counted by transformers {self.transformers} on the meta device ({self.cls})"


def available() -> bool:
    """Whether torch and transformers are installed (found, not imported)."""
    return importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None


def cache_dir() -> Path:
    """Where counted configs are kept."""
    root = os.environ.get("LLM_MEM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "llm-mem")
    return Path(root) / "params"


def _key(cfg: dict[str, Any], version: str) -> str:
    text = json.dumps({"config": cfg, "transformers": version, "format": CACHE_FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _load(path: Path) -> Counted | None:
    try:
        d = json.loads(path.read_text())
        return Counted(str(d["transformers"]), str(d["cls"]),
                       tuple((str(n), tuple(int(x) for x in s), int(c)) for n, s, c in d["tensors"]),
                       {str(k): int(v) for k, v in d["fields"].items()})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(path: Path, c: Counted) -> None:
    data = {"transformers": c.transformers, "cls": c.cls, "tensors": [list(t) for t in c.tensors],
            "fields": c.fields}
    with contextlib.suppress(OSError):  # a read-only cache only costs the next run a rebuild
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)


def count(raw: dict[str, Any], model_type: str) -> Counted:
    """Count the parameters of the class transformers builds for ``raw`` (cached). Raises ConfigError
    when transformers is not installed, does not know the model type, or cannot build the config."""
    if not available():
        raise ConfigError(
            f"unknown architecture {model_type!r}: llm-mem has no native parameter layout for it",
            "install the verify extra (pip install 'llm-mem[verify]') to count it with transformers on the meta device")
    cfg = {k: v for k, v in raw.items() if k not in _DROPPED_KEYS}
    version = metadata.version("transformers")
    path = cache_dir() / f"{_key(cfg, version)}.json"
    cached = _load(path)
    if cached is not None:
        return cached
    counted = _build(cfg, model_type, version)
    _store(path, counted)
    return counted


def _allowed_classes() -> set[str]:
    """Every model class an auto mapping of transformers names (built-in classes only)."""
    from transformers.models.auto import modeling_auto

    names: set[str] = set()
    for attr in dir(modeling_auto):
        table = getattr(modeling_auto, attr)
        if attr.endswith("_MAPPING_NAMES") and isinstance(table, dict):
            for v in table.values():
                names.update(v if isinstance(v, (list, tuple)) else [v])
    return names


def _pick_class(cfg: dict[str, Any], model_type: str) -> Any:
    import transformers
    from transformers.models.auto import modeling_auto

    archs = cfg.get("architectures")
    name = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    if name is not None and name in _allowed_classes() and hasattr(transformers, name):
        return getattr(transformers, name)
    for table in (modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                  modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES):
        found = table.get(model_type)
        if isinstance(found, (list, tuple)):
            found = found[0]
        if found and hasattr(transformers, found):
            return getattr(transformers, found)
    raise ConfigError(f"transformers {metadata.version('transformers')} has no causal-LM or image-text-to-text "
                      f"class for model_type {model_type!r}", "is this a language model's config.json?")


def _attr(config: Any, name: str) -> Any:
    try:
        return getattr(config, name, None)
    except Exception:  # a per-layer attribute that has no single value (Gemma-4 head_dim)
        return None


def _fields(config: Any) -> dict[str, int]:
    try:
        text = config.get_text_config(decoder=True)
    except Exception:
        text = config
    out: dict[str, int] = {}
    for f in STANDARD_FIELDS:
        v = _attr(text, f)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            out[f] = v
    return out


def _build(cfg: dict[str, Any], model_type: str, version: str) -> Counted:
    import logging
    import warnings

    import torch
    from transformers.models.auto import configuration_auto

    if model_type not in configuration_auto.CONFIG_MAPPING_NAMES:  # type: ignore[attr-defined,unused-ignore]
        raise ConfigError(f"unknown architecture {model_type!r}: neither llm-mem nor transformers {version} "
                          "knows this model_type", "remote code is never run; a newer transformers may know it")
    cls = _pick_class(cfg, model_type)
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = configuration_auto.CONFIG_MAPPING[model_type].from_dict(cfg)
            # a text-only class of a wrapper config gets the text config, as the auto classes do it
            # (transformers 5.24 models/auto/auto_factory.py _BaseAutoModelClass.from_config)
            text_class = getattr(config, "sub_configs", {}).get("text_config")
            if text_class is not None and getattr(cls, "config_class", None) == text_class:
                config = config.get_text_config()
            with torch.device("meta"):
                model = cls._from_config(config)
    except Exception as e:  # a config transformers itself rejects: say so, in one line
        raise ConfigError(f"transformers {version} cannot build {cls.__name__} from this config: "
                          f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}") from e
    finally:
        logger.setLevel(level)
    folded: dict[tuple[str, tuple[int, ...]], list[Any]] = {}
    for name, p in model.named_parameters():
        key = (_EXPERT_INDEX.sub(".experts.*.", name), tuple(int(d) for d in p.shape))
        entry = folded.get(key)
        if entry is None:
            folded[key] = [name, key[1], 1]
        else:
            entry[2] += 1
    tensors = tuple((str(n), s, int(c)) for n, s, c in folded.values())
    return Counted(version, cls.__name__, tensors, _fields(config))
