"""Planner: strategies, boundaries, speed bounds, reverse questions, CLI JSON contract."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llm_mem.catalog import load_catalog, resolve_gpu
from llm_mem.cli import app
from llm_mem.estimate import estimate
from llm_mem.planner import _tp_ok, budget, bytes_read_per_step, largest_fitting, plan
from llm_mem.report import Workload
from llm_mem.sources import resolve_model

CAT = load_catalog()
runner = CliRunner()


def _plan(model: str, gpu: str, **w):
    req = resolve_gpu(gpu, CAT)
    return plan(resolve_model(model), Workload(**w), [(req.gpu, req.count)], host_ram=64 * 10**9)


def test_405b_int4_on_8gb_streams(tmp_path):
    r = runner.invoke(app, ["plan", "meta-llama/Llama-3.1-405B", "--precision", "int4", "--gpu", "8GB",
                            "--context", "2048", "--host-ram", "64GB", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    rec = d["recommended"]
    assert rec["strategy"] == "streaming" and 4e9 < rec["per_gpu_bytes"] < 8e9
    assert rec["seconds_per_token"] > 1 and rec["tokens_per_s"] < 1 and rec["gpus"] == 1
    for o in d["options"]:
        assert {"strategy", "fits", "gpus", "per_gpu_bytes", "tokens_per_s", "reason"} <= set(o)
        assert isinstance(o["gpus"], int)


def test_streaming_time_is_weights_over_disk_bandwidth():
    p = _plan("meta-llama/Llama-3.1-405B", "8GB", precision="int4", context=2048)
    s = next(o for o in p.options if o.strategy == "streaming")
    # 215.6 GB of nf4 weights read per token at 3.5 GB/s (the default --disk-gbps)
    assert s.seconds_per_token == pytest.approx(s.disk_bytes / 3.5e9)
    assert s.disk_bytes == pytest.approx(215.6e9, rel=0.001)


def test_budget_is_one_device_never_multiplied():
    p = _plan("meta-llama/Llama-3.1-405B", "8GB", precision="int4", context=2048)
    assert all(o.gpus == 1 for o in p.options)


def test_405b_bf16_on_h100_needs_two_nodes():
    # vLLM's multi-node recipe: tensor parallel inside a node, pipeline across nodes (TP 8 x PP 2 for the
    # 811.7 GB of bf16 weights: 16 H100s on 2 nodes), not the fewest bytes per GPU
    p = _plan("meta-llama/Llama-3.1-405B", "H100", precision="bf16", runtime="vllm")
    r = p.recommended
    assert r.strategy == "pipeline" and r.gpus == 16 and r.nodes == 2 and "TP 8 x PP 2" in r.reason
    assert (r.layout.tensor_parallel_size, r.layout.pipeline_parallel_size) == (8, 2)
    assert any("--distributed-executor-backend ray" in x for x in r.launch)
    # 9 GPUs cannot be split into whole-node tensor-parallel stages
    nine = _plan("meta-llama/Llama-3.1-405B", "9xH100", precision="bf16", runtime="vllm")
    assert not any(o.fits for o in nine.options)
    # transformers places layers over the GPUs of one machine: 8 H100s are not enough
    tf = _plan("meta-llama/Llama-3.1-405B", "H100", precision="bf16")
    multi = [o for o in tf.options if o.strategy == "pipeline"]
    assert multi and not multi[0].fits and multi[0].gpus == 8
    # ... and the plan points at the engine that serves it across machines, with its layout
    assert "vLLM serves it on 16 x H100-SXM-80GB: vLLM TP 8 x PP 2 on 2 nodes" in tf.notes[0]
    assert "--runtime vllm" in tf.notes[0]
    # where transformers fits on one machine there is no such pointer
    assert not any("vLLM serves it" in n for n in _plan("meta-llama/Llama-3.1-70B", "H100", precision="bf16").notes)


def test_llama7b_t4_fp32_no_fp16_yes_with_the_context_it_leaves():
    t4 = resolve_gpu("T4", CAT)
    assert _plan("huggyllama/llama-7b", "1xT4", precision="fp32").recommended.strategy != "single"
    # the CUDA context is counted once (in the T4's usable memory): the full 2,048 tokens fit in fp16
    ctx, best = largest_fitting(resolve_model("huggyllama/llama-7b"), Workload(precision="fp16"), t4.gpu, 1,
                                "context", 2048)
    assert ctx == 2048 and best.recommended.strategy == "single"


def test_70b_bf16_does_not_fit_one_mi250_card():
    # one MI250 card = two 64 GB devices; 141 GB of bf16 weights need more than both
    p = _plan("meta-llama/Llama-3.1-70B", "1xMI250", precision="bf16")
    assert p.recommended is None or p.recommended.gpus > 2 or p.recommended.strategy in ("offload", "streaming")
    multi = [o for o in p.options if o.strategy == "pipeline"]
    assert multi and not multi[0].fits and multi[0].gpus == 2


def test_tp_must_divide_heads():
    # Falcon-7B has 71 heads: no tensor-parallel size but 1 divides them; vLLM pipelines instead
    r = estimate(resolve_model("tiiuae/falcon-7b"), Workload(precision="bf16"))
    assert "does not divide 71" in _tp_ok(r, 2) and _tp_ok(r, 1) is None
    p = _plan("tiiuae/falcon-7b", "2xT4", precision="fp32", runtime="vllm")
    (opt,) = p.options
    assert opt.layout.tensor_parallel_size == 1 and opt.layout.pipeline_parallel_size == 2
    assert "TP 1 x PP 2" in opt.reason


def test_mi250_counts_whole_cards():
    p = _plan("meta-llama/Llama-3.1-70B", "MI250", precision="bf16")
    assert p.recommended.gpus % 2 == 0  # devices come in pairs on an MI250 card


def test_runtime_budgets():
    h100 = resolve_gpu("H100", CAT).gpu
    # vLLM 0.34 leaves --gpu-memory-utilization unset and sizes from measured memory; set, it caps
    assert budget(h100, "vllm") == h100.usable_bytes
    assert budget(h100, "vllm", 0.9) == int(h100.device_total_bytes * 0.9)
    # llama.cpp keeps its --fit margin only when it chooses -ngl itself (the offload options)
    assert budget(h100, "llamacpp") == h100.usable_bytes


def test_decode_speed_bound_reads_active_weights_and_kv():
    m = resolve_model("Qwen/Qwen3-30B-A3B")
    r = estimate(m, Workload(precision="bf16", context=4096))
    read = bytes_read_per_step(r)
    # a token reads 8 of 128 experts: far less than all weights, more than the non-expert part
    assert r.weights.bytes - r.weights.experts_bytes < read < r.weights.bytes / 4
    single = _plan("Qwen/Qwen3-30B-A3B", "H100", precision="bf16").options[0]
    assert single.tokens_per_s == pytest.approx(3.35e12 / read, rel=0.05)


def test_max_batch_monotone_in_gpu_size():
    m = resolve_model("meta-llama/Llama-3.1-8B")
    w = Workload(precision="bf16", context=8192)
    b24, _ = largest_fitting(m, w, resolve_gpu("4090", CAT).gpu, 1, "batch", 256)
    b80, _ = largest_fitting(m, w, resolve_gpu("H100", CAT).gpu, 1, "batch", 256)
    assert 0 < b24 < b80


def test_plan_budget_without_model_lists_bundled_models():
    r = runner.invoke(app, ["plan", "--gpu", "8GB", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    rows = {(x["model"], x["precision"]): x for x in d["rows"]}
    assert rows[("meta-llama/Llama-3.2-1B", "bf16")]["strategy"] == "single"
    assert rows[("meta-llama/Llama-3.1-405B", "int4")]["strategy"] == "streaming"
    assert rows[("deepseek-ai/DeepSeek-V3", "bf16")]["strategy"] == "none"  # one MoE layer alone is 22.5 GB


@pytest.mark.parametrize("gpu,needle", [("8XB", "neither a catalog name nor a memory size"),
                                        ("H1OO", "did you mean H100-SXM-80GB")])
def test_bad_gpu_one_line(gpu, needle):
    r = runner.invoke(app, ["plan", "llama-3.1-8b", "--gpu", gpu])
    assert r.exit_code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_gpus_command_lists_catalog():
    r = runner.invoke(app, ["gpus", "--json"])
    ids = {d["id"] for d in json.loads(r.stdout)["devices"]}
    assert {"T4-16GB", "H100-SXM-80GB", "MI250-2X64GB", "A100-SXM-80GB"} <= ids


def test_bare_size_with_a_count_is_that_many_cards_on_vllm():
    # --gpu 4x48GB: four 48 GB cards; vLLM shards 70B bf16 (141 GB) over them with TP 4
    p = _plan("meta-llama/Llama-3.1-70B", "4x48GB", precision="bf16", runtime="vllm")
    r = p.recommended
    assert r is not None and r.gpus == 4 and r.layout.tensor_parallel_size == 4
    assert r.per_gpu_bytes < r.budget_bytes < 48e9


def test_one_counted_gpu_has_no_device_map_split_row():
    p = _plan("huggyllama/llama-7b", "1xT4", precision="fp16", context=2048)
    assert [o.strategy for o in p.options if o.strategy == "pipeline"] == []
    assert next(o for o in p.options if o.strategy == "single").fits  # 14.86 GB of the T4's 15.30 GB


def test_fit_table_on_a_gpu_without_bf16_lists_vllm_in_fp16():
    # vLLM refuses bf16 below compute capability 8.0 (llm_mem.runtimes.vllm.without_bf16): a T4's vLLM rows
    # are fp16 (or a published AWQ checkpoint), never bf16; an A10 (Ampere) keeps bf16
    from llm_mem.catalog import load_catalog, resolve_gpu
    from llm_mem.planner.fit import fit_table
    from llm_mem.report import Workload

    cat = load_catalog(None)
    t4 = fit_table(resolve_gpu("T4", cat).gpu, None, Workload())
    vllm = {r.precision for r in t4.rows if r.runtime == "vllm"}
    assert "fp16" in vllm and "bf16" not in vllm
    a10 = fit_table(resolve_gpu("A10", cat).gpu, None, Workload())
    assert "bf16" in {r.precision for r in a10.rows if r.runtime == "vllm"}
