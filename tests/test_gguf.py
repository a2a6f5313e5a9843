"""GGUF per-tensor types (llama.cpp src/llama-quant.cpp llama_tensor_get_type_impl) and file sizes.

Expected types are worked out by hand from the rules; sizes are compared with real llama.cpp files
(benchmarks/accuracy/checkpoint_sizes.yaml) and the llama.cpp tools/quantize/README.md table.
"""

from __future__ import annotations

import pytest

from llm_mem.estimators.gguf import GgufModel, gguf_tensors, tensor_type, tensor_types, use_more_bits
from llm_mem.estimators.weights import WeightPlan, weight_bytes
from llm_mem.formats import get_format
from llm_mem.sources import resolve_model


def spec(model: str):
    return resolve_model(model).spec


def types(model: str, recipe: str, imatrix: bool | None = None) -> dict[str, str]:
    return tensor_types(recipe, spec(model), imatrix)


def file_bytes(model: str, recipe: str, imatrix: bool | None = None) -> int:
    return sum(g.nbytes for g in gguf_tensors(recipe, spec(model), imatrix))


L31_8B = "meta-llama/Llama-3.1-8B"  # 32 layers, 32 heads / 8 KV heads (n_gqa 4), untied
# use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2
MORE_BITS_32 = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}


def test_use_more_bits_layers():
    assert {i for i in range(32) if use_more_bits(i, 32)} == MORE_BITS_32


def test_llama31_8b_q4_k_m_types():
    t = types(L31_8B, "Q4_K_M")
    assert t["output.weight"] == "Q6_K"
    assert t["token_embd.weight"] == "Q4_K"  # untied: no rule for Q4_K_M
    assert t["blk.0.attn_v.weight"] == "Q6_K" and t["blk.5.attn_v.weight"] == "Q4_K"
    assert t["blk.6.attn_v.weight"] == "Q6_K"
    assert {i for i in range(32) if t[f"blk.{i}.ffn_down.weight"] == "Q6_K"} == MORE_BITS_32
    assert all(t[f"blk.{i}.ffn_down.weight"] == "Q4_K" for i in set(range(32)) - MORE_BITS_32)
    assert t["blk.7.attn_q.weight"] == t["blk.7.attn_k.weight"] == t["blk.7.attn_output.weight"] == "Q4_K"
    assert t["blk.7.ffn_gate.weight"] == t["blk.7.ffn_up.weight"] == "Q4_K"
    assert t["layers.7.norm0.weight"] == "F32"


def test_q3_k_m_ffn_down_is_q4_k_outside_the_first_sixteenth():
    t = types(L31_8B, "Q3_K_M")
    # ffn_down: i < n/16 (= 2) Q5_K, every other layer Q4_K (non-Falcon)
    assert [t[f"blk.{i}.ffn_down.weight"] for i in range(4)] == ["Q5_K", "Q5_K", "Q4_K", "Q4_K"]
    assert all(t[f"blk.{i}.ffn_down.weight"] == "Q4_K" for i in range(2, 32))
    # attn_v: the first two Q5_K, then Q4_K; attn_output Q4_K; the rest the base Q3_K
    assert [t[f"blk.{i}.attn_v.weight"] for i in range(3)] == ["Q5_K", "Q5_K", "Q4_K"]
    assert t["blk.10.attn_output.weight"] == "Q4_K" and t["blk.10.ffn_up.weight"] == "Q3_K"


def test_falcon_rules():
    t = types("tiiuae/falcon-7b", "Q4_K_M")  # 32 layers; hidden 4544 is not a multiple of 256
    assert t["token_embd.weight"] == "Q8_0"  # tied, Falcon: output rule -> Q8_0
    # Falcon Q4_K_M ffn_down (rows of 18176 = 71 x 256): i < n/16 Q6_K, use_more_bits Q5_K, else Q4_K
    assert t["blk.0.ffn_down.weight"] == "Q6_K" and t["blk.6.ffn_down.weight"] == "Q5_K"
    assert t["blk.5.ffn_down.weight"] == "Q4_K"
    assert t["blk.5.ffn_up.weight"] == "Q5_0"  # Q4_K falls back: 4544 % 256 != 0
    assert t["blk.5.attn_qkv.weight"] == "Q5_0" and t["blk.6.attn_qkv.weight"] == "Q8_0"  # attn_v-like: Q6_K -> Q8_0
    t = types("tiiuae/falcon-7b", "Q3_K_M")
    assert t["blk.5.ffn_down.weight"] == "Q3_K" and t["blk.6.ffn_down.weight"] == "Q4_K"


