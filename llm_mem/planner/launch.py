"""Launch commands that carry what the plan assumed, in the planned runtime's own flags.

* vLLM 0.34 ``vllm serve``: the checkpoint (a published quantized one when the plan sized it), the
  layout (--tensor-parallel-size, --pipeline-parallel-size, --data-parallel-size,
  --enable-expert-parallel), --max-model-len, the KV dtype, on-the-fly quantization where vLLM has it
  (``--quantization fp8_per_tensor``: config/quantization.py _ONLINE_SHORTHANDS; ``fp8`` is deprecated
  for that), every engine knob the user set, and for several nodes a Ray cluster
  (docs/serving/parallelism_scaling.md: ``ray start``, ``--distributed-executor-backend ray``).
* llama.cpp b10470 ``llama-server``: the GGUF (``-hf repo:QUANT`` or ``-m FILE``), -c over all slots with
  -np, -ngl counting the output layer, -fa on|off as resolved, -ctk/-ctv, -ub/-b, --n-cpu-moe, -ts.
* transformers 5.24: ``from_pretrained`` with the dtype, a BitsAndBytesConfig for int8/nf4, and
  device_map/max_memory that leave each GPU room for the KV cache and activations.
* AirLLM: ``AutoModel.from_pretrained(..., compression="4bit"|"8bit")`` (airllm README) for streaming.
Every flag printed is checked against the engines' real argument lists (tests/data/*_flags.txt).
"""

from __future__ import annotations

import math

from llm_mem.catalog import Gpu
from llm_mem.report import Report
from llm_mem.runtimes.llamacpp import cache_type
from llm_mem.units import GIB

# vLLM 0.34's online quantization names per format (config/quantization.py); formats without one
# need a quantized checkpoint.
_VLLM_ONLINE = {"fp8": "fp8_per_tensor"}
_VLLM_DTYPE = {"fp16": "float16", "fp32": "float32"}
# transformers dtype names for the snippet
_TORCH_DTYPE = {"bf16": "torch.bfloat16", "fp16": "torch.float16", "fp32": "torch.float32"}
# Rounding of max_memory figures: down to 0.1 GiB so the planned room for KV and activations stays free.
_MAX_MEMORY_STEP = 0.1


def checkpoint_id(model: str, report: Report) -> str:
    """The repo or path the engine loads: a published quantized checkpoint when the plan sized one."""
    if report.weights.checkpoint_repo:
        return report.weights.checkpoint_repo
    if report.source.kind == "local":  # the model folder (the source names its config.json)
        loc = report.source.location
        return loc.rsplit("/", 1)[0] if loc.endswith("config.json") and "/" in loc else loc
    return model


def vllm_serve(model: str, report: Report, tp: int, pp: int, dp: int, ep: bool, nodes: int) -> list[str]:
    """`vllm serve` for the plan, with the Ray cluster lines for several nodes."""
    w = report.workload
    repo = checkpoint_id(model, report)
    fmt = report.weights.format
    flags: list[str] = []
    comments: list[str] = []
    own = report.weights.source == "checkpoint" or report.weights.checkpoint_repo
    if not own and fmt not in ("bf16", "fp16", "fp32"):
        if fmt in _VLLM_ONLINE:
            flags.append(f"--quantization {_VLLM_ONLINE[fmt]}")
        else:
            comments.append(f"# vLLM cannot quantize to {fmt} on the fly and no published {fmt} checkpoint of "
                            f"{model} is known: quantize it first (llm-compressor, AutoAWQ) and serve that")
    if fmt in _VLLM_DTYPE and not own:
        flags.append(f"--dtype {_VLLM_DTYPE[fmt]}")
    if tp > 1:
        flags.append(f"--tensor-parallel-size {tp}")
    if pp > 1:
        flags.append(f"--pipeline-parallel-size {pp}")
    if dp > 1:
        flags.append(f"--data-parallel-size {dp}")
    if ep:
        flags.append("--enable-expert-parallel")
    flags.append(f"--max-model-len {w.context}")
    if w.kv_dtype in ("fp8", "fp8_e5m2"):
        flags.append(f"--kv-cache-dtype {w.kv_dtype}")
    if w.gpu_memory_utilization is not None:
        flags.append(f"--gpu-memory-utilization {w.gpu_memory_utilization:g}")
    if w.max_num_seqs is not None:
        flags.append(f"--max-num-seqs {w.max_num_seqs}")
    elif w.batch > 1 and report.engine is not None and report.engine.max_num_seqs and \
            w.batch > report.engine.max_num_seqs:
        flags.append(f"--max-num-seqs {w.batch}")
    if w.max_num_batched_tokens is not None:
        flags.append(f"--max-num-batched-tokens {w.max_num_batched_tokens}")
    if w.block_size is not None:
        flags.append(f"--block-size {w.block_size}")
    if w.enforce_eager:
        flags.append("--enforce-eager")
    lines = list(comments)
    if nodes > 1:
        flags.append("--distributed-executor-backend ray")
        lines += ["ray start --head --port 6379  # on the head node",
                  f"ray start --address HEAD_IP:6379  # on each of the other {nodes - 1} node(s)"]
    lines.append(" ".join([f"vllm serve {repo}", *flags]))
    return lines


