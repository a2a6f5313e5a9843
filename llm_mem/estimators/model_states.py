"""Training model states: weights, gradients, optimizer states and fp32 master weights, for full
fine-tuning and LoRA, and their per-GPU share under DeepSpeed ZeRO (with host RAM for offload).

Pure functions of (ModelSpec, Workload) -> bytes; `llm_mem.estimate` turns them into components.
"""

from __future__ import annotations

from typing import NamedTuple

from llm_mem.choices import Offload
from llm_mem.dtypes import FLOAT_BYTES
from llm_mem.estimators.lora import adapter_params, lora_target_modules
from llm_mem.estimators.training import optimizer_state_bytes
from llm_mem.params import Tensor, inventory
from llm_mem.spec import ModelSpec
from llm_mem.workload import Workload

# DeepSpeed's host-RAM estimate multiplies the CPU-side model states by additional_buffer_factor = 1.5
# (deepspeed/runtime/zero/stage_1_and_2.py and stage3.py, estimate_zero*_model_states_mem_needs).
ZERO_HOST_BUFFER_FACTOR = 1.5
# ... and assumes at most 8 GPUs share one host (num_gpus_per_node default 8 in those functions).
ZERO_GPUS_PER_NODE = 8


class State(NamedTuple):
    """One model-state component: its name, bytes (per GPU) and what it is."""

    name: str
    bytes: int
    note: str


class ModelStates(NamedTuple):
    """The model-state components of a training run, per GPU, and the host RAM offload needs."""

    states: list[State]
    host_bytes: int
    notes: list[str]


def total_params(spec: ModelSpec) -> int:
    """Every parameter of the model (tied weights once)."""
    return sum(t.numel for t in inventory(spec))