def test_70b_attn_v_gets_q5_k():
    # model.type LLM_TYPE_70B: llama arch, 80 layers, GQA; attn_v Q3_K/Q4_K -> Q5_K
    for model in ("meta-llama/Llama-3.1-70B", "Qwen/Qwen2.5-72B-Instruct"):
        t = types(model, "Q4_K_M")
        assert t["blk.11.attn_v.weight"] == "Q5_K"  # not use_more_bits(11, 80): Q4_K, bumped
        assert t["blk.12.attn_v.weight"] == "Q6_K"  # use_more_bits(12, 80): (12 - 10) % 3 == 2
    assert types("meta-llama/Llama-3.1-70B", "Q4_K_M")["blk.11.ffn_down.weight"] == "Q4_K"
    # Qwen2.5-72B ffn_down rows of 29568 (not a multiple of 256): Q4_K -> Q5_0, Q6_K -> Q8_0
    t = types("Qwen/Qwen2.5-72B-Instruct", "Q4_K_M")
    assert t["blk.11.ffn_down.weight"] == "Q5_0" and t["blk.12.ffn_down.weight"] == "Q8_0"
    assert types("meta-llama/Llama-3.1-70B", "Q3_K_S")["blk.40.attn_v.weight"] == "Q5_K"
    assert types("meta-llama/Llama-2-70b-hf", "Q2_K")["blk.40.attn_v.weight"] == "Q5_K"  # Q4_K (n_gqa 8) bumped
    assert types(L31_8B, "Q3_K_S")["blk.20.attn_v.weight"] == "Q3_K"  # 32 layers: no bump


def test_mixtral_8_expert_rules():
    t = types("mistralai/Mixtral-8x7B-v0.1", "Q4_K_M")
    assert t["blk.5.attn_v.weight"] == t["blk.5.attn_k.weight"] == "Q8_0"
    assert t["blk.5.attn_output.weight"] == "Q5_K"
    assert t["blk.5.ffn_gate_inp.weight"] == "F32"  # the router is never quantized
    # MoE ffn_down: layer from the tensor name, one merged ffn_down_exps per layer
    assert t["blk.6.ffn_down_exps.weight"] == "Q6_K" and t["blk.5.ffn_down_exps.weight"] == "Q4_K"
    t = types("mistralai/Mixtral-8x7B-v0.1", "IQ3_M")
    assert t["blk.6.ffn_down_exps.weight"] == "Q4_K"  # IQ3_M + 8 experts: use_more_bits layers Q4_K
    assert t["blk.5.ffn_down_exps.weight"] == "IQ3_S"
    assert types("mistralai/Mixtral-8x7B-v0.1", "IQ2_XS")["blk.5.attn_k.weight"] == "Q4_K"


def test_router_is_f32_and_counts_four_bytes():
    s = spec("Qwen/Qwen3-30B-A3B")  # 128 experts, hidden 2048
    g = {x.name: x for x in gguf_tensors("Q4_K_M", s)}
    router = g["blk.0.ffn_gate_inp.weight"]
    assert router.ggml_type == "F32" and router.nbytes == 128 * 2048 * 4
    # 48 layers: use_more_bits(8, 48) since (8 - 6) % 3 == 2; layer 7 not
    assert g["blk.8.ffn_down_exps.weight"].ggml_type == "Q6_K"
    assert g["blk.7.ffn_down_exps.weight"].ggml_type == "Q4_K"


