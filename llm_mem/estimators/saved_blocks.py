"""transformers 5.24's decoder blocks replayed on llm_mem.estimators.saved's ops: attention (eager,
SDPA, MLA, soft-capping, sinks, fused projections), MLPs, mixture-of-experts, the layer orders
(sequential, parallel, Gemma's four norms) and what sits outside the layers (embeddings, final
norm, head, loss). Each rule names the module whose forward it replays."""

from __future__ import annotations

from llm_mem.estimators.saved import Replay, Val
from llm_mem.spec import ModelSpec

# Activations written as Python ops that autograd records one by one: transformers' NewGELUActivation
# (activations.py, "gelu_new": `0.5 * x * (1 + tanh(c * (x + 0.044715 * pow(x, 3))))`).
PYTHON_GELU = frozenset({"gelu_new"})
# Activations that save their output rather than their input (ReLU's backward needs only the output).
OUTPUT_SAVING = frozenset({"relu"})


def _no_rope(spec: ModelSpec) -> bool:
    """Learned absolute positions (GPT-2, OPT) or ALiBi (BLOOM): q and k stay views of the projection."""
    return spec.alibi or spec.position_embeddings > 0


def _qkv(r: Replay, spec: ModelSpec, x: Val) -> tuple[Val, Val, Val, Val | None]:
    """q, k, v after the projections, and the fused buffer they are views of (None: own storages)."""
    tc, a, kv, d = spec.training, spec.num_heads, spec.num_kv_heads, spec.head_dim
    if len(tc.qkv_modules) == 1:
        fused = r.linear(x, tc.qkv_modules[0], (a + 2 * kv) * d, parallel="column")
        if tc.qkv_split_copies:  # Falcon: `.transpose(1, 2).reshape(...)` copies each part
            return (r.new("q", a * d, None, fused.rg), r.new("k", kv * d, None, fused.rg),
                    r.new("v", kv * d, None, fused.rg), None)
        return fused, fused, fused, fused
    q, k, v = (r.linear(x, n, w, parallel="column") for n, w in zip(tc.qkv_modules, (a * d, kv * d, kv * d)))
    return q, k, v, None


