"""run_verify: measure the reduced model on this machine and calibrate the estimate with it."""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from typing import Any

from llm_mem.errors import VerifyError
from llm_mem.report import Report
from llm_mem.spec import ResolvedModel
from llm_mem.verify.config import layer_kinds, raw_config, reduced_config_kwargs, reduced_layer_count

# The longest a CPU measurement may take before --verify measures a shorter context and scales
# linearly (the issue asks for about a minute); LLM_MEM_VERIFY_CPU_SECONDS overrides it.
CPU_TIME_BUDGET_S = 60.0
# Share of the host's available RAM a CPU measurement may plan to use (the rest is the OS, Python,
# and the estimate's uncertainty band on activations, 25%: llm_mem/estimate.py BANDS).
CPU_RAM_SHARE = 0.6
_KV_BITS = {"fp32": 32, "float32": 32, "bf16": 16, "bfloat16": 16, "fp16": 16, "float16": 16}
_DTYPE_LABEL = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def _require_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError:
        raise VerifyError("--verify needs torch and transformers", "pip install 'llm-mem[verify]'") from None
    return torch, transformers


def _available_ram() -> int:
    """Available host memory in bytes (Linux MemAvailable; else physical pages), 0 if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB = 1024 bytes (proc(5))
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def _active_params(resolved: ResolvedModel, n_red: int) -> tuple[int, int]:
    """(parameters touched per token by the reduced layers, lm_head parameters) for the time model."""
    from llm_mem.params import count_parameters

    spec = resolved.spec
    pc = count_parameters(spec)
    moe = spec.moe
    active = 0
    for i in range(n_red):
        experts = pc.experts_per_layer[i]
        share = moe.top_k / moe.num_experts if moe is not None and moe.num_experts else 1.0
        active += pc.per_layer[i] - experts + int(experts * share)
    return active, spec.vocab_size * spec.hidden_size


def _measured_context(resolved: ResolvedModel, report: Report, n_red: int, dtype: str, budget_s: float,
                      notes: list[str]) -> int:
    """The context the CPU measures at: the requested one, or less when it would run past the time
    budget or the RAM share (then it is measured at that context and half of it, every figure is
    extrapolated along the line through both, and the output says so)."""
    from llm_mem.verify.build import CPU_EFFICIENCY, MIN_MEASURED_CONTEXT, cpu_flops_per_s, predicted_flops

    w = report.workload
    spec = resolved.spec
    active, head = _active_params(resolved, n_red)
    train = w.train is not None
    rate = cpu_flops_per_s(dtype, train) * CPU_EFFICIENCY

    def seconds(c: int) -> float:
        positions = w.batch * c if (train or w.logits == "full") else w.batch
        return predicted_flops(active, head, n_red, spec.num_heads, spec.head_dim, w.batch, c, positions,
                               train) / rate

    def transient_bytes(c: int) -> int:
        f = c / w.context
        per_layer_kv = report.component("kv_cache") // max(spec.num_layers, 1)
        acts = report.component("activations")
        if train:
            acts = acts // max(spec.num_layers, 1) * n_red
        return int((per_layer_kv * n_red + acts + report.component("logits") + report.component(
            "activation_recompute")) * f)

    ram = _available_ram()
    weights_red = report.weights.embedding_bytes + report.weights.lm_head_bytes + sum(
        report.weights.per_layer_bytes[:n_red])

    def too_big(c: int) -> bool:
        return bool(ram) and weights_red + transient_bytes(c) > CPU_RAM_SHARE * ram

    c = w.context
    floor = min(w.context, MIN_MEASURED_CONTEXT)
    if seconds(c) > budget_s or too_big(c):
        # a capped context is measured at c and c/2: 1.5 x seconds(c) in all
        while c > floor and (1.5 * seconds(c) > budget_s or too_big(c)):
            c = max(floor, c // 2)
    if c < w.context:
        why = (f"~{seconds(w.context):,.0f} s predicted on this CPU (budget {budget_s:.0f} s)"
               if seconds(w.context) > budget_s else "it would not fit in RAM")
        notes.append(f"measured at contexts {max(1, c // 2):,} and {c:,} instead of {w.context:,} ({why}); "
                     f"activations, logits and KV extrapolated linearly to {w.context:,}")
    return c


def run_verify(resolved: ResolvedModel, report: Report, *, cpu_time_budget_s: float | None = None) -> Report:
    """Measure one layer of each kind on the local accelerator (CPU when none) and return the report
    with measured components in place of the estimate and `report.verify` filled in."""
    torch, transformers = _require_torch()
    from llm_mem.verify import build as vb
    from llm_mem.verify import measure as ms
    from llm_mem.verify.calibrate import calibrate, comparison, extrapolate, measured_components
    from llm_mem.verify.tracker import make_tracker

    w = report.workload
    if w.runtime != "transformers":
        raise VerifyError(f"--verify measures a transformers forward; the --runtime {w.runtime} estimate is not "
                          "comparable", "drop --runtime or --verify")
    # the training frameworks' kernels (issue 17) are not what a transformers + PEFT step runs
    switched = [f for f in ("fused_ce", "chunked_ce", "activation_offloading", "optimizer_in_bwd") if getattr(w, f)]
    if switched:
        raise VerifyError(f"--verify measures transformers' own loss and autograd; --{switched[0].replace('_', '-')} "
                          "is another framework's kernel", "drop the framework switches (or --trainer) or --verify")
    if cpu_time_budget_s is None:
        env = os.environ.get("LLM_MEM_VERIFY_CPU_SECONDS")
        try:
            cpu_time_budget_s = float(env) if env else CPU_TIME_BUDGET_S
        except ValueError:
            raise VerifyError(f"LLM_MEM_VERIFY_CPU_SECONDS={env!r} is not a number of seconds") from None
    spec = resolved.spec
    notes: list[str] = []
    raw = raw_config(resolved)
    kinds_full = layer_kinds(spec)
    n_red = reduced_layer_count(kinds_full)
    kinds_red = kinds_full[:n_red]
    model_type, kw = reduced_config_kwargs(raw, n_red)
    device, device_name = ms.pick_device()

    fmt = report.weights.format
    quant_bnb = False
    if fmt in ms.FLOAT_DTYPES:
        dtype = ms.FLOAT_DTYPES[fmt]
        weights_measured = True
    else:
        dtype = "float32" if (w.precision or "").lower() in ("fp32", "float32") else "bfloat16"
        weights_measured = False
        if fmt in ms.BNB_FORMATS:
            try:
                import bitsandbytes  # noqa: F401
                has_bnb = True
            except ImportError:
                has_bnb = False
            if device.type == "cuda" and has_bnb:
                quant_bnb = weights_measured = True
            else:
                why = "no CUDA device" if device.type != "cuda" else "bitsandbytes is not installed"
                notes.append(f"bitsandbytes {fmt} skipped ({why}): weights kept from the estimate; layers measured "
                             f"in {_DTYPE_LABEL[dtype]}")
        else:
            notes.append(f"weights in {report.weights.label} are not instantiated by --verify: kept from the "
                         f"estimate; layers measured in {_DTYPE_LABEL[dtype]}")
    kv_comparable = _KV_BITS.get(w.kv_dtype) == 8 * (4 if dtype == "float32" else 2)
    if w.train is None and not kv_comparable:
        notes.append(f"KV cache in {w.kv_dtype} is not what transformers' DynamicCache stores: kept from the estimate")
    model_states = w.train is None or (w.zero == 0 and w.gpus == 1)
    if not model_states:
        notes.append("ZeRO / several GPUs partition the model states: only activations and logits are measured")

    context = w.context
    if device.type == "cpu":
        context = _measured_context(resolved, report, n_red, dtype, cpu_time_budget_s, notes)
        notes.append(ms.cpu_threads_note())

    lora = w.train in ("lora", "qlora")
    peft_used = False
    t0 = time.perf_counter()
    model = None
    try:
        model, attn_used, bnotes = vb.build_model(model_type, kw, device, dtype, w.attention,
                                                  use_cache=w.train is None)
        notes += bnotes
        if context != w.context and attn_used == "eager":
            notes.append("eager attention's scores grow with context^2: the linear extrapolation understates them")
        if quant_bnb:
            vb.quantize_bnb(model, fmt, dtype)
        parts = vb.find_parts(model, n_red)
        _check_kinds(parts, kinds_red, notes)
        if w.train is None:
            model.eval()
            model.requires_grad_(False)
        else:
            model.train()
            if w.grad_checkpointing:
                # non-reentrant checkpointing, what torch recommends (torch.utils.checkpoint docs); the
                # transformers 5 deprecation warning for this name (activation_checkpointing_enable) is muted
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if lora:
                try:
                    import peft
                except ImportError:
                    peft = None  # type: ignore[assignment,unused-ignore]
                if peft is not None:
                    model.requires_grad_(False)
                    # make layer 0 behave like every later layer: its input requires grad, so its norms
                    # save their input as in the full model (transformers enable_input_require_grads)
                    model.enable_input_require_grads()
                    targets = _lora_targets(model, w.lora_targets or (), notes)
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", FutureWarning)
                            model = peft.get_peft_model(model, peft.LoraConfig(
                                r=w.lora_rank, lora_alpha=w.lora_rank, lora_dropout=0.0, target_modules=targets,
                                bias="none"))
                    except ValueError as exc:
                        raise VerifyError(f"peft cannot place LoRA on {', '.join(w.lora_targets or ())}: "
                                          f"{str(exc).splitlines()[0][:160]}", "check --lora-targets") from None
                    peft_used = True
                else:
                    notes.append("peft is not installed: measured a full fine-tuning backward for activations and "
                                 "logits; adapters, gradients and optimizer states kept from the estimate "
                                 "(pip install peft)")
            if w.train == "full" or not peft_used:
                model.requires_grad_(True)
        vb.count_parts(parts, model)
        if parts.buffer_bytes:
            notes.append(f"model buffers (e.g. RoPE inv_freq) hold {parts.buffer_bytes:,} bytes, "
                         "not counted as weights")
        tracker = make_tracker(device)
        vocab = int(getattr(model.config, "vocab_size", spec.vocab_size) or spec.vocab_size)
        # a capped context is measured twice (half and full) and every figure extrapolated along the
        # line through both, so parts that do not grow with the context are not scaled
        runs = []
        for c in ([context] if context == w.context else [max(1, context // 2), context]):
            m = ms.Measurement(device=device_name, device_type=device.type, method=tracker.method,
                               dtype=_DTYPE_LABEL[dtype] + (f" + bitsandbytes {fmt}" if quant_bnb else ""),
                               attention=attn_used, context=c, batch=w.batch, n_layers=n_red,
                               weights_measured=weights_measured, parts=parts)
            if w.train is None:
                ms.measure_inference(model, parts, tracker, device, w.batch, c, vocab, w.logits, m)
            else:
                ms.measure_training(model, parts, tracker, device, w.batch, c, vocab, bool(w.grad_checkpointing),
                                    w.optimizer, lora and peft_used, m)
            runs.append(m)
        if w.train is None:
            _kv_notes(runs[-1], kinds_red, spec, notes)
        m = runs[0] if len(runs) == 1 else extrapolate(runs[0], runs[1], w.context)
        if device.type not in ("cuda", "xpu"):  # live tracking counts what the run allocated: add the weights
            m.peak += (sum(parts.layer_param_bytes) + sum(parts.layer_trainable_bytes) + parts.embedding_bytes
                       + parts.lm_head_bytes + parts.other_bytes + parts.buffer_bytes)
        if w.train is not None:
            if lora and peft_used and not m.optimizer_measured:
                notes.append(f"optimizer {w.optimizer} is not instantiated by --verify: states kept from the estimate")
            if w.train == "full":
                notes.append("full fine-tuning: optimizer states and master weights depend on the trainer's "
                             "mixed-precision layout, kept from the estimate")
        m.seconds = time.perf_counter() - t0
    except VerifyError:
        raise
    except Exception as exc:
        if ms._is_oom(exc):
            raise VerifyError(f"batch {w.batch} x context {context:,} does not fit on {device_name} "
                              f"({n_red} layer{'s' if n_red > 1 else ''} of {resolved.name})",
                              "try a smaller --context or --batch") from None
        raise
    finally:
        model = None
        ms.free(device)

    measured = measured_components(m, report, kinds_red, kinds_full, kv_comparable, model_states, peft_used)
    verify: dict[str, Any] = {
        "device": device_name,
        "dtype": m.dtype,
        "method": m.method,
        "attention": m.attention,
        "measured_context": context,
        "requested_context": w.context,
        "batch": w.batch,
        "measured_layers": n_red,
        "layer_kinds": dict(Counter(kinds_full)),
        "components": comparison(report, measured),
        "estimate_total_bytes": report.total_bytes,
        "calibrated_total_bytes": 0,
        "peak_bytes": m.peak,
        "seconds": round(m.seconds, 2),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "notes": notes,
    }
    return calibrate(report, measured, m, verify)


def _lora_targets(model: Any, names: tuple[str, ...], notes: list[str]) -> Any:
    """The modules the estimate puts adapters on: nn.Linear modules with one of the target names
    (llm_mem/estimators/training.py lora_target_tensors), the fused routed experts only when
    "experts" is named. Full module names, because peft also matches gate_proj/up_proj/
    down_proj against transformers 5's fused expert parameters (seen with peft 0.21)."""
    import torch

    if names == ("all-linear",):
        return "all-linear"
    head = model.get_output_embeddings()
    wanted = set(names)
    out = []
    for full, mod in model.named_modules():
        leaf = full.rsplit(".", 1)[-1]
        linear = isinstance(mod, torch.nn.Linear) and mod is not head and leaf in wanted
        if linear or ("experts" in wanted and leaf == "experts"):
            out.append(full)
    if not out:
        raise VerifyError(f"no module of this model is named {', '.join(names)}", "check --lora-targets")
    fused = [f for f, mod in model.named_modules()
             if f.endswith("experts") and not isinstance(mod, torch.nn.ModuleList)]
    if fused and "experts" not in wanted:
        notes.append("LoRA on the nn.Linear modules named by --lora-targets; fused routed experts not targeted, as "
                     "the estimate assumes (peft's own name matching would wrap them too)")
    return out


def _check_kinds(parts: Any, kinds_red: list[str], notes: list[str]) -> None:
    """Say so when transformers' reduced model routes layers differently from llm-mem's parse."""
    for i, (layer, kind) in enumerate(zip(parts.layers, kinds_red)):
        has_experts = any("expert" in name for name, _ in layer.named_parameters())
        if has_experts != kind.endswith("+moe"):
            notes.append(f"layer {i}: transformers builds a {'MoE' if has_experts else 'dense'} MLP, llm-mem's "
                         f"parse says {kind.split('+')[1]}")


def _kv_notes(m: Any, kinds_red: list[str], spec: Any, notes: list[str]) -> None:
    for i, kind in enumerate(kinds_red):
        if m.layer_kv_logical[i] and m.layer_kv_tokens[i] > m.layer_kv_logical[i]:
            notes.append(f"layer {i} ({kind}): the cache exposes {m.layer_kv_logical[i]:,} tokens but keeps the "
                         f"{m.layer_kv_tokens[i]:,}-token prefill storage alive (a view of it); measured by storage")
