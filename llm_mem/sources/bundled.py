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
    return json.loads((_data_dir() / "models" / model.file).read_text())


def close_matches(name: str, n: int = 3) -> list[str]:
    """Bundled names that look like `name`, for "did you mean" hints."""
    keys = dict(_index().items())
    hits = difflib.get_close_matches(name.lower(), list(keys), n=n * 3, cutoff=0.6)
    out: list[str] = []
    for h in hits:
        if keys[h].id not in out:
            out.append(keys[h].id)
    return out[:n]
