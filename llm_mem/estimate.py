"""estimate(model, workload) -> Report: composes the pure estimators, adds error bands."""

from __future__ import annotations

from llm_mem.errors import UsageError
from llm_mem.estimators.inference_activations import inference_transient
from llm_mem.estimators.kv_cache import kv_cache
from llm_mem.estimators.overhead import runtime_overhead
from llm_mem.estimators.training import (
    lora_params, lora_target_tensors, optimizer_state_bytes, saved_activations,
)
from llm_mem.estimators.weights import WeightPlan, checkpoint_bytes, plan_from_quant, weight_bytes
from llm_mem.formats import get_format
from llm_mem.params import Tensor, count_parameters, inventory
from llm_mem.report import Architecture, Component, KvSummary, Report, WeightsSummary, Workload
from llm_mem.spec import ModelSpec, ResolvedModel

# Relative uncertainty per component, from benchmarks/accuracy (RESULTS.md, results.json; 2026-11-24):
# weights: 75 published sizes, median 0.02%, 90th percentile 0.87% -> 1%; KV cache: max 0.11% -> 1%;
# activations: vLLM V1 profiles within 6-9%, transformers inference peaks median 2.7% / p80 11% of
# the total, training peaks median 10.5% (saved tensors of transformers' blocks within 5.3%) -> 25%; logits are exact shapes but engine-dependent copies -> 10%;
# runtime overhead (CUDA context 300-500 MiB, allocator slack 3-15%) -> 50%. Model states of
# training are exact formulas (DeepSpeed's, PEFT's counts) -> 1-2%.
BANDS = {
    "weights": 0.01, "kv_cache": 0.01, "activations": 0.25, "logits": 0.10, "runtime_overhead": 0.50,
    "gradients": 0.01, "optimizer_states": 0.02, "master_weights": 0.01, "lora_adapters": 0.01,
    "activation_recompute": 0.25,
}
_FLOAT_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}
INT4_NOTE = ("int4 means bitsandbytes nf4 (block 64, double quant), what transformers' load_in_4bit gives; "
             "use --quant gptq|awq|Q4_K_M for other 4-bit formats")


def _component(name: str, b: int, note: str | None = None) -> Component:
    band = BANDS[name]
    return Component(name=name, bytes=int(b), low=int(b * (1 - band)), high=int(b * (1 + band)), note=note)


def resolve_plan(spec: ModelSpec, w: Workload) -> tuple[WeightPlan, list[str]]:
    """The weight storage for a workload: --quant, else --precision, else the checkpoint's own."""
    notes: list[str] = []
    compute = 4 if (w.precision or "").lower() in ("fp32", "float32") else 2
    if w.train == "qlora":
        if w.precision and w.precision.lower() in ("fp32", "float32"):
            raise UsageError("--train qlora keeps the frozen base in nf4; --precision fp32 contradicts it",
                             "drop --precision, or use --train lora --precision fp32")
        return WeightPlan(get_format(w.quant or "nf4"), 2, source="requested"), notes
    if w.quant:
        fmt = get_format(w.quant)
        plan = WeightPlan(fmt, compute, source="requested")
    elif w.precision:
        if w.precision.lower() in ("int4", "4", "4bit"):
            notes.append(INT4_NOTE)
        plan = WeightPlan(get_format(w.precision), compute, source="requested")
    elif spec.quantization is not None:
        plan = plan_from_quant(spec.quantization, compute)
        notes.append("weights in the checkpoint's own format; --precision or --quant overrides")
    else:
        dt = (spec.torch_dtype or "").lower()
        key = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(dt)
        if key is None:
            key = "fp32"
            notes.append("config.json names no torch_dtype: weights sized as fp32 (transformers' default load dtype)")
        plan = WeightPlan(get_format(key), compute, source="checkpoint")
    _check_compatible(spec, plan)
    return plan, notes


def _check_compatible(spec: ModelSpec, plan: WeightPlan) -> None:
    f = plan.fmt
    if f.experts_only and not spec.is_moe:
        raise UsageError(f"{f.key} quantizes MoE experts only and {spec.model_type} has none",
                         "pick nf4, gptq, awq or a GGUF type")
    if f.key in ("gptq", "gptq-int8", "awq"):
        group = plan.group_size or f.group_size or 128
        if group > 0 and (spec.hidden_size % group or spec.intermediate_size % group):
            raise UsageError(f"{f.key} with group size {group} needs hidden and intermediate sizes divisible "
                             f"by {group} ({spec.hidden_size}, {spec.intermediate_size})", "try nf4 or a GGUF type")


