"""Training memory against hand-derived numbers and DeepSpeed's ZeRO estimators."""

from __future__ import annotations

import pytest

from llm_mem.errors import CombinationError, UsageError
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
    bare = estimate(M8B, Workload(train="qlora", context=512, prepare_kbit=False))
    assert bare.weights.format == "nf4" and bare.component("weights") < 6e9
    # PEFT's prepare_model_for_kbit_training (the default without --trainer): embeddings, head and norms in fp32
    # (+2 bytes on each of their 1.05 B parameters) and the activations in fp32 (measured_qlora.json)
    kbit = estimate(M8B, Workload(train="qlora", context=512))
    assert kbit.workload.prepare_kbit is True
    assert kbit.component("weights") - bare.component("weights") == 2 * (2 * 525_336_576 + 4096 * 65)
    assert 1.9 * bare.component("activations") < kbit.component("activations") <= 2 * bare.component("activations")
    assert any("prepare_model_for_kbit_training" in n for n in kbit.notes)
    # TRL's SFTTrainer does not call it and casts the adapters to bf16
    trl = estimate(M8B, Workload(train="qlora", context=512, trainer="trl"))
    assert trl.workload.prepare_kbit is False and trl.component("weights") == bare.component("weights")
    r16 = estimate(M8B, Workload(train="qlora", context=512, prepare_kbit=False, lora_rank=16))
    assert trl.component("lora_adapters") * 2 == r16.component("lora_adapters")  # TRL's r 16, bf16
    # sharded QLoRA (FSDP, ZeRO-3) keeps one dtype: its recipes skip the upcast
    fsdp = estimate(M8B, Workload(train="qlora", context=512, fsdp="full", gpus=2))
    assert fsdp.workload.prepare_kbit is False
    with pytest.raises(CombinationError):
        Workload(train="lora", prepare_kbit=True)


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


# ---- the training frameworks' memory features: --trainer presets and switches (issue 17) ---------------
V8B, H8B = 128_256, 4096


def test_fused_ce_replaces_the_fp32_logits_by_one_liger_chunk():
    T = 2 * 2048
    base = estimate(M8B, Workload(train="lora", context=2048, batch=2))
    fused = estimate(M8B, Workload(train="lora", context=2048, batch=2, fused_ce=True))
    # the standard loss: bf16 logits + fp32 log-softmax + two fp32 gradients = 14 bytes per logit
    assert base.component("logits") == T * V8B * 14
    # Liger: next_power_of_2(ceil(4096 / ceil(128256 / 4096))) = 128 tokens of bf16 logits + the bf16 grad_input
    chunk = 128
    assert fused.component("logits") == chunk * V8B * 2 + T * H8B * 2
    removed = base.component("logits") - fused.component("logits")
    assert removed == T * V8B * 14 - chunk * V8B * 2 - T * H8B * 2
    for name in ("weights", "activations", "gradients", "optimizer_states"):
        assert fused.component(name) == base.component(name)


