"""The GPU catalog: load ``gpu_catalog.yaml``, resolve what the user typed, detect local GPUs.

Every size is an int of bytes (GB = 10**9, GiB = 2**30, see ``llm_mem.units``); bandwidths are
GB/s (decimal); compute is dense TFLOPS. The catalog file documents each field and cites a
source for each number; docs/catalog.md explains how to read and extend it.

``usable_bytes`` is what one process can allocate on the device (see :func:`derive_usable`):

* total = the device total a framework sees (cudaMemGetInfo, torch ``total_memory``, vLLM's
  ``total_gpu_memory``) when a source gives it; else the nvidia-smi / rocm-smi total minus
  ``DRIVER_RESERVE_BYTES``; else the marketed size minus ``DRIVER_RESERVE_BYTES`` (an estimate);
* usable = total - ``CONTEXT_RESERVE_BYTES`` (the CUDA/HIP context of the process);
* Apple unified memory: the macOS default GPU wired limit, 3/4 of RAM from 64 GiB up, else 2/3.
"""

from __future__ import annotations

import difflib
import functools
import json
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from llm_mem.errors import CatalogError, UsageError
from llm_mem.units import GIB, MIB, parse_size

# --------------------------------------------------------------------------- constants
CATALOG_FILENAME = "gpu_catalog.yaml"

#: Memory a process loses to its CUDA context before its allocator gets anything: 274 MiB with
#: lazy module loading vs 636 MiB eager (pytorch/pytorch PR #86509), ~400 MB with CUDA >= 11.7
#: lazy loading (pytorch/pytorch#109888; lazy is the default on Linux since CUDA 12.2).
CONTEXT_RESERVE_BYTES = 512 * MIB

#: Gap between the smi "Total" and the total a framework sees (cudaMemGetInfo): H100 81559 MiB
#: vs vLLM 79.22 GiB (0.43 GiB, vllm-project/vllm PR #12126); H100 NVL 95830 MiB vs fastfetch
#: 99,961,274,368 B (500 MiB, fastfetch-cli/fastfetch#1658); RTX 4090 24564 MiB vs torch
#: 23.64 GiB (0.35 GiB); T4 15360 MiB vs torch 14.75 GiB (0.25 GiB); A100 80GB 81920 MiB vs
#: torch 79.25 GiB (0.75 GiB); RTX 5070 "Reserved 464 MiB" (shkhln/libc6-shim#14).
DRIVER_RESERVE_BYTES = 512 * MIB

#: macOS default GPU wired limit (Metal recommendedMaxWorkingSetSize): 2/3 of RAM at 16 GB
#: (abetlen/llama-cpp-python#687) and 32 GB (ollama/ollama#434); 3/4 at 64 GB
#: (ggml-org/llama.cpp#1870), 96 GB (ggml-org/llama.cpp#3213), 128 and 192 GB (Rapid-MLX #183).
#: 36 and 48 GB Macs are unobserved and get the lower 2/3.
APPLE_LARGE_RAM_BYTES = 64 * GIB

TFLOPS_KEYS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")

#: Leading words ignored when looking a name up ("NVIDIA GeForce RTX 4090" -> "rtx4090").
_VENDOR_WORDS = frozenset(
    {"nvidia", "geforce", "tesla", "quadro", "amd", "instinct", "radeon", "apple"}
)
#: Words that, right after a matched model name, mean a different card ("RTX 4090 D", "3060 Ti").
_VARIANT_WORDS = frozenset({"ti", "super", "d", "laptop", "mobile", "max", "xt", "gre"})

_COUNT_RE = re.compile(r"^\s*(\d+)\s*[x×*]\s*(\S.*)$", re.IGNORECASE)
_SIZE_LIKE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]+)\s*$")
_ID_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]*$")
_SMI_TIMEOUT_S = 5

Vendor = Literal["nvidia", "amd", "apple", "intel", "google", "generic"]


