"""Megatron-LM's model parallelism for training, per GPU: tensor parallel (``--tensor-model-parallel-size``),
sequence parallel (``--sequence-parallel``) and context parallel (``--context-parallel-size``), with data
parallelism (and ``--zero``, Megatron's distributed optimizer being ZeRO-1's sharding) over the rest of
``--gpus``.

Modelled on Megatron-LM core 0.20.0 (NVIDIA/Megatron-LM at d98e8a6, Aug 2026):

* Weights (``megatron/core/tensor_parallel/layers.py``): ``ColumnParallelLinear`` splits the output dim
  (q, k, v or the fused qkv, gate, up; its bias too), ``RowParallelLinear`` the input dim (o, down; its bias
  is replicated); ``VocabParallelEmbedding`` and the output layer split the vocabulary, padded to a multiple
  of ``--make-vocab-size-divisible-by`` (128) x TP (``megatron/training/vocab_utils.py``
  ``calculate_padded_vocab_size``). MLA's down projections are ``parallel_mode='duplicated'``
  (``megatron/core/transformer/multi_latent_attention.py``); norms and the MoE router are replicated; experts
  are split like the MLP (expert TP defaults to TP).
* Activations (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
  arXiv:2205.05198, sec. 4): the tensors between a column- and a row-parallel linear (heads, the MLP's
  intermediate width) are split by TP; the residual stream, norms and dropout masks are replicated
  (the paper's ``10 sbh``) unless sequence parallelism splits them along the sequence too. Each layer is
  the op-by-op replay of llm_mem.estimators.saved with every tensor tagged (``Val.split``).
* Context parallelism splits the sequence into 2 x CP chunks (``megatron/core/utils.py``
  ``get_batch_on_this_cp_rank``): a rank keeps s/CP tokens' activations and attends to all s keys through
  Transformer Engine's ring attention (a flash/fused kernel: no score matrix); model states are replicated
  over CP like data parallelism, and the gradients are reduced over the DP x CP group.
* Checks of ``megatron/core/transformer/transformer_config.py``: heads and query groups (KV heads)
  divisible by TP; ``megatron/training/arguments.py`` turns sequence parallelism off at TP 1 (refused here:
  never silently ignored).
"""

from __future__ import annotations

import math

from llm_mem.dtypes import FLOAT_BYTES
from llm_mem.errors import CombinationError
from llm_mem.estimators.model_states import ModelStates, State
from llm_mem.estimators.saved import Split
from llm_mem.estimators.training import optimizer_state_bytes
from llm_mem.mixers import MIXER_LINEAR_ROLES
from llm_mem.params import Tensor, inventory
from llm_mem.spec import ModelSpec
from llm_mem.workload import MAX_GPUS, Workload

# Megatron-LM --make-vocab-size-divisible-by default (megatron/training/arguments.py): the vocabulary is
# padded to a multiple of this x TP.
VOCAB_DIVISIBLE_BY = 128
# Megatron-LM's --optimizer choices (megatron/training/arguments.py): adam (decoupled weight decay: AdamW) and
# sgd (--sgd-momentum 0.9 by default).
MEGATRON_OPTIMIZERS = frozenset({"adamw", "sgd-momentum"})
COLUMN_ROLES = frozenset({"attn_q", "attn_k", "attn_v", "attn_qkv", "attn_q_b", "attn_kv_b", "mlp_gate", "mlp_up",
                          "expert_gate", "expert_up", "shared_gate", "shared_up"})
ROW_ROLES = frozenset({"attn_o", "mlp_down", "expert_down", "shared_down"})
VOCAB_ROLES = frozenset({"embed", "lm_head"})


def split(w: Workload) -> Split:
    """The workload's tensor/sequence/context parallel split."""
    return Split(w.tensor_model_parallel_size, w.sequence_parallel, w.context_parallel_size)


