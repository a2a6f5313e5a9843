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
