"""Model configs shipped inside the package (llm_mem/data), usable offline."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class BundledModel(BaseModel):
    """One entry of llm_mem/data/registry.json."""

    model_config = ConfigDict(frozen=True)

    id: str  # Hub repo id the config belongs to
    file: str
    provenance: str  # "downloaded", or how the config was rebuilt
    also: list[str] = []  # repos with exactly the same architecture (instruct variants)
    aliases: list[str] = []


def _data_dir() -> Path:
    return Path(str(resources.files("llm_mem") / "data"))


@lru_cache(maxsize=1)
def registry() -> tuple[BundledModel, ...]:
    """All bundled models, sorted by id."""
    raw = json.loads((_data_dir() / "registry.json").read_text())
    return tuple(BundledModel(**e) for e in raw)


@lru_cache(maxsize=1)
def _index() -> dict[str, BundledModel]:
    idx: dict[str, BundledModel] = {}
    for m in registry():
        for key in [m.id, *m.also, *m.aliases]:
            idx.setdefault(key.lower(), m)
    return idx


def find_bundled(name: str) -> BundledModel | None:
    """Look a name up among ids, same-architecture repos and aliases (case-insensitive)."""
    return _index().get(name.strip().lower())


def load_bundled_config(model: BundledModel) -> dict[str, Any]:
    """The raw config.json dict of a bundled model."""
    raw: dict[str, Any] = json.loads((_data_dir() / "models" / model.file).read_text())
    return raw


def close_matches(name: str, n: int = 3) -> list[str]:
    """Bundled names that look like `name`, for "did you mean" hints."""
    keys = dict(_index().items())
    hits = difflib.get_close_matches(name.lower(), list(keys), n=n * 3, cutoff=0.6)
    out: list[str] = []
    for h in hits:
        if keys[h].id not in out:
            out.append(keys[h].id)
    return out[:n]


class QuantizedCheckpoint(BaseModel):
    """A published quantized checkpoint of a bundled model (llm_mem/data/quantized.json)."""

    model_config = ConfigDict(frozen=True)

    repo: str
    source: str
    quantization_config: dict[str, Any] | None = None  # None for GGUF repos


# Meta's Llama-3.1-405B-Instruct-FP8 config.json keeps every layer's attention projections and the MLP of
# the first and last layers in BF16 (model card; modules_to_not_convert, 126 layers).
def _llama405b_fp8_skip() -> list[str]:
    names = [f"model.layers.{i}.self_attn.{p}" for i in range(126) for p in ("q_proj", "k_proj", "v_proj", "o_proj")]
    names += [f"model.layers.{i}.mlp.{p}" for i in (0, 125) for p in ("gate_proj", "up_proj", "down_proj")]
    return [*names, "lm_head"]


_EXPANSIONS = {"llama405b_fp8": _llama405b_fp8_skip}


@lru_cache(maxsize=1)
def _quantized() -> dict[str, dict[str, Any]]:
    raw: dict[str, Any] = json.loads((_data_dir() / "quantized.json").read_text())
    return {k.lower(): v for k, v in raw.items() if not k.startswith("_")}


def quantized_checkpoint(model_id: str, key: str) -> QuantizedCheckpoint | None:
    """The published checkpoint of bundled ``model_id`` stored as ``key`` (fp8, awq, gptq, gguf...)."""
    entry = _quantized().get(model_id.lower(), {}).get(key)
    if entry is None:
        return None
    qc = entry.get("quantization_config")
    if isinstance(qc, dict):
        qc = dict(qc)
        for field, value in qc.items():
            if isinstance(value, dict) and "expand" in value:
                qc[field] = _EXPANSIONS[value["expand"]]()
    return QuantizedCheckpoint(repo=entry["repo"], source=entry["source"], quantization_config=qc)