def attention(r: Replay, spec: ModelSpec, x: Val, kind: str, b: int) -> Val:
    """Self-attention, from the normed input to the output projection's output."""
    if spec.mla is not None:
        return mla(r, spec, x, kind, b)
    a, kv, d, elem, tc = spec.num_heads, spec.num_kv_heads, spec.head_dim, r.elem, spec.training
    q, k, v, fused = _qkv(r, spec, x)
    if spec.qk_norm:  # Qwen3/Gemma3/OLMo-2: per-head RMSNorm of q and k (one rstd per head)
        q, k = r.rms(q, "q_norm", a * d, groups=a), r.rms(k, "k_norm", kv * d, groups=kv)
    rope = not _no_rope(spec)
    if rope:  # `q * cos + rotate_half(q) * sin` makes new q and k (cos and sin are shared by every layer)
        q, k = r.new("q_rope", a * d, None, q.rg), r.new("k_rope", kv * d, None, k.rg)
    rg = q.rg or k.rg or v.rg
    # K/V broadcast to every query head by matmul (no repeat_kv): a view at batch 1, a copy otherwise
    heads_kv = kv if (tc.kv_broadcast and b == 1) else a
    math = kind == "sdpa" and ((spec.attention_dropout > 0 and r.kern.sdpa_dropout_math) or tc.kv_broadcast)
    if kind != "eager" and not math:
        # flash / SDPA kernels: q, k, v as given (GQA native), the output and an fp32 logsumexp. The output
        # is laid out like q: a token-major q (the transposed view of its own projection, kept by RoPE's
        # elementwise ops) makes `transpose(1, 2).contiguous()` a no-op, so the output is o_proj's input;
        # a head-major q (a slice of a fused projection, GPT-NeoX's partial-rotary cat) makes it a copy
        if r.expand_kv and kv < a:  # torchtune: copies of K and V at query width go to the kernel
            k, v = r.new("k_expanded", a * d, None, k.rg), r.new("v_expanded", a * d, None, v.rg)
        out = r.new("attn_out", a * d, None, rg)
        if rg:
            r.keep(q, k, v, out, r.new("lse", a, 4))
        # q not a token-major view: the transposed copy o_proj reads (compiled: recomputed from the saved output)
        if (tc.q_head_major or fused is not None or tc.qkv_split_copies) and not r.compiled:
            out = r.new("attn_out_t", a * d, None, rg)
        return r.linear(out, tc.o_module, spec.hidden_size, parallel="row")
    if math:  # SDPA's math path: q, k, v upcast to fp32 and kept, fp32 softmax (and dropout) per score
        if rg:
            r.keep(r.new("q32", a * d, 4), r.new("k32", heads_kv * d, 4), r.new("v32", heads_kv * d, 4))
            r.keep_score("softmax32", 4)
            if spec.attention_dropout > 0:
                r.keep_score("drop_mask32", 4)
                r.keep_score("dropped32", 4)
        return r.linear(r.new("attn_out", a * d, None, rg), tc.o_module, spec.hidden_size, parallel="row")
    # eager: matmul saves q and K (each when the other needs a gradient), softmax its output, the
    # probabilities (cast back to the compute dtype) and V for the second matmul
    view = fused is not None and b == 1  # batch-1 views of the fused projection reshape without a copy
    if not rope:
        q = fused if view and fused is not None else r.new("q_bmm", a * d, None, q.rg)
    if kv < a and not tc.kv_broadcast:
        k, v = r.new("k_rep", a * d, None, k.rg), r.new("v_rep", a * d, None, v.rg)
    else:
        if not rope:
            k = fused if view and fused is not None else r.new("k_bmm", heads_kv * d, None, k.rg)
        if fused is not None and not view:
            v = r.new("v_bmm", heads_kv * d, None, v.rg)
        elif tc.kv_broadcast and b > 1:
            k, v = r.new("k_bmm", a * d, None, k.rg), r.new("v_bmm", a * d, None, v.rg)
    if k.rg:
        r.keep(q)
    if q.rg:
        r.keep(k)
    srg = q.rg or k.rg
    probs = "probs" if spec.eager_softmax_fp32 and not spec.attention_sinks else "softmax"
    if srg:
        if tc.attn_softcap:  # Gemma-2: `scores / cap`, tanh, `* cap`: tanh keeps its output
            r.keep_score("softcap_tanh", elem)
        if spec.attention_sinks:  # gpt-oss: cat(scores, sinks) - row max (argmax kept), softmax in bf16
            r.keep(r.new("max_idx", a, 8), r.new("sink_col", a, elem))
        r.keep_score("softmax", 4 if probs == "probs" else elem)  # softmax(dtype=float32) keeps fp32
    if spec.attention_dropout > 0:
        if srg:
            r.keep_score("drop_mask", r.kern.dropout_mask or elem)
        probs = "dropped"
    if v.rg:
        r.keep_score(probs, elem)
    if srg:
        r.keep(v)
    return r.linear(r.new("attn_out", a * d, None, srg or v.rg), tc.o_module, spec.hidden_size,
                    parallel="row")


def mla(r: Replay, spec: ModelSpec, x: Val, kind: str, b: int) -> Val:
    """DeepSeek multi-head latent attention (modeling_deepseek_v2.py / _v3.py): low-rank q (optional),
    the compressed kv latent and its norm, kv_b's expansion to per-head K/V."""
    assert spec.mla is not None
    m, a = spec.mla, spec.num_heads
    qk = m.qk_nope_head_dim + m.qk_rope_head_dim
    if m.q_lora_rank:
        q_a = r.rms(r.linear(x, "q_a_proj", m.q_lora_rank, parallel="duplicated"), "q_a_layernorm")
        q = r.linear(q_a, "q_b_proj", a * qk, parallel="column")
    else:
        q = r.linear(x, "q_proj", a * qk, parallel="column")
    kv_a = r.linear(x, "kv_a_proj_with_mqa", m.kv_lora_rank + m.qk_rope_head_dim, parallel="duplicated")
    latent = r.rms(kv_a, "kv_a_layernorm", m.kv_lora_rank)
    kv_b = r.linear(latent, "kv_b_proj", a * (m.qk_nope_head_dim + m.v_head_dim), parallel="column")
    rg = q.rg or kv_b.rg or kv_a.rg
    if kind == "flash" or (kind == "sdpa" and not r.kern.sdpa_dim_mismatch_math):
        if rg:  # q and k are cats of their nope and rope parts: head-major, so the output is copied for o_proj
            r.keep(r.new("q", a * qk), r.new("k", a * qk), r.new("v", a * m.v_head_dim),
                   r.new("attn_out_heads", a * m.v_head_dim), r.new("lse", a, 4))
    elif kind == "sdpa":  # q/k and v head dims differ: CPU takes the math path, fp32 q, k, v and softmax
        if rg:
            r.keep(r.new("q32", a * qk, 4), r.new("k32", a * qk, 4), r.new("v32", a * m.v_head_dim, 4))
            r.keep_score("softmax32", 4)
    elif rg:  # eager: expanded q, K; V a view of kv_b's output at batch 1, a copy otherwise; fp32 softmax
        r.keep(r.new("q", a * qk), r.new("k", a * qk), kv_b if b == 1 else r.new("v", a * m.v_head_dim))
        r.keep_score("softmax32", 4)
        r.keep_score("probs", r.elem)
    out = r.new("attn_out", a * m.v_head_dim, None, rg)
    return r.linear(out, spec.training.o_module, spec.hidden_size, parallel="row")


