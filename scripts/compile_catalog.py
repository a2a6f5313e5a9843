"""Compile gpu_catalog.yaml to llm_mem/data/gpu_catalog.json (the entries, and the YAML's SHA-256).

    python scripts/compile_catalog.py

Run after editing gpu_catalog.yaml; tests/test_catalog.py fails while the two disagree. The JSON is
what the CLI loads (~1 ms instead of ~20 ms of YAML parsing); an edited YAML without a fresh compile
still works, parsed as before.
"""

from __future__ import annotations

import hashlib
import json

from llm_mem.catalog.load import COMPILED_CATALOG, _shipped_catalog_path, parse_entries


def compile_catalog() -> dict[str, object]:
    path = _shipped_catalog_path()
    data = path.read_bytes()
    return {"source": path.name, "source_sha256": hashlib.sha256(data).hexdigest(),
            "devices": parse_entries(data.decode("utf-8"), path)}


if __name__ == "__main__":
    COMPILED_CATALOG.write_text(json.dumps(compile_catalog(), separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {COMPILED_CATALOG}")
