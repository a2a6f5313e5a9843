"""estimate(model, workload, gpu) -> Report: composes the pure estimators and the engine models, adds
error bands. Inference components are what the engine allocates on its busiest GPU (per GPU under a
parallel layout); training components are per data-parallel GPU."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from llm_mem import dtypes
from llm_mem.choices import RL_MODES, Precision, Runtime, TrainMode
from llm_mem.errors import UsageError
from llm_mem.estimators.weight_stages import stage_weight_bytes
from llm_mem.estimators.weights import WeightBytes, WeightPlan, plan_from_quant, weight_bytes
from llm_mem.formats import get_format
from llm_mem.layout import Layout, tp_problem
from llm_mem.params import count_parameters
from llm_mem.report import Architecture, Component, KvSummary, Report, WeightsSummary
from llm_mem.runtimes import EngineMemory
from llm_mem.spec import ModelSpec, ResolvedModel
from llm_mem.workload import Workload

if TYPE_CHECKING:
    from llm_mem.catalog import Gpu

__all__ = ["BANDS", "estimate", "resolve_plan"]

# Relative uncertainty per component, from benchmarks/accuracy (RESULTS.md, results.json; 2026-11-24):
# weights: 75 published sizes, median 0.02%, 90th percentile 0.87% -> 1%; KV cache: max 0.11% -> 1%;
# activations: vLLM V1 profiles within 6-9%, llama.cpp compute buffers median 0.2%, worst 16%
# (benchmarks/llamacpp), transformers inference peaks median 2.7% / p80 11% of the total, training peaks
# median 10.5% -> 25%; logits are exact shapes but engine-dependent copies -> 10%; runtime overhead
# (allocator slack 3-15%, vLLM's margin) -> 50%; CUDA graphs 0.13-0.36 GiB across published logs -> 50%.
# Model states of training are exact formulas (DeepSpeed's, PEFT's counts) -> 1-2%.
BANDS = {
    "weights": 0.01, "kv_cache": 0.01, "activations": 0.25, "logits": 0.10, "runtime_overhead": 0.50,
    "cuda_graphs": 0.50, "gradients": 0.01, "optimizer_states": 0.02, "master_weights": 0.01,
    "lora_adapters": 0.01, "activation_recompute": 0.25,
}
# RL post-training (llm_mem.estimators.rl): the reference model is an exact bf16 copy -> 1%; the value model is
# exact model states plus policy-sized activations (25%), about half each -> 10%; the rollout engine takes
# exactly its gpu_memory_utilization share (vLLM caps itself there), or weights + KV without a GPU -> 2%.
BANDS.update({"reference_model": 0.01, "value_model": 0.10, "rollout_engine": 0.02})
INT4_NOTE = ("int4 means bitsandbytes nf4 (block 64, double quant), what transformers' load_in_4bit gives; "
             "use --quant gptq|awq|Q4_K_M for other 4-bit formats")
# What a --precision means on llama.cpp: the GGUF file type people download for it.
_LLAMACPP_PRECISION = {Precision.fp32: "GGUF-F32", Precision.bf16: "GGUF-BF16", Precision.fp16: "GGUF-F16",
                       Precision.int8: "Q8_0", Precision.int4: "Q4_K_M"}
# The registry key (llm_mem/data/quantized.json) a requested format is published under.
_PUBLISHED_KEY = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "w8a8": "w8a8", "nvfp4": "nvfp4"}


def _component(name: str, b: int, note: str | None = None) -> Component:
    band = BANDS[name]
    return Component(name=name, bytes=int(b), low=int(b * (1 - band)), high=int(b * (1 + band)), note=note)


def _published(model_name: str, key: str, compute: int) -> WeightPlan | None:
    """The plan of a published quantized checkpoint of a bundled model, when one is listed."""
    from llm_mem.sources.bundled import find_bundled, quantized_checkpoint
    from llm_mem.sources.quant import parse_quantization

    bundled = find_bundled(model_name)
    if bundled is None:
        return None
    q = quantized_checkpoint(bundled.id, key)
    if q is None or q.quantization_config is None:
        return None
    qc = parse_quantization(q.quantization_config)
    if qc is None:
        return None
    plan = plan_from_quant(qc, compute)
    return WeightPlan(**{**plan.__dict__, "source": "requested", "checkpoint_repo": q.repo})


def _format_for(w: Workload) -> str | None:
    """The format key a workload asks for (--quant, else --precision on the runtime), None: the checkpoint's."""
    if w.quant:
        return w.quant
    if w.precision is None:
        return None
    if w.runtime is Runtime.llamacpp:
        if w.precision is Precision.fp8:
            raise UsageError("llama.cpp has no fp8 weights", "use --quant Q8_0 (or --precision int8)")
        return _LLAMACPP_PRECISION[w.precision]
    if w.runtime is Runtime.vllm and w.precision is Precision.int8:
        return "w8a8"  # vLLM 0.34 has no bitsandbytes; int8 serving is a W8A8 checkpoint
    return str(w.precision)


