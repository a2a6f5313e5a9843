"""Training memory against hand-derived numbers and DeepSpeed's ZeRO estimators."""

from __future__ import annotations

import pytest

from llm_mem.errors import UsageError
from llm_mem.estimate import estimate
from llm_mem.estimators.lora import lora_params
from llm_mem.estimators.model_states import largest_module_params
from llm_mem.estimators.training import optimizer_state_bytes
from llm_mem.params import Tensor
from llm_mem.report import Workload
from llm_mem.sources import resolve_model

M8B = resolve_model("meta-llama/Llama-3.1-8B")
P = 8_030_261_248


def states(w: Workload) -> dict[str, int]:
    r = estimate(M8B, w)
    return {c.name: c.bytes for c in r.components}


def test_adamw_mixed_precision_is_16_bytes_per_param():
    # bf16 weights 2 + bf16 grads 2 + fp32 master 4 + Adam m, v fp32 8 (ZeRO paper, arXiv:1910.02054, sec. 3.1)
    s = states(Workload(train="full", precision="bf16", context=512))
    assert (s["weights"], s["gradients"], s["master_weights"], s["optimizer_states"]) == (2 * P, 2 * P, 4 * P, 8 * P)


def test_pure_bf16_adamw_is_8_bytes_per_param():
    s = states(Workload(train="full", precision="bf16", mixed_precision="none", context=512))
    assert "master_weights" not in s and s["weights"] + s["gradients"] + s["optimizer_states"] == 8 * P


def test_fp32_weights_with_autocast_keep_no_separate_master():
    s = states(Workload(train="full", precision="fp32", context=512))
    assert "master_weights" not in s and (s["weights"], s["gradients"], s["optimizer_states"]) == (4 * P, 4 * P, 8 * P)


@pytest.mark.parametrize("opt,expected", [
    ("sgd", 0), ("sgd-momentum", 4 * P), ("lion", 4 * P),
])
def test_simple_optimizers(opt, expected):
    assert states(Workload(train="full", optimizer=opt, context=512))["optimizer_states"] == expected


def test_adamw_8bit_block_wise():
    big = Tensor("w", "mlp_up", 0, (4096, 4096))
    small = Tensor("n", "norm", 0, (4096,))
    n = 4096 * 4096
    # two uint8 states + one fp32 absmax per 2048 elements each; tensors < 4096 elements keep fp32 states
    assert optimizer_state_bytes([big], "adamw-8bit", 4) == 2 * (n + n // 2048 * 4)
    assert optimizer_state_bytes([Tensor("b", "bias", 0, (100,))], "adamw-8bit", 4) == 2 * 100 * 4
    assert optimizer_state_bytes([small], "adamw-8bit", 4) == 2 * (4096 + 2 * 4)


def test_adafactor_factored_second_moment():
    t = Tensor("w", "mlp_up", 0, (14336, 4096))
    assert optimizer_state_bytes([t], "adafactor", 4) == (14336 + 4096) * 4
    assert optimizer_state_bytes([Tensor("n", "norm", 0, (4096,))], "adafactor", 4) == 4096 * 4


def test_lora_rank16_llama3_8b_matches_peft():
    # PEFT print_trainable_parameters for Llama-3-8B, r=16 on q,k,v,o,gate,up,down: 41,943,040
    assert lora_params(M8B.spec, ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                       16) == 41_943_040


ALL7 = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def test_lora_components():
    s = states(Workload(train="lora", lora_rank=16, lora_targets=ALL7, context=512))
    L = 41_943_040
    assert s["weights"] == 2 * P  # frozen bf16 base
    assert s["lora_adapters"] == 4 * L and s["gradients"] == 4 * L and s["optimizer_states"] == 8 * L


def test_qlora_base_is_nf4():
    r = estimate(M8B, Workload(train="qlora", context=512))
    assert r.weights.format == "nf4" and r.component("weights") < 6e9


def test_zero2_equals_deepspeed_estimator():
    # stage_1_and_2.py estimate_zero2_model_states_mem_needs (after PR #5099): 2P + 18P/N
    s = states(Workload(train="full", zero=2, gpus=8, context=512))
    model_states = s["weights"] + s["gradients"] + s["optimizer_states"] + s["master_weights"]
    assert model_states == pytest.approx(2 * P + 18 * P / 8, abs=8)


def test_zero3_equals_deepspeed_estimator():
    # stage3.py estimate_zero3_model_states_mem_needs: 4 x largest layer + 18P/N
    largest = largest_module_params(M8B.spec)
    assert largest == 128256 * 4096  # embed_tokens (and lm_head) are the largest single modules
    s = states(Workload(train="full", zero=3, gpus=8, context=512))
    model_states = s["weights"] + s["gradients"] + s["optimizer_states"] + s["master_weights"]
    assert model_states == pytest.approx(4 * largest + 18 * P / 8, abs=8)


def test_zero3_offload():
    largest = largest_module_params(M8B.spec)
    r = estimate(M8B, Workload(train="full", zero=3, gpus=8, offload="optimizer", context=512))
    gpu = sum(r.component(n) for n in ("weights", "gradients", "optimizer_states", "master_weights"))
    assert gpu == pytest.approx(4 * largest + 2 * P / 8, abs=8)
    assert r.host_bytes == int(P * max(4 * 8, 16) * 1.5)  # additional_buffer_factor 1.5
    r = estimate(M8B, Workload(train="full", zero=3, gpus=8, offload="parameters", context=512))
    assert sum(r.component(n) for n in ("weights", "gradients")) == 4 * largest


def test_checkpointing_keeps_layer_inputs_only():
    full = estimate(M8B, Workload(train="full", context=2048, batch=2))
    ck = estimate(M8B, Workload(train="full", context=2048, batch=2, grad_checkpointing=True))
    T, h = 2 * 2048, 4096
    # each layer's input (bf16) + outside the layers: the int64 input ids (embedding backward), final RMSNorm
    # (fp32 copy, rstd, bf16 output), lm_head input and the int64 targets (nll_loss)
    assert ck.component("activations") == 32 * T * h * 2 + T * (8 + (4 + 2) * h + 4 + 2 * h + 8)
    assert ck.component("activation_recompute") > 0
    assert ck.component("activations") < full.component("activations") / 10


@pytest.mark.parametrize("w,msg", [
    (dict(train="qlora", precision="fp32"), "contradicts"),
    (dict(train="lora", lora_rank=0), "lora-rank"),
    (dict(train="full", zero=4), "--zero"),
    (dict(train="full", offload="optimizer"), "--zero 1, 2 or 3"),
    (dict(train="full", zero=2, offload="parameters"), "--zero 3"),
    (dict(train="full", quant="Q4_K_M"), "cannot be trained"),
    (dict(zero=2), "apply to training"),
])
def test_nonsense_combinations(w, msg):
    with pytest.raises(UsageError, match=msg):
        estimate(M8B, Workload(context=512, **w))


def test_zero3_on_one_gpu_is_a_warning():
    r = estimate(M8B, Workload(train="full", zero=3, gpus=1, context=512))
    assert any("partitions nothing" in w for w in r.warnings)
