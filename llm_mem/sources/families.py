"""Llama-shaped families whose modules differ from Llama's in a few switches (biases, norms, q/k norms,
MoE blocks), as spec fields. ``fields(cfg, family)`` returns what the parser overrides after reading the
config the Llama way; ``unsupported(cfg, family)`` names an option whose layout is not modelled here
(the parser then lets transformers count the model).

Every entry is read off transformers 5.24 models/<family>/modeling_<family>.py (the nn.Linear bias
arguments, the norms of the decoder layer) and configuration_<family>.py (defaults, attribute_map).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_mem.sources import classic, encoders
from llm_mem.spec import MoeSpec

Fields = dict[str, Any]


def _b(cfg: dict[str, Any], key: str, default: bool) -> bool:
    v = cfg.get(key)
    return default if v is None else bool(v)


def _tie(cfg: dict[str, Any], default: bool) -> Fields:
    return {"tie_word_embeddings": _b(cfg, "tie_word_embeddings", default)}


def _attn(cfg: dict[str, Any], key: str = "attention_bias", default: bool = False, o: bool | None = None) -> Fields:
    """q/k/v biases from ``key``; o_proj the same unless ``o`` fixes it."""
    b = _b(cfg, key, default)
    return {"qkv_bias": b, "o_bias": b if o is None else o}


def _llama4(c: dict[str, Any]) -> Fields:
    """Llama4TextDecoderLayer (modeling_llama4.py): the MoE block (routed experts of intermediate_size, one
    shared expert of the same width, a bias-free router) where the layer is in moe_layers, else a gated MLP of
    intermediate_size_mlp; q/k/v/o biased by attention_bias; the q/k L2Norm has no weight. Llama4TextConfig
    __post_init__: moe_layers every interleave_moe_layer_step-th layer, layer_types chunked where no_rope_layers
    says RoPE (every no_rope_layer_interval-th layer is full, NoPE). A chunked layer attends within
    attention_chunk_size tokens: its KV is counted as a window of that size (vLLM 0.34 ChunkedLocalAttentionSpec
    keeps at most one chunk per request)."""
    n = int(c["num_hidden_layers"])
    step = int(c.get("interleave_moe_layer_step") or 1)
    moe_layers = c.get("moe_layers")
    if not isinstance(moe_layers, list):
        moe_layers = list(range(step - 1, n, step))
    inter = int(c.get("intermediate_size") or 8192)
    chunk = c.get("attention_chunk_size", 8192)
    types = c.get("layer_types")
    if not isinstance(types, list) or len(types) != n:
        interval = int(c.get("no_rope_layer_interval") or 4)
        no_rope = c.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(n)]
        types = ["chunked_attention" if r and chunk is not None else "full_attention" for r in no_rope]
    kinds = tuple("sliding" if "chunked" in str(t) and chunk else "full" for t in types)
    moe = MoeSpec(num_experts=int(c.get("num_local_experts") or 16), top_k=int(c.get("num_experts_per_tok") or 1),
                  expert_intermediate_size=inter, shared_intermediate_size=inter,
                  moe_layers=tuple(i in moe_layers for i in range(n)))
    return {**_attn(c), "mlp_bias": False, "qk_norm": False, "moe": moe,
            "intermediate_size": int(c.get("intermediate_size_mlp") or 16384), "layer_types": kinds,
            "sliding_window": int(chunk) if chunk and "sliding" in kinds else None, **_tie(c, False)}


def _deepseek_v32(c: dict[str, Any]) -> Fields:
    """DeepseekV32Attention (modeling_deepseek_v32.py): DeepSeek-V3's MLA plus the lightning indexer per layer
    (DeepseekV32Indexer: wq_b from the q LoRA rank to index_n_heads x index_head_dim, wk from hidden to one
    index_head_dim key, a LayerNorm k_norm with bias, weights_proj to index_n_heads; no biases); MoE where
    mlp_layer_types says "sparse" (DeepseekV32Config: the first first_k_dense_replace layers dense)."""
    n, h = int(c["num_hidden_layers"]), int(c["hidden_size"])
    d, heads = int(c.get("index_head_dim") or 128), int(c.get("index_n_heads") or 64)
    q_rank = int(c.get("q_lora_rank") or 1536)
    extra: list[tuple[int, str, str, tuple[int, ...]]] = []
    for i in range(n):
        p = f"layers.{i}.attn.indexer"
        extra += [(i, f"{p}.wq_b.weight", "attn_q_b", (heads * d, q_rank)), (i, f"{p}.wk.weight", "attn_kv_a", (d, h)),
                  (i, f"{p}.k_norm.weight", "norm", (d,)), (i, f"{p}.k_norm.bias", "norm", (d,)),
                  (i, f"{p}.weights_proj.weight", "router", (heads, h))]
    out: Fields = {"indexer_head_dim": d, "extra": tuple(extra), **_tie(c, False)}
    types = c.get("mlp_layer_types")
    if isinstance(types, list) and len(types) == n:
        experts = int(c.get("n_routed_experts") or 256)
        moe_i = int(c.get("moe_intermediate_size") or 2048)
        out["moe"] = MoeSpec(num_experts=experts, top_k=int(c.get("num_experts_per_tok") or 8),
                             expert_intermediate_size=moe_i,
                             shared_intermediate_size=moe_i * int(c.get("n_shared_experts") or 0),
                             moe_layers=tuple(t == "sparse" for t in types))
    return out


def _gemma3n(c: dict[str, Any]) -> Fields:
    """Gemma3nTextDecoderLayer (modeling_gemma3n.py): Gemma 3's attention (q/k norms per head; v_norm has no
    weight) and four norms, a gated MLP, plus per layer AltUp (correct_output_scale, correction_coefs,
    prediction_coefs, modality_router, router_norm), LAuReL (linear_left / linear_right of laurel_rank,
    post_laurel_norm) and the per-layer input (per_layer_input_gate, per_layer_projection of
    hidden_size_per_layer_input, post_per_layer_input_norm); around them Gemma3nTextModel's per-layer
    embedding table (vocab_size_per_layer_input x layers x hidden_size_per_layer_input), its projection and
    norm, and altup_num_inputs - 1 AltUp projections in and out. The last num_kv_shared_layers layers reuse
    an earlier layer's K and V (Gemma3nTextConfig.kv_sharing_modes): no k/v projections there."""
    n, h = int(c["num_hidden_layers"]), int(c["hidden_size"])
    alt, rank = int(c.get("altup_num_inputs") or 4), int(c.get("laurel_rank") or 64)
    hpl = int(c.get("hidden_size_per_layer_input") or 256)
    extra: list[tuple[int, str, str, tuple[int, ...]]] = [
        (-1, "embed_tokens_per_layer.weight", "embed", (int(c.get("vocab_size_per_layer_input") or 262144), n * hpl)),
        (-1, "per_layer_model_projection.weight", "embed_proj", (n * hpl, h)),
        (-1, "per_layer_projection_norm.weight", "norm", (hpl,))]
    for k in range(1, alt):
        extra += [(-1, f"altup_projections.{k - 1}.weight", "embed_proj", (h, h)),
                  (-1, f"altup_unembed_projections.{k - 1}.weight", "embed_proj", (h, h))]
    for i in range(n):
        p = f"layers.{i}"
        extra += [(i, f"{p}.altup.correct_output_scale", "norm", (h,)),
                  (i, f"{p}.altup.correction_coefs.weight", "router", (alt, alt)),
                  (i, f"{p}.altup.prediction_coefs.weight", "router", (alt * alt, alt)),
                  (i, f"{p}.altup.modality_router.weight", "router", (alt, h)),
                  (i, f"{p}.altup.router_norm.weight", "norm", (h,)),
                  (i, f"{p}.laurel.linear_left.weight", "mlp_up", (rank, h)),
                  (i, f"{p}.laurel.linear_right.weight", "mlp_down", (h, rank)),
                  (i, f"{p}.laurel.post_laurel_norm.weight", "norm", (h,)),
                  (i, f"{p}.per_layer_input_gate.weight", "mlp_up", (hpl, h)),
                  (i, f"{p}.per_layer_projection.weight", "mlp_down", (h, hpl)),
                  (i, f"{p}.post_per_layer_input_norm.weight", "norm", (h,))]
    return {**_attn(c), "mlp_bias": False, "qk_norm": True, "qk_norm_full": False, "norms_per_layer": 4,
            "kv_shared_layers": int(c.get("num_kv_shared_layers") or 0), "extra": tuple(extra), **_tie(c, True)}