def lora_states(spec: ModelSpec, w: Workload, weights_bytes: int, weights_label: str,
                targets: tuple[str, ...]) -> ModelStates:
    """Frozen base + fp32 adapters (PEFT casts them: get_peft_model autocast_adapter_dtype=True), their
    gradients and optimizer states; under ZeRO the same partitioning as full fine-tuning applies to
    what there is: stage 1 the optimizer states, 2 also the gradients, 3 also the parameters (the frozen
    base included, gathered one module at a time), with --offload moving them to the CPU."""
    mods = lora_target_modules(spec, targets)
    n = sum(adapter_params(m, w.lora_rank) for m in mods)
    adapters = [Tensor("lora", "lora", None, (w.lora_rank * m.rank_mult, m.in_features + m.out_features), m.copies)
                for m in mods]
    from llm_mem.estimators.frameworks import adapter_bytes

    ab = adapter_bytes(w)  # fp32 (PEFT), or bf16 where a --trainer preset builds them so (issue 17)
    opt = optimizer_state_bytes(adapters, w.optimizer, ab)
    p = total_params(spec)
    note = (f"LoRA rank {w.lora_rank} on {len(mods)} modules ({', '.join(targets)}): {n:,} trainable parameters "
            f"({100 * n / p:.2f}%), as PEFT counts them")
    gpus, host = w.gpus, 0
    base, base_note = weights_bytes, f"frozen base, {weights_label}"
    if w.zero == 3:
        gathered = int(weights_bytes * largest_module_params(spec) / p)
        if w.offload is Offload.parameters:
            base, base_note, host = gathered, "largest module gathered; frozen base on the CPU (ZeRO-3)", weights_bytes
        else:
            base, base_note = weights_bytes // gpus + gathered, f"frozen base, 1/{gpus} partition + largest module"
    part = {k: gpus if w.zero >= k else 1 for k in (1, 2, 3)}
    dt = "fp32" if ab == 4 else "bf16"
    states = [State("weights", base, base_note),
              State("lora_adapters", ab * n // part[3], f"{dt} adapters" + (f", 1/{gpus}" if part[3] > 1 else "")),
              State("gradients", ab * n // part[2],
                    f"adapter gradients, {dt}" + (f", 1/{gpus}" if part[2] > 1 else ""))]
    if w.offload is not Offload.none:
        host += opt // part[1]
        states.append(State("optimizer_states", 0, f"{w.optimizer}, offloaded to CPU"))
    else:
        states.append(State("optimizer_states", opt // part[1], str(w.optimizer) +
                            (f", 1/{gpus} partition" if part[1] > 1 else "")))
    return ModelStates(states, host, [note])


def full_states(spec: ModelSpec, w: Workload, weights_format: str, weights_label: str) -> ModelStates:
    """Full fine-tuning: weights, gradients, optimizer and master weights, ZeRO-partitioned when asked."""
    p = total_params(spec)
    wbytes = FLOAT_BYTES.get(weights_format, 2)
    master = w.mixed_precision != "none" and wbytes == 2
    state_bytes = 4 if (master or wbytes == 4) else wbytes
    opt = optimizer_state_bytes(list(inventory(spec)), w.optimizer, state_bytes)
    if w.zero:
        return _zero(spec, w, p, opt / p)
    states = [State("weights", p * wbytes, weights_label),
              State("gradients", p * wbytes, f"{'bf16' if wbytes == 2 else 'fp32'} gradients"),
              State("optimizer_states", opt, f"{w.optimizer}, {opt / p:.2f} bytes/param")]
    if master:
        states.append(State("master_weights", p * 4, "fp32 master copy (mixed precision)"))
    note = f"model states: {sum(s.bytes for s in states) / p:.1f} bytes per parameter before activations"
    return ModelStates(states, 0, [note])


def largest_module_params(spec: ModelSpec) -> int:
    """Parameters of the largest single module, counted as DeepSpeed's ZeRO-3 estimator does
    (`max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())`):
    a Linear with its bias, an embedding, or a fused experts block."""
    modules: dict[str, int] = {}
    for t in inventory(spec):
        key = t.name.rsplit(".", 1)[0]
        modules[key] = modules.get(key, 0) + t.numel
    return max(modules.values())


def _host(p: int, w: Workload, floor: int) -> int:
    """DeepSpeed's host RAM for offload: P x max(4 x GPUs per node, floor) x 1.5."""
    per_node = min(w.gpus, ZERO_GPUS_PER_NODE)
    return int(p * max(4 * per_node, floor) * ZERO_HOST_BUFFER_FACTOR)


def _zero(spec: ModelSpec, w: Workload, p: int, opt_per_param: float) -> ModelStates:
    """Per-GPU model states under ZeRO, equal to DeepSpeed's estimators for Adam:
    stage 1/2: deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs
    (after PR #5099: 2P + 18P/N without offload, 2P with optimizer offload);
    stage 3: deepspeed/runtime/zero/stage3.py estimate_zero3_model_states_mem_needs
    (4 x largest layer + 18P/N; + 2P/N with optimizer offload; 4 x largest layer with parameter offload).
    18 = 2 (bf16 gradient partition) + 4 (fp32 gradients) + 4 (fp32 master) + 8 (Adam); the optimizer
    term follows --optimizer. Host RAM: P x max(4 x gpus per node, 16 or 18) x 1.5."""
    n = w.gpus
    opt = int(opt_per_param * p / n)
    offloaded = [State("optimizer_states", 0, "offloaded to CPU"), State("master_weights", 0, "offloaded to CPU")]
    if w.zero in (1, 2):
        if w.offload is Offload.optimizer:
            return ModelStates([State("weights", 2 * p, "bf16, replicated"), State("gradients", 0, "offloaded"),
                                *offloaded], _host(p, w, 16), [])
        grad_bytes = int(6 * p / n) if w.zero == 2 else 2 * p + int(4 * p / n)
        return ModelStates([State("weights", 2 * p, "bf16, replicated"),
                            State("gradients", grad_bytes, f"ZeRO-{w.zero} partitioned"),
                            State("optimizer_states", opt, f"{w.optimizer}, 1/{n} partition"),
                            State("master_weights", int(4 * p / n), f"fp32, 1/{n} partition")], 0, [])
    gathered = 2 * largest_module_params(spec)
    grads = State("gradients", gathered, "largest layer's gradients")
    if w.offload is Offload.parameters:
        return ModelStates([State("weights", gathered, "largest layer gathered; parameters on CPU"), grads,
                            *offloaded], _host(p, w, 18), [])
    part = State("weights", int(2 * p / n) + gathered, "1/N partition + largest layer gathered")
    if w.offload is Offload.optimizer:
        return ModelStates([part, grads, *offloaded], _host(p, w, 16), [])
    return ModelStates([part, State("gradients", int(4 * p / n) + gathered, "fp32 1/N partition + largest layer"),
                        State("optimizer_states", opt, f"{w.optimizer}, 1/{n} partition"),
                        State("master_weights", int(4 * p / n), "fp32, 1/N partition")], 0, [])
