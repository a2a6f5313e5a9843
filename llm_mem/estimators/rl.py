"""RL post-training (``--train grpo|dpo|ppo``): what each algorithm keeps on a GPU beside the trained policy.

The policy is full-parameter training (its model states come from llm_mem.estimators.model_states or .fsdp,
its activations from .training). This module adds, per GPU:

* ``reference_model``: a frozen bf16 copy of the policy for the KL term (GRPO/PPO) or the implicit reward
  (DPO), sharded like the policy's parameters (ZeRO-3: over --gpus; FSDP: over the shard group; else whole).
  TRL loads none when the KL coefficient is 0: GRPOConfig ``beta`` defaults to 0.0 ("the reference model is
  not loaded", trl 1.10.0.dev0 trl/trainer/grpo_config.py).
* ``value_model``: PPO's critic, the policy's backbone with a scalar head (``AutoModelForSequenceClassification``,
  lm_head V x h replaced by 1 x h), trained: its own weights, gradients, optimizer states and master copy under
  the same sharding, plus activations as large as the policy's (TRL's PolicyAndValueWrapper runs both forwards).
* ``rollout_engine``: vLLM colocated in the trainer's processes (TRL ``use_vllm=True, vllm_mode="colocate"``;
  verl's hybrid engine): it takes ``gpu_memory_utilization`` x the GPU's total memory, its weights copy and
  KV pool inside that share. Without a GPU the share is unknown, so it is sized as the weights copy plus the
  KV cache of one generation batch.

Sequences per optimizer micro-step: DPO runs chosen and rejected sequences in one concatenated forward
(trl/trainer/dpo_trainer.py ``torch.cat((prompt_ids, completion_ids))`` over both), so twice ``--batch``;
GRPO samples ``--num-generations`` completions per prompt and TRL's per_device_train_batch_size counts
completions, so ``--batch`` prompts are ``batch x G`` sequences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from llm_mem.choices import TrainMode
from llm_mem.estimators.frameworks import TRL_MAX_LENGTH
from llm_mem.spec import ModelSpec
from llm_mem.workload import Workload

if TYPE_CHECKING:
    from llm_mem.catalog import Gpu
    from llm_mem.params import Tensor

# ---- defaults, each from the trainer's own config (trl 1.10.0.dev0, commit f2cd577, trl/trainer/...) ----
# GRPOConfig num_generations default=8 (trl/trainer/grpo_config.py).
GRPO_NUM_GENERATIONS = 8
# KL coefficients: GRPOConfig beta=0.0 (grpo_config.py: 0 = no reference model); DPOConfig beta=0.1
# (trl/trainer/dpo_config.py); PPOConfig kl_coef=0.05 (trl/experimental/ppo/ppo_config.py).
DEFAULT_BETA = {TrainMode.grpo: 0.0, TrainMode.dpo: 0.1, TrainMode.ppo: 0.05}
# Colocated rollout engine's share of each GPU: TRL GRPOConfig vllm_gpu_memory_utilization=0.3 (vllm_mode
# "colocate", grpo_config.py); PPO as verl runs it, actor_rollout_ref.rollout.gpu_memory_utilization=0.5
# (volcengine/verl verl/trainer/config/rollout/rollout.yaml, commit 035682ed).
DEFAULT_ROLLOUT_UTILIZATION = {TrainMode.grpo: 0.3, TrainMode.ppo: 0.5}
# GRPOConfig, DPOConfig and PPOConfig all default gradient_checkpointing=True "instead of False" (their
# docstrings' notes on TrainingArguments defaults).
RL_GRAD_CHECKPOINTING = True
# The rollout engine's weights are the policy's in bf16 (TRL's vLLM loads the model dtype; verl rollout.yaml
# dtype: bfloat16).
ROLLOUT_WEIGHT_BYTES = 2


class RlPart(NamedTuple):
    """One component RL adds: its name (llm_mem.report ComponentName), bytes and note."""

    name: str
    bytes: int
    note: str


# TRL 1.10.0.dev0 (f2cd577): GRPOConfig max_completion_length=512 (trl/trainer/grpo_config.py; prompts are no
# longer truncated); DPOConfig's max_length is SFTConfig's, TRL_MAX_LENGTH (llm_mem.estimators.frameworks).
GRPO_MAX_COMPLETION = 512


def rl_defaults(w: Workload) -> tuple[Workload, list[str]]:
    """The TRL defaults an RL workload leaves out, filled in (without re-validation) and stated."""
    mode = w.train
    assert mode is not None
    change: dict[str, object] = {}
    notes: list[str] = []
    if w.grad_checkpointing is None:
        change["grad_checkpointing"] = RL_GRAD_CHECKPOINTING
        notes.append(f"gradient checkpointing on: TRL's {str(mode).upper()}Config default; "
                     "--no-grad-checkpointing turns it off")
    if "context" not in w.model_fields_set:  # the sequence length the trainer truncates to
        if mode is TrainMode.dpo:
            change["context"] = TRL_MAX_LENGTH
            notes.append(f"sequences of {TRL_MAX_LENGTH:,} tokens (prompt + completion): TRL DPOConfig max_length; "
                         "--seq changes it")
        elif mode is TrainMode.grpo:
            notes.append(f"--seq {w.context:,} counts prompt + completion; TRL GRPOConfig generates up to "
                         f"{GRPO_MAX_COMPLETION} completion tokens (max_completion_length) after prompts it does not "
                         "truncate: set --seq to your longest prompt + completion")
    if mode is TrainMode.grpo and w.num_generations is None:
        change["num_generations"] = GRPO_NUM_GENERATIONS
        notes.append(f"{GRPO_NUM_GENERATIONS} generations per prompt (TRL GRPOConfig num_generations); --batch "
                     "counts prompts")
    if w.beta is None:
        beta = DEFAULT_BETA[mode]
        change["beta"] = beta
        notes.append(f"KL coefficient {beta:g} (TRL's default)" + (": no reference model is loaded" if beta == 0
                                                                      else ""))
    util = DEFAULT_ROLLOUT_UTILIZATION.get(mode)
    if util is not None and w.rollout_gpu_memory_utilization is None:
        change["rollout_gpu_memory_utilization"] = util
        how = ("TRL GRPOConfig with use_vllm=True, vllm_mode='colocate' (TRL's own default, use_vllm=False, "
               "generates with the policy)" if mode is TrainMode.grpo
               else "verl's actor_rollout_ref.rollout.gpu_memory_utilization")
        notes.append(f"rollout engine: vLLM colocated, gpu_memory_utilization {util:g}: {how}")
    return (w.model_copy(update=change) if change else w), notes


def sequences_per_step(w: Workload) -> int:
    """Sequences one GPU runs forward and backward together: DPO chosen + rejected, GRPO B x G completions."""
    if w.train is TrainMode.dpo:
        return 2 * w.batch
    if w.train is TrainMode.grpo:
        return w.batch * (w.num_generations or GRPO_NUM_GENERATIONS)
    return w.batch


def _param_shards(w: Workload) -> int:
    """GPUs a frozen model's parameters are sharded over, as the trainer prepares it beside the policy."""
    if w.fsdp is not None:
        return w.shard_group
    return w.gpus if w.zero == 3 else 1


