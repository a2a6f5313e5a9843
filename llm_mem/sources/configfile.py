"""Reading a config.json safely: size limit, JSON only, never code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llm_mem.errors import ConfigError

# A real config.json is a few KB (DeepSeek-V3's is 1.7 KB; the largest multimodal ones ~50 KB).
# Anything beyond 2 MiB is not a config and is refused before parsing.
MAX_CONFIG_BYTES = 2 * 2**20


def load_config_file(path: Path) -> dict[str, Any]:
    """Read and JSON-parse a config file, refusing huge or malformed files with one clear line."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is {size:,} bytes, too large for a config.json (limit {MAX_CONFIG_BYTES:,})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data