def resolve_plan(spec: ModelSpec, w: Workload, model_name: str = "") -> tuple[WeightPlan, list[str]]:
    """The weight storage for a workload: --quant, else --precision, else the checkpoint's own. A format
    with a published checkpoint of a bundled model is that checkpoint (its skip list included)."""
    notes: list[str] = []
    compute = 4 if w.precision is Precision.fp32 else 2
    if w.train is TrainMode.qlora:
        return WeightPlan(get_format(w.quant or "nf4"), 2, source="requested"), notes
    key = _format_for(w)
    if key is not None:
        fmt = get_format(key)
        _check_runtime_format(fmt.key, fmt.gguf_recipe is not None, w)
        if w.precision is Precision.int4 and w.runtime is not Runtime.llamacpp and not w.quant:
            if w.runtime is Runtime.vllm:
                published = _published(model_name, "awq", compute) or _published(model_name, "gptq", compute)
                if published is None:
                    raise UsageError("vLLM 0.34 has no bitsandbytes: int4 on vLLM means an AWQ or GPTQ checkpoint",
                                     "give --quant awq or gptq (sized with group 128)")
                notes.append(f"int4 on vLLM: the published {published.fmt.key.upper()} checkpoint "
                             f"{published.checkpoint_repo}")
                return published, notes
            notes.append(INT4_NOTE)
        own = spec.quantization
        if own is not None and own.method != "other" and plan_from_quant(own, compute).fmt.key == fmt.key:
            plan = plan_from_quant(own, compute)  # the checkpoint is already in this format: its own layout
            notes.append("weights in the checkpoint's own format (its quantization_config)")
        else:
            plan = _published(model_name, _PUBLISHED_KEY.get(fmt.key, ""), compute) or \
                WeightPlan(fmt, compute, source="requested")
            if plan.checkpoint_repo:
                notes.append(f"{fmt.key} is the published checkpoint {plan.checkpoint_repo}, sized with its "
                             "quantization_config (modules it keeps unquantized included)")
    elif spec.quantization is not None:
        if spec.quantization.method == "other":
            notes.append(f"quant_method {spec.quantization.source_method!r} is not one llm-mem models: weights "
                         "sized as bf16 (an upper bound for a quantized checkpoint)")
        plan = plan_from_quant(spec.quantization, compute)
        notes.append("weights in the checkpoint's own format; --precision or --quant overrides")
    else:
        name = dtypes.float_name(spec.torch_dtype)
        if name is None:
            name = "fp32"
            notes.append("config.json names no torch_dtype: weights sized as fp32")
        if w.runtime is Runtime.vllm and name == "fp32":
            name = "bf16"  # vLLM's dtype "auto" serves fp32 checkpoints in half precision (config/model.py)
            notes.append("vLLM serves an fp32 checkpoint in bf16 (--dtype auto)")
        if w.runtime is Runtime.llamacpp:
            name = {"fp32": "GGUF-F32", "bf16": "GGUF-BF16", "fp16": "GGUF-F16"}[name]
        plan = WeightPlan(get_format(name), compute, source="checkpoint")
    _check_compatible(spec, plan)
    return plan, notes


