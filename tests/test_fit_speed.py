"""The memos behind the fit table (`plan --gpu X`) give what the plain computations give: GGUF types per
(role, shape) of the roles whose type does not depend on the layer, llama.cpp's KV sized once per cell count,
the fit table's estimates asked for twice."""

from __future__ import annotations

import pytest

from llm_mem.catalog import load_catalog, resolve_gpu
from llm_mem.estimate import estimate
from llm_mem.estimators.gguf import BASE_TYPE, gguf_model, gguf_tensors, tensor_bytes, tensor_type
from llm_mem.estimators.kv_cache import kv_bits, kv_widths, layer_bytes, state_bytes
from llm_mem.params import inventory
from llm_mem.planner import fit
from llm_mem.runtimes import llamacpp
from llm_mem.sources.bundled import load_bundled_config, registry
from llm_mem.sources.parse import parse_config
from llm_mem.spec import ResolvedModel, Source
from llm_mem.workload import Workload

SPECS = {e.id: parse_config(load_bundled_config(e)) for e in registry()}
# one model per branch the recipes take: fused QKV, MLA, multimodal, 70B, 8 experts, MXFP4 experts, Falcon, MoE...
GGUF_MODELS = ("bigscience/bloom-560m", "deepseek-ai/DeepSeek-V2-Lite", "google/gemma-3-12b-it", "meta-llama/Llama-2-70b-hf",
               "meta-llama/Llama-3.1-8B", "microsoft/Phi-3-mini-4k-instruct", "mistralai/Mixtral-8x7B-v0.1",
               "openai-community/gpt2", "openai/gpt-oss-20b", "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen3-30B-A3B",
               "tiiuae/falcon-7b", "facebook/opt-125m")
_ATTN_V_LIKE = {"attn_v", "attn_qkv"}
_FFN_DOWN = {"mlp_down", "expert_down", "shared_down"}
_STACKED_EXPERTS = {"expert_gate", "expert_up", "expert_down"}


@pytest.mark.parametrize(("recipe", "imatrix"), [(r, None) for r in BASE_TYPE] + [("IQ4_XS", True), ("Q4_0", True),
                                                                                  ("IQ3_XXS", False)])
def test_gguf_types_equal_a_tensor_by_tensor_walk(recipe, imatrix):
    """Every tensor typed with its own layer and file counters, as llama-quant.cpp walks the file."""
    for name in GGUF_MODELS:
        spec = SPECS[name]
        m = gguf_model(spec, recipe, imatrix)
        by_name = {t.name: t for t in inventory(spec)}
        mxfp4 = spec.quantization is not None and spec.quantization.method == "mxfp4"
        i_v = i_down = 0
        sizes: dict[str, int] = {}
        for g in gguf_tensors(recipe, spec, imatrix):
            sizes[g.source] = sizes.get(g.source, 0) + g.nbytes
            t = by_name[g.source]
            if t.role == "attn_kv_b" and spec.mla is not None:  # split in two, typed directly
                continue
            want = tensor_type(recipe, t.role, t.layer, t.shape[1] if len(t.shape) > 1 else t.shape[0], m, i_v, i_down)
            want = "MXFP4" if mxfp4 and t.role in _STACKED_EXPERTS else want
            assert (g.ggml_type, g.numel) == (want, t.numel), (name, recipe, g.name)
            i_v += t.role in _ATTN_V_LIKE
            i_down += t.role in _FFN_DOWN
        assert tensor_bytes(recipe, spec, imatrix) == sizes, (name, recipe)


def _cells_reference(spec, s: llamacpp.Settings) -> list[int]:
    out = []
    for kind, own in zip(spec.layer_types, spec.kv_layers):
        if not own:
            out.append(0)
        elif kind == "sliding" and spec.sliding_window:
            out.append(llamacpp.pad(min(s.n_ctx_seq, spec.sliding_window + s.n_ubatch)) * s.n_seq)
        else:
            out.append(s.n_ctx_seq * s.n_seq)
    return out


@pytest.mark.parametrize(("context", "parallel", "ubatch"), [(4096, 1, None), (200, 3, 64), (100_000, 2, 2048)])
def test_llamacpp_kv_equals_per_layer_sizing(context, parallel, ubatch):
    for name, spec in SPECS.items():
        w = Workload(runtime="llamacpp", context=context, parallel=parallel, ubatch_size=ubatch)
        s, _ = llamacpp.resolve(spec, w, "nvidia")
        cells = _cells_reference(spec, s)
        assert llamacpp.cells_per_layer(spec, s) == cells, name
        n = spec.num_layers
        mem = llamacpp.inference(spec, w, "nvidia", [1] * n, [0] * n, 0, 0, 0)
        widths, kb, vb = kv_widths(spec), kv_bits(s.k), kv_bits(s.v)
        states = state_bytes(spec, s.n_seq, 32.0, trim=1)
        assert mem.kv.per_layer == [layer_bytes(widths, c, kb, vb) + st for c, st in zip(cells, states)], name
        ref = llamacpp.Settings(1, llamacpp.pad(max(1024, s.n_ubatch)), s.n_ubatch, s.n_batch, s.flash_attn, s.k, s.v,
                                s.gpu_layers, 0)
        per_1k = sum(layer_bytes(widths, min(c, 1024), kb, vb) for c in _cells_reference(spec, ref))
        assert mem.kv.per_1k_tokens == per_1k, name


def test_fit_table_memo_equals_plain_estimates(monkeypatch):
    gpu = resolve_gpu("8GB", load_catalog())
    cached = fit.fit_table(gpu.gpu, gpu.count, Workload())
    monkeypatch.setattr(fit._Model, "report",
                        lambda self, context, **w: estimate(self.m, self.base.replace(context=context, **w), self.gpu))
    assert fit.fit_table(gpu.gpu, gpu.count, Workload()) == cached


def test_fit_report_memo_returns_the_estimate():
    e = next(e for e in registry() if e.id == "meta-llama/Llama-3.1-8B")
    m = ResolvedModel(name=e.id, spec=SPECS[e.id], source=Source(kind="bundled", location=e.file))
    gpu = resolve_gpu("24GB", load_catalog()).gpu
    model = fit._Model(m, gpu, Workload(), 50.0)
    w = {"runtime": "llamacpp", "quant": "Q4_K_M", "precision": None}
    first = model.report(8192, **w)
    assert model.report(8192, **w) is first  # asked again: the same report
    assert first == estimate(m, Workload().replace(context=8192, **w), gpu)
    assert model.report(4096, **w).total_bytes < first.total_bytes
