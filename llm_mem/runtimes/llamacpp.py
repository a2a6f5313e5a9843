"""llama.cpp (llama-server, build b10470, commit 34af94cd) as it allocates: model, KV and compute buffers
on the GPU and in host RAM.

Sources (llama.cpp b10470 unless said):
* Defaults: common/common.h ``n_batch = 2048``, ``n_ubatch = 512``, ``flash_attn_type = AUTO``,
  ``cache_type_k/v = F16``, ``n_gpu_layers = -1`` (auto: all layers + the output layer).
* Cells: src/llama-context.cpp pads n_ctx to a multiple of 256; without ``--kv-unified`` each of the
  ``-np`` slots gets ``pad256(n_ctx / np)`` cells (n_ctx_seq). llm-mem prints ``-np`` explicitly, so
  the cache is per slot (non-unified), as the printed command makes it.
* Sliding-window layers: src/llama-kv-cache-iswa.cpp
  ``size_swa = GGML_PAD(min(size_base, n_swa*(unified ? n_seq : 1) + n_ubatch), 256)`` per stream.
* MLA (DeepSeek, Kimi, GLM-4.x-Flash): K only, the latent (kv_lora_rank + rope), V is a view of it.
* Flash attention ``auto``: on when the backend supports the layer's head sizes and cache types
  (ggml-cuda/fattn.cu ``ggml_cuda_get_best_fattn_kernel``: K=V head dims 40-256; 192/128 only with a
  GQA ratio divisible by 8; K and V of one type); a quantized V cache requires it.
* Compute buffer: sched_reserve reserves one ubatch of n_ubatch tokens attending over the full cache,
  every row producing logits; ggml-alloc reuses memory, so the buffer is the peak of what is live at
  once, not a sum of layers. Without flash attention the F32 KQ matrix ``n_head x n_kv x n_ubatch``
  dominates at long contexts; with it, the F32 logits ``n_vocab x n_ubatch``. Checked against
  llama.cpp's own estimator (llama-fit-params, b10470) on 90 configurations:
  benchmarks/llamacpp/fit_sweep_cpu.tsv.
* Placement: ``-ngl N`` puts the output layer and the last N-1 repeating layers on the GPU
  (llama-model.cpp ``i_gpu_start = n_layer + 1 - n_gpu_layers``); token_embd always stays in host RAM;
  a tied output head is a GPU copy of the embedding. KV of CPU layers stays in host RAM.
  ``--n-cpu-moe N`` keeps the experts of the first N layers in host RAM; the scheduler then copies one
  layer's experts into the GPU compute buffer for prompt batches (ggml-backend.cpp op offload, batch >= 32).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from llm_mem.choices import FlashAttn, KvDtype
from llm_mem.errors import UsageError
from llm_mem.estimators.kv_cache import KvCache, kv_bits, kv_widths, layer_bytes, state_bytes
from llm_mem.runtimes import EngineMemory, EngineSettings, Part
from llm_mem.spec import ModelSpec
from llm_mem.units import MIB
from llm_mem.workload import Workload

VERSION = "llama.cpp b10470"
DEFAULT_UBATCH = 512  # common/common.h n_ubatch
DEFAULT_BATCH = 2048  # common/common.h n_batch
CELL_PAD = 256  # llama-context.cpp: cparams.n_ctx = GGML_PAD(cparams.n_ctx, 256)
# --fit leaves this much free per device when it chooses -ngl / -c itself (common/common.h fit_params_target)
FIT_TARGET = 1024 * MIB
# ggml-cuda/fattn.cu: head sizes with a flash-attention kernel when K and V have the same size
_FA_HEAD_DIMS = frozenset({40, 64, 72, 80, 96, 112, 128, 256})
# ggml-backend.cpp GGML_OP_OFFLOAD_MIN_BATCH: CPU-resident weights are copied to the GPU for batches >= 32
OP_OFFLOAD_MIN_BATCH = 32
_CACHE_TYPE = {KvDtype.fp16: "f16", KvDtype.bf16: "bf16", KvDtype.fp32: "f32"}


def cache_type(d: KvDtype) -> str:
    """llama.cpp's name for a cache type (-ctk / -ctv values)."""
    return _CACHE_TYPE.get(d, str(d))


