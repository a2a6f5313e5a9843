"""PyTorch FSDP2 (``fully_shard``) model states per GPU, beside DeepSpeed ZeRO (llm_mem.estimators.model_states).

The rules, from torch 2.13 ``torch/distributed/fsdp/_fully_shard/``:

* Sharding (``_fsdp_param.py`` ``FSDPParam._init_sharded_param``): every parameter is chunked on dim 0 with
  ``torch.chunk`` over the shard group; each rank stores the padded chunk 0 size, ``ceil(d0 / N) x rest``
  elements (a fused experts tensor ``(E, out, in)`` is chunked on its experts), in the parameter's
  *original* dtype. With ``MixedPrecisionPolicy(param_dtype=bf16)`` the original dtype is fp32 (accelerate
  upcasts trainable parameters for FSDP mixed precision), so the fp32 shard *is* the master copy: "FSDP does
  not require any extra memory to keep a high-precision copy of the parameters for the optimizer step"
  (``_fsdp_api.py`` MixedPrecisionPolicy docstring).
* Unsharded parameters (``_fsdp_collectives.py`` ``foreach_all_gather``): one group's all-gather output is
  ``N x sum(padded shard)`` elements in ``param_dtype``. Groups are what ``fully_shard`` was called on; the
  transformers recipe (accelerate's FSDP2 ``TRANSFORMER_BASED_WRAP``) makes one group per decoder layer and
  the root group (embeddings, final norm, lm_head). ``reshard_after_forward=True`` frees a layer after its
  forward and re-gathers it in backward; the root group, whose forward encloses the whole model and whose
  post-backward runs in the final callback, stays gathered for the whole step. One group is prefetched
  (forward: implicit prefetch through the all-gather stream, ``_fsdp_param_group.py``; backward:
  ``_backward_prefetch`` of the next group in reverse order), so the GPU holds the root group plus two
  layers: the one computing and the one prefetched.
* Gradients (``foreach_reduce``): a layer's unsharded gradients (``param_dtype``) live until its
  reduce-scatter; the reduce-scatter output is cast to the original dtype and accumulated into the sharded
  ``.grad`` (fp32, padded shard). The root group's gradients (lm_head, final norm) are produced first in
  backward and reduced last, so they are held while every layer runs its backward.
* Optimizer states: the optimizer sees only the sharded parameters (DTensors), so its states are sharded.
* ``CPUOffloadPolicy`` (``_fsdp_api.py``): sharded parameters, sharded gradients and the optimizer step live on
  the CPU (pinned by default); the GPU holds only the unsharded groups and gradients.
* HSDP (``--fsdp hybrid``): a 2-D mesh ``(replicate, shard)``; the shard dim is the group of
  ``--fsdp-shard-size`` GPUs and everything above is the same with N = that size.

Where it coincides with ZeRO-3 (mixed precision, AdamW, N dividing every dim 0): the fp32 master shard
(4P/N), the fp32 gradient shard (4P/N) and the optimizer states (8P/N) are DeepSpeed ZeRO-3's
``master_weights``, fp32 gradient partition and ``optimizer_states`` exactly; FSDP2 keeps no bf16
parameter partition (ZeRO-3's 2P/N: FSDP2 casts the fp32 shard at all-gather copy-in), and its unsharded
working set is the root group + two layers (ZeRO-3's estimator: 4 x the largest module).
"""

from __future__ import annotations

import math

from llm_mem.choices import Fsdp
from llm_mem.dtypes import FLOAT_BYTES
from llm_mem.estimators.model_states import ModelStates, State
from llm_mem.estimators.training import optimizer_state_bytes
from llm_mem.params import Tensor, inventory
from llm_mem.spec import ModelSpec
from llm_mem.workload import FSDP_GPUS_PER_NODE, Workload

# Decoder-layer groups held unsharded at once: the one computing and one prefetched (torch 2.13
# _fsdp_param_group.py: implicit forward prefetch keeps one all-gather in flight; pre_backward
# _backward_prefetch unshards the next group in reverse post-forward order).
FSDP_PREFETCH_LAYERS = 2


