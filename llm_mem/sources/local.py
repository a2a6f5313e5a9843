"""Local sources: a config.json file, a folder holding one (and its *.safetensors), a .gguf file
(split parts too), or a folder of GGUF files.

Which weight files count, in a folder:
1. ``model.safetensors.index.json``: exactly the shards its weight_map names (plain file names in the
   folder); a missing shard is an error unless ``allow_missing_shards`` (then: a warning and the
   config-based estimate). A consolidated ``model.safetensors`` beside the shards is not added.
2. else ``model.safetensors``;
3. else transformers-style shards ``*-0000k-of-0000N.safetensors`` (all parts present);
4. else every other ``*.safetensors``.
``adapter_model.safetensors`` is never part of the base weights: it is reported as adapter_bytes.
When safetensors and GGUF files are both present, safetensors wins unless a .gguf path is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llm_mem.errors import ConfigError, quote
from llm_mem.sources.checkpoint import build, gb, safetensors_label
from llm_mem.sources.configfile import load_config_file, parse_json_object, read_limited
from llm_mem.sources.gguf_load import GgufModel, load_gguf_folder, load_local_gguf
from llm_mem.sources.limits import MAX_INDEX_BYTES, MAX_SAFETENSORS_HEADER_BYTES, MAX_SHARDS
from llm_mem.sources.safetensors import (
    ADAPTER_FILE,
    INDEX_FILE,
    SINGLE_FILE,
    is_plain_name,
    read_local_header,
    shard_groups,
    weight_map_files,
)
from llm_mem.spec import Checkpoint, StoredTensor

#: Kept for callers of the old name: the safetensors header cap.
MAX_HEADER_BYTES = MAX_SAFETENSORS_HEADER_BYTES


@dataclass(frozen=True)
class LocalModel:
    """What a local path resolves to: a config dict to parse, or a GGUF model (spec already built)."""

    kind: Literal["local", "gguf"]
    location: str
    raw: dict[str, Any] | None = None
    gguf: GgufModel | None = None
    checkpoint: Checkpoint | None = None
    warnings: tuple[str, ...] = ()


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """A .safetensors file's tensors as {name: {"dtype", "shape", "nbytes"}} (header only)."""
    return {t.name: {"dtype": t.dtype, "numel": t.numel, "nbytes": t.nbytes} for t in read_local_header(path)}


def _safetensors_files(folder: Path, allow_missing: bool) -> tuple[list[str] | None, list[str]]:
    """(shard file names to read, warnings); None when the checkpoint cannot be read as a whole."""
    names = sorted(p.name for p in folder.glob("*.safetensors") if not p.is_dir())  # a FIFO is refused when read
    index = folder / INDEX_FILE
    if index.exists():
        where = str(index)
        files = weight_map_files(parse_json_object(read_limited(index, MAX_INDEX_BYTES, INDEX_FILE), where), where)
        if len(files) > MAX_SHARDS:
            raise ConfigError(f"{where} names {len(files):,} shard files (at most {MAX_SHARDS:,} read)")
        for f in files:
            if not is_plain_name(f):
                raise ConfigError(f"{where} names {quote(f)}, which is not a file name in {folder}",
                                  "an index may only name shard files beside it")
        missing = [f for f in files if not (folder / f).exists()]
        if missing:
            msg = (f"{where} names {len(missing)} shard(s) that are not in the folder, "
                   f"first {quote(missing[0])}")
            if not allow_missing:
                raise ConfigError(msg, "download every shard, or pass allow_missing_shards to size from config.json")
            return None, [msg + ": weights sized from config.json, not from the checkpoint"]
        return files, []
    if SINGLE_FILE in names:
        return [SINGLE_FILE], []
    candidates = [n for n in names if not n.startswith("adapter_model")]
    groups = shard_groups(candidates)
    if groups:
        files = []
        for (prefix, count), parts in sorted(groups.items()):
            want = [f"{prefix}-{k:05d}-of-{count:05d}.safetensors" for k in range(1, count + 1)]
            absent = [w for w in want if w not in parts]
            if absent:
                msg = f"shard {folder / absent[0]} is missing ({len(absent)} of {count} absent)"
                if not allow_missing:
                    raise ConfigError(msg, "download every shard, or pass allow_missing_shards")
                return None, [msg + ": weights sized from config.json, not from the checkpoint"]
            files += want
        return files, []
    return (candidates or None), []