def _activation(r: Replay, spec: ModelSpec, x: Val) -> Val:
    act = (spec.hidden_act or "silu").lower()
    if act in OUTPUT_SAVING:
        return r.act_out(x, "act")
    if act in PYTHON_GELU:  # pow saves x, tanh its output, `0.5 * x * (1 + tanh)` both factors
        if x.rg:
            r.keep(x, r.new("tanh", x.width), r.new("half_x", x.width), r.new("one_plus", x.width))
        return r.new("act", x.width, None, x.rg)
    return r.act_in(x, "act")


def mlp(r: Replay, spec: ModelSpec, x: Val, width: int, prefix: str = "") -> Val:
    """A dense MLP: SwiGLU/GeGLU (separate or fused gate_up) or a plain two-layer MLP."""
    tc, h = spec.training, spec.hidden_size
    if spec.mlp_kind == "gated":
        if len(tc.up_modules) == 1:  # Phi-3: gate and up are halves (views) of one gate_up output
            gu = r.linear(x, prefix + tc.up_modules[0], 2 * width, parallel="column")
            if r.compiled:  # act(gate half) is recomputed from the saved gate_up output
                if gu.rg:
                    r.keep(gu)
                prod = r.new("prod", width, None, gu.rg)
            else:
                act = r.act_in(gu, "act", width=width)
                prod = r.mul(gu, act, "prod", width=width)
        else:
            gate = r.linear(x, prefix + tc.up_modules[0], width, parallel="column")
            up = r.linear(x, prefix + tc.up_modules[1], width, parallel="column")
            if r.compiled:  # act(gate) is recomputed from the saved gate in backward (min-cut partitioner)
                if gate.rg or up.rg:
                    r.keep(gate)
                if gate.rg:
                    r.keep(up)
                prod = r.new("prod", width, None, gate.rg or up.rg)
            else:
                prod = r.mul(r.act_in(gate, "act"), up, "prod")
        return r.linear(prod, prefix + tc.down_module, h, parallel="row")
    up = r.linear(x, prefix + tc.up_modules[0], width, parallel="column")
    return r.linear(_activation(r, spec, up), prefix + tc.down_module, h, parallel="row")


def _router(r: Replay, spec: ModelSpec, x: Val) -> Val:
    """The MoE router: its input (fp32 for DeepSeek: `hidden_states.type(torch.float32)`), the expert
    scores (softmax or sigmoid, fp32) and top-k bookkeeping; returns the routing weights per pair."""
    assert spec.moe is not None
    tc, e, k, h = spec.training, spec.moe.num_experts, spec.moe.top_k, spec.hidden_size
    adapted = (r.layer, "gate") in r.train.adapted
    rin = r.new("router_in32", h, 4, x.rg) if tc.router_fp32_input else x
    if r.train.full or adapted:
        r.keep(rin)
    if adapted and rin.rg:  # PEFT's ParamWrapper merges W + BA: the merged weight is a new tensor
        r.keep_const("router_w", e * h * rin.size)
    rg = rin.rg or r.train.full or adapted
    if rg:
        if tc.router_scores == "topk_softmax":  # gpt-oss: top-k of the logits, softmax of the k values
            r.keep(r.new("topk_idx", k, 8), r.new("topk_softmax", k, r.elem))
        else:  # softmax (or sigmoid) over every expert in fp32, then top-k (or gather) indices
            r.keep(r.new("scores", e, 4), r.new("topk_idx", k, 8))
        if tc.router_norm_topk:  # `top /= top.sum(-1, keepdim=True)`
            r.keep(r.new("norm_div", k + 1, 4))
    return r.new("routing_w", k, 4 if tc.routing_fp32 else r.elem, rg)


