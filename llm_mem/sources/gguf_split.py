"""GGUF split files and file-type labels: the `-0000k-of-0000N.gguf` parts of one model (llama.cpp
b10470 src/llama.cpp llama_split_path, llama-model-loader.cpp split checks) and the whole-file recipe
name in general.file_type (include/llama.h enum llama_ftype)."""

from __future__ import annotations

import re

from llm_mem.errors import ConfigError, quote
from llm_mem.sources.gguf import GgufHeader
from llm_mem.sources.limits import MAX_GGUF_SPLITS

#: llama.cpp include/llama.h enum llama_ftype (general.file_type): the whole-file recipe's name.
LLAMA_FTYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
    36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}
#: llama.h LLAMA_FTYPE_GUESSED: set on files whose type was guessed, not recorded.
LLAMA_FTYPE_GUESSED = 1024

# llama.cpp src/llama.cpp llama_split_path: "%s-%05d-of-%05d.gguf"
_SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)

# -- split files ---------------------------------------------------------------------------------------


def split_info(filename: str) -> tuple[str, int, int] | None:
    """(prefix, part number from 1, part count) of a ``-0000k-of-0000N.gguf`` name, else None."""
    m = _SPLIT.match(filename)
    if m is None:
        return None
    no, count = int(m["no"]), int(m["count"])
    if not 1 <= no <= count:
        return None
    return m["prefix"], no, count


def split_names(filename: str) -> list[str]:
    """All part names of the split file ``filename`` (itself alone when it is not a split name)."""
    info = split_info(filename)
    if info is None:
        return [filename]
    prefix, _, count = info
    if count > MAX_GGUF_SPLITS:
        raise ConfigError(f"{quote(filename)} claims {count} parts (at most {MAX_GGUF_SPLITS} read)")
    return [f"{prefix}-{k:05d}-of-{count:05d}.gguf" for k in range(1, count + 1)]


def check_splits(headers: list[GgufHeader]) -> None:
    """The parts of a split model agree with each other (llama.cpp llama-model-loader.cpp: split.no,
    split.count and split.tensors.count), and no tensor appears twice."""
    first = headers[0]
    count = first.get("split.count")
    if count is None:
        if len(headers) > 1:
            raise ConfigError(f"{first.name} has no split.count but {len(headers)} parts were found")
        return
    if not isinstance(count, int) or count != len(headers):
        raise ConfigError(f"{first.name}: split.count is {count!r} but {len(headers)} part files were found")
    seen: set[str] = set()
    for k, h in enumerate(headers):
        if h.get("split.no") != k:
            raise ConfigError(f"{h.name}: split.no is {h.get('split.no')!r}, expected {k}")
        if h.get("split.count") != count:
            raise ConfigError(f"{h.name}: split.count is {h.get('split.count')!r}, expected {count}")
        for t in h.tensors:
            if t.name in seen:
                raise ConfigError(f"{h.name}: tensor {quote(t.name)} also appears in another part")
            seen.add(t.name)
    declared = first.get("split.tensors.count")
    if declared is not None and declared != len(seen):
        raise ConfigError(f"{first.name}: split.tensors.count is {declared!r} but the parts hold {len(seen)} tensors")


def file_type_label(header: GgufHeader) -> str:
    """'GGUF Q4_K_M (file type 15)' from general.file_type (llama.h enum llama_ftype)."""
    ft = header.get("general.file_type")
    if not isinstance(ft, int) or isinstance(ft, bool):
        return "GGUF"
    guessed = ft & LLAMA_FTYPE_GUESSED
    base = ft & ~LLAMA_FTYPE_GUESSED
    name = LLAMA_FTYPES.get(base)
    if name is None:
        return f"GGUF (file type {ft})"
    return f"GGUF {name} (file type {ft}{', guessed' if guessed else ''})"
