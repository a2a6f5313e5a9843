"""The bytes autograd saves for backward, op by op.

A decoder layer is replayed as the ops transformers runs (llm_mem/estimators/saved_blocks.py); each
op saves what its backward formula needs (PyTorch tools/autograd/derivatives.yaml): a matmul saves
its input when the weight needs a gradient and the weight (a parameter, not counted) when the input
does; an elementwise product saves each operand the other's gradient needs; an activation saves its
input (SiLU, GELU) or its output (ReLU, softmax, tanh). What requires grad follows the data: under
LoRA the frozen embedding's output does not, so the first layer saves less until an adapter joins
the graph, and frozen norms and linears keep nothing for their weights. Saved tensors are counted
once per storage (a view keeps its whole buffer alive): the key of a value is its storage.

Every rule was checked against saved_tensors_hooks measurements of every bundled family
(benchmarks/activations/measured_families.json, full fine-tuning and LoRA, eager and SDPA, with and
without checkpointing); tests/test_activations_families.py holds each within 5%.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Val(NamedTuple):
    """A tensor in the replay: its storage key, elements per token (of the storage), bytes per
    element, whether it requires grad, and whether Megatron's tensor parallelism splits it (it lives
    between a column-parallel linear's output and a row-parallel linear's input: heads, the MLP's
    intermediate width; the rest, the residual stream and its norms, is replicated)."""

    key: str
    width: float
    size: int
    rg: bool
    split: bool = False

    @property
    def bytes(self) -> float:
        """Bytes per token of its storage."""
        return self.width * self.size


@dataclass(frozen=True)
class Kernels:
    """Where PyTorch's CPU and CUDA kernels save different things. The estimate uses CUDA's; the
    measurements (CPU) are compared with CPU's.
    - dropout: CUDA's fused native_dropout keeps a bool mask (aten/src/ATen/native/cuda/Dropout.cu,
      mask `at::empty_like(self, ..., kBool)`); CPU multiplies by a mask in the input's dtype
      (aten/src/ATen/native/Dropout.cpp `_dropout_impl`).
    - LayerNorm: CUDA's native_layer_norm keeps mean and rstd in fp32 (acc type); CPU in the input dtype.
    - SDPA with dropout, or with a value head dim unlike the query's (MLA): CPU's flash kernel takes
      neither, so PyTorch runs the math path (fp32 q, k, v and scores, measured); CUDA's flash and
      memory-efficient kernels take both (torch/backends/cuda sdp_utils: dropout is supported, and
      mem-efficient allows a different value head dim), keeping no score matrix."""

    dropout_mask: int | None = 1  # bytes per masked element; None: the input's dtype
    ln_stats_fp32: bool = True
    sdpa_dropout_math: bool = False
    sdpa_dim_mismatch_math: bool = False


CUDA = Kernels()
CPU = Kernels(dropout_mask=None, ln_stats_fp32=False, sdpa_dropout_math=True, sdpa_dim_mismatch_math=True)


@dataclass(frozen=True)
class Trainable:
    """What trains: every weight (full fine-tuning) or LoRA adapters on some modules."""

    full: bool = True
    adapted: frozenset[tuple[int | None, str]] = frozenset()  # (layer, module name) carrying an adapter
    rank: int = 0
    dropout: float = 0.0
    autocast: bool = False  # bf16 autocast: adapters see a bf16 copy of their input, not an fp32 one
    experts_adapted: frozenset[int] = frozenset()  # layers whose fused experts carry a ParamWrapper


@dataclass(frozen=True)
class Split:
    """Megatron-LM's model parallelism over a layer's saved tensors (llm_mem.estimators.megatron): tensor
    parallel ``tp`` (split tensors and heads 1/tp each), sequence parallel ``sp`` (the replicated ones 1/tp
    too: each rank keeps its sequence shard, and a column-parallel linear saves that shard, all-gathering it
    again in backward: megatron/core/tensor_parallel/layers.py `save_for_backward(input, weight)` before the
    gather), context parallel ``cp`` (each rank holds s/cp of the tokens and attends to all s keys)."""

    tp: int = 1
    sp: bool = False
    cp: int = 1


NO_SPLIT = Split()


@dataclass
class Cost:
    """Bytes per token (replicated, and split by tensor parallelism), per (batch x head x query x key)
    score element, and per layer (constant)."""

    tok: float = 0.0
    score: float = 0.0
    const: float = 0.0
    tok_split: float = 0.0

    def bytes(self, b: int, s: int, heads: int, par: Split = NO_SPLIT) -> int:
        """Bytes for a batch of ``b`` sequences of ``s`` tokens, on one rank of ``par``."""
        t, q = par.tp, s / par.cp  # q: the tokens (queries) of this rank
        rep = self.tok / t if par.sp else self.tok
        return int((rep + self.tok_split / t) * b * q + self.score * b * heads / t * q * s + self.const)


@dataclass
class Replay:
    """One layer's (or the outside's) replay: the storages saved so far."""

    layer: int | None
    train: Trainable
    elem: int
    kern: Kernels
    norm_fp32_scale: bool = False  # Gemma's RMSNorm scales in fp32
    saved: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)
    n: int = 0
    inside: bool = False  # between a column-parallel and a row-parallel linear (Val.split)
    compiled: bool = False  # the layer under torch.compile (inductor's min-cut partitioner): see rms() and mlp()
    # torchtune's MultiHeadAttention expands K and V to every query head before SDPA/flex attention
    # (`k.unsqueeze(2).expand(...).flatten(1, 2)`, torchtune/modules/attention.py at 1814feb17 and 0.6.1),
    # so the kernel saves them at query width (measured: benchmarks/activations/measured_torchtune.json)
    expand_kv: bool = False
    unsloth: bool = False  # Unsloth's fused LoRA kernels (saved_blocks.unsloth_layer)
    backward_tok: float = 0.0  # bytes per token the layer's backward allocates beside what it saved

    # ---- bookkeeping -------------------------------------------------------------------------
    def keep(self, *vals: Val) -> None:
        """Save these tensors (once per storage)."""
        for v in vals:
            if v.key not in self.saved:
                self.saved[v.key] = v.bytes
                if v.split:
                    self.cost.tok_split += v.bytes
                else:
                    self.cost.tok += v.bytes

    def new(self, name: str, width: float, size: int | None = None, rg: bool = False) -> Val:
        """A fresh tensor (its own storage)."""
        self.n += 1
        return Val(f"{self.layer}.{name}.{self.n}", width, self.elem if size is None else size, rg, self.inside)

    def keep_score(self, key: str, nbytes: float) -> None:
        """Save a tensor of one element per (batch, head, query, key) score, once per key."""
        if key not in self.scores:
            self.scores[key] = nbytes
            self.cost.score += nbytes

    def keep_const(self, key: str, nbytes: float) -> None:
        """Save a tensor whose size does not depend on the tokens (a merged weight), once per key."""
        if key not in self.saved:
            self.saved[key] = nbytes
            self.cost.const += nbytes

    # ---- ops ---------------------------------------------------------------------------------
    def linear(self, x: Val, name: str, out: float, size: int | None = None, parallel: str = "") -> Val:
        """A Linear (or Conv1D): saves its input for its weight's gradient; a LoRA adapter on it saves
        its own copy of the input (PEFT casts it to the fp32 adapter: lora/layer.py Linear.forward,
        `lora_B(lora_A(dropout(x)))`, each adapter its own copy) and the rank-r intermediate.
        ``parallel``: "column" (its output is split under tensor parallelism), "row" or "duplicated" (its
        output is replicated); "" keeps the region as it is (a linear outside any layer)."""
        adapted = (self.layer, name) in self.train.adapted
        if self.train.full:
            self.keep(x)
        if adapted:
            self.lora_input(x, name)
        if parallel:  # "duplicated": Megatron's parallel_mode for MLA's down projections (a replicated output)
            self.inside = parallel == "column"
        return self.new(name, out, size, self.train.full or adapted or x.rg)

    def lora_input(self, x: Val, name: str) -> None:
        t = self.train
        size = 2 if t.autocast else 4
        if t.dropout > 0:  # dropout on the fp32 copy: its mask (when x needs a gradient) and the dropped copy
            if x.rg:
                self.keep(self.new(f"{name}.mask", x.width, self.kern.dropout_mask or size))
            self.keep(self.new(f"{name}.dropped", x.width, size))
        elif x.size == size:
            self.keep(x)  # already the adapter's dtype: lora_A saves x itself
        else:
            self.keep(self.new(f"{name}.cast", x.width, size))
        self.keep(self.new(f"{name}.lora_a", t.rank, size))

    def mul(self, a: Val, b: Val, name: str, size: int | None = None, width: float | None = None) -> Val:
        """Elementwise product: each operand is saved when the other one needs a gradient."""
        if b.rg:
            self.keep(a)
        if a.rg:
            self.keep(b)
        return self.new(name, a.width if width is None else width, size, a.rg or b.rg)

    def act_in(self, x: Val, name: str, width: float | None = None) -> Val:
        """SiLU / GELU (of `width` elements of x, default all): saves its input."""
        if x.rg:
            self.keep(x)
        return self.new(name, x.width if width is None else width, None, x.rg)

    def act_out(self, x: Val, name: str, size: int | None = None) -> Val:
        """ReLU / tanh / softmax: save their output."""
        out = self.new(name, x.width, size, x.rg)
        if x.rg:
            self.keep(out)
        return out

    def dropout(self, x: Val, p: float, name: str) -> Val:
        """Dropout in training: the mask (when x needs a gradient); the output is a new tensor."""
        if p <= 0:
            return x
        if x.rg:
            self.keep(self.new(f"{name}.mask", x.width, self.kern.dropout_mask or x.size))
        return self.new(name, x.width, x.size, x.rg)

    def rms(self, x: Val, name: str, width: float | None = None, groups: int = 1) -> Val:
        """transformers' RMSNorm over `width` elements per token (default: x's) in `groups` (per-head norms):
        `x.to(float32)`, `pow(2).mean`, `x * rsqrt(...)` save the fp32 copy and the fp32 rstd; `weight *
        x.to(dtype)` saves the normed bf16 tensor for the weight's gradient. Gemma (`output * (1.0 +
        weight.float())`) saves the normed tensor in fp32."""
        w, n = self.train.full, x.width if width is None else width
        if self.compiled:  # the partitioner keeps the bf16 input and the fp32 rstd; the fp32 copy and the normed
            # product are recomputed from them in backward (measured, benchmarks/activations/measured_compile.json)
            if x.rg or w:
                self.keep(x, self.new(f"{name}.rstd", groups, 4))
            return self.new(name, n, None, x.rg or w)
        if x.rg:
            self.keep(self.new(f"{name}.x32", n, 4), self.new(f"{name}.rstd", groups, 4))
        if w:
            self.keep(self.new(f"{name}.normed", n, 4 if self.norm_fp32_scale else self.elem))
        return self.new(name, n, None, x.rg or w)

    def layernorm(self, x: Val, name: str) -> Val:
        """native_layer_norm saves its input, mean and rstd (CUDA: fp32 statistics)."""
        w = self.train.full
        if x.rg or w:
            self.keep(x, self.new(f"{name}.stats", 2, 4 if self.kern.ln_stats_fp32 else x.size))
        return self.new(name, x.width, None, x.rg or w)
