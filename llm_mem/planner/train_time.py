"""Training time of a plan option: FLOPs per trained token at a stated MFU of the GPUs' dense peak.

FLOPs per token (PaLM, Chowdhery et al. 2022, arXiv:2204.02311, appendix B): ``6N + 12 L H Q T`` with N the
parameters that multiply (active parameters, less the input embedding lookup), L attention layers, H heads,
Q head dim, T the sequence length (sliding layers: their window); the forward is a third of it (2N + 4LHQT).
Full activation recomputation (``--grad-checkpointing``) runs the forward twice: ``8N + 16 L H Q T``
(Narayanan et al. 2021, arXiv:2104.04473, sec. 5.1: 96 vs 72 B s L h^2). LoRA / QLoRA skip the frozen
weights' gradient GEMMs: ``4N`` (+ 2N recomputed), the attention term unchanged. RL adds per trained token:
the reference model's forward, PPO's critic trained like the policy, and the rollout's forward over the
generated tokens (decode is memory-bound: at the same MFU this flatters the rollout).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from llm_mem.choices import RL_MODES, TrainMode
from llm_mem.errors import UsageError

if TYPE_CHECKING:
    from llm_mem.catalog import Gpu
    from llm_mem.planner.model import Plan, TrainTime
    from llm_mem.spec import ModelSpec
    from llm_mem.workload import Workload

# Model FLOPs utilization when none is given: Llama 3 pre-training reached 38-43% BF16 MFU on 8,192-16,384
# H100s (Dubey et al. 2024, arXiv:2407.21783, Table 4); PaLM 540B 46.2% on TPU v4 (Chowdhery et al. 2022,
# Table 3). 0.4 is the Llama 3 range's middle, rounded.
DEFAULT_MFU = 0.4
# Training token counts are decimal, as datasets are counted (Llama 3: "15T tokens"): k, M, B, T = 10^3..10^12.
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}
_TOKENS_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(?:([kmbt])\s*)?$", re.IGNORECASE)  # linear, no two \s* in a row
# The most tokens a run is asked about: 10^15, 67x Llama 3's 15T.
MAX_TRAIN_TOKENS = 10**15


def parse_train_tokens(text: str | int) -> int:
    """``1B`` = 10^9 tokens, ``500M``, ``15T``, or a plain integer."""
    if isinstance(text, bool):
        raise UsageError("--train-tokens takes a token count, e.g. 1B or 500M")
    m = _TOKENS_RE.match(str(text))
    if not m:
        raise UsageError(f"cannot read {str(text)[:40]!r} as a token count", "use e.g. 1B, 500M or 15T")
    number = float(m.group(1)) * _SUFFIX[(m.group(2) or "").lower()]  # inf for a 400-digit count: refused below
    value = int(number) if number <= MAX_TRAIN_TOKENS else MAX_TRAIN_TOKENS + 1
    if not 0 < value <= MAX_TRAIN_TOKENS:
        raise UsageError(f"--train-tokens {str(text)[:40]} must be between 1 and 10^15 tokens")
    return value


def flops_per_token(spec: ModelSpec, w: Workload) -> tuple[float, list[str]]:
    """Training FLOPs per trained token and the terms that make it (``w`` with its training defaults)."""
    from llm_mem.params import count_parameters

    pc = count_parameters(spec)
    n = pc.active - (pc.embedding if pc.lm_head else 0)  # the input lookup multiplies nothing; a tied head does
    window = spec.sliding_window or w.context
    lhqt = sum(min(w.context, window) if k == "sliding" else w.context
               for k in spec.layer_types if k != "linear") * spec.num_heads * spec.head_dim
    ckpt = bool(w.grad_checkpointing)
    lora = w.adapters
    fwd = 2 * n + 4 * lhqt
    dense = (4 if lora else 6) * n + (2 * n if ckpt else 0)
    attn = 12 * lhqt + (4 * lhqt if ckpt else 0)
    total = float(dense + attn)
    terms = [f"policy {'4N' if lora else '6N'}{' + 2N recompute' if ckpt else ''} + "
             f"{'16' if ckpt else '12'}LHQT = {total:.3g} FLOPs/token (N = {n:,} multiplying parameters, "
             f"LHQT = {lhqt:,})"]
    if w.train in RL_MODES:
        if w.train is TrainMode.dpo or (w.beta or 0) > 0:
            total += fwd
            terms.append(f"reference forward 2N + 4LHQT = {fwd:.3g}")
        if w.train is TrainMode.ppo:
            total += dense + attn
            terms.append(f"critic trained like the policy {dense + attn:.3g}")
        if w.train in (TrainMode.grpo, TrainMode.ppo):
            total += fwd
            terms.append(f"rollout forward over the generated tokens 2N + 4LHQT = {fwd:.3g} (decode is "
                         "memory-bound in practice)")
    return total, terms


def peak_tflops(gpu: Gpu, w: Workload) -> float | None:
    """One GPU's dense peak in the compute dtype: bf16 (fp16) under mixed precision, fp32 without it."""
    if w.mixed_precision == "none" and w.precision is not None and str(w.precision) == "fp32":
        return gpu.tflops.get("fp32")
    return gpu.tflops.get("bf16") or gpu.tflops.get("fp16")


def train_time(spec: ModelSpec, w: Workload, gpu: Gpu, gpus: int, tokens: int | None, mfu: float
               ) -> TrainTime | None:
    """Throughput and hours of training on ``gpus`` x ``gpu``; None when the catalog has no peak for it."""
    from llm_mem.planner.model import TrainTime

    peak = peak_tflops(gpu, w)
    if not peak:
        return None
    f, terms = flops_per_token(spec, w)
    tps = gpus * peak * 1e12 * mfu / f
    return TrainTime(flops_per_token=f, peak_tflops=peak, mfu=mfu, gpus=gpus, tokens_per_s=tps, tokens=tokens,
                     hours=tokens / tps / 3600 if tokens else None,
                     assumptions=[*terms, f"{gpus} x {gpu.id} at {peak:g} dense TFLOPS (gpu_catalog.yaml) x MFU "
                                          f"{mfu:g}" + (" (default: Llama 3's 38-43%, arXiv:2407.21783 Table 4)"
                                                        if mfu == DEFAULT_MFU else "")])


def attach(p: Plan, spec: ModelSpec, gpus: list[Gpu], tokens: int | None, mfu: float) -> Plan:
    """The plan with each training option's ``train_time`` filled (options name their GPU by catalog id)."""
    from llm_mem.estimate_training import training_defaults

    w, _ = training_defaults(spec, p.workload)
    by_id = {g.id: g for g in gpus}

    def timed(o: object) -> object:
        from llm_mem.planner.model import PlanOption

        assert isinstance(o, PlanOption)
        g = by_id.get(o.gpu)
        if g is None:
            return o
        return o.model_copy(update={"train_time": train_time(spec, w, g, o.gpus, tokens, mfu)})

    options = [timed(o) for o in p.options]
    rec = timed(p.recommended) if p.recommended is not None else None
    return p.model_copy(update={"options": options, "recommended": rec})
