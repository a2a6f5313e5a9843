"""Weights per GPU under a serving layout: each pipeline stage's tensors with their tensor- and
expert-parallel shares (llm_mem.layout), as vLLM loads them."""

from __future__ import annotations

from functools import lru_cache

from llm_mem.estimators.weights import WeightPlan, tensor_bytes
from llm_mem.layout import Layout, rank_share, stage_layers
from llm_mem.params import inventory
from llm_mem.spec import ModelSpec


def stage_weight_bytes(spec: ModelSpec, plan: WeightPlan, layout: Layout, scale: float = 1.0) -> list[int]:
    """See _stage_weight_bytes (cached: the planner asks for the same stages at every context it tries)."""
    return list(_stage_weight_bytes(spec, plan, layout, scale))


@lru_cache(maxsize=256)
def _stage_weight_bytes(spec: ModelSpec, plan: WeightPlan, layout: Layout, scale: float = 1.0) -> tuple[int, ...]:
    """Weight bytes on one GPU of each pipeline stage under ``layout`` (TP/EP shares applied):
    the embedding on the first stage, final norm and head on the last (a tied head is a second copy
    of the embedding there when PP > 1, as vLLM's last stage loads it). ``scale`` corrects every
    tensor by a measured checkpoint total."""
    sizes = tensor_bytes(spec, plan)
    out = []
    for s in range(layout.pp):
        layers = stage_layers(spec.num_layers, layout.pp, s)
        total = 0.0
        for t in inventory(spec):
            if t.layer is not None:
                on = t.layer in layers
            elif t.role in ("embed", "pos_embed", "embed_proj") or t.name.startswith("embed_norm"):
                on = s == 0 or (t.role == "embed" and spec.tie_word_embeddings and s == layout.pp - 1)
            else:  # final norm, head
                on = s == layout.pp - 1
            if on:
                total += sizes[t.name] * rank_share(t, spec, layout)
        out.append(int(total * scale))
    return tuple(out)
