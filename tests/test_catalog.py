"""The GPU catalog: file invariants, name resolution, user overrides, and local detection parsing
(fed recorded nvidia-smi / rocm-smi / sysctl output, so no GPU is needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llm_mem.catalog import (
    CONTEXT_RESERVE_BYTES,
    DRIVER_RESERVE_BYTES,
    TFLOPS_KEYS,
    Gpu,
    derive_usable,
    detect_local_gpus,
    gpu_from_apple,
    gpus_from_nvidia_smi,
    gpus_from_rocm_smi,
    load_catalog,
    lookup_key,
    parse_nvidia_smi,
    parse_rocm_smi,
    request_from_detected,
    resolve_gpu,
)
from llm_mem.catalog import detect as detect_mod
from llm_mem.catalog import load as load_mod
from llm_mem.errors import CatalogError, UsageError
from llm_mem.units import GB, GIB, MIB

ROOT = Path(__file__).resolve().parent.parent
CATALOG_FILE = ROOT / "gpu_catalog.yaml"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def raw_entries():
    return yaml.safe_load(CATALOG_FILE.read_text())["devices"]


# --------------------------------------------------------------------------- file invariants
def test_ids_unique_and_alphabetised(raw_entries):
    ids = [e["id"] for e in raw_entries]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids), "keep gpu_catalog.yaml alphabetised by id"
    assert all(i == i.upper() for i in ids)


def test_aliases_lower_case_and_unique_across_devices(catalog):
    owner: dict[str, str] = {}
    for gpu in catalog.devices:
        for alias in gpu.aliases:
            assert alias == alias.lower()
        for key in set(gpu.keys):
            assert owner.setdefault(key, gpu.id) == gpu.id, f"{key!r}: {owner[key]} and {gpu.id}"


def test_required_devices_present(catalog):
    required = {
        "T4-16GB", "V100-SXM2-16GB", "V100-SXM2-32GB", "A10G-24GB", "L4-24GB", "L40S-48GB",
        "A100-SXM-40GB", "A100-SXM-80GB", "H100-SXM-80GB", "H100-PCIE-80GB", "H100-NVL-94GB",
        "H200-SXM-141GB", "B200-180GB", "MI250-2X64GB", "MI250X-2X64GB", "MI300X-192GB",
        "MI325X-256GB", "RTX-3060-12GB", "RTX-3090-24GB", "RTX-4060-8GB", "RTX-4090-24GB",
        "RTX-5090-32GB", "RTX-A6000-48GB", "M2-ULTRA-192GB", "M3-MAX-128GB", "M4-MAX-128GB",
    }
    assert required <= set(catalog.ids)


def test_every_entry_has_sources(catalog):
    for gpu in catalog.devices:
        assert gpu.sources and all(isinstance(s, str) and s.strip() for s in gpu.sources), gpu.id


def test_usable_within_marketed(catalog):
    for gpu in catalog.devices:
        assert 0 < gpu.usable_bytes <= gpu.memory_bytes, gpu.id
        if gpu.memory_mib_reported:
            assert gpu.usable_bytes < gpu.memory_mib_reported * MIB <= gpu.memory_bytes, gpu.id


def test_marketed_memory_is_whole_gib(catalog):
    # memory chips are sold in JEDEC units: "80 GB" = 80 GiB (nvidia-smi shows 81920 MiB on an A100 80GB)
    for gpu in catalog.devices:
        assert gpu.memory_bytes % GIB == 0, gpu.id


def test_usable_follows_the_rule(catalog, raw_entries):
    """The shipped file spells usable_bytes out; it must be what the documented rule gives."""
    for raw in raw_entries:
        assert raw.get("usable_bytes") is not None, f"{raw['id']}: write usable_bytes out"
        gpu = catalog.get(raw["id"])
        expected, _ = derive_usable(gpu.memory_bytes, gpu.memory_mib_reported,
                                    gpu.framework_total_bytes, gpu.unified_memory)
        assert gpu.usable_bytes == expected, gpu.id
        assert not gpu.usable_source.startswith("given"), gpu.id


def test_usable_rule_examples():
    # vLLM reports 79.22 GiB total on an H100 80GB; minus the 0.5 GiB context
    usable, how = derive_usable(80 * GIB, 81559, round(79.22 * GIB))
    assert usable == round(79.22 * GIB) - CONTEXT_RESERVE_BYTES and "framework" in how
    usable, how = derive_usable(24 * GIB, 24564)
    assert usable == 24564 * MIB - DRIVER_RESERVE_BYTES - CONTEXT_RESERVE_BYTES and "smi" in how
    usable, how = derive_usable(256 * GIB)
    assert usable == 255 * GIB and how.startswith("estimate")
    assert derive_usable(192 * GIB, unified_memory=True)[0] == 144 * GIB
    assert derive_usable(16 * GIB, unified_memory=True)[0] == 16 * GIB * 2 // 3


def test_real_devices_have_bandwidth_and_dense_tflops(catalog):
    for gpu in catalog.devices:
        assert gpu.bandwidth_gbps and gpu.bandwidth_gbps > 0, gpu.id
        assert set(gpu.tflops) <= set(TFLOPS_KEYS), gpu.id
        assert gpu.tflops, gpu.id
    # dense, not sparse: H100 SXM BF16 is 989 dense (1979 with 2:4 sparsity)
    assert catalog.get("H100-SXM-80GB").tflops["bf16"] < 1000


def test_interconnect_directions_consistent(catalog):
    for gpu in catalog.devices:
        ic = gpu.interconnect
        if ic and ic.per_direction_gbps and ic.bidirectional_gbps:
            assert ic.bidirectional_gbps == pytest.approx(2 * ic.per_direction_gbps), gpu.id


@pytest.mark.parametrize("gpu_id", ["MI250-2X64GB", "MI250X-2X64GB"])
def test_mi250_is_two_64gb_devices(catalog, gpu_id):
    gpu = catalog.get(gpu_id)
    assert gpu.devices_per_card == 2
    assert gpu.memory_bytes == 64 * GIB
    assert gpu.usable_bytes < 64 * GIB
    request = resolve_gpu(f"4x{gpu_id.split('-')[0]}", catalog)
    assert request.count == 8 and request.cards == 4
    assert "8 devices" in request.note


def test_apple_entries_are_unified_and_partly_usable(catalog):
    for gpu_id in ("M2-ULTRA-192GB", "M3-MAX-128GB", "M4-MAX-128GB"):
        gpu = catalog.get(gpu_id)
        assert gpu.unified_memory and gpu.vendor == "apple"
        assert gpu.usable_bytes == gpu.memory_bytes * 3 // 4


# --------------------------------------------------------------------------- loading
def test_default_catalog_is_cached():
    assert load_catalog() is load_catalog()


def test_yaml_is_imported_lazily():
    code = "import sys, llm_mem.catalog; print('yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_shipped_catalog_found_from_source_checkout():
    assert load_mod._shipped_catalog_path().resolve() in (
        CATALOG_FILE.resolve(), (ROOT / "llm_mem" / "gpu_catalog.yaml").resolve())


# --------------------------------------------------------------------------- resolving
@pytest.mark.parametrize(
    ("text", "gpu_id"),
    [
        ("h100", "H100-SXM-80GB"),
        ("H100 SXM", "H100-SXM-80GB"),
        ("h100-80gb", "H100-SXM-80GB"),
        ("H100-SXM-80GB", "H100-SXM-80GB"),
        ("NVIDIA H100 80GB HBM3", "H100-SXM-80GB"),
        ("h100 pcie", "H100-PCIE-80GB"),
        ("H100 NVL", "H100-NVL-94GB"),
        ("a100", "A100-SXM-80GB"),
        ("A100 40GB", "A100-SXM-40GB"),
        ("a100_80gb_pcie", "A100-PCIE-80GB"),
        ("4090", "RTX-4090-24GB"),
        ("GeForce RTX 4090", "RTX-4090-24GB"),
        ("rtx 3060", "RTX-3060-12GB"),
        ("a10g", "A10G-24GB"),
        ("A10", "A10-24GB"),
        ("Tesla T4", "T4-16GB"),
        ("v100", "V100-SXM2-32GB"),
        ("h200", "H200-SXM-141GB"),
        ("b200", "B200-180GB"),
        ("AMD Instinct MI300X", "MI300X-192GB"),
        ("m2 ultra", "M2-ULTRA-192GB"),
        ("RTX A6000", "RTX-A6000-48GB"),
    ],
)
def test_resolve_names(catalog, text, gpu_id):
    request = resolve_gpu(text, catalog)
    assert request.gpu.id == gpu_id
    assert request.count is None


@pytest.mark.parametrize(
    ("text", "gpu_id", "count"),
    [
        ("4xA100-80GB", "A100-SXM-80GB", 4),
        ("8x h100", "H100-SXM-80GB", 8),
        ("8 x H100 SXM", "H100-SXM-80GB", 8),
        ("2×4090", "RTX-4090-24GB", 2),
        ("2*mi250x", "MI250X-2X64GB", 4),
    ],
)
def test_resolve_counts(catalog, text, gpu_id, count):
    request = resolve_gpu(text, catalog)
    assert (request.gpu.id, request.count) == (gpu_id, count)
    assert request.total_usable_bytes == count * request.gpu.usable_bytes


@pytest.mark.parametrize(
    ("text", "size", "name"),
    [("8GB", 8 * GB, "8 GB budget"), ("24 GiB", 24 * GIB, "24 GiB budget"), ("80G", 80 * GB, "80 GB budget")],
)
def test_resolve_sizes(catalog, text, size, name):
    gpu = resolve_gpu(text, catalog).gpu
    assert gpu.usable_bytes == gpu.memory_bytes == size  # a budget is taken exactly
    assert gpu.name == name
    assert gpu.bandwidth_gbps is None and gpu.tflops == {}  # speed unknown, not assumed
    assert gpu.vendor == "generic" and gpu.sources


def test_resolve_count_of_sizes(catalog):
    request = resolve_gpu("2x24GiB", catalog)
    assert request.count == 2 and request.gpu.usable_bytes == 24 * GIB


def test_8xb_is_neither_size_nor_name(catalog):
    with pytest.raises(CatalogError) as info:
        resolve_gpu("8XB", catalog)
    err = info.value
    assert err.message == "unknown GPU '8XB'"
    assert "\n" not in err.one_line()
    assert "size" in err.hint


def test_unknown_name_suggests_close_matches(catalog):
    with pytest.raises(CatalogError) as info:
        resolve_gpu("rtx 4900", catalog)
    assert info.value.message == "unknown GPU 'rtx 4900'"
    assert "RTX-4090-24GB" in info.value.hint
    with pytest.raises(CatalogError) as info:
        resolve_gpu("h100-sxm7", catalog)
    assert "H100-SXM-80GB" in info.value.hint
    with pytest.raises(CatalogError) as info:
        resolve_gpu("4x h1000", catalog)
    assert info.value.message == "unknown GPU '4x h1000'" and "H100" in info.value.hint


@pytest.mark.parametrize("text", ["0xH100", "0GB"])
def test_zero_is_a_usage_error(catalog, text):
    with pytest.raises(UsageError):
        resolve_gpu(text, catalog)


def test_empty_name(catalog):
    with pytest.raises(CatalogError):
        resolve_gpu("  ", catalog)


def test_resolve_local_uses_detection(catalog, monkeypatch):
    gpus = gpus_from_nvidia_smi("NVIDIA GeForce RTX 4090, 24564\nNVIDIA GeForce RTX 4090, 24564\n", catalog)
    monkeypatch.setattr(detect_mod, "detect_local_gpus", lambda c=None: gpus)
    request = resolve_gpu("local", catalog)
    assert (request.gpu.id, request.count) == ("RTX-4090-24GB", 2)
    monkeypatch.setattr(detect_mod, "detect_local_gpus", lambda c=None: [])
    with pytest.raises(CatalogError, match="no local GPU"):
        resolve_gpu("LOCAL", catalog)


# --------------------------------------------------------------------------- user catalog
def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "my_gpus.yaml"
    path.write_text(text)
    return path


def test_user_file_adds_and_overrides(tmp_path):
    path = _write(tmp_path, """
