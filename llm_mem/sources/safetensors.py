"""safetensors headers -> per-tensor records, with every size checked before it is trusted.

Format (huggingface/safetensors README, "Format"): an 8-byte little-endian header length N, N bytes
of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the
data. The length is checked against the cap and against the file's size *before* the header is read;
each tensor's offsets must lie inside the data and agree with its shape and dtype (as the reference
implementation's validation requires).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

from llm_mem.dtypes import bits as dtype_bits
from llm_mem.errors import ConfigError, quote
from llm_mem.sources.byteio import LocalFile
from llm_mem.sources.limits import (
    MAX_SAFETENSORS_HEADER_BYTES,
    MAX_SAFETENSORS_TENSORS,
    MAX_TENSOR_ELEMENTS,
    MAX_TENSOR_RANK,
)
from llm_mem.sources.roles import hf_role
from llm_mem.spec import StoredTensor

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"
# transformers' shard names: "model-00001-of-00004.safetensors" (modeling_utils.py, shard_checkpoint)
SHARD = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.safetensors$")


def header_length(head: bytes, where: str, file_size: int | None) -> int:
    """The JSON header's length from the first 8 bytes, refused when over the cap or the file."""
    if len(head) < 8:
        raise ConfigError(f"{where} is not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", head[:8])
    if n > MAX_SAFETENSORS_HEADER_BYTES:
        raise ConfigError(f"{where}: safetensors header of {n:,} bytes exceeds the "
                          f"{MAX_SAFETENSORS_HEADER_BYTES:,} limit")
    if file_size is not None and n > file_size - 8:
        raise ConfigError(f"{where}: safetensors header claims {n:,} bytes but the file holds {file_size:,}")
    return int(n)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def parse_header(raw: bytes, where: str, data_size: int | None) -> list[StoredTensor]:
    """The tensors of a header's JSON bytes. ``data_size``: bytes after the header, when known."""
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{where}: safetensors header is not valid JSON") from None
    except RecursionError:
        raise ConfigError(f"{where}: safetensors header nests JSON too deeply") from None
    except ValueError:  # an integer of more digits than int() converts (sys.get_int_max_str_digits)
        raise ConfigError(f"{where}: safetensors header holds a number too long for a shape or offset") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{where}: safetensors header is not a JSON object")
    if len(header) > MAX_SAFETENSORS_TENSORS + 1:
        raise ConfigError(f"{where}: safetensors header lists {len(header):,} tensors "
                          f"(at most {MAX_SAFETENSORS_TENSORS:,} read)")
    out: list[StoredTensor] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ConfigError(f"{where}: entry {quote(name)} is not an object")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or not 0 < len(dtype) <= 32:
            raise ConfigError(f"{where}: tensor {quote(name)} has no valid dtype")
        if not isinstance(shape, list) or len(shape) > MAX_TENSOR_RANK or any(_int(d) is None for d in shape):
            raise ConfigError(f"{where}: tensor {quote(name)} has an invalid shape {quote(shape)}")
        numel = 1
        for d in shape:
            numel *= d
        if numel > MAX_TENSOR_ELEMENTS:
            raise ConfigError(f"{where}: tensor {quote(name)} claims {numel:,} elements")
        if (not isinstance(offs, list) or len(offs) != 2 or _int(offs[0]) is None or _int(offs[1]) is None
                or offs[0] > offs[1]):
            raise ConfigError(f"{where}: tensor {quote(name)} has invalid data_offsets {quote(offs)}")
        begin, end = int(offs[0]), int(offs[1])
        if data_size is not None and end > data_size:
            raise ConfigError(f"{where}: tensor {quote(name)} ends at byte {end:,} of a "
                              f"{data_size:,}-byte data section")
        nbytes = end - begin
        b = dtype_bits(dtype)
        expected = (numel * int(b) + 7) // 8 if b is not None and b == int(b) else None
        if expected is not None and nbytes != expected:
            raise ConfigError(f"{where}: tensor {quote(name)} spans {nbytes:,} bytes but its shape and {dtype} "
                              f"make {expected:,}")
        layer, role = hf_role(name)
        out.append(StoredTensor(name=name, layer=layer, role=role, dtype=dtype, numel=numel, nbytes=nbytes,
                                shape=tuple(int(d) for d in shape)))
    return out


def read_local_header(path: Path) -> list[StoredTensor]:
    """The tensors of a local .safetensors file (header only, a regular file only)."""
    with LocalFile(path, "safetensors file") as f:
        assert f.size is not None
        n = header_length(f.read(0, 8), str(path), f.size)
        raw = f.read(8, n)
        if len(raw) != n:
            raise ConfigError(f"{path}: safetensors header is truncated")
        return parse_header(raw, str(path), f.size - 8 - n)


def shard_groups(names: list[str]) -> dict[tuple[str, int], list[str]]:
    """transformers-style shard names grouped by (prefix, count)."""
    groups: dict[tuple[str, int], list[str]] = {}
    for n in names:
        m = SHARD.match(n)
        if m:
            groups.setdefault((m["prefix"], int(m["count"])), []).append(n)
    return groups


def weight_map_files(index: dict[str, Any], where: str) -> list[str]:
    """The shard file names an index's weight_map points to, in order of first appearance."""
    wm = index.get("weight_map")
    if not isinstance(wm, dict) or not wm:
        raise ConfigError(f"{where} has no weight_map")
    files: list[str] = []
    seen: set[str] = set()
    for tensor, f in wm.items():
        if not isinstance(f, str):
            raise ConfigError(f"{where}: weight_map entry {quote(tensor)} is not a file name")
        if f not in seen:
            seen.add(f)
            files.append(f)
    return files


def is_plain_name(name: str) -> bool:
    """A bare file name: no folder, no '..', no scheme, query or escape, printable."""
    return (0 < len(name) <= 255 and name not in (".", "..") and not any(c in name for c in '/\\?#%:')
            and name.isprintable())
