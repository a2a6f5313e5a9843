#!/usr/bin/env python3
"""Check the closed-form saved-activation formulas against measured.json and fit c1/c2.

    python3 benchmarks/activations/analyze.py [--markdown]

For every record it predicts, from the config alone, the bytes of every decoder layer, the bytes outside
the layers and the logits bytes, and prints the relative error against the measurement.  It also fits,
per (model, attn), the steady-state layer bytes to  c1*b*s*h + c2*b*a*s^2  (least squares over the
measured shapes) to show the size of the s^2 term.

Notation (all byte counts; T = b*s tokens; "bf16" = 2 bytes, fp32 = 4 bytes):
  h hidden, a attention heads, kv key/value heads, d head_dim, i intermediate (dense MLP),
  V vocab, E routed experts, k top-k, im moe_intermediate_size, S = T*k routed (token, expert) pairs,
  MLA: r kv_lora_rank, dn qk_nope_head_dim, dr qk_rope_head_dim, dv v_head_dim.
The formulas are the tensors listed in README.md, written for bf16 parameters/activations
(pure-bf16 training as measured: from_config(dtype=bfloat16), no autocast).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------------
def rmsnorm(T, n):
    """HF RMSNorm in bf16: fp32 upcast of the input (saved by pow and mul) 4*T*n, rsqrt 4*T (fp32),
    normalised bf16 tensor (saved by `weight * x` for the weight grad) 2*T*n."""
    return 6 * T * n + 4 * T


def layernorm(T, n):
    """native_layer_norm on CPU: input 2*T*n, mean and rstd in the input dtype 2*T each."""
    return 2 * T * n + 4 * T


def attn_core(r, b, s, attn):
    """Saved tensors of the attention kernel itself (q, k, v, scores), GPT/OPT/Llama/Qwen style."""
    T = b * s
    a, kv, d = r["heads"], r["kv_heads"], r["head_dim"]
    fam = family(r)
    if fam == "gpt2":
        p_attn = r["dropout"].get("attn_pdrop", 0.0)
        if attn == "eager":
            # q, K, V (2 each); softmax in bf16 2; dropout mask (bf16 on CPU) 2; dropped probs 2
            return 6 * T * a * d + (6 if p_attn > 0 else 4) * b * a * s * s
        # sdpa with dropout_p>0 on CPU -> math fallback, upcast to fp32: q,K,V 4 each; softmax, mask, probs 4 each
        if p_attn > 0:
            return 12 * T * a * d + 12 * b * a * s * s
        return 4 * T * a * d + 4 * b * a * s  # pragma: no cover (flash)
    if attn == "eager":
        # q, K (repeated to a heads), V (repeated) bf16; fp32 softmax 4; bf16 probs 2
        return 6 * T * a * d + 6 * b * a * s * s
    # CPU flash SDPA (no mask, no dropout, GQA native): q (a heads), k, v (kv heads), fp32 logsumexp
    return 2 * T * a * d + 4 * T * kv * d + 4 * b * a * s


def family(r):
    m = r["model"].lower()
    if "gpt2" in m:
        return "gpt2"
    if "opt" in m:
        return "opt"
    if "deepseek" in m:
        return "deepseek_v2"
    if "qwen3" in m and r["experts"]:
        return "qwen3_moe"
    return "llama"  # llama, qwen2


def moe_block(r, T):
    """grouped_mm experts (transformers default).  S = T*k."""
    h, E, k, im = r["hidden"], r["experts"], r["top_k"], r["moe_intermediate"]
    S = T * k
    routed = (
        4 * E * 1  # offsets (int32, E)
        + 4 * T * E  # router softmax probs, fp32
        + 8 * T * k  # top-k indices, int64
        + 3 * 8 * S  # int64 gather / permutation indices (3 index ops)
        + 2 * S * h  # tokens gathered per expert (grouped_mm input)
        + 4 * S * im  # gate_up output [S, 2*im] (saved by silu and mul)
        + 2 * S * im  # silu(gate)
        + 2 * S * im  # silu(gate)*up = down-proj input
        + 2 * S * h  # expert output (saved by the routing-weight multiply)
    )
    if family(r) == "qwen3_moe":
        routed += 2 * T * h  # router linear input (bf16 normed hidden)
        routed += 2 * S  # routing weights (bf16)
        routed += 4 * T * k + 4 * T  # norm_topk_prob division (fp32)
    else:  # deepseek_v2
        routed += 4 * T * h  # router input upcast to fp32 (hidden_states.type(float32))
        routed += 4 * S  # routing weights (fp32)
        ish = r["shared_experts"] * im
        routed += 2 * T * h + 8 * T * ish  # shared experts: a SwiGLU MLP of width n_shared*im
    return routed


def layer_bytes(r, b, s, attn, idx):
    """Steady-state bytes saved by decoder layer `idx` (no checkpointing)."""
    T = b * s
    h, a, kv, d, i = r["hidden"], r["heads"], r["kv_heads"], r["head_dim"], r["intermediate"]
    fam = family(r)
    if fam == "gpt2":
        drop = 2 * T * h * 2  # two residual-dropout masks (bf16 on CPU)
        return (layernorm(T, h) * 2 + 2 * T * h * 2  # LN1, LN2; c_attn input, c_fc input
                + 2 * T * h  # c_proj (attn) input
                + attn_core(r, b, s, attn) + drop
                + 10 * T * i)  # gelu_new (python): x, tanh, 1+tanh, 0.5x = 4x2*T*i; c_proj input 2*T*i
    if fam == "opt":
        drop = 2 * T * h * 2
        return (layernorm(T, h) * 2 + 2 * T * h * 2 + 2 * T * h
                + attn_core(r, b, s, attn) + drop
                + 2 * T * i)  # relu output = fc2 input (one storage)
    if fam == "deepseek_v2":
        rr, dn, dr, dv = r["kv_lora_rank"], r["qk_nope_head_dim"], r["qk_rope_head_dim"], r["v_head_dim"]
        att = rmsnorm(T, h) + 2 * T * h + rmsnorm(T, rr) + 2 * T * rr + 2 * T * a * dv
        if attn == "eager":
            # V is a split view of kv_b_proj's output [b, s, a, dn+dv]; bmm needs it as [b*a, s, dv]: for b>1 that
            # forces a contiguous copy (2*T*a*dv), for b==1 the view works and the whole kv_b output is kept.
            v_bytes = 2 * T * a * dv if b > 1 else 2 * T * a * (dn + dv)
            att += 2 * T * a * (dn + dr) * 2 + v_bytes + 6 * b * a * s * s
        else:  # qk_head_dim != v_head_dim -> CPU math SDPA, fp32 upcast of q, k, v; fp32 softmax
            att += 4 * T * a * (dn + dr) * 2 + 4 * T * a * dv + 4 * b * a * s * s
        if r["first_k_dense_replace"] is not None and idx < r["first_k_dense_replace"]:
            mlp = rmsnorm(T, h) + 2 * T * h + 8 * T * i
        else:
            mlp = rmsnorm(T, h) + moe_block(r, T)
        return att + mlp
    # llama / qwen2 / qwen3(-moe)
    att = rmsnorm(T, h) + 2 * T * h + 2 * T * a * d + attn_core(r, b, s, attn)
    if fam == "qwen3_moe":
        att += 6 * T * a * d + 4 * T * a + 6 * T * kv * d + 4 * T * kv  # q_norm / k_norm (per-head RMSNorm)
        mlp = rmsnorm(T, h) + moe_block(r, T)
    else:
        mlp = rmsnorm(T, h) + 2 * T * h + 8 * T * i  # SwiGLU: gate out, up out, silu out, product
    return att + mlp


def shared_bytes(r, b, s, attn, ckpt):
    """Tensors saved by every layer but stored once (attributed to layer 0 by the meter)."""
    b * s
    fam = family(r)
    if ckpt:
        if fam == "gpt2" and attn == "eager":
            return 2 * b * s * s  # (b,1,s,s) bf16 causal mask, passed positionally to the checkpoint
        return 0
    if fam in ("llama", "qwen3_moe"):
        return 2 * 2 * s * r["head_dim"]  # RoPE cos and sin, (1,1,s,d) bf16 each (position_ids has batch 1)
    if fam == "deepseek_v2":
        return 8 * s * r["qk_rope_head_dim"] // 2  # complex64 freqs_cis (1,1,s,dr/2)
    return 0


def outside_bytes(r, b, s):
    T = b * s
    h, V = r["hidden"], r["vocab"]
    fam = family(r)
    # fp32 log_softmax output; int64 shifted labels (a view of the padded [b, s+1] labels when b == 1, a [b*s]
    # copy otherwise); total_weight
    loss = 4 * T * V + (8 * (s + 1) if b == 1 else 8 * T) + 4
    if fam == "gpt2":
        return 8 * T + 8 * s + 2 * T * h + layernorm(T, h) + 2 * T * h + loss  # ids, pos ids, embd dropout
    if fam == "opt":
        return 8 * T + 8 * T + layernorm(T, h) + 2 * T * h + loss
    return 8 * T + rmsnorm(T, h) + 2 * T * h + loss  # ids, final norm, lm_head input, loss


def predict(r):
    b, s, attn, ckpt = r["batch"], r["seq"], r["attn"], r["checkpointing"]
    T = b * s
    L = r["layers"]
    if ckpt:
        per = [2 * T * r["hidden"]] * L  # only the layer input survives
    else:
        per = [layer_bytes(r, b, s, attn, j) for j in range(L)]
    per[0] += shared_bytes(r, b, s, attn, ckpt)
    out = outside_bytes(r, b, s)
    return per, out, 4 * T * r["vocab"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--measured", default=str(HERE / "measured.json"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    recs = json.loads(Path(args.measured).read_text())
    worst = 0.0
    rows = []
    for r in recs:
        if r.get("experts_impl") == "eager":
            continue  # formula is for the default grouped_mm experts
        per, out, lg = predict(r)
        errs = [abs(p - m) / m for p, m in zip(per, r["per_layer_bytes"])]
        errs.append(abs(out - r["outside_layers_bytes"]) / r["outside_layers_bytes"])
        errs.append(abs(lg - r["logits_bytes"]) / r["logits_bytes"])
        tot = sum(per) + out
        errs.append(abs(tot - r["total_saved_bytes"]) / r["total_saved_bytes"])
        e = max(errs)
        worst = max(worst, e)
        rows.append((r, per, out, e))
    MiB = 2 ** 20
    if args.markdown:
        print("| model | b | s | attn | ckpt | per-layer MiB (measured, last layer) | per-layer MiB (formula) "
              "| outside MiB | logits MiB | total MiB | max rel err |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r, per, out, e in rows:
            meas = r["per_layer_bytes"]
            extra = ""
            if r["model"].startswith("deepseek"):
                extra = f" (dense L0: {meas[0]/MiB:.2f})"
            print(f"| {r['model']} | {r['batch']} | {r['seq']} | {r['attn']} | {int(r['checkpointing'])} | "
                  f"{meas[-1]/MiB:.2f}{extra} | {per[-1]/MiB:.2f} | {r['outside_layers_bytes']/MiB:.2f} | "
                  f"{r['logits_bytes']/MiB:.2f} | {r['total_saved_bytes']/MiB:.2f} | {100*e:.3f}% |")
    else:
        for r, per, out, e in rows:
            print(f"{r['model']:30s} b={r['batch']} s={r['seq']:4d} {r['attn']:5s} ckpt={int(r['checkpointing'])} "
                  f"layer[-1] meas={r['per_layer_bytes'][-1]:>11d} pred={per[-1]:>11d}  "
                  f"outside meas={r['outside_layers_bytes']:>11d} pred={out:>11d}  max_err={100*e:.4f}%")
    print(f"\nworst relative error over all records (every layer, outside, logits, total): {100*worst:.4f}%")

    # ---- fits: last-layer bytes = c1*T*h + c2*b*a*s^2 (+ c3*b*a*s for the sdpa logsumexp, folded into c1) ----
    print("\nLeast-squares fit of the last layer's bytes (no checkpointing): bytes = c1*b*s*h + c2*b*a*s^2")
    groups = defaultdict(list)
    for r in recs:
        if not r["checkpointing"] and r.get("experts_impl") != "eager":
            groups[(r["model"], r["attn"])].append(r)
    for (m, attn), rs in groups.items():
        # solve 2x2 normal equations
        X = [(r["batch"] * r["seq"] * r["hidden"], r["batch"] * r["heads"] * r["seq"] ** 2) for r in rs]
        y = [r["per_layer_bytes"][-1] for r in rs]
        sxx = sum(x0 * x0 for x0, _ in X); sxy = sum(x0 * x1 for x0, x1 in X); syy = sum(x1 * x1 for _, x1 in X)
        sx0y = sum(x0 * t for (x0, _), t in zip(X, y)); sx1y = sum(x1 * t for (_, x1), t in zip(X, y))
        det = sxx * syy - sxy * sxy
        c1 = (sx0y * syy - sx1y * sxy) / det
        c2 = (sxx * sx1y - sxy * sx0y) / det
        res = max(abs(c1 * x0 + c2 * x1 - t) / t for (x0, x1), t in zip(X, y))
        print(f"  {m:30s} {attn:5s}  c1 = {c1:8.3f} bytes/(token*hidden)   c2 = {c2:6.3f} bytes/(b*a*s^2)   "
              f"max fit residual {100*res:.2f}%")


if __name__ == "__main__":
    main()
