"""vLLM 0.34.0 (``vllm serve``, V1 engine, CUDA) as it sizes one GPU.

Sources are files of the vLLM 0.34.0 sdist (commit 62d4bc3c7):
* Defaults from the GPU, engine/arg_utils.py ``get_batch_defaults`` (usage context OPENAI_API_SERVER):
  >= 160 GiB: 16384 batched tokens / 1024 sequences; >= 70 GiB and not an A100: 8192 / 1024; else
  2048 / 256; then ``max_num_seqs = min(max_num_seqs, max_num_batched_tokens)`` and
  ``max_num_batched_tokens = min(max_num_seqs * max_model_len, max_num_batched_tokens)``.
* ``block_size`` 64 (config/cache.py DEFAULT_BLOCK_SIZE); ``gpu_memory_utilization`` unset: the
  extensible KV cache (on by default on CUDA, config/vllm.py ``_resolve_extensible_kv_cache``)
  sizes the cache from memory measured after warmup and CUDA-graph capture
  (v1/worker/extensible_kv_cache.py ``measure_kv_cache_bytes``)::

      available = min(requested - non_kv_used, free_after_warmup - margin) - transient_peak
      margin = max(1 GiB, 0.75 x transient_peak)          # KV_CACHE_MARGIN_FLOOR_BYTES / _FRACTION

  with ``requested = total x gpu_memory_utilization`` (1.0 when unset) and the CUDA context, NCCL and
  cuBLAS handles already in use at the snapshot (v1/worker/gpu_worker.py ``init_device``).
* Transient peak: the profiling forward of max_num_batched_tokens tokens (attention skipped), the
  sampler warm-up over ``min(max_num_seqs, max_num_batched_tokens)`` rows of full-vocabulary logits,
  and the sizing warm-up's prompt-logprobs step, chunked by 1024 rows
  (v1/worker/gpu/sample/prompt_logprob.py CHUNK_SIZE); every TP rank of the last pipeline stage
  gathers the full vocabulary (model_executor/layers/logits_processor.py ``_gather_logits``).
* KV pages (v1/kv_cache_interface.py): block_size x heads per rank x (K + V widths) x dtype bytes;
  MLA's latent is replicated on every TP rank (MLAAttention.get_kv_cache_spec ``max_tp_shards=1``).
  Hybrid sliding + full models (gpt-oss, Gemma-2/3) group layers by type
  (v1/core/kv_cache_planning.py ``_get_kv_cache_groups_uniform_page_size``) and a sliding layer keeps
  ``cdiv(min(window - 1 + 2 x max_num_batched_tokens, max_model_len), block_size) + 1`` blocks per
  request (SlidingWindowSpec.max_memory_usage_bytes with async scheduling's two batches in flight).
* Reported figures (v1/core/kv_cache_utils.py ``get_kv_cache_capacity``): concurrency =
  num_blocks / blocks one max-length request needs (all groups); "GPU KV cache size" =
  int(concurrency x max_model_len) tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_mem.choices import Attention
from llm_mem.estimators.inference_activations import layer_peak
from llm_mem.estimators.kv_cache import VLLM_INDEX_BITS, KvCache, kv_bits, kv_widths, layer_bytes, state_bytes
from llm_mem.layout import Layout, kv_heads_per_rank, stage_layers
from llm_mem.runtimes import Capacity, EngineMemory, EngineSettings, Part
from llm_mem.spec import ModelSpec
from llm_mem.units import GIB, MIB
from llm_mem.workload import Workload

if TYPE_CHECKING:
    from llm_mem.catalog import Gpu

VERSION = "vLLM 0.34.0"
DEFAULT_BLOCK_SIZE = 64  # config/cache.py CacheConfig.DEFAULT_BLOCK_SIZE
# engine/arg_utils.py get_batch_defaults (OPENAI_API_SERVER): (min device memory, batched tokens, sequences)
_BATCH_TIERS = ((160 * GIB, 16384, 1024), (70 * GIB, 8192, 1024), (0, 2048, 256))
# v1/worker/extensible_kv_cache.py: margin kept free beyond the measured transient peak
KV_CACHE_MARGIN_FLOOR = 1 * GIB
KV_CACHE_MARGIN_FRACTION = 0.75
# v1/worker/gpu/sample/prompt_logprob.py: prompt logprobs are computed 1024 rows at a time
PROMPT_LOGPROB_CHUNK = 1024
# Sampler warm-up per logit (the top-k/top-p path it exercises holds per logit: fp32 logits copy 4 +
# sorted values 4 + int64 sort indices 8 + softmax probs 4 + cumsum 4 + scattered-back logits 4 +
# int64 scatter indices 8 = 36 bytes; llm-d's V1 profiles in benchmarks/accuracy land 6-9% above it).
SAMPLER_BYTES_PER_LOGIT = 36
# Prompt-logprobs chunk per logit: the model-dtype logits (2) and torch.topk's radix-select scratch
# and fp32 log-probabilities (about 8), for k = max_logprobs = 20 (config/model.py).
PROMPT_LOGPROB_BYTES_PER_LOGIT = 10
# Non-torch memory allocated after vLLM's baseline snapshot (custom all-reduce IPC buffers, attention
# workspaces): "non_torch_memory takes 0.16GiB" at TP 1 in vLLM V1 logs
# (kubernetes-sigs/gateway-api-inference-extension#550, llm-d on H100).
NON_TORCH = int(0.16 * GIB)
# NCCL communicators and buffers of a multi-GPU instance, created before the snapshot: "0.5 GiB
# (memory used by NCCL)" in vLLM's own memory_profiling docstring (vllm/utils/mem_utils.py).
NCCL_BUFFERS = 512 * MIB
# CUDA-graph pool after capture (FULL_AND_PIECEWISE, up to 51 sizes): "Estimated CUDA graph memory:
# 0.36 GiB total" (vLLM 0.27.1 log, gpustack/runner#251); 0.21 GiB for Llama-3.2-1B over 35 shapes
# (vllm-project/vllm#11349). 0 with --enforce-eager.
CUDA_GRAPHS = int(0.36 * GIB)


@dataclass(frozen=True)
class Settings:
    """vllm serve's settings for a workload, defaults resolved from the GPU."""

    max_num_seqs: int
    max_num_batched_tokens: int
    block_size: int
    utilization: float | None
    enforce_eager: bool
    gpu_id: str | None


