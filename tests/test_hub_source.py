"""The Hub source end to end: real huggingface_hub calls against a Hub-speaking server on
127.0.0.1 (tests/fakehub.py), through `llm-mem estimate` itself."""

from __future__ import annotations

import json

from fakehub import make_safetensors, make_sharded
from typer.testing import CliRunner

from llm_mem.cli import app

CFG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 256, "num_hidden_layers": 2,
       "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000,
       "torch_dtype": "bfloat16", "tie_word_embeddings": False}
runner = CliRunner()


def _estimate(*args: str):
    return runner.invoke(app, ["estimate", *args])


def test_public_repo_config_and_safetensors_header(fake_hub):
    st = make_safetensors({"model.embed_tokens.weight": ("BF16", [1000, 256]), "lm_head.weight": ("BF16", [1000, 256]),
                           "model.norm.weight": ("F32", [256])})
    fake_hub.add_repo("acme/tiny-llama", {"config.json": json.dumps(CFG).encode(), "model.safetensors": st})
    r = _estimate("acme/tiny-llama", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["source"]["kind"] == "hub" and d["source"]["location"] == "acme/tiny-llama@main"
    assert d["weights"]["checkpoint_bytes"] == 2 * 1000 * 256 * 2 + 256 * 4
    # never the weights: every safetensors GET carried a Range header
    assert fake_hub.gets_without_range() == []


def test_sharded_checkpoint_dtypes(fake_hub):
    files = make_sharded({"a.weight": ("BF16", [64, 64]), "b.weight": ("BF16", [64, 64]), "n.weight": ("F32", [64])},
                         num_shards=2)
    files["config.json"] = json.dumps(CFG).encode()
    fake_hub.add_repo("acme/sharded", files)
    r = _estimate("acme/sharded", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["weights"]["checkpoint_bytes"] == 2 * 64 * 64 * 2 + 64 * 4


def test_quantized_checkpoint_real_size_from_headers(fake_hub):
    cfg = {**CFG, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}
    st = make_safetensors({"q.qweight": ("I32", [32, 256]), "q.scales": ("F16", [2, 256]),
                           "emb": ("F16", [1000, 256])})
    fake_hub.add_repo("acme/tiny-gptq", {"config.json": json.dumps(cfg).encode(), "model.safetensors": st})
    d = json.loads(_estimate("acme/tiny-gptq", "--json").stdout)
    exact = 32 * 256 * 4 + 2 * 256 * 2 + 1000 * 256 * 2
    assert d["weights"]["checkpoint_bytes"] == exact
    assert next(c for c in d["components"] if c["name"] == "weights")["bytes"] == exact


def test_gated_repo_without_token(fake_hub):
    fake_hub.add_repo("meta/gated", {"config.json": json.dumps(CFG).encode()}, gated=True)
    r = _estimate("meta/gated")
    assert r.exit_code == 2
    assert "gated" in r.stderr and "hf auth login" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_gated_repo_with_token(fake_hub):
    fake_hub.add_repo("meta/gated", {"config.json": json.dumps(CFG).encode()}, gated=True)
    r = _estimate("meta/gated", "--token", "hf_valid_token", "--json")
    assert r.exit_code == 0, r.output


def test_missing_repo(fake_hub):
    r = _estimate("nobody/nothing")
    assert r.exit_code == 2 and "no model named 'nobody/nothing'" in r.stderr


def test_repo_without_config(fake_hub):
    fake_hub.add_repo("acme/empty", {"README.md": b"hi"})
    r = _estimate("acme/empty")
    assert r.exit_code == 2 and "no config.json" in r.stderr


def test_hub_unreachable(fake_hub, monkeypatch):
    fake_hub.stop()
    r = _estimate("acme/anything")
    assert r.exit_code == 2 and "Hub" in r.stderr and "--config" in r.stderr


def test_offline_mode_with_empty_cache(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = _estimate("acme/not-cached")
    assert r.exit_code == 2 and "HF_HUB_OFFLINE" in r.stderr


def test_offline_mode_uses_cache(fake_hub, monkeypatch):
    fake_hub.add_repo("acme/cached", {"config.json": json.dumps(CFG).encode()})
    assert _estimate("acme/cached", "--json").exit_code == 0  # fills the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = _estimate("acme/cached", "--json")
    assert r.exit_code == 0, r.output
    assert "safetensors" in r.stderr or json.loads(r.stdout)["source"]["note"]


def test_oversized_config_refused(fake_hub):
    fake_hub.add_repo("acme/huge", {"config.json": b"{" + b" " * (3 * 2**20) + b"}"})
    r = _estimate("acme/huge")
    assert r.exit_code == 2 and "too large" in r.stderr


def test_bundled_models_never_touch_the_hub(fake_hub):
    r = _estimate("meta-llama/Llama-3.1-8B", "--json")
    assert r.exit_code == 0 and fake_hub.requests == []


def test_unknown_architecture_on_the_hub_is_exact_from_its_headers(fake_hub, monkeypatch):
    from llm_mem.sources import meta_count

    monkeypatch.setattr(meta_count, "available", lambda: False)  # no transformers: the headers alone decide
    tensors = {"model.embed_tokens.weight": ("BF16", [1000, 256]), "lm_head.weight": ("BF16", [1000, 256]),
               "model.norm.weight": ("F32", [256]), "model.layers.0.mixer.w.weight": ("BF16", [256, 256]),
               "model.layers.1.mixer.w.weight": ("BF16", [256, 256])}
    cfg = {**CFG, "model_type": "zzbar", "architectures": ["ZzBarForCausalLM"], "num_hidden_layers": 2}
    fake_hub.add_repo("acme/zz", {"config.json": json.dumps(cfg).encode(), "model.safetensors": make_safetensors(tensors)})
    r = _estimate("acme/zz", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["parameters"]["total"] == 2 * 1000 * 256 + 256 + 2 * 256 * 256
    assert d["weights"]["bytes"] == d["weights"]["checkpoint_bytes"] == 2 * (2 * 1000 * 256 + 2 * 256 * 256) + 4 * 256
    assert fake_hub.gets_without_range() == []