def moe(r: Replay, spec: ModelSpec, x: Val) -> Val:
    """transformers 5's grouped_mm experts (integrations/moe.py grouped_mm_experts_forward) behind the
    router: tokens sorted per expert, two grouped matmuls around the gate, the routing-weight product,
    and the shared experts as a dense MLP. Widths are per token: k routed copies of each token."""
    assert spec.moe is not None
    m, h, elem = spec.moe, spec.hidden_size, r.elem
    k, im, e = m.top_k, m.expert_intermediate_size, m.num_experts
    weights = _router(r, spec, x)
    adapted = r.layer in r.train.experts_adapted
    w_rg = r.train.full or adapted
    xg = r.new("experts_in", k * h, elem, x.rg)  # hidden_states[perm // top_k]
    if x.rg:
        r.keep(r.new("gather_idx", k, 8))
    if w_rg:
        r.keep(xg)
    if adapted and xg.rg:  # PEFT's ParamWrapper: the merged weights W + B A per expert (the grouped matmul's
        # mat2) and the adapters' bf16 copies batched per expert (baddbmm's operands)
        rk = r.train.rank
        r.keep_const("experts_gate_up", e * h * 2 * im * elem + e * 2 * rk * (2 * im + h) * elem)
    r.inside = True  # the experts' intermediate width is split (Megatron's expert TP = --tensor-model-parallel-size)
    gu = r.new("gate_up", k * 2 * im, elem, xg.rg or w_rg)
    if spec.training.expert_clamp_glu:  # gpt-oss: clamp, sigmoid(alpha * gate), (up + 1) * glu
        if gu.rg:
            r.keep(gu, *(r.new(n, k * im) for n in ("sigmoid", "gate_clamped", "up_plus_1", "glu")))
        prod = r.new("glu_out", k * im, elem, gu.rg)
    elif r.compiled:  # SiLU of the gate half recomputed from the saved gate_up in backward
        if gu.rg:
            r.keep(gu)
        prod = r.new("prod", k * im, elem, gu.rg)
    else:
        act = r.act_in(gu, "act", width=k * im)  # SiLU of the gate half (a view of gate_up)
        prod = r.mul(act, gu, "prod", width=k * im)
    if w_rg:
        r.keep(prod)
    if adapted and prod.rg:
        r.keep_const("experts_down", e * im * h * elem + e * r.train.rank * (im + h) * elem)
    r.inside = False
    out = r.new("experts_out", k * h, elem, prod.rg or w_rg)
    if m.expert_bias and r.train.full:  # the biases indexed per pair: `bias[expert_ids_g]` keeps the index
        r.keep(r.new("bias_idx", k, 8))
    weighted = r.mul(out, weights, "weighted", width=k * h)
    if weights.rg:
        r.keep(r.new("weights_idx", k, 8))  # sample_weights[perm]
    if weighted.rg:
        r.keep(r.new("inv_perm_idx", k, 8))  # weighted_out[inv_perm]
    r.keep_const("offsets", 4 * e)
    y = r.new("moe_out", h, elem, weighted.rg)
    if m.shared_intermediate_size:
        shared = mlp(r, spec, x, m.shared_intermediate_size, "shared_experts.")
        y = r.new("moe_sum", h, elem, y.rg or shared.rg)
    return y


# ---- Unsloth's fused LoRA kernels (issue 17) -------------------------------------------------------
# Unsloth 2026.8.19 (unsloth/kernels/fast_lora.py, fast_layernorm.py, rope_embedding.py at 015bdef) replaces a
# Llama-style decoder's LoRA projections with three autograd Functions when every projection of a block
# carries an adapter without dropout: LoRA_QKV saves its input X only (q, k and v and the adapters' rank-r
# products are recomputed in backward), LoRA_W (o_proj) its input, LoRA_MLP its input and the gate and up
# outputs e and g (SwiGLU and its product recomputed); its RMSNorm saves the input and one fp32 rstd per row,
# its RoPE only the shared cos/sin. Read from the source, not measured (Unsloth's kernels are Triton, GPU only).
UNSLOTH_QKV = ("q_proj", "k_proj", "v_proj")
UNSLOTH_MLP = ("gate_proj", "up_proj", "down_proj")


