#!/usr/bin/env python3
"""Write one tiny config per bundled model family to configs/tiny/<model_type>.json.

    python benchmarks/activations/tiny_configs.py

Each tiny config is a bundled config.json (llm_mem/data/models) with every family flag kept
(soft-capping, parallel attention, MQA, sinks, MLA, MoE routing, fused projections, dropout...)
and the sizes cut so that a CPU forward takes well under a second: hidden 256, 8 heads (MHA stays
MHA, GQA becomes 8/2, MQA stays 1), head_dim 32 (48 where the family's head_dim is not
hidden/heads), widths scaled by the family's own ratio to the hidden size, 8 experts, 2 layers
(the first dense where the family starts dense; one sliding and one full layer where it mixes),
vocabulary 4096. The sizes are what measure_families.py measures; the estimator reads the same
files, so the comparison is exact whatever the sizes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "configs" / "tiny"
# one representative bundled config per family (model_type)
SOURCES = {
    "gpt2": "openai-community__gpt2.json",
    "opt": "facebook__opt-125m.json",
    "bloom": "bigscience__bloom-560m.json",
    "gpt_neox": "EleutherAI__gpt-neox-20b.json",
    "falcon": "tiiuae__falcon-7b.json",
    "llama": "meta-llama__Llama-3.1-8B.json",
    "mistral": "mistralai__Mistral-7B-v0.1.json",
    "mixtral": "mistralai__Mixtral-8x7B-v0.1.json",
    "qwen2": "Qwen__Qwen2.5-7B.json",
    "qwen3": "Qwen__Qwen3-8B.json",
    "qwen3_moe": "Qwen__Qwen3-30B-A3B.json",
    "gemma2": "google__gemma-2-9b.json",
    "gemma3_text": "google__gemma-3-12b-it.json",
    "phi3": "microsoft__Phi-3-mini-4k-instruct.json",
    "deepseek_v2": "deepseek-ai__DeepSeek-V2-Lite.json",
    "deepseek_v3": "deepseek-ai__DeepSeek-V3.json",
    "gpt_oss": "openai__gpt-oss-20b.json",
}
H, HEADS, VOCAB, LAYERS, EXPERTS = 256, 8, 4096, 2, 8
DROP = {"architectures", "auto_map", "_name_or_path", "transformers_version", "torch_dtype", "dtype",
        "quantization_config", "id2label", "label2id", "num_nextn_predict_layers"}


def _scaled(v: int, h: int) -> int:
    return max(8, 8 * round(v / h * H / 8))


def tiny(cfg: dict[str, Any]) -> dict[str, Any]:
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrapper: its language model
        cfg = dict(cfg["text_config"])
    c = {k: v for k, v in cfg.items() if k not in DROP}
    hkey = next(k for k in ("hidden_size", "n_embd", "n_embed") if k in c)
    h = int(c[hkey])
    akey = next(k for k in ("num_attention_heads", "n_head") if k in c)
    heads = int(c[akey])
    kv = int(c.get("num_key_value_heads") or heads)
    c[hkey] = H
    c[akey] = HEADS
    if "num_key_value_heads" in c:
        c["num_key_value_heads"] = HEADS if kv == heads else 1 if kv == 1 else 2
    if "num_kv_heads" in c:  # falcon (multi_query decides for the old architecture)
        c["num_kv_heads"] = HEADS
    if c.get("head_dim"):
        c["head_dim"] = 32 if int(c["head_dim"]) * heads == h else 48
    if c.get("query_pre_attn_scalar"):
        c["query_pre_attn_scalar"] = c.get("head_dim", 32)
    for key in ("intermediate_size", "ffn_hidden_size", "n_inner", "ffn_dim", "moe_intermediate_size",
                "shared_expert_intermediate_size"):
        if c.get(key):
            c[key] = _scaled(int(c[key]), h)
    for key in ("num_hidden_layers", "n_layer"):
        if key in c:
            c[key] = LAYERS
    c["vocab_size"] = VOCAB
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if isinstance(c.get(key), int) and c[key] >= VOCAB:
            c[key] = 0
        elif isinstance(c.get(key), list):
            c[key] = [t if t < VOCAB else 0 for t in c[key]]
    for key in ("num_local_experts", "num_experts", "n_routed_experts"):
        if c.get(key):
            c[key] = EXPERTS
    for key in ("num_experts_per_tok", "experts_per_token"):
        if c.get(key):
            c[key] = 2
    if c.get("n_group"):
        c["n_group"], c["topk_group"] = 4, 2
    if c.get("first_k_dense_replace"):
        c["first_k_dense_replace"] = 1
    if c.get("kv_lora_rank"):
        c.update(kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32)
        if c.get("q_lora_rank"):
            c["q_lora_rank"] = 96
    if isinstance(c.get("layer_types"), list):
        c["layer_types"] = c["layer_types"][:LAYERS]
    elif c.get("model_type") == "gemma3_text":  # sliding_window_pattern 6 would make both layers sliding
        c["layer_types"] = ["sliding_attention", "full_attention"]
    return c


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for family, fname in SOURCES.items():
        cfg = json.loads((ROOT / "llm_mem" / "data" / "models" / fname).read_text())
        t = tiny(cfg)
        t["_source"] = f"llm_mem/data/models/{fname}, cut by benchmarks/activations/tiny_configs.py"
        (OUT / f"{family}.json").write_text(json.dumps(t, indent=1, sort_keys=True) + "\n")
        print(f"{family:12s} <- {fname}")


if __name__ == "__main__":
    main()