def test_low_bit_iquants():
    t = types(L31_8B, "IQ2_XXS")  # n_gqa 4
    assert t["output.weight"] == "Q5_K" and t["token_embd.weight"] == "Q2_K"
    assert t["blk.9.attn_v.weight"] == "Q4_K"
    # ffn_down: the first n/8 (4) Q2_K
    assert [t[f"blk.{i}.ffn_down.weight"] for i in range(3, 6)] == ["Q2_K", "IQ2_XXS", "IQ2_XXS"]
    assert t["blk.9.attn_output.weight"] == "IQ2_XXS"
    t = types(L31_8B, "IQ2_M")
    assert t["token_embd.weight"] == "IQ3_S" and t["blk.3.ffn_down.weight"] == "IQ3_S"
    assert t["blk.4.ffn_down.weight"] == "IQ2_S" and t["blk.9.attn_output.weight"] == "IQ3_S"
    t = types(L31_8B, "IQ1_S")
    assert t["blk.9.attn_output.weight"] == "IQ2_XXS" and t["blk.9.ffn_up.weight"] == "IQ1_S"
    # MHA (n_gqa 1), dense: attn_v Q2_K (IQ3_S for IQ2_S / IQ2_M)
    assert types("meta-llama/Llama-2-7b-hf", "IQ2_XS")["blk.9.attn_v.weight"] == "Q2_K"
    assert types("meta-llama/Llama-2-7b-hf", "IQ2_S")["blk.9.attn_v.weight"] == "IQ3_S"


def test_low_bit_ffn_down_counter_counts_every_ffn_down_tensor():
    # DeepSeek-V2-Lite: 27 layers (layer 0 dense), experts + shared experts. The IQ2 branch compares the running
    # ffn_down counter with n_layer/8 = 3: blk.0.ffn_down, blk.1.ffn_down_exps, blk.1.ffn_down_shexp get Q2_K.
    t = types("deepseek-ai/DeepSeek-V2-Lite", "IQ2_XXS")
    assert t["blk.1.ffn_down_shexp.weight"] == "Q2_K"  # rows of 2816 = 11 x 256
    assert t["blk.1.ffn_down_exps.weight"] == "Q4_0"  # Q2_K, rows of 1408: falls back to Q4_0
    assert t["blk.2.ffn_down_shexp.weight"] == "IQ2_XXS"
    assert t["blk.2.ffn_down_exps.weight"] == "IQ4_NL"  # IQ2_XXS falls back to IQ4_NL


def test_mla_kv_b_is_split_like_convert_hf_to_gguf():
    t = types("deepseek-ai/DeepSeek-V2-Lite", "Q4_K_M")
    assert "blk.1.attn_kv_b.weight" not in t
    assert t["blk.1.attn_k_b.weight"] == "Q5_0"  # rows of qk_nope_head_dim 128: Q4_K falls back
    assert t["blk.1.attn_v_b.weight"] == "Q4_K"  # rows of kv_lora_rank 512
    s = spec("deepseek-ai/DeepSeek-V2-Lite")
    kv_b = {x.name: x.numel for x in gguf_tensors("Q4_K_M", s) if x.source == "layers.1.attn.kv_b_proj.weight"}
    assert sum(kv_b.values()) == 16 * (128 + 128) * 512


def test_iq3_recipes():
    t = types(L31_8B, "IQ3_XXS")  # needs an imatrix: assumed
    assert t["output.weight"] == "Q5_K" and t["token_embd.weight"] == "IQ3_S"
    assert t["blk.3.attn_q.weight"] == t["blk.3.attn_k.weight"] == "IQ2_S"
    assert t["blk.3.attn_v.weight"] == "Q4_K" and t["blk.3.attn_output.weight"] == "IQ3_S"
    assert t["blk.3.ffn_down.weight"] == "IQ3_XXS"
    t = types(L31_8B, "IQ3_XXS", imatrix=False)
    assert t["blk.3.ffn_down.weight"] == "Q4_K" and t["blk.4.ffn_down.weight"] == "Q3_K"
    assert types("meta-llama/Llama-2-7b-hf", "IQ3_XXS", imatrix=False)["blk.3.attn_v.weight"] == "IQ3_S"
    t = types(L31_8B, "IQ3_M")
    assert t["blk.20.attn_v.weight"] == "Q4_K" and t["blk.20.attn_output.weight"] == "Q4_K"
    assert t["blk.3.ffn_down.weight"] == "Q4_K" and t["blk.4.ffn_down.weight"] == "IQ3_S"
    assert t["output.weight"] == "Q6_K"
    t = types(L31_8B, "IQ3_XS")
    assert t["blk.3.attn_q.weight"] == t["blk.3.attn_k.weight"] == "IQ3_XXS"
    assert t["blk.3.ffn_up.weight"] == "IQ3_S" and t["blk.4.ffn_up.weight"] == "IQ3_XXS"  # n/8 <= i < 7n/8
    assert t["blk.27.ffn_gate.weight"] == "IQ3_XXS" and t["blk.28.ffn_gate.weight"] == "IQ3_S"
    assert t["blk.3.attn_v.weight"] == "Q4_K" and t["blk.3.ffn_down.weight"] == "IQ3_S"
    assert types(L31_8B, "IQ3_S")["blk.3.attn_v.weight"] == "Q4_K"


