"""The training frameworks' memory features (issue 17): the `--trainer` presets and what each switch does
to the training components.

`framework_defaults` fills the switches a preset sets (an explicit flag always wins) and states every
default it applied in the report's notes; `framework_parts` rewrites the components the switches change:

* fused linear cross-entropy (`--fused-ce`): no logits tensor; one chunk of tokens' logits is live
  (Liger's chunking; TRL's checkpointed 256-token chunks under `--trainer trl`);
* chunked cross-entropy (`--chunked-ce`): torchtune's 8 token chunks, each chunk's fp32 log-softmax saved;
* activation offloading (`--activation-offloading`): saved activations in host RAM, one layer's worth on the
  GPU (torchtune enable_activation_offloading; Unsloth's "unsloth" gradient checkpointing);
* optimizer step in backward (`--optimizer-in-bwd`): each gradient is freed after its parameter's step, so
  only the largest parameter's gradient is live (torchtune optimizer_in_bwd);
* paged optimizers (`--optimizer paged-adamw-8bit|paged-adamw-32bit`): stated (states may spill to host);
* sequence packing and torch.compile: stated, not sized (see the notes they add).

The closed forms for the loss are in llm_mem.estimators.training (`ce_logits_bytes`), checked against
measurements of each framework's algorithm (benchmarks/loss_memory/).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from llm_mem.choices import MixedPrecision, Optimizer, Trainer, TrainMode
from llm_mem.errors import CombinationError
from llm_mem.spec import ModelSpec
from llm_mem.workload import Workload

if TYPE_CHECKING:
    from llm_mem.estimators.training import SavedActivations


class _Part(NamedTuple):
    """Mirrors llm_mem.estimate_training.Part (name, bytes, note) without importing it (no cycle)."""

    name: str
    bytes: int
    note: str


@dataclass(frozen=True)
class Preset:
    """What a framework's default recipe sets; ``source`` names the file and version read."""

    source: str
    grad_checkpointing: bool | None  # None: the recipe leaves it to PEFT/transformers (training_defaults)
    fused_ce: bool = False
    chunked_ce: bool = False
    activation_offloading: bool = False
    packing: bool = False
    torch_compile: bool = False
    # full fine-tuning only
    optimizer_in_bwd: bool = False
    full_optimizer: Optimizer | None = None
    full_mixed_precision: MixedPrecision | None = None
    adapters_bf16: bool = False  # LoRA parameters built in the model's bf16 (not PEFT's fp32 autocast)
    qlora_adapters_bf16: bool = False  # QLoRA only: the trainer casts the adapters to bf16 after PEFT
    # LoRA as the recipe configures it (None: PEFT's LoraConfig defaults, r 8, dropout 0, the family's targets)
    lora_targets: tuple[str, ...] | None = None
    lora_rank: int | None = None
    lora_dropout: float | None = None


# TRL 1.10.0.dev0 (f2cd577): SFTConfig and DPOConfig max_length=1024 (trl/trainer/sft_config.py, dpo_config.py):
# the sequence length TRL truncates to when --seq is not given.
TRL_MAX_LENGTH = 1024

