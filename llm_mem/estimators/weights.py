"""Weight bytes per tensor, per layer, per rank and in total, for a storage format.

A WeightPlan says how the weights are stored: a Format (llm_mem.formats), the bytes of what it leaves
unquantized, its scale layout, and the modules a checkpoint keeps unquantized (its skip list, matched
against the modules' Hugging Face names as the loaders match them: exact names, parent modules,
``re:`` patterns of compressed-tensors, ``*`` globs of ModelOpt and gpt-oss configs).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from llm_mem.dtypes import FLOAT_BYTES
from llm_mem.dtypes import bits as dtype_bits
from llm_mem.estimators.gguf import tensor_bytes as gguf_tensor_bytes
from llm_mem.formats import BNB4_BPW, BNB4_DQ_BPW, MXFP4_BPW, NVFP4_BPW, Format, get_format
from llm_mem.params import EXPERT_ROLES, LINEAR_ROLES, Tensor, inventory
from llm_mem.spec import ModelSpec, QuantConfig, ScaleLayout

# fp8 / int8 checkpoints keep fp32 scales (vLLM fp8.py / fbgemm_fp8.py create_weights: weight_scale in
# torch.float32); W4A16 and GPTQ/AWQ group scales are fp16/bf16 (2 bytes).
FP32_SCALE = 4
HALF_SCALE = 2
# Skip-list patterns longer than this, or regexes with a quantified group (catastrophic backtracking),
# are not evaluated: a hostile config must not hang the estimate (docs/limits.md).
MAX_PATTERN = 200
_NESTED_QUANTIFIER = re.compile(r"\)[*+{?]")


@dataclass(frozen=True)
class WeightPlan:
    """The resolved storage: a Format and the bytes of unquantized tensors."""

    fmt: Format
    keep_bytes: int  # bytes per element of tensors the format leaves unquantized
    bnb_double_quant: bool = True
    gptq_bits: float | None = None
    group_size: int | None = None
    fp8_block: tuple[int, ...] | None = None
    scale: ScaleLayout | None = None  # weight-scale layout where the format allows several
    skip_modules: tuple[str, ...] = ()  # modules kept unquantized (the checkpoint's skip list)
    quantize_lm_head: bool = False
    source: str = ""  # "checkpoint" (config's own format) or "requested"
    checkpoint_repo: str | None = None  # an existing quantized checkpoint this plan stands for


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
    skipped_params: int = 0  # parameters the skip list kept unquantized
    experts_per_layer: tuple[int, ...] = ()  # routed experts' bytes per layer (llama.cpp --n-cpu-moe moves them)

    @property
    def largest_unit(self) -> int:
        """The largest single piece a layer-streaming runtime must hold: a layer, the embedding or the head."""
        return max(self.per_layer + [self.embedding, self.lm_head])


def plan_from_quant(q: QuantConfig, compute_bytes: int) -> WeightPlan:
    """The storage a checkpoint's own quantization_config describes (method ``other``: the compute dtype)."""
    common = dict(skip_modules=q.skip_modules, quantize_lm_head=q.quantize_lm_head, source="checkpoint")
    if q.method == "bitsandbytes":
        fmt = get_format(q.quant_type or "nf4") if q.bits == 4 else get_format("int8")
        return WeightPlan(fmt, compute_bytes, bnb_double_quant=q.double_quant, **common)  # type: ignore[arg-type]
    if q.method in ("gptq", "awq"):
        bits = q.bits or 4
        fmt = get_format("awq" if q.method == "awq" else "gptq-int8" if bits == 8 else "gptq")
        return WeightPlan(fmt, compute_bytes, gptq_bits=bits, group_size=q.group_size, **common)  # type: ignore[arg-type]
    if q.method == "fp8":
        return WeightPlan(get_format("fp8"), compute_bytes, fp8_block=q.block_size, scale=q.scale or "tensor",
                          **common)  # type: ignore[arg-type]
    if q.method == "int8":
        return WeightPlan(get_format("w8a8"), compute_bytes, scale=q.scale or "channel", **common)  # type: ignore[arg-type]
    if q.method == "int4":
        return WeightPlan(get_format("w4a16"), compute_bytes, group_size=q.group_size, scale=q.scale or "group",
                          **common)  # type: ignore[arg-type]
    if q.method == "nvfp4":
        return WeightPlan(get_format("nvfp4"), compute_bytes, group_size=q.group_size, scale="group",
                          **common)  # type: ignore[arg-type]
    if q.method == "mxfp4":
        return WeightPlan(get_format("mxfp4"), compute_bytes, **common)  # type: ignore[arg-type]
    return WeightPlan(get_format("bf16" if compute_bytes == 2 else "fp32"), compute_bytes, source="checkpoint")


