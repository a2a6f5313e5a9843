"""Token mixers other than attention: state-space (Mamba, Mamba-2), gated linear attention and short
convolutions, as parts of a ModelSpec (``ModelSpec.mixers``), their parameter tensors and the constant
per-sequence state they keep instead of a KV cache.

The parser (llm_mem/sources/hybrid.py) fills a `Mixers` from config.json; llm_mem.params lays out the
tensors; the KV estimators add `state_elements` per sequence. Module shapes follow transformers 5.24
(modeling_mamba.py MambaMixer, modeling_mamba2.py Mamba2Mixer, modeling_jamba.py JambaMambaMixer,
modeling_qwen3_next.py Qwen3NextGatedDeltaNet, modeling_lfm2.py Lfm2ShortConv, modeling_minimax.py
MiniMaxLightningAttention, modeling_kimi_linear.py KimiLinearDeltaAttention).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from llm_mem.spec import ModelSpec

MixerKind = Literal["attention", "mamba", "linear_attention", "short_conv", "lightning", "kda", "none"]
# Roles of the mixers' nn.Linear weights (quantization converts them like the attention projections).
MIXER_LINEAR_ROLES = frozenset({"ssm_in", "ssm_out", "ssm_x", "ssm_dt"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SsmSpec(_Frozen):
    """A selective state-space mixer: Mamba (arXiv:2312.00752, ``version`` 1: x_proj / dt_proj, A of
    d_inner x d_state) or Mamba-2 (arXiv:2405.21060, ``version`` 2: one in_proj, per-head A, D, dt_bias)."""

    version: Literal[1, 2]
    d_inner: int
    d_state: int
    d_conv: int
    n_heads: int = 0  # Mamba-2 heads (head_dim = d_inner / n_heads)
    n_groups: int = 1  # Mamba-2 groups of B and C
    dt_rank: int = 0  # Mamba-1 rank of the time-step projection
    conv_bias: bool = True
    in_bias: bool = False  # in_proj bias
    out_bias: bool = False  # out_proj bias
    gated_norm: bool = False  # Mamba-2 gated RMSNorm over d_inner
    bcdt_norms: bool = False  # RMSNorms on dt, B and C (Jamba)

    @property
    def conv_dim(self) -> int:
        """Channels of the depthwise convolution: x (Mamba-1), x + B + C (Mamba-2)."""
        return self.d_inner if self.version == 1 else self.d_inner + 2 * self.n_groups * self.d_state

    def state(self, trim: int = 0) -> int:
        """Elements one sequence keeps: the conv window (d_conv - trim columns) plus the SSM state (d_inner x
        d_state; Mamba-2: heads x head_dim x d_state, the same)."""
        return self.conv_dim * (self.d_conv - trim) + self.d_inner * self.d_state


class LinearAttnSpec(_Frozen):
    """Gated DeltaNet linear attention (Qwen3-Next, modeling_qwen3_next.py Qwen3NextGatedDeltaNet)."""

    key_heads: int
    value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int

    @property
    def conv_dim(self) -> int:
        """q and k (key heads x key width each) and v (value heads x value width)."""
        return 2 * self.key_heads * self.key_head_dim + self.value_heads * self.value_head_dim

    def state(self, trim: int = 0) -> int:
        """The conv window (conv_kernel - trim columns) plus the recurrent state (value heads x key x value
        width)."""
        return self.conv_dim * (self.conv_kernel - trim) + self.value_heads * self.key_head_dim * self.value_head_dim


class LightningAttnSpec(_Frozen):
    """MiniMax-Text-01's lightning attention (modeling_minimax.py MiniMaxLightningAttention): qkv_proj (3 x heads x
    head_dim), output_gate, an RMSNorm over heads x head_dim and out_proj, no biases; per sequence it keeps one
    head_dim x head_dim state per head (MiniMaxCache linear_cache; vLLM 0.34 MambaStateShapeCalculator
    linear_attention_state_shape: heads, head_dim, head_dim)."""

    heads: int
    head_dim: int

    def state(self) -> int:
        """Elements one sequence keeps."""
        return self.heads * self.head_dim * self.head_dim


class KdaSpec(_Frozen):
    """Kimi Delta Attention (modeling_kimi_linear.py KimiLinearDeltaAttention): q/k/v projections of heads x
    head_dim, a bias-free depthwise conv over the three, a low-rank forget gate (f_a / f_b, dt_bias per channel,
    A_log per head), b_proj per head, a low-rank output gate (g_a / g_b), a gated RMSNorm of head_dim, o_proj;
    no biases. Per sequence: the conv window of q, k and v and one head_dim x head_dim state per head."""

    heads: int
    head_dim: int
    conv_kernel: int

    @property
    def conv_dim(self) -> int:
        """q, k and v channels of the convolution."""
        return 3 * self.heads * self.head_dim

    def state(self, trim: int = 0) -> int:
        """The conv window (conv_kernel - trim columns) plus the recurrent state."""
        return self.conv_dim * (self.conv_kernel - trim) + self.heads * self.head_dim * self.head_dim


class ShortConvSpec(_Frozen):
    """LFM2's gated short convolution (modeling_lfm2.py Lfm2ShortConv): in_proj to 3 x hidden, a depthwise
    convolution of ``kernel`` taps, out_proj."""

    kernel: int
    bias: bool = False


class Mixers(_Frozen):
    """Which token mixer each layer has, and which layers have an MLP (dense or MoE) after it."""

    kinds: tuple[MixerKind, ...]
    mlp: tuple[bool, ...]
    parallel_ssm: bool = False  # attention layers also run a Mamba mixer on the same input (Falcon-H1)
    gated_attention: bool = False  # q_proj also yields a per-head output gate (Qwen3-Next: 2 x heads x head_dim)
    ssm: SsmSpec | None = None
    linear: LinearAttnSpec | None = None
    conv: ShortConvSpec | None = None
    lightning: LightningAttnSpec | None = None
    kda: KdaSpec | None = None


def state_elements(spec: ModelSpec, trim: int = 0) -> list[int]:
    """Per layer, the elements of constant state one sequence keeps (0 for attention-only layers).

    The conv window holds the kernel's columns in transformers 5.24 (cache_utils.py
    LinearAttentionCacheLayerMixin keeps conv_kernel_size) and one fewer in vLLM 0.34
    (mamba_utils.py MambaStateShapeCalculator: conv_kernel - 1) and llama.cpp (llama-hparams.cpp
    n_embd_r: (ssm_d_conv - 1) x channels): ``trim`` is that difference."""
    mx = spec.mixers
    if mx is None:
        return [0] * spec.num_layers
    out = []
    for kind in mx.kinds:
        n = 0
        if (kind == "mamba" or (kind == "attention" and mx.parallel_ssm)) and mx.ssm is not None:
            n += mx.ssm.state(trim)
        if kind == "linear_attention" and mx.linear is not None:
            n += mx.linear.state(trim)
        if kind == "short_conv" and mx.conv is not None:
            n += spec.hidden_size * (mx.conv.kernel - trim)  # Lfm2ShortConv: conv_L_cache columns of hidden
        if kind == "lightning" and mx.lightning is not None:
            n += mx.lightning.state()
        if kind == "kda" and mx.kda is not None:
            n += mx.kda.state(trim)
        out.append(n)
    return out


class MixerTensor(NamedTuple):
    """(name, role, shape) of one mixer parameter."""

    name: str
    role: str
    shape: tuple[int, ...]


def _linear(p: str, role: str, out: int, inp: int, bias: bool) -> list[MixerTensor]:
    ts = [MixerTensor(f"{p}.weight", role, (out, inp))]
    if bias:
        ts.append(MixerTensor(f"{p}.bias", "bias", (out,)))
    return ts


def ssm_tensors(h: int, s: SsmSpec, p: str) -> list[MixerTensor]:
    """MambaMixer (version 1) or Mamba2Mixer (version 2) parameters."""
    ts: list[MixerTensor] = [MixerTensor(f"{p}.conv1d.weight", "ssm_param", (s.conv_dim, 1, s.d_conv))]
    if s.conv_bias:
        ts.append(MixerTensor(f"{p}.conv1d.bias", "ssm_param", (s.conv_dim,)))
    if s.version == 1:
        ts += _linear(f"{p}.in_proj", "ssm_in", 2 * s.d_inner, h, s.in_bias)
        ts += _linear(f"{p}.x_proj", "ssm_x", s.dt_rank + 2 * s.d_state, s.d_inner, False)
        ts += _linear(f"{p}.dt_proj", "ssm_dt", s.d_inner, s.dt_rank, True)
        ts += [MixerTensor(f"{p}.A_log", "ssm_param", (s.d_inner, s.d_state)),
               MixerTensor(f"{p}.D", "ssm_param", (s.d_inner,))]
        if s.bcdt_norms:
            ts += [MixerTensor(f"{p}.dt_layernorm.weight", "norm", (s.dt_rank,)),
                   MixerTensor(f"{p}.b_layernorm.weight", "norm", (s.d_state,)),
                   MixerTensor(f"{p}.c_layernorm.weight", "norm", (s.d_state,))]
    else:
        ts += _linear(f"{p}.in_proj", "ssm_in", s.d_inner + s.conv_dim + s.n_heads, h, s.in_bias)
        ts += [MixerTensor(f"{p}.dt_bias", "ssm_param", (s.n_heads,)),
               MixerTensor(f"{p}.A_log", "ssm_param", (s.n_heads,)), MixerTensor(f"{p}.D", "ssm_param", (s.n_heads,))]
        if s.gated_norm:
            ts.append(MixerTensor(f"{p}.norm.weight", "norm", (s.d_inner,)))
    ts += _linear(f"{p}.out_proj", "ssm_out", h, s.d_inner, s.out_bias)
    return ts


def linear_attention_tensors(h: int, la: LinearAttnSpec, p: str) -> list[MixerTensor]:
    """Qwen3NextGatedDeltaNet: in_proj_qkvz, in_proj_ba (beta and decay per value head), a bias-free
    depthwise conv over q, k, v, dt_bias and A_log per value head, a gated RMSNorm of the value width, out_proj."""
    kv = la.value_heads * la.value_head_dim
    return [
        MixerTensor(f"{p}.conv1d.weight", "ssm_param", (la.conv_dim, 1, la.conv_kernel)),
        MixerTensor(f"{p}.in_proj_qkvz.weight", "ssm_in", (2 * la.key_heads * la.key_head_dim + 2 * kv, h)),
        MixerTensor(f"{p}.in_proj_ba.weight", "ssm_in", (2 * la.value_heads, h)),
        MixerTensor(f"{p}.dt_bias", "ssm_param", (la.value_heads,)),
        MixerTensor(f"{p}.A_log", "ssm_param", (la.value_heads,)),
        MixerTensor(f"{p}.norm.weight", "norm", (la.value_head_dim,)),
        MixerTensor(f"{p}.out_proj.weight", "ssm_out", (h, kv)),
    ]


def short_conv_tensors(h: int, c: ShortConvSpec, p: str) -> list[MixerTensor]:
    """Lfm2ShortConv: depthwise conv (hidden channels), in_proj (3 x hidden), out_proj; biases with conv_bias."""
    ts = [MixerTensor(f"{p}.conv.weight", "ssm_param", (h, 1, c.kernel))]
    if c.bias:
        ts.append(MixerTensor(f"{p}.conv.bias", "ssm_param", (h,)))
    return ts + _linear(f"{p}.in_proj", "ssm_in", 3 * h, h, c.bias) + _linear(f"{p}.out_proj", "ssm_out", h, h, c.bias)


def mixer_tensors(spec: ModelSpec, i: int, kind: MixerKind) -> list[MixerTensor]:
    """The parameters of layer ``i``'s non-attention mixer of ``kind`` (empty for attention and none)."""
    mx = spec.mixers
    h = spec.hidden_size
    if mx is None:
        return []
    if kind == "mamba" and mx.ssm is not None:
        return ssm_tensors(h, mx.ssm, f"layers.{i}.mamba")
    if kind == "linear_attention" and mx.linear is not None:
        return linear_attention_tensors(h, mx.linear, f"layers.{i}.linear_attn")
    if kind == "short_conv" and mx.conv is not None:
        return short_conv_tensors(h, mx.conv, f"layers.{i}.conv")
    if kind == "lightning" and mx.lightning is not None:
        la, p = mx.lightning, f"layers.{i}.attn"
        inner = la.heads * la.head_dim
        return [MixerTensor(f"{p}.qkv_proj.weight", "ssm_in", (3 * inner, h)),
                MixerTensor(f"{p}.output_gate.weight", "ssm_in", (inner, h)),
                MixerTensor(f"{p}.norm.weight", "norm", (inner,)),
                MixerTensor(f"{p}.out_proj.weight", "ssm_out", (h, inner))]
    if kind == "kda" and mx.kda is not None:
        k, p = mx.kda, f"layers.{i}.attn"
        inner, d = k.heads * k.head_dim, k.head_dim
        return [*(MixerTensor(f"{p}.{q}_proj.weight", "ssm_in", (inner, h)) for q in ("q", "k", "v")),
                MixerTensor(f"{p}.conv1d.weight", "ssm_param", (k.conv_dim, 1, k.conv_kernel)),
                MixerTensor(f"{p}.forget_gate.dt_bias", "ssm_param", (inner,)),
                MixerTensor(f"{p}.forget_gate.A_log", "ssm_param", (1, 1, k.heads, 1)),
                MixerTensor(f"{p}.forget_gate.f_a_proj.weight", "ssm_in", (d, h)),
                MixerTensor(f"{p}.forget_gate.f_b_proj.weight", "ssm_in", (inner, d)),
                MixerTensor(f"{p}.b_proj.weight", "ssm_in", (k.heads, h)),
                MixerTensor(f"{p}.g_a_proj.weight", "ssm_in", (d, h)),
                MixerTensor(f"{p}.g_b_proj.weight", "ssm_in", (inner, d)),
                MixerTensor(f"{p}.o_norm.weight", "norm", (d,)),
                MixerTensor(f"{p}.o_proj.weight", "ssm_out", (h, inner))]
    return []


def dt_rank(hidden: int, value: object) -> int:
    """Mamba's time-step rank: "auto" is ceil(hidden / 16) (configuration_mamba.py, configuration_jamba.py)."""
    return math.ceil(hidden / 16) if value in (None, "auto") else int(value)  # type: ignore[call-overload]
