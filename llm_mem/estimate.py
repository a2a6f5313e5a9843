"""estimate(model, workload) -> Report: composes the pure estimators, adds error bands."""

from __future__ import annotations

from llm_mem import dtypes
from llm_mem.choices import TrainMode
from llm_mem.errors import UsageError
from llm_mem.estimators.inference_activations import inference_transient
from llm_mem.estimators.kv_cache import kv_cache
from llm_mem.estimators.model_states import full_states, largest_module_params, lora_states
from llm_mem.estimators.overhead import runtime_overhead
from llm_mem.estimators.training import lora_activation_delta, saved_activations
from llm_mem.estimators.weights import WeightPlan, checkpoint_bytes, plan_from_quant, weight_bytes
from llm_mem.formats import get_format
from llm_mem.params import count_parameters
from llm_mem.report import Architecture, Component, KvSummary, Report, WeightsSummary
from llm_mem.spec import ModelSpec, ResolvedModel
from llm_mem.workload import Workload

__all__ = ["BANDS", "estimate", "largest_module_params", "resolve_plan"]

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
INT4_NOTE = ("int4 means bitsandbytes nf4 (block 64, double quant), what transformers' load_in_4bit gives; "
             "use --quant gptq|awq|Q4_K_M for other 4-bit formats")


def _component(name: str, b: int, note: str | None = None) -> Component:
    band = BANDS[name]
    return Component(name=name, bytes=int(b), low=int(b * (1 - band)), high=int(b * (1 + band)), note=note)


def resolve_plan(spec: ModelSpec, w: Workload) -> tuple[WeightPlan, list[str]]:
    """The weight storage for a workload: --quant, else --precision, else the checkpoint's own."""
    notes: list[str] = []
    compute = 4 if w.precision == "fp32" else 2
    if w.train == "qlora":
        return WeightPlan(get_format(w.quant or "nf4"), 2, source="requested"), notes
    if w.quant:
        fmt = get_format(w.quant)
        plan = WeightPlan(fmt, compute, source="requested")
    elif w.precision:
        if w.precision == "int4":
            notes.append(INT4_NOTE)
        plan = WeightPlan(get_format(w.precision), compute, source="requested")
    elif spec.quantization is not None:
        plan = plan_from_quant(spec.quantization, compute)
        notes.append("weights in the checkpoint's own format; --precision or --quant overrides")
    else:
        key = dtypes.float_name(spec.torch_dtype)
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


def estimate(model: ResolvedModel, w: Workload) -> Report:
    """The full breakdown for one model and workload."""
    spec = model.spec
    warnings = list(model.warnings)
    if w.train and w.zero and w.gpus == 1:
        warnings.append(f"ZeRO stage {w.zero} on one GPU partitions nothing (useful only with --offload)")
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
        if not spec.sdpa and w.runtime == "transformers" and attention == "sdpa":
            # e.g. transformers 5.24's GptOss has no SDPA path (attention sinks): it runs eager
            attention = "eager"
            notes.append(f"{spec.model_type} runs eager attention in transformers (no SDPA path for it)")
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
    act = saved_activations(spec, w.batch, w.context, w.attention, w.grad_checkpointing, elem)
    acts = [_component("activations", act.layers_total + act.outside,
                       "layer inputs only (gradient checkpointing)" if w.grad_checkpointing
                       else f"saved for backward, {w.attention} attention"),
            _component("logits", act.logits, "logits, fp32 log-softmax and its backward (cross-entropy)")]
    if w.grad_checkpointing:
        acts.append(_component("activation_recompute", act.recompute, "one layer recomputed during backward"))
    if w.train in (TrainMode.lora, TrainMode.qlora):
        ms = lora_states(spec, w, weights_full, plan.fmt.label)
        if not w.grad_checkpointing:
            delta = lora_activation_delta(spec, w, elem)
            acts[0] = _component("activations", max(acts[0].bytes + delta, 0), acts[0].note)
    else:
        ms = full_states(spec, w, plan.fmt.key, plan.fmt.label)
    transient = sum(c.bytes for c in acts)
    overhead = _component("runtime_overhead", runtime_overhead("transformers", transient)[0],
                          "CUDA context 500 MiB + caching-allocator slack (10% of activations)")
    comps = [_component(st.name, st.bytes, st.note) for st in ms.states]
    return comps + acts + [overhead], ms.host_bytes, ms.notes