# ---- which tensors a skip list keeps unquantized -----------------------------------------------
def hf_module_names(t: Tensor) -> tuple[str, ...]:
    """The Hugging Face module paths a tensor's module goes by in checkpoints (our inventory names its
    modules generically: ``layers.3.attn.q_proj`` is ``model.layers.3.self_attn.q_proj``)."""
    module = t.name.rsplit(".", 1)[0]
    if module == "embed_tokens":
        return ("model.embed_tokens", "model.language_model.embed_tokens")
    if module == "lm_head":
        return ("lm_head",)
    if not module.startswith("layers."):
        return (f"model.{module}",)
    _, idx, block, *rest = module.split(".")
    base = f"model.layers.{idx}"
    tail = ".".join(rest)
    if block == "attn":
        return (f"{base}.self_attn.{tail}", f"{base}.attention.{tail}",
                f"model.language_model.layers.{idx}.self_attn.{tail}")
    if rest and rest[0] == "router":
        return (f"{base}.mlp.gate", f"{base}.mlp.router", f"{base}.block_sparse_moe.gate")
    if rest and rest[0] == "experts":
        return (f"{base}.mlp.experts", f"{base}.mlp.experts.{'.'.join(rest[1:])}", f"{base}.block_sparse_moe.experts")
    if rest and rest[0] == "shared_experts":
        sub = ".".join(rest[1:])
        return (f"{base}.mlp.shared_experts.{sub}", f"{base}.mlp.shared_expert.{sub}")
    return (f"{base}.{block}.{tail}" if tail else f"{base}.{block}",
            f"model.language_model.layers.{idx}.{block}.{tail}")


@dataclass(frozen=True)
class _SkipMatcher:
    plain: frozenset[tuple[str, ...]]  # dotted names, as component tuples
    patterns: tuple[re.Pattern[str], ...]
    globs: tuple[str, ...]

    def matches(self, names: tuple[str, ...]) -> bool:
        for name in names:
            parts = tuple(name.split("."))
            # a plain entry names the module, a parent of it, or its trailing components (bnb's "lm_head")
            if any(parts[i:j] in self.plain for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)):
                return True
            if any(p.match(name) for p in self.patterns):
                return True
            if any(fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(name, g + ".*") for g in self.globs):
                return True
        return False


@lru_cache(maxsize=64)
def _matcher(skip: tuple[str, ...]) -> _SkipMatcher:
    plain: set[tuple[str, ...]] = set()
    patterns: list[re.Pattern[str]] = []
    globs: list[str] = []
    for entry in skip:
        e = entry.strip()
        if not e or len(e) > MAX_PATTERN:
            continue
        if e.startswith("re:"):
            if _NESTED_QUANTIFIER.search(e):
                continue
            try:
                patterns.append(re.compile(e[3:]))
            except re.error:
                continue
        elif any(c in e for c in "*?["):
            globs.append(e)
        else:
            plain.add(tuple(e.removesuffix(".weight").split(".")))
    return _SkipMatcher(frozenset(plain), tuple(patterns), tuple(globs))


def skipped(t: Tensor, skip: tuple[str, ...]) -> bool:
    """Whether a checkpoint's skip list keeps tensor ``t``'s module unquantized."""
    return bool(skip) and _matcher(skip).matches(hf_module_names(t))