def pad(n: int, to: int = CELL_PAD) -> int:
    return -(-n // to) * to


def _backend(gpu_vendor: str | None) -> str:
    """The ggml backend llama.cpp uses on this GPU: CUDA (also HIP for AMD), Metal, or the CPU."""
    return {"nvidia": "cuda", "amd": "cuda", "apple": "metal", None: "cuda"}.get(gpu_vendor, "cpu")


def flash_attn_supported(spec: ModelSpec, k: KvDtype, v: KvDtype, backend: str) -> tuple[bool, str]:
    """Whether llama.cpp's auto flash attention turns on, and why not when it does not."""
    if backend != "cuda":
        return True, ""
    if k != v:
        return False, "K and V cache types differ (CUDA's flash-attention kernels need one type)"
    if spec.mla is not None:
        return True, ""  # 576/512 MLA kernels, with n_head query heads per KV head
    dk, dv = spec.head_dim, spec.v_head_dim or spec.head_dim
    gqa = spec.num_heads // max(spec.num_kv_heads, 1)
    if dk == dv and dk in _FA_HEAD_DIMS:
        return True, ""
    if (dk, dv) == (192, 128) and gqa % 8 == 0:
        return True, ""
    if (dk, dv) == (320, 256) and gqa % 32 == 0:
        return True, ""
    return False, f"no CUDA flash-attention kernel for head size {dk}/{dv} (GQA ratio {gqa})"


@dataclass(frozen=True)
class Settings:
    """llama-server's settings for a workload, defaults resolved."""

    n_seq: int  # slots (-np)
    n_ctx_seq: int  # cells per slot
    n_ubatch: int
    n_batch: int
    flash_attn: bool
    k: KvDtype
    v: KvDtype
    gpu_layers: int  # -ngl, counting the output layer
    cpu_moe_layers: int  # --n-cpu-moe


def resolve(spec: ModelSpec, w: Workload, gpu_vendor: str | None) -> tuple[Settings, list[str]]:
    """llama-server's settings for a workload, as the printed command sets them."""
    notes: list[str] = []
    n_seq = w.parallel or w.batch
    n_ctx = pad(w.context * n_seq)
    n_batch = min(w.batch_size or DEFAULT_BATCH, n_ctx)  # llama-context.cpp clamps n_batch to n_ctx
    n_ubatch = min(w.ubatch_size or DEFAULT_UBATCH, n_batch)
    k = v = w.kv_dtype
    quant_v = v in (KvDtype.q8_0, KvDtype.q5_1, KvDtype.q5_0, KvDtype.q4_1, KvDtype.iq4_nl, KvDtype.q4_0)
    ok, why = flash_attn_supported(spec, k, v, _backend(gpu_vendor))
    if w.flash_attn is FlashAttn.off:
        if quant_v:
            raise UsageError(f"llama.cpp: a quantized V cache ({v}) requires flash attention",
                             "drop --flash-attn off, or use an f16 cache")
        fa = False
    elif w.flash_attn is FlashAttn.on or ok:
        fa = True
    else:
        if quant_v:
            raise UsageError(f"llama.cpp: a quantized V cache ({v}) requires flash attention, and {why}",
                             "use --kv-dtype fp16")
        fa = False
        notes.append(f"llama.cpp's --flash-attn auto turns it off here: {why}")
    n_layer = spec.num_layers
    gpu_layers = n_layer + 1 if w.n_gpu_layers is None else min(w.n_gpu_layers, n_layer + 1)
    return Settings(n_seq, pad(n_ctx // n_seq), n_ubatch, n_batch, fa, k, v, gpu_layers, w.n_cpu_moe or 0), notes


def cells_per_layer(spec: ModelSpec, s: Settings) -> list[int]:
    """KV cells each layer holds, all slots together (0 for layers without KV)."""
    full = s.n_ctx_seq * s.n_seq
    swa = pad(min(s.n_ctx_seq, spec.sliding_window + s.n_ubatch)) * s.n_seq if spec.sliding_window else full
    return [0 if not own else swa if kind == "sliding" else full  # no KV: recurrent / linear / shared-KV layers
            for kind, own in zip(spec.layer_types, _kv_layers(spec))]


@lru_cache(maxsize=64)
def _kv_layers(spec: ModelSpec) -> tuple[bool, ...]:
    """spec.kv_layers, which rebuilds its tuple on every read (cached: a frozen spec's layers do not change;
    the planner asks at every context it tries)."""
    return spec.kv_layers


def compute_buffer(spec: ModelSpec, s: Settings) -> int:
    """The CUDA compute buffer: the largest of the output, attention and FFN stages of one ubatch
    (ggml-alloc reuses memory between them). Fitted term by term to llama.cpp's own estimator
    (benchmarks/llamacpp/fit_sweep_cpu.tsv, 90 configurations of 5 architectures):
    * output: F32 logits of every ubatch row plus two hidden-width rows (4 x ub x (n_vocab + 2 h));
      absorbed MLA keeps a 2 x n_head x kv_lora_rank buffer per row live there too;
    * attention without flash attention: the F32 KQ matrix n_head x n_kv x ub, its F32 mask
      n_kv x ub, and q/k/v/residual rows; with flash attention neither KQ nor mask grows with n_kv;
    * FFN: gate, up and activation rows (MoE: of every routed expert of the token)."""
    ub, h = s.n_ubatch, spec.hidden_size
    a, kvh, d = spec.num_heads, spec.num_kv_heads, spec.head_dim
    n_kv_stream = s.n_ctx_seq  # cells of one stream (slot); KQ and mask are per stream
    out = 4 * ub * (spec.vocab_size + 2 * h)
    if spec.mla is not None:
        out += 4 * ub * 2 * a * spec.mla.kv_lora_rank
    rows = 4 * ub * (3 * h + (a + 2 * kvh) * d)
    attn = rows if s.flash_attn else rows + 4 * a * n_kv_stream * ub + 4 * n_kv_stream * ub
    moe = spec.moe
    if moe is not None and any(moe.moe_layers):
        ffn = 4 * ub * (h + moe.num_experts + moe.top_k * 3 * moe.expert_intermediate_size
                        + 3 * moe.shared_intermediate_size)
    else:
        ffn = 4 * ub * (h + 3 * spec.intermediate_size)
    return max(out, attn, ffn)


@dataclass(frozen=True)
class Placement:
    """Where llama.cpp puts the weights under -ngl and --n-cpu-moe."""

    gpu_weights: int
    host_weights: int
    gpu_layers: frozenset[int]  # repeating layers on the GPU
    expert_copy: int  # bytes of one CPU layer's experts copied into the compute buffer


def place(spec: ModelSpec, s: Settings, per_layer: list[int], experts_per_layer: list[int], embedding: int,
          lm_head: int, other: int) -> Placement:
    """The GPU and host shares of the weights."""
    n = spec.num_layers
    on_gpu = frozenset(range(n + 1 - s.gpu_layers, n)) if s.gpu_layers > 0 else frozenset()
    cpu_experts = set(range(min(s.cpu_moe_layers, n)))
    gpu = host = 0
    copy = 0
    for i in range(n):
        if i in on_gpu:
            moved = experts_per_layer[i] if i in cpu_experts else 0
            gpu += per_layer[i] - moved
            host += moved
            copy = max(copy, moved)
        else:
            host += per_layer[i]
    host += embedding  # token_embd stays on the CPU ("very little benefit to offloading the input layer")
    if s.gpu_layers >= 1:
        gpu += (lm_head or embedding) + other  # output head (a tied head is a GPU copy of token_embd) + norm
    else:
        host += lm_head + other
    return Placement(gpu, host, on_gpu, copy if s.n_ubatch >= OP_OFFLOAD_MIN_BATCH else 0)


def inference(spec: ModelSpec, w: Workload, gpu_vendor: str | None, per_layer: list[int],
              experts_per_layer: list[int], embedding: int, lm_head: int, other: int) -> EngineMemory:
    """What llama-server allocates on the GPU (components) and in host RAM (host_bytes)."""
    s, notes = resolve(spec, w, gpu_vendor)
    if spec.encoder:  # llama-model.cpp create_memory: no memory (KV cache) for the BERT-type encoders
        notes.append("encoder-only model (bidirectional attention): llama.cpp keeps no KV cache")
    cells = cells_per_layer(spec, s)
    widths = kv_widths(spec)
    kb, vb = kv_bits(s.k), kv_bits(s.v)
    pl = place(spec, s, per_layer, experts_per_layer, embedding, lm_head, other)
    # recurrent layers keep one F32 state per sequence slot (llama-model.cpp create_memory: recurrent
    # type_r / type_s GGML_TYPE_F32, llama_memory_recurrent mem_size = max(1, n_seq_max))
    states = state_bytes(spec, s.n_seq, 32.0, trim=1)
    ref = Settings(1, pad(max(1024, s.n_ubatch)), s.n_ubatch, s.n_batch, s.flash_attn, s.k, s.v, s.gpu_layers, 0)
    tokens_1k = [min(c, 1024) for c in cells_per_layer(spec, ref)]
    # layer_bytes by cell count, each count sized once: the layers share a handful of counts
    sized = {c: layer_bytes(widths, c, kb, vb) for c in {*cells, *tokens_1k}}
    per_layer_kv = [sized[c] + st for c, st in zip(cells, states)]
    gpu_kv = sum(b for i, b in enumerate(per_layer_kv) if i in pl.gpu_layers)
    host_kv = sum(per_layer_kv) - gpu_kv
    attn_layers = sum(_kv_layers(spec))
    kv = KvCache(gpu_kv, layer_bytes(widths, attn_layers, kb, vb), sum(sized[t] for t in tokens_1k), per_layer_kv,
                 [c // s.n_seq for c in cells], widths.latent,
                 f"{s.n_seq} slot(s) x {s.n_ctx_seq:,} cells (-c {s.n_ctx_seq * s.n_seq} -np {s.n_seq}), "
                 f"K {cache_type(s.k)}, V {cache_type(s.v)}" + (f"; {host_kv / 1e9:.2f} GB of it in host RAM"
                                                                  if host_kv else ""))
    compute = compute_buffer(spec, s) + pl.expert_copy
    output_buffer = 4 * spec.vocab_size * s.n_seq  # host: logits of n_seq rows (llama_context output buffer)
    parts = [Part("activations", compute if s.gpu_layers else 0,
                  f"CUDA compute buffer for n_ubatch={s.n_ubatch}, flash attention {'on' if s.flash_attn else 'off'}"
                  + (f", plus one CPU layer's experts copied in ({pl.expert_copy / 1e9:.2f} GB)" if pl.expert_copy
                     else "")),
             Part("runtime_overhead", 0, "llama.cpp allocates exact buffers; the CUDA context is outside the "
                  "GPU budget")]
    if w.n_gpu_layers is not None or s.cpu_moe_layers:
        notes.append(f"-ngl {s.gpu_layers}: {len(pl.gpu_layers)}/{spec.num_layers} repeating layers"
                     + (" and the output layer" if s.gpu_layers else "") + " on the GPU"
                     + (f"; experts of the first {s.cpu_moe_layers} layers in host RAM" if s.cpu_moe_layers else ""))
    settings = EngineSettings(runtime="llamacpp", version=VERSION, flash_attn=s.flash_attn, n_ctx=s.n_ctx_seq * s.n_seq,
                              n_parallel=s.n_seq, n_ubatch=s.n_ubatch, n_batch=s.n_batch, n_gpu_layers=s.gpu_layers,
                              n_cpu_moe=s.cpu_moe_layers or None, cache_type_k=cache_type(s.k),
                              cache_type_v=cache_type(s.v))
    return EngineMemory(kv=kv, parts=parts, settings=settings, notes=notes,
                        host_bytes=pl.host_weights + host_kv + output_buffer + (0 if s.gpu_layers else compute),
                        gpu_weights=pl.gpu_weights)
