"""--verify on CPU with tiny random models (a llama and a qwen3_moe written as config.json folders).

Measured weights must equal the parameter bytes counted here independently, the KV cache must equal
2 * kv_heads * head_dim * context * batch * 2 bytes per layer, and without torch the CLI must print
one line and exit 2."""

from __future__ import annotations

import builtins
import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm_mem.cli import app

pytestmark = pytest.mark.torch
runner = CliRunner()

LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128,
         "max_position_embeddings": 512, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
         "rms_norm_eps": 1e-5}
QWEN3_MOE = {"model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 64,
             "intermediate_size": 128, "moe_intermediate_size": 32, "num_experts": 4, "num_experts_per_tok": 2,
             "num_hidden_layers": 3, "mlp_only_layers": [0], "decoder_sparse_step": 1,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 128,
             "max_position_embeddings": 512, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
             "norm_topk_prob": True}


def _folder(tmp_path, cfg, name):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def _verify(args):
    res = runner.invoke(app, args + ["--verify", "--json"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    return json.loads(out[out.index("{"):])


def _llama_params(c):
    h, i, v, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    d = h // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * d
    layer = h * h + 2 * h * kv + h * h + 3 * h * i + 2 * h  # q, k, v, o; gate, up, down; two norms
    return v * h + L * layer + h + v * h  # embedding, layers, final norm, untied lm_head


def _by_name(verify):
    return {c["name"]: c for c in verify["components"]}


def test_llama_inference_exact_weights_and_kv(tmp_path):
    d = _folder(tmp_path, LLAMA, "llama")
    ctx, batch = 64, 2
    r = _verify(["estimate", str(d), "--context", str(ctx), "--batch", str(batch)])
    v = r["verify"]
    assert v["method"] == "cpu live-tensor tracking"
    assert v["dtype"] == "bf16" and v["measured_context"] == ctx and v["measured_layers"] == 1
    assert v["torch_version"] and v["transformers_version"]
    comps = _by_name(v)
    assert comps["weights"]["measured_bytes"] == 2 * _llama_params(LLAMA)
    d_head = LLAMA["hidden_size"] // LLAMA["num_attention_heads"]
    kv_layer = 2 * LLAMA["num_key_value_heads"] * d_head * ctx * batch * 2
    assert comps["kv_cache"]["measured_bytes"] == kv_layer * LLAMA["num_hidden_layers"]
    # logits: last position per sequence, bf16 output + fp32 copy (what generate() keeps)
    assert comps["logits"]["measured_bytes"] == batch * LLAMA["vocab_size"] * (2 + 4)
    assert comps["activations"]["measured_bytes"] > 0
    assert comps["runtime_overhead"]["measured_bytes"] is None
    # the calibrated report carries the measurements
    by = {c["name"]: c["bytes"] for c in r["components"]}
    assert by["weights"] == comps["weights"]["measured_bytes"]
    assert r["total_bytes"] == sum(by.values()) == v["calibrated_total_bytes"]
    assert v["estimate_total_bytes"] > 0


def test_moe_one_layer_per_kind(tmp_path):
    d = _folder(tmp_path, QWEN3_MOE, "moe")
    r = _verify(["estimate", str(d), "--context", "32"])
    v = r["verify"]
    # layer 0 dense (mlp_only_layers), layers 1-2 MoE: two layers measured, scaled to three
    assert v["measured_layers"] == 2
    assert v["layer_kinds"] == {"full+dense": 1, "full+moe": 2}
    comps = _by_name(v)
    c = QWEN3_MOE
    h, hd, nh, kvh = c["hidden_size"], c["head_dim"], c["num_attention_heads"], c["num_key_value_heads"]
    attn = h * nh * hd * 2 + 2 * h * kvh * hd + 2 * hd + 2 * h  # q, o; k, v; q/k norms; two layer norms
    dense = attn + 3 * h * c["intermediate_size"]
    moe = attn + c["num_experts"] * 3 * h * c["moe_intermediate_size"] + c["num_experts"] * h  # experts + router
    params = 2 * c["vocab_size"] * h + h + dense + 2 * moe
    assert comps["weights"]["measured_bytes"] == 2 * params
    assert comps["weights"]["error_pct"] == 0
    assert comps["kv_cache"]["measured_bytes"] == 2 * kvh * hd * 32 * 1 * 2 * 3


def test_lora_training_step(tmp_path):
    pytest.importorskip("peft")
    d = _folder(tmp_path, LLAMA, "llama")
    r = _verify(["estimate", str(d), "--context", "32", "--train", "lora", "--lora-rank", "4",
                 "--lora-targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"])
    comps = _by_name(r["verify"])
    # adapters are exact: rank x (in + out) per targeted weight, fp32, per layer x 2 layers
    h, i = LLAMA["hidden_size"], LLAMA["intermediate_size"]
    kv = LLAMA["num_key_value_heads"] * h // LLAMA["num_attention_heads"]
    per_layer = 4 * ((h + h) + (h + kv) * 2 + (h + h) + (h + i) * 2 + (i + h))
    assert comps["lora_adapters"]["measured_bytes"] == 4 * per_layer * 2
    assert comps["gradients"]["measured_bytes"] == comps["lora_adapters"]["measured_bytes"]
    assert comps["optimizer_states"]["measured_bytes"] == 2 * comps["lora_adapters"]["measured_bytes"]
    assert comps["activations"]["measured_bytes"] > 0 and comps["logits"]["measured_bytes"] > 0


def test_plan_uses_calibrated_total(tmp_path):
    d = _folder(tmp_path, LLAMA, "llama")
    res = runner.invoke(app, ["plan", str(d), "--gpu", "8GB", "--context", "32", "--verify", "--json"])
    assert res.exit_code == 0, res.output


def test_human_output_has_the_table(tmp_path):
    d = _folder(tmp_path, LLAMA, "llama")
    res = runner.invoke(app, ["estimate", str(d), "--context", "32", "--verify"])
    assert res.exit_code == 0, res.output
    assert "--verify" in res.stdout and "measured" in res.stdout and "cpu live-tensor tracking" in res.stdout


def test_without_torch_one_line_error(tmp_path, monkeypatch):
    d = _folder(tmp_path, LLAMA, "llama")
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch.") or name == "transformers":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    res = runner.invoke(app, ["estimate", str(d), "--verify"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == ["error: --verify needs torch and transformers (pip install 'llm-mem[verify]')"]


def test_other_runtime_refused(tmp_path):
    d = _folder(tmp_path, LLAMA, "llama")
    res = runner.invoke(app, ["estimate", str(d), "--verify", "--runtime", "vllm"])
    assert res.exit_code == 2
    assert "error: --verify measures a transformers forward" in res.output
    assert "Traceback" not in res.output


def test_cpu_context_cap_scales_linearly(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_MEM_VERIFY_CPU_SECONDS", "0.000001")  # any context is "too slow"
    d = _folder(tmp_path, LLAMA, "llama")
    r = _verify(["estimate", str(d), "--context", "256"])
    v = r["verify"]
    assert v["measured_context"] == 64 and v["requested_context"] == 256
    assert any("measured at contexts 32 and 64 instead of 256" in n for n in v["notes"])
    d_head = LLAMA["hidden_size"] // LLAMA["num_attention_heads"]
    assert _by_name(v)["kv_cache"]["measured_bytes"] == 2 * LLAMA["num_key_value_heads"] * d_head * 256 * 2 * 2


def test_full_training_with_checkpointing(tmp_path):
    d = _folder(tmp_path, LLAMA, "llama")
    r = _verify(["estimate", str(d), "--context", "32", "--train", "full", "--grad-checkpointing"])
    comps = _by_name(r["verify"])
    assert comps["weights"]["measured_bytes"] == 2 * _llama_params(LLAMA)
    assert comps["gradients"]["measured_bytes"] == 2 * _llama_params(LLAMA)  # bf16 gradients
    assert comps["optimizer_states"]["measured_bytes"] is None  # trainer-dependent, kept from the estimate
    assert comps["activation_recompute"]["measured_bytes"] > 0
    # checkpointing keeps each layer's input: at least batch x seq x hidden x 2 bytes per layer
    assert comps["activations"]["measured_bytes"] >= 2 * 32 * LLAMA["hidden_size"] * 2