def test_iq4_ffn_down_without_imatrix():
    t = types(L31_8B, "IQ4_XS")
    assert t["blk.3.ffn_down.weight"] == "Q5_K" and t["blk.4.ffn_down.weight"] == "IQ4_XS"
    assert t["blk.9.attn_v.weight"] == "Q5_K"  # n_gqa >= 4
    assert types(L31_8B, "IQ4_NL", imatrix=True)["blk.3.ffn_down.weight"] == "IQ4_NL"
    # Q4_0 / Q5_0 with an imatrix: the first n/8 ffn_down Q4_1 / Q5_1
    assert types(L31_8B, "Q4_0", imatrix=True)["blk.3.ffn_down.weight"] == "Q4_1"
    assert types(L31_8B, "Q4_0")["blk.3.ffn_down.weight"] == "Q4_0"
    assert types(L31_8B, "Q4_0")["output.weight"] == "Q6_K"


def test_tied_embedding_follows_the_output_rule():
    t = types("meta-llama/Llama-3.2-1B", "Q4_K_M")
    assert "output.weight" not in t and t["token_embd.weight"] == "Q6_K"
    assert types("meta-llama/Llama-3.2-1B", "IQ2_XXS")["token_embd.weight"] == "Q5_K"
    # Qwen2.5-0.5B: rows of 896 are not a multiple of 256 -> Q8_0 (output rule), Q5_0 (Q4_K fallback)
    t = types("Qwen/Qwen2.5-0.5B", "Q4_K_M")
    assert t["token_embd.weight"] == "Q8_0" and t["blk.1.attn_q.weight"] == "Q5_0"


def test_fallback_types():
    m = GgufModel(n_layer=32, n_gqa=1)
    assert tensor_type("IQ2_XS", "mlp_up", 5, 896, m) == "IQ4_NL"
    assert tensor_type("Q6_K", "mlp_up", 5, 896, m) == "Q8_0"
    assert tensor_type("Q5_K_S", "mlp_up", 5, 896, m) == "Q5_1"
    assert tensor_type("Q8_0", "mlp_up", 5, 100, m) == "F16"  # not a multiple of 32 either
    assert tensor_type("F16", "mlp_up", 5, 100, m) == "F16"


def test_weight_bytes_sum_the_gguf_tensors():
    for model, recipe in [(L31_8B, "Q3_K_M"), ("mistralai/Mixtral-8x7B-v0.1", "Q4_K_M"),
                          ("deepseek-ai/DeepSeek-V2-Lite", "IQ2_XXS"), ("openai-community/gpt2", "Q4_K_M")]:
        s = spec(model)
        assert weight_bytes(s, WeightPlan(get_format(recipe), 2)).total == file_bytes(model, recipe)


# llama.cpp tools/quantize/README.md (commit 311c2c9f), meta-llama/Llama-3.1-8B: bits/weight = file tensor bytes x 8
# / 8,030,261,248 parameters, to 4 decimals. Every row, i-quants included.
README_BPW = {
    "IQ1_S": 2.0042, "IQ1_M": 2.1460, "IQ2_XXS": 2.3824, "IQ2_XS": 2.5882, "IQ2_S": 2.7403, "IQ2_M": 2.9294,
    "IQ3_XXS": 3.2548, "IQ3_XS": 3.4977, "IQ3_S": 3.6606, "IQ3_M": 3.7628, "IQ4_XS": 4.4597, "IQ4_NL": 4.6818,
    "Q2_K_S": 2.9697, "Q2_K": 3.1593, "Q3_K_S": 3.6429, "Q3_K_L": 4.2979, "Q4_K_S": 4.6672, "Q4_K_M": 4.8944,
    "Q5_K_S": 5.5704, "Q5_K_M": 5.7036, "Q6_K": 6.5633, "Q8_0": 8.5008, "F16": 16.0005,
}