def batch_defaults(gpu: Gpu | None) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) vLLM picks for the OpenAI server on this GPU."""
    total = gpu.device_total_bytes if gpu is not None else 80 * GIB
    a100 = gpu is not None and "a100" in (gpu.id + gpu.name).lower()
    for floor, tokens, seqs in _BATCH_TIERS:
        if total >= floor and not (floor == 70 * GIB and a100):
            return tokens, seqs
    return _BATCH_TIERS[-1][1:]


def resolve(w: Workload, gpu: Gpu | None) -> Settings:
    """vLLM's settings for the workload on ``gpu`` (an 80 GB H100-class GPU's defaults when None)."""
    tokens, seqs = batch_defaults(gpu)
    if w.max_num_seqs is None:
        seqs = min(seqs, w.max_num_batched_tokens or tokens)
    else:
        seqs = w.max_num_seqs
    if w.max_num_batched_tokens is None:
        tokens = min(seqs * w.context, tokens)
    else:
        tokens = w.max_num_batched_tokens
    return Settings(seqs, tokens, w.block_size or DEFAULT_BLOCK_SIZE, w.gpu_memory_utilization, w.enforce_eager,
                    gpu.id if gpu is not None else None)


@dataclass(frozen=True)
class KvGroups:
    """How vLLM's hybrid allocator groups one rank's attention layers, and what a request costs."""

    bytes_per_block: int
    blocks_per_request: int
    page_bytes: int


def kv_groups(spec: ModelSpec, layers: range, s: Settings, context: int, kv_dtype: str, tp: int,
              pp: int) -> KvGroups:
    """Pages, groups and the blocks one ``context``-token request needs on one rank."""
    heads = kv_heads_per_rank(spec.num_kv_heads, tp)
    widths = kv_widths(spec, heads)
    bits = kv_bits(kv_dtype)
    page = layer_bytes(widths, s.block_size, bits, bits, VLLM_INDEX_BITS)
    own = spec.kv_layers
    kinds = [spec.layer_types[i] for i in layers if own[i]]
    full = sum(1 for k in kinds if k == "full" or not spec.sliding_window)
    sliding = len(kinds) - full
    bs = s.block_size
    full_blocks = math.ceil(context / bs)
    window_tokens = min((spec.sliding_window or 0) - 1 + (pp + 1) * s.max_num_batched_tokens, context)
    sliding_blocks = math.ceil(window_tokens / bs) + 1
    if not sliding or not full:  # one spec: one group of every layer
        n = max(len(kinds), 1)
        return KvGroups(n * page, full_blocks if full else sliding_blocks, page)
    small, large = min(full, sliding), max(full, sliding)
    group = large if large < 1.5 * small else small
    full_groups, sliding_groups = -(-full // group), -(-sliding // group)
    return KvGroups(group * page, full_groups * full_blocks + sliding_groups * sliding_blocks, page)


def transient_peak(spec: ModelSpec, s: Settings, context: int, elem: int, tp: int, last_stage: bool) -> tuple[int, str]:
    """The largest transient allocation vLLM measures on one rank, and which step it is."""
    forward = layer_peak(spec, s.max_num_batched_tokens, max(1, s.max_num_batched_tokens // max(context, 1)),
                         min(context, s.max_num_batched_tokens), Attention.flash, elem, tp)
    steps = {"forward": forward}
    if last_stage:
        rows = min(s.max_num_seqs, s.max_num_batched_tokens)
        steps["sampler"] = rows * spec.vocab_size * SAMPLER_BYTES_PER_LOGIT
        chunk = min(PROMPT_LOGPROB_CHUNK, s.max_num_batched_tokens, context)
        steps["prompt logprobs"] = chunk * spec.vocab_size * PROMPT_LOGPROB_BYTES_PER_LOGIT
    step = max(steps, key=lambda k: steps[k])
    return steps[step], step


def inference(spec: ModelSpec, w: Workload, gpu: Gpu | None, layout: Layout, stage_weights: list[int],
              elem: int) -> EngineMemory:
    """What vllm serve allocates on its busiest GPU, the KV pool it leaves, and its concurrency."""
    s = resolve(w, gpu)
    notes: list[str] = []
    per_stage = []
    for stage in range(layout.pp):
        layers = stage_layers(spec.num_layers, layout.pp, stage)
        groups = kv_groups(spec, layers, s, w.context, str(w.kv_dtype), layout.tp, layout.pp)
        peak, step = transient_peak(spec, s, w.context, elem, layout.tp, stage == layout.pp - 1)
        per_stage.append((stage_weights[stage], groups, peak, step))
    graphs = 0 if s.enforce_eager else CUDA_GRAPHS
    non_torch = NON_TORCH
    context_reserve = NCCL_BUFFERS if layout.gpus > 1 else 0
    total = gpu.device_total_bytes if gpu is not None else None
    # a device smaller than the NCCL buffers (a tiny --gpu budget) has nothing left, never a negative budget
    usable = max(gpu.usable_bytes - context_reserve, 0) if gpu is not None else None

    def available(weights: int, peak: int) -> int:
        """vLLM's "Available KV cache memory" on a rank (needs a GPU)."""
        assert total is not None and usable is not None
        margin = max(KV_CACHE_MARGIN_FLOOR, int(KV_CACHE_MARGIN_FRACTION * peak))
        util = s.utilization if s.utilization is not None else 1.0
        non_kv = weights + non_torch + graphs
        return min(math.ceil(total * util) - non_kv, usable - non_kv - margin) - peak

    # the busiest rank: the most memory needed for `batch` requests of `context` tokens
    def need(st: tuple[int, KvGroups, int, str]) -> int:
        wts, g, peak, _ = st
        margin = max(KV_CACHE_MARGIN_FLOOR, int(KV_CACHE_MARGIN_FRACTION * peak))
        return wts + (g.blocks_per_request * w.batch + 1) * g.bytes_per_block + peak + graphs + non_torch + margin

    weights, groups, peak, step = max(per_stage, key=need)
    kv_needed = (groups.blocks_per_request * w.batch + 1) * groups.bytes_per_block  # +1: the null block
    # state-space / linear-attention layers: one constant state per request in the model dtype
    # (vLLM 0.34 MambaSpec pages; mamba_ssm_cache_dtype "auto" is the model dtype)
    kv_needed += sum(state_bytes(spec, w.batch, trim=1))
    margin = max(KV_CACHE_MARGIN_FLOOR, int(KV_CACHE_MARGIN_FRACTION * peak))
    budget = None
    if total is not None and usable is not None:
        util = s.utilization if s.utilization is not None else 1.0
        budget = min(math.ceil(total * util), usable)
        reserve = non_torch + max(0, margin - (usable - budget))
    else:
        reserve = non_torch + margin
    kv_note = (f"{w.batch} x {w.context:,} tokens in {groups.blocks_per_request * w.batch:,} blocks of {s.block_size} "
               f"tokens (+1 null block), {w.kv_dtype}")
    if spec.encoder:
        kv_note = "encoder-only model (bidirectional attention): vLLM allocates no KV cache"
    heads = kv_heads_per_rank(spec.num_kv_heads, layout.tp)
    widths = kv_widths(spec, heads)
    bits = kv_bits(str(w.kv_dtype))
    attn_layers = sum(spec.kv_layers)
    kv = KvCache(kv_needed, layer_bytes(kv_widths(spec), attn_layers, bits, bits, VLLM_INDEX_BITS),
                 kv_groups(spec, range(spec.num_layers), s, 1024, str(w.kv_dtype), 1, 1).blocks_per_request
                 * kv_groups(spec, range(spec.num_layers), s, 1024, str(w.kv_dtype), 1, 1).bytes_per_block,
                 [], [], widths.latent, kv_note)
    parts = [Part("activations", peak, f"vLLM's measured transient peak: the {step} step "
                  f"({s.max_num_batched_tokens} batched tokens, {min(s.max_num_seqs, s.max_num_batched_tokens)} "
                  "sampled rows)"),
             Part("cuda_graphs", graphs, "CUDA-graph pool (FULL_AND_PIECEWISE capture)" if graphs
                  else "--enforce-eager: no CUDA graphs"),
             Part("runtime_overhead", reserve, f"non-torch memory {non_torch / GIB:.2f} GiB + the margin vLLM keeps "
                  f"free beyond the transient peak (max(1 GiB, 0.75 x peak) = {margin / GIB:.2f} GiB)"
                  + ("" if s.utilization is None else ", within --gpu-memory-utilization's slack where it fits"))]
    capacity = None
    if budget is not None and total is not None:
        avail = min(available(wts, pk) for wts, _, pk, _ in per_stage)
        if groups.bytes_per_block:
            blocks = max(0, avail // groups.bytes_per_block - 1)
            conc = blocks / groups.blocks_per_request if groups.blocks_per_request else 0.0
        else:  # an encoder: no KV pages, max_num_seqs alone bounds the requests in flight
            blocks, conc = 0, float(s.max_num_seqs) if avail > 0 else 0.0
        capacity = Capacity(device_total_bytes=total, budget_bytes=budget, available_kv_bytes=max(avail, 0),
                            kv_pool_tokens=int(conc * w.context), max_concurrency=round(conc, 2), blocks=blocks,
                            bytes_per_block=groups.bytes_per_block)
    if w.batch > s.max_num_seqs:
        notes.append(f"--batch {w.batch} exceeds max_num_seqs {s.max_num_seqs}: vLLM runs at most "
                     f"{s.max_num_seqs} at once and queues the rest")
    if gpu is None:
        notes.append("vLLM picks max_num_seqs and max_num_batched_tokens from the GPU: these are an 80 GB "
                     "H100-class GPU's (pass --gpu for yours)")
    if layout.tp > 1 and spec.mla is not None:
        notes.append("MLA's latent KV cache is replicated on every tensor-parallel rank (vLLM max_tp_shards=1)")
    settings = EngineSettings(runtime="vllm", version=VERSION, gpu=s.gpu_id, gpu_memory_utilization=s.utilization,
                              max_num_seqs=s.max_num_seqs, max_num_batched_tokens=s.max_num_batched_tokens,
                              block_size=s.block_size, enforce_eager=s.enforce_eager,
                              tensor_parallel_size=layout.tp, pipeline_parallel_size=layout.pp,
                              data_parallel_size=layout.dp, enable_expert_parallel=layout.ep)
    return EngineMemory(kv=kv, parts=parts, settings=settings, capacity=capacity, notes=notes, gpu_weights=weights)


def without_bf16(spec: ModelSpec, w: Workload, gpu: Gpu) -> tuple[Workload, str | None]:
    """A GPU without bf16 (compute capability < 8.0: T4, V100): vLLM refuses a bf16 model there
    (vllm/platforms/cuda.py ``check_if_supports_dtype`` raises "Bfloat16 is only supported on GPUs with
    compute capability of at least 8.0 ... --dtype=half"), and --dtype auto serves an fp32 checkpoint in
    fp16 (the platform's first supported dtype). The plan serves fp16 (``--dtype float16`` in the launch
    line) with an fp16 KV cache; an explicit --precision bf16 is an error."""
    from llm_mem.choices import KvDtype, Precision
    from llm_mem.dtypes import float_name
    from llm_mem.errors import UsageError

    if w.precision is Precision.bf16:
        raise UsageError(f"vLLM refuses bf16 on {gpu.id} (compute capability below 8.0)",
                         "use --precision fp16, vLLM's --dtype half")
    change: dict[str, object] = {}
    if w.precision is None and w.quant is None and spec.quantization is None and \
            float_name(spec.torch_dtype) in ("bf16", "fp32", None):
        change["precision"] = Precision.fp16
    if "kv_dtype" not in w.model_fields_set and w.kv_dtype is KvDtype.bf16:
        change["kv_dtype"] = KvDtype.fp16
    if not change:
        return w, None
    return w.model_copy(update=change), (f"{gpu.id} has no bf16 (compute capability below 8.0): vLLM refuses a bf16 "
                                         "model there, so the plan serves it in fp16 (--dtype float16) with an "
                                         "fp16 KV cache")