def architecture_of(spec: ModelSpec) -> Architecture:
    """The echo of the normalised architecture in the report."""
    if spec.mla is not None:
        attn = "mla"
    elif spec.num_kv_heads == 1:
        attn = "mqa"
    elif spec.num_kv_heads < spec.num_heads:
        attn = "gqa"
    else:
        attn = "mha"
    return Architecture(
        model_type=spec.model_type, family=spec.family, known=spec.known, layers=spec.num_layers,
        hidden_size=spec.hidden_size, heads=spec.num_heads, kv_heads=spec.num_kv_heads, head_dim=spec.head_dim,
        vocab_size=spec.vocab_size, intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        experts=spec.moe.num_experts if spec.moe else None, experts_per_token=spec.moe.top_k if spec.moe else None,
        attention=attn, sliding_window=spec.sliding_window,
        sliding_layers=sum(1 for k in spec.layer_types if k == "sliding"),
    )


def _validate(w: Workload) -> list[str]:
    warnings: list[str] = []
    if w.context <= 0 or w.batch <= 0:
        raise UsageError("--context and --batch must be positive")
    if w.train:
        if w.lora_rank <= 0 and w.train in ("lora", "qlora"):
            raise UsageError(f"--lora-rank must be positive, got {w.lora_rank}")
        if w.zero not in (0, 1, 2, 3):
            raise UsageError(f"--zero must be 0, 1, 2 or 3, got {w.zero}")
        if w.gpus < 1:
            raise UsageError(f"--gpus must be at least 1, got {w.gpus}")
        if w.zero and w.gpus == 1:
            warnings.append(f"ZeRO stage {w.zero} on one GPU partitions nothing (useful only with --offload)")
        if w.offload == "parameters" and w.zero != 3:
            raise UsageError("--offload parameters needs --zero 3 (DeepSpeed offloads parameters only in stage 3)")
        if w.offload == "optimizer" and w.zero == 0:
            raise UsageError("--offload optimizer needs --zero 1, 2 or 3 (ZeRO-Offload)")
        if w.train == "full" and w.quant:
            raise UsageError("full fine-tuning updates every weight; a quantized base (--quant) cannot be trained",
                             "use --train qlora for a 4-bit base")
    elif w.zero or w.offload != "none":
        raise UsageError("--zero/--offload apply to training", "add --train full|lora|qlora")
    return warnings


def estimate(model: ResolvedModel, w: Workload) -> Report:
    """The full breakdown for one model and workload."""
    spec = model.spec
    warnings = list(model.warnings) + _validate(w)
    params = count_parameters(spec)
    plan, notes = resolve_plan(spec, w)
    wb = weight_bytes(spec, plan)
    label = plan.fmt.label
    if plan.fp8_block:
        label = f"fp8 e4m3, {'x'.join(map(str, plan.fp8_block))} block scales (embeddings and lm_head in bf16)"
    elem = 4 if plan.keep_bytes == 4 else 2
    ckpt = checkpoint_bytes(model.checkpoint_dtypes) if model.checkpoint_dtypes else None
    weights_total = wb.total
    if ckpt is not None and plan.source == "checkpoint" and spec.quantization is not None:
        weights_total = ckpt  # a quantized checkpoint's real size beats our format model
        notes.append("weights sized from the checkpoint's safetensors headers (exact tensor bytes)")
    kv = kv_cache(spec, w.context, w.batch, w.kv_dtype, w.runtime)
    if kv.note:
        notes.append(kv.note)
    if spec.max_position_embeddings and w.context > spec.max_position_embeddings:
        warnings.append(f"context {w.context:,} exceeds the model's max_position_embeddings "
                        f"{spec.max_position_embeddings:,}")
    comps: list[Component] = []
    host = 0
    if w.train is None:
        attention = w.attention
        if spec.family == "gpt_oss" and w.runtime == "transformers" and attention == "sdpa":
            # transformers 5.24's GptOss has no SDPA path (attention sinks): it runs eager
            attention = "eager"
            notes.append("gpt-oss runs eager attention in transformers (no SDPA support for its sinks)")
        tr = inference_transient(spec, w.context, w.batch, attention, w.runtime, w.logits, elem)
        if tr.note:
            notes.append(tr.note)
        comps.append(_component("weights", weights_total, plan.fmt.key))
        comps.append(_component("kv_cache", kv.total, f"{w.batch} x {w.context:,} tokens, {w.kv_dtype}"))
        comps.append(_component("activations", tr.activations, f"peak of one layer in {tr.phase}, {w.attention}" if tr.phase != "sampler" else "vLLM sampler profile"))
        if tr.logits:
            comps.append(_component("logits", tr.logits,
                                    "last position only (generate)" if w.logits == "last"
                                    else "every position, fp32 upcast"))
        if w.runtime == "vllm":
            notes.append("vLLM pre-allocates --gpu-memory-utilization (0.9) of the GPU and fills what weights and "
                         "activations leave with KV blocks; the total here is what this workload needs "
                         "(`llm-mem plan --runtime vllm` checks it against the 0.9 budget)")
        oh, why = runtime_overhead(w.runtime, kv.total + tr.activations + tr.logits)
        comps.append(_component("runtime_overhead", oh, why))
    else:
        comps, host, tnotes = _training(spec, w, plan, wb.total, elem)
        notes += tnotes
    total = sum(c.bytes for c in comps)
    arch = architecture_of(spec)
    return Report(
        model=model.name, source=model.source, architecture=arch, parameters=params, workload=w,
        weights=WeightsSummary(
            format=plan.fmt.key, label=label, source=plan.source, bytes=weights_total,
            checkpoint_bytes=ckpt, embedding_bytes=wb.embedding, lm_head_bytes=wb.lm_head,
            largest_layer_bytes=max(wb.per_layer), experts_bytes=wb.experts, largest_unit_bytes=wb.largest_unit, per_layer_bytes=wb.per_layer,
        ),
        kv_cache=KvSummary(dtype=w.kv_dtype, bytes_per_token=kv.per_token_full, bytes_per_1k_tokens=kv.per_1k_tokens,
                           mla_latent=kv.mla_latent),
        components=comps, total_bytes=total, total_low_bytes=sum(c.low for c in comps),
        total_high_bytes=sum(c.high for c in comps), host_bytes=host, per_gpu=w.train is not None and w.gpus > 1,
        notes=notes + plan_notes(plan), warnings=warnings,
    )