def check_workload(w: Workload) -> None:
    """The combinations Megatron's layout refuses, or that are not modelled, whatever the model."""
    from llm_mem.choices import Attention, TrainMode

    t, c = w.tensor_model_parallel_size, w.context_parallel_size
    if w.sequence_parallel and t == 1:
        raise CombinationError("sequence_parallel", "{} splits the tensor-parallel ranks' residual stream",
                               "add --tensor-model-parallel-size 2 or more (Megatron turns it off at TP 1)")
    if t * c == 1:
        return
    flag = "tensor_model_parallel_size" if t > 1 else "context_parallel_size"
    if w.train is not TrainMode.full:
        raise CombinationError(flag, f"{{}} is modelled for full training (Megatron-LM); --train {w.train} under "
                               "tensor or context parallelism is not", "use --zero or --fsdp to shard it")
    if w.fsdp is not None:
        raise CombinationError(flag, "{} with --fsdp (torchtitan's 2-D/3-D meshes) is not modelled",
                               "use Megatron's data parallelism: --gpus with --zero 0 or 1")
    if t * c > MAX_GPUS:
        raise CombinationError(flag, f"{{}}: TP x CP = {t * c:,} GPUs is more than {MAX_GPUS:,}")
    if w.gpus % (t * c):
        raise CombinationError("gpus", f"{{}} {w.gpus} is not a multiple of TP x CP = {t * c}",
                               "Megatron's data parallelism is --gpus / (TP x CP)")
    if c > 1:
        if w.attention is Attention.eager:
            raise CombinationError(flag, "{} runs ring attention in a flash/fused kernel; eager attention has "
                                   "none", "drop --attention eager")
        if w.context % (2 * c):
            raise CombinationError(flag, f"{{}} {c} needs --context divisible by 2 x {c} (the sequence is split "
                                   f"into 2 x CP chunks)", f"use --context {w.context // (2 * c) * 2 * c or 2 * c}")
    if w.zero > 1 or w.offload != "none":
        raise CombinationError("zero" if w.zero > 1 else "offload", "{}: Megatron shards the optimizer states and "
                               "fp32 main parameters over the data-parallel ranks (its distributed optimizer), "
                               "not the gradients or weights", "use --zero 1 for --use-distributed-optimizer")
    if w.optimizer not in MEGATRON_OPTIMIZERS:
        raise CombinationError("optimizer", f"{{}} {w.optimizer}: Megatron-LM's --optimizer is adam (AdamW) or sgd "
                               "(with momentum)", "use --optimizer adamw or sgd-momentum")
    for f in ("trainer", "fused_ce", "chunked_ce", "activation_offloading", "optimizer_in_bwd"):
        if getattr(w, f):  # the values, not given(): training_defaults fills them with False
            raise CombinationError(f, "{} is a single-GPU/FSDP framework's feature; Megatron layouts are "
                                   "sized without it", "drop it")


def check(spec: ModelSpec, w: Workload) -> None:
    """What Megatron refuses for this model (transformer_config.py __post_init__)."""
    t = w.tensor_model_parallel_size
    for n, what in ((spec.num_heads, "attention heads"), (spec.num_kv_heads, "KV heads (query groups)")):
        if n % t:
            raise CombinationError("tensor_model_parallel_size", f"{{}} {t} does not divide the model's {n} {what}",
                                   "Megatron splits whole heads across the tensor-parallel ranks")
    if t > 1 and spec.mixers is not None and any(r.role in MIXER_LINEAR_ROLES for r in inventory(spec)):
        raise CombinationError("tensor_model_parallel_size", "{}: tensor parallelism of state-space and linear-"
                               "attention layers is not modelled", "size it with --zero or --fsdp")


def padded_vocab(v: int, t: int) -> int:
    """Megatron's padded vocabulary: the next multiple of 128 x TP."""
    m = VOCAB_DIVISIBLE_BY * t
    return math.ceil(v / m) * m