def shard_tensor(t: Tensor, n: int) -> Tensor:
    """The padded shard one rank stores: dim 0 (experts for a fused experts tensor) chunked by ``torch.chunk``
    into ``ceil(d0 / n)`` rows (FSDPParam keeps chunk 0's size for every rank, padding the last)."""
    if t.copies > 1:
        return Tensor(t.name, t.role, t.layer, t.shape, math.ceil(t.copies / n))
    if not t.shape:
        return t
    return Tensor(t.name, t.role, t.layer, (math.ceil(t.shape[0] / n), *t.shape[1:]), 1)


def sharded_params(spec: ModelSpec, n: int) -> int:
    """Elements one rank stores for the whole model (padded shards)."""
    return sum(shard_tensor(t, n).numel for t in inventory(spec))


def unit_params(spec: ModelSpec, n: int) -> tuple[int, int, int]:
    """(root group, largest decoder layer, root gradients held through backward), in elements of the
    unsharded all-gather outputs (``n`` x padded shard); the last is lm_head (or the tied embedding)
    + final norm, unpadded (gradients have the parameter's shape)."""
    groups: dict[int | None, int] = {}
    head = 0
    tied = not any(t.role == "lm_head" for t in inventory(spec))
    for t in inventory(spec):
        groups[t.layer] = groups.get(t.layer, 0) + n * shard_tensor(t, n).numel
        if t.layer is None and (t.role in ("lm_head", "norm") or (tied and t.role == "embed")):
            head += t.numel
    root = groups.pop(None, 0)
    return root, max(groups.values(), default=0), head


def _host_per_node(w: Workload, per_rank: int) -> int:
    """Pinned host RAM one node needs under CPUOffloadPolicy: each local rank's shards."""
    return min(w.gpus, FSDP_GPUS_PER_NODE) * per_rank


def _describe(w: Workload) -> str:
    n = w.shard_group
    if n == 1:
        return ("FSDP2 over one GPU (a shard group of 1 shards nothing: the unsharded copies cost extra; only "
                "--fsdp-offload saves memory)")
    if w.fsdp is Fsdp.hybrid:
        return f"FSDP2 HSDP: shard over {n} GPUs, {w.gpus // n} replicas"
    return f"FSDP2 FULL_SHARD over {n} GPUs"


def fsdp_full_states(spec: ModelSpec, w: Workload, weights_format: str) -> ModelStates:
    """Full fine-tuning under FSDP2: per-GPU sharded states plus the unsharded working set."""
    n = w.shard_group
    wbytes = FLOAT_BYTES.get(weights_format, 2)
    mixed = w.mixed_precision != "none"
    store = 4 if mixed else wbytes  # sharded parameter dtype: fp32 under mixed precision (the master copy)
    compute = 2 if mixed else wbytes  # MixedPrecisionPolicy param_dtype (bf16 / fp16), else the original
    s = sharded_params(spec, n)
    root, layer, head = unit_params(spec, n)
    gathered = compute * (root + FSDP_PREFETCH_LAYERS * layer)
    live_grads = compute * (layer + head)
    opt = optimizer_state_bytes([shard_tensor(t, n) for t in inventory(spec)], w.optimizer, store)
    cdt = "bf16" if compute == 2 else "fp32"
    sdt = "fp32" if store == 4 else "bf16"
    unsharded = f"{cdt} unsharded: root group (embeddings, final norm, lm_head) + current and prefetched layer"
    precision = ("mixed precision: the fp32 shard is the master copy, gathered in bf16" if mixed
                 else "no mixed precision: one dtype throughout")
    notes = [f"{_describe(w)} (torch 2.13 fully_shard, reshard_after_forward=True, one group per decoder layer "
             f"+ the root): each GPU stores {s:,} of {sum(t.numel for t in inventory(spec)):,} parameters "
             f"(padded dim-0 shards); {precision}"]
    if w.fsdp_offload:
        per_rank = 2 * store * s + opt
        notes.append(f"CPUOffloadPolicy: sharded {sdt} parameters, gradients and {w.optimizer} states in pinned "
                     f"host RAM ({per_rank / 1e9:.1f} GB per rank); the optimizer step runs on the CPU")
        states = [State("weights", gathered, unsharded + "; shards on the CPU"),
                  State("gradients", live_grads, f"{cdt} unsharded gradients of one layer and the root's head"),
                  State("optimizer_states", 0, f"{w.optimizer}, on the CPU (CPUOffloadPolicy)")]
        if store != compute:
            states.append(State("master_weights", 0, "fp32 parameter shards on the CPU"))
        return ModelStates(states, _host_per_node(w, per_rank), notes)
    grads = State("gradients", store * s + live_grads,
                  f"{sdt} 1/{n} shard (reduce-scatter output) + {cdt} unsharded gradients of one layer and the "
                  "root's head")
    optim = State("optimizer_states", opt, f"{w.optimizer}, 1/{n} shard")
    if store != compute:
        return ModelStates([State("weights", gathered, unsharded), grads, optim,
                            State("master_weights", store * s, f"fp32 1/{n} parameter shard (FSDP2's sharded "
                                  "parameter is the master copy)")], 0, notes)
    return ModelStates([State("weights", store * s + gathered, f"{sdt} 1/{n} shard + {unsharded}"), grads, optim],
                       0, notes)


