"""`llm-mem plan --gpu X` without a model: for every bundled model, what a user of that card would run
(runtime, quantization, offload), best first, with the largest context and a speed bound.

Candidates per model:
* llama.cpp with the GGUF quants people download (Q8_0 ... Q2_K), whole on the GPU; if none fits, MoE
  experts in host RAM (--n-cpu-moe) or layers in host RAM (-ngl) with Q4_K_M;
* vLLM in bf16, fp8 on GPUs with native fp8, and a published AWQ checkpoint, on one GPU;
* transformers in bf16, int8 and nf4 (bitsandbytes), else layer streaming.
Ranked: on the GPU with at least 4,096 tokens first, more bits before fewer (quality), then faster;
then host-RAM offload by speed; then streaming. The first row of each model is its pick.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from llm_mem.catalog import Gpu
from llm_mem.errors import LlmMemError
from llm_mem.estimate import estimate
from llm_mem.estimators.weights import sized_inventory
from llm_mem.formats import lookup_format
from llm_mem.params import LINEAR_ROLES
from llm_mem.planner.model import budget
from llm_mem.planner.speed import active_expert_bytes, bytes_read_per_step, gpu_bandwidth
from llm_mem.report import Report
from llm_mem.requests import DEFAULT_CPU_GBPS, DEFAULT_DISK_GBPS
from llm_mem.runtimes.llamacpp import FIT_TARGET
from llm_mem.sources.bundled import find_bundled, load_bundled_config, quantized_checkpoint, registry
from llm_mem.sources.parse import parse_config
from llm_mem.spec import ResolvedModel, Source
from llm_mem.units import GB
from llm_mem.workload import Workload

# GGUF quants people download, most bits first (bartowski's and unsloth's model cards list these)
GGUF_LADDER = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "IQ3_XXS", "Q2_K")
TRANSFORMERS_PRECISIONS = ("bf16", "int8", "int4")
# The context a row must fit to count as usable on the GPU: 4,096 tokens, the common chat default
# (the default context of `estimate` and `plan`).
USABLE_CONTEXT = 4096
_CONTEXT_STEP = 256  # the answer is rounded down to a multiple of 256 tokens
_BITS = {"fp32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.5,
         "Q4_K_M": 4.5, "IQ4_XS": 4.25, "awq": 4.1, "int4": 4.1, "Q3_K_M": 3.4, "IQ3_XXS": 3.1, "Q2_K": 2.6}
_STRATEGY_ORDER = {"single": 0, "tensor_parallel": 0, "expert_offload": 1, "offload": 2, "streaming": 3, "none": 4}


class FitRow(BaseModel):
    """One way to run one model on the device."""

    model_config = ConfigDict(frozen=True)

    model: str
    precision: str  # the weights' format: bf16, int4 (nf4), Q4_K_M, awq...
    runtime: str = "transformers"
    strategy: str  # single / tensor_parallel / expert_offload / offload / streaming / none
    max_context: int | None  # largest context that fits (None when it does not)
    bytes_at_4k: int | None  # GPU bytes at 4,096 tokens
    host_bytes: int = 0
    tokens_per_s: float | None = None
    pick: bool = False  # the first row of the model: what to run
    reason: str


class FitTable(BaseModel):
    """The answer to "what can I run on this GPU?"."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = "1"
    gpu: str
    count: int
    budget_bytes: int
    runtime: str
    rows: list[FitRow]


