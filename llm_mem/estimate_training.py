"""Training estimates: the defaults a recipe sets, and the per-GPU components of a training step.

`training_defaults` fills what the user left out the way the libraries people train with do
(transformers' Trainer + PEFT), and says so in the report's notes; `training_parts` composes the model
states (llm_mem.estimators.model_states) and the activations (llm_mem.estimators.training, replayed op
by op by llm_mem.estimators.saved). ``llm_mem.estimate`` turns the parts into components with bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from llm_mem.choices import RL_MODES, Trainer, TrainMode
from llm_mem.spec import ModelSpec
from llm_mem.workload import DEFAULT_LORA_RANK, Workload

if TYPE_CHECKING:
    from llm_mem.report import Component

# PEFT's prepare_model_for_kbit_training(model, use_gradient_checkpointing=True, ...) (peft/utils/other.py),
# which every QLoRA recipe calls (PEFT's and TRL's docs, axolotl's loader), turns checkpointing on;
# transformers' Trainer leaves it off (TrainingArguments activation_checkpointing None, 5.x).
QLORA_CHECKPOINTING = True
# TRL's ModelConfig (trl/trainer/model_config.py at f2cd577): lora_r=16, lora_dropout=0.05 for --use_peft.
TRL_LORA_R = 16
TRL_LORA_DROPOUT = 0.05


class Part(NamedTuple):
    """One component: its name (llm_mem.report component names), bytes and note."""

    name: str
    bytes: int
    note: str


def training_defaults(spec: ModelSpec, w: Workload) -> tuple[Workload, list[str]]:
    """The workload with the recipe defaults filled in, and the notes that state them."""
    if w.train is None:
        return w, []
    notes: list[str] = []
    change: dict[str, object] = {}
    # ---- the --trainer preset and the frameworks' switches (issue 17; llm_mem.estimators.frameworks) ----
    from llm_mem.estimators.frameworks import framework_defaults

    w, framework_notes = framework_defaults(w)
    notes += framework_notes
    # ---- end of the frameworks' block ----
    if w.train in RL_MODES:  # TRL's RL trainer defaults (llm_mem.estimators.rl.rl_defaults)
        from llm_mem.estimators.rl import rl_defaults

        w, rl_notes = rl_defaults(w)
        notes += rl_notes
    if w.grad_checkpointing is None:
        on = w.train is TrainMode.qlora and QLORA_CHECKPOINTING
        change["grad_checkpointing"] = on
        notes.append("gradient checkpointing on, as PEFT's prepare_model_for_kbit_training sets it for QLoRA; "
                     "--no-grad-checkpointing turns it off" if on else
                     "activation recomputation off (Megatron's default: no --recompute-granularity); "
                     "--grad-checkpointing sizes --recompute-granularity full" if w.megatron else
                     "gradient checkpointing off (transformers' Trainer default); --grad-checkpointing turns it on")
    if w.use_peft:  # an RL policy as a LoRA model: TRL's ModelConfig defaults (trl/trainer/model_config.py)
        for f, v in (("lora_rank", TRL_LORA_R), ("lora_dropout", TRL_LORA_DROPOUT)):
            if f not in w.model_fields_set:  # given() is False for an explicit PEFT default (r=8)
                change[f] = v
        r, d = change.get("lora_rank", w.lora_rank), change.get("lora_dropout", w.lora_dropout)
        notes.append(f"LoRA policy (--use-peft): r={r}, dropout {d:g}" + (
            " (TRL's ModelConfig defaults lora_r 16, lora_dropout 0.05)" if "lora_rank" in change or
            "lora_dropout" in change else ""))
    if w.adapters:
        from llm_mem.estimators.frameworks import preset_targets
        from llm_mem.estimators.lora import resolve_targets

        targets, why = preset_targets(spec, w)  # a --trainer recipe's targets, else PEFT's for the family
        if why:
            notes.append(why)
        if targets is None:
            targets, why = resolve_targets(spec, w.lora_targets)
            if why:
                notes.append(why)
        if targets != w.lora_targets:
            change["lora_targets"] = targets
        if not w.given("lora_rank") and not w.given("lora_dropout") and not w.use_peft and w.trainer is None:
            notes.append(f"LoRA r={DEFAULT_LORA_RANK}, dropout 0: PEFT's LoraConfig defaults")
    if not w.given("optimizer"):
        notes.append("optimizer Adam with decoupled weight decay (Megatron's default --optimizer adam)"
                     if w.megatron else
                     "optimizer AdamW (transformers' default adamw_torch_fused keeps the same two states)")
    return (w.model_copy(update=change) if change else w), notes


def training_parts(spec: ModelSpec, w: Workload, weights_full: int, weights_format: str, weights_label: str,
                   elem: int) -> tuple[list[Part], int, list[str]]:
    """Per-GPU training components (model states, activations, logits, recompute), host RAM for
    offload, and notes; ``w`` has its defaults filled (training_defaults)."""
    from llm_mem.estimators.model_states import full_states, lora_states
    from llm_mem.estimators.training import saved_activations, trainable

    ckpt = bool(w.grad_checkpointing)
    lora = w.adapters
    targets = w.lora_targets or ()
    train = trainable(spec, w, targets if lora else None)
    seqs = w.batch
    if w.train in RL_MODES:  # DPO: chosen + rejected; GRPO: batch x num_generations (llm_mem.estimators.rl)
        from llm_mem.estimators.rl import sequences_per_step

        seqs = sequences_per_step(w)
    from llm_mem.estimators.megatron import check, split

    if w.megatron:
        check(spec, w)
    from llm_mem.estimators.training import compile_unmodelled

    compiled = bool(w.torch_compile) and compile_unmodelled(spec, w) is None
    # torchtune builds the model from its own modules (its attention expands K/V to the query heads)
    act = saved_activations(spec, seqs, w.context, w.attention, ckpt, elem, train, par=split(w), compiled=compiled,
                            expand_kv=w.trainer is Trainer.torchtune, unsloth=w.trainer is Trainer.unsloth)
    what = "LoRA adapters train" if lora else "every weight trains"
    parts = [Part("activations", act.layers_total + act.outside,
                  "each layer's input (gradient checkpointing)" if ckpt else
                  f"saved for backward, {w.attention} attention, {what}"),
             Part("logits", act.logits, "logits, fp32 log-softmax and its backward (cross-entropy)")]
    if ckpt:
        parts.append(Part("activation_recompute", act.recompute, "one layer recomputed during backward"))
    if w.fsdp is not None:  # PyTorch FSDP2 instead of DeepSpeed ZeRO (llm_mem.estimators.fsdp)
        from llm_mem.estimators.fsdp import fsdp_full_states, fsdp_lora_states

        ms = (fsdp_lora_states(spec, w, weights_full, weights_label, targets) if lora
              else fsdp_full_states(spec, w, weights_format))
    elif lora:
        ms = lora_states(spec, w, weights_full, weights_label, targets)
    elif w.megatron:  # a tensor-parallel rank's share, data parallel over --gpus / TP (CP included)
        from llm_mem.estimators.megatron import model_states

        ms = model_states(spec, w, weights_format)
    else:
        ms = full_states(spec, w, weights_format, weights_label)
    states = [Part(st.name, st.bytes, st.note) for st in ms.states] + parts
    # ---- the frameworks' memory features (issue 17): fused/chunked loss, offloading, optimizer in backward ----
    from llm_mem.estimators.frameworks import framework_parts

    fparts, host, fnotes = framework_parts(spec, w, states, ms.host_bytes, ms.notes, act, elem)
    return [Part(*p) for p in fparts], host, fnotes


def gradient_overlap(w: Workload, comps: Sequence[Component]) -> tuple[int, int, int, str | None]:
    """Bytes of the components that are never live together, with the low and high ends from the components'
    bands, and the note that says so. A training step's memory goes through three moments:

    * the end of the forward and the loss's backward: every saved activation and the loss's logits;
    * the first layer's backward: the activations still, the loss's tensors freed, one layer recomputed
      (gradient checkpointing: torch.utils.checkpoint recomputes a layer when its backward starts);
    * the end of backward: every gradient, one layer recomputed, the activations freed as backward went.

    The optimizer's zero_grad frees every gradient after the step (torch.optim.Optimizer.zero_grad
    set_to_none=True since torch 2.0; transformers' Trainer calls model.zero_grad(), torchtune's recipes
    zero_grad(set_to_none=True)), so gradients count only at the end of backward; not with gradient
    accumulation (gradients stay live through the next micro-batches' forwards) or with sharded states
    (ZeRO's and Megatron's gradient buffers persist; FSDP2 reduces them as backward goes) or with the
    optimizer step in backward (one gradient held), where they are live at every moment. The peak is the
    largest moment; ``overlap`` is the sum of the components less it."""
    by = {c.name: c for c in comps}
    acts = by.get("activations")
    if acts is None:
        return 0, 0, 0, None
    g, logits, rec = by.get("gradients"), by.get("logits"), by.get("activation_recompute")
    # optimizer step in backward: the one gradient held is counted at every moment (a tied embedding's gradient
    # accumulates from the head's backward, at the loss's moment, to the embedding's, at the end)
    kept = bool(w.zero or w.fsdp is not None or w.megatron or w.gradient_accumulation_steps > 1
                or w.optimizer_in_bwd)

    def overlap(field: str) -> int:
        a, lg, r = (getattr(c, field) if c is not None else 0 for c in (acts, logits, rec))
        grads = getattr(g, field) if g is not None else 0
        always = grads if kept else 0
        moments = (a + lg + always, a + r + always, grads + r)
        return a + lg + r + grads - max(moments)

    o, low, high = overlap("bytes"), overlap("low"), overlap("high")
    if o <= 0:
        return 0, 0, 0, None
    if o * 100 < sum(c.bytes for c in comps):  # LoRA's adapter gradients: true, but not worth a note
        return o, low, high, None
    freed = acts.bytes + (logits.bytes if logits else 0)
    parts = ([f"{g.bytes / 1e9:.2f} GB of gradients are allocated during backward"] if g and not kept else []) + (
        [f"{rec.bytes / 1e9:.2f} GB of recomputed layer once the loss's tensors are freed"] if rec else [])
    return o, low, high, (
        f"not live together: {' and '.join(parts) or 'nothing'}, while {freed / 1e9:.2f} GB of activations and "
        f"logits are freed; the total is the largest moment of the step (end of forward, first layer's "
        f"backward, end of backward), {o / 1e9:.2f} GB under the sum"
        + ("; --gradient-accumulation-steps 2 or more keeps the gradients live through the forwards"
           if g and not kept else ""))
