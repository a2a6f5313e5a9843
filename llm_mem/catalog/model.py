"""GPU catalog data model: devices, interconnects, the catalog index and the usable-memory rule.

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
import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from llm_mem.errors import UsageError, quote
from llm_mem.units import GIB, MAX_SIZE_BYTES, MIB, parse_size

# --------------------------------------------------------------------------- constants
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

# Bounds on a catalog entry's figures (a user's --catalog file included), so that no speed or count the
# planner derives from them divides by zero, overflows a float or loops for long: from 1 MB/s to 100,000
# GB/s for every bandwidth (12x B200's 8,000 GB/s HBM3e), 0.001 to 1,000,000 TFLOPS (50x B200's dense FP4),
# memory up to 1 EiB (as --gpu sizes, llm_mem.units.MAX_SIZE_BYTES), device counts up to 131,072
# (llm_mem.workload.MAX_GPUS), power up to 100 kW.
MIN_RATE_GBPS, MAX_RATE_GBPS = 0.001, 100_000.0
MIN_TFLOPS, MAX_TFLOPS = 0.001, 1_000_000.0
MAX_DEVICES = 2**17
MAX_TDP_W = 100_000.0

#: Leading words ignored when looking a name up ("NVIDIA GeForce RTX 4090" -> "rtx4090").
_VENDOR_WORDS = frozenset(
    {"nvidia", "geforce", "tesla", "quadro", "amd", "instinct", "radeon", "apple"}
)
_ID_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]*$")


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
    # NaN and Infinity are refused in every float (YAML reads `.inf` and `.nan`): a bandwidth of .inf made
    # every speed divide by zero
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


BUDGET_ID_PREFIX = "BUDGET-"  # ids of synthetic devices made from a size (`--gpu 8GB`)


class Interconnect(_Frozen):
    """GPU-to-GPU link. ``per_direction_gbps`` is one direction, ``bidirectional_gbps`` both
    directions summed (NVIDIA's marketing figure); given one, the other is derived."""

    name: str
    per_direction_gbps: float | None = Field(default=None, ge=MIN_RATE_GBPS, le=MAX_RATE_GBPS)
    bidirectional_gbps: float | None = Field(default=None, ge=MIN_RATE_GBPS, le=2 * MAX_RATE_GBPS)
    domain_size: int | None = Field(default=None, ge=2, le=MAX_DEVICES)

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
    memory_bytes: int = Field(gt=0, le=MAX_SIZE_BYTES)
    memory_mib_reported: int | None = Field(default=None, gt=0, le=MAX_SIZE_BYTES // MIB)
    framework_total_bytes: int | None = Field(default=None, gt=0, le=MAX_SIZE_BYTES)
    usable_bytes: int = Field(gt=0, le=MAX_SIZE_BYTES)
    usable_source: str
    bandwidth_gbps: float | None = Field(default=None, ge=MIN_RATE_GBPS, le=MAX_RATE_GBPS)
    tflops: dict[str, float] = Field(default_factory=dict)
    native_bf16: bool | None = None
    native_fp8: bool | None = None
    native_fp4: bool | None = False
    interconnect: Interconnect | None = None
    pcie: str | None = None
    pcie_gbps: float | None = Field(default=None, ge=MIN_RATE_GBPS, le=MAX_RATE_GBPS)
    node_size: int | None = Field(default=None, ge=1, le=MAX_DEVICES)
    devices_per_card: int = Field(default=1, ge=1, le=MAX_DEVICES)
    unified_memory: bool = False
    tdp_w: float | None = Field(default=None, gt=0, le=MAX_TDP_W)
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
            for raw in value:
                if not isinstance(raw, (str, int)) or isinstance(raw, bool):
                    raise ValueError(f"alias {quote(raw)} is not text")
                alias = str(raw)  # YAML reads a bare 4090 as an int
                if alias != alias.strip().lower() or not lookup_key(alias):
                    raise ValueError(f"alias {quote(alias)} must be lower case and non-empty")
                out.append(alias)
            return tuple(out)
        return value

    @field_validator("tflops")
    @classmethod
    def _tflops(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(TFLOPS_KEYS))
        if unknown:
            raise ValueError(f"unknown precision {unknown[0]!r}; use {', '.join(TFLOPS_KEYS)}")
        bad = [k for k, v in value.items() if not MIN_TFLOPS <= v <= MAX_TFLOPS]
        if bad:
            raise ValueError(f"tflops.{bad[0]} = {quote(value[bad[0]])} must be from {MIN_TFLOPS:g} to "
                             f"{MAX_TFLOPS:,.0f}")
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