def lookup_key(text: str) -> str:
    """The form names are compared in: lower case, alphanumerics only, leading vendor words
    dropped. ``"NVIDIA H100 SXM"``, ``"h100-sxm"`` and ``"H100_SXM"`` all give ``"h100sxm"``."""
    tokens = _tokens(text)
    while len(tokens) > 1 and tokens[0] in _VENDOR_WORDS:
        tokens.pop(0)
    return "".join(tokens)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _fmt_gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def derive_usable(
    memory_bytes: int,
    memory_mib_reported: int | None = None,
    framework_total_bytes: int | None = None,
    unified_memory: bool = False,
) -> tuple[int, str]:
    """Bytes one process can allocate, and how that was worked out (see the module docstring)."""
    if unified_memory:
        if memory_bytes >= APPLE_LARGE_RAM_BYTES:
            return memory_bytes * 3 // 4, (
                f"3/4 of {_fmt_gib(memory_bytes)} unified memory "
                "(macOS default GPU wired limit for RAM >= 64 GiB)"
            )
        return memory_bytes * 2 // 3, (
            f"2/3 of {_fmt_gib(memory_bytes)} unified memory "
            "(macOS default GPU wired limit below 64 GiB of RAM)"
        )
    ctx = f"{_fmt_gib(CONTEXT_RESERVE_BYTES)} CUDA/HIP context"
    if framework_total_bytes is not None:
        return framework_total_bytes - CONTEXT_RESERVE_BYTES, (
            f"framework-reported total {_fmt_gib(framework_total_bytes)} - {ctx}"
        )
    if memory_mib_reported is not None:
        total = memory_mib_reported * MIB
        return total - DRIVER_RESERVE_BYTES - CONTEXT_RESERVE_BYTES, (
            f"smi total {memory_mib_reported} MiB - {_fmt_gib(DRIVER_RESERVE_BYTES)} "
            f"driver reserve - {ctx}"
        )
    return memory_bytes - DRIVER_RESERVE_BYTES - CONTEXT_RESERVE_BYTES, (
        f"estimate: marketed {_fmt_gib(memory_bytes)} - {_fmt_gib(DRIVER_RESERVE_BYTES)} "
        f"driver reserve - {ctx} (no reported total known)"
    )