# ---- bytes of one tensor ---------------------------------------------------------------------------
def _scales(plan: WeightPlan, out_f: int, in_f: int, default: ScaleLayout, scale_bytes: int) -> int:
    """Bytes of one copy's scales for the plan's scale layout."""
    layout = plan.scale or default
    if layout == "tensor":
        return FP32_SCALE
    if layout == "channel":
        return out_f * scale_bytes
    if layout == "block" and plan.fp8_block:
        b0, b1 = (plan.fp8_block + (plan.fp8_block[0],))[:2]
        return math.ceil(out_f / b0) * math.ceil(in_f / b1) * FP32_SCALE
    group = plan.group_size or 128
    group = in_f if group <= 0 else group
    return out_f * math.ceil(in_f / group) * scale_bytes


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
        group = in_f if group <= 0 else group  # AutoAWQ q_group_size -1: no grouping, one scale per row
        groups = math.ceil(in_f / group)
        return (in_f * math.ceil(out_f * bits / 32) * 4 + groups * out_f * 2
                + groups * math.ceil(out_f * bits / 32) * 4) * t.copies
    if f.key == "fp8":
        return n + _scales(plan, out_f, in_f, "block" if plan.fp8_block else "tensor", FP32_SCALE) * t.copies
    if f.key == "w8a8":
        return n + _scales(plan, out_f, in_f, "channel", FP32_SCALE) * t.copies
    if f.key == "w4a16":  # int32-packed nibbles + a half-precision scale per group
        return math.ceil(n / 2) + _scales(plan, out_f, in_f, "group", HALF_SCALE) * t.copies
    if f.key == "nvfp4":  # packed e2m1 + an fp8 scale per 16 + one fp32 global scale
        return math.ceil(n * NVFP4_BPW / 8) + FP32_SCALE * t.copies
    if f.key == "mxfp4":
        return math.ceil(n * MXFP4_BPW / 8)
    return math.ceil(n * f.linear_bits / 8)


def is_quantized(t: Tensor, plan: WeightPlan) -> bool:
    """Whether the plan stores tensor ``t`` in its quantized format."""
    f = plan.fmt
    if f.key in ("fp32", "bf16", "fp16"):
        return False
    if f.gguf_recipe:
        return t.role not in f.keep_roles
    if plan.skip_modules and skipped(t, plan.skip_modules):
        return False
    if f.experts_only:
        return t.role in EXPERT_ROLES and t.role != "expert_bias"
    if t.role == "router" and f.key in ("nf4", "fp4", "int8"):
        return len(t.shape) == 2  # bnb converts every nn.Linear's weight but the head's; biases stay
    if t.role == "lm_head":
        return plan.quantize_lm_head
    return t.role in LINEAR_ROLES


@lru_cache(maxsize=64)
def sized_inventory(spec: ModelSpec) -> tuple[tuple[Tensor, int], ...]:
    """The inventory with each tensor's element count, computed once per model and shared by every
    precision and format the planner tries."""
    return tuple([(t, t.numel) for t in inventory(spec)])


@lru_cache(maxsize=256)
def tensor_bytes(spec: ModelSpec, plan: WeightPlan) -> dict[str, int]:
    """Bytes of every inventory tensor under ``plan``."""
    f = plan.fmt
    if f.gguf_recipe:  # llama-quantize's per-tensor types (norms, biases, router, positions stay F32)
        sizes = gguf_tensor_bytes(f.gguf_recipe, spec)  # read only: the cached dict is not copied
        # a vision tower is not in the model's GGUF (convert_hf_to_gguf.py writes it to a separate mmproj file)
        return {t.name: sizes.get(t.name, 0) for t in inventory(spec)}
    size = _sizer(spec, plan)
    return {t.name: size(t, numel)[0] for t, numel in sized_inventory(spec)}


def _sizer(spec: ModelSpec, plan: WeightPlan) -> Callable[[Tensor, int], tuple[int, bool]]:
    """(bytes, quantized) of a tensor under a format that is not a GGUF recipe: float formats at their
    width, else the format's linear layout or the kept width. Memoised by role, shape and copies (layers
    repeat) and, with a skip list, by name too (the list names modules)."""
    float_bytes = FLOAT_BYTES.get(plan.fmt.key)
    memo: dict[tuple[str, tuple[int, ...], int, str], tuple[int, bool]] = {}

    def size(t: Tensor, numel: int) -> tuple[int, bool]:
        key = (t.role, t.shape, t.copies, t.name if plan.skip_modules else "")
        hit = memo.get(key)
        if hit is None:
            if float_bytes is not None:
                hit = (numel * float_bytes, False)
            else:
                q = is_quantized(t, plan)
                hit = (_linear_bytes(t, plan, spec) if q else numel * plan.keep_bytes, q)
            memo[key] = hit
        return hit

    return size


def _outside(role: str) -> int:
    """Where a tensor outside the decoder layers counts: 0 embedding, 1 lm_head, 2 other."""
    return 0 if role in ("embed", "pos_embed") else 1 if role == "lm_head" else 2


def _summed(per_layer: list[int], outside: list[int], experts: int, qparams: int, kparams: int, skipped: int,
            expert_layers: list[int]) -> WeightBytes:
    embedding, lm_head, other = outside
    return WeightBytes(sum(per_layer) + embedding + lm_head + other, per_layer, embedding, lm_head, other, experts,
                       qparams, kparams, skipped, tuple(expert_layers))


