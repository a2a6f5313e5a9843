"""Megatron-LM tensor / sequence / context parallelism for training (llm_mem.estimators.megatron) against
independent truth: Korthikanti et al. 2022 (arXiv:2205.05198) sec. 4 for what tensor parallelism leaves
replicated (10 sbh per layer) and that sequence parallelism divides everything by t; Megatron-LM's
dist_optimizer.md table for the model states (bytes per parameter 18 and 6 + 12/d); Megatron's padded
vocabulary and its parallel linears for each rank's parameters (hand-computed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from llm_mem.cli import app
from llm_mem.errors import SettingError, UsageError
from llm_mem.estimate import estimate
from llm_mem.estimators.megatron import padded_vocab, rank_tensors
from llm_mem.estimators.saved import CUDA, Split
from llm_mem.estimators.training import saved_activations
from llm_mem.report import Workload
from llm_mem.sources import resolve_model

M8B = resolve_model("meta-llama/Llama-3.1-8B")
GPT2 = resolve_model("openai-community/gpt2")


def comps(m: object = M8B, **kw: object) -> dict[str, int]:
    r = estimate(m, Workload(train="full", **kw))  # type: ignore[arg-type]
    return {c.name: c.bytes for c in r.components}


def per_layer(spec: object, t: int, sp: bool = False, cp: int = 1, s: int = 1024, attention: str = "eager") -> int:
    return saved_activations(spec, 1, s, attention, False, 2, kernels=CUDA,  # type: ignore[arg-type]
                             par=Split(t, sp, cp)).per_layer


def test_gpt2_tensor_parallel_leaves_korthikanti_10sbh_replicated():
    # Korthikanti sec. 4.2.2: with TP alone a layer keeps sbh(10 + 24/t + 5as/(ht)): 10 sbh replicated (both
    # LayerNorms' inputs 4sbh, the QKV and first MLP linear's inputs 4sbh, the two residual dropout masks
    # 2sbh). Our GPT-2 replay (checked against saved_tensors_hooks) agrees: split(t) = rep + split_part / t,
    # and the replicated part per token is 10 h bytes + the two LayerNorms' fp32 mean/rstd (16 bytes).
    spec, s = GPT2.spec, 1024
    a1, a2, a4 = (per_layer(spec, t, s=s) for t in (1, 2, 4))
    split_part = 2 * (a1 - a2)
    assert abs((a2 - a4) * 4 - split_part) <= 8  # linear in 1/t
    replicated = a1 - split_part
    assert abs(replicated - s * (10 * spec.hidden_size + 16)) <= 8


@pytest.mark.parametrize("model", [M8B, GPT2])
@pytest.mark.parametrize("t", [2, 4])
def test_sequence_parallel_divides_every_activation_by_t(model, t):
    # Korthikanti eq. 5: with sequence parallelism a layer keeps sbh(34/t + 5as/(ht)): everything / t
    spec = model.spec
    for attention in ("eager", "sdpa"):
        assert abs(per_layer(spec, t, True, attention=attention) - per_layer(spec, 1, attention=attention) / t) <= 4


def test_context_parallel_halves_the_tokens_of_a_flash_layer():
    full, cp2 = per_layer(M8B.spec, 1, s=8192, attention="sdpa"), per_layer(M8B.spec, 1, cp=2, s=8192, attention="sdpa")
    assert abs(cp2 - full / 2) <= 2


def test_components_with_tp_sp_cp():
    base = comps(context=8192)
    tp = comps(context=8192, tensor_model_parallel_size=4, sequence_parallel=True)
    cp = comps(context=8192, tensor_model_parallel_size=4, sequence_parallel=True, context_parallel_size=2, gpus=8)
    assert abs(tp["activations"] - base["activations"] / 4) <= 64
    assert abs(cp["activations"] - base["activations"] / 8) <= 64
    # the vocab-parallel output layer and cross-entropy: logits / TP, and / CP for the rank's tokens
    assert abs(tp["logits"] - base["logits"] / 4) <= 4 and abs(cp["logits"] - base["logits"] / 8) <= 4


def test_rank_parameters_are_megatrons_split():
    # Llama-3.1-8B at TP 4: q 1024x4096, k and v 256x4096, o 4096x1024, gate and up 3584x4096, down 4096x3584
    # per rank; norms replicated; the 128,256-token vocabulary padded to a multiple of 128 x 4 = 512
    assert padded_vocab(128_256, 4) == 128_512 and padded_vocab(128_256, 1) == 128_256
    layer = 1024 * 4096 + 2 * 256 * 4096 + 4096 * 1024 + 2 * 3584 * 4096 + 4096 * 3584 + 2 * 4096
    expect = 32 * layer + 2 * (128_512 // 4) * 4096 + 4096
    assert sum(x.numel for x in rank_tensors(M8B.spec, 4)) == expect == 2_008_289_280


def test_model_states_follow_megatrons_distributed_optimizer_table():
    # dist_optimizer.md: bf16 parameters, fp32 gradients: 18 bytes/param, 6 + 12/d with the distributed optimizer
    p = 2_008_289_280
    plain = comps(context=1024, tensor_model_parallel_size=4)
    assert sum(plain[k] for k in ("weights", "gradients", "optimizer_states", "master_weights")) == 18 * p
    dist = comps(context=1024, tensor_model_parallel_size=4, gpus=16, zero=1)  # d = 16 / 4 = 4
    assert sum(dist[k] for k in ("weights", "gradients", "optimizer_states", "master_weights")) == 6 * p + 12 * p // 4
    fp32 = comps(context=1024, tensor_model_parallel_size=4, gpus=16, zero=1, mixed_precision="none",
                 precision="fp32")
    assert sum(fp32[k] for k in ("weights", "gradients", "optimizer_states")) == 8 * p + 8 * p // 4


@pytest.mark.parametrize("kw, field", [
    ({"sequence_parallel": True}, "sequence_parallel"),  # Megatron turns SP off at TP 1; refused, not ignored
    ({"tensor_model_parallel_size": 4, "gpus": 6}, "gpus"),
    ({"tensor_model_parallel_size": 2, "zero": 3, "gpus": 4}, "zero"),
    ({"context_parallel_size": 2, "attention": "eager"}, "context_parallel_size"),
    ({"context_parallel_size": 4, "context": 1004}, "context_parallel_size"),  # 2 x CP chunks
    ({"tensor_model_parallel_size": 2, "fsdp": "full"}, "tensor_model_parallel_size"),
    ({"tensor_model_parallel_size": 2, "optimizer": "lion"}, "optimizer"),
    ({"tensor_model_parallel_size": 2, "fused_ce": True}, "fused_ce"),
])
def test_refused_layouts_name_the_flag(kw, field):
    with pytest.raises(SettingError) as e:
        Workload(train="full", **kw)
    assert e.value.field == field


def test_lora_and_heads_that_do_not_divide_are_refused():
    with pytest.raises(SettingError):
        Workload(train="lora", tensor_model_parallel_size=2)
    with pytest.raises(UsageError, match="does not divide the model's 8 KV heads"):
        estimate(M8B, Workload(train="full", tensor_model_parallel_size=16))  # 32 heads, 8 KV heads


def test_gpus_default_to_one_replica():
    assert Workload(train="full", tensor_model_parallel_size=4, context_parallel_size=2).gpus == 8


def test_cli_and_plan():
    run = CliRunner().invoke
    r = run(app, ["estimate", "meta-llama/Llama-3.1-8B", "--train", "full", "--context", "8192",
                  "--tensor-model-parallel-size", "4", "--sequence-parallel", "--json"])
    assert r.exit_code == 0, r.output
    bad = run(app, ["estimate", "meta-llama/Llama-3.1-8B", "--train", "full", "--sequence-parallel"])
    assert bad.exit_code == 2 and "--sequence-parallel" in bad.output and "Traceback" not in bad.output
    p = run(app, ["plan", "meta-llama/Llama-3.1-70B", "--train", "full", "--gpu", "H100", "--grad-checkpointing",
                  "--tensor-model-parallel-size", "8", "--sequence-parallel", "--zero", "1", "--json"])
    assert p.exit_code == 0, p.output
    import json

    opts = json.loads(p.stdout)["options"]
    fit = next(o for o in opts if o["fits"])
    assert fit["layout"]["tensor_parallel_size"] == 8 and fit["gpus"] % 8 == 0
    assert fit["layout"]["data_parallel_size"] * 8 == fit["gpus"]


def test_plan_train_finds_a_megatron_layout_when_data_parallelism_cannot_fit():
    # Llama-3.1-70B full fine-tuning at 32k tokens: the logits (32k x 128k vocabulary) and activations of a
    # sequence exceed an H100 under any data parallelism; Megatron's TP (with SP) and CP split them
    run = CliRunner().invoke
    p = run(app, ["plan", "meta-llama/Llama-3.1-70B", "--train", "full", "--context", "32k", "--gpu", "H100",
                  "--grad-checkpointing", "--json"])
    assert p.exit_code == 0, p.output
    import json

    d = json.loads(p.stdout)
    fsdp = [o for o in d["options"] if "fsdp" in o["reason"].lower()]
    assert fsdp and not any(o["fits"] for o in fsdp)
    rec = d["recommended"]
    lay = rec["layout"]
    assert rec["fits"] and rec["strategy"] == "tensor_parallel" and lay["tensor_parallel_size"] == 8
    assert lay["tensor_parallel_size"] * lay["context_parallel_size"] * lay["data_parallel_size"] == rec["gpus"]
    # the same layout estimated directly gives the plan's per-GPU bytes, within the budget
    r = estimate(resolve_model("meta-llama/Llama-3.1-70B"), Workload(
        train="full", context=32768, grad_checkpointing=True, tensor_model_parallel_size=8, sequence_parallel=True,
        context_parallel_size=lay["context_parallel_size"], zero=1, gpus=rec["gpus"]))
    assert r.total_bytes == rec["per_gpu_bytes"] <= rec["budget_bytes"]
    # one GPU fewer data-parallel replica does not fit (the plan names the fewest)
    if lay["data_parallel_size"] > 1:
        smaller = estimate(resolve_model("meta-llama/Llama-3.1-70B"), Workload(
            train="full", context=32768, grad_checkpointing=True, tensor_model_parallel_size=8,
            sequence_parallel=True, context_parallel_size=lay["context_parallel_size"], zero=1,
            gpus=rec["gpus"] // 2))
        assert smaller.total_bytes > rec["budget_bytes"] or smaller.total_high_bytes > rec["budget_bytes"]
