"""config.json parsing: families, quirks, and bad input."""

from __future__ import annotations

import json

import pytest

from llm_mem.errors import ConfigError
from llm_mem.sources import resolve_model
from llm_mem.sources.configfile import MAX_CONFIG_BYTES, load_config_file
from llm_mem.sources.parse import parse_config

LLAMA = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100}


def test_gqa_and_head_dim_fallback():
    s = parse_config(LLAMA)
    assert (s.num_kv_heads, s.head_dim) == (2, 16)


def test_explicit_head_dim_wins():
    s = parse_config({**LLAMA, "head_dim": 32})
    assert s.head_dim == 32


def test_gemma2_alternates_sliding_and_full():
    s = resolve_model("google/gemma-2-9b").spec
    assert s.layer_types[:4] == ("sliding", "full", "sliding", "full") and s.sliding_window == 4096


def test_gemma3_five_local_one_global():
    s = resolve_model("google/gemma-3-12b-it").spec
    assert s.layer_types[:6] == ("sliding",) * 5 + ("full",) and s.sliding_window == 1024
    assert s.family == "gemma3_text"  # read from the multimodal wrapper's text_config


def test_gpt_oss_layer_types_and_mxfp4():
    s = resolve_model("openai/gpt-oss-20b").spec
    assert s.layer_types.count("sliding") == 12 and s.sliding_window == 128
    assert s.quantization.method == "mxfp4" and s.moe.num_experts == 32 and s.moe.top_k == 4


def test_deepseek_v3_mla_and_dense_prefix():
    s = resolve_model("deepseek-v3").spec
    assert s.mla.kv_lora_rank == 512 and s.mla.qk_rope_head_dim == 64
    assert s.moe.moe_layers[:4] == (False, False, False, True) and s.moe.shared_intermediate_size == 2048
    assert s.quantization.method == "fp8" and s.quantization.block_size == (128, 128)


def test_falcon_multi_query():
    s = resolve_model("tiiuae/falcon-7b").spec
    assert s.num_kv_heads == 1 and s.parallel_attn


def test_qwen25_sliding_window_off_by_default():
    s = resolve_model("Qwen/Qwen2.5-7B").spec
    assert set(s.layer_types) == {"full"} and s.sliding_window is None


def test_bnb_quantization_config():
    s = resolve_model("unsloth/Meta-Llama-3.1-405B-Instruct-bnb-4bit").spec
    q = s.quantization
    assert (q.method, q.bits, q.quant_type, q.double_quant) == ("bitsandbytes", 4, "nf4", True)


def test_unknown_architecture_is_refused_not_guessed(tmp_path):
    # a model_type neither llm-mem nor transformers knows: one clear line, never a generic guess
    # (tests/test_architectures.py covers the transformers fallback and the no-transformers refusal)
    cfg = {**LLAMA, "model_type": "brand_new_lm"}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="unknown architecture 'brand_new_lm'"):
        resolve_model(str(p))


@pytest.mark.parametrize("bad,match", [
    ({"hidden_size": 8}, "model_type"),
    ({"model_type": "llama", "num_hidden_layers": 2}, "hidden_size"),
    ({**LLAMA, "num_hidden_layers": -1}, "num_hidden_layers = -1 must be at least 1"),
    ({**LLAMA, "num_key_value_heads": 3}, "not a multiple"),
    ({**LLAMA, "vocab_size": "many"}, "vocab_size = 'many' is a str, not an integer"),
])
def test_missing_or_bad_fields(bad, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(bad)


def test_malformed_json(tmp_path):
    p = tmp_path / "config.json"
    p.write_text('{"model_type": "llama",')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config_file(p)


def test_json_array_is_not_a_config(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not an object"):
        load_config_file(p)


def test_oversized_config_refused_before_parsing(tmp_path):
    p = tmp_path / "config.json"
    p.write_bytes(b" " * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="too large"):
        load_config_file(p)


def test_local_folder_reads_safetensors_header(tmp_path):
    from fakehub import make_safetensors

    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    (tmp_path / "model.safetensors").write_bytes(make_safetensors({"a": ("BF16", [4, 8]), "b": ("F32", [3])}))
    m = resolve_model(str(tmp_path))
    assert m.source.kind == "local" and m.checkpoint_dtypes == {"BF16": 32, "F32": 3}