def test_chunked_ce_keeps_fp32_log_softmax_and_one_chunks_backward():
    T = 2048
    r = estimate(M8B, Workload(train="lora", context=2048, chunked_ce=True))
    assert r.component("logits") == T * V8B * 4 + (T // 8) * V8B * 8 + T * H8B * 2


def test_torchtune_without_chunked_ce_frees_the_bf16_logits():
    r = estimate(M8B, Workload(train="lora", context=2048, trainer="torchtune", chunked_ce=False))
    assert r.component("logits") == 2048 * V8B * 12  # fp32 log-softmax + two fp32 gradients


def test_trl_fused_loss_is_one_checkpointed_256_token_chunk():
    T = 4096
    r = estimate(M8B, Workload(train="lora", context=4096, trainer="trl"))
    # 16 bytes per chunk logit (benchmarks/loss_memory), the fp32 head copy, sorted hidden states + gradient
    assert r.component("logits") == 256 * V8B * 16 + V8B * H8B * 4 + 2 * T * H8B * 2


def test_optimizer_in_backward_keeps_only_the_largest_gradient():
    r = estimate(M8B, Workload(train="full", context=512, optimizer_in_bwd=True))
    # the embedding (and the untied lm_head) is Llama-3.1-8B's largest parameter: 128256 x 4096, bf16 gradient
    assert r.component("gradients") == V8B * H8B * 2
    assert any("largest parameter" in c.note for c in r.components if c.name == "gradients")
    lora = estimate(M8B, Workload(train="lora", context=512, optimizer_in_bwd=True))
    # PEFT's default targets for Llama (q_proj, v_proj): the largest adapter matrix is r x 4096, fp32
    assert lora.component("gradients") == 8 * 4096 * 4
    mlp = estimate(M8B, Workload(train="lora", context=512, optimizer_in_bwd=True, lora_targets="gate_proj,down_proj"))
    assert mlp.component("gradients") == 8 * 14336 * 4  # gate_proj's lora_B / down_proj's lora_A: 14336 x r


def test_activation_offloading_moves_all_but_one_layer_to_host():
    w = dict(train="lora", context=2048, batch=2, grad_checkpointing=True)
    on = estimate(M8B, Workload(**w, activation_offloading=True))
    off = estimate(M8B, Workload(**w))
    per_layer = 2 * 2048 * H8B * 2  # one checkpointed layer input
    layers = 32 * per_layer
    assert on.host_bytes == layers - per_layer
    assert off.component("activations") - on.component("activations") == layers - per_layer
    assert off.host_bytes == 0


def test_paged_32bit_states_are_fp32():
    r = estimate(M8B, Workload(train="full", precision="bf16", mixed_precision="none", context=512,
                               optimizer="paged-adamw-32bit"))
    assert r.component("optimizer_states") == 8 * P
    assert any("spill to host" in n for n in r.notes)


@pytest.mark.parametrize("trainer,stated", [
    ("torchtune", ["activation checkpointing on", "chunked cross-entropy (8 chunks) on", "activation offloading off",
                   "torch.compile off", "bd2a0fc7c", "--no-chunked-ce turns it off"]),
    ("trl", ["activation checkpointing on", "fused linear cross-entropy on", "f2cd577"]),
    ("unsloth", ["activation checkpointing on", "activation offloading on", "fused linear cross-entropy on"]),
    ("axolotl", ["activation checkpointing off", "fused linear cross-entropy off", "0.18.0"]),
    ("hf", ["fused linear cross-entropy off", "transformers 5.24"]),
])
def test_presets_state_every_default_in_notes(trainer, stated):
    r = estimate(M8B, Workload(train="qlora", context=512, trainer=trainer))
    note = next(n for n in r.notes if n.startswith(f"{trainer} preset"))
    for s in stated:
        assert s in note


def test_torchtune_full_preset_and_explicit_flags_win():
    r = estimate(M8B, Workload(train="full", context=512, trainer="torchtune"))
    w = r.workload
    assert (w.optimizer, w.mixed_precision, w.optimizer_in_bwd, w.chunked_ce, w.grad_checkpointing) == (
        "paged-adamw-8bit", "none", True, True, True)
    assert "master_weights" not in {c.name for c in r.components}
    o = estimate(M8B, Workload(train="full", context=512, trainer="torchtune", optimizer="adamw",
                               optimizer_in_bwd=False, grad_checkpointing=False))
    assert (o.workload.optimizer, o.workload.optimizer_in_bwd, o.workload.grad_checkpointing) == ("adamw", False, False)
    assert o.component("gradients") == 2 * P


def test_torchtune_lora_adapters_are_bf16():
    pt = estimate(M8B, Workload(train="lora", context=512, lora_targets="q_proj,v_proj"))
    tt = estimate(M8B, Workload(train="lora", context=512, trainer="torchtune", lora_targets="q_proj,v_proj"))
    assert tt.component("lora_adapters") * 2 == pt.component("lora_adapters")
    assert tt.component("gradients") * 2 == pt.component("gradients")


def test_presets_set_their_recipes_lora():
    # torchtune llama3_1/8B_lora_single_device.yaml: q, v, output_proj + MLP, r 8 -> per layer
    # 8 x [(4096+4096) x 2 + (4096+1024) + (4096+14336) x 3] = 614,400; x 32 layers
    tt = estimate(M8B, Workload(train="lora", context=512, trainer="torchtune"))
    assert tt.workload.lora_targets == ("q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert tt.component("lora_adapters") == 2 * 19_660_800  # bf16
    # Unsloth get_peft_model(r=16, all seven projections): its notebooks print "Trainable parameters =
    # 41,943,040" for Llama-3.1-8B
    us = estimate(M8B, Workload(train="lora", context=512, trainer="unsloth"))
    assert us.workload.lora_rank == 16 and us.component("lora_adapters") == 4 * 41_943_040
    # TRL's `trl sft --use_peft`: ModelConfig r 16, dropout 0.05 on PEFT's default targets; explicit flags win
    trl = estimate(M8B, Workload(train="lora", context=512, trainer="trl"))
    assert (trl.workload.lora_rank, trl.workload.lora_dropout, trl.workload.lora_targets) == (16, 0.05,
                                                                                           ("q_proj", "v_proj"))
    own = estimate(M8B, Workload(train="lora", context=512, trainer="unsloth", lora_rank=8, lora_targets="q_proj"))
    assert (own.workload.lora_rank, own.workload.lora_targets) == (8, ("q_proj",))


def test_axolotl_leaves_qlora_checkpointing_off():
    assert estimate(M8B, Workload(train="qlora", context=512)).workload.grad_checkpointing is True
    assert estimate(M8B, Workload(train="qlora", context=512, trainer="axolotl")).workload.grad_checkpointing is False


@pytest.mark.parametrize("w,msg", [
    (dict(trainer="torchtune"), "apply to training"),
    (dict(fused_ce=True), "apply to training"),
    (dict(train="full", zero=2, gpus=2, optimizer_in_bwd=True), "optimizer-in-bwd"),
])
def test_framework_flags_refused_where_they_mean_nothing(w, msg):
    with pytest.raises(UsageError, match=msg):
        estimate(M8B, Workload(context=512, **w))


def test_loss_closed_forms_match_the_committed_loss_measurements():
    import json
    from pathlib import Path

    from llm_mem.estimators.training import ce_logits_bytes

    data = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "loss_memory" / "results.json").read_text())
    kinds = {"hf": "standard", "torchtune-ce": "upcast", "torchtune-linear-ce": "chunked", "trl-chunked-nll": "trl"}
    assert {r["loss"] for r in data["rows"]} == set(kinds)
    for r in data["rows"]:
        ours = ce_logits_bytes(kinds[r["loss"]], r["tokens"], r["vocab"], r["hidden"], 2)
        assert abs(ours - r["measured_peak_bytes"]) <= 0.015 * r["measured_peak_bytes"], r