def rl_parts(spec: ModelSpec, w: Workload, gpu: Gpu | None, policy_states: int, policy_activations: int
             ) -> tuple[list[RlPart], list[str]]:
    """The per-GPU components RL adds (``w`` with rl_defaults applied); ``policy_states``: the policy's
    weights + gradients + optimizer + master bytes per GPU, ``policy_activations``: its saved activations."""
    from llm_mem.estimators.model_states import total_params

    parts: list[RlPart] = []
    notes: list[str] = []
    p = total_params(spec)
    shards = _param_shards(w)
    split = f", 1/{shards} shard" if shards > 1 else ""
    if w.use_peft and (w.train is TrainMode.dpo or (w.beta or 0) > 0):
        # grpo_trainer.py / dpo_trainer.py: "If PEFT is used, the reference model is not needed since the adapter
        # can be disabled to revert to the initial model" (ref_model = None)
        notes.append("no reference model: with a LoRA policy TRL computes the reference log-probs with the "
                     "adapters disabled")
    elif w.train is TrainMode.dpo or (w.beta or 0) > 0:  # DPO's loss always needs the reference's log-probs
        parts.append(RlPart("reference_model", 2 * p // shards, f"frozen bf16 copy of the policy "
                                                                 f"(beta {w.beta or 0:g}){split}"))
    if w.train is TrainMode.ppo:
        head = sum(t.numel for t in _head_tensors(spec))
        vp = p - head + spec.hidden_size  # scalar score head instead of the LM head (no bias)
        parts.append(RlPart("value_model", int(policy_states * vp / p) + policy_activations,
                            f"critic: {vp:,} parameters (scalar head), trained like the policy (weights, gradients, "
                            "optimizer) + its activations"))
        notes.append("PPO's reward model is not counted (rule-based rewards); a learned one is another frozen copy")
    if w.rollout_gpu_memory_utilization is not None:
        util = w.rollout_gpu_memory_utilization
        weights = ROLLOUT_WEIGHT_BYTES * p
        if gpu is not None and not gpu.is_budget:
            share = int(util * gpu.device_total_bytes)
            parts.append(RlPart("rollout_engine", share, f"colocated vLLM: {util:g} x {gpu.id}'s "
                                                         f"{gpu.device_total_bytes / 1e9:.1f} GB (bf16 weights "
                                                         f"{weights / 1e9:.1f} GB + KV pool inside)"))
            if share <= weights:
                notes.append(f"the rollout share ({share / 1e9:.1f} GB) cannot hold the bf16 weights "
                             f"({weights / 1e9:.1f} GB): raise --rollout-gpu-memory-utilization")
            else:
                per_token = _kv_per_token(spec)
                notes.append(f"rollout KV pool about {(share - weights) // max(per_token, 1):,} tokens "
                             f"({(share - weights) / 1e9:.1f} GB after the weights copy)")
        else:
            kv = _kv_per_token(spec) * sequences_per_step(w) * w.context
            parts.append(RlPart("rollout_engine", weights + kv,
                                f"colocated vLLM without a --gpu: bf16 weights copy + KV of "
                                f"{sequences_per_step(w)} x {w.context:,} tokens (with a GPU: {util:g} of it)"))
    return parts, notes


def _head_tensors(spec: ModelSpec) -> list[Tensor]:
    from llm_mem.params import inventory

    return [t for t in inventory(spec) if t.role == "lm_head"]


def _kv_per_token(spec: ModelSpec) -> int:
    from llm_mem.estimators.kv_cache import full_context_tokens, kv_cache

    return kv_cache(spec, full_context_tokens(spec, 1), 1, "bf16").total