def plan_notes(plan: WeightPlan) -> list[str]:
    """The format's own caveat, when it has one."""
    return [plan.fmt.note] if plan.fmt.note else []


def _training(spec: ModelSpec, w: Workload, plan: WeightPlan, weights_full: int, elem: int
              ) -> tuple[list[Component], int, list[str]]:
    """Training components (per data-parallel GPU when --gpus > 1) and host RAM for offload."""
    notes: list[str] = []
    P = sum(t.numel for t in inventory(spec))
    act = saved_activations(spec, w.batch, w.context, w.attention, w.grad_checkpointing, elem)
    acts = [_component("activations", act.layers_total + act.outside,
                       "layer inputs only (gradient checkpointing)" if w.grad_checkpointing
                       else f"saved for backward, {w.attention} attention"),
            _component("logits", act.logits, "logits, fp32 log-softmax and its backward (cross-entropy)")]
    if w.grad_checkpointing:
        acts.append(_component("activation_recompute", act.recompute, "one layer recomputed during backward"))
    transient = sum(c.bytes for c in acts)
    overhead = _component("runtime_overhead", runtime_overhead("transformers", transient)[0],
                          "CUDA context 500 MiB + caching-allocator slack (10% of activations)")
    if w.train in ("lora", "qlora"):
        tensors = lora_target_tensors(spec, w.lora_targets)
        L = lora_params(spec, w.lora_targets, w.lora_rank)
        # PEFT casts adapters to fp32 on bf16/fp16 bases (LoraModel autocast_adapter_dtype=True)
        adapter_tensors = [Tensor("lora", "lora", None, (w.lora_rank, t.shape[1] + t.shape[0]), t.copies)
                           for t in tensors]
        opt = optimizer_state_bytes(adapter_tensors, w.optimizer, 4)
        # PEFT casts each adapter's input to fp32 (one copy per adapter: q, k and v do not share) and
        # lora_A saves it, plus the rank-r intermediate; frozen base linears no longer save their own
        # bf16 inputs (attention and MLP input, down_proj input). Measured with --verify on
        # Qwen2.5-0.5B: 21.43 MB per layer vs 21.89 estimated (benchmarks/verify/RESULTS.md).
        T = w.batch * w.context
        per_layer_targets = [t for t in tensors if t.layer == tensors[0].layer] if tensors else []
        extra = sum(T * (t.shape[1] + w.lora_rank) * 4 for t in per_layer_targets)
        frozen = T * (2 * spec.hidden_size + spec.intermediate_size) * elem
        if not w.grad_checkpointing:
            delta = (extra - frozen) * spec.num_layers
            acts[0] = _component("activations", max(acts[0].bytes + delta, 0), acts[0].note)
        notes.append(f"LoRA rank {w.lora_rank} on {len(tensors)} weights ({', '.join(w.lora_targets)}): "
                     f"{L:,} trainable parameters ({100 * L / P:.2f}%)")
        comps = [_component("weights", weights_full, f"frozen base, {plan.fmt.label}"),
                 _component("lora_adapters", L * 4, "fp32 adapters"),
                 _component("gradients", L * 4, "adapter gradients, fp32"),
                 _component("optimizer_states", opt, w.optimizer)]
        return comps + acts + [overhead], 0, notes
    # full fine-tuning
    wbytes = _FLOAT_BYTES.get(plan.fmt.key, 2)
    master = w.mixed_precision != "none" and wbytes == 2
    state_bytes = 4 if (master or wbytes == 4) else wbytes
    opt = optimizer_state_bytes(list(inventory(spec)), w.optimizer, state_bytes)
    opt_per_param = opt / P
    if w.zero == 0:
        comps = [_component("weights", P * wbytes, plan.fmt.label),
                 _component("gradients", P * wbytes, f"{'bf16' if wbytes == 2 else 'fp32'} gradients"),
                 _component("optimizer_states", opt, f"{w.optimizer}, {opt_per_param:.2f} bytes/param")]
        if master:
            comps.append(_component("master_weights", P * 4, "fp32 master copy (mixed precision)"))
        notes.append(f"model states: {(sum(c.bytes for c in comps)) / P:.1f} bytes per parameter before activations")
        return comps + acts + [overhead], 0, notes
    comps, host = _zero(spec, w, P, opt_per_param)
    return comps + acts + [overhead], host, notes