def _largest_steps(total: Callable[[int], int], c0: int, t0: int, cap: int, max_steps: int) -> int:
    """Largest k in [1, max_steps] with total(k * 256) <= cap, given total(c0) = t0 <= cap (c0: the 4k
    context already sized). Totals are linear in context except where sliding windows cap the KV
    cache, so a secant guess between the bracketing points lands on the answer (the guess and the
    step above it confirm it: three sizings); bisection takes over where the curve bends."""
    step = _CONTEXT_STEP
    t_hi = total(max_steps * step)
    if t_hi <= cap:
        return max_steps
    if c0 < step:  # a model shorter than one step: the step itself decides
        return 1 if total(step) <= cap else 0
    lo, hi = c0 // step, max_steps  # total(lo) fits (lo * step <= c0), total(hi) does not
    c_lo, t_lo, c_hi = c0, t0, max_steps * step
    tries = 0
    while hi - lo > 1:
        slope = (t_hi - t_lo) / (c_hi - c_lo) if c_hi > c_lo else 0.0
        guess = int((c_lo + (cap - t_lo) / slope) // step) if slope > 0 and tries < 2 else (lo + hi) // 2
        guess = min(max(guess, lo + 1), hi - 1)
        t = total(guess * step)
        if t <= cap:
            lo, c_lo, t_lo = guess, guess * step, t
        else:
            hi, c_hi, t_hi = guess, guess * step, t
        tries += 1
    return lo


class _Model:
    """One bundled model on the device: estimates, cached."""

    def __init__(self, m: ResolvedModel, gpu: Gpu, base: Workload, cpu_gbps: float) -> None:
        self.m, self.gpu, self.base, self.cpu_gbps = m, gpu, base, cpu_gbps
        self.max_pos = m.spec.max_position_embeddings or 131072
        self.ctx4k = min(USABLE_CONTEXT, self.max_pos)
        self._linear: int | None = None  # linear-layer parameters, for the too-big test
        # estimate() is a pure function of (model, workload, GPU), all fixed here but the workload's changes:
        # the searches ask for some points twice (the -ngl answer, a context step already tried)
        self._reports: dict[tuple[int, frozenset[tuple[str, object]]], Report] = {}

    def report(self, context: int, **w: object) -> Report:
        key = (context, frozenset(w.items()))
        r = self._reports.get(key)
        if r is None:
            r = self._reports[key] = estimate(self.m, self.base.replace(context=context, **w), self.gpu)
        return r

    def speed(self, r: Report, cpu_bytes: int = 0) -> float | None:
        bw, _ = gpu_bandwidth(self.gpu)
        step = max(bytes_read_per_step(r) - cpu_bytes, 0) / (bw * GB) + cpu_bytes / (self.cpu_gbps * GB)
        return r.workload.batch / step if step > 0 else None

    def too_big(self, fmt: str, cap: int) -> bool:
        """Whether ``fmt``'s weights alone cannot fit ``cap``: every linear weight at the format's nominal
        bits (recipes only add bits: norms, embeddings and bumped tensors) exceeds it. Saves sizing
        formats that obviously do not fit."""
        f = lookup_format(fmt)
        if f is None:
            return False
        if self._linear is None:
            self._linear = sum(n for t, n in sized_inventory(self.m.spec) if t.role in LINEAR_ROLES)
        return self._linear * f.linear_bits / 8 > cap

    def resident(self, runtime: str, fmt: str, w: dict[str, object]) -> FitRow | None:
        """The row when ``fmt`` runs whole on the GPU at 4k tokens, with its largest context; None otherwise."""
        cap = budget(self.gpu, runtime)
        if self.too_big(fmt, cap):
            return None
        try:
            at4k = self.report(self.ctx4k, **w)
        except LlmMemError:
            return None
        if at4k.total_bytes > cap:
            return None
        steps = _largest_steps(lambda c: self.report(c, **w).total_bytes, self.ctx4k, at4k.total_bytes, cap,
                               self.max_pos // _CONTEXT_STEP)
        ctx = steps * _CONTEXT_STEP
        why = "full context" if ctx >= self.max_pos else f"KV cache limits the context to {ctx:,}"
        return FitRow(model=self.m.name, precision=fmt, runtime=runtime, strategy="single", max_context=ctx,
                      bytes_at_4k=at4k.total_bytes, tokens_per_s=self.speed(at4k), reason=why)

    def llamacpp_offload(self) -> FitRow | None:
        """Q4_K_M with MoE experts (or layers) in host RAM, as llama.cpp's --fit would place them."""
        spec = self.m.spec
        cap = budget(self.gpu, "llamacpp") - FIT_TARGET
        w: dict[str, object] = {"runtime": "llamacpp", "quant": "Q4_K_M", "precision": None}
        knob, lo, hi = ("n_cpu_moe", 1, spec.num_layers) if spec.is_moe else ("n_gpu_layers", 0, spec.num_layers)
        def fits(k: int) -> bool:
            return self.report(self.ctx4k, **w, **{knob: k}).total_bytes <= cap

        if spec.is_moe:  # smallest k of layers whose experts go to host RAM
            if not fits(hi):
                return None
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
        else:  # largest -ngl that fits
            if not fits(1):
                return None
            lo, hi = 1, spec.num_layers
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
        r = self.report(self.ctx4k, **w, **{knob: lo})
        if spec.is_moe:
            cpu = active_expert_bytes(r) * lo // spec.num_layers
            what = f"experts of the first {lo}/{spec.num_layers} layers in host RAM (--n-cpu-moe {lo})"
        else:
            cpu = max(bytes_read_per_step(r) - r.component("weights") - r.component("kv_cache"), 0)
            what = f"-ngl {lo}: {lo - 1}/{spec.num_layers} layers on the GPU, the rest in host RAM"
        return FitRow(model=self.m.name, precision="Q4_K_M", runtime="llamacpp",
                      strategy="expert_offload" if spec.is_moe else "offload", max_context=None,
                      bytes_at_4k=r.total_bytes, host_bytes=r.host_bytes, tokens_per_s=self.speed(r, cpu),
                      reason=f"{what}; {r.host_bytes / GB:.1f} GB in host RAM")

    def transformers_rows(self) -> list[FitRow]:
        rows = []
        for prec in TRANSFORMERS_PRECISIONS:
            w: dict[str, object] = {"runtime": "transformers", "precision": prec, "quant": None}
            row = self.resident("transformers", prec, w)
            if row is not None:
                rows.append(row)
                continue
            try:
                r = self.report(_CONTEXT_STEP, **w)
            except LlmMemError as e:
                rows.append(FitRow(model=self.m.name, precision=prec, strategy="none", max_context=None,
                                   bytes_at_4k=None, reason=e.one_line()))
                continue
            stream = r.weights.largest_unit_bytes + r.component("runtime_overhead")
            ok = stream <= budget(self.gpu, "transformers")
            sec = r.weights.bytes / (DEFAULT_DISK_GBPS * GB)
            rows.append(FitRow(model=self.m.name, precision=prec, strategy="streaming" if ok else "none",
                               max_context=None, bytes_at_4k=None, tokens_per_s=1 / sec if ok else None,
                               reason=(f"only by layer streaming (largest piece {stream / GB:.1f} GB, {sec:.0f} s per "
                                       "token from disk)" if ok else "too large even for layer streaming")))
        return rows

    def rows(self) -> list[FitRow]:
        out: list[FitRow] = []
        for q in GGUF_LADDER:  # the most bits that fit whole
            row = self.resident("llamacpp", q, {"runtime": "llamacpp", "quant": q, "precision": None})
            if row is not None:
                out.append(row)
                break
        else:
            off = self.llamacpp_offload()
            if off is not None:
                out.append(off)
        # vLLM refuses bf16 below compute capability 8.0 (llm_mem.runtimes.vllm.without_bf16): fp16 there
        half = "fp16" if self.gpu.native_bf16 is False else "bf16"
        vllm: list[tuple[str, dict[str, object]]] = [(half, {"precision": half})]
        if self.gpu.native_fp8:
            vllm.append(("fp8", {"precision": "fp8"}))
        bundled = find_bundled(self.m.name)
        if bundled is not None and quantized_checkpoint(bundled.id, "awq") is not None:
            vllm.append(("awq", {"quant": "awq"}))
        for fmt, w in vllm:
            row = self.resident("vllm", fmt, {"runtime": "vllm", "quant": None, "precision": None, **w})
            if row is not None:
                out.append(row)
                break
        out += self.transformers_rows()
        out.sort(key=lambda r: (r.strategy != "single" or (r.max_context or 0) < self.ctx4k,
                                _STRATEGY_ORDER[r.strategy], -_BITS.get(r.precision, 0), -(r.tokens_per_s or 0)))
        if out and out[0].strategy != "none":
            out[0] = out[0].model_copy(update={"pick": True})
        return out


def fit_table(gpu: Gpu, count: int | None, workload: Workload, cpu_gbps: float = DEFAULT_CPU_GBPS) -> FitTable:
    """Every bundled model: what a user of this device would run, best first."""
    n = count or 1
    base = workload
    rows: list[FitRow] = []
    for entry in registry():
        m = ResolvedModel(name=entry.id, spec=parse_config(load_bundled_config(entry)),
                          source=Source(kind="bundled", location=entry.file))
        rows += _Model(m, gpu, base, cpu_gbps).rows()
    return FitTable(gpu=gpu.id, count=n, budget_bytes=budget(gpu, "transformers"), runtime="any", rows=rows)
