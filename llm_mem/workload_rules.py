"""Cross-field rules of a training Workload (llm_mem.workload): what --train combines with. The model's
validators call these; each problem is one CombinationError naming the flag."""

from __future__ import annotations

from llm_mem.choices import RL_MODES, Fsdp, Offload, Precision, TrainMode
from llm_mem.errors import CombinationError
from llm_mem.workload import FSDP_RL_FIELDS, LORA_FIELDS, Workload


def check_training(w: Workload) -> None:
    """ZeRO, offload, quantized bases, LoRA settings, and what training never reads."""
    if w.offload is Offload.parameters and w.zero != 3:
        raise CombinationError("offload", "{} parameters needs --zero 3",
                               "DeepSpeed offloads parameters only in stage 3")
    if w.offload is Offload.optimizer and w.zero == 0:
        raise CombinationError("offload", "{} optimizer needs --zero 1, 2 or 3 (ZeRO-Offload)")
    if w.train is TrainMode.full:
        if w.quant:
            raise CombinationError("quant", "full fine-tuning updates every weight; a quantized base cannot "
                                   "be trained", "use --train qlora for a 4-bit base")
        if w.precision in (Precision.fp8, Precision.int8, Precision.int4):
            raise CombinationError("precision", f"full fine-tuning trains fp32/bf16/fp16 weights, not "
                                   f"{w.precision}", "use --train qlora (4-bit base) or --train lora")
        for f in LORA_FIELDS:
            if w.given(f):
                raise CombinationError(f, "{} applies to LoRA", "use --train lora or qlora")
    if w.prepare_kbit and w.train is not TrainMode.qlora:
        raise CombinationError("prepare_kbit", "{} prepares a quantized base (PEFT's prepare_model_for_kbit_"
                               "training)", "use --train qlora, or drop it")
    if w.train is TrainMode.qlora and w.precision not in (None, Precision.int4):
        raise CombinationError("precision", f"qlora keeps the frozen base in 4 bits; {w.precision} "
                               "contradicts it", f"drop the precision, or use --train lora --precision "
                               f"{w.precision}")
    if w.quant:
        from llm_mem.formats import lookup_format

        fmt = lookup_format(w.quant)
        if fmt is not None and fmt.gguf_recipe:  # transformers dequantizes a GGUF file when it loads one
            raise CombinationError("quant", f"{{}} {w.quant} is a llama.cpp format; transformers dequantizes "
                                   "GGUF weights on load, so training never keeps them", "use --train qlora "
                                   "(bitsandbytes nf4) or --train lora --quant gptq|awq")
        if w.train is TrainMode.qlora and fmt is not None and fmt.key not in ("nf4", "fp4"):
            raise CombinationError("quant", f"{{}} {w.quant}: qlora trains LoRA on a bitsandbytes 4-bit base "
                                   "(nf4 or fp4)", f"use --train lora --quant {w.quant} for LoRA on that base")
    if w.given("logits"):
        raise CombinationError("logits", "{} applies to inference; training always materialises every position")
    for name in ("runtime", "kv_dtype"):  # were silently ignored: the training estimate reads neither
        if w.given(name):
            raise CombinationError(name, "{} applies to inference; training is sized as transformers runs it "
                                   "(PEFT, DeepSpeed, FSDP), with no KV cache (an RL rollout engine's is bf16)",
                                   "drop it")
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size",
                 "enable_expert_parallel"):
        if w.given(name):
            raise CombinationError(name, "{} is a serving layout; training layouts are --zero and --gpus")


def check_fsdp_rl(w: Workload) -> None:
    """FSDP2, RL post-training, LoRA policies and Megatron layouts: their own rules."""
    if w.train is None:
        for f in FSDP_RL_FIELDS:
            if w.given(f):
                raise CombinationError(f, "{}: training settings apply to training only",
                                       "add --train full|lora|qlora|grpo|dpo|ppo, or drop it")
        return
    if w.fsdp is not None:
        if w.zero:
            raise CombinationError("fsdp", "{} and --zero are two ways to shard the same states",
                                   "pick one: --fsdp full|hybrid (PyTorch FSDP2) or --zero 1-3 (DeepSpeed)")
        if w.offload is not Offload.none:
            raise CombinationError("offload", "{} is DeepSpeed ZeRO-Offload", "with FSDP use --fsdp-offload")
        if w.fsdp is Fsdp.hybrid and w.gpus % w.shard_group:
            raise CombinationError("fsdp_shard_size", f"{{}} {w.shard_group} does not divide --gpus "
                                   f"{w.gpus}", "HSDP's 2-D mesh is (replicas, shard size)")
    else:
        for f in ("fsdp_shard_size", "fsdp_offload"):
            if w.given(f):
                raise CombinationError(f, "{} applies to FSDP", "add --fsdp full|hybrid")
    if w.given("fsdp_shard_size") and w.fsdp is not Fsdp.hybrid:
        raise CombinationError("fsdp_shard_size", "{} sizes HSDP's shard groups",
                               "use --fsdp hybrid; full sharding spans every --gpus")
    if w.tensor_model_parallel_size > 1 or w.context_parallel_size > 1 or w.sequence_parallel:
        from llm_mem.estimators.megatron import check_workload

        check_workload(w)
    rl = w.train in RL_MODES
    online = w.train in (TrainMode.grpo, TrainMode.ppo)
    for f, ok, what in (("num_generations", w.train is TrainMode.grpo, "GRPO"),
                        ("beta", rl, "RL post-training (grpo, dpo, ppo)"),
                        ("rollout_gpu_memory_utilization", online, "online RL with a rollout engine (grpo, ppo)")):
        if w.given(f) and not ok:
            raise CombinationError(f, f"{{}} applies to {what}", f"drop it, or change --train {w.train}")
    if rl:
        if w.quant or w.precision in (Precision.fp8, Precision.int8, Precision.int4):
            if w.use_peft:
                raise CombinationError("quant" if w.quant else "precision", f"{{}}: a LoRA policy on a quantized "
                                       f"base (QLoRA) is not modelled for --train {w.train}",
                                       "use bf16 or fp32 weights")
            raise CombinationError("quant" if w.quant else "precision", f"--train {w.train} trains every "
                                   "weight of the policy; a quantized base cannot be trained",
                                   "use bf16 or fp32 weights, or --use-peft for a LoRA policy")
        if w.use_peft and w.train is TrainMode.ppo:
            raise CombinationError("use_peft", "{} with ppo: TRL trains PPO's critic as a full model beside "
                                   "the LoRA policy, which is not modelled", "use --train grpo or dpo")
        for f in LORA_FIELDS:
            if w.given(f) and not w.use_peft:
                raise CombinationError(f, f"{{}}: --train {w.train} trains every weight unless the policy "
                                       "is a LoRA model", "add --use-peft (TRL's flag), or drop it")
    elif w.use_peft:
        raise CombinationError("use_peft", "{} makes an RL policy a LoRA model (TRL)",
                               "--train lora and qlora train adapters already: drop it")
    return