def largest_module_params(spec: ModelSpec) -> int:
    """Parameters of the largest single module, counted as DeepSpeed's ZeRO-3 estimator does
    (`max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())`):
    a Linear with its bias, an embedding, or a fused experts block."""
    modules: dict[str, int] = {}
    for t in inventory(spec):
        key = t.name.rsplit(".", 1)[0]
        modules[key] = modules.get(key, 0) + t.numel
    return max(modules.values())


def _zero(spec: ModelSpec, w: Workload, P: int, opt_per_param: float) -> tuple[list[Component], int]:
    """Per-GPU model states under ZeRO, equal to DeepSpeed's estimators for Adam:
    stage 1/2: deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs
    (after PR #5099: 2P + 18P/N without offload, 2P with optimizer offload);
    stage 3: deepspeed/runtime/zero/stage3.py estimate_zero3_model_states_mem_needs
    (4 x largest layer + 18P/N; + 2P/N with optimizer offload; 4 x largest layer with parameter offload).
    18 = 2 (bf16 gradient partition) + 4 (fp32 gradients) + 4 (fp32 master) + 8 (Adam); the optimizer
    term follows --optimizer. Host RAM: P x max(4 x gpus per node, 16 or 18) x 1.5 (additional_buffer_factor)."""
    N = w.gpus
    largest = largest_module_params(spec)
    opt = int(opt_per_param * P / N)
    per_node = min(N, 8)
    if w.zero in (1, 2):
        grads = int(6 * P / N) if w.zero == 2 else 2 * P + int(4 * P / N)
        if w.offload == "optimizer":
            return ([_component("weights", 2 * P, "bf16, replicated"), _component("gradients", 0, "offloaded"),
                     _component("optimizer_states", 0, "offloaded to CPU"),
                     _component("master_weights", 0, "offloaded to CPU")],
                    int(P * max(4 * per_node, 16) * 1.5))
        return ([_component("weights", 2 * P, "bf16, replicated"),
                 _component("gradients", grads, f"ZeRO-{w.zero} partitioned"),
                 _component("optimizer_states", opt, f"{w.optimizer}, 1/{N} partition"),
                 _component("master_weights", int(4 * P / N), f"fp32, 1/{N} partition")], 0)
    gathered = 2 * largest
    if w.offload == "parameters":
        return ([_component("weights", gathered, "largest layer gathered; parameters on CPU"),
                 _component("gradients", gathered, "largest layer's gradients"),
                 _component("optimizer_states", 0, "offloaded to CPU"),
                 _component("master_weights", 0, "offloaded to CPU")],
                int(P * max(4 * per_node, 18) * 1.5))
    if w.offload == "optimizer":
        return ([_component("weights", int(2 * P / N) + gathered, "1/N partition + largest layer gathered"),
                 _component("gradients", gathered, "largest layer's gradients"),
                 _component("optimizer_states", 0, "offloaded to CPU"),
                 _component("master_weights", 0, "offloaded to CPU")],
                int(P * max(4 * per_node, 16) * 1.5))
    return ([_component("weights", int(2 * P / N) + gathered, "1/N partition + largest layer gathered"),
             _component("gradients", int(4 * P / N) + gathered, "fp32 1/N partition + largest layer"),
             _component("optimizer_states", opt, f"{w.optimizer}, 1/{N} partition"),
             _component("master_weights", int(4 * P / N), "fp32, 1/N partition")], 0)