#: Each framework's current default recipe, read from its source at the named version.
TRAINER_PRESETS: dict[Trainer, Preset] = {
    # transformers 5.24 TrainingArguments: gradient_checkpointing False, torch_compile False, optim
    # adamw_torch_fused; the model's loss (loss/loss_utils.py ForCausalLMLoss) upcasts all logits to fp32.
    Trainer.hf: Preset("transformers 5.24 TrainingArguments", None),
    # TRL 1.10.0.dev0 (trl/trainer/sft_config.py at f2cd577): SFTConfig gradient_checkpointing=True ("instead of
    # False"), loss_type "chunked_nll" (256-token chunks, checkpointed), packing=False, activation_offloading=False.
    # LoRA through `trl sft --use_peft`: ModelConfig lora_r=16, lora_dropout=0.05 (trl/trainer/model_config.py).
    # QLoRA: SFTTrainer casts every trainable parameter of a quantized model to bf16 after get_peft_model
    # (trl/trainer/sft_trainer.py @f2cd577, "the PEFT adapter weights are converted to bf16 to follow the
    # recommendations from the original paper"), and calls no prepare_model_for_kbit_training.
    Trainer.trl: Preset("TRL 1.10.0.dev0 SFTConfig, trl/trainer/sft_config.py @f2cd577", True, fused_ce=True,
                        lora_rank=16, lora_dropout=0.05, qlora_adapters_bf16=True),
    # torchtune (recipes/configs/llama3_1/8B_lora_single_device.yaml, 8B_qlora_single_device.yaml,
    # 8B_full_single_device.yaml at bd2a0fc7c): enable_activation_checkpointing True,
    # enable_activation_offloading False, compile False, dataset packed False, loss LinearCrossEntropyLoss
    # (8 chunks), dtype bf16 (recipes build the model, adapters included, in bf16); full: optimizer
    # bitsandbytes.optim.PagedAdamW8bit with optimizer_in_bwd True; LoRA: lora_attn_modules [q_proj, v_proj,
    # output_proj], apply_lora_to_mlp True (w1, w2, w3: gate, down, up), lora_rank 8, lora_dropout 0.0.
    Trainer.torchtune: Preset("torchtune recipes/configs/llama3_1/8B_{lora,qlora,full}_single_device.yaml @bd2a0fc7c",
                              True, chunked_ce=True, optimizer_in_bwd=True,
                              full_optimizer=Optimizer.paged_adamw_8bit,
                              full_mixed_precision=MixedPrecision.none, adapters_bf16=True,
                              lora_targets=("q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                              lora_rank=8, lora_dropout=0.0),
    # Unsloth 2026.8.19 (unsloth/models/llama.py at 015bdef): get_peft_model use_gradient_checkpointing="unsloth"
    # (checkpointed layer inputs offloaded to host RAM), the loss unsloth_fused_ce_loss (no logits tensor).
    # FastLanguageModel.get_peft_model(r=16, target_modules=[q, k, v, o, gate, up, down]_proj, lora_dropout=0.0).
    Trainer.unsloth: Preset("Unsloth 2026.8.19, unsloth/models/llama.py @015bdef", True, fused_ce=True,
                            activation_offloading=True, lora_rank=16, lora_dropout=0.0,
                            lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                          "down_proj")),
    # axolotl 0.18.0 (src/axolotl/utils/schemas/config.py at 067b021): gradient_checkpointing False (passed to
    # prepare_model_for_kbit_training for QLoRA too, loaders/model.py), activation_offloading False,
    # sample_packing unset (off), chunked_cross_entropy unset (off), optimizer adamw_torch_fused.
    Trainer.axolotl: Preset("axolotl 0.18.0, src/axolotl/utils/schemas/config.py @067b021", False),
}
# How the switches read in notes, and the flag that turns each off.
_SWITCHES = (("grad_checkpointing", "activation checkpointing"), ("fused_ce", "fused linear cross-entropy"),
             ("chunked_ce", "chunked cross-entropy (8 chunks)"), ("activation_offloading", "activation offloading"),
             ("optimizer_in_bwd", "optimizer step in backward"), ("packing", "sequence packing"),
             ("torch_compile", "torch.compile"))
_FLAGS = {"grad_checkpointing": "grad-checkpointing", "torch_compile": "torch-compile"}
# torchtune's activation offloading keeps up to 5 tensors in flight on the GPU in forward
# (torchtune/training/_activation_offloading.py OffloadActivations max_fwd_stash_size=5, at bd2a0fc7c) and
# brings one layer's back ahead of its backward; the estimate keeps one layer's saved bytes on the GPU.
OFFLOAD_LAYERS_ON_GPU = 1


def _flag(name: str) -> str:
    return "--" + _FLAGS.get(name, name.replace("_", "-"))


def framework_defaults(w: Workload) -> tuple[Workload, list[str]]:
    """The workload with the --trainer preset's switches filled in (explicit flags win, every switch left
    unset is off) and the notes that state each default applied."""
    full = w.train is TrainMode.full
    preset = TRAINER_PRESETS.get(w.trainer) if w.trainer is not None else None
    change: dict[str, object] = {}
    applied: list[str] = []
    if preset is not None:
        wanted: dict[str, object] = {
            "fused_ce": preset.fused_ce, "chunked_ce": preset.chunked_ce,
            "activation_offloading": preset.activation_offloading, "packing": preset.packing,
            "torch_compile": preset.torch_compile, "optimizer_in_bwd": preset.optimizer_in_bwd and full}
        if preset.grad_checkpointing is not None:
            wanted["grad_checkpointing"] = preset.grad_checkpointing
        for name, label in _SWITCHES:
            if name in wanted and getattr(w, name) is None:
                change[name] = wanted[name]
                on = bool(wanted[name])
                flag = "--no-" + _flag(name)[2:] if on else _flag(name)
                applied.append(f"{label} {'on' if on else 'off'} ({flag} turns it {'off' if on else 'on'})")
        if full and preset.full_optimizer is not None and "optimizer" not in w.model_fields_set:
            change["optimizer"] = preset.full_optimizer
            applied.append(f"optimizer {preset.full_optimizer} (--optimizer changes it)")
        if full and preset.full_mixed_precision is not None and "mixed_precision" not in w.model_fields_set:
            change["mixed_precision"] = preset.full_mixed_precision
            applied.append("pure bf16, no fp32 master weights (dtype: bf16; --mixed-precision bf16 adds them)")
        if w.adapters:
            for f, v in (("lora_rank", preset.lora_rank), ("lora_dropout", preset.lora_dropout)):
                if v is not None and f not in w.model_fields_set:
                    change[f] = v
                    applied.append(f"LoRA {'r' if f == 'lora_rank' else 'dropout'} {v:g} (--{f.replace('_', '-')} "
                                   "changes it)")
        if preset.adapters_bf16 and w.adapters:
            applied.append("LoRA adapters, their gradients and AdamW states in bf16 (the recipe builds them in bf16)")
    for name in ("fused_ce", "chunked_ce", "activation_offloading", "optimizer_in_bwd", "packing", "torch_compile"):
        if getattr(w, name) is None and name not in change:
            change[name] = False
    if w.optimizer_in_bwd and (w.zero or w.fsdp is not None):
        raise CombinationError("optimizer_in_bwd", "{} frees each gradient after a single-device step; "
                               "ZeRO and FSDP partition gradients themselves", "drop one of them")
    if w.trainer is Trainer.trl and w.train in (TrainMode.full, TrainMode.lora, TrainMode.qlora) \
            and "context" not in w.model_fields_set:
        change["context"] = TRL_MAX_LENGTH  # SFTConfig max_length: longer sequences are truncated
        applied.append(f"sequences of {TRL_MAX_LENGTH:,} tokens (max_length; --seq changes it)")
    notes = [f"{w.trainer} preset ({preset.source}): " + "; ".join(applied)] if preset and applied else []
    if w.train is TrainMode.qlora and w.prepare_kbit is None:
        # PEFT's QLoRA recipe (its docs, transformers' Trainer users) calls prepare_model_for_kbit_training, which
        # casts every parameter that is not a Params4bit to fp32 (peft/utils/other.py, "cast all non INT8
        # parameters to fp32"); TRL's SFTTrainer (sft_trainer.py @f2cd577) never calls it, axolotl turns the
        # norms and embeddings back to bf16 after it (loaders/model.py @067b021), Unsloth and torchtune build
        # their own 4-bit models.
        # Sharded QLoRA (FSDP, ZeRO-3) needs one dtype across the model, so its recipes skip it (axolotl's
        # _prepare_model_for_quantization: is_qlora_and_fsdp_enabled / is_deepspeed_zero3_enabled).
        sharded = w.fsdp is not None or w.zero == 3
        on = w.trainer in (None, Trainer.hf) and not sharded
        change["prepare_kbit"] = on
        why = ("sharded QLoRA keeps one dtype (FSDP/ZeRO-3 recipes skip it)" if sharded and w.trainer in
               (None, Trainer.hf) else f"the {w.trainer} recipe does not call it")
        notes.append("QLoRA as PEFT's prepare_model_for_kbit_training leaves it: the embeddings, norms and head in "
                     "fp32, so the activations and logits run in fp32 too (measured, benchmarks/activations/"
                     "measured_qlora.json); --no-prepare-kbit keeps them bf16" if on else
                     f"QLoRA without prepare_model_for_kbit_training ({why}): the unquantized weights and the "
                     "activations stay bf16; --prepare-kbit sizes PEFT's recipe")
    return (w.model_copy(update=change) if change else w), notes


def preset_targets(spec: ModelSpec, w: Workload) -> tuple[tuple[str, ...] | None, str | None]:
    """The --trainer preset's LoRA targets when the user gave none and every name is a module of this model
    (the recipes name Llama-style modules), with the note that says so; (None, None) otherwise."""
    preset = TRAINER_PRESETS.get(w.trainer) if w.trainer is not None else None
    if preset is None or preset.lora_targets is None or w.lora_targets is not None or not w.adapters:
        return None, None
    from llm_mem.estimators.lora import lora_modules

    names = {m.name.rsplit(".", 1)[-1] for m in lora_modules(spec)}
    if not set(preset.lora_targets) <= names:
        return None, (f"the {w.trainer} recipe's LoRA targets ({', '.join(preset.lora_targets)}) are not all modules "
                      f"of {spec.model_type}; PEFT's default targets used")
    return preset.lora_targets, (f"LoRA targets {', '.join(preset.lora_targets)}: the {w.trainer} recipe's "
                                 "(--lora-targets changes them)")


def adapter_bytes(w: Workload) -> int:
    """Bytes per LoRA parameter: fp32 as PEFT casts them (autocast_adapter_dtype=True), bf16 under a preset
    that builds the whole model in bf16 (torchtune) or casts QLoRA's adapters to bf16 (TRL's SFTTrainer)."""
    preset = TRAINER_PRESETS.get(w.trainer) if w.trainer is not None else None
    if preset is None:
        return 4
    return 2 if preset.adapters_bf16 or (preset.qlora_adapters_bf16 and w.train is TrainMode.qlora) else 4


def _tokens(spec: ModelSpec, w: Workload, act: SavedActivations, elem: int) -> int:
    """The tokens of the training step, read back from the standard loss's bytes (T x per-token bytes, so
    the RL modes' extra sequences are included); batch x context if that reading is not exact."""
    per = spec.vocab_size * (elem + 12) + (spec.vocab_size * elem if spec.training.logit_softcap else 0)
    return act.logits // per if act.logits % per == 0 and act.logits else w.batch * w.context


def framework_parts(spec: ModelSpec, w: Workload, parts: Sequence[tuple[str, int, str]], host: int, notes: list[str],
                    act: SavedActivations, elem: int) -> tuple[list[_Part], int, list[str]]:
    """The training components with the switches applied: the logits of the frameworks' losses, offloaded
    activations (host RAM added), the gradients of an optimizer step in backward; notes for the rest."""
    from llm_mem.estimators.training import ce_logits_bytes, liger_chunk_tokens

    T, V, h = _tokens(spec, w, act, elem), spec.vocab_size, spec.hidden_size
    out: list[_Part] = []
    notes = list(notes)
    for p in parts:
        name, b, note = p
        if name == "logits" and (w.fused_ce or w.chunked_ce):
            soft = bool(spec.training.logit_softcap)
            if w.fused_ce and w.trainer is Trainer.trl:
                b = ce_logits_bytes("trl", T, V, h, elem, soft)
                note = "TRL chunked_nll: one checkpointed 256-token chunk of fp32 logits, the fp32 head copy"
            elif w.fused_ce:
                b = ce_logits_bytes("fused", T, V, h, elem, soft)
                note = (f"fused linear cross-entropy: one chunk of {liger_chunk_tokens(T, V, h):,} tokens' logits "
                        "(Liger's chunking) and the hidden states' gradient")
                if w.chunked_ce:
                    notes.append("fused linear cross-entropy replaces the chunked one (--chunked-ce has no effect)")
                if w.trainer is Trainer.unsloth:
                    notes.append("Unsloth's fused cross-entropy picks its chunk from free memory (unsloth_zoo, "
                                 "target_gb=None); sized with Liger's chunking")
            elif w.torch_compile:  # torchtune's recipes compile the loss with the model (training.compile_loss)
                b = ce_logits_bytes("chunked_compiled", T, V, h, elem, soft)
                note = ("chunked cross-entropy, compiled: each of 8 chunks' bf16 logits saved (the fp32 upcast fused "
                        "away), one chunk's backward")
            else:
                b = ce_logits_bytes("chunked", T, V, h, elem, soft)
                note = "chunked cross-entropy: each of 8 chunks' fp32 log-softmax saved, one chunk's backward"
            if soft:
                notes.append("logit soft-capping under a fused/chunked loss is sized without its tanh copy")
        elif name == "logits" and w.trainer is Trainer.torchtune:
            # torchtune without its chunked loss: TransformerDecoder upcasts the output (`self.output(h).float()`)
            # and the recipe deletes it after the loss (`del outputs`), torchtune/modules/transformer.py and
            # recipes/*_single_device.py _loss_step at bd2a0fc7c: no bf16 logits held through backward
            b = ce_logits_bytes("upcast", T, spec.vocab_size, spec.hidden_size, elem,
                                bool(spec.training.logit_softcap))
            note = "torchtune: fp32 model output freed after the loss; fp32 log-softmax and two fp32 gradients"
        elif name == "activations" and w.activation_offloading:
            per_layer = T * h * elem if w.grad_checkpointing else act.per_layer
            layers = act.layers_total
            keep = min(layers, OFFLOAD_LAYERS_ON_GPU * per_layer)
            host += layers - keep
            outside = act.outside
            if w.trainer is Trainer.torchtune:
                # torchtune offloads everything the model's forward saves but the output layer's
                # (get_act_offloading_ctx_manager's NoOpManager on model.output, torchtune/training/
                # _activation_offloading.py at 1814feb17): the embeddings' and final norm's go to host RAM; a
                # trained head keeps its input (T h e) on the GPU, a frozen one (LoRA) keeps nothing
                outside = min(act.outside, T * h * elem if not w.adapters else 0)
                host += act.outside - outside
            b = keep + outside
            note = ("one layer's saved activations on the GPU; the other layers' in host RAM "
                    "(activation offloading)")
        elif name == "gradients" and w.optimizer_in_bwd:
            b, note = _largest_gradient(spec, w, b)
        out.append(_Part(name, b, note))
    if w.activation_offloading:
        notes.append(f"activation offloading: {host:,} bytes of saved activations in host RAM (pinned), "
                     "copied back layer by layer in backward")
    if w.optimizer_in_bwd:
        from llm_mem.estimators.model_states import total_params

        held = sum(p.bytes for p in out if p.name in ("weights", "gradients", "optimizer_states", "master_weights"))
        notes = [f"model states: {held / total_params(spec):.1f} bytes per parameter before activations"
                 if n.startswith("model states:") else n for n in notes]
        notes.append("optimizer step in backward: each gradient is freed after its parameter's step; needs "
                     "gradient accumulation off (torchtune optimizer_in_bwd)")
    if w.optimizer in (Optimizer.paged_adamw_8bit, Optimizer.paged_adamw_32bit):
        notes.append(f"{w.optimizer}: bitsandbytes pages the states (CUDA unified memory); under memory pressure "
                     "they spill to host RAM instead of failing, at a speed cost; counted here on the GPU")
    if w.packing:
        notes.append("sequence packing: every sequence filled to --seq with no padding; memory per token is "
                     "unchanged, so size --batch x --seq as the packed length")
    if w.trainer is Trainer.torchtune and spec.num_kv_heads < spec.num_heads and spec.mla is None:
        notes.append("torchtune's attention copies K and V to every query head before the kernel "
                     "(torchtune/modules/attention.py): they are saved at query width")
    if w.trainer is Trainer.unsloth and w.adapters:
        from llm_mem.estimators.saved_blocks import unsloth_fused, unsloth_unsupported

        why = unsloth_unsupported(spec)
        if why is not None:
            notes.append(f"Unsloth's fused LoRA kernels are not sized for {why}: PEFT's modules are")
        elif not all(unsloth_fused(set(w.lora_targets or ()), w.lora_dropout, spec.training.o_module)):
            notes.append("Unsloth's fused LoRA kernels need every projection of a block adapted and no LoRA "
                         "dropout; the blocks without them run PEFT's modules")
        else:
            notes.append("Unsloth's fused LoRA kernels (unsloth/kernels/fast_lora.py): each layer keeps its "
                         "projections' inputs and the MLP's gate and up outputs, nothing per adapter")
    if w.torch_compile:
        from llm_mem.estimators.training import compile_unmodelled

        why = compile_unmodelled(spec, w)
        notes.append("torch.compile of each decoder layer (torchtune's compile_model): inductor's partitioner keeps "
                     "each RMSNorm's bf16 input and recomputes its fp32 copy, and recomputes the MLP activation, "
                     "in backward (measured byte-exact per family); the head and a non-chunked loss are sized eager"
                     if why is None
                     else f"torch.compile: {why}; the decoder layers are sized eager")
    return out, host, notes


def _largest_gradient(spec: ModelSpec, w: Workload, all_grads: int) -> tuple[int, str]:
    """The one gradient live under an optimizer step in backward: the largest trainable parameter's, in the
    dtype the gradients component holds (``all_grads`` bytes for every trainable element)."""
    if w.adapters:
        from llm_mem.estimators.lora import lora_target_modules, resolve_targets

        mods = lora_target_modules(spec, w.lora_targets or resolve_targets(spec, None)[0])
        # lora_A (r x in) and lora_B (out x r) are separate parameters; routed experts' adapters are stacked
        big = max(w.lora_rank * m.rank_mult * m.copies * max(m.in_features, m.out_features) for m in mods)
        return big * adapter_bytes(w), "optimizer step in backward: the largest adapter matrix's gradient"
    from llm_mem.estimators.model_states import total_params
    from llm_mem.params import inventory

    biggest = max(inventory(spec), key=lambda t: t.numel)
    per = all_grads // total_params(spec)
    return (biggest.numel * per,
            f"optimizer step in backward: only the largest parameter's gradient ({biggest.name}, "
            f"{biggest.numel:,} elements)")
