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
    mlp_layer_types says "sparse" (read by the parser's DeepSeek MoE layout)."""
    n, h = int(c["num_hidden_layers"]), int(c["hidden_size"])
    d, heads = int(c.get("index_head_dim") or 128), int(c.get("index_n_heads") or 64)
    q_rank = int(c.get("q_lora_rank") or 1536)
    extra: list[tuple[int, str, str, tuple[int, ...]]] = []
    for i in range(n):
        p = f"layers.{i}.attn.indexer"
        extra += [(i, f"{p}.wq_b.weight", "attn_q_b", (heads * d, q_rank)), (i, f"{p}.wk.weight", "attn_kv_a", (d, h)),
                  (i, f"{p}.k_norm.weight", "norm", (d,)), (i, f"{p}.k_norm.bias", "norm", (d,)),
                  (i, f"{p}.weights_proj.weight", "router", (heads, h))]
    return {"indexer_head_dim": d, "extra": tuple(extra), **_tie(c, False)}


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


def _ernie45_moe(c: dict[str, Any]) -> Fields:
    """Ernie4_5_MoeDecoderLayer (modeling_ernie4_5_moe.py): every projection (and lm_head) biased by use_bias;
    the MoE block where (i + 1) % moe_layer_interval == 0 and moe_layer_start_index <= i <= moe_layer_end_index
    (-1: the last layer), else a dense MLP: moe_num_experts experts of moe_intermediate_size, moe_num_shared_experts
    shared ones, a bias-free router and its e_score_correction_bias, a (1, experts) parameter (Ernie4_5_MoeStatics)."""
    n = int(c["num_hidden_layers"])
    start, end = int(c.get("moe_layer_start_index", 1) or 0), c.get("moe_layer_end_index", -1)
    end = n - 1 if end in (None, -1) else int(end)
    step = int(c.get("moe_layer_interval") or 1)
    layers = tuple((i + 1) % step == 0 and start <= i <= end for i in range(n))
    experts, moe_i = int(c.get("moe_num_experts") or 64), int(c.get("moe_intermediate_size") or 1536)
    moe = MoeSpec(num_experts=experts, top_k=int(c.get("moe_k") or 6), expert_intermediate_size=moe_i,
                  shared_intermediate_size=moe_i * int(c.get("moe_num_shared_experts") or 0), moe_layers=layers)
    extra: list[tuple[int, str, str, tuple[int, ...]]] = [
        (i, f"layers.{i}.mlp.gate.moe_statics.e_score_correction_bias", "router", (1, experts))
        for i in range(n) if layers[i]]
    bias = _b(c, "use_bias", False)
    if bias:
        extra.append((-1, "lm_head.bias", "bias", (int(c["vocab_size"]),)))
    return {**_attn(c, "use_bias"), "mlp_bias": bias, "moe": moe if any(layers) else None, "extra": tuple(extra),
            **_tie(c, True)}


def _typed_moe(c: dict[str, Any], experts: int, top_k: int, width: int, shared: int) -> MoeSpec | None:
    """The MoE block where mlp_layer_types says "sparse" (absent: from first_k_dense_replace, else every layer)."""
    n = int(c["num_hidden_layers"])
    types = c.get("mlp_layer_types")
    if not isinstance(types, list) or len(types) != n:
        first = int(c.get("first_k_dense_replace") or 0)
        types = ["dense" if i < first else "sparse" for i in range(n)]
    layers = tuple(t == "sparse" for t in types)
    return MoeSpec(num_experts=experts, top_k=top_k, expert_intermediate_size=width, shared_intermediate_size=shared,
                   moe_layers=layers) if any(layers) else None


def _exaone_moe(c: dict[str, Any]) -> Fields:
    """ExaoneMoeDecoderLayer (modeling_exaone_moe.py): Exaone 4's bias-free attention with per-head q/k norms;
    the MoE block where mlp_layer_types says "sparse" (else from first_k_dense_replace): num_experts experts of
    moe_intermediate_size, num_shared_experts shared ones, a bias-free router (e_score_correction_bias is a
    buffer); a dense MLP elsewhere."""
    moe_i = int(c.get("moe_intermediate_size") or 1024)
    moe = _typed_moe(c, int(c.get("num_experts") or 64), int(c.get("num_experts_per_tok") or 8), moe_i,
                     moe_i * int(c.get("num_shared_experts") or 0))
    return {**_attn(c, "-", False), "mlp_bias": False, "qk_norm": True, "moe": moe, **_tie(c, False)}


def _hy_v3(c: dict[str, Any]) -> Fields:
    """HYV3DecoderLayer (modeling_hy_v3.py): per-head q/k norms, q/k/v/o biased by attention_bias, MLPs by mlp_bias;
    the MoE block (num_experts of moe_intermediate_size, num_shared_experts shared ones, a bias-free router whose
    e_score_correction_bias is not a parameter) where mlp_layer_types says "sparse"."""
    moe_i = int(c.get("moe_intermediate_size") or 1536)
    # HYV3Config.__post_init__: without mlp_layer_types, layer 0 dense and the rest sparse
    moe = _typed_moe({**c, "first_k_dense_replace": 1}, int(c.get("num_experts") or 192),
                     int(c.get("num_experts_per_tok") or 8), moe_i, moe_i * int(c.get("num_shared_experts") or 0))
    return {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), "qk_norm": True, "moe": moe, **_tie(c, False)}