devices:
  - id: LAB-GPU-20GB
    name: Lab accelerator 20GB
    vendor: generic
    aliases: [labgpu]
    memory_bytes: 20 GiB
    bandwidth_gbps: 500
    tflops: {bf16: 100}
  - id: rtx-4090-24gb          # ids are case-insensitive
    bandwidth_gbps: 1100
    memory_mib_reported: 24000
""")
    merged = load_catalog(path)
    lab = resolve_gpu("LabGPU", merged).gpu
    assert lab.id == "LAB-GPU-20GB"
    assert lab.usable_bytes == 20 * GIB - DRIVER_RESERVE_BYTES - CONTEXT_RESERVE_BYTES
    assert any("user catalog" in s and "my_gpus.yaml" in s for s in lab.sources)

    rtx = merged.get("RTX-4090-24GB")
    assert rtx.bandwidth_gbps == 1100
    assert rtx.tflops == load_catalog().get("RTX-4090-24GB").tflops  # untouched fields kept
    assert "4090" in rtx.aliases
    # the memory field changed, so usable memory is re-derived (the framework total still wins)
    assert rtx.memory_mib_reported == 24000
    assert any("overrides: bandwidth_gbps, memory_mib_reported" in s for s in rtx.sources)
    assert merged.ids == tuple(sorted(merged.ids))
    # the cached default catalog is not changed by a merge
    assert load_catalog().get("RTX-4090-24GB").bandwidth_gbps == 1008
    assert load_catalog().get("LAB-GPU-20GB") is None


def test_user_override_rederives_usable(tmp_path):
    path = _write(tmp_path, "devices:\n  - id: L4-24GB\n    memory_mib_reported: 22888\n")
    l4 = load_catalog(path).get("L4-24GB")
    assert l4.usable_bytes == 22888 * MIB - DRIVER_RESERVE_BYTES - CONTEXT_RESERVE_BYTES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("devices:\n  - id: H100-SXM-80GB\n    bandwith_gbps: 1\n", "field 'bandwith_gbps'"),
        ("devices:\n  - id: X-1\n    name: x\n    vendor: generic\n    memory_bytes: 8XB\n    sources: [me]\n",
         "field 'memory_bytes'"),
        ("devices:\n  - id: X-1\n    name: x\n    vendor: generic\n    memory_bytes: 8 GB\n    aliases: [h100]\n",
         "already names"),
        ("devices:\n  - id: X-1\n    name: x\n    vendor: generic\n    memory_bytes: 8 GB\n    usable_bytes: 9 GB\n",
         "exceeds memory_bytes"),
        ("devices:\n  - name: no id\n", "field 'id'"),
        ("devices: [\n", "not valid YAML"),
        ("device:\n  - id: X\n", "unknown top-level key 'device'"),
    ],
)
def test_user_file_errors_name_file_and_field(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    line = info.value.one_line()
    assert "my_gpus.yaml" in line and expected in line and "\n" not in line


def test_missing_user_file(tmp_path):
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "nope.yaml")


def test_lookup_key():
    assert lookup_key("NVIDIA GeForce RTX 4090") == lookup_key("rtx-4090") == "rtx4090"
    assert lookup_key("H100_SXM") == lookup_key("h100 sxm")


# --------------------------------------------------------------------------- detection parsing
# `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` on an 8x H100 node
# (names and totals as in vllm-project/vllm#55169)
NVIDIA_SMI_H100 = "NVIDIA H100 80GB HBM3, 81559\n" * 8

NVIDIA_SMI_MIXED = """NVIDIA GeForce RTX 4090, 24564
NVIDIA GeForce RTX 3060, 8192
NVIDIA GeForce RTX 4090 D, 24564
Tesla V100-SXM2-16GB, 16384
NVIDIA A100-SXM4-40GB, 40536
NVIDIA GB10, [N/A]
"""

# `rocm-smi --showproductname --showmeminfo vram --json` (shape and values as in public rocm-smi
# output: MI300X 206141652992 B per ROCm/legacy-rocm-build#4750; MI250X GCDs 68702699520 B each)
ROCM_SMI_MI300X = """WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status

