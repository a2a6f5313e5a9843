"""Loading the GPU catalog: the shipped gpu_catalog.yaml (parsed once) and a user --catalog file."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llm_mem.catalog.model import Catalog, Gpu
from llm_mem.errors import CatalogError

CATALOG_FILENAME = "gpu_catalog.yaml"
# The shipped catalog's entries compiled to JSON (scripts/compile_catalog.py), with the SHA-256 of the
# YAML they came from: loading JSON takes ~1 ms where libyaml takes ~20 ms on the 60 KB file. Used only
# while the hash matches; an edited YAML is parsed as before (tests/test_catalog.py checks the drift).
COMPILED_CATALOG = Path(__file__).resolve().parent.parent / "data" / "gpu_catalog.json"


def compiled_entries(yaml_bytes: bytes) -> list[dict[str, Any]] | None:
    """The compiled catalog's entries when it was compiled from exactly these bytes, else None."""
    import hashlib
    import json

    try:
        doc = json.loads(COMPILED_CATALOG.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("source_sha256") != hashlib.sha256(yaml_bytes).hexdigest():
        return None
    entries = doc.get("devices")
    return entries if isinstance(entries, list) else None


def _shipped_catalog_path() -> Path:
    """The catalog inside the installed package (the wheel force-includes it there), else the
    repo-root file next to the package directory (a source checkout)."""
    here = Path(__file__).resolve().parent.parent
    candidates = (here / CATALOG_FILENAME, here.parent / CATALOG_FILENAME)
    for path in candidates:
        if path.is_file():
            return path
    raise CatalogError(
        f"the GPU catalog {CATALOG_FILENAME} is missing",
        f"looked for {candidates[0]} and {candidates[1]}; reinstall llm-mem",
    )


# The bundled catalog is ~60 KB; a user's additions are a few entries. 4 MiB is 60x the bundled file.
MAX_CATALOG_BYTES = 4 * 1024 * 1024
# Values (scalars, lists, mappings) and nesting a catalog file may hold: the shipped one has ~4,300 values
# nested 4 deep. Checked before the YAML is built (a 4 MiB file of `1,1,1,...` would take a minute).
MAX_CATALOG_NODES = 100_000
MAX_CATALOG_DEPTH = 32


def _read_entries(path: Path, *, shipped: bool = False) -> list[dict[str, Any]]:
    from llm_mem.sources.configfile import read_limited

    try:  # a regular file only (a FIFO or /dev/zero cannot hang us), capped while reading
        data = read_limited(path, MAX_CATALOG_BYTES, "GPU catalog")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise CatalogError(f"cannot read GPU catalog {path}: no such file") from None
    except UnicodeDecodeError:
        raise CatalogError(f"{path}: the GPU catalog is not UTF-8 text") from None
    if shipped:
        compiled = compiled_entries(data)
        if compiled is not None:
            return compiled
    return parse_entries(text, path)


def parse_entries(text: str, path: Path) -> list[dict[str, Any]]:
    """The device entries of a catalog file's YAML text (checked for shape, not yet validated)."""
    import yaml  # lazily: start-up time matters

    from llm_mem.sources.configfile import yaml_loader, yaml_shape_problem

    shape = yaml_shape_problem(text, MAX_CATALOG_NODES, MAX_CATALOG_DEPTH)
    if shape is not None:
        raise CatalogError(f"{path}: {shape[1]} at line {shape[0]}",
                           "the shipped catalog holds ~4,300 values, nested 4 deep")
    try:
        # libyaml's C loader when the wheel has it (5x faster on the 60 KB catalog), else pure Python
        data = yaml.load(text, Loader=yaml_loader())  # noqa: S506 - safe loaders
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CatalogError(f"{path}: not valid YAML{where}", problem) from None
    if data is None:
        return []
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"schema_version", "devices"})
        if unknown:
            raise CatalogError(
                f"{path}: unknown top-level key {unknown[0]!r}",
                "a catalog file holds 'devices:' (a list of GPUs) and optionally 'schema_version:'",
            )
        entries = data.get("devices") or []
    else:
        entries = data
    if not isinstance(entries, list):
        raise CatalogError(f"{path}: 'devices' must be a list of GPU entries")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise CatalogError(f"{path}: device #{number} is not a mapping of fields")
        if not isinstance(entry.get("id"), str) or not entry["id"].strip():
            raise CatalogError(f"{path}: device #{number}: field 'id' is missing or not text")
    return entries


def _validate(raw: dict[str, Any], path: Path) -> Gpu:
    try:
        return Gpu.model_validate(raw)
    except ValidationError as exc:
        # a bad memory field also leaves usable_bytes underivable; report the cause, not that
        errors = [e for e in exc.errors() if e["loc"][:1] not in (("usable_bytes",), ("usable_source",))]
        errors = errors or exc.errors()
        err = errors[0]
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        where = f"field '{loc}': " if loc else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CatalogError(f"{path}: device {raw.get('id')!r}: {where}{msg}{more}") from None


def _make_catalog(devices: Iterable[Gpu], files: tuple[str, ...], path: Path) -> Catalog:
    try:
        return Catalog(devices=tuple(sorted(devices, key=lambda g: g.id)), files=files)
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise CatalogError(f"{path}: {msg}", "aliases and ids must be unique across the catalog") from None


@functools.lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    path = _shipped_catalog_path()
    devices = [_validate(raw, path) for raw in _read_entries(path, shipped=True)]
    ids = [g.id for g in devices]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise CatalogError(f"{path}: id {duplicated[0]!r} appears twice")
    return _make_catalog(devices, (str(path),), path)


_MEMORY_FIELDS = ("memory_bytes", "memory_mib_reported", "framework_total_bytes", "unified_memory")


def load_catalog(extra: Path | str | None = None) -> Catalog:
    """The shipped catalog (parsed once, cached), plus a user ``--catalog FILE`` when given.

    The user file has the same format. An entry whose id is already known overrides the fields
    it names (the others are kept; usable memory is re-derived when a memory field changes and
    ``usable_bytes`` is not given); a new id adds a device. Every user entry gets
    ``user catalog <file>`` appended to its sources. Errors raise CatalogError naming the file.
    """
    base = _default_catalog()
    if extra is None:
        return base
    path = Path(extra)
    by_id = {g.id: g for g in base.devices}
    for raw in _read_entries(path):
        gpu_id = raw["id"].strip().upper()
        tag = f"user catalog {path}"
        old = by_id.get(gpu_id)
        if old is not None:
            merged = old.model_dump(exclude={"usable_source"})
            merged.update(raw)
            if "usable_bytes" not in raw and any(f in raw for f in _MEMORY_FIELDS):
                merged["usable_bytes"] = None
            changed = ", ".join(sorted(k for k in raw if k != "id"))
            merged["sources"] = [*raw.get("sources", ()), *old.sources, f"{tag} (overrides: {changed})"]
        else:
            merged = dict(raw)
            merged["sources"] = [*(raw.get("sources") or ()), tag]
        if not isinstance(merged["sources"], list) or not all(isinstance(s, str) for s in merged["sources"]):
            raise CatalogError(f"{path}: device {gpu_id!r}: field 'sources' must be a list of text")
        gpu = _validate(merged, path)
        by_id[gpu.id] = gpu
    return _make_catalog(by_id.values(), (*base.files, str(path)), path)