def test_gradients_and_freed_activations_are_counted_once():
    # zero_grad(set_to_none=True) frees gradients after each step, so they are allocated during backward as the
    # saved activations and logits are freed; a checkpointed layer is recomputed once the loss's tensors are gone.
    # The peak is the largest of three moments: end of forward (activations + logits), the first layer's
    # backward (activations + one recomputed layer), end of backward (gradients + one recomputed layer).
    # torchtune's README rows (Llama 3.2 3B, benchmarks/accuracy) move from +6.5 / +24.8% to -0.6 / -0.9% with it.
    r = estimate(M8B, Workload(train="full", context=2048))
    c = {x.name: x.bytes for x in r.components}
    freed = c["activations"] + c["logits"]
    assert "activation_recompute" not in c
    assert r.overlap_bytes == min(c["gradients"], freed) > 0
    assert r.total_bytes == sum(c.values()) - r.overlap_bytes
    ckpt = estimate(M8B, Workload(train="full", context=2048, grad_checkpointing=True))
    cc = {x.name: x.bytes for x in ckpt.components}
    assert cc["gradients"] > cc["activations"] + cc["logits"]  # checkpointed: the end of backward is the peak
    assert ckpt.total_bytes == sum(cc.values()) - cc["activations"] - cc["logits"]
    # LoRA, checkpointed: adapter gradients are small, so the loss's moment or the recompute's is the peak
    lora = estimate(M8B, Workload(train="lora", context=8192, batch=2, grad_checkpointing=True))
    lc = {x.name: x.bytes for x in lora.components}
    top = max(lc["activations"] + lc["logits"], lc["activations"] + lc["activation_recompute"],
              lc["gradients"] + lc["activation_recompute"])
    assert lora.total_bytes == sum(lc.values()) - (
        lc["activations"] + lc["logits"] + lc["activation_recompute"] + lc["gradients"] - top)
    assert lora.overlap_bytes >= min(lc["logits"], lc["activation_recompute"]) > 0
    # gradient accumulation keeps gradients live through the next forwards; ZeRO's partitions persist
    for kw in ({"gradient_accumulation_steps": 4}, {"zero": 2, "gpus": 8}):
        other = estimate(M8B, Workload(train="full", context=2048, **kw))
        assert other.overlap_bytes == 0 and other.total_bytes == sum(x.bytes for x in other.components)