def _check_runtime_format(key: str, gguf: bool, w: Workload) -> None:
    """Formats the runtime cannot load are refused (a GGUF type on vLLM, AWQ on llama.cpp...)."""
    if w.runtime is Runtime.llamacpp and not gguf:
        raise UsageError(f"llama.cpp loads GGUF files, not {key}", "use a GGUF type such as Q4_K_M or Q8_0")
    if gguf and w.runtime is Runtime.vllm:
        raise UsageError(f"vLLM 0.34 no longer loads GGUF ({key})", "use --runtime llamacpp, or --quant awq/gptq/fp8")
    if gguf and w.runtime is Runtime.transformers and w.train is None:
        raise UsageError(f"{key} is a llama.cpp file type; transformers dequantizes GGUF to bf16",
                         "add --runtime llamacpp (the default when --quant names a GGUF type)")


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


def layout_of(w: Workload) -> Layout:
    """The serving layout a workload asks for."""
    return Layout(w.tensor_parallel_size, w.pipeline_parallel_size, w.data_parallel_size, w.enable_expert_parallel)


def _label(plan: WeightPlan) -> str:
    label = plan.fmt.label
    if plan.fp8_block:
        label = f"fp8 e4m3, {'x'.join(map(str, plan.fp8_block))} block scales (embeddings and lm_head in bf16)"
    elif plan.fmt.key == "fp8" and plan.scale == "channel":
        label = "fp8 e4m3, per-channel scales (embeddings and lm_head in bf16)"
    if plan.checkpoint_repo:
        label += f"; published checkpoint {plan.checkpoint_repo}"
    return label


def _engine(spec: ModelSpec, w: Workload, gpu: Gpu | None, plan: WeightPlan, wb: WeightBytes, weights_total: int,
            elem: int) -> EngineMemory:
    if w.runtime is Runtime.vllm:
        from llm_mem.runtimes import vllm

        layout = layout_of(w)
        problem = tp_problem(spec, layout.tp)
        if problem:
            raise UsageError(problem, "vLLM asserts the heads divide by --tensor-parallel-size")
        if layout.pp > spec.num_layers:
            raise UsageError(f"--pipeline-parallel-size {layout.pp} exceeds the {spec.num_layers} layers")
        if layout.ep and not spec.is_moe:
            raise UsageError("--enable-expert-parallel needs a mixture-of-experts model", "drop it")
        stages = stage_weight_bytes(spec, plan, layout, weights_total / wb.total if wb.total else 1.0)
        return vllm.inference(spec, w, gpu, layout, stages, elem)
    if w.runtime is Runtime.llamacpp:
        from llm_mem.runtimes import llamacpp

        if w.pipeline_parallel_size > 1:
            raise UsageError("llama.cpp splits layers over GPUs itself (--split-mode layer)",
                             "plan it with `llm-mem plan --gpu NxGPU --runtime llamacpp`")
        scale = weights_total / wb.total if wb.total else 1.0
        return llamacpp.inference(spec, w, gpu.vendor if gpu is not None else None,
                                  [int(b * scale) for b in wb.per_layer],
                                  [int(b * scale) for b in wb.experts_per_layer],
                                  int(wb.embedding * scale), int(wb.lm_head * scale), int(wb.other * scale))
    if w.pipeline_parallel_size > 1:
        raise UsageError("transformers places layers over GPUs with device_map, not a pipeline size",
                         "plan it with `llm-mem plan --gpu NxGPU`")
    from llm_mem.runtimes import transformers

    return transformers.inference(spec, w, elem, weights_total)