# family -> fields. Comments: the modeling file's layer, where it differs from Llama.
FAMILIES: dict[str, Callable[[dict[str, Any]], Fields]] = {
    # CwmAttention: q/k/v/o never biased; CwmMLP mlp_bias; CwmConfig tie False
    "cwm": lambda c: {**_attn(c, "-", False), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    # Ernie4_5: every projection biased by use_bias; tie True
    "ernie4_5": lambda c: {**_attn(c, "use_bias"), "mlp_bias": _b(c, "use_bias", False), **_tie(c, True)},
    # ExaoneConfig / InternLM3Config / IQuestCoderConfig build LlamaForCausalLM (modeling_auto mapping);
    # InternLM3Config attribute_map: qkv_bias -> attention_bias, bias -> mlp_bias
    "exaone": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    "internlm3": lambda c: {**_attn(c, "qkv_bias" if "qkv_bias" in c else "attention_bias"),
                            "mlp_bias": _b(c, "bias" if "bias" in c else "mlp_bias", False), **_tie(c, False)},
    "iquestcoder": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    # HeliumAttention: o_proj (hidden, hidden) without bias (unsupported() checks heads x head_dim == hidden)
    "helium": lambda c: {**_attn(c, o=False), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    # Ministral3: no biases; tie False
    "ministral3": lambda c: {**_attn(c, "-", False), "mlp_bias": False, **_tie(c, False)},
    # SmolLM3: attention_bias on all four projections; tie True
    "smollm3": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, True)},
    # VaultGemma: two norms (input, pre-feedforward), MLP without bias; tie True
    "vaultgemma": lambda c: {**_attn(c), "mlp_bias": False, **_tie(c, True)},
    # OlmoLayerNorm has no weight and no bias: no norm parameters at all
    "olmo": lambda c: {**_attn(c), "mlp_bias": False, "norms_per_layer": 0, "final_norm": False, **_tie(c, False)},
    # Olmo2/Olmo3: q_norm over heads x head_dim, k_norm over kv heads x head_dim
    "olmo2": lambda c: {**_attn(c), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True, **_tie(c, False)},
    "olmo3": lambda c: {**_attn(c), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True, **_tie(c, False)},
    # Olmoe: q_norm over hidden, k_norm over (hidden / heads) x kv heads; MoE router (experts, hidden)
    "olmoe": lambda c: {**_attn(c), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True, **_tie(c, False)},
    # GraniteMoe(Shared): attention_bias on all four; experts only (plus the shared MLP)
    "granitemoe": lambda c: {**_attn(c), **_tie(c, False)},
    "granitemoeshared": lambda c: {**_attn(c), **_tie(c, False)},
    # SeedOss: q/k/v bias attention_bias (default True), o_proj attention_out_bias (default False)
    "seed_oss": lambda c: {**_attn(c, default=True, o=_b(c, "attention_out_bias", False)),
                           "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
    # Exaone4: no biases, q/k RMSNorm per head
    "exaone4": lambda c: {**_attn(c, "-", False), "mlp_bias": False, "qk_norm": True, **_tie(c, False)},
    # MiniMaxM2: no biases, q/k norm over all heads; router (experts, hidden); e_score_correction_bias is a buffer
    "minimax_m2": lambda c: {**_attn(c, "-", False), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True,
                             **_tie(c, False)},
    # Glm / Glm4: q/k/v bias attention_bias (default True), o_proj without; fused gate_up (same count);
    # Glm4 adds post_self_attn_layernorm and post_mlp_layernorm
    "glm": lambda c: {**_attn(c, default=True, o=False), "mlp_bias": False, **_tie(c, False)},
    "glm4": lambda c: {**_attn(c, default=True, o=False), "mlp_bias": False, "norms_per_layer": 4, **_tie(c, False)},
    # Glm4Moe: DeepSeek-style layout (first_k_dense_replace, shared = moe_intermediate_size x n_shared_experts),
    # q/k/v bias attention_bias, o_proj without, q/k norm per head when use_qk_norm
    "glm4_moe": lambda c: {**_attn(c, o=False), "mlp_bias": False, "qk_norm": _b(c, "use_qk_norm", False),
                           **_tie(c, False)},
    # Cohere: one LayerNorm per layer (parallel attention and MLP), LayerNorms without bias, q/k norms over
    # (heads, head_dim) when use_qk_norm; Cohere2 the same without q/k norms; tie True
    "cohere": lambda c: {**_attn(c), "mlp_bias": False, "norm": "layer", "norm_bias": False, "norms_per_layer": 1,
                         "qk_norm": _b(c, "use_qk_norm", False), "qk_norm_full": True, **_tie(c, True)},
    "cohere2": lambda c: {**_attn(c), "mlp_bias": False, "norm": "layer", "norm_bias": False, "norms_per_layer": 1,
                          **_tie(c, True)},
    # Starcoder2: LayerNorms with bias, plain c_fc / c_proj MLP; use_bias on every projection; tie True
    "starcoder2": lambda c: {**_attn(c, "use_bias", True), "mlp_kind": "plain", "mlp_bias": _b(c, "use_bias", True),
                             "norm": "layer", **_tie(c, True)},
    # StableLm: LayerNorms with bias, no post-attention norm with use_parallel_residual, q/k bias
    # use_qkv_bias, o_proj (hidden, hidden) without bias, per-head q/k LayerNorms without bias (qk_layernorm)
    "stablelm": lambda c: {**_attn(c, "use_qkv_bias", o=False), "mlp_bias": False, "norm": "layer",
                           "norms_per_layer": 1 if _b(c, "use_parallel_residual", False) else 2,
                           "qk_norm": _b(c, "qk_layernorm", False), "qk_norm_full": True,
                           **_tie(c, False)},
    # PhiMoE: LayerNorms with bias (elementwise_affine), attention_bias on all four, router without bias
    "phimoe": lambda c: {**_attn(c), "norm": "layer", **_tie(c, False)},
    "llama4_text": _llama4,
    "deepseek_v32": _deepseek_v32,
    "gemma3n_text": _gemma3n,
    # Arcee: plain up/down MLP (ReLU^2) with mlp_bias
    "arcee": lambda c: {**_attn(c), "mlp_kind": "plain", "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, False)},
}

FAMILIES.update(encoders.FAMILIES)  # BERT-style encoders and ModernBERT-decoder (llm_mem.sources.encoders)
FAMILIES.update(classic.FAMILIES)  # Phi-1/2, GPT-J, CodeGen, GPTBigCode, MPT (llm_mem.sources.classic)


def _heads_span_hidden(cfg: dict[str, Any]) -> bool:
    h, a = cfg.get("hidden_size"), cfg.get("num_attention_heads")
    d = cfg.get("head_dim")
    return not (isinstance(h, int) and isinstance(a, int) and a and isinstance(d, int) and a * d != h)


def unsupported(cfg: dict[str, Any], family: str) -> str | None:
    """An option of ``family`` that these fields do not lay out, or None."""
    if family in ("helium", "stablelm", "olmoe") and not _heads_span_hidden(cfg):
        return "num_attention_heads x head_dim != hidden_size"  # an o_proj or q_norm of hidden width
    if family == "gemma3n_text":
        inter = cfg.get("intermediate_size")
        if isinstance(inter, list) and len(set(map(str, inter))) > 1:
            return "intermediate_size varying by layer"
        if cfg.get("num_kv_shared_layers", 15) and not isinstance(cfg.get("layer_types"), list):
            return "layer_types"  # the producers of shared KV are found by layer kind
    if family == "deepseek_v32" and not cfg.get("q_lora_rank", 1536):
        return "q_lora_rank"  # the indexer's wq_b reads the q LoRA latent
    if family == "phimoe" and cfg.get("lm_head_bias"):
        return "lm_head_bias"
    return encoders.unsupported(cfg, family) or classic.unsupported(cfg, family)


def fields(cfg: dict[str, Any], family: str) -> Fields:
    """The spec fields ``family`` overrides (empty for families read the Llama way)."""
    fn = FAMILIES.get(family)
    return fn(cfg) if fn is not None else {}
