"""From the reduced model's measurement to the whole model: scale per layer kind, compare with the
estimate, and return the calibrated report."""

from __future__ import annotations

from typing import Any

from llm_mem.estimate import BANDS
from llm_mem.estimators.overhead import ALLOCATOR_SLACK, CUDA_CONTEXT, runtime_overhead
from llm_mem.report import Component, Report
from llm_mem.verify.measure import Measurement

# Band kept around a component measured at the requested context: exact tensor counts (weights,
# gradients, adapters, optimizer states, KV) have none; transient peaks keep 2% for what live-tensor
# tracking cannot see (kernel scratch inside one op, see tracker.py) and allocator rounding on CUDA
# (512-byte blocks, PyTorch CUDA caching allocator docs, "Memory management").
EXACT = {"weights", "kv_cache", "gradients", "lora_adapters", "optimizer_states", "master_weights"}
TRANSIENT_BAND = 0.02


def _per_kind(values: list[int], kinds_red: list[str]) -> dict[str, int]:
    """The largest value measured for each layer kind."""
    out: dict[str, int] = {}
    for v, k in zip(values, kinds_red):
        out[k] = max(out.get(k, 0), v)
    return out


def _sum_over(values: list[int], kinds_red: list[str], kinds_full: list[str]) -> int:
    per = _per_kind(values, kinds_red)
    return sum(per.get(k, 0) for k in kinds_full)


def extrapolate(m1: Measurement, m2: Measurement, context: int) -> Measurement:
    """The measurement at `context` from two measured contexts, by the line through both points per
    figure (each figure is a + b x context: weights-like parts constant, activations, logits and KV
    per token). A sliding layer whose cache stopped growing stays constant; eager attention's
    context^2 scores are understated (the output says so)."""
    import dataclasses

    c1, c2 = m1.context, m2.context

    def line(a: int, b: int) -> int:
        return max(0, round(a + (b - a) * (context - c1) / (c2 - c1)))

    out = dataclasses.replace(m2, context=context, notes=list(m2.notes))
    for f in ("layer_kv", "layer_kv_tokens", "layer_kv_logical", "layer_act", "layer_saved", "layer_recompute"):
        setattr(out, f, [line(a, b) for a, b in zip(getattr(m1, f), getattr(m2, f))])
    for f in ("outside_saved", "logits", "peak"):
        setattr(out, f, line(getattr(m1, f), getattr(m2, f)))
    return out


def measured_components(m: Measurement, report: Report, kinds_red: list[str], kinds_full: list[str],
                        kv_comparable: bool, model_states: bool, peft_used: bool) -> dict[str, int]:
    """Whole-model bytes of every component the measurement covers, at the requested context."""
    w = report.workload
    if m.context != w.context:
        raise ValueError("measured_components needs a measurement at the requested context (see extrapolate)")
    p = m.parts
    out: dict[str, int] = {}
    outside_w = p.embedding_bytes + p.lm_head_bytes + p.other_bytes
    if w.train is None:
        if m.weights_measured:
            out["weights"] = outside_w + _sum_over(p.layer_param_bytes, kinds_red, kinds_full)
        if kv_comparable:
            out["kv_cache"] = _sum_over(m.layer_kv, kinds_red, kinds_full)
        out["activations"] = max(m.layer_act)
        out["logits"] = m.logits
        return out
    lora = w.train in ("lora", "qlora")
    if m.weights_measured and model_states:
        per_layer = p.layer_param_bytes if lora else [a + b for a, b in zip(p.layer_param_bytes,
                                                                            p.layer_trainable_bytes)]
        out["weights"] = outside_w + _sum_over(per_layer, kinds_red, kinds_full)
    if model_states and (peft_used or not lora):
        out["gradients"] = m.outside_grads + _sum_over(m.layer_grads, kinds_red, kinds_full)
    if lora and peft_used and model_states:
        out["lora_adapters"] = m.outside_adapters + _sum_over(m.layer_adapters, kinds_red, kinds_full)
        if m.optimizer_measured:
            out["optimizer_states"] = m.outside_optimizer + _sum_over(m.layer_optimizer, kinds_red, kinds_full)
    out["activations"] = m.outside_saved + _sum_over(m.layer_saved, kinds_red, kinds_full)
    out["logits"] = m.logits
    if w.grad_checkpointing and any(m.layer_recompute):
        out["activation_recompute"] = max(m.layer_recompute)
    return out


def _band(name: str, b: int, scaled: bool) -> tuple[int, int]:
    if scaled and name not in EXACT:
        band = BANDS[name]
    else:
        band = 0.0 if name in EXACT else TRANSIENT_BAND
    return int(b * (1 - band)), int(b * (1 + band))


def calibrate(report: Report, measured: dict[str, int], m: Measurement, verify: dict[str, Any]) -> Report:
    """The report with measured components in place of the estimate and overhead recomputed from them."""
    w = report.workload
    scaled = verify["measured_context"] != w.context
    comps: list[Component] = []
    for c in report.components:
        if c.name in measured:
            b = measured[c.name]
            lo, hi = _band(c.name, b, scaled)
            note = f"measured on {verify['device']}"
            if scaled:
                note += f", extrapolated from {verify['measured_context']:,} tokens"
            comps.append(Component(name=c.name, bytes=b, low=lo, high=hi, note=note))
        else:
            comps.append(c)
    by = {c.name: c.bytes for c in comps}
    if w.train is None:
        transient = by.get("kv_cache", 0) + by.get("activations", 0) + by.get("logits", 0)
        oh, why = runtime_overhead(w.runtime, transient)
    else:
        transient = by.get("activations", 0) + by.get("logits", 0) + by.get("activation_recompute", 0)
        oh = CUDA_CONTEXT + int(transient * ALLOCATOR_SLACK)
        why = "CUDA context 500 MiB + caching-allocator slack (10% of activations)"
    comps = [Component(name=c.name, bytes=oh, low=int(oh * (1 - BANDS[c.name])), high=int(oh * (1 + BANDS[c.name])),
                       note=why + ", recomputed from the measured components")
             if c.name == "runtime_overhead" else c for c in comps]
    total = sum(c.bytes for c in comps)
    verify["calibrated_total_bytes"] = total
    notes = list(report.notes) + [f"--verify: components marked 'measured' replace the estimate "
                                  f"({verify['method']} on {verify['device']})"]
    return report.model_copy(update={
        "verify": verify, "components": comps, "total_bytes": total,
        "total_low_bytes": sum(c.low for c in comps), "total_high_bytes": sum(c.high for c in comps),
        "notes": notes,
    })


def comparison(report: Report, measured: dict[str, int]) -> list[dict[str, Any]]:
    """Per component: estimate, measurement (None where not measured) and the estimate's error in %
    of the measurement (positive: the estimate is too high)."""
    rows = []
    for c in report.components:
        mb = measured.get(c.name)
        err = None if mb is None or mb == 0 else round(100 * (c.bytes - mb) / mb, 2)
        rows.append({"name": c.name, "estimate_bytes": c.bytes, "measured_bytes": mb, "error_pct": err})
    return rows
