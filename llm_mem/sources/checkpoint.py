"""Checkpoint facts from headers: per-tensor records, totals, labels. Shared by the local, Hub and
Ollama sources, for safetensors and GGUF. Invariant: ``sum(t.nbytes for t in tensors) ==
total_bytes``; projector and adapter files are counted apart (projector_bytes, adapter_bytes)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from llm_mem.sources.gguf import GgufHeader
from llm_mem.sources.gguf_split import file_type_label
from llm_mem.sources.roles import gguf_role
from llm_mem.spec import Checkpoint, StoredTensor


def gb(n: int) -> str:
    """'8.54 GB' (GB = 10^9 bytes, as everywhere in llm-mem's output)."""
    return f"{n / 1e9:.2f} GB"


def build(fmt: Literal["safetensors", "gguf"], files: Sequence[str], tensors: Iterable[StoredTensor], label: str,
          *, projector_bytes: int = 0, adapter_bytes: int = 0, notes: Sequence[str] = ()) -> Checkpoint:
    """A Checkpoint whose totals are the sums of its tensors."""
    ts = tuple(tensors)
    counts: dict[str, int] = {}
    for t in ts:
        counts[t.dtype] = counts.get(t.dtype, 0) + t.numel
    return Checkpoint(format=fmt, files=tuple(files), total_bytes=sum(t.nbytes for t in ts), dtype_counts=counts,
                      tensors=ts, label=label, projector_bytes=projector_bytes, adapter_bytes=adapter_bytes,
                      notes=tuple(notes))


def gguf_stored(headers: Sequence[GgufHeader], role: str | None = None) -> list[StoredTensor]:
    """The tensors of GGUF headers (one per split part), roles from llama.cpp's names (or all ``role``)."""
    out: list[StoredTensor] = []
    for h in headers:
        for t in h.tensors:
            layer, r = (None, role) if role is not None else gguf_role(t.name)
            out.append(StoredTensor(name=t.name, layer=layer, role=r, dtype=t.type_name, numel=t.numel,
                                    nbytes=t.nbytes))
    return out


def gguf_checkpoint(headers: Sequence[GgufHeader], files: Sequence[str], *, projector_bytes: int = 0,
                    adapter_bytes: int = 0, notes: Sequence[str] = ()) -> Checkpoint:
    """A GGUF model's checkpoint: every part's tensors, labelled by general.file_type."""
    return build("gguf", files, gguf_stored(headers), file_type_label(headers[0]), projector_bytes=projector_bytes,
                 adapter_bytes=adapter_bytes, notes=notes)


def safetensors_label(tensors: Sequence[StoredTensor]) -> str:
    """'safetensors BF16', or the dtypes by share of bytes ('safetensors F8_E4M3 + BF16')."""
    by: dict[str, int] = {}
    for t in tensors:
        by[t.dtype] = by.get(t.dtype, 0) + t.nbytes
    if not by:
        return "safetensors"
    total = sum(by.values()) or 1
    main = [d for d, b in sorted(by.items(), key=lambda kv: -kv[1]) if b / total >= 0.05]
    return "safetensors " + " + ".join(main[:3])