def unsloth_unsupported(spec: ModelSpec) -> str | None:
    """Why Unsloth's fused LoRA kernels are not sized for this model, or None when they are."""
    tc = spec.training
    for bad, what in ((spec.norm != "rms", "LayerNorm"), (spec.mlp_kind != "gated" or len(tc.up_modules) != 2,
                                                           "a non-gated or fused gate_up MLP"),
                      (tc.qkv_modules != UNSLOTH_QKV, "a fused qkv projection"), (spec.parallel_attn, "parallel "
                                                                                   "attention"),
                      (spec.norms_per_layer != 2, "Gemma's four norms"), (spec.mla is not None, "MLA"),
                      (spec.moe is not None, "MoE experts"), (bool(spec.attention_sinks), "attention sinks"),
                      (bool(tc.attn_softcap or tc.logit_softcap), "soft-capping"),
                      (spec.mixers is not None, "state-space layers"), (tc.norm_fp32_scale, "Gemma's norms")):
        if bad:
            return what
    return None


def unsloth_fused(adapted: set[str], dropout: float, o_module: str) -> tuple[bool, bool, bool]:
    """Which blocks run Unsloth's kernels (q/k/v, o_proj, the MLP): those whose every projection carries an
    adapter, and none with LoRA dropout (Unsloth's patch_peft_model leaves the others to PEFT)."""
    if dropout:
        return False, False, False
    return set(UNSLOTH_QKV) <= adapted, o_module in adapted, set(UNSLOTH_MLP) <= adapted


def unsloth_layer(r: Replay, spec: ModelSpec, kind: str, b: int, x: Val) -> Val:
    """A Llama-style decoder layer under Unsloth's kernels; a block whose projections are not all adapted (or
    carry LoRA dropout) runs PEFT's modules, as Unsloth's patch_peft_model leaves it."""
    a, kv, d, h = spec.num_heads, spec.num_kv_heads, spec.head_dim, spec.hidden_size
    fast_qkv, fast_o, fast_mlp = unsloth_fused({n for (i, n) in r.train.adapted if i == r.layer}, r.train.dropout,
                                               spec.training.o_module)

    def fast_rms(v: Val, name: str, width: float, groups: int = 1) -> Val:
        if v.rg:
            r.keep(v, r.new(f"{name}.rstd", groups, 4))
        return r.new(name, width, None, v.rg)

    n1 = fast_rms(x, "ln1", h)
    if fast_qkv:
        r.keep(n1)  # LoRA_QKV: X
        q, k, v = (r.new(n, w, None, True) for n, w in zip(("q", "k", "v"), (a * d, kv * d, kv * d)))
    else:
        q, k, v, _ = _qkv(r, spec, n1)
    if spec.qk_norm:
        q, k = fast_rms(q, "q_norm", a * d, groups=a), fast_rms(k, "k_norm", kv * d, groups=kv)
    if not _no_rope(spec):  # Fast_RoPE_Embedding keeps only cos and sin
        q, k = r.new("q_rope", a * d, None, q.rg), r.new("k_rope", kv * d, None, k.rg)
    out = r.new("attn_out", a * d, None, True)
    r.keep(q, k, v, out, r.new("lse", a, 4))  # flash attention; o_proj's input is a view of the output
    if fast_o:
        o = r.new("o", h, None, True)  # LoRA_W: X, the attention output already kept
    else:
        o = r.linear(out, spec.training.o_module, h, parallel="row")
    mid = r.new("mid", h, None, x.rg or o.rg)
    n2 = fast_rms(mid, "ln2", h)
    inter = spec.intermediate_size
    if fast_mlp:
        r.keep(n2, r.new("e", inter), r.new("g", inter))  # LoRA_MLP: X, e, g
        # its backward allocates DW = dY @ down^T (T x I) and gets dY (T x h); the rest is written in place into
        # DW, e, g and X (inplace=True, fast_lora.py LoRA_MLP.backward)
        r.backward_tok += (inter + h) * r.elem
        f = r.new("mlp_out", h, None, True)
    else:
        f = mlp(r, spec, n2, inter)
    return r.new("out", h, None, mid.rg or f.rg)