{"card0": {"Card series": "AMD Instinct MI300X", "Card model": "0x74a1", "Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "M3000100", "VRAM Total Memory (B)": "206141652992", "VRAM Total Used Memory (B)": "297771008"}, "card1": {"Card series": "AMD Instinct MI300X VF", "VRAM Total Memory (B)": "205822885888", "VRAM Total Used Memory (B)": "299687936"}}
"""

ROCM_SMI_MI250X = """{"card0": {"Card Series": "AMD INSTINCT MI250X (MCM) OAM AC MBA", "Card Model": "0x7408", "VRAM Total Memory (B)": "68702699520", "VRAM Total Used Memory (B)": "10985472"},
 "card1": {"Card Series": "AMD INSTINCT MI250X (MCM) OAM AC MBA", "Card Model": "0x7408", "VRAM Total Memory (B)": "68702699520", "VRAM Total Used Memory (B)": "10985472"},
 "card10": {"Card Series": "AMD INSTINCT MI200 (MCM) OAM LC MBA HPE C2", "VRAM Total Memory (B)": "68702699520"}}"""


def test_parse_nvidia_smi():
    assert parse_nvidia_smi(NVIDIA_SMI_H100) == [("NVIDIA H100 80GB HBM3", 81559)] * 8
    rows = parse_nvidia_smi(NVIDIA_SMI_MIXED)
    assert len(rows) == 5  # the [N/A] line is skipped
    assert parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.") == []
    assert parse_nvidia_smi("NVIDIA L4, 23034 MiB") == [("NVIDIA L4", 23034)]


def test_nvidia_detection_matches_catalog(catalog):
    gpus = gpus_from_nvidia_smi(NVIDIA_SMI_H100, catalog)
    assert len(gpus) == 8  # never summed into one device
    assert {g.id for g in gpus} == {"H100-SXM-80GB"}
    assert gpus[0].usable_bytes == catalog.get("H100-SXM-80GB").usable_bytes  # same total as the catalog
    request = request_from_detected(gpus)
    assert (request.gpu.id, request.count, request.note) == ("H100-SXM-80GB", 8, None)


def test_nvidia_detection_mixed(catalog):
    gpus = gpus_from_nvidia_smi(NVIDIA_SMI_MIXED, catalog)
    rtx4090, rtx3060_8gb, rtx4090d, v100, a100 = gpus
    assert rtx4090.id == "RTX-4090-24GB"
    # an 8 GB RTX 3060 is not the catalog's 12 GB card: generic, memory from nvidia-smi, speed unknown
    assert rtx3060_8gb.id.startswith("LOCAL-") and rtx3060_8gb.memory_bytes == 8 * GIB
    assert rtx3060_8gb.bandwidth_gbps is None
    assert rtx3060_8gb.usable_bytes == 8192 * MIB - DRIVER_RESERVE_BYTES - CONTEXT_RESERVE_BYTES
    assert rtx4090d.id.startswith("LOCAL-")  # "4090 D" is a different card
    assert v100.id == "V100-SXM2-16GB"
    # a different total than the catalog's (older driver): usable re-derived from what this machine reports
    assert a100.id == "A100-SXM-40GB" and a100.memory_mib_reported == 40536
    assert a100.usable_bytes == 40536 * MIB - DRIVER_RESERVE_BYTES - CONTEXT_RESERVE_BYTES
    request = request_from_detected(gpus)
    assert request.gpu.id == "A100-SXM-40GB" and request.count == 1
    assert "mixed GPUs" in request.note and "RTX-4090-24GB" in request.note


def test_parse_rocm_smi():
    assert parse_rocm_smi(ROCM_SMI_MI300X) == [
        ("AMD Instinct MI300X", 206141652992), ("AMD Instinct MI300X VF", 205822885888)]
    rows = parse_rocm_smi(ROCM_SMI_MI250X)
    assert [b for _, b in rows] == [68702699520] * 3  # card0, card1, card10 in numeric order
    assert parse_rocm_smi('{"system": {"card1": {"Card series": "AMD Instinct MI210", '
                          '"VRAM Total Memory (B)": "68702699520"}}}') == [("AMD Instinct MI210", 68702699520)]
    assert parse_rocm_smi("ERROR: no GPUs") == [] and parse_rocm_smi("{broken") == []


def test_rocm_detection(catalog):
    mi300x, vf = gpus_from_rocm_smi(ROCM_SMI_MI300X, catalog)
    assert mi300x.id == vf.id == "MI300X-192GB"
    assert mi300x.usable_bytes == catalog.get("MI300X-192GB").usable_bytes
    assert vf.usable_bytes == 205822885888 - DRIVER_RESERVE_BYTES - CONTEXT_RESERVE_BYTES
    gcd0, gcd1, mi200 = gpus_from_rocm_smi(ROCM_SMI_MI250X, catalog)
    assert gcd0.id == gcd1.id == "MI250X-2X64GB"  # two devices of 64 GB, not one of 128
    assert gcd0.memory_bytes == 64 * GIB
    assert mi200.id.startswith("LOCAL-") and mi200.vendor == "amd"


def test_apple_detection(catalog):
    m2 = gpu_from_apple("Apple M2 Ultra", 192 * GIB, None, catalog)
    assert m2.id == "M2-ULTRA-192GB" and m2.usable_bytes == 144 * GIB and m2.bandwidth_gbps == 800
    small = gpu_from_apple("Apple M2 Ultra", 64 * GIB, None, catalog)
    assert small.id == "M2-ULTRA-64GB" and small.usable_bytes == 48 * GIB
    assert small.bandwidth_gbps is None  # depends on the chip bin; not assumed
    m1 = gpu_from_apple("Apple M1", 16 * GIB, None, catalog)
    assert m1.unified_memory and m1.usable_bytes == 16 * GIB * 2 // 3
    raised = gpu_from_apple("Apple M3 Max", 128 * GIB, 120_000, catalog)
    assert raised.usable_bytes == 120_000 * MIB and "wired_limit_mb" in raised.usable_source


def test_detect_local_gpus_runs_tools(catalog, monkeypatch):
    calls = []

    def fake_run(cmd):
        calls.append(cmd[0])
        return NVIDIA_SMI_H100 if cmd[0] == "nvidia-smi" else None

    monkeypatch.setattr(detect_mod, "_run", fake_run)
    gpus = detect_local_gpus(catalog)
    assert len(gpus) == 8 and calls[:2] == ["nvidia-smi", "rocm-smi"]


def test_detect_local_gpus_none(catalog, monkeypatch):
    monkeypatch.setattr(detect_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(detect_mod.platform, "system", lambda: "Linux")
    assert detect_local_gpus(catalog) == []


def test_detect_apple(catalog, monkeypatch):
    answers = {"hw.memsize": "206158430208\n", "machdep.cpu.brand_string": "Apple M2 Ultra\n",
               "iogpu.wired_limit_mb": "0\n"}
    monkeypatch.setattr(detect_mod, "_run", lambda cmd: answers.get(cmd[-1]) if cmd[0] == "sysctl" else None)
    monkeypatch.setattr(detect_mod.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(detect_mod.platform, "machine", lambda: "arm64")
    (gpu,) = detect_local_gpus(catalog)
    assert gpu.id == "M2-ULTRA-192GB" and gpu.usable_bytes == 144 * GIB


def test_run_survives_missing_and_hanging_tools(monkeypatch):
    assert detect_mod._run(["surely-not-a-real-tool-xyz"]) is None

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], 5)

    monkeypatch.setattr(detect_mod.shutil, "which", lambda name: "/bin/" + name)
    monkeypatch.setattr(detect_mod.subprocess, "run", hang)
    assert detect_mod._run(["nvidia-smi"]) is None


def test_gpu_model_is_frozen(catalog):
    gpu = catalog.get("T4-16GB")
    with pytest.raises(Exception):
        gpu.usable_bytes = 1  # type: ignore[misc]
    assert isinstance(gpu, Gpu)


def test_tiny_integrated_gpu_is_skipped(catalog):
    igpu = '{"card0": {"Card series": "AMD Radeon Graphics", "VRAM Total Memory (B)": "536870912"}}'
    assert gpus_from_rocm_smi(igpu, catalog) == []


def test_device_total_bytes(catalog):
    h100 = catalog.get("H100-SXM-80GB")
    assert h100.device_total_bytes == h100.framework_total_bytes
    l4 = catalog.get("L4-24GB")
    assert l4.device_total_bytes == 23034 * MIB - DRIVER_RESERVE_BYTES
    m2 = catalog.get("M2-ULTRA-192GB")
    assert m2.device_total_bytes == m2.usable_bytes
    assert resolve_gpu("8GB", catalog).gpu.device_total_bytes == 8 * GB


def test_compiled_catalog_is_the_yaml(script_loader):
    """llm_mem/data/gpu_catalog.json (what the CLI loads) holds exactly the YAML's entries; after an
    edit of gpu_catalog.yaml run `python scripts/compile_catalog.py`."""
    import json

    from llm_mem.catalog.load import COMPILED_CATALOG, compiled_entries

    root = Path(__file__).resolve().parent.parent
    compile_catalog = script_loader(root / "scripts" / "compile_catalog.py", "compile_catalog").compile_catalog
    assert json.loads(COMPILED_CATALOG.read_text()) == compile_catalog(), "run python scripts/compile_catalog.py"
    shipped = Path(compile_catalog.__globals__["_shipped_catalog_path"]())
    assert compiled_entries(shipped.read_bytes()) == compile_catalog()["devices"]
    assert compiled_entries(shipped.read_bytes() + b"\n# edited\n") is None  # an edited YAML is parsed instead
