"""Local sources: a config.json file, or a folder holding one (and maybe *.safetensors)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from llm_mem.errors import ConfigError
from llm_mem.sources.configfile import load_config_file

# safetensors: 8-byte little-endian header length, then a JSON header (safetensors format spec,
# github.com/huggingface/safetensors README "Format"). The reference implementation refuses
# headers over 100 MB; we do the same.
MAX_HEADER_BYTES = 100_000_000
_NON_TENSOR_KEYS = {"__metadata__"}


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Read a .safetensors file's JSON header without touching its tensor data."""
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ConfigError(f"{path} is not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise ConfigError(f"{path}: safetensors header of {n:,} bytes exceeds the {MAX_HEADER_BYTES:,} limit")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{path}: safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{path}: safetensors header is not a JSON object")
    return header


def safetensors_dtype_counts(folder: Path) -> dict[str, int] | None:
    """Element counts per dtype over every *.safetensors file in `folder` (None if there are none)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    counts: dict[str, int] = {}
    for f in files:
        for name, info in read_safetensors_header(f).items():
            if name in _NON_TENSOR_KEYS or not isinstance(info, dict):
                continue
            n = 1
            for d in info.get("shape", []):
                n *= int(d)
            dtype = str(info.get("dtype"))
            counts[dtype] = counts.get(dtype, 0) + n
    return counts


def load_local(path: Path) -> tuple[dict[str, Any], dict[str, int] | None, str]:
    """(config dict, safetensors dtype counts or None, display location) for a file or folder."""
    if path.is_dir():
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise ConfigError(f"{path} has no config.json", "point at the model folder or its config.json")
        return load_config_file(cfg_path), safetensors_dtype_counts(path), str(cfg_path)
    cfg = load_config_file(path)
    return cfg, safetensors_dtype_counts(path.parent) if path.name == "config.json" else None, str(path)
