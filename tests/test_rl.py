"""RL post-training (--train grpo|dpo|ppo) components and plan training time, against hand arithmetic and the
defaults in TRL 1.10.0.dev0's configs (llm_mem.estimators.rl, llm_mem.planner.train_time)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from llm_mem.api import run_plan
from llm_mem.catalog import load_catalog, resolve_gpu
from llm_mem.cli import app
from llm_mem.errors import UsageError
from llm_mem.estimate import estimate
from llm_mem.planner.train_time import DEFAULT_MFU, parse_train_tokens
from llm_mem.report import Workload
from llm_mem.requests import ModelRef, PlanRequest
from llm_mem.sources import resolve_model

M8B = resolve_model("meta-llama/Llama-3.1-8B")
P = 8_030_261_248
EMBED = 128_256 * 4_096
H100 = resolve_gpu("H100", load_catalog(None)).gpu
KV_PER_TOKEN = 32 * 2 * 8 * 128 * 2  # layers x (K, V) x kv heads x head dim x bf16 = 131,072 bytes


def parts(w: Workload, gpu: object = None) -> dict[str, int]:
    return {c.name: c.bytes for c in estimate(M8B, w, gpu).components}  # type: ignore[arg-type]


def test_grpo_defaults_no_reference_and_colocated_rollout():
    r = estimate(M8B, Workload(train="grpo", context=1024), H100)
    s = {c.name: c.bytes for c in r.components}
    assert "reference_model" not in s  # GRPOConfig beta=0.0: TRL does not load it
    assert s["rollout_engine"] == int(0.3 * H100.device_total_bytes)  # vllm_gpu_memory_utilization=0.3
    assert r.workload.num_generations == 8 and r.workload.grad_checkpointing is True
    # --batch 1 prompt x 8 generations = 8 sequences, checkpointed, as full fine-tuning would save them
    full = parts(Workload(train="full", context=1024, batch=8, grad_checkpointing=True))
    assert s["activations"] == full["activations"] and s["logits"] == full["logits"]
    # the policy's states are full fine-tuning's: 16 bytes per parameter
    assert s["weights"] + s["gradients"] + s["master_weights"] + s["optimizer_states"] == 16 * P


def test_grpo_rollout_without_a_gpu_is_weights_plus_kv():
    s = parts(Workload(train="grpo", context=1024, num_generations=4, batch=2))
    assert s["rollout_engine"] == 2 * P + KV_PER_TOKEN * (2 * 4) * 1024


def test_reference_model_with_beta_is_sharded_like_the_policy():
    assert parts(Workload(train="grpo", beta=0.04, context=512))["reference_model"] == 2 * P
    assert parts(Workload(train="grpo", beta=0.04, context=512, zero=3, gpus=8))["reference_model"] == 2 * P // 8
    assert parts(Workload(train="grpo", beta=0.04, context=512, fsdp="full", gpus=8))["reference_model"] == 2 * P // 8
    assert parts(Workload(train="grpo", beta=0.04, context=512, zero=2, gpus=8))["reference_model"] == 2 * P


def test_dpo_reference_and_chosen_rejected_activations():
    s = parts(Workload(train="dpo", context=1024, batch=2))
    assert s["reference_model"] == 2 * P  # DPOConfig beta 0.1: a frozen bf16 copy
    full = parts(Workload(train="full", context=1024, batch=4, grad_checkpointing=True))
    assert s["activations"] == full["activations"]  # chosen + rejected = twice the batch
    assert "rollout_engine" not in s


def test_ppo_value_model_is_a_trained_critic():
    s = parts(Workload(train="ppo", context=512, zero=3, gpus=8))
    vp = P - EMBED + 4096  # lm_head (V x h) replaced by a scalar head (1 x h)
    policy = s["weights"] + s["gradients"] + s["optimizer_states"] + s["master_weights"]
    assert s["value_model"] == int(policy * vp / P) + s["activations"]
    assert s["reference_model"] == 2 * P // 8  # kl_coef 0.05 > 0


def test_ppo_rollout_share_is_verls_default():
    assert parts(Workload(train="ppo", context=512), H100)["rollout_engine"] == int(0.5 * H100.device_total_bytes)


@pytest.mark.parametrize("w,msg", [
    (dict(train="dpo", num_generations=4), "applies to GRPO"),
    (dict(train="full", beta=0.1), "RL post-training"),
    (dict(train="dpo", rollout_gpu_memory_utilization=0.3), "rollout engine"),
    (dict(train="grpo", lora_rank=16), "unless the policy is a LoRA model"),
    (dict(train="grpo", precision="int4"), "quantized"),
    (dict(train="grpo", num_generations=1), "at least 2"),
    (dict(num_generations=4), "training only"),
])
def test_refused(w, msg):
    with pytest.raises(UsageError, match=msg):
        Workload(**w)


def _plan(**kw: object):
    w = Workload(**{k: v for k, v in kw.items() if k not in ("gpu", "train_tokens", "mfu")})
    req = {"model": ModelRef(name="llama-3.1-8b"), "workload": w, "gpu": kw["gpu"]}
    req.update({k: kw[k] for k in ("train_tokens", "mfu") if k in kw})
    return run_plan(PlanRequest(**req))


def test_plan_grpo_says_how_many_gpus():
    p = _plan(train="grpo", context=1024, gpu="H100")
    assert not p.options[0].fits and p.options[0].gpus == 1
    rec = p.recommended
    assert rec is not None and rec.gpus == 8 and "--fsdp full --gpus 8" in rec.reason


def test_train_time_6n_plus_attention():
    p = _plan(train="full", context=4096, fsdp="full", gpus=8, gpu="8xH100", train_tokens=10**9)
    t = p.recommended.train_time
    n = P - EMBED  # the input embedding multiplies nothing
    flops = 6 * n + 12 * 32 * 32 * 128 * 4096  # PaLM appendix B: 6N + 12 L H Q T
    assert t.flops_per_token == flops and t.mfu == DEFAULT_MFU == 0.4 and t.peak_tflops == 989
    assert t.tokens_per_s == pytest.approx(8 * 989e12 * 0.4 / flops)
    assert t.hours == pytest.approx(10**9 / (8 * 989e12 * 0.4 / flops) / 3600)


def test_train_time_with_recompute_and_rl_terms():
    p = _plan(train="grpo", context=1024, fsdp="full", gpus=8, gpu="8xH100", mfu=0.5)
    t = p.recommended.train_time
    n, lhqt = P - EMBED, 32 * 32 * 128 * 1024
    # checkpointed policy 8N + 16 LHQT, plus the rollout's forward 2N + 4 LHQT (beta 0: no reference)
    assert t.flops_per_token == 8 * n + 16 * lhqt + 2 * n + 4 * lhqt
    assert t.tokens is None and t.hours is None and t.mfu == 0.5


@pytest.mark.parametrize("text,value", [("1B", 10**9), ("500M", 5 * 10**8), ("1.5T", 15 * 10**11), ("2048", 2048)])
def test_train_tokens_are_decimal(text, value):
    assert parse_train_tokens(text) == value


def test_cli_plan_prints_time_and_refuses_misuse():
    runner = CliRunner()
    r = runner.invoke(app, ["plan", "llama-3.1-8b", "--train", "lora", "--gpu", "H100", "--train-tokens", "1B"])
    assert r.exit_code == 0, r.output
    assert "training speed:" in r.stdout and "tokens in" in r.stdout and "MFU 0.4" in r.stdout
    for args in (["--train-tokens", "1B"], ["--train", "full", "--mfu", "1.5"], ["--train", "full", "--train-tokens",
                                                                                "lots"]):
        r = runner.invoke(app, ["plan", "llama-3.1-8b", "--gpu", "H100", *args])
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output


def test_plan_with_a_given_count_shards_when_the_workload_does_not():
    p = _plan(train="full", context=4096, gpu="8xH100")
    assert [o.gpus for o in p.options] == [8, 8] and not p.options[0].fits  # plain data parallel replicates
    assert p.recommended is p.options[1] or p.recommended == p.options[1]
    assert "FSDP2 full shard over 8 GPUs (add --fsdp full --gpus 8)" in p.recommended.reason


def test_lora_policy_drops_the_reference_copy_and_trains_trls_default_adapters():
    # TRL with a peft_config: ref_model = None (grpo_trainer.py / dpo_trainer.py: "the adapter can be disabled
    # to revert to the initial model"); ModelConfig lora_r 16 on PEFT's default targets for llama (q, v)
    lora = estimate(M8B, Workload(train="grpo", beta=0.04, context=1024, use_peft=True), H100)
    s = {c.name: c.bytes for c in lora.components}
    assert "reference_model" not in s
    assert lora.workload.lora_rank == 16 and lora.workload.lora_dropout == 0.05
    adapters = 32 * 16 * ((4096 + 4096) + (4096 + 1024))  # r x (in + out) for q_proj and v_proj per layer
    assert adapters == 6_815_744 and s["lora_adapters"] == 4 * adapters  # fp32 adapters (PEFT autocast)
    assert s["weights"] == 2 * P and s["optimizer_states"] == 8 * adapters
    # the same LoRA sizing as --train lora with those settings: activations of the 8 completions
    plain = parts(Workload(train="lora", context=1024, batch=8, lora_rank=16, lora_dropout=0.05,
                           grad_checkpointing=True))
    assert s["activations"] == plain["activations"] and s["logits"] == plain["logits"]
    assert s["rollout_engine"] == int(0.3 * H100.device_total_bytes)  # vLLM still holds merged bf16 weights
    dpo = parts(Workload(train="dpo", context=512, use_peft=True, lora_rank=8))
    assert "reference_model" not in dpo and dpo["lora_adapters"] == 4 * adapters // 2


@pytest.mark.parametrize("kw", [{"train": "grpo", "lora_rank": 32}, {"train": "lora", "use_peft": True},
                                {"train": "ppo", "use_peft": True}, {"use_peft": True}])
def test_use_peft_combinations(kw):
    with pytest.raises(UsageError):
        Workload(**kw)


def test_sequence_length_defaults_follow_trl():
    # TRL DPOConfig / SFTConfig max_length=1024 truncate the sequence; GRPO truncates no prompt, so --seq stays
    # llm-mem's default and a note says what it counts
    m = resolve_model("meta-llama/Llama-3.1-8B")
    dpo = estimate(m, Workload(train="dpo"))
    assert dpo.workload.context == 1024 and any("DPOConfig max_length" in n for n in dpo.notes)
    assert estimate(m, Workload(train="dpo", context=4096)).workload.context == 4096  # given, even as the default
    sft = estimate(m, Workload(train="lora", trainer="trl"))
    assert sft.workload.context == 1024
    assert estimate(m, Workload(train="lora")).workload.context == 4096  # no trainer: no truncation assumed
    grpo = estimate(m, Workload(train="grpo"))
    assert grpo.workload.context == 4096 and any("max_completion_length" in n for n in grpo.notes)