def llama_server(model: str, report: Report, gguf: str | None, gpu_layers: int | None, cpu_moe: int | None,
                 splits: list[float] | None = None) -> list[str]:
    """`llama-server` for the plan: the GGUF, context over all slots, -ngl, flash attention, cache types."""
    e = report.engine
    assert e is not None and e.n_ctx is not None
    fmt = report.weights.format.removeprefix("GGUF-")
    if report.source.kind in ("gguf", "ollama"):
        src = f"-m {report.source.location}"
    elif gguf:
        src = f"-hf {gguf}:{fmt}"
    else:
        src = f"-m {model.rsplit('/', 1)[-1]}-{fmt}.gguf"
    flags = [src, f"-c {e.n_ctx}", f"-np {e.n_parallel}",
             f"-ngl {gpu_layers if gpu_layers is not None else e.n_gpu_layers}",
             f"-fa {'on' if e.flash_attn else 'off'}"]
    if e.cache_type_k != "f16" or e.cache_type_v != "f16":
        flags += [f"-ctk {e.cache_type_k}", f"-ctv {e.cache_type_v}"]
    if report.workload.ubatch_size is not None:
        flags.append(f"-ub {e.n_ubatch}")
    if report.workload.batch_size is not None:
        flags.append(f"-b {e.n_batch}")
    if cpu_moe:
        flags.append(f"--n-cpu-moe {cpu_moe}")
    if splits and len(splits) > 1:
        flags += ["-sm layer", "-ts " + ",".join(f"{s:g}" for s in splits)]
    lines = [] if gguf or report.source.kind in ("gguf", "ollama") else [
        f"# no published GGUF of {model} is known: convert it (convert_hf_to_gguf.py) and run llama-quantize {fmt}"]
    return [*lines, "llama-server " + " ".join(flags)]


def _gib(n: float) -> str:
    return f"{math.floor(n / GIB / _MAX_MEMORY_STEP) * _MAX_MEMORY_STEP:.1f}GiB"


def transformers_snippet(model: str, report: Report, gpus: list[Gpu], gpu_room: list[int],
                         cpu_bytes: int = 0) -> str:
    """A from_pretrained call with the dtype, quantization and max_memory the plan assumed (``gpu_room``:
    bytes of weights each GPU may take, the rest left for KV and activations)."""
    w = report.workload
    repo = checkpoint_id(model, report)
    fmt = report.weights.format
    compute = "fp32" if w.precision == "fp32" else ("fp16" if w.precision == "fp16" else "bf16")
    lines = ["import torch", "from transformers import AutoModelForCausalLM"]
    kwargs = [f'"{repo}"', f"dtype={_TORCH_DTYPE[compute]}"]
    if fmt in ("nf4", "fp4", "int8") and report.weights.source == "requested":
        lines[1] += ", BitsAndBytesConfig"
        if fmt == "int8":
            kwargs.append("quantization_config=BitsAndBytesConfig(load_in_8bit=True)")
        else:
            kwargs.append(f'quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="{fmt}", '
                          f"bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype={_TORCH_DTYPE[compute]})")
    mem = {str(i): _gib(room) for i, room in enumerate(gpu_room)}
    if cpu_bytes:
        mem["cpu"] = _gib(cpu_bytes * 1.0 + GIB)  # the offloaded weights plus a GiB of headroom
    entries = ", ".join(f'{k}: "{v}"' if k.isdigit() else f'"{k}": "{v}"' for k, v in mem.items())
    kwargs += ['device_map="auto"', f"max_memory={{{entries}}}"]
    if report.engine is not None and report.engine.attention:
        kwargs.append(f'attn_implementation="{report.engine.attention}"')
    lines.append(f"model = AutoModelForCausalLM.from_pretrained({', '.join(kwargs)})")
    return "\n".join(lines)


def airllm_snippet(model: str, report: Report) -> str:
    """AirLLM layer streaming, compressed as the plan sized the layers."""
    fmt = report.weights.format
    compression = {"nf4": "4bit", "fp4": "4bit", "int8": "8bit"}.get(fmt)
    arg = f', compression="{compression}"' if compression else ""
    return f'from airllm import AutoModel\nmodel = AutoModel.from_pretrained("{checkpoint_id(model, report)}"{arg})'


__all__ = ["airllm_snippet", "cache_type", "checkpoint_id", "llama_server", "transformers_snippet", "vllm_serve"]