def layer(r: Replay, spec: ModelSpec, kind: str, b: int, x: Val) -> Val:
    """One decoder layer from its input to its output: the block order of the family (pre-norm
    sequential; parallel attention and MLP (GPT-NeoX, Falcon); Gemma's norms around both sublayers),
    residual dropout where the config has it."""
    assert r.layer is not None
    if r.unsloth and not r.train.full and unsloth_unsupported(spec) is None:
        return unsloth_layer(r, spec, kind, b, x)
    norm = r.rms if spec.norm == "rms" else r.layernorm
    moe_layer = spec.moe is not None and spec.moe.moe_layers[r.layer]

    def ffn(inp: Val) -> Val:
        return moe(r, spec, inp) if moe_layer else mlp(r, spec, inp, spec.intermediate_size)

    drop = spec.hidden_dropout
    if spec.parallel_attn:  # attention and MLP both read the layer input (one shared norm, or two)
        n1 = norm(x, "ln1")
        att = r.dropout(attention(r, spec, n1, kind, b), drop, "attn_drop")
        f = r.dropout(ffn(norm(x, "ln2") if spec.norms_per_layer >= 2 else n1), drop, "mlp_drop")
        return r.new("out", spec.hidden_size, None, x.rg or att.rg or f.rg)
    att = attention(r, spec, norm(x, "ln1"), kind, b)
    if spec.norms_per_layer >= 4:  # Gemma-2/3: post_attention_layernorm on the attention output
        att = norm(att, "post_attn")
    att = r.dropout(att, drop, "attn_drop")
    mid = r.new("mid", spec.hidden_size, None, x.rg or att.rg)
    f = ffn(norm(mid, "ln2"))
    if spec.norms_per_layer >= 4:
        f = norm(f, "post_ffn")
    f = r.dropout(f, drop, "mlp_drop")
    return r.new("out", spec.hidden_size, None, mid.rg or f.rg)


def embeddings(r: Replay, spec: ModelSpec, input_grads: bool = False) -> Val:
    """Token (+ learned position) embeddings, their dropout and norm: the first layer's input.
    ``input_grads``: the embeddings' output requires grad even when they are frozen (transformers 5's
    activation_checkpointing_enable calls enable_input_require_grads for every text model)."""
    h, full = spec.hidden_size, r.train.full
    if full:  # EmbeddingBackward keeps the int64 indices
        r.keep(r.new("input_ids", 1, 8))
        if spec.position_embeddings:  # position ids: (1, s) for GPT-2, (b, s) for OPT; int64
            r.keep(r.new("position_ids", 1, 8))
    x = r.new("embeds", spec.embed_proj_dim or h, None, full or input_grads)
    if spec.embed_proj_dim:  # OPT's project_in
        x = r.linear(x, "project_in", h)
    x = r.dropout(x, spec.training.embed_dropout, "embed_drop")  # GPT-2's embd_pdrop
    if spec.embedding_norm:  # BLOOM's word_embeddings_layernorm
        x = r.layernorm(x, "embed_norm")
    return x


def head(r: Replay, spec: ModelSpec, x: Val) -> tuple[Val, float]:
    """Final norm and lm_head (frozen under LoRA: PEFT never wraps the output layer); returns the
    logits and the bytes per token the loss saves of them (fp32 log-softmax, Gemma-2's tanh)."""
    norm = r.rms if spec.norm == "rms" else r.layernorm
    if spec.final_norm:
        x = norm(x, "final_norm")
    if spec.embed_proj_dim:  # OPT's project_out
        x = r.linear(x, "project_out", spec.embed_proj_dim)
    logits = r.linear(x, "lm_head", spec.vocab_size)
    per_token = 0.0
    if logits.rg:
        if spec.training.logit_softcap:  # `logits / cap`, tanh, `* cap` (modeling_gemma2.py ForCausalLM)
            per_token += spec.vocab_size * r.elem
        # ForCausalLMLoss: `logits.float()`, cross_entropy: log_softmax keeps its fp32 output, nll the targets
        per_token += spec.vocab_size * 4
        r.keep(r.new("targets", 1, 8))
    return logits, per_token
