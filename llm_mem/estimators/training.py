"""Training memory: optimizer states per trainable element, and the activations a training step
saves for backward (with or without checkpointing), per layer and outside the layers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llm_mem.errors import UsageError
from llm_mem.estimators.saved import CUDA, NO_SPLIT, Kernels, Replay, Split, Trainable
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
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit", "paged-adamw-32bit", "adafactor", "sgd", "sgd-momentum",
              "lion")
# bitsandbytes' paged optimizers (bitsandbytes/optim/adamw.py PagedAdamW8bit / PagedAdamW32bit, is_paged=True)
# allocate their states in CUDA unified memory, which the driver evicts to host RAM under memory pressure:
# same bytes as the unpaged states, but they may spill instead of running out of memory.
PAGED_OPTIMIZERS = ("paged-adamw-8bit", "paged-adamw-32bit")


def optimizer_state_bytes(tensors: list[Tensor], optimizer: str, state_bytes: int) -> int:
    """Optimizer state bytes for the trainable `tensors`; `state_bytes` is the fp state width."""
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {optimizer!r}", f"choose one of {', '.join(OPTIMIZERS)}")
    total = 0
    for t in tensors:
        n = t.numel
        if optimizer == "adamw":
            total += 2 * n * state_bytes
        elif optimizer == "paged-adamw-32bit":  # bnb 32-bit states are fp32 whatever the parameter dtype
            total += 2 * n * 4
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
    if not w.adapters:  # full fine-tuning and RL post-training (without --use-peft) train every weight
        return FULL
    from llm_mem.estimators.frameworks import adapter_bytes
    from llm_mem.estimators.lora import lora_target_modules, resolve_targets

    mods = lora_target_modules(spec, targets or resolve_targets(spec, w.lora_targets)[0])
    # bf16 adapters (a --trainer preset's) read their bf16 input as it is: no fp32 copy per adapter
    return Trainable(full=False, autocast=adapter_bytes(w) == 2,
                     adapted=frozenset((m.layer, m.name) for m in mods if m.copies == 1),
                     experts_adapted=frozenset(m.layer for m in mods if m.copies > 1 and m.layer is not None),
                     rank=w.lora_rank, dropout=w.lora_dropout)


def saved_activations(spec: ModelSpec, b: int, s: int, attention: str, checkpointing: bool, elem: int = 2,
                      train: Trainable = FULL, kernels: Kernels = CUDA, par: Split = NO_SPLIT,
                      compiled: bool = False, expand_kv: bool = False, unsloth: bool = False) -> SavedActivations:
    """Saved-for-backward bytes for a batch of `b` x `s` tokens (llm_mem.estimators.saved replays each
    layer; checkpointing keeps each layer's input and recomputes one layer at a time in backward), on
    one rank of Megatron's tensor/sequence/context parallelism ``par``: the residual stream outside the
    layers is split by sequence parallelism and context parallelism, the logits by vocabulary (TP's
    vocab-parallel output layer and cross-entropy) and by context. ``expand_kv``: the layers are torchtune's,
    whose attention hands the kernel K and V copied to every query head; ``unsloth``: LoRA layers run Unsloth's
    fused kernels (saved_blocks.unsloth_layer)."""
    from llm_mem.estimators.saved_blocks import embeddings, head, layer

    a = spec.num_heads
    T = b * s / par.cp / (par.tp if par.sp else 1)  # tokens of one rank's residual stream
    out = Replay(None, train, elem, kernels, spec.training.norm_fp32_scale)
    x = embeddings(out, spec, input_grads=checkpointing)
    per: list[int] = []
    backward: list[int] = []  # a layer's saved bytes and its backward's own transients (where modelled)
    for i in range(spec.num_layers):
        r = Replay(i, train, elem, kernels, spec.training.norm_fp32_scale, compiled=compiled, expand_kv=expand_kv,
                   unsloth=unsloth)
        x = layer(r, spec, attention, b, x)
        per.append(r.cost.bytes(b, s, a, par))
        backward.append(per[-1] + int(r.backward_tok * T))
    _, saved_per_token = head(out, spec, x)
    # Peak in the cross-entropy backward: bf16 logits (kept by the model output) + the fp32 log-softmax
    # saved for the loss + two fp32 gradients (of the log-softmax and of the upcast) = 14 bytes per logit;
    # the forward's fp32 upcast is already freed (measured with --verify, benchmarks/verify/); Gemma-2's
    # soft-capping keeps its tanh output too.
    soft = spec.vocab_size * elem if spec.training.logit_softcap else 0
    logit_peak = int(b * s / par.cp * (spec.vocab_size * (elem + 4 + 4 + 4) + soft) / par.tp)
    outside = out.cost.bytes(b, s, a, Split(par.tp if par.sp else 1, True, par.cp))
    biggest = max(per)
    if checkpointing:  # each layer's input; GPT-2's eager mask, a positional argument, once
        mask = b * s * s * elem if spec.training.ckpt_mask_arg and attention == "eager" else 0
        return SavedActivations(biggest, int(spec.num_layers * T * spec.hidden_size * elem) + mask, logit_peak,
                                max(backward), outside, int(b * s / par.cp * saved_per_token / par.tp))
    return SavedActivations(biggest, sum(per), logit_peak, 0, outside, int(b * s / par.cp * saved_per_token / par.tp))


def compile_unmodelled(spec: ModelSpec, w: Workload) -> str | None:
    """Why --torch-compile's effect is not modelled for this model and workload, or None when it is: decoder
    layers compiled one by one (torchtune's compile_model; inductor's min-cut partitioner) were measured
    byte-exact for RMSNorm + gated-MLP layers under SDPA, dense and MoE, fused or separate projections
    (benchmarks/activations/measured_compile.json); LayerNorm, Gemma's norms and soft-capping, eager
    attention and LoRA adapters were not (GPT-2 and Gemma-2 save 30-45% less than eager, by other rules)."""
    if w.adapters:
        return "LoRA adapters under torch.compile were not measured"
    if str(w.attention) == "eager":
        return "eager attention under torch.compile was not measured (Gemma-2's differs from the dense rules)"
    tc = spec.training
    for bad, what in ((spec.norm != "rms", "LayerNorm layers"), (tc.norm_fp32_scale, "Gemma-style fp32 norms"),
                      (bool(tc.attn_softcap or tc.logit_softcap), "soft-capping"),
                      (spec.hidden_dropout > 0 or spec.attention_dropout > 0, "dropout"),
                      (spec.mlp_kind != "gated", "a non-gated MLP"), (spec.parallel_attn, "parallel attention"),
                      (spec.mla is not None, "MLA"), (bool(spec.attention_sinks), "attention sinks"),
                      (spec.mixers is not None, "state-space or linear-attention layers")):
        if bad:
            return f"{what} under torch.compile were not measured"
    return None


# ---- the loss under the training frameworks' cross-entropy kernels (issue 17) ------------------------
# Each closed form is checked against a measurement of the framework's algorithm in
# benchmarks/loss_memory/ (results.json): peak live bytes from the head's forward to the end of backward.
# torchtune LinearCrossEntropyLoss(num_output_chunks=8) (torchtune/modules/loss/cross_entropy_loss.py at
# bd2a0fc7c, the loss of every recipes/configs/llama3_1/*.yaml there).
TORCHTUNE_CE_CHUNKS = 8
# TRL SFTTrainer loss_type="chunked_nll", its default (trl/trainer/sft_config.py __post_init__ at f2cd577,
# TRL 1.10.0.dev0): 256-token chunks (trl/trainer/sft_trainer.py _CHUNKED_LM_HEAD_CHUNK_SIZE), each
# checkpointed.
TRL_CE_CHUNK_TOKENS = 256


def liger_chunk_tokens(T: int, V: int, h: int) -> int:
    """Liger's fused linear cross-entropy chunk: next_power_of_2(ceil(T / ceil(V / h))) tokens
    (src/liger_kernel/ops/fused_linear_cross_entropy.py, Liger-Kernel 0.8.2)."""
    return min(T, 1 << max(0, math.ceil(T / math.ceil(V / h)) - 1).bit_length())


def ce_logits_bytes(kind: str, T: int, V: int, h: int, elem: int, soft: bool = False) -> int:
    """Peak bytes of the output projection + cross-entropy (forward and backward) for T tokens:
    ``standard`` (transformers: 14 bytes per logit), ``chunked`` (torchtune's 8 token chunks; ``chunked_compiled``
    under its recipes' compiled loss), ``fused``
    (Liger: one chunk of bf16 logits, gradient in place) or ``trl`` (TRL's checkpointed 256-token chunks)."""
    if kind == "standard":  # bf16 logits + saved fp32 log-softmax + two fp32 gradients (see saved_activations)
        return T * (V * (elem + 4 + 4 + 4) + (V * elem if soft else 0))
    if kind == "upcast":
        # torchtune with a loss on the model output (torch.nn.CrossEntropyLoss): the output is upcast to fp32 in
        # the model (the bf16 projection freed) and deleted by the recipe after the loss, so backward holds the
        # saved fp32 log-softmax and two fp32 gradients: 12 bytes per logit (measured: benchmarks/loss_memory)
        return T * (V * (4 + 4 + 4) + (V * 4 if soft else 0))
    if kind == "chunked":
        # eager: every chunk's fp32 log-softmax stays saved until its backward (4 bytes per logit; the bf16
        # logits and their fp32 upcast are freed chunk by chunk); one chunk's backward adds two fp32 gradients
        # (of the log-softmax output and input: 4 + 4); the index_select-ed hidden states (T h elem) stay saved
        # by the projection. Measured: 5.00 bytes per logit at T=2048, V=8192, h=256 (closed form +1.2%).
        per = math.ceil(T / TORCHTUNE_CE_CHUNKS)
        return T * V * 4 + per * V * (4 + 4) + T * h * elem
    if kind == "chunked_compiled":
        # torchtune's recipes compile the chunk's upcast + cross-entropy (training.compile_loss compiles
        # compute_cross_entropy): inductor fuses the fp32 upcast into the log-softmax and saves the chunk's bf16
        # logits and its logsumexp, 2 bytes per logit (measured 2.004 with CEWithChunkedOutputLoss:
        # benchmarks/activations/measured_torchtune.json); the chunk's backward writes its gradient in bf16.
        # LinearCrossEntropyLoss (the projection inside the compiled chunk) is sized the same: the partitioner
        # does not recompute the projection's matmul, so its bf16 output is what it saves.
        per = math.ceil(T / TORCHTUNE_CE_CHUNKS)
        return T * V * elem + T * 4 + per * V * elem + T * h * elem
    if kind == "fused":
        # Liger: one chunk's logits in the input dtype (the kernel writes their gradient in place) and the
        # gradient of the hidden states, allocated whole in forward (grad_input = torch.zeros_like(_input))
        return liger_chunk_tokens(T, V, h) * V * elem + T * h * elem
    if kind == "trl":
        # one chunk recomputed in backward: fp32 logits, log-softmax, exp and entropy product and their
        # gradients (16 bytes per chunk logit, measured), the fp32 copy of the head (w.float(): V h 4), the
        # sorted hidden states and their gradient (2 T h elem). Measured 2.63 bytes per logit at T=2048, V=8192,
        # h=256 (closed form -0.0%).
        c = min(T, TRL_CE_CHUNK_TOKENS)
        return c * V * TRL_CHUNK_BYTES_PER_LOGIT + V * h * 4 + 2 * T * h * elem
    raise UsageError(f"unknown cross-entropy kind {kind!r}")


# Bytes per logit of one TRL chunk in its recomputed backward (benchmarks/loss_memory/results.json).
TRL_CHUNK_BYTES_PER_LOGIT = 16