def _to_bytes(value: Any) -> Any:
    """Byte fields take an int or a size string with an explicit unit (``"80 GiB"``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a size in bytes, not true/false")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value} is not a whole number of bytes; write e.g. '79.22 GiB'")
        return int(value)
    if isinstance(value, str):
        try:
            return parse_size(value)
        except UsageError as exc:
            raise ValueError(exc.one_line()) from None
    return value


# --------------------------------------------------------------------------- models
class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


BUDGET_ID_PREFIX = "BUDGET-"  # ids of synthetic devices made from a size (`--gpu 8GB`)


class Interconnect(_Frozen):
    """GPU-to-GPU link. ``per_direction_gbps`` is one direction, ``bidirectional_gbps`` both
    directions summed (NVIDIA's marketing figure); given one, the other is derived."""

    name: str
    per_direction_gbps: float | None = Field(default=None, gt=0)
    bidirectional_gbps: float | None = Field(default=None, gt=0)
    domain_size: int | None = Field(default=None, ge=2)

    @model_validator(mode="before")
    @classmethod
    def _fill_direction(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            per, bi = data.get("per_direction_gbps"), data.get("bidirectional_gbps")
            if per is not None and bi is None and isinstance(per, (int, float)):
                data["bidirectional_gbps"] = 2 * per
            elif bi is not None and per is None and isinstance(bi, (int, float)):
                data["per_direction_gbps"] = bi / 2
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Interconnect:
        per, bi = self.per_direction_gbps, self.bidirectional_gbps
        if per is not None and bi is not None and abs(bi - 2 * per) > 0.01 * bi:
            raise ValueError(
                f"bidirectional_gbps ({bi}) must be twice per_direction_gbps ({per})"
            )
        return self


class Gpu(_Frozen):
    """One device as software sees it (an MI250X card is two of these)."""

    id: str
    name: str
    vendor: Vendor
    architecture: str | None = None
    form_factor: str | None = None
    aliases: tuple[str, ...] = ()
    memory_marketed: str | None = None
    memory_type: str | None = None
    memory_bytes: int = Field(gt=0)
    memory_mib_reported: int | None = Field(default=None, gt=0)
    framework_total_bytes: int | None = Field(default=None, gt=0)
    usable_bytes: int = Field(gt=0)
    usable_source: str
    bandwidth_gbps: float | None = Field(default=None, gt=0)
    tflops: dict[str, float] = Field(default_factory=dict)
    native_bf16: bool | None = None
    native_fp8: bool | None = None
    native_fp4: bool | None = False
    interconnect: Interconnect | None = None
    pcie: str | None = None
    pcie_gbps: float | None = Field(default=None, gt=0)
    node_size: int | None = Field(default=None, ge=1)
    devices_per_card: int = Field(default=1, ge=1)
    unified_memory: bool = False
    tdp_w: float | None = Field(default=None, gt=0)
    confidence: Literal["high", "medium", "low"] | None = None
    sources: tuple[str, ...] = Field(min_length=1)
    notes: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _derive_usable(cls, data: Any) -> Any:
        """Fill ``usable_bytes`` by the rule when it is absent (or null), and say how it was
        obtained in ``usable_source``. Bad inputs are left for the field validators to report."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        try:
            memory = _to_bytes(data.get("memory_bytes"))
            framework = _to_bytes(data.get("framework_total_bytes"))
            usable = _to_bytes(data.get("usable_bytes"))
        except ValueError:
            return data
        reported = data.get("memory_mib_reported")
        unified = data.get("unified_memory", False)
        if not isinstance(memory, int) or (reported is not None and not isinstance(reported, int)):
            return data
        if not isinstance(framework, (int, type(None))) or not isinstance(unified, bool):
            return data
        derived, how = derive_usable(memory, reported, framework, unified)
        if usable is None:
            data["usable_bytes"] = derived
            data.setdefault("usable_source", how)
        elif data.get("usable_source") is None:
            data["usable_source"] = (
                how if usable == derived else f"given in the catalog entry (the rule gives {derived} B: {how})"
            )
        return data

    @field_validator("memory_bytes", "framework_total_bytes", "usable_bytes", mode="before")
    @classmethod
    def _bytes(cls, value: Any) -> Any:
        return _to_bytes(value)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            if not _ID_RE.match(value):
                raise ValueError(f"id {value!r} may hold only letters, digits, '-' and '.'")
        return value

    @field_validator("aliases", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            out = []
            for alias in value:
                if not isinstance(alias, (str, int)) or isinstance(alias, bool):
                    raise ValueError(f"alias {alias!r} is not text")
                alias = str(alias)  # YAML reads a bare 4090 as an int
                if alias != alias.strip().lower() or not lookup_key(alias):
                    raise ValueError(f"alias {alias!r} must be lower case and non-empty")
                out.append(alias)
            return tuple(out)
        return value

    @field_validator("tflops")
    @classmethod
    def _tflops(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(TFLOPS_KEYS))
        if unknown:
            raise ValueError(f"unknown precision {unknown[0]!r}; use {', '.join(TFLOPS_KEYS)}")
        bad = [k for k, v in value.items() if not v > 0]
        if bad:
            raise ValueError(f"tflops.{bad[0]} must be positive")
        return value

    @model_validator(mode="after")
    def _usable_fits(self) -> Gpu:
        if self.usable_bytes > self.memory_bytes:
            raise ValueError(
                f"usable_bytes ({self.usable_bytes}) exceeds memory_bytes ({self.memory_bytes})"
            )
        return self

    @property
    def is_budget(self) -> bool:
        """True for a bare memory budget (`--gpu 8GB`) rather than a catalog device."""
        return self.id.startswith(BUDGET_ID_PREFIX)

    @property
    def device_total_bytes(self) -> int:
        """The device total a framework sees (what vLLM multiplies by gpu_memory_utilization):
        ``framework_total_bytes`` when a source gives it, else the usable rule run backwards
        (``usable_bytes + CONTEXT_RESERVE_BYTES``); for unified memory, ``usable_bytes``."""
        if self.framework_total_bytes is not None:
            return self.framework_total_bytes
        if self.unified_memory:
            return self.usable_bytes
        return min(self.usable_bytes + CONTEXT_RESERVE_BYTES, self.memory_bytes)

    @property
    def keys(self) -> tuple[str, ...]:
        """Lookup keys of the id and the aliases."""
        return (lookup_key(self.id), *(lookup_key(a) for a in self.aliases))


class Catalog(_Frozen):
    """All known devices, sorted by id, with a case- and punctuation-tolerant name index."""

    devices: tuple[Gpu, ...]
    files: tuple[str, ...] = ()
    _index: dict[str, str] = PrivateAttr(default_factory=dict)
    _by_id: dict[str, Gpu] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        _build_index(self.devices)
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._index = _build_index(self.devices)
        self._by_id = {g.id: g for g in self.devices}

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.devices)

    def get(self, gpu_id: str) -> Gpu | None:
        """The device with this id (case-insensitive), or None."""
        return self._by_id.get(gpu_id.strip().upper())

    def find(self, text: str) -> Gpu | None:
        """The device whose id or alias matches ``text`` (see :func:`lookup_key`), or None."""
        gpu_id = self._index.get(lookup_key(text))
        return self._by_id[gpu_id] if gpu_id else None

    def suggest(self, text: str, n: int = 4) -> list[str]:
        """Ids close to ``text``: names containing it first, then difflib's close matches."""
        key = lookup_key(text)
        if not key:
            return []
        found: list[str] = []
        if len(key) >= 2:
            found += sorted({i for k, i in self._index.items() if key in k or k in key})
        for variant in dict.fromkeys([key, key.replace("o", "0")]):  # "H1OO": letter O typed for zero
            found += [self._index[k] for k in difflib.get_close_matches(variant, list(self._index), n=10, cutoff=0.6)]
        return list(dict.fromkeys(found))[:n]


def _build_index(devices: Iterable[Gpu]) -> dict[str, str]:
    index: dict[str, str] = {}
    for gpu in devices:
        for key in gpu.keys:
            other = index.setdefault(key, gpu.id)
            if other != gpu.id:
                raise ValueError(f"name {key!r} of {gpu.id} already names {other}")
    return index


class GpuRequest(_Frozen):
    """What the user asked for: a device, and how many (None = the planner may choose).

    ``count`` counts devices as software sees them: ``4xMI250`` is 4 cards = 8 devices.
    """

    gpu: Gpu
    count: int | None = Field(default=None, ge=1)
    text: str = ""
    note: str | None = None

    @property
    def cards(self) -> int | None:
        return None if self.count is None else -(-self.count // self.gpu.devices_per_card)

    @property
    def total_usable_bytes(self) -> int | None:
        return None if self.count is None else self.count * self.gpu.usable_bytes


# --------------------------------------------------------------------------- loading
def _shipped_catalog_path() -> Path:
    """The catalog inside the installed package (the wheel force-includes it there), else the
    repo-root file next to the package directory (a source checkout)."""
    here = Path(__file__).resolve().parent
    candidates = (here / CATALOG_FILENAME, here.parent / CATALOG_FILENAME)
    for path in candidates:
        if path.is_file():
            return path
    raise CatalogError(
        f"the GPU catalog {CATALOG_FILENAME} is missing",
        f"looked for {candidates[0]} and {candidates[1]}; reinstall llm-mem",
    )


def _read_entries(path: Path) -> list[dict[str, Any]]:
    import yaml  # lazily: start-up time matters

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read GPU catalog {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
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
    devices = [_validate(raw, path) for raw in _read_entries(path)]
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


# --------------------------------------------------------------------------- resolving
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
        return request_from_detected(detect_local_gpus(catalog), raw)
    gpu = _resolve_one(raw, catalog)
    if gpu is not None:
        return GpuRequest(gpu=gpu, count=None, text=raw)
    m = _COUNT_RE.match(raw)
    if m:
        gpu = _resolve_one(m.group(2), catalog)
        if gpu is not None:
            cards = int(m.group(1))
            if cards < 1:
                raise UsageError(f"GPU count in {raw!r} must be at least 1")
            count = cards * gpu.devices_per_card
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


# --------------------------------------------------------------------------- detection
def parse_nvidia_smi(text: str) -> list[tuple[str, int]]:
    """``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`` output ->
    ``[(name, total MiB)]``, one per GPU. Lines that do not parse (errors, ``[N/A]``) are skipped."""
    out = []
    for line in text.splitlines():
        name, sep, mem = line.strip().rpartition(",")
        mem = mem.strip().removesuffix("MiB").strip()
        if sep and name.strip() and mem.isdigit():
            out.append((name.strip(), int(mem)))
    return out


def parse_rocm_smi(text: str) -> list[tuple[str, int]]:
    """``rocm-smi --showproductname --showmeminfo vram --json`` output -> ``[(name, total bytes)]``,
    one per device (an MI250X card appears as two). Warnings before the JSON are ignored."""
    start = text.find("{")
    if start < 0:
        return []
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return []
    cards: list[tuple[str, dict[str, Any]]] = []

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if isinstance(value, dict):
                if any(k.lower() == "vram total memory (b)" for k in value):
                    cards.append((key, value))
                else:
                    walk(value)

    walk(data)
    cards.sort(key=lambda kv: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", kv[0])])
    out = []
    for card, fields in cards:
        lower = {k.lower().strip(): v for k, v in fields.items()}
        total = str(lower.get("vram total memory (b)", "")).strip()
        if not total.isdigit() or int(total) == 0:
            continue
        name = next(
            (str(lower[k]).strip() for k in ("card series", "marketing name", "card sku", "device name")
             if str(lower.get(k, "")).strip() not in ("", "N/A")),
            f"AMD GPU ({card})",
        )
        out.append((name, int(total)))
    return out


def _match_name(name: str, catalog: Catalog) -> Gpu | None:
    """Exact id/alias match, else the longest alias whose words appear in a row in ``name`` and
    are not followed by a variant word ("RTX 4090 D", "RTX 3060 Ti" do not match)."""
    gpu = catalog.find(name)
    if gpu is not None:
        return gpu
    words = _tokens(name)
    best: tuple[int, int, Gpu] | None = None
    for candidate in catalog.devices:
        for alias in (candidate.id, *candidate.aliases):
            run = _tokens(alias)
            for i in range(len(words) - len(run) + 1):
                if words[i : i + len(run)] == run:
                    after = words[i + len(run)] if i + len(run) < len(words) else None
                    if after in _VARIANT_WORDS:
                        continue
                    rank = (len(run), len("".join(run)), candidate)
                    if best is None or rank[:2] > best[:2]:
                        best = rank
    return best[2] if best else None


def _memory_agrees(gpu: Gpu, total_bytes: int) -> bool:
    ref = gpu.memory_mib_reported * MIB if gpu.memory_mib_reported else gpu.memory_bytes
    return abs(total_bytes - ref) <= 0.05 * ref


def gpu_from_detection(name: str, total_bytes: int, vendor: Vendor, tool: str, catalog: Catalog) -> Gpu:
    """The catalog entry for a detected device when its name and memory agree with one,
    else a generic device with the detected memory and no speed figures."""
    mib = total_bytes // MIB
    note = f"detected as {name!r} ({mib} MiB) by {tool}"
    match = _match_name(name, catalog)
    if match is not None and _memory_agrees(match, total_bytes):
        update: dict[str, Any] = {"notes": (*match.notes, note)}
        if match.memory_mib_reported != mib:
            usable, how = derive_usable(match.memory_bytes, mib, None, False)
            update.update(memory_mib_reported=mib, framework_total_bytes=None,
                          usable_bytes=min(usable, match.memory_bytes), usable_source=f"{how} (detected)")
        return match.model_copy(update=update)
    slug = re.sub(r"[^A-Z0-9]+", "-", lookup_key(name).upper() or "GPU").strip("-")
    return Gpu(
        id=f"LOCAL-{slug}-{mib}MIB",
        name=name,
        vendor=vendor,
        memory_bytes=mib * MIB,
        memory_mib_reported=mib,
        sources=(f"{tool} on this machine",),
        native_bf16=None,
        native_fp8=None,
        native_fp4=None,
        notes=(note, "not in the catalog (or memory differs): speed unknown"),
    )


#: Devices with no more memory than the reserves (e.g. an integrated GPU's 512 MiB carve-out)
#: can hold no model and are skipped by detection.
_MIN_DETECTED_BYTES = DRIVER_RESERVE_BYTES + CONTEXT_RESERVE_BYTES


def gpus_from_nvidia_smi(text: str, catalog: Catalog) -> list[Gpu]:
    """Devices from recorded ``nvidia-smi --query-gpu=name,memory.total ...`` output."""
    return [gpu_from_detection(n, mib * MIB, "nvidia", "nvidia-smi", catalog)
            for n, mib in parse_nvidia_smi(text) if mib * MIB > _MIN_DETECTED_BYTES]


def gpus_from_rocm_smi(text: str, catalog: Catalog) -> list[Gpu]:
    """Devices from recorded ``rocm-smi --showproductname --showmeminfo vram --json`` output."""
    return [gpu_from_detection(n, b, "amd", "rocm-smi", catalog)
            for n, b in parse_rocm_smi(text) if b > _MIN_DETECTED_BYTES]


def gpu_from_apple(chip: str, memsize_bytes: int, wired_limit_mb: int | None, catalog: Catalog) -> Gpu:
    """The Apple GPU of a Mac with ``memsize_bytes`` of RAM (``sysctl hw.memsize``) and chip
    ``chip`` (``sysctl machdep.cpu.brand_string``, e.g. "Apple M2 Ultra"). Usable memory is the
    default GPU wired limit, or ``sysctl iogpu.wired_limit_mb`` (read as MiB) when that is set."""
    family = _match_name(chip, catalog)
    family = family if family is not None and family.unified_memory else None
    ram_gb = round(memsize_bytes / GIB)
    note = f"detected as {chip!r} with {ram_gb} GB RAM by sysctl"
    fields: dict[str, Any] = {}
    if family is not None:
        fields = family.model_dump(exclude={"usable_bytes", "usable_source"})
        if family.memory_bytes != memsize_bytes:
            prefix = family.id.rsplit("-", 1)[0]
            fields.update(id=f"{prefix}-{ram_gb}GB", name=f"{family.name.split(' (')[0]} ({ram_gb} GB unified memory)",
                          memory_marketed=f"{ram_gb} GB", bandwidth_gbps=None, tflops={},
                          notes=(*family.notes, "bandwidth unknown: it depends on the chip bin of this memory size"))
    else:
        slug = re.sub(r"[^A-Z0-9]+", "-", lookup_key(chip).upper() or "SILICON").strip("-")
        fields = dict(id=f"APPLE-{slug}-{ram_gb}GB", name=f"{chip} ({ram_gb} GB unified memory)", vendor="apple",
                      memory_marketed=f"{ram_gb} GB", unified_memory=True, node_size=1,
                      sources=("sysctl on this machine",), native_bf16=None, native_fp8=None, native_fp4=None,
                      notes=("not in the catalog: speed unknown",))
    fields["memory_bytes"] = memsize_bytes
    fields["notes"] = (*fields.get("notes", ()), note)
    if wired_limit_mb:
        fields["usable_bytes"] = min(wired_limit_mb * MIB, memsize_bytes)
        fields["usable_source"] = f"sysctl iogpu.wired_limit_mb = {wired_limit_mb}"
    return Gpu.model_validate(fields)


def _run(cmd: list[str]) -> str | None:
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True,
                              timeout=_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout or None


def detect_local_gpus(catalog: Catalog | None = None) -> list[Gpu]:
    """This machine's GPUs, one entry per device, without torch: nvidia-smi, rocm-smi, and on
    Apple silicon sysctl. Separate cards are never summed into one. [] when there are none
    (the caller decides, e.g. to plan for CPU)."""
    catalog = catalog if catalog is not None else load_catalog()
    gpus: list[Gpu] = []
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
    if out:
        gpus += gpus_from_nvidia_smi(out, catalog)
    out = _run(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json"])
    if out:
        gpus += gpus_from_rocm_smi(out, catalog)
    if not gpus and platform.system() == "Darwin" and platform.machine() == "arm64":
        mem = (_run(["sysctl", "-n", "hw.memsize"]) or "").strip()
        chip = (_run(["sysctl", "-n", "machdep.cpu.brand_string"]) or "").strip() or "Apple silicon"
        wired = (_run(["sysctl", "-n", "iogpu.wired_limit_mb"]) or "").strip()
        if mem.isdigit() and int(mem) > 0:
            gpus.append(gpu_from_apple(chip, int(mem), int(wired) if wired.isdigit() else None, catalog))
    return gpus


__all__ = [
    "CONTEXT_RESERVE_BYTES", "DRIVER_RESERVE_BYTES", "APPLE_LARGE_RAM_BYTES", "TFLOPS_KEYS",
    "Interconnect", "Gpu", "Catalog", "GpuRequest",
    "load_catalog", "resolve_gpu", "detect_local_gpus", "derive_usable", "lookup_key", "budget_gpu",
    "request_from_detected", "parse_nvidia_smi", "parse_rocm_smi", "gpu_from_detection",
    "gpus_from_nvidia_smi", "gpus_from_rocm_smi", "gpu_from_apple",
]
