"""Properties that hold for every model and workload (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_mem.estimate import estimate
from llm_mem.report import Workload
from llm_mem.sources import resolve_model

MODELS = ["meta-llama/Llama-3.1-8B", "Qwen/Qwen3-30B-A3B", "google/gemma-2-9b", "deepseek-ai/DeepSeek-V2-Lite",
          "openai/gpt-oss-20b", "openai-community/gpt2", "tiiuae/falcon-7b", "mistralai/Mistral-7B-v0.1"]
RESOLVED = {m: resolve_model(m) for m in MODELS}
ctx = st.integers(min_value=1, max_value=65536)
batch = st.integers(min_value=1, max_value=64)
model = st.sampled_from(MODELS)
runtime = st.sampled_from(["transformers", "vllm", "llamacpp"])
attention = st.sampled_from(["eager", "sdpa", "flash"])
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def total(m: str, **kw) -> int:
    return estimate(RESOLVED[m], Workload(**kw)).total_bytes


def kernel(rt: str, at: str, m: str = "") -> dict:
    """The attention knob each runtime has: transformers' --attention (eager where the family has no
    SDPA), llama.cpp's --flash-attn; vLLM none."""
    if rt == "transformers":
        return {"attention": "eager" if at == "sdpa" and m and not RESOLVED[m].spec.sdpa else at}
    if rt == "llamacpp":
        return {"flash_attn": "on" if at == "flash" else "off"}
    return {}


@SETTINGS
@given(model, ctx, ctx, batch, runtime, attention)
def test_memory_never_decreases_with_context(m, c1, c2, b, rt, at):
    lo, hi = sorted((c1, c2))
    assert total(m, context=lo, batch=b, runtime=rt, **kernel(rt, at, m)) <= total(
        m, context=hi, batch=b, runtime=rt, **kernel(rt, at, m))


@SETTINGS
@given(model, ctx, batch, batch, runtime)
def test_memory_never_decreases_with_batch(m, c, b1, b2, rt):
    lo, hi = sorted((b1, b2))
    assert total(m, context=c, batch=lo, runtime=rt) <= total(m, context=c, batch=hi, runtime=rt)


@SETTINGS
@given(model, st.integers(min_value=1, max_value=8192))
def test_memory_never_decreases_with_bits(m, c):
    ladders = [["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"], ["nf4", "int8", "bf16", "fp32"]]
    for ladder in ladders:
        sizes = [estimate(RESOLVED[m], Workload(quant=q, context=c)).weights.bytes for q in ladder]
        assert sizes == sorted(sizes)


@SETTINGS
@given(model, ctx, batch, st.sampled_from(["full", "lora", "qlora"]), st.booleans())
def test_training_total_is_sum_of_components_and_grows_with_seq(m, c, b, mode, ckpt):
    r1 = estimate(RESOLVED[m], Workload(train=mode, context=c, batch=b, grad_checkpointing=ckpt))
    r2 = estimate(RESOLVED[m], Workload(train=mode, context=c + 128, batch=b, grad_checkpointing=ckpt))
    # the sum less what is never live together: the largest of the end of forward (activations + logits), the
    # first layer's backward (activations + a recomputed layer) and the end of backward (gradients + that layer)
    assert r1.total_bytes == sum(x.bytes for x in r1.components) - r1.overlap_bytes
    comp = {x.name: x.bytes for x in r1.components}
    a, lg, g, rc = (comp.get(k, 0) for k in ("activations", "logits", "gradients", "activation_recompute"))
    states = sum(v for k, v in comp.items() if k not in ("gradients", "activations", "logits",
                                                          "activation_recompute"))
    assert r1.total_bytes == states + max(a + lg, a + rc, g + rc)
    assert r1.total_low_bytes <= r1.total_bytes <= r1.total_high_bytes
    assert r1.total_bytes <= r2.total_bytes


@SETTINGS
@given(model, ctx, st.sampled_from(["fp8", "bf16", "fp32"]))
def test_kv_dtype_orders_the_cache(m, c, kv):
    sizes = {d: estimate(RESOLVED[m], Workload(context=c, kv_dtype=d, runtime="vllm")).component("kv_cache")
             for d in ("fp8", "bf16", "fp32")}
    assert sizes["fp8"] <= sizes["bf16"] <= sizes["fp32"]
