"""Training memory: trainable parameters, gradients, optimizer states, master weights, LoRA
adapters, activations saved for backward (with/without checkpointing) and ZeRO partitioning."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llm_mem.errors import UsageError
from llm_mem.params import EXPERT_ROLES, LINEAR_ROLES, Tensor, inventory
from llm_mem.spec import ModelSpec

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


# ---- LoRA ---------------------------------------------------------------------------------------
_TARGET_ROLES = {
    "q_proj": {"attn_q", "attn_q_b"}, "k_proj": {"attn_k"}, "v_proj": {"attn_v"}, "o_proj": {"attn_o"},
    "qkv_proj": {"attn_qkv"}, "query_key_value": {"attn_qkv"}, "dense": {"attn_o"},
    "q_a_proj": {"attn_q_a"}, "kv_a_proj_with_mqa": {"attn_kv_a"}, "kv_b_proj": {"attn_kv_b"},
    "gate_proj": {"mlp_gate", "shared_gate"}, "up_proj": {"mlp_up", "shared_up"},
    "down_proj": {"mlp_down", "shared_down"}, "experts": {"expert_gate", "expert_up", "expert_down"},
    "all-linear": set(LINEAR_ROLES),
}


def lora_target_tensors(spec: ModelSpec, targets: tuple[str, ...]) -> list[Tensor]:
    """Linear weights PEFT would wrap for `targets` (module names as in PEFT's target_modules).
    Fused layouts (qkv_proj, query_key_value) match their unfused names too. Routed experts are
    targeted only when named explicitly ("experts"), as PEFT's default does not reach fused experts."""
    roles: set[str] = set()
    for name in targets:
        if name not in _TARGET_ROLES:
            raise UsageError(f"unknown LoRA target {name!r}", f"choose from {', '.join(_TARGET_ROLES)}")
        roles |= _TARGET_ROLES[name]
    if roles & {"attn_q", "attn_k", "attn_v"}:
        roles.add("attn_qkv")
    if "mlp_up" in roles:
        roles.add("mlp_up")
    return [t for t in inventory(spec) if t.role in roles and len(t.shape) == 2]


def lora_params(spec: ModelSpec, targets: tuple[str, ...], rank: int) -> int:
    """LoRA A (r x in) + B (out x r) per targeted weight (Hu et al. 2021, arXiv:2106.09685)."""
    return sum(rank * (t.shape[0] + t.shape[1]) * t.copies for t in lora_target_tensors(spec, targets))


# ---- activations saved for backward ------------------------------------------------------------
@dataclass(frozen=True)
class SavedActivations:
    """Bytes autograd keeps between forward and backward."""

    per_layer: int  # one decoder layer, everything saved
    layers_total: int  # all layers (checkpointed: only layer inputs)
    logits: int  # logits and loss buffers
    recompute: int  # the transient of recomputing one layer under checkpointing
    outside: int  # embedding output, final norm


def saved_per_layer(spec: ModelSpec, b: int, s: int, attention: str, elem: int = 2, lora: bool = False) -> int:
    """Bytes one decoder layer saves for backward, derived from its ops (Korthikanti et al. 2022,
    arXiv:2205.05198, sec. 4.1, re-derived for GQA, SwiGLU, MoE and MLA blocks):
    norms save their input and an fp32 rstd; linears save their input; SDPA/flash save q, k, v,
    output and an fp32 logsumexp; eager saves the softmax output (and dropout mask); SiLU-gating
    saves gate, up and their product; MoE saves router logits and per-expert gathered inputs."""
    h, a, kv, d = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim
    T = b * s
    norms = 2 * (T * h * elem + T * 4)  # two norms: input + fp32 rstd
    if spec.norm == "layer":
        norms = 2 * (T * h * elem + 2 * T * 4)  # LayerNorm keeps mean and rstd
    if spec.mla is not None:
        m = spec.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        proj_in = T * h * elem + T * (m.q_lora_rank or 0) * elem + T * m.kv_lora_rank * elem
        q = T * a * qk * elem
        k = T * a * qk * elem
        v = T * a * m.v_head_dim * elem
        out = T * a * m.v_head_dim * elem
    else:
        proj_in = T * h * elem  # q, k, v share one saved input
        q, k, v = T * a * d * elem, T * kv * d * elem, T * kv * d * elem
        out = T * a * d * elem
        if attention == "eager" and kv != a:
            k = v = T * a * d * elem  # repeat_kv materialises K/V per query head
    attn = proj_in + q + k + v + out
    if attention == "eager":
        # fp32 softmax output (saved by softmax) + its compute-dtype copy (saved by the matmul with V):
        # 6 bytes per score in bf16, measured with saved_tensors_hooks (benchmarks/activations)
        attn += b * a * s * s * (4 + elem)
        if spec.attention_dropout > 0:
            attn += b * a * s * s * 1 + b * a * s * s * elem  # bool mask + dropped probs
    else:
        attn += b * a * s * 4  # logsumexp (fp32)
    mlp_in = T * h * elem
    if spec.moe is not None and any(spec.moe.moe_layers):
        moe = spec.moe
        i = moe.expert_intermediate_size
        routed = T * moe.top_k
        mlp = (mlp_in + T * moe.num_experts * 4 + T * moe.top_k * 8  # router logits fp32, weights, indices
               + routed * h * elem  # gathered expert inputs
               + routed * i * elem * 3 + routed * h * elem)  # gate/up/act per routed token, expert outputs
        if moe.shared_intermediate_size:
            mlp += 3 * T * moe.shared_intermediate_size * elem
    elif spec.mlp_kind == "gated":
        mlp = mlp_in + 3 * T * spec.intermediate_size * elem
    else:
        mlp = mlp_in + 2 * T * spec.intermediate_size * elem  # fc1 output (act input) + act output
    if spec.hidden_dropout > 0:
        mlp += 2 * T * h * 1  # dropout masks on the two residual branches
    return norms + attn + mlp


def saved_activations(spec: ModelSpec, b: int, s: int, attention: str, checkpointing: bool,
                      elem: int = 2) -> SavedActivations:
    """Saved-for-backward bytes for a batch of `b` x `s` tokens."""
    T = b * s
    per = saved_per_layer(spec, b, s, attention, elem)
    n = spec.num_layers
    # Forward: bf16 logits (kept by the model output) + fp32 upcast + fp32 log-softmax saved for the
    # loss = 10 bytes per logit; backward of cross-entropy adds fp32 grad of log-softmax and of the
    # upcast (8 more) before the bf16 grad reaches lm_head. The 8-byte transient matches the gap
    # measured against PEFT/torchtune peaks (~3 x T x V x 4, benchmarks/accuracy/RESULTS.md).
    logits = T * spec.vocab_size * (elem + 4 + 4 + 8)
    outside = 2 * T * spec.hidden_size * elem
    if checkpointing:
        return SavedActivations(per, n * T * spec.hidden_size * elem, logits, per, outside)
    return SavedActivations(per, n * per, logits, 0, outside)
