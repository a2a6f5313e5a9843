"""The layouts the engines' docs and recipes use, when the user names none.

vLLM (docs/serving/parallelism_scaling.md): tensor parallel inside a node, pipeline parallel across
nodes ("TP 8 x PP 2 on two 8-GPU nodes"); tensor parallel over TP x DP for experts, or expert parallel
for the many-expert models whose recipes use it (DeepSeek-V3/R1 and Kimi-K2 on 8 GPUs run "TP 8 + EP";
docs.vllm.ai recipes, DeepSeek-V3). TP must divide the attention heads (and divide or be divided by the
KV heads); the planner takes the largest such TP that fits the node and the GPU count.
llama.cpp and transformers split layers over the GPUs of one machine (llama.cpp --split-mode layer,
transformers device_map="auto").
"""

from __future__ import annotations

from llm_mem.layout import Layout, tp_problem
from llm_mem.spec import ModelSpec

# Expert parallel by default from this many routed experts: the models whose vLLM recipes run EP
# (DeepSeek-V3/R1: 256 experts, Kimi-K2: 384); Mixtral (8), gpt-oss (32/128) and Qwen3 (128) recipes use TP.
EP_DEFAULT_EXPERTS = 256
# GPUs per machine when the catalog gives no node size: an 8-GPU server (HGX/DGX boards and most 4U PCIe
# servers; see docs/catalog.md, "Node size").
DEFAULT_NODE_SIZE = 8


def vllm_layout(spec: ModelSpec, n: int, node: int) -> Layout | None:
    """The layout vLLM's docs use for ``n`` GPUs in nodes of ``node``: TP as large as the node allows
    (dividing the heads), PP across nodes; None when no TP x PP split of ``n`` is valid."""
    for tp in range(min(n, node), 0, -1):
        if n % tp or tp_problem(spec, tp) is not None:
            continue
        pp = n // tp
        if pp > spec.num_layers:
            continue
        if pp > 1 and n > node and tp < node and node % tp == 0 and tp_problem(spec, node) is None:
            continue  # a whole node per stage is the recipe across nodes
        ep = spec.is_moe and spec.moe is not None and spec.moe.num_experts >= EP_DEFAULT_EXPERTS and tp > 1
        return Layout(tp=tp, pp=pp, ep=ep)
    return None


def nodes_for(n: int, node: int) -> int:
    """Machines ``n`` GPUs need in nodes of ``node``."""
    return -(-n // node)
