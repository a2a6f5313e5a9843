"""The GPU catalog: its data model (``model``), loading (``load``), what the user typed (``resolve``)
and this machine's GPUs (``detect``). Everything is re-exported here."""

from llm_mem.catalog.detect import (
    detect_local_gpus,
    gpu_from_apple,
    gpu_from_detection,
    gpus_from_nvidia_smi,
    gpus_from_rocm_smi,
    parse_nvidia_smi,
    parse_rocm_smi,
)
from llm_mem.catalog.load import CATALOG_FILENAME, load_catalog
from llm_mem.catalog.model import (
    APPLE_LARGE_RAM_BYTES,
    BUDGET_ID_PREFIX,
    CONTEXT_RESERVE_BYTES,
    DRIVER_RESERVE_BYTES,
    TFLOPS_KEYS,
    Catalog,
    Gpu,
    GpuRequest,
    Interconnect,
    derive_usable,
    lookup_key,
)
from llm_mem.catalog.resolve import budget_gpu, request_from_detected, resolve_gpu

__all__ = [
    "APPLE_LARGE_RAM_BYTES", "BUDGET_ID_PREFIX", "CATALOG_FILENAME", "CONTEXT_RESERVE_BYTES",
    "DRIVER_RESERVE_BYTES", "TFLOPS_KEYS", "Catalog", "Gpu", "GpuRequest", "Interconnect", "budget_gpu",
    "derive_usable", "detect_local_gpus", "gpu_from_apple", "gpu_from_detection", "gpus_from_nvidia_smi",
    "gpus_from_rocm_smi", "load_catalog", "lookup_key", "parse_nvidia_smi", "parse_rocm_smi",
    "request_from_detected", "resolve_gpu",
]