def estimate(model: ResolvedModel, w: Workload, gpu: Gpu | None = None) -> Report:
    """The full breakdown for one model and workload (``gpu``: the engine's defaults and capacity there)."""
    spec = model.spec
    warnings = list(model.warnings)
    defaults: list[str] = []
    if w.train is not None:  # what the user left out, as the training libraries set it (stated in notes)
        from llm_mem.estimate_training import training_defaults

        w, defaults = training_defaults(spec, w)
    if w.train and w.zero and w.gpus == 1:
        warnings.append(f"ZeRO stage {w.zero} on one GPU partitions nothing (useful only with --offload)")
    params = count_parameters(spec)
    half_note = None
    if w.train is None and w.runtime is Runtime.vllm and gpu is not None and gpu.native_bf16 is False:
        from llm_mem.runtimes.vllm import without_bf16

        w, half_note = without_bf16(spec, w, gpu)
    plan, notes = resolve_plan(spec, w, model.name)
    if w.prepare_kbit:  # QLoRA after PEFT's prepare_model_for_kbit_training: every unquantized tensor in fp32
        plan = dataclasses.replace(plan, keep_bytes=4)
    if half_note:
        notes.append(half_note)
    if spec.counted_by is not None:
        notes.insert(0, spec.counted_by)
    wb = weight_bytes(spec, plan)
    elem = 4 if plan.keep_bytes == 4 else 2
    ckpt = model.checkpoint.total_bytes if model.checkpoint is not None else None
    weights_total = wb.total
    gguf_file = model.checkpoint is not None and model.checkpoint.format == "gguf"
    if ckpt is not None and ((plan.source == "checkpoint" and (spec.quantization is not None or gguf_file
                                                                or spec.from_headers))
                             or (gguf_file and plan.fmt.gguf_recipe is not None)):
        # a quantized checkpoint's real size beats our format model; a GGUF --quant picked this very file
        weights_total = ckpt
        if gguf_file:
            plan = dataclasses.replace(plan, source="checkpoint")
        notes.append("weights sized from the checkpoint's headers (exact tensor bytes)")
    if wb.skipped_params:
        notes.append(f"{wb.skipped_params:,} parameters of linear layers kept unquantized by the checkpoint's "
                     "skip list (modules_to_not_convert / ignore)")
    if spec.max_position_embeddings and w.context > spec.max_position_embeddings:
        warnings.append(f"context {w.context:,} exceeds the model's max_position_embeddings "
                        f"{spec.max_position_embeddings:,}")
    comps: list[Component] = []
    host = 0
    engine = capacity = None
    per_gpu = False
    gpu_weights = weights_total
    if w.train is None:
        mem = _engine(spec, w, gpu, plan, wb, weights_total, elem)
        gpu_weights = mem.gpu_weights if mem.gpu_weights is not None else weights_total
        engine, capacity, host = mem.settings, mem.capacity, mem.host_bytes
        per_gpu = w.layout_gpus > 1
        notes += mem.notes
        warnings += mem.warnings
        if mem.kv.note:
            notes.append(mem.kv.note)
        weight_note = str(plan.fmt.key) + (" (this GPU's share)" if per_gpu or gpu_weights != weights_total else "")
        comps.append(_component("weights", gpu_weights, weight_note))
        comps.append(_component("kv_cache", mem.kv.total, f"{w.batch} x {w.context:,} tokens, {w.kv_dtype}"))
        comps += [_component(p.name, p.bytes, p.note) for p in mem.parts]
        kv_summary = KvSummary(dtype=str(w.kv_dtype), bytes_per_token=mem.kv.per_token_full,
                               bytes_per_1k_tokens=mem.kv.per_1k_tokens, mla_latent=mem.kv.mla_latent)
    else:
        comps, host, tnotes = _training(spec, w, plan, wb.total, elem)
        if w.train in RL_MODES:  # reference, value model, rollout engine (llm_mem.estimators.rl)
            comps, tnotes = _rl(spec, w, gpu, comps, tnotes)
        notes += defaults + tnotes
        per_gpu = w.gpus > 1
        from llm_mem.estimators.kv_cache import full_context_tokens, kv_cache

        kv = kv_cache(spec, full_context_tokens(spec, w.context), 1, w.kv_dtype)
        kv_summary = KvSummary(dtype=str(w.kv_dtype), bytes_per_token=kv.per_token_full,
                               bytes_per_1k_tokens=kv.per_1k_tokens, mla_latent=kv.mla_latent)
    overlap = overlap_low = overlap_high = 0
    if w.train is not None:  # gradients and the activations freed before them are not live together
        from llm_mem.estimate_training import gradient_overlap

        overlap, overlap_low, overlap_high, note = gradient_overlap(w, comps)
        if note:
            notes.append(note)
    total = sum(c.bytes for c in comps) - overlap
    return Report(
        model=model.name, source=model.source, architecture=architecture_of(spec), parameters=params, workload=w,
        weights=WeightsSummary(
            format=plan.fmt.key, label=(model.checkpoint.label or _label(plan)) if gguf_file else _label(plan),  # type: ignore[union-attr]
            source=plan.source, bytes=weights_total,
            checkpoint_bytes=ckpt, embedding_bytes=wb.embedding, lm_head_bytes=wb.lm_head,
            largest_layer_bytes=max(wb.per_layer), experts_bytes=wb.experts, largest_unit_bytes=wb.largest_unit,
            per_layer_bytes=wb.per_layer, checkpoint_repo=plan.checkpoint_repo,
        ),
        kv_cache=kv_summary, components=comps, total_bytes=total,
        total_low_bytes=sum(c.low for c in comps) - overlap_high,
        total_high_bytes=sum(c.high for c in comps) - overlap_low,
        host_bytes=host, overlap_bytes=overlap, per_gpu=per_gpu,
        engine=engine, capacity=capacity,
        notes=notes + ([plan.fmt.note] if plan.fmt.note else []), warnings=warnings,
    )


