"""Turning what the user typed (``H100``, ``4xA100-80GB``, ``8GB``, ``local``) into devices."""

from __future__ import annotations

import re

from llm_mem.catalog import detect
from llm_mem.catalog.load import load_catalog
from llm_mem.catalog.model import BUDGET_ID_PREFIX, Catalog, Gpu, GpuRequest, lookup_key
from llm_mem.errors import CatalogError, UsageError, quote
from llm_mem.units import GIB, NUMBER, parse_size
from llm_mem.workload import MAX_GPUS

_COUNT_RE = re.compile(r"^\s*(\d+)\s*[x×*]\s*(\S.*)$", re.IGNORECASE)
_SIZE_LIKE_RE = re.compile(r"^\s*" + NUMBER + r"\s*([a-zA-Z]+)\s*$")  # linear: llm_mem.units.NUMBER


def _size_label(text: str) -> str:
    m = _SIZE_LIKE_RE.match(text)
    if not m:
        return text.strip()
    unit = m.group(2).lower()
    canonical = {"g": "GB", "gb": "GB", "gib": "GiB", "m": "MB", "mb": "MB", "mib": "MiB",
                 "t": "TB", "tb": "TB", "tib": "TiB", "k": "kB", "kb": "kB", "kib": "KiB",
                 "b": "B"}.get(unit, m.group(2))
    return f"{m.group(1)} {canonical}"


def budget_gpu(text: str) -> Gpu:
    """A synthetic device for a memory budget such as ``8GB`` / ``24 GiB`` / ``80G``.

    A budget is the number of bytes the model may use: ``usable_bytes`` is that size exactly,
    with no context or driver reserve taken off. Nothing is known about its speed, so
    ``bandwidth_gbps`` and ``tflops`` are left empty rather than assumed. Raises UsageError if
    ``text`` is not a size.
    """
    size = parse_size(text)
    label = _size_label(text)
    return Gpu(
        id=BUDGET_ID_PREFIX + re.sub(r"[^A-Z0-9.]", "", label.upper()),
        name=f"{label} budget",
        vendor="generic",
        memory_bytes=size,
        usable_bytes=size,
        usable_source="memory budget given by the user, taken exactly (no reserve subtracted)",
        sources=("memory budget given on the command line",),
        native_bf16=None,
        native_fp8=None,
        native_fp4=None,
        notes=("speed unknown: no bandwidth or TFLOPS for a bare memory budget",),
    )


def _resolve_one(text: str, catalog: Catalog) -> Gpu | None:
    gpu = catalog.find(text)
    if gpu is not None:
        return gpu
    m = _SIZE_LIKE_RE.match(text)
    if m:
        if float(m.group(1)) <= 0:
            raise UsageError(f"memory size {text.strip()!r} must be positive")
        try:
            return budget_gpu(text)
        except UsageError:
            return None
    return None


def _unknown(text: str, catalog: Catalog) -> CatalogError:
    m = _COUNT_RE.match(text)
    suggestions = catalog.suggest(text) or (catalog.suggest(m.group(2)) if m else [])
    size = _SIZE_LIKE_RE.match(text)
    parts = []
    if size:
        parts.append(f"neither a catalog name nor a memory size ({size.group(2)!r} is not a unit); "
                     "use a name such as H100-SXM-80GB or a size such as 8GB, 24GiB, 80G")
    if suggestions:
        parts.append("did you mean " + ", ".join(suggestions) + "?")
    elif not size:
        parts.append("give a catalog name such as H100-SXM-80GB, a memory budget such as 24GB, or 'local'")
    return CatalogError(f"unknown GPU {text!r}", "; ".join(parts))


def resolve_gpu(text: str, catalog: Catalog | None = None) -> GpuRequest:
    """Turn what the user typed into a device and an optional count.

    Accepts a catalog id or alias (any case, spaces or dashes: ``"H100 SXM"``, ``"h100-80gb"``),
    a count prefix (``"4xA100-80GB"``, ``"8x h100"``; the count counts cards, so ``count`` is
    cards x devices_per_card), a memory budget (``"8GB"``, ``"24 GiB"``, ``"80G"``, see
    :func:`budget_gpu`) or ``"local"`` (detect this machine's GPUs). Raises CatalogError for
    anything else, with close catalog names in the hint.
    """
    catalog = catalog if catalog is not None else load_catalog()
    raw = text.strip()
    if not raw:
        raise CatalogError("empty GPU name", "give a catalog name such as H100-SXM-80GB or a size such as 24GB")
    if lookup_key(raw) == "local":
        return request_from_detected(detect.detect_local_gpus(catalog), raw)
    gpu = _resolve_one(raw, catalog)
    if gpu is not None:
        return GpuRequest(gpu=gpu, count=None, text=raw)
    m = _COUNT_RE.match(raw)
    if m:
        gpu = _resolve_one(m.group(2), catalog)
        if gpu is not None:
            digits = m.group(1).lstrip("0") or "0"
            cards = int(digits) if len(digits) <= 18 else MAX_GPUS + 1  # a 5,000-digit count has no int()
            if cards < 1:
                raise UsageError(f"GPU count in {quote(raw)} must be at least 1")
            count = cards * gpu.devices_per_card
            if count > MAX_GPUS:
                raise UsageError(f"GPU count in {quote(raw)} is over {MAX_GPUS:,} devices",
                                 "beyond the largest published clusters")
            note = None
            if gpu.devices_per_card > 1:
                note = (f"{cards} x {gpu.id}: {cards} cards = {count} devices of "
                        f"{gpu.memory_bytes / GIB:g} GiB each")
            return GpuRequest(gpu=gpu, count=count, text=raw, note=note)
    raise _unknown(raw, catalog)


def request_from_detected(gpus: list[Gpu], text: str = "local") -> GpuRequest:
    """A request for the detected devices: the kind with the most usable memory, and how many
    of it there are. Other kinds on a mixed machine are named in ``note``, not summed."""
    if not gpus:
        raise CatalogError(
            "no local GPU found",
            "nvidia-smi, rocm-smi and Apple detection found none; "
            "name a GPU (e.g. 4090) or give a memory budget (e.g. 16GB)",
        )
    groups: dict[tuple[str, int], list[Gpu]] = {}
    for gpu in gpus:
        groups.setdefault((gpu.id, gpu.usable_bytes), []).append(gpu)
    (_, _), chosen = max(groups.items(), key=lambda kv: (kv[0][1], len(kv[1])))
    others = [f"{len(g)} x {k[0]}" for k, g in groups.items() if g is not chosen]
    note = f"mixed GPUs: planning for {len(chosen)} x {chosen[0].id}; ignored {', '.join(others)}" if others else None
    return GpuRequest(gpu=chosen[0], count=len(chosen), text=text, note=note)