@pytest.mark.parametrize("recipe, bpw", README_BPW.items())
def test_llama31_8b_bits_per_weight_match_the_quantize_readme(recipe, bpw):
    fmt = get_format("GGUF-F16" if recipe == "F16" else recipe)
    ours = weight_bytes(spec(L31_8B), WeightPlan(fmt, 2)).total
    assert ours * 8 / 8_030_261_248 == pytest.approx(bpw, abs=1.5e-4)


# Real files (checkpoint_sizes.yaml, exact bytes at pinned revisions). The file also holds the GGUF header:
# tokenizer and other metadata, ~7.8 MB for Llama-3's 128k vocabulary, ~6 MB for Qwen's 151k.
REAL_FILES = [
    ("meta-llama/Llama-3.2-1B-Instruct", "Q4_K_M", 807_694_464),  # bartowski
    ("meta-llama/Llama-3.1-8B-Instruct", "Q4_K_M", 4_920_739_232),  # bartowski
    ("meta-llama/Llama-3.3-70B-Instruct", "Q4_K_M", 42_520_398_816),  # bartowski
    ("Qwen/Qwen2.5-72B-Instruct", "Q4_K_M", 47_415_715_488),  # bartowski
    ("Qwen/Qwen3-32B", "Q4_K_M", 19_762_149_024),  # Qwen/Qwen3-32B-GGUF
]


@pytest.mark.parametrize("model, recipe, real", REAL_FILES)
def test_real_gguf_files_within_their_metadata(model, recipe, real):
    ours = weight_bytes(spec(model), WeightPlan(get_format(recipe), 2)).total
    assert 0 < real - ours < 10_000_000
    if real > 2e9:  # the 1B file's metadata alone is ~1 % of it
        assert abs(ours - real) / real < 0.002


def test_llama2_7b_thebloke_sizes_round_to_the_published_gb():
    # TheBloke/Llama-2-7b-Chat-GGUF 'Provided files' (GB = 1e9, two decimals; 32k vocab, < 1 MB metadata)
    for recipe, gb in [("Q3_K_S", 2.95), ("Q3_K_M", 3.30), ("Q3_K_L", 3.60), ("Q4_K_S", 3.86), ("Q4_K_M", 4.08),
                       ("Q8_0", 7.16)]:
        assert abs(file_bytes("meta-llama/Llama-2-7b-chat-hf", recipe) / 1e9 - gb) <= 0.005, recipe


# Published gpt-oss GGUF files keep the checkpoint's MXFP4 experts whatever the recipe (the converter writes
# them MXFP4 and the quantizers keep them); only the other tensors follow the recipe. Truth:
# llama-bench's "size" column (tensor bytes) for ggml-org/gpt-oss-120b-GGUF (MXFP4) 59.02 GiB and
# unsloth/gpt-oss-120b-GGUF F16 60.87 GiB (community.frame.work/t/73280/26); bartowski/openai_gpt-oss-20b-GGUF
# README (llama.cpp b6096): MXFP4 12.1 GB, Q6_K 12.04 GB; unsloth/gpt-oss-20b-GGUF Q4_K_M 11.6 GB.
@pytest.mark.parametrize("model,quant,published,unit,digits", [
    ("openai/gpt-oss-120b", "MXFP4_MOE", 59.02, 2**30, 2),
    ("openai/gpt-oss-120b", "GGUF-F16", 60.87, 2**30, 2),
    ("openai/gpt-oss-20b", "MXFP4_MOE", 12.1, 10**9, 1),
    ("openai/gpt-oss-20b", "Q6_K", 12.04, 10**9, 2),
    ("openai/gpt-oss-20b", "Q4_K_M", 11.6, 10**9, 1),
])
def test_gpt_oss_gguf_keeps_mxfp4_experts(model, quant, published, unit, digits):
    spec = resolve_model(model).spec
    wb = weight_bytes(spec, WeightPlan(get_format(quant), 2))
    # file sizes include the header (a 201k-token vocabulary is ~10 MB): tensors within it and the rounding
    assert published - 0.02 - 0.5 * 10**-digits <= wb.total / unit <= published + 0.5 * 10**-digits
    types = tensor_types(get_format(quant).gguf_recipe, spec)
    assert types["blk.0.ffn_down_exps.weight"] == "MXFP4" and types["blk.0.ffn_gate_exps.weight"] == "MXFP4"