def _mellum(c: dict[str, Any]) -> Fields:
    """MellumDecoderLayer (modeling_mellum.py): per-head q/k norms, q/k/v/o biased by attention_bias; where
    mlp_layer_types says "sparse", num_local_experts experts of moe_intermediate_size and a bias-free router (no
    shared expert), else a gated MLP of intermediate_size."""
    moe = _typed_moe(c, int(c.get("num_local_experts") or 64), int(c.get("num_experts_per_tok") or 8),
                     int(c.get("moe_intermediate_size") or 896), 0)
    return {**_attn(c), "mlp_bias": False, "qk_norm": True, "moe": moe, **_tie(c, False)}


def _afmoe(c: dict[str, Any]) -> Fields:
    """AfmoeDecoderLayer (modeling_afmoe.py): attention with q/k/v/o biased by attention_bias, per-head q/k norms and
    a bias-free output gate (gate_proj, heads x head_dim); four norms; from layer num_dense_layers on, the MoE block
    (num_experts of moe_intermediate_size, num_shared_experts shared ones, router.gate without bias, and
    expert_bias, a parameter of one value per expert), before it a gated MLP of intermediate_size."""
    n, h = int(c["num_hidden_layers"]), int(c["hidden_size"])
    heads = int(c.get("num_attention_heads") or 16)
    d = int(c.get("head_dim") or h // heads)
    experts, moe_i = int(c.get("num_experts") or 64), int(c.get("moe_intermediate_size") or 1408)
    moe = _typed_moe({"num_hidden_layers": n, "first_k_dense_replace": int(c.get("num_dense_layers", 1) or 0)},
                     experts, int(c.get("num_experts_per_tok") or 6), moe_i,
                     moe_i * int(c.get("num_shared_experts", 2) or 0))
    extra: list[tuple[int, str, str, tuple[int, ...]]] = [
        (i, f"layers.{i}.attn.gate_proj.weight", "attn_q", (heads * d, h)) for i in range(n)]
    if moe is not None:
        extra += [(i, f"layers.{i}.mlp.expert_bias", "router", (experts,)) for i in range(n) if moe.moe_layers[i]]
    return {**_attn(c), "mlp_bias": False, "qk_norm": True, "norms_per_layer": 4, "moe": moe, "extra": tuple(extra),
            **_tie(c, False)}


def _apertus(c: dict[str, Any]) -> Fields:
    """ApertusDecoderLayer (modeling_apertus.py): q/k/v/o biased by attention_bias, per-head q/k RMSNorms, a plain
    bias-free up / down MLP whose xIELU activation (ApertusConfig hidden_act "xielu") holds two scalars,
    alpha_p and alpha_n (activations.py XIELUActivation)."""
    extra: list[tuple[int, str, str, tuple[int, ...]]] = []
    if str(c.get("hidden_act") or "xielu") == "xielu":
        extra = [(i, f"layers.{i}.mlp.act_fn.{a}", "norm", (1,)) for i in range(int(c["num_hidden_layers"]))
                 for a in ("alpha_p", "alpha_n")]
    return {**_attn(c), "mlp_kind": "plain", "mlp_bias": False, "qk_norm": True, "extra": tuple(extra),
            **_tie(c, False)}


def _bitnet(c: dict[str, Any]) -> Fields:
    """BitNetDecoderLayer (modeling_bitnet.py): Llama's layer plus an RMSNorm before o_proj (attn_sub_norm,
    hidden wide) and one before down_proj (ffn_sub_norm, intermediate wide)."""
    h, i_w = int(c["hidden_size"]), int(c.get("intermediate_size") or 6912)
    extra = [t for i in range(int(c["num_hidden_layers"]))
             for t in ((i, f"layers.{i}.attn.attn_sub_norm.weight", "norm", (h,)),
                       (i, f"layers.{i}.mlp.ffn_sub_norm.weight", "norm", (i_w,)))]
    return {**_attn(c), "mlp_bias": False, "extra": tuple(extra), **_tie(c, False)}


def _cohere2_moe(c: dict[str, Any]) -> Fields:
    """Cohere2MoeDecoderLayer (modeling_cohere2_moe.py): where mlp_layer_types says "sparse", experts of
    intermediate_size and, with num_shared_experts > 0, one shared MLP of intermediate_size x num_shared_experts;
    where it says "dense", a gated MLP of prefix_dense_intermediate_size (else intermediate_size). The norms are
    RMSNorms when rms_norm_eps is set, else bias-free LayerNorms (the same count)."""
    n, inter = int(c["num_hidden_layers"]), int(c.get("intermediate_size") or 22528)
    types = c.get("mlp_layer_types")
    if not isinstance(types, list) or len(types) != n:
        types = ["sparse"] * n
    moe = _typed_moe({**c, "mlp_layer_types": types}, int(c.get("num_experts") or 8),
                     int(c.get("num_experts_per_tok") or 2), inter, inter * int(c.get("num_shared_experts") or 0))
    return {"moe": moe, "norm": "rms" if c.get("rms_norm_eps") else "layer",
            "intermediate_size": int(c.get("prefix_dense_intermediate_size") or inter)}


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
    # GraniteSWA / GraniteMoeSWA: Granite(MoE(Shared))'s layer plus per-head attention sinks; tie True / False
    "granite_swa": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), "attention_sinks": True,
                              **_tie(c, True)},
    "granitemoe_swa": lambda c: {**_attn(c), "attention_sinks": True, **_tie(c, False)},
    # FlexOlmo: OLMoE's layer (q/k norms over all heads, post-attention and post-feedforward norms); tie False
    "flex_olmo": lambda c: {**_attn(c), "mlp_bias": False, "qk_norm": True, "qk_norm_full": True, **_tie(c, False)},
    # NanoChat: RMSNorms without weights (no norm parameters), q/k norms likewise, a plain fc1 / fc2 MLP without
    # bias (relu^2); tie False
    "nanochat": lambda c: {**_attn(c), "mlp_kind": "plain", "mlp_bias": False, "norms_per_layer": 0,
                           "final_norm": False, "qk_norm": False, **_tie(c, False)},
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
    # Glm4vMoeText: GLM-4-MoE's layer (the parser's DeepSeek-style MoE), q/k/v biased by attention_bias (default
    # True here), o_proj never, no q/k norms
    "glm4v_moe_text": lambda c: {**_attn(c, default=True, o=False), "mlp_bias": False, "qk_norm": False,
                                 **_tie(c, False)},
    # Glm4vTextAttention: q/k/v always biased, o_proj never; Glm4's four norms and fused gate_up
    "glm4v_text": lambda c: {"qkv_bias": True, "o_bias": False, "mlp_bias": False, "norms_per_layer": 4,
                             **_tie(c, False)},
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
    "ernie4_5_moe": _ernie45_moe,
    "exaone_moe": _exaone_moe,
    "hy_v3": _hy_v3,
    "mellum": _mellum,
    # MiniCPM3 / Youtu-LLM: DeepSeek's MLA (the parser's DEEPSEEK layout), a dense gated MLP; tie True
    "minicpm3": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False), **_tie(c, True)},
    "youtu": lambda c: {**_attn(c), "mlp_bias": False, **_tie(c, True)},
    # HyperCLOVA X: Llama's layer plus post-attention and post-feedforward RMSNorms with use_post_norm (default)
    "hyperclovax": lambda c: {**_attn(c), "mlp_bias": _b(c, "mlp_bias", False),
                              "norms_per_layer": 4 if _b(c, "use_post_norm", True) else 2, **_tie(c, False)},
    "apertus": _apertus,
    # DiffLlamaAttention: Llama's attention plus four head_dim-wide vectors (lambda_q1, lambda_k1, lambda_q2,
    # lambda_k2) per layer; no group norm parameters
    "diffllama": lambda c: {**_attn(c), "mlp_bias": False, **_tie(c, False), "extra": tuple(
        (i, f"layers.{i}.attn.{v}", "norm", (int(c.get("head_dim") or int(c["hidden_size"]) //
                                                 int(c["num_attention_heads"])),))
        for i in range(int(c["num_hidden_layers"])) for v in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"))},
    "afmoe": _afmoe,
    "apertus1p5_text": _apertus,  # Apertus1p5TextDecoderLayer: Apertus's (unsupported(): output_vocab_size)
    "bitnet": _bitnet,
    # Cohere2Moe: Cohere 2's layer with the MoE block (num_experts of intermediate_size, a bias-free router) and
    # num_shared_experts x intermediate_size of shared MLP
    "cohere2_moe": lambda c: {**_attn(c), "mlp_bias": False, "norm_bias": False, "norms_per_layer": 1,
                              **_tie(c, True), **_cohere2_moe(c)},
    # Jais2: LayerNorms with bias, q/k/v/o biased by attention_bias (default True), a plain up / down MLP biased
    # by mlp_bias (default True); tie False
    "jais2": lambda c: {**_attn(c, default=True), "mlp_kind": "plain", "mlp_bias": _b(c, "mlp_bias", True),
                        "norm": "layer", **_tie(c, False)},
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
    if family == "apertus1p5_text" and cfg.get("output_vocab_size") not in (None, cfg.get("vocab_size")):
        return "output_vocab_size"  # a head of another vocabulary than the embedding's
    if family == "phimoe" and cfg.get("lm_head_bias"):
        return "lm_head_bias"
    return encoders.unsupported(cfg, family) or classic.unsupported(cfg, family)


def fields(cfg: dict[str, Any], family: str) -> Fields:
    """The spec fields ``family`` overrides (empty for families read the Llama way)."""
    fn = FAMILIES.get(family)
    return fn(cfg) if fn is not None else {}
