"""Weight bytes per tensor, per layer and in total, for a storage format."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from llm_mem.estimators.gguf import tensor_bytes as gguf_tensor_bytes
from llm_mem.formats import (
    BNB4_BPW,
    BNB4_DQ_BPW,
    MXFP4_BPW,
    Format,
    get_format,
)
from llm_mem.params import EXPERT_ROLES, LINEAR_ROLES, Tensor, inventory
from llm_mem.spec import ModelSpec, QuantConfig

DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}
# safetensors dtype strings (safetensors format spec) -> bits per element
SAFETENSORS_BITS = {"F64": 64, "I64": 64, "U64": 64, "F32": 32, "I32": 32, "U32": 32, "F16": 16, "BF16": 16,
                    "I16": 16, "U16": 16, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "I8": 8, "U8": 8,
                    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


@dataclass(frozen=True)
class WeightPlan:
    """The resolved storage: a Format and the bytes of unquantized tensors."""

    fmt: Format
    keep_bytes: int  # bytes per element of tensors the format leaves unquantized
    bnb_double_quant: bool = True
    gptq_bits: float | None = None
    group_size: int | None = None
    fp8_block: tuple[int, ...] | None = None
    source: str = ""  # "checkpoint" (config's own format) or "requested"


@dataclass(frozen=True)
class WeightBytes:
    """Weight bytes by place in the model."""

    total: int
    per_layer: list[int]
    embedding: int
    lm_head: int
    other: int
    experts: int  # all routed experts
    quantized_params: int  # parameters stored in the quantized format
    kept_params: int  # parameters kept at keep_bytes (embeddings, head, norms...)

    @property
    def largest_unit(self) -> int:
        """The largest single piece a layer-streaming runtime must hold: a layer, the embedding or the head."""
        return max(self.per_layer + [self.embedding, self.lm_head])


def plan_from_quant(q: QuantConfig, compute_bytes: int) -> WeightPlan:
    """The storage a checkpoint's own quantization_config describes."""
    if q.method == "bitsandbytes":
        fmt = get_format(q.quant_type or "nf4") if q.bits == 4 else get_format("int8")
        return WeightPlan(fmt, compute_bytes, bnb_double_quant=q.double_quant, source="checkpoint")
    if q.method in ("gptq", "awq"):
        bits = q.bits or 4
        fmt = get_format("awq" if q.method == "awq" else "gptq-int8" if bits == 8 else "gptq")
        return WeightPlan(fmt, compute_bytes, gptq_bits=bits, group_size=q.group_size, source="checkpoint")
    if q.method == "fp8":
        return WeightPlan(get_format("fp8"), compute_bytes, fp8_block=q.block_size, source="checkpoint")
    if q.method == "mxfp4":
        return WeightPlan(get_format("mxfp4"), compute_bytes, source="checkpoint")
    return WeightPlan(get_format("bf16"), compute_bytes, source="checkpoint")


def _linear_bytes(t: Tensor, plan: WeightPlan, spec: ModelSpec) -> int:
    """Bytes of one quantized linear weight (all its expert copies)."""
    f = plan.fmt
    n = t.numel
    out_f, in_f = (t.shape + (1,))[:2]
    if f.gguf_recipe:  # llama-quantize's per-tensor mix (llm_mem.estimators.gguf)
        return gguf_tensor_bytes(f.gguf_recipe, spec)[t.name]
    if f.key in ("nf4", "fp4"):
        return math.ceil(n * (BNB4_DQ_BPW if plan.bnb_double_quant else BNB4_BPW) / 8)
    if f.key == "int8":
        return n + f.per_row_bytes * out_f * t.copies
    if f.key in ("gptq", "gptq-int8"):
        bits = plan.gptq_bits or f.linear_bits
        group = plan.group_size or f.group_size or 128
        group = in_f if group <= 0 else group
        # qweight/qzeros are packed in int32 rows: round each tensor part up to whole int32s
        qweight = math.ceil(in_f * bits / 32) * 4 * out_f
        groups = math.ceil(in_f / group)
        scales = groups * out_f * 2
        qzeros = groups * math.ceil(out_f * bits / 32) * 4
        g_idx = in_f * 4
        return (qweight + scales + qzeros + g_idx) * t.copies
    if f.key == "awq":
        bits = plan.gptq_bits or 4
        group = plan.group_size or 128
        groups = math.ceil(in_f / group)
        return (in_f * math.ceil(out_f * bits / 32) * 4 + groups * out_f * 2
                + groups * math.ceil(out_f * bits / 32) * 4) * t.copies
    if f.key == "fp8":
        if plan.fp8_block:  # DeepSeek-V3: fp32 weight_scale_inv per 128x128 block
            b0, b1 = plan.fp8_block
            return n + math.ceil(out_f / b0) * math.ceil(in_f / b1) * 4 * t.copies
        return n + 4 * t.copies  # one fp32 per-tensor scale
    if f.key == "mxfp4":
        return math.ceil(n * MXFP4_BPW / 8)
    return math.ceil(n * f.linear_bits / 8)


def is_quantized(t: Tensor, plan: WeightPlan) -> bool:
    """Whether the plan stores tensor `t` in its quantized format."""
    f = plan.fmt
    if f.key in ("fp32", "bf16", "fp16"):
        return False
    if f.gguf_recipe:
        return t.role not in f.keep_roles
    if f.experts_only:
        return t.role in EXPERT_ROLES and t.role != "expert_bias"
    if t.role == "router" and f.key in ("nf4", "fp4", "int8"):
        return len(t.shape) == 2  # bnb converts every nn.Linear's weight but the head's; biases stay
    return t.role in LINEAR_ROLES


@lru_cache(maxsize=256)
def weight_bytes(spec: ModelSpec, plan: WeightPlan) -> WeightBytes:
    """Weight bytes of every tensor under `plan`, summed by place in the model."""
    n = spec.num_layers
    per_layer = [0] * n
    embedding = lm_head = other = experts = 0
    qparams = kparams = 0
    f = plan.fmt
    float_bytes = {"fp32": 4, "bf16": 2, "fp16": 2}.get(f.key)
    for t in inventory(spec):
        if float_bytes is not None:
            b = t.numel * float_bytes
            kparams += t.numel
        elif is_quantized(t, plan):
            b = _linear_bytes(t, plan, spec)
            qparams += t.numel
        else:
            if f.gguf_recipe:  # GGUF keeps norms, biases, the MoE router and position embeddings F32
                b = gguf_tensor_bytes(f.gguf_recipe, spec)[t.name]
            else:
                b = t.numel * plan.keep_bytes
            kparams += t.numel
        if t.layer is not None:
            per_layer[t.layer] += b
            if t.role in EXPERT_ROLES:
                experts += b
        elif t.role in ("embed", "pos_embed"):
            embedding += b
        elif t.role == "lm_head":
            lm_head += b
        else:
            other += b
    total = sum(per_layer) + embedding + lm_head + other
    return WeightBytes(total, per_layer, embedding, lm_head, other, experts, qparams, kparams)


def checkpoint_bytes(dtype_counts: dict[str, int]) -> int:
    """Exact tensor bytes of a safetensors checkpoint from its per-dtype element counts."""
    return sum(math.ceil(c * SAFETENSORS_BITS.get(d.upper(), 16) / 8) for d, c in dtype_counts.items())