def rank_tensors(spec: ModelSpec, t: int) -> list[Tensor]:
    """The parameters one tensor-parallel rank holds."""
    tensors = inventory(spec)
    column = {x.name.rsplit(".", 1)[0] for x in tensors if x.role in COLUMN_ROLES}
    out = []
    for x in tensors:
        shape = x.shape
        if x.role in VOCAB_ROLES and len(shape) == 2:
            shape = (padded_vocab(shape[0], t) // t, shape[1])
        elif x.role in COLUMN_ROLES or (x.name.endswith(".bias") and x.name.rsplit(".", 1)[0] in column):
            shape = (math.ceil(shape[0] / t), *shape[1:])
        elif x.role in ROW_ROLES and len(shape) == 2:
            shape = (shape[0], math.ceil(shape[1] / t))
        out.append(x._replace(shape=shape))
    return out


def describe(w: Workload) -> str:
    """The layout in one line, Megatron's flags."""
    t, c = w.tensor_model_parallel_size, w.context_parallel_size
    parts = [f"TP {t}" + (" with sequence parallel" if w.sequence_parallel else "")] if t > 1 else []
    parts += [f"CP {c}"] if c > 1 else []
    acts = [f"heads and MLP width 1/{t}"] if t > 1 else []
    acts += [f"the residual stream {'1/' + str(t) if w.sequence_parallel else 'replicated'}"] if t > 1 else []
    acts += [f"1/{c} of the tokens"] if c > 1 else []
    return (f"Megatron-LM layout: {' x '.join(parts)} x DP {w.gpus // (t * c)} = {w.gpus} GPUs; each GPU holds "
            f"1/{t} of the split weights; activations: {', '.join(acts)}")


def model_states(spec: ModelSpec, w: Workload, weights_format: str) -> ModelStates:
    """One rank's model states as Megatron keeps them (docs/user-guide/features/dist_optimizer.md: bytes per
    parameter 18 / 6 + 12/d for bf16 parameters with fp32 main gradients, 20 / 4 + 16/d for fp16, 16 / 8 + 8/d
    for fp32; d = the DP x CP ranks the distributed optimizer (``--zero 1``) shards over,
    megatron/core/optimizer/__init__.py ``dp_cp_group``). bf16 training accumulates and all-reduces gradients
    in fp32 (arguments.py: accumulate_allreduce_grads_in_fp32 for bf16), fp16 keeps fp16 gradients and the
    optimizer an fp32 copy of them."""
    tensors = rank_tensors(spec, w.tensor_model_parallel_size)
    p = sum(x.numel for x in tensors)
    d = w.gpus // w.tensor_model_parallel_size
    n = d if w.zero == 1 else 1
    part = f", 1/{n} partition" if n > 1 else ""
    opt = State("optimizer_states", optimizer_state_bytes(tensors, w.optimizer, 4) // n,
                f"{w.optimizer}, fp32{part}")
    if w.mixed_precision == "none" or FLOAT_BYTES.get(weights_format, 2) == 4:
        states = [State("weights", 4 * p, "fp32 parameters"), State("gradients", 4 * p, "fp32 main gradients"), opt]
    elif w.mixed_precision == "fp16":
        states = [State("weights", 2 * p, "fp16 parameters"),
                  State("gradients", 2 * p + 4 * p // n, f"fp16 gradients + the optimizer's fp32 copy{part}"), opt,
                  State("master_weights", 4 * p // n, f"fp32 main parameters{part}")]
    else:
        states = [State("weights", 2 * p, "bf16 parameters"),
                  State("gradients", 4 * p, "fp32 main gradients (accumulated and reduced in fp32)"), opt,
                  State("master_weights", 4 * p // n, f"fp32 main parameters{part}")]
    per = sum(st.bytes for st in states) / p
    return ModelStates(states, 0, [describe(w), f"model states: {per:.1f} bytes per parameter of this rank's "
                                   f"{p:,} (Megatron's {'distributed ' if n > 1 else ''}optimizer)"])
