"""Older decoder-only families with LayerNorms and plain GELU MLPs (Phi-1/2, GPT-J, GPT-Neo, CodeGen, GPTBigCode
(StarCoder 1), MPT), as spec fields over the Llama-way reading of their config.

Read off transformers 5.24 models/<family>/modeling_<family>.py (nn.Linear bias arguments, the norms of
the decoder layer, the head) and configuration_<family>.py (defaults, attribute_map):

* PhiAttention: q/k/v and ``dense`` with bias, q/k LayerNorms over one head (with bias) when qk_layernorm;
  PhiMLP fc1 / fc2 with bias; PhiDecoderLayer: one LayerNorm (attention and MLP in parallel); final LayerNorm;
  lm_head with bias; PhiConfig tie False.
* GPTJAttention: q/k/v/out_proj without bias; GPTJMLP fc_in / fc_out with bias (n_inner, else 4 x n_embd);
  GPTJBlock: one LayerNorm ln_1 (parallel); ln_f; lm_head with bias; GPTJConfig tie False.
* CodeGenAttention: one fused qkv_proj and out_proj without bias; otherwise GPT-J's layout.
* GPTBigCodeAttention: c_attn (hidden + 2 x kv_dim, one K/V head with multi_query) and c_proj with bias;
  ln_1, ln_2, c_fc / c_proj with bias; learned positions (wpe, max_position_embeddings rows); tie True.
* MptBlock: norm_1 / norm_2 LayerNorms whose bias is dropped (``norm.bias = None``), Wqkv and out_proj
  without bias, up_proj to 4 x hidden (fixed, whatever expansion_ratio says) and down_proj without bias;
  norm_f likewise; ALiBi, no position table; tie True; MptPreTrainedModel has no SDPA path (eager).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Fields = dict[str, Any]


def _b(cfg: dict[str, Any], key: str, default: bool) -> bool:
    v = cfg.get(key)
    return default if v is None else bool(v)


def _head_bias(cfg: dict[str, Any]) -> tuple[int, str, str, tuple[int, ...]]:
    return (-1, "lm_head.bias", "bias", (int(cfg["vocab_size"]),))


def _phi(cfg: dict[str, Any]) -> Fields:
    extra = [_head_bias(cfg)]
    if _b(cfg, "qk_layernorm", False):
        d = int(cfg["hidden_size"]) // int(cfg["num_attention_heads"])
        for i in range(int(cfg["num_hidden_layers"])):
            for q in ("q", "k"):
                extra += [(i, f"layers.{i}.attn.{q}_layernorm.{p}", "norm", (d,)) for p in ("weight", "bias")]
    return {"qkv_bias": True, "o_bias": True, "mlp_kind": "plain", "mlp_bias": True, "norm": "layer",
            "norms_per_layer": 1, "parallel_attn": True, "qk_norm": False, "tie_word_embeddings": _b(
                cfg, "tie_word_embeddings", False), "extra": tuple(extra)}


def _gptj(cfg: dict[str, Any], fused: bool) -> Fields:
    return {"qkv_bias": False, "o_bias": False, "mlp_kind": "plain", "mlp_bias": True, "norm": "layer",
            "norms_per_layer": 1, "parallel_attn": True, "fused_qkv": fused, "qk_norm": False,
            "tie_word_embeddings": _b(cfg, "tie_word_embeddings", False), "extra": (_head_bias(cfg),)}


def _gpt_bigcode(cfg: dict[str, Any]) -> Fields:
    heads = int(cfg.get("n_head") or cfg.get("num_attention_heads") or 12)
    positions = int(cfg.get("n_positions") or cfg.get("max_position_embeddings") or 1024)
    return {"qkv_bias": True, "o_bias": True, "mlp_kind": "plain", "mlp_bias": True, "norm": "layer",
            "fused_qkv": True, "qk_norm": False, "num_kv_heads": 1 if _b(cfg, "multi_query", True) else heads,
            "position_embeddings": positions, "tie_word_embeddings": _b(cfg, "tie_word_embeddings", True)}


def _mpt(cfg: dict[str, Any]) -> Fields:
    h = int(cfg.get("d_model") or cfg.get("hidden_size") or 2048)
    return {"qkv_bias": False, "o_bias": False, "mlp_kind": "plain", "mlp_bias": False, "norm": "layer",
            "norm_bias": False, "fused_qkv": True, "qk_norm": False, "alibi": True, "sdpa": False,
            "intermediate_size": 4 * h, "tie_word_embeddings": _b(cfg, "tie_word_embeddings", True)}


def _gpt_neo(cfg: dict[str, Any]) -> Fields:
    """GPTNeoSelfAttention: q/k/v without bias, out_proj with bias; GPTNeoMLP c_fc / c_proj with bias
    (intermediate_size, else 4 x hidden); ln_1, ln_2, ln_f LayerNorms; learned positions (max_position_embeddings
    rows); tie True. GPTNeoConfig.attention_layers expands attention_types ([["global", "local"], 12]): a local
    layer attends within window_size tokens."""
    n = int(cfg.get("num_layers") or 24)
    kinds: list[str] = []
    for item in cfg.get("attention_types") or [[["global", "local"], n // 2]]:
        kinds += list(item[0]) * int(item[1])
    window = int(cfg.get("window_size") or 256)
    positions = int(cfg.get("max_position_embeddings") or 2048)
    return {"qkv_bias": False, "o_bias": True, "mlp_kind": "plain", "mlp_bias": True, "norm": "layer",
            "qk_norm": False, "position_embeddings": positions, "sliding_window": window,
            "layer_types": tuple("sliding" if k == "local" else "full" for k in kinds),
            "tie_word_embeddings": _b(cfg, "tie_word_embeddings", True)}


def _persimmon(cfg: dict[str, Any]) -> Fields:
    """PersimmonAttention: one query_key_value and dense, both with bias, q/k LayerNorms over one head (with bias)
    when qk_layernorm (default); PersimmonMLP dense_h_to_4h / dense_4h_to_h with bias; LayerNorms with bias and a
    final one; tie False."""
    extra: list[tuple[int, str, str, tuple[int, ...]]] = []
    if _b(cfg, "qk_layernorm", True):
        d = int(cfg["hidden_size"]) // int(cfg["num_attention_heads"])
        extra = [(i, f"layers.{i}.attn.{q}_layernorm.{p}", "norm", (d,)) for i in range(int(cfg["num_hidden_layers"]))
                 for q in ("q", "k") for p in ("weight", "bias")]
    return {"qkv_bias": True, "o_bias": True, "mlp_kind": "plain", "mlp_bias": True, "norm": "layer",
            "fused_qkv": True, "qk_norm": False, "num_kv_heads": int(cfg["num_attention_heads"]),
            "extra": tuple(extra), "tie_word_embeddings": _b(cfg, "tie_word_embeddings", False)}


FAMILIES: dict[str, Callable[[dict[str, Any]], Fields]] = {
    "persimmon": _persimmon,
    # XGLMDecoderLayer: OPT-style (q/k/v/out_proj and fc1 / fc2 with bias, LayerNorms with bias, a final
    # layer_norm) with sinusoidal positions, which are a buffer; tie True
    "xglm": lambda c: {"qkv_bias": True, "o_bias": True, "mlp_kind": "plain", "mlp_bias": True, "norm": "layer",
                       "qk_norm": False, "tie_word_embeddings": _b(c, "tie_word_embeddings", True)},
    # OpenAI GPT (modeling_openai.py): GPT-2's Conv1D blocks (fused c_attn, c_proj, c_fc with biases, ln_1 / ln_2)
    # applied post-LN, so no final norm; learned positions (n_positions); tie True
    "openai-gpt": lambda c: {"qkv_bias": True, "o_bias": True, "mlp_kind": "plain", "mlp_bias": True, "norm": "layer",
                             "fused_qkv": True, "qk_norm": False, "final_norm": False,
                             "position_embeddings": int(c.get("n_positions") or 512),
                             "tie_word_embeddings": _b(c, "tie_word_embeddings", True)},
    "gpt_neo": _gpt_neo,
    "phi": _phi,
    "gptj": lambda c: _gptj(c, False),
    "codegen": lambda c: _gptj(c, True),
    "gpt_bigcode": _gpt_bigcode,
    "mpt": _mpt,
}


def unsupported(cfg: dict[str, Any], family: str) -> str | None:
    """An option these layouts do not cover, or None."""
    if family == "gpt_bigcode" and cfg.get("add_cross_attention"):
        return "add_cross_attention"
    return None