@lru_cache(maxsize=64)
def _layer_groups(spec: ModelSpec) -> tuple[tuple[tuple[int, ...], tuple[tuple[Tensor, int], ...]], ...]:
    """Decoder layers grouped by identical tensor lists (role, shape, copies, in order): (the layers, one
    layer's tensors). A 126-layer model with one layer design is one group."""
    by_layer: dict[int, list[tuple[Tensor, int]]] = {}
    for t, numel in sized_inventory(spec):
        if t.layer is not None:
            by_layer.setdefault(t.layer, []).append((t, numel))
    groups: dict[tuple[tuple[str, tuple[int, ...], int], ...], tuple[list[int], tuple[tuple[Tensor, int], ...]]] = {}
    for layer, ts in by_layer.items():
        key = tuple((t.role, t.shape, t.copies) for t, _ in ts)
        groups.setdefault(key, ([], tuple(ts)))[0].append(layer)
    return tuple((tuple(layers), ts) for layers, ts in groups.values())


def _weight_bytes_by_layer_design(spec: ModelSpec, plan: WeightPlan) -> WeightBytes:
    """weight_bytes for a format whose bytes depend on a tensor's role, shape and copies only (not a GGUF
    recipe, no skip list): each layer design sized once."""
    size = _sizer(spec, plan)

    per_layer = [0] * spec.num_layers
    expert_layers = [0] * spec.num_layers
    qparams = kparams = experts = 0
    for layers, ts in _layer_groups(spec):
        lb = eb = lq = lk = 0
        for t, numel in ts:
            b, q = size(t, numel)
            lb += b
            if t.role in EXPERT_ROLES:
                eb += b
            if q:
                lq += numel
            else:
                lk += numel
        for i in layers:
            per_layer[i] = lb
            expert_layers[i] = eb
        n = len(layers)
        experts += eb * n
        qparams += lq * n
        kparams += lk * n
    outside = [0, 0, 0]  # embedding, lm_head, other (final norm...)
    for t, numel in sized_inventory(spec):
        if t.layer is not None:
            continue
        b, q = size(t, numel)
        if q:
            qparams += numel
        else:
            kparams += numel
        outside[_outside(t.role)] += b
    return _summed(per_layer, outside, experts, qparams, kparams, 0, expert_layers)


@lru_cache(maxsize=256)
def weight_bytes(spec: ModelSpec, plan: WeightPlan) -> WeightBytes:
    """Weight bytes of every tensor under ``plan``, summed by place in the model."""
    if not plan.fmt.gguf_recipe and not plan.skip_modules:
        return _weight_bytes_by_layer_design(spec, plan)
    per_layer = [0] * spec.num_layers
    outside = [0, 0, 0]  # embedding, lm_head, other (final norm...)
    experts = qparams = kparams = skipped_params = 0
    sizes = tensor_bytes(spec, plan)
    quantizing = plan.fmt.key not in ("fp32", "bf16", "fp16")
    skip_check = bool(plan.skip_modules) and quantizing
    expert_layers = [0] * spec.num_layers
    by_role: dict[tuple[str, int], bool] = {}  # without a skip list, the answer depends on role and rank only
    for t, numel in sized_inventory(spec):
        b = sizes[t.name]
        if quantizing and skip_check:
            q = is_quantized(t, plan)
        elif quantizing:
            key = (t.role, len(t.shape))
            if key not in by_role:
                by_role[key] = is_quantized(t, plan)
            q = by_role[key]
        else:
            q = False
        if q:
            qparams += numel
        else:
            kparams += numel
            if skip_check and t.role in LINEAR_ROLES and skipped(t, plan.skip_modules):
                skipped_params += numel
        if t.layer is not None:
            per_layer[t.layer] += b
            if t.role in EXPERT_ROLES:
                experts += b
                expert_layers[t.layer] += b
        else:
            outside[_outside(t.role)] += b
    return _summed(per_layer, outside, experts, qparams, kparams, skipped_params, expert_layers)


def checkpoint_bytes(dtype_counts: dict[str, int]) -> int:
    """Exact tensor bytes of a safetensors checkpoint from its per-dtype element counts."""
    return sum(math.ceil(c * (dtype_bits(d, 16) or 16) / 8) for d, c in dtype_counts.items())
