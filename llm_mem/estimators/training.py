"""Training memory: trainable parameters, gradients, optimizer states, master weights, LoRA
adapters, activations saved for backward (with/without checkpointing) and ZeRO partitioning."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llm_mem.errors import UsageError
from llm_mem.params import LINEAR_ROLES, Tensor, inventory
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


# Eager softmax runs in fp32 (transformers' eager_attention_forward: `softmax(..., dtype=torch.float32)`,
# measured for Qwen2.5 and OPT) except where spec.eager_softmax_fp32 is off (GPT-2 softmaxes in the
# compute dtype; measured: 2 bytes per score, benchmarks/activations/).
# Activations written as Python ops that autograd records one by one: transformers' NewGELUActivation
# (activations.py, "gelu_new": pow, tanh and two multiplies save 5 tensors of the MLP width, measured on GPT-2).
PYTHON_GELU = frozenset({"gelu_new"})


def saved_per_layer(spec: ModelSpec, b: int, s: int, attention: str, elem: int = 2,
                    moe_layer: bool | None = None) -> int:
    """Bytes one decoder layer saves for backward, derived op by op from what autograd keeps
    (Korthikanti et al. 2022, arXiv:2205.05198, sec. 4.1, re-derived for transformers' blocks and
    checked tensor by tensor with saved_tensors_hooks, benchmarks/activations/):
    - RMSNorm (transformers): an fp32 copy of its input, the fp32 rstd, and the normed output
      in the compute dtype; LayerNorm: its input and per-token mean/rstd.
    - Linears save their input (q/k/v share one, gate/up share one).
    - SDPA/flash: q, k, v, output and an fp32 logsumexp; no s^2 term. Eager (and SDPA when attention
      dropout forces the math path): K/V repeated per query head, the softmax output (fp32 where the
      family upcasts) and the probabilities fed to the V matmul; dropout adds its mask and output.
    - SwiGLU: gate, up, SiLU(gate) and their product; GPT-2's tanh-GELU (python ops) 5 tensors of
      width i; ReLU (OPT) its output once; MoE: router logits (fp32) and the routed tokens' inputs,
      intermediates and outputs.
    - Dropout masks are kept in the compute dtype (dropout is a multiply by a scaled mask).
    `moe_layer` picks the MoE or the dense block (default: MoE when the model has any)."""
    h, a, kv, d = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim
    T = b * s
    per_tok = 0  # bytes per token
    if spec.norm == "rms":
        per_tok += spec.norms_per_layer * ((4 + elem) * h + 4)
    else:
        per_tok += spec.norms_per_layer * (elem * h + 2 * 4)
    attn_drop = spec.attention_dropout > 0
    math_path = attention == "eager" or (attention == "sdpa" and attn_drop)
    scores = 0  # bytes per (query, key) pair per head
    if spec.mla is not None:
        m = spec.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        r, ql = m.kv_lora_rank, m.q_lora_rank or 0
        # projection input, kv_a_layernorm (RMS of the latent) and kv_b's input, the q_a norm and
        # q_b's input when q is low-rank, and o_proj's input
        per_tok += elem * h + (4 + elem) * r + 4 + elem * r + elem * a * m.v_head_dim
        if ql:
            per_tok += (4 + elem) * ql + 4 + elem * ql
        if attention == "flash":
            per_tok += elem * a * (2 * qk + m.v_head_dim) + 4 * a  # per-head q, k, v and logsumexp
        elif attention == "sdpa":
            # v's head dim differs from q/k's, so SDPA takes the fp32 math path (measured on CPU; CUDA's
            # memory-efficient kernel does not: use --attention flash there)
            per_tok += 4 * a * (2 * qk + m.v_head_dim)
            scores = 4
        else:
            per_tok += elem * a * (2 * qk + m.v_head_dim)
            scores = 4 + elem
    elif math_path and attention == "sdpa":
        # SDPA's math fallback (dropout on CPU) upcasts q, k, v, softmax, mask and probabilities to fp32
        per_tok += elem * h + 3 * a * d * 4 + elem * a * d
        scores = 12
    elif math_path:
        per_tok += elem * h + 3 * a * d * elem + elem * a * d  # input, q, k/v repeated to a heads, output
        scores = 4 + elem if spec.eager_softmax_fp32 else elem
        if attn_drop:
            scores += 2 * elem  # dropout mask and dropped probabilities
    else:
        per_tok += elem * h + (a + 2 * kv) * d * elem + elem * a * d + 4 * a
    if spec.qk_norm:  # Qwen3/Gemma3 per-head RMSNorm on q and k: fp32 copy, rstd and normed output
        per_tok += (a + kv) * ((4 + elem) * d + 4)
    mlp_in = elem * h
    if moe_layer is None:
        moe_layer = spec.moe is not None and any(spec.moe.moe_layers)
    if moe_layer and spec.moe is not None:
        moe = spec.moe
        i = moe.expert_intermediate_size
        k = moe.top_k
        # router: fp32 softmax over experts; per route: int64 top-k index, fp32 normalised weight,
        # int64 gather index and the bf16 weight that scales the expert output (22 bytes)
        per_tok += mlp_in + moe.num_experts * 4 + k * (8 + 4 + 8 + elem)
        per_tok += k * (elem * h + 4 * i * elem + elem * h)  # per routed copy: input, SwiGLU, output
        if moe.shared_intermediate_size:
            per_tok += 4 * moe.shared_intermediate_size * elem
    elif spec.mlp_kind == "gated":
        per_tok += mlp_in + 4 * spec.intermediate_size * elem
    elif (spec.hidden_act or "").lower() in PYTHON_GELU:
        per_tok += mlp_in + 5 * spec.intermediate_size * elem  # gelu_new: pow, tanh, 2 muls + c_proj input
    elif (spec.hidden_act or "").lower() == "relu":
        per_tok += mlp_in + spec.intermediate_size * elem  # relu's output is also fc2's input
    else:
        per_tok += mlp_in + 2 * spec.intermediate_size * elem
    if spec.hidden_dropout > 0:
        per_tok += 2 * h * elem  # masks on the attention and MLP residual branches
    return T * per_tok + b * a * s * s * scores


def saved_activations(spec: ModelSpec, b: int, s: int, attention: str, checkpointing: bool,
                      elem: int = 2) -> SavedActivations:
    """Saved-for-backward bytes for a batch of `b` x `s` tokens."""
    T = b * s
    kinds = spec.moe.moe_layers if spec.moe is not None else (False,) * spec.num_layers
    dense = saved_per_layer(spec, b, s, attention, elem, moe_layer=False)
    routed = saved_per_layer(spec, b, s, attention, elem, moe_layer=True) if any(kinds) else dense
    per = max(dense, routed)  # the largest layer: what recomputing one layer costs
    n = spec.num_layers
    layers = sum(routed if k else dense for k in kinds)
    # Peak in the cross-entropy backward: bf16 logits (kept by the model output) + the fp32 log-softmax
    # saved for the loss + two fp32 gradients (of the log-softmax and of the upcast) = 14 bytes per
    # logit; the forward's fp32 upcast is already freed (measured with --verify, benchmarks/verify/).
    logits = T * spec.vocab_size * (elem + 4 + 4 + 4)
    h = spec.hidden_size
    # the final norm (as a layer norm above) and the lm_head's input
    final_norm = (4 + elem) * h + 4 if spec.norm == "rms" else elem * h + 8
    outside = T * (final_norm + elem * h)
    if checkpointing:
        return SavedActivations(per, n * T * spec.hidden_size * elem, logits, per, outside)
    return SavedActivations(per, layers, logits, 0, outside)


def lora_activation_delta(spec: ModelSpec, w: Workload, elem: int) -> int:
    """How LoRA changes the saved activations of all layers (without checkpointing): PEFT casts each
    adapter's input to fp32 (one copy per adapter: q, k and v do not share) and lora_A saves it, plus
    the rank-r intermediate; frozen base linears no longer save their own bf16 inputs (attention and
    MLP input, down_proj input). Measured with --verify on Qwen2.5-0.5B: 21.43 MB per layer vs 21.89
    estimated (benchmarks/verify/RESULTS.md)."""
    tensors = lora_target_tensors(spec, w.lora_targets)
    tokens = w.batch * w.context
    first = [t for t in tensors if t.layer == tensors[0].layer] if tensors else []
    extra = sum(tokens * (t.shape[1] + w.lora_rank) * 4 for t in first)
    frozen = tokens * (2 * spec.hidden_size + spec.intermediate_size) * elem
    return (extra - frozen) * spec.num_layers