def fsdp_lora_states(spec: ModelSpec, w: Workload, weights_bytes: int, weights_label: str,
                     targets: tuple[str, ...]) -> ModelStates:
    """LoRA / QLoRA under FSDP2: the frozen base is sharded too (and gathered group by group); only the fp32
    adapters have gradients and optimizer states, all sharded. The root group (embeddings, head: never
    quantized by bitsandbytes) is bf16; layer bytes follow the base format's average bytes per parameter."""
    from llm_mem.estimators.lora import adapter_params, lora_target_modules

    n = w.shard_group
    mods = lora_target_modules(spec, targets)
    k = sum(adapter_params(m, w.lora_rank) for m in mods)
    adapters = [Tensor("lora", "lora", None, (w.lora_rank * m.rank_mult, m.in_features + m.out_features), m.copies)
                for m in mods]
    opt = optimizer_state_bytes(adapters, w.optimizer, 4) // n  # adapters are small: no per-tensor padding
    p = sum(t.numel for t in inventory(spec))
    s = sharded_params(spec, n)
    root, layer, _ = unit_params(spec, n)
    root_params = sum(t.numel for t in inventory(spec) if t.layer is None)
    root_bytes = min(2 * root_params, weights_bytes)
    per_layer_param = (weights_bytes - root_bytes) / max(p - root_params, 1)  # the format's bytes per parameter
    base_shard = int(weights_bytes * s / p)
    gathered = int(2 * root + FSDP_PREFETCH_LAYERS * layer * per_layer_param)
    adapter_shard = 4 * math.ceil(k / n)
    notes = [f"{_describe(w)}: the frozen base ({weights_label}) is sharded and gathered group by group; "
             f"{k:,} LoRA parameters train (fp32 adapters, gradients and {w.optimizer} states, 1/{n} each)"]
    unsharded = "root group (embeddings, head) + current and prefetched layer, unsharded"
    if w.fsdp_offload:
        per_rank = base_shard + 2 * adapter_shard + opt
        notes.append(f"CPUOffloadPolicy: base and adapter shards, gradients and optimizer states in pinned host "
                     f"RAM ({per_rank / 1e9:.2f} GB per rank)")
        return ModelStates([State("weights", gathered, f"frozen base: {unsharded}; shards on the CPU"),
                            State("lora_adapters", 0, "fp32 adapter shards on the CPU"),
                            State("gradients", 0, "adapter gradient shards on the CPU"),
                            State("optimizer_states", 0, f"{w.optimizer}, on the CPU")],
                           _host_per_node(w, per_rank), notes)
    return ModelStates([State("weights", base_shard + gathered, f"frozen base, 1/{n} shard + {unsharded}"),
                        State("lora_adapters", adapter_shard, f"fp32 adapters, 1/{n} shard"),
                        State("gradients", adapter_shard, f"adapter gradients, fp32, 1/{n} shard"),
                        State("optimizer_states", opt, f"{w.optimizer}, 1/{n} shard")], 0, notes)