def _training(spec: ModelSpec, w: Workload, plan: WeightPlan, weights_full: int, elem: int
              ) -> tuple[list[Component], int, list[str]]:
    """Training components (per data-parallel GPU when --gpus > 1) and host RAM for offload
    (llm_mem.estimate_training)."""
    from llm_mem.estimate_training import training_parts
    from llm_mem.runtimes.transformers import ALLOCATOR_SLACK

    label = plan.fmt.label + (", the unquantized rest in fp32 (prepare_model_for_kbit_training)"
                              if w.prepare_kbit else "")
    parts, host, notes = training_parts(spec, w, weights_full, plan.fmt.key, label, elem)
    transient = sum(p.bytes for p in parts if p.name in ("activations", "logits", "activation_recompute"))
    overhead = _component("runtime_overhead", int(transient * ALLOCATOR_SLACK),
                          "PyTorch caching-allocator slack (10% of activations); the CUDA context is outside the "
                          "GPU budget")
    return [_component(p.name, p.bytes, p.note) for p in parts] + [overhead], host, notes


def _rl(spec: ModelSpec, w: Workload, gpu: Gpu | None, comps: list[Component], notes: list[str]
        ) -> tuple[list[Component], list[str]]:
    """RL post-training's components beside the policy's (llm_mem.estimators.rl)."""
    from llm_mem.estimators.rl import rl_parts

    have = {c.name: c.bytes for c in comps}
    states = sum(have.get(k, 0) for k in ("weights", "gradients", "optimizer_states", "master_weights"))
    parts, rl_notes = rl_parts(spec, w, gpu, states, have.get("activations", 0))
    return comps + [_component(p.name, p.bytes, p.note) for p in parts], notes + rl_notes
