"""Detecting this machine's GPUs without torch: nvidia-smi, rocm-smi, and sysctl on Apple silicon."""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
from typing import Any

from llm_mem.catalog.load import load_catalog
from llm_mem.catalog.model import (
    CONTEXT_RESERVE_BYTES,
    DRIVER_RESERVE_BYTES,
    Catalog,
    Gpu,
    Vendor,
    _tokens,
    derive_usable,
    lookup_key,
)
from llm_mem.units import GIB, MIB

_SMI_TIMEOUT_S = 5
#: Words that, right after a matched model name, mean a different card ("RTX 4090 D", "3060 Ti").
_VARIANT_WORDS = frozenset({"ti", "super", "d", "laptop", "mobile", "max", "xt", "gre"})


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
    return Gpu.model_validate(dict(
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
    ))  # usable_bytes filled by Gpu's rule


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

