"""FSDP2 model states per GPU against hand-computed bytes (torch 2.13 torch/distributed/fsdp/_fully_shard rules,
llm_mem.estimators.fsdp) and against DeepSpeed ZeRO-3 where the two coincide."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from llm_mem.cli import app
from llm_mem.errors import UsageError
from llm_mem.estimate import estimate
from llm_mem.report import Workload
from llm_mem.sources import resolve_model

M8B = resolve_model("meta-llama/Llama-3.1-8B")
P = 8_030_261_248  # Llama-3.1-8B parameters (tests/test_training.py)
EMBED = 128_256 * 4_096  # embed_tokens = lm_head (untied) = 525,336,576
# One decoder layer: q, o 4096x4096; k, v 1024x4096; gate, up 14336x4096, down 4096x14336; two RMSNorms.
LAYER = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096 + 2 * 4096
ROOT = 2 * EMBED + 4096  # the root FSDP group: embeddings, final norm, lm_head
HEAD = EMBED + 4096  # root gradients held through backward: lm_head + final norm


def states(**kw: object) -> dict[str, int]:
    r = estimate(M8B, Workload(train="full", context=512, **kw))
    return {c.name: c.bytes for c in r.components}


def test_layer_and_root_sizes():
    assert LAYER == 218_112_000 and ROOT + 32 * LAYER == P


def test_full_shard_8_gpus_exact_bytes():
    # Every dim 0 of Llama-3.1-8B divides by 8, so each rank's padded shard is exactly P/8 elements.
    s = states(fsdp="full", gpus=8)
    assert s["master_weights"] == 4 * P // 8  # fp32 sharded parameters: the master copy
    assert s["weights"] == 2 * (ROOT + 2 * LAYER)  # bf16 unsharded root + current + prefetched layer
    assert s["gradients"] == 4 * P // 8 + 2 * (LAYER + HEAD)  # fp32 shard + bf16 unsharded layer and head
    assert s["optimizer_states"] == 8 * P // 8  # AdamW m and v, fp32, sharded
    assert s["weights"] == 2_973_802_496 and s["gradients"] == 5_502_035_968


def test_coincides_with_zero3_on_the_sharded_fp32_states():
    f, z = states(fsdp="full", gpus=8), states(zero=3, gpus=8)
    assert f["master_weights"] == z["master_weights"] == 4 * P // 8
    assert f["optimizer_states"] == z["optimizer_states"] == 8 * P // 8
    # fp32 gradient partitions equal; ZeRO-3 adds the largest module's gradients (the embedding), FSDP2 one
    # layer's and the head's unsharded bf16 gradients
    assert f["gradients"] - 2 * (LAYER + HEAD) == z["gradients"] - 2 * EMBED == 4 * P // 8
    # ZeRO-3 also keeps a bf16 parameter partition (2P/N) that FSDP2 does not
    assert z["weights"] - 2 * EMBED == 2 * P // 8 and f["weights"] == 2 * (ROOT + 2 * LAYER)


def test_uneven_shards_are_padded_like_torch_chunk():
    # 3 GPUs: torch.chunk gives ceil(d0 / 3) rows to every rank (FSDPParam pads chunk 0's size)
    c = lambda d: math.ceil(d / 3)
    per_layer = (2 * c(4096) * 4096 + 2 * c(1024) * 4096 + 2 * c(14336) * 4096 + c(4096) * 14336 + 2 * c(4096))
    shard = 2 * c(128_256) * 4096 + c(4096) + 32 * per_layer
    s = states(fsdp="full", gpus=3)
    assert s["master_weights"] == 4 * shard and s["optimizer_states"] == 8 * shard
    assert shard > P / 3  # padding costs a little


def test_hybrid_shards_within_a_group():
    # HSDP over 16 GPUs with the default group of 8 (one node) stores what FULL_SHARD over 8 does
    assert states(fsdp="hybrid", gpus=16) == states(fsdp="full", gpus=8)
    assert states(fsdp="hybrid", gpus=16, fsdp_shard_size=4) == states(fsdp="full", gpus=4)


def test_cpu_offload_policy():
    r = estimate(M8B, Workload(train="full", context=512, fsdp="full", gpus=8, fsdp_offload=True))
    s = {c.name: c.bytes for c in r.components}
    assert s["weights"] == 2 * (ROOT + 2 * LAYER)  # only the unsharded working set stays on the GPU
    assert s["gradients"] == 2 * (LAYER + HEAD)
    assert s["optimizer_states"] == 0 and s["master_weights"] == 0
    # pinned host RAM of one node: 8 ranks x (fp32 params + fp32 grads + Adam) of P/8 = 16 P
    assert r.host_bytes == 16 * P


def test_pure_bf16_keeps_one_dtype():
    s = states(fsdp="full", gpus=8, mixed_precision="none")
    assert "master_weights" not in s
    assert s["weights"] == 2 * P // 8 + 2 * (ROOT + 2 * LAYER)
    assert s["optimizer_states"] == 4 * P // 8  # AdamW states in bf16


def test_lora_shards_the_frozen_base():
    n = (8 * (4096 + 4096) + 8 * (4096 + 1024)) * 32  # PEFT's default q_proj, v_proj at r=8: 3,407,872
    r = estimate(M8B, Workload(train="lora", context=512, fsdp="full", gpus=8))
    s = {c.name: c.bytes for c in r.components}
    assert s["weights"] == 2 * P // 8 + 2 * (ROOT + 2 * LAYER)  # bf16 base: 1/8 shard + unsharded groups
    assert s["lora_adapters"] == s["gradients"] == 4 * n // 8
    assert s["optimizer_states"] == 8 * n // 8


def test_qlora_keeps_the_root_group_in_bf16():
    r = estimate(M8B, Workload(train="qlora", context=512, fsdp="full", gpus=8))
    base = r.weights.bytes
    s = {c.name: c.bytes for c in r.components}
    per_param = (base - 2 * ROOT) / (P - ROOT)  # nf4 layers' bytes per parameter
    assert s["weights"] == int(base * (P // 8) / P) + int(2 * ROOT + 2 * LAYER * per_param)


@pytest.mark.parametrize("w,msg", [
    (dict(train="full", fsdp="full", zero=3, gpus=8), "--fsdp and --zero"),
    (dict(train="full", fsdp_offload=True), "applies to FSDP"),
    (dict(train="full", fsdp="full", fsdp_shard_size=4, gpus=8), "HSDP"),
    (dict(train="full", fsdp="hybrid", gpus=12), "does not divide"),
    (dict(train="full", fsdp="full", zero=0, offload="optimizer"), "--zero 1, 2 or 3"),
    (dict(fsdp="full"), "training only"),
])
def test_refused_combinations(w, msg):
    with pytest.raises(UsageError, match=msg):
        Workload(**w)


def test_cli_one_line_error_and_option():
    runner = CliRunner()
    r = runner.invoke(app, ["estimate", "llama-3.1-8b", "--train", "full", "--fsdp", "full", "--zero", "3"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "--fsdp" in r.output
    r = runner.invoke(app, ["estimate", "llama-3.1-8b", "--train", "full", "--fsdp", "hybrid", "--gpus", "16",
                            "--json"])
    assert r.exit_code == 0, r.output
    assert "FSDP2 HSDP: shard over 8 GPUs, 2 replicas" in r.stderr
