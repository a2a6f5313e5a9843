"""Which GGUF file of a folder or repo to read: llama.cpp's own rules for `-hf org/repo[:TAG]`
(llama.cpp b10470 common/download.cpp: find_best_model, get_gguf_split_info, get_split_files,
gguf_filename_is_model, find_best_sibling), so that llm-mem sizes the file llama.cpp would load."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from llm_mem.errors import ModelNotFoundError, UsageError, quote
from llm_mem.sources.gguf_split import split_info

#: find_best_model: without a tag, Q4_K_M, then Q8_0, then the first model file.
DEFAULT_TAGS = ("Q4_K_M", "Q8_0")
# gguf_filename_is_model: files that are not the model itself
_NOT_MODEL = ("mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-")
# get_gguf_split_info: the quant tag is the last [-.]-separated word of the name
_TAG = re.compile(r"[-.]([A-Z0-9_]+)$", re.IGNORECASE)
_QUANT_ARG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class GgufGroup:
    """One model file, or the parts of one split model, with a display label and total size."""

    parts: tuple[str, ...]  # paths in the folder or repo, part 1 first
    label: str  # "Q4_K_M", "UD-Q4_K_XL"...
    size: int | None  # bytes of all parts, when known

    @property
    def first(self) -> str:
        return self.parts[0]


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def is_model_gguf(path: str) -> bool:
    """A .gguf that is a model (not an mmproj, imatrix or draft/MTP sidecar)."""
    name = basename(path)
    return name.lower().endswith(".gguf") and not any(k in name for k in _NOT_MODEL)


def is_mmproj(path: str) -> bool:
    return path.lower().endswith(".gguf") and "mmproj" in basename(path).lower()


def _stem(path: str) -> str:
    """The name without folder, split suffix and .gguf."""
    name = basename(path)
    info = split_info(name)
    if info is not None:
        return info[0]
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name


def quant_tag(path: str) -> str:
    """llama.cpp's tag of a file name: ``Llama-3.1-8B-Instruct-Q4_K_M.gguf`` -> ``Q4_K_M``."""
    m = _TAG.search(_stem(path))
    return m[1].upper() if m else ""


def _bits(tag: str) -> int:
    """extract_quant_bits: the first number of the tag (Q4_K_M -> 4, F16 -> 16, BF16 -> 16)."""
    m = re.search(r"\d+", tag)
    return int(m[0]) if m else 0


def model_groups(sizes: Mapping[str, int | None]) -> list[GgufGroup]:
    """Model GGUF files of a listing (path -> size), split parts grouped, in listing order."""
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    paths = [p for p in sizes if is_model_gguf(p)]
    for p in paths:
        if p in seen:
            continue
        info = split_info(basename(p))
        if info is None:
            groups.append((p,))
            seen.add(p)
            continue
        prefix, _, count = info
        folder = p[: len(p) - len(basename(p))]
        parts = [q for q in paths if q.startswith(folder) and "/" not in q[len(folder):]
                 and (si := split_info(basename(q))) is not None and si[0] == prefix and si[2] == count]
        parts.sort(key=lambda q: split_info(basename(q))[1])  # type: ignore[index]
        seen.update(parts)
        groups.append(tuple(parts))
    stems = [_stem(g[0]) for g in groups]
    labels = _labels(stems)
    out = []
    for g, label in zip(groups, labels):
        known = [sizes.get(q) for q in g]
        total = sum(s for s in known if s is not None) if all(s is not None for s in known) else None
        out.append(GgufGroup(g, label, total))
    return out


def _labels(stems: list[str]) -> list[str]:
    """What tells the files apart: the stems after their longest common prefix ending at - or ."""
    if len(stems) < 2:
        return [quant_tag(s + ".gguf") or s for s in stems]
    common = stems[0]
    for s in stems[1:]:
        while not s.startswith(common):
            common = common[:-1]
    cut = max(common.rfind("-"), common.rfind(".")) + 1
    labels = [s[cut:] or quant_tag(s + ".gguf") or s for s in stems]
    return labels if len(set(labels)) == len(labels) else stems


def check_quant(quant: str) -> str:
    """A quant tag from the user, as a plain word (it becomes part of a pattern)."""
    if not _QUANT_ARG.match(quant):
        raise UsageError(f"--quant {quote(quant)} is not a GGUF quant tag such as Q4_K_M or UD-Q4_K_XL")
    return quant


def _matches(path: str, tag: str) -> bool:
    # find_best_model: std::regex(tag + "[.-]", icase) searched in the path
    return re.search(re.escape(tag) + r"[.-]", path, re.IGNORECASE) is not None


def pick_group(groups: list[GgufGroup], quant: str | None) -> GgufGroup | None:
    """The group llama.cpp's `-hf repo[:quant]` loads: the first whose first part matches the tag;
    without a tag Q4_K_M, then Q8_0, then the first model file. None when a given tag matches none."""
    tags = [check_quant(quant)] if quant else list(DEFAULT_TAGS)
    for t in tags:
        for g in groups:
            if _matches(g.first, t):
                return g
    if not quant and groups:
        return groups[0]
    return None


def listing(groups: list[GgufGroup], exclude: GgufGroup | None = None) -> str:
    """'Q4_K_M 4.92 GB, Q8_0 8.54 GB' (GB = 10^9 bytes)."""
    return ", ".join(f"{g.label} {g.size / 1e9:.2f} GB" if g.size is not None else f"{g.label} (size unknown)"
                     for g in groups if g is not exclude)


def choose(sizes: Mapping[str, int | None], quant: str | None, where: str) -> tuple[GgufGroup, tuple[str, ...]]:
    """(the group to read, notes) for a folder or repo listing; an unknown tag is a ModelNotFoundError
    listing the tags there with their sizes."""
    groups = model_groups(sizes)
    if not groups:
        raise ModelNotFoundError(f"no GGUF model file in {where}")
    g = pick_group(groups, quant)
    if g is None:
        raise ModelNotFoundError(f"no GGUF file for quant {quote(quant)} in {where}",
                                 f"available: {listing(groups)}")
    others = listing(groups, exclude=g)
    notes = (f"also in {where}: {others}",) if others else ()
    return g, notes


def best_mmproj(paths: list[str], model: str) -> str | None:
    """find_best_sibling(files, model, "mmproj"): an mmproj in the model's folder or above, the deepest
    first, then the one whose bits are closest to the model's tag (F16 before F32 for a Q4 model)."""
    model_dir = model.split("/")[:-1]
    model_bits = _bits(quant_tag(model))
    best: tuple[int, int] | None = None
    chosen = None
    for p in paths:
        if not is_mmproj(p):
            continue
        sib_dir = p.split("/")[:-1]
        if sib_dir != model_dir[: len(sib_dir)]:
            continue  # only folders on the model's own path
        depth = len(sib_dir)
        diff = abs(_bits(quant_tag(p)) - model_bits)
        if best is None or depth > best[0] or (depth == best[0] and diff < best[1]):
            best, chosen = (depth, diff), p
    return chosen
