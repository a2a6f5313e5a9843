"""Parameter inventory on every architecture of benchmarks/architectures/set.jsonl (the default config of
each causal-LM and image-text-to-text model type transformers 5.24 builds, with the parameter total of the
class it builds on the meta device, made by make_truth.py there).

* Without transformers (the fallback switched off): a type llm-mem lays out natively is exact, any
  other is refused with one ConfigError line naming it and the verify extra: never a guess.
* With transformers (the `verify` extra; skipped without it): every type is exact, the non-native
  ones counted by transformers on the meta device, cached.
* Hybrid / state-space layers keep a constant state per sequence in the KV component.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm_mem.cli import app
from llm_mem.errors import ConfigError
from llm_mem.estimators.kv_cache import full_context_tokens, kv_cache
from llm_mem.params import count_parameters
from llm_mem.sources import meta_count
from llm_mem.sources.parse import is_native, parse_config

ROOT = Path(__file__).resolve().parents[1]
SET = [json.loads(line) for line in (ROOT / "benchmarks" / "architectures" / "set.jsonl").read_text().splitlines()]
NATIVE = [c for c in SET if is_native(c["config"])]
COUNTED = [c for c in SET if not is_native(c["config"])]
runner = CliRunner()


def _id(c: dict) -> str:
    return f"{c['kind']}:{c['model_type']}"


def _case(kind: str, model_type: str) -> dict:
    return next(c for c in SET if c["kind"] == kind and c["model_type"] == model_type)


@pytest.fixture
def no_transformers(monkeypatch):
    """As if the verify extra were not installed."""
    monkeypatch.setattr(meta_count, "available", lambda: False)


def test_the_set_is_the_shared_reference():
    # 268 buildable types (181 causal, 87 image-text-to-text); 28 more fail to build in transformers itself
    assert len(SET) == 268
    assert sum(c["kind"] == "causal" for c in SET) == 181
    unbuildable = (ROOT / "benchmarks" / "architectures" / "unbuildable.jsonl").read_text().splitlines()
    assert len(unbuildable) == 28


def test_native_families_cover_the_hybrids_and_vision_towers_users_run():
    native = {(c["kind"], c["model_type"]) for c in NATIVE}
    for mt in ("llama", "qwen3_moe", "deepseek_v3", "gpt_oss", "mamba", "mamba2", "falcon_mamba", "jamba", "bamba",
               "falcon_h1", "granitemoehybrid", "nemotron_h", "qwen3_next", "lfm2", "glm4_moe", "cohere2",
               "olmo2", "starcoder2", "minimax_m2"):
        assert ("causal", mt) in native, mt
    for mt in ("gemma3", "mistral3", "llava", "llava_next", "llava_onevision", "paligemma"):
        assert ("image-text-to-text", mt) in native, mt
    assert len(NATIVE) >= 69


# issue 16 item 3: encoders and embedding models, Zamba, and the families users run that were refused
NATIVE_SINCE_16_3 = {
    "causal": ("bert", "roberta", "xlm-roberta", "camembert", "electra", "data2vec-text", "xmod", "modernbert-decoder",
               "zamba", "zamba2", "llama4_text", "llama4", "deepseek_v32", "minimax", "kimi_linear", "phi",
               "gpt_bigcode", "gptj", "codegen", "mpt", "gemma3n_text",
               # also laid out since: aliases of existing layouts and small variants
               "roberta-prelayernorm", "xlm-roberta-xl", "megatron-bert", "ernie", "qwen3_5", "qwen3_5_text",
               "qwen3_5_moe", "qwen3_5_moe_text", "glm4_moe_lite", "glm_moe_dsa", "sarvam_mla", "sarvam_moe",
               "solar_open", "ernie4_5_moe", "exaone_moe", "apertus", "bitnet", "gpt_neo", "granite_swa",
               "granitemoe_swa", "flex_olmo", "nanochat", "apertus1p5_text", "biogpt", "cohere2_moe", "jais2", "hy_v3",
               "mellum", "minicpm3", "youtu", "hyperclovax", "afmoe", "persimmon", "xglm", "openai-gpt", "diffllama",
               "bert-generation", "big_bird", "olmo_hybrid", "lfm3", "roformer"),
    "image-text-to-text": ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "llama4", "qwen3_5", "qwen3_5_moe",
                           "mistral4", "internvl", "smolvlm", "idefics3", "lfm2_vl", "kimi_k25", "lighton_ocr",
                           "cohere2_vision", "glm4v", "glm4v_moe", "glm46v", "glmga"),
}


@pytest.mark.parametrize("kind,model_type", [(k, m) for k, ms in NATIVE_SINCE_16_3.items() for m in ms])
def test_issue_16_families_are_native_and_exact(kind, model_type, no_transformers):
    case = _case(kind, model_type)
    assert is_native(case["config"])
    spec = parse_config(copy.deepcopy(case["config"]))
    assert spec.counted_by is None and count_parameters(spec).total == case["total"]


def test_native_count_after_issue_16():
    assert len(NATIVE) >= 150


def _spec(model_type: str, kind: str = "causal", **changes):
    return parse_config({**copy.deepcopy(_case(kind, model_type)["config"]), **changes})


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlm-roberta", "electra", "xmod"])
def test_encoders_keep_no_kv_cache(model_type, no_transformers):
    # a bidirectional encoder reads the whole input each pass and caches nothing (vLLM 0.34 encoder-only
    # attention allocates no KV pages; llama.cpp creates no memory for BERT-type models)
    spec = _spec(model_type)
    assert spec.encoder
    kv = kv_cache(spec, full_context_tokens(spec, 512), 8, "bf16")
    assert (kv.total, kv.per_token_full, kv.per_1k_tokens) == (0, 0, 0)
    assert kv.note is not None and "no KV cache" in kv.note


def test_encoder_used_as_a_decoder_keeps_kv(no_transformers):
    # is_decoder: BertLMHeadModel attends causally and caches K and V: 12 layers x (768 + 768) x 2 B per token
    spec = _spec("bert", is_decoder=True)
    assert not spec.encoder
    assert kv_cache(spec, full_context_tokens(spec, 512), 1, "bf16").total == 12 * 2 * 768 * 2 * 512


@pytest.mark.parametrize("runtime", ["vllm", "llamacpp", "transformers"])
def test_encoder_estimate_states_no_kv(tmp_path, runtime, no_transformers):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_case("causal", "bert")["config"]))
    r = runner.invoke(app, ["estimate", str(path), "--runtime", runtime, "--gpu", "h100", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert next(c for c in report["components"] if c["name"] == "kv_cache")["bytes"] == 0
    assert report["kv_cache"]["bytes_per_token"] == 0
    assert any("encoder-only" in n and "no KV cache" in n for n in report["notes"])


def test_modernbert_decoder_is_a_decoder(no_transformers):
    # ModernBERT-decoder is causal: it keeps K and V (22 layers, 12 heads x 64 x 2, 2 B) and slides on 2 of 3
    spec = _spec("modernbert-decoder")
    assert not spec.encoder and spec.sliding_window == 64
    assert kv_cache(spec, full_context_tokens(spec, 8), 1, "bf16").total == 22 * 2 * 768 * 2 * 8


@pytest.mark.parametrize("model_type,hybrid,kv_width,ssm_state", [
    # ZambaConfig: 13 hybrid layers of 16 KV heads x 464 (attention_hidden_size 7424 / 16 heads); 76 Mamba
    # layers of d_inner 7424 (2 x 3712), conv 4, d_state 16
    ("zamba", 13, 16 * 464, 7424 * 4 + 7424 * 16),
    # Zamba2Config: 9 hybrid layers of 32 KV heads x 160 (2 x 2560 / 32); 54 Mamba-2 layers of d_inner 5120,
    # conv channels 5120 + 2 x 64 (one group of B and C), conv 4, d_state 64
    ("zamba2", 9, 32 * 160, (5120 + 2 * 64) * 4 + 5120 * 64),
])
def test_zamba_kv_is_shared_attention_tokens_plus_state(model_type, hybrid, kv_width, ssm_state, no_transformers):
    spec = _spec(model_type)
    layers = spec.num_layers
    kv = kv_cache(spec, full_context_tokens(spec, 4096), 2, "bf16")
    # each hybrid layer keeps its own K and V (the block's weights are shared, its cache is not)
    assert kv.total == hybrid * 2 * kv_width * 2 * 4096 * 2 + layers * ssm_state * 2 * 2


def test_minimax_lightning_state_and_kimi_delta_state(no_transformers):
    # MiniMax: 16 attention layers of 8 KV heads x 128; 16 lightning layers of 32 heads x 128 x 128 state
    spec = _spec("minimax")
    assert kv_cache(spec, full_context_tokens(spec, 1024), 1, "bf16").total == \
        16 * 2 * 8 * 128 * 2 * 1024 + 16 * 32 * 128 * 128 * 2
    # Kimi Linear: 6 MLA layers (latent 512 + rope 64); 21 KDA layers of conv (3 x 32 x 128 channels, 4 taps)
    # plus 32 heads x 128 x 128 state
    spec = _spec("kimi_linear")
    assert kv_cache(spec, full_context_tokens(spec, 1024), 1, "bf16").total == \
        6 * 576 * 2 * 1024 + 21 * (3 * 32 * 128 * 4 + 32 * 128 * 128) * 2


def test_deepseek_v32_indexer_keys_are_in_the_kv_cache(tmp_path, no_transformers):
    spec = _spec("deepseek_v32")
    assert spec.indexer_head_dim == 128
    # transformers keeps the MLA latent (512 + 64) and the indexer key (128) per token per layer, bf16
    assert kv_cache(spec, full_context_tokens(spec, 4096), 1, "bf16").total == 61 * (576 + 128) * 2 * 4096
    # vLLM: the latent in the KV dtype, the indexer key as 128 fp8 bytes + one fp32 scale per 128 (132 B)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_case("causal", "deepseek_v32")["config"]))
    r = runner.invoke(app, ["estimate", str(path), "--runtime", "vllm", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kv_cache"]["bytes_per_token"] == 61 * (576 * 2 + 132)


def test_gemma3n_kv_shared_layers_keep_no_cache(tmp_path, no_transformers):
    # Gemma3nTextConfig: 35 layers, the last 15 reuse K and V of earlier ones (no k/v projections, no cache);
    # the first 20 keep 2 KV heads x 256 for K and for V (bf16)
    spec = _spec("gemma3n_text")
    assert spec.kv_shared_layers == 15 and sum(spec.kv_layers) == 20
    assert kv_cache(spec, full_context_tokens(spec, 4096), 1, "bf16").total == 20 * 2 * 2 * 256 * 2 * 4096
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_case("causal", "gemma3n_text")["config"]))
    r = runner.invoke(app, ["estimate", str(path), "--runtime", "vllm", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kv_cache"]["bytes_per_token"] == 20 * 2 * 2 * 256 * 2


def test_malformed_family_field_is_one_line(tmp_path, no_transformers):
    # a family field the common validator does not know (Jamba's mamba_d_state) with a string in it
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**_case("causal", "jamba")["config"], "mamba_d_state": "abc"}))
    r = runner.invoke(app, ["estimate", str(path)])
    assert r.exit_code == 2
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "jamba" in lines[0]


def test_flat_qwen2_vl_config_counts_its_tower(no_transformers):
    # Qwen2-VL-7B-Instruct's config.json keeps the text fields at the top level (Qwen2VLConfig.__post_init__
    # builds text_config from them): 8,291,375,616 parameters (transformers 5.24 on the meta device), of which
    # the vision tower and merger are 675,759,104
    cfg = {"architectures": ["Qwen2VLForConditionalGeneration"], "hidden_size": 3584, "intermediate_size": 18944,
           "max_position_embeddings": 32768, "max_window_layers": 28, "model_type": "qwen2_vl",
           "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
           "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
           "use_sliding_window": False, "vocab_size": 152064,
           "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                             "hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
                             "temporal_patch_size": 2},
           "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}
    c = count_parameters(parse_config(cfg))
    assert (c.total, c.multimodal) == (8_291_375_616, 675_759_104)


@pytest.mark.parametrize("case", NATIVE, ids=_id)
def test_native_layout_is_exact_without_transformers(case, no_transformers):
    spec = parse_config(copy.deepcopy(case["config"]))
    assert spec.counted_by is None
    assert count_parameters(spec).total == case["total"]


@pytest.mark.parametrize("case", COUNTED, ids=_id)
def test_unknown_layout_is_refused_without_transformers(case, no_transformers):
    with pytest.raises(ConfigError) as e:
        parse_config(copy.deepcopy(case["config"]))
    line = e.value.one_line()
    assert case["model_type"] in line and "verify" in line and "\n" not in line


def test_refusal_is_one_line_and_exit_2(tmp_path, no_transformers):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_case("causal", "rwkv")["config"]))
    r = runner.invoke(app, ["estimate", str(path)])
    assert r.exit_code == 2
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1
    assert "unknown architecture 'rwkv'" in lines[0] and "pip install 'llm-mem[verify]'" in lines[0]


def test_vision_tower_counted_and_kept_out_of_the_gguf():
    # google/gemma-3-12b-it: 12,187,325,040 parameters (the Hub's safetensors count), of which the SigLIP
    # tower and projector are 421,290,864 (tests/data/golden_params.json, transformers on the meta device)
    from llm_mem.sources import resolve_model

    spec = resolve_model("google/gemma-3-12b-it").spec
    c = count_parameters(spec)
    assert (c.total, c.multimodal) == (12_187_325_040, 421_290_864)
    assert spec.image_tokens == 256
    from llm_mem.estimators.gguf import tensor_bytes

    # llama.cpp's model GGUF holds the language model only (the tower goes to an mmproj file)
    assert all(not name.startswith("model.vision_tower") for name in tensor_bytes("Q4_K_M", spec))


def test_state_space_state_scales_with_batch_not_context(no_transformers):
    spec = parse_config(copy.deepcopy(_case("causal", "mamba")["config"]))
    short = kv_cache(spec, full_context_tokens(spec, 1024), 1, "bf16").total
    long = kv_cache(spec, full_context_tokens(spec, 32768), 1, "bf16").total
    batch4 = kv_cache(spec, full_context_tokens(spec, 32768), 4, "bf16").total
    # MambaConfig defaults: 32 layers, d_inner 1536, d_state 16, conv 4: (1536 x 4 + 1536 x 16) x 2 B per layer
    assert short == long == 32 * (1536 * 4 + 1536 * 16) * 2
    assert batch4 == 4 * short


def test_hybrid_kv_is_attention_tokens_plus_state(no_transformers):
    spec = parse_config(copy.deepcopy(_case("causal", "jamba")["config"]))
    kv = kv_cache(spec, full_context_tokens(spec, 4096), 2, "bf16")
    # JambaConfig: 4 attention layers of 8 KV heads x 128 (K and V, 2 B) per token; 28 Mamba layers of
    # d_inner 8192, conv 4, d_state 16
    attention = 4 * 2 * 8 * 128 * 2 * 4096 * 2
    state = 28 * (8192 * 4 + 8192 * 16) * 2 * 2
    assert kv.total == attention + state


def test_llamacpp_recurrent_state_follows_llama_hparams(tmp_path, no_transformers):
    # llama.cpp llama-hparams.cpp: n_embd_r = (d_conv - 1) x (d_inner + 2 n_group d_state), n_embd_s =
    # d_state x d_inner, both F32 per sequence slot; Mamba-2 defaults: d_inner 8192, 8 groups, d_state 128
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_case("causal", "mamba2")["config"]))
    r = runner.invoke(app, ["estimate", str(path), "--runtime", "llamacpp", "--json", "--context", "4096"])
    assert r.exit_code == 0, r.output
    kv = next(c for c in json.loads(r.stdout)["components"] if c["name"] == "kv_cache")["bytes"]
    assert kv == 64 * (3 * (8192 + 2 * 8 * 128) + 128 * 8192) * 4


def test_bundled_multimodal_estimate_never_imports_torch():
    code = ("import sys; from llm_mem.sources import resolve_model; from llm_mem.params import count_parameters;"
            "count_parameters(resolve_model('google/gemma-3-12b-it').spec);"
            "count_parameters(resolve_model('mistralai/Mistral-Small-3.2-24B-Instruct-2506').spec);"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


# -- with transformers ---------------------------------------------------------------------------------


def _warm(args: tuple[dict, str, str]) -> None:
    import os

    raw, model_type, cache = args
    os.environ["LLM_MEM_CACHE"] = cache
    meta_count.count(raw, model_type)


@pytest.fixture(scope="module")
def counted_cache(request, tmp_path_factory):
    """A cache of the transformers counts that outlives the session (pytest's cache dir), filled by a few
    worker processes when cold: building the ~200 classes one after another takes about a minute."""
    if not meta_count.available():  # found, not imported: the workers fork from a process without torch
        pytest.skip("needs torch and transformers (the verify extra)")
    cache = request.config.cache.mkdir("llm-mem-params") if request.config.cache else tmp_path_factory.mktemp("c")
    import os

    saved = os.environ.get("LLM_MEM_CACHE")
    os.environ["LLM_MEM_CACHE"] = str(cache)
    jobs = [(c["config"], str(c["config"].get("model_type")), str(cache)) for c in COUNTED]
    with ProcessPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(_warm, jobs))
    yield cache
    if saved is None:
        os.environ.pop("LLM_MEM_CACHE", None)
    else:
        os.environ["LLM_MEM_CACHE"] = saved


@pytest.mark.slow
def test_every_type_is_exact_with_transformers(counted_cache):
    wrong = []
    for c in SET:
        spec = parse_config(copy.deepcopy(c["config"]))
        if count_parameters(spec).total != c["total"]:
            wrong.append(_id(c))
        assert (spec.counted_by is None) == is_native(c["config"])
    assert wrong == []


def test_counted_spec_says_so_and_is_cached(counted_cache, monkeypatch, tmp_path):
    case = _case("causal", "rwkv")
    spec = parse_config(copy.deepcopy(case["config"]))
    assert spec.counted_by == f"parameters counted by transformers {meta_count.metadata.version('transformers')} " \
                              "on the meta device (RwkvForCausalLM)"
    # a second look-up reads the cache: building again would fail
    monkeypatch.setattr(meta_count, "_build", lambda *a: pytest.fail("rebuilt a cached config"))
    assert count_parameters(parse_config(copy.deepcopy(case["config"]))).total == case["total"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(case["config"]))
    r = runner.invoke(app, ["estimate", str(path), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["parameters"]["total"] == case["total"]
    assert any("counted by transformers" in n for n in report["notes"])


def test_type_unknown_to_transformers_too_is_refused(counted_cache):
    cfg = {**_case("causal", "llama")["config"], "model_type": "brand_new_lm"}
    with pytest.raises(ConfigError, match="unknown architecture 'brand_new_lm'"):
        parse_config(cfg)
