"""Training memory: optimizer states per trainable element, and the activations a training step
saves for backward (with or without checkpointing), per layer and outside the layers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llm_mem.errors import UsageError
from llm_mem.estimators.saved import CUDA, Kernels, Replay, Trainable
from llm_mem.params import Tensor
from llm_mem.spec import ModelSpec
from llm_mem.workload import Workload

# ---- optimizers: state bytes per trainable element ---------------------------------------------
# torch.optim.AdamW keeps exp_avg and exp_avg_sq in the parameter's dtype (torch/optim/adamw.py).
# bitsandbytes 8-bit Adam: two uint8 states + one fp32 absmax per 2048-element block each
# (Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization", block size 2048);
# tensors under 4096 elements keep 32-bit states (bnb optimizer `min_8bit_size=4096`).
BNB_BLOCK = 2048
BNB_MIN_8BIT = 4096
# Lion keeps one momentum buffer (Chen et al. 2023, arXiv:2302.06675, Algorithm 2).
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit", "adafactor", "sgd", "sgd-momentum", "lion")


def optimizer_state_bytes(tensors: list[Tensor], optimizer: str, state_bytes: int) -> int:
    """Optimizer state bytes for the trainable `tensors`; `state_bytes` is the fp state width."""
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {optimizer!r}", f"choose one of {', '.join(OPTIMIZERS)}")
    total = 0
    for t in tensors:
        n = t.numel
        if optimizer == "adamw":
            total += 2 * n * state_bytes
        elif optimizer in ("adamw-8bit", "paged-adamw-8bit"):
            per = n // t.copies
            if per < BNB_MIN_8BIT:
                total += 2 * n * 4
            else:
                total += t.copies * 2 * (per + math.ceil(per / BNB_BLOCK) * 4)
        elif optimizer == "adafactor":
            # HF transformers Adafactor (beta1=None default): factored second moment, rows + columns
            # for matrices (Shazeer & Stern 2018, arXiv:1804.04235, sec. 3), full for vectors; fp32.
            if len(t.shape) >= 2:
                total += t.copies * (t.shape[0] + t.shape[1]) * 4
            else:
                total += n * 4
        elif optimizer in ("sgd-momentum", "lion"):
            total += n * state_bytes
    return total


# ---- activations saved for backward ------------------------------------------------------------
FULL = Trainable()  # full fine-tuning: every weight trains
@dataclass(frozen=True)
class SavedActivations:
    """Bytes autograd keeps between forward and backward, and the transients around them."""

    per_layer: int  # the largest decoder layer, everything saved
    layers_total: int  # all layers (checkpointed: only each layer's input)
    logits: int  # the logits' peak in the loss's backward (the `logits` component)
    recompute: int  # the transient of recomputing one layer under checkpointing
    outside: int  # embeddings, final norm, head input, targets
    logits_saved: int = 0  # of `logits`, what the loss saves for backward (fp32 log-softmax, soft-cap tanh)


def trainable(spec: ModelSpec, w: Workload, targets: tuple[str, ...] | None = None) -> Trainable:
    """What trains in a workload: every weight, or the LoRA adapters PEFT puts on ``targets``."""
    if w.train is None or w.train == "full":
        return FULL
    from llm_mem.estimators.lora import lora_target_modules, resolve_targets

    mods = lora_target_modules(spec, targets or resolve_targets(spec, w.lora_targets)[0])
    return Trainable(full=False, adapted=frozenset((m.layer, m.name) for m in mods if m.copies == 1),
                     experts_adapted=frozenset(m.layer for m in mods if m.copies > 1 and m.layer is not None),
                     rank=w.lora_rank, dropout=w.lora_dropout)


def saved_activations(spec: ModelSpec, b: int, s: int, attention: str, checkpointing: bool, elem: int = 2,
                      train: Trainable = FULL, kernels: Kernels = CUDA) -> SavedActivations:
    """Saved-for-backward bytes for a batch of `b` x `s` tokens (llm_mem.estimators.saved replays each
    layer; checkpointing keeps each layer's input and recomputes one layer at a time in backward)."""
    from llm_mem.estimators.saved_blocks import embeddings, head, layer

    a, T = spec.num_heads, b * s
    out = Replay(None, train, elem, kernels, spec.training.norm_fp32_scale)
    x = embeddings(out, spec, input_grads=checkpointing)
    per: list[int] = []
    for i in range(spec.num_layers):
        r = Replay(i, train, elem, kernels, spec.training.norm_fp32_scale)
        x = layer(r, spec, attention, b, x)
        per.append(r.cost.bytes(b, s, a))
    _, saved_per_token = head(out, spec, x)
    # Peak in the cross-entropy backward: bf16 logits (kept by the model output) + the fp32 log-softmax
    # saved for the loss + two fp32 gradients (of the log-softmax and of the upcast) = 14 bytes per logit;
    # the forward's fp32 upcast is already freed (measured with --verify, benchmarks/verify/); Gemma-2's
    # soft-capping keeps its tanh output too.
    soft = spec.vocab_size * elem if spec.training.logit_softcap else 0
    logit_peak = T * (spec.vocab_size * (elem + 4 + 4 + 4) + soft)
    outside = out.cost.bytes(b, s, a)
    biggest = max(per)
    if checkpointing:  # each layer's input; GPT-2's eager mask, a positional argument, once
        mask = b * s * s * elem if spec.training.ckpt_mask_arg and attention == "eager" else 0
        return SavedActivations(biggest, spec.num_layers * T * spec.hidden_size * elem + mask, logit_peak, biggest,
                                outside, int(T * saved_per_token))
    return SavedActivations(biggest, sum(per), logit_peak, 0, outside, int(T * saved_per_token))