def folder_checkpoint(folder: Path, allow_missing: bool = False) -> tuple[Checkpoint | None, list[str]]:
    """The safetensors checkpoint of a folder (None when it has none), and warnings."""
    files, warnings = _safetensors_files(folder, allow_missing)
    notes: list[str] = []
    adapter_bytes = 0
    if (folder / ADAPTER_FILE).exists():
        adapter_bytes = sum(t.nbytes for t in read_local_header(folder / ADAPTER_FILE))
        notes.append(f"LoRA adapter {ADAPTER_FILE}: {gb(adapter_bytes)}, not part of the base weights")
    if files is None:
        return None, warnings
    ggufs = sorted(p.name for p in folder.glob("*.gguf"))
    if ggufs:
        notes.append(f"GGUF files here too ({', '.join(ggufs[:3])}{', ...' if len(ggufs) > 3 else ''}): "
                     "give a .gguf path to size one")
    tensors: list[StoredTensor] = []
    for f in files:
        tensors += read_local_header(folder / f)
    return build("safetensors", [str(folder / f) for f in files], tensors, safetensors_label(tensors),
                 adapter_bytes=adapter_bytes, notes=notes), warnings


def load_local(path: Path, *, quant: str | None = None, allow_missing_shards: bool = False) -> LocalModel:
    """Resolve a local path: a .gguf file, a folder (safetensors with config.json, or GGUF files), or a
    config.json (with the safetensors beside it). The file system's own refusals while listing and
    reading (a dangling symlink among the shards, a symlink loop, a folder we may not list) are one
    ConfigError naming the file, never an OSError."""
    try:
        return _load_local(path, quant=quant, allow_missing_shards=allow_missing_shards)
    except OSError as exc:
        name = exc.filename if exc.filename is not None else path
        raise ConfigError(f"cannot read {quote(str(name), 300)}: {exc.strerror or exc}") from None


def _load_local(path: Path, *, quant: str | None, allow_missing_shards: bool) -> LocalModel:
    if path.is_dir():
        cfg_path = path / "config.json"
        has_st = any(not p.is_dir() for p in path.glob("*.safetensors") if not p.name.startswith("adapter_model"))
        has_gguf = any(p.name.lower().endswith(".gguf") for p in path.iterdir())
        if has_gguf and (quant is not None or not has_st):
            g = load_gguf_folder(path, quant)
            return LocalModel("gguf", g.checkpoint.files[0], gguf=g, checkpoint=g.checkpoint, warnings=g.warnings)
        if not cfg_path.exists():
            raise ConfigError(f"{path} has no config.json", "point at the model folder or its config.json")
        ckpt, warnings = folder_checkpoint(path, allow_missing_shards)
        return LocalModel("local", str(cfg_path), raw=load_config_file(cfg_path), checkpoint=ckpt,
                          warnings=tuple(warnings))
    if path.name.lower().endswith(".gguf"):
        g = load_local_gguf(path)
        return LocalModel("gguf", str(path), gguf=g, checkpoint=g.checkpoint, warnings=g.warnings)
    cfg = load_config_file(path)
    if path.name == "config.json":
        ckpt, warnings = folder_checkpoint(path.parent, allow_missing_shards)
        return LocalModel("local", str(path), raw=cfg, checkpoint=ckpt, warnings=tuple(warnings))
    return LocalModel("local", str(path), raw=cfg)
