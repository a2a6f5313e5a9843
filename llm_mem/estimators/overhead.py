"""Runtime overhead: memory a process holds that torch.cuda.max_memory_allocated does not show."""

from __future__ import annotations

from llm_mem.units import GIB, MIB

# CUDA context + kernel images loaded by the runtime: "about 300-500 MiB, never printed"
# (../shared/reference/truth/notes.md, llama.cpp section); we take the upper end.
CUDA_CONTEXT = 500 * MIB
# vLLM's non-torch memory at TP1 (cuBLAS/NCCL workspaces): 0.35 GiB in vllm issue #10517
# ("non_torch_memory=0.35GiB"), 0.13 GiB in llm-d's measurements; we take the larger.
VLLM_NON_TORCH = int(0.35 * GIB)
# vLLM CUDA graph capture on decoder LLMs: "Graph capturing finished ... took 0.5 GiB"-order
# log lines (vllm/worker/model_runner.py capture log); used when enforce_eager is off.
VLLM_CUDA_GRAPHS = int(0.5 * GIB)
# PyTorch caching allocator: reserved exceeds allocated by 3-15% of transient blocks
# (notes.md, "HF transformers" section); we take 10% of the non-weight bytes.
ALLOCATOR_SLACK = 0.10


def runtime_overhead(runtime: str, transient_bytes: int) -> tuple[int, str]:
    """(bytes, explanation) of the overhead for a runtime, given its transient (non-weight) bytes."""
    if runtime == "vllm":
        b = CUDA_CONTEXT + VLLM_NON_TORCH + VLLM_CUDA_GRAPHS
        return b, "CUDA context 500 MiB + non-torch workspaces 0.35 GiB + CUDA graphs 0.5 GiB"
    if runtime == "llamacpp":
        return CUDA_CONTEXT, "CUDA context 500 MiB (llama.cpp allocates exact buffers, no caching slack)"
    slack = int(transient_bytes * ALLOCATOR_SLACK)
    return CUDA_CONTEXT + slack, "CUDA context 500 MiB + caching-allocator slack (10% of KV and activations)"
