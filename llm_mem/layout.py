"""Parallel layouts: how a model's tensors and layers are spread over GPUs, per rank.

Modelled on vLLM 0.34.0 (the serving engine whose layouts people run):
* tensor parallel (TP): column/row-parallel linears split their weights 1/TP
  (vllm/model_executor/layers/linear.py); the embedding and head are vocab-parallel, padded to a
  multiple of 64 (vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE) per rank; KV heads are
  split, and replicated once TP exceeds them (models/llama.py: ``max(1, total_num_kv_heads // tp)``);
  norms, routers and MLA's low-rank down-projections (ReplicatedLinear) are replicated.
* pipeline parallel (PP): vllm/distributed/utils.py ``get_pp_indices``: layers split evenly, the
  remainder to the partitions before the last (the middle ones first); the embedding sits on the
  first stage, the final norm and head on the last.
* data parallel (DP) of attention with expert parallel (EP): attention and dense weights are
  replicated on every DP rank; routed experts are split over EP = TP x DP ranks
  (fused_moe/config.py FusedMoEParallelConfig.make; expert_map_manager.py determine_expert_map:
  the first ``E % EP`` ranks hold one more). Without EP, experts are tensor-sliced over TP x DP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llm_mem.params import EXPERT_ROLES, Tensor
from llm_mem.spec import ModelSpec

# vocab_parallel_embedding.py: DEFAULT_VOCAB_PADDING_SIZE = 64; the padded vocab is split over TP.
VOCAB_PADDING = 64
# Roles whose weights (and column-parallel biases) a TP rank holds 1/TP of.
_TP_SPLIT = frozenset({"attn_q", "attn_qkv", "attn_o", "attn_q_b", "attn_kv_b", "mlp_gate", "mlp_up", "mlp_down",
                       "shared_gate", "shared_up", "shared_down", "embed", "lm_head", "bias"})
# Roles every TP rank holds whole: norms, routers, MLA's q_a / kv_a down-projections (ReplicatedLinear).
_REPLICATED = frozenset({"norm", "router", "attn_q_a", "attn_kv_a", "pos_embed", "embed_proj"})


@dataclass(frozen=True)
class Layout:
    """A serving layout: tensor x pipeline x data parallel GPUs, experts split or sliced."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: bool = False  # --enable-expert-parallel

    @property
    def gpus(self) -> int:
        """GPUs the layout occupies."""
        return self.tp * self.pp * self.dp

    @property
    def expert_ranks(self) -> int:
        """Ranks the routed experts are spread over (split with EP, sliced without): TP x DP."""
        return self.tp * self.dp

    def describe(self) -> str:
        """"TP 8 + EP", "TP 2 x PP 2", "DP 8 + EP"."""
        parts = []
        if self.dp > 1:
            parts.append(f"DP {self.dp}")
        if self.tp > 1 or self.pp > 1 or self.dp == 1:
            parts.append(f"TP {self.tp}")
        if self.pp > 1:
            parts.append(f"PP {self.pp}")
        return " x ".join(parts) + (" + EP" if self.ep else "")


def pp_partition(n_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage as vLLM's get_pp_indices splits them."""
    base = n_layers // pp
    parts = [base] * pp
    for i in range(2, n_layers % pp + 2):
        parts[-i] += 1
    return parts


def stage_layers(n_layers: int, pp: int, stage: int) -> range:
    """The decoder layers pipeline stage ``stage`` holds."""
    parts = pp_partition(n_layers, pp)
    start = sum(parts[:stage])
    return range(start, start + parts[stage])


def kv_heads_per_rank(kv_heads: int, tp: int) -> int:
    """KV heads one TP rank caches: split while TP <= KV heads, one replicated head each beyond."""
    return max(1, kv_heads // tp)


def tp_problem(spec: ModelSpec, tp: int) -> str | None:
    """Why TP ``tp`` cannot split this model (vLLM asserts heads % tp == 0, and KV heads divide or
    are divided by tp), or None."""
    if spec.num_heads % tp:
        return f"TP {tp} does not divide {spec.num_heads} attention heads"
    if spec.mla is None and spec.num_kv_heads % tp and tp % spec.num_kv_heads:
        return f"TP {tp} and {spec.num_kv_heads} KV heads neither divide the other"
    return None


def rank_share(t: Tensor, spec: ModelSpec, layout: Layout) -> float:
    """The fraction of tensor ``t``'s bytes one rank of ``layout`` holds (pipeline stages aside)."""
    tp = layout.tp
    if t.role in EXPERT_ROLES:
        n = layout.expert_ranks
        if layout.ep:  # whole experts: the busiest rank holds ceil(E / EP) of them
            return math.ceil(t.copies / n) / t.copies if t.copies > 1 else 1.0
        return 1.0 / n
    if tp == 1 or t.role in _REPLICATED:
        return 1.0
    if t.role in ("attn_k", "attn_v"):
        return kv_heads_per_rank(spec.num_kv_heads, tp) / spec.num_kv_heads
    if t.role in ("embed", "lm_head"):
        padded = -(-spec.vocab_size // (VOCAB_PADDING * tp)) * VOCAB_PADDING * tp
        return padded / tp / spec.vocab_size
    if t.role in _TP_SPLIT or t.role.startswith(("attn_", "mlp_", "shared_")):
        return 1.0 / tp
    return 1.0
