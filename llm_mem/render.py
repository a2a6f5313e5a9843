"""Human output (rich tables). The only module that imports rich besides emit's spinner; JSON output
is the pydantic models' own dump, never hand-written. Every string that comes from data (model
names, config fields, notes) is escaped, so nothing a config says is read as rich markup."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llm_mem.errors import visible
from llm_mem.units import GB, GIB, fmt_gb, fmt_gib

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from llm_mem.check import CheckReport
    from llm_mem.planner import Plan
    from llm_mem.planner.fit import FitTable
    from llm_mem.report import Report
    from llm_mem.results import GpuList, LargestFit, ModelList, PrecisionComparison


def console(stderr: bool = False) -> Console:
    """A rich console; width fixed when not a terminal so piped output is stable."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here (the code of a check that does not fit): let llm_mem.emit end quietly instead
            raise BrokenPipeError

    c = _Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not c.is_terminal:  # piped: a fixed, readable width instead of rich's 80-column default
        c = _Console(stderr=stderr, highlight=False, soft_wrap=False, width=120)
    return c


def esc(value: Any) -> str:
    """A data value as text that rich prints literally: markup escaped, and control characters (an ESC
    sequence in a file name or a GGUF string would drive the terminal, a CR overwrite the line) shown as
    ``\\x1b``; only newlines are kept (the launch snippets span lines)."""
    from rich.markup import escape

    return escape(visible(str(value), keep_newlines=True))



def _num(n: int | float) -> str:
    """Bytes as a bare GB figure for a column already labelled GB."""
    return f"{n / GB:,.2f}"


def _num_gib(n: int | float) -> str:
    return f"{n / GIB:,.2f}"


def _table(title: str, columns: list[str], *, caption: str | None = None, right: tuple[str, ...] = ()) -> Table:
    from rich.table import Table

    t = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold", justify="right" if c in right else "left")
    return t


def render(result: Any, out: Console | None = None) -> None:
    """Render any command result as rich tables on stdout. Dispatched on the result's class name, so
    rendering an estimate never imports the planner, the catalog or check (start-up time)."""
    out = out or console()
    kind = type(result).__name__
    renderers: dict[str, Callable[[Any, Console], None]] = {
        "Report": render_report, "PrecisionComparison": render_side_by_side, "Plan": render_plan,
        "LargestFit": render_largest, "FitTable": render_fit_table, "ModelList": render_models,
        "GpuList": render_gpus, "CheckReport": render_check, "Sweep": render_sweep}
    if kind not in renderers:  # pragma: no cover - every command's result is handled here
        raise TypeError(f"no renderer for {kind}")
    renderers[kind](result, out)
    if kind == "Report" and result.verify is not None:
        from llm_mem.verify import render_verify

        render_verify(result, out)


def _workload_line(r: Report) -> str:
    w = r.workload
    if w.train:
        parts = [f"train {w.train}", f"batch {w.batch}", f"seq {w.context:,}", f"optimizer {w.optimizer}",
                 f"mixed precision {w.mixed_precision}"]
        if w.grad_checkpointing:
            parts.append("gradient checkpointing")
        if w.trainer is not None:  # the --trainer preset and the frameworks' switches that are on (issue 17)
            parts.append(f"{w.trainer} recipe")
        parts += [label for name, label in (("fused_ce", "fused CE"), ("chunked_ce", "chunked CE"),
                                            ("activation_offloading", "activation offloading"),
                                            ("optimizer_in_bwd", "optimizer in backward")) if getattr(w, name)]
        t, c = w.tensor_model_parallel_size, w.context_parallel_size
        if t * c > 1:  # Megatron-LM's layout (llm_mem.estimators.megatron)
            grid = [f"TP {t}" + (" + SP" if w.sequence_parallel else "")] * (t > 1) + [f"CP {c}"] * (c > 1)
            parts.append(f"Megatron {' x '.join(grid)} x DP {w.gpus // (t * c)}"
                         + (", distributed optimizer" if w.zero else ""))
        elif w.zero:
            offload = f", offload {w.offload}" if w.offload != "none" else ""
            parts.append(f"ZeRO-{w.zero} over {w.gpus} GPUs{offload}")
        if w.fsdp is not None:  # FSDP2 and RL settings (llm_mem.estimators.fsdp, rl)
            group = f", shard groups of {w.shard_group}" if w.fsdp == "hybrid" else ""
            parts.append(f"FSDP2 {w.fsdp} over {w.gpus} GPUs{group}" + (", CPU offload" if w.fsdp_offload else ""))
        if w.num_generations:
            parts.append(f"{w.num_generations} generations per prompt")
        if w.beta is not None:
            parts.append(f"beta {w.beta:g}")
    else:
        e = r.engine
        parts = [f"inference on {e.version if e else w.runtime}", f"context {w.context:,} tokens", f"batch {w.batch}",
                 f"KV {w.kv_dtype}"]
        if e is not None and e.attention:
            parts.append(f"attention {e.attention}")
        if e is not None and e.flash_attn is not None:
            parts.append(f"flash attention {'on' if e.flash_attn else 'off'}")
        if e is not None and e.runtime == "vllm":
            parts.append(f"max_num_seqs {e.max_num_seqs}, max_num_batched_tokens {e.max_num_batched_tokens}")
            if e.tensor_parallel_size * e.pipeline_parallel_size * e.data_parallel_size > 1:
                parts.append(f"TP {e.tensor_parallel_size} x PP {e.pipeline_parallel_size} x DP "
                             f"{e.data_parallel_size}" + (" + EP" if e.enable_expert_parallel else ""))
    return ", ".join(parts)


def render_report(r: Report, out: Console) -> None:
    """The breakdown table for one report, with parameters, KV figures, notes and warnings."""
    src = f"{r.source.kind}: {r.source.location}" + (f" ({r.source.note})" if r.source.note else "")
    t = _table(f"{esc(r.model)}  [dim]({esc(src)})[/dim]",
               ["component", "GB (10^9 B)", "GiB (2^30 B)", "share", "± band", "what"],
               caption=esc(_workload_line(r)), right=("GB (10^9 B)", "GiB (2^30 B)", "share", "± band"))
    for c in r.components:
        share = 100 * c.bytes / r.total_bytes if r.total_bytes else 0
        band = f"±{100 * (c.high - c.bytes) / c.bytes:.0f}%" if c.bytes else ""
        t.add_row(c.name, _num(c.bytes), _num_gib(c.bytes), f"{share:.1f}%", band, esc(c.note or ""))
    if r.overlap_bytes:  # training: the step's largest moment, not the sum (estimate_training.gradient_overlap)
        t.add_row("[dim]not live together[/dim]", _num(-r.overlap_bytes), _num_gib(-r.overlap_bytes),
                  f"{-100 * r.overlap_bytes / r.total_bytes:.1f}%" if r.total_bytes else "", "",
                  "the total is the step's largest moment: gradients and a recomputed layer arrive as the saved "
                  "activations and logits are freed")
    t.add_section()
    scope = " per GPU" if r.per_gpu else ""
    t.add_row(f"[bold]total{scope}[/bold]", f"[bold]{_num(r.total_bytes)}[/bold]",
              f"[bold]{_num_gib(r.total_bytes)}[/bold]", "100%", "",
              f"range {_num(r.total_low_bytes)}-{_num(r.total_high_bytes)} GB")
    out.print(t)
    p = r.parameters
    line = f"parameters: {p.total:,} total"
    if p.active != p.total:
        line += f", {p.active:,} active per token"
    line += f"; embedding {p.embedding:,}; lm_head {p.lm_head:,}" + (" (tied)" if p.lm_head == 0 else "")
    if p.multimodal:
        line += f"; vision/audio towers and projector {p.multimodal:,}"
    out.print(line)
    out.print(f"weights: {esc(r.weights.label)}; largest layer {fmt_gb(r.weights.largest_layer_bytes)}, "
              f"largest single piece {fmt_gb(r.weights.largest_unit_bytes)}")
    kv = r.kv_cache
    out.print(f"KV cache: {kv.bytes_per_token:,} bytes/token; {fmt_gib(kv.bytes_per_1k_tokens)} "
              f"({fmt_gb(kv.bytes_per_1k_tokens)}) per 1k tokens, {kv.dtype}")
    if r.host_bytes:
        out.print(f"host RAM: {fmt_gb(r.host_bytes)} (layers, KV or optimizer states kept off the GPU)")
    if r.capacity is not None:
        cap = r.capacity
        gpu = r.engine.gpu if r.engine is not None and r.engine.gpu else "the GPU"
        out.print(f"on {esc(gpu)}: budget {fmt_gib(cap.budget_bytes)} of {fmt_gib(cap.device_total_bytes)}; available "
                  f"KV cache memory {fmt_gib(cap.available_kv_bytes)}; KV cache size {cap.kv_pool_tokens:,} tokens; "
                  f"maximum concurrency for {r.workload.context:,} tokens per request: {cap.max_concurrency:.2f}x")
    _notes(out, r.notes, r.warnings)


def _notes(out: Console, notes: list[str], warnings: list[str] = ()) -> None:  # type: ignore[assignment]
    for n in notes:
        out.print(f"[dim]note:[/dim] {esc(n)}")
    for m in warnings:
        out.print(f"[yellow]warning:[/yellow] {esc(m)}")


def render_side_by_side(cmp: PrecisionComparison, out: Console) -> None:
    """`--precision all`: one column per precision, a row per component, totals in GB and GiB."""
    reports = list(cmp.precisions.items())
    first = reports[0][1]
    t = _table(f"{esc(first.model)}  [dim]({first.source.kind})[/dim]", ["component (GB)", *cmp.precisions],
               caption=esc(_workload_line(first)), right=tuple(cmp.precisions))
    names: list[str] = []
    for _, r in reports:
        names += [c.name for c in r.components if c.name not in names]
    for name in names:
        t.add_row(name, *[_num(r.component(name)) for _, r in reports])
    t.add_section()
    t.add_row("[bold]total GB[/bold]", *[f"[bold]{_num(r.total_bytes)}[/bold]" for _, r in reports])
    t.add_row("total GiB", *[_num_gib(r.total_bytes) for _, r in reports])
    out.print(t)
    for label, r in reports:
        out.print(f"[dim]{label}:[/dim] {esc(r.weights.label)}")


def render_models(models: ModelList, out: Console) -> None:
    """The bundled models with their aliases."""
    rows = models.root
    t = _table(f"{len(rows)} bundled models", ["id", "aliases / same architecture", "parameters", "config"],
               right=("parameters",))
    for m in rows:
        t.add_row(esc(m.id), esc(", ".join(m.aliases + m.also)), f"{m.parameters / 1e9:,.2f} B", esc(m.provenance))
    out.print(t)


def render_gpus(gpus: GpuList, out: Console) -> None:
    """The catalog, memory per device."""
    t = _table(f"{len(gpus.devices)} devices (memory per device)",
               ["id", "memory GiB", "usable GiB", "bandwidth GB/s", "bf16 TFLOPS", "node", "aliases"],
               right=("memory GiB", "usable GiB", "bandwidth GB/s", "bf16 TFLOPS", "node"))
    for g in gpus.devices:
        t.add_row(esc(g.id), f"{g.memory_bytes / GIB:g}", f"{g.usable_bytes / GIB:.1f}", str(g.bandwidth_gbps or "?"),
                  str(g.tflops.get("bf16", "?")), str(g.node_size or "?"), esc(", ".join(g.aliases)))
    out.print(t)


def _plan_line(p: Plan) -> str:
    w = p.workload
    return (f"{w.precision or w.quant or 'checkpoint dtype'}, context {w.context:,}, batch {w.batch}"
            + (f", train {w.train}" if w.train else f", {w.runtime}"))


def render_plan(p: Plan, out: Console) -> None:
    """The planner's options table, the recommendation and its launch hints."""
    cols = ["strategy", "gpu", "GPUs", "per GPU GB", "budget GB", "fits", "tokens/s", "why"]
    t = _table(f"{esc(p.model)}: {p.total_bytes / GB:,.1f} GB needed in one place  [dim]({esc(_plan_line(p))})[/dim]",
               cols, right=("GPUs", "per GPU GB", "budget GB", "tokens/s"))
    for o in p.options:
        tps = "" if o.tokens_per_s is None else (f"{o.tokens_per_s:,.1f}" if o.tokens_per_s >= 1
                                                  else f"{1 / o.tokens_per_s:,.1f} s/token")
        gpus = f"{o.gpus}" + (f" ({o.nodes} nodes)" if o.nodes > 1 else "")
        fits = {"fits": "[green]yes[/green]", "borderline": "[yellow]borderline[/yellow]", "no": "[red]no[/red]"}
        t.add_row(o.strategy, esc(o.gpu), gpus, _num(o.per_gpu_bytes), _num(o.budget_bytes), fits[o.verdict], tps,
                  esc(o.reason))
    out.print(t)
    r = p.recommended
    if r is None:
        out.print("[red]nothing fits[/red]: see the reasons above")
    else:
        tag = " [yellow](borderline: the margin is inside the estimate's error band)[/yellow]" \
            if r.verdict == "borderline" else ""
        out.print(f"[bold]recommended:[/bold] {r.strategy} on {r.gpus} x {esc(r.gpu)}: {esc(r.reason)}{tag}")
        for hint in r.launch:
            if "\n" in hint:  # a Python snippet
                out.print("  " + esc(hint).replace("\n", "\n  "))
            else:
                out.print(f"  [dim]$[/dim] {esc(hint)}")
        for a in r.assumptions:
            out.print(f"  [dim]assumes[/dim] {esc(a)}")
        _train_time(r, out)
    _notes(out, p.notes)


def _train_time(o: Any, out: Console) -> None:
    """A training option's throughput and time (llm_mem.planner.train_time), with what it assumes."""
    t = o.train_time
    if t is None:
        return
    hours = "" if t.hours is None else (f": {t.tokens:,} tokens in {t.hours:,.1f} h ({t.hours / 24:,.1f} days)"
                                        if t.hours >= 48 else f": {t.tokens:,} tokens in {t.hours:,.1f} h")
    out.print(f"[bold]training speed:[/bold] {t.tokens_per_s:,.0f} tokens/s on {t.gpus} GPUs{hours}"
              + ("" if t.tokens else " (--train-tokens N for the time)"))
    for a in t.assumptions:
        out.print(f"  [dim]assumes[/dim] {esc(a)}")


def render_largest(r: LargestFit, out: Console) -> None:
    """`plan --max-context|--max-batch`: the largest value, then the plan at it."""
    if r.largest == 0 or r.plan is None:
        out.print(f"{esc(r.model)} does not fit resident on {esc(r.gpu)} even at {r.field} 1")
        return
    if r.limit:
        out.print(f"largest {r.field} that fits resident on {esc(r.gpu)}: at least {r.largest:,} "
                  f"(the search stops at {esc(r.limit)}; memory is not yet the limit)")
    else:
        out.print(f"largest {r.field} that fits resident on {esc(r.gpu)}: {r.largest:,}")
    render_plan(r.plan, out)


def render_fit_table(table: FitTable, out: Console) -> None:
    """`plan --gpu X` without a model: per model what to run (its first row, marked), then the alternatives."""
    t = _table(f"What fits on {esc(table.gpu)} ({_num(table.budget_bytes)} GB usable, {table.runtime}); "
               "per model the first row is the pick",
               ["model", "runtime", "weights", "how", "max context", "GB @4k", "tok/s", "notes"],
               right=("max context", "GB @4k", "tok/s"))
    last = None
    for r in table.rows:
        name = "" if r.model == last else esc(r.model)
        last = r.model
        speed = "-" if not r.tokens_per_s else (f"{r.tokens_per_s:,.1f}" if r.tokens_per_s >= 1
                                                  else f"{1 / r.tokens_per_s:,.0f} s/tok")
        t.add_row(f"[bold]{name}[/bold]" if r.pick else name, esc(r.runtime), esc(r.precision),
                  ("[bold]" + r.strategy + "[/bold]") if r.pick else r.strategy,
                  f"{r.max_context:,}" if r.max_context else "-", _num(r.bytes_at_4k) if r.bytes_at_4k else "-",
                  speed, esc(r.reason))
    out.print(t)


def render_check(report: CheckReport, out: Console) -> None:
    """`llm-mem check`: one row per entry, then each entry's reason."""

    def gb(n: int | None) -> str:
        return "-" if n is None else _num(n)

    colour = {"pass": "green", "fail": "red", "error": "yellow"}
    t = _table(f"llm-mem check{' ' + esc(report.file) if report.file else ''}: {report.passed} passed, "
               f"{report.failed} failed, {report.errors} errors  [dim](sizes in GB = 10^9 bytes, per GPU)[/dim]",
               ["status", "check", "model", "GPUs", "strategy", "needs GB", "budget GB", "free GB", "headroom GB"])
    for r in report.results:
        free = None if r.per_gpu_bytes is None or r.budget_bytes is None else r.budget_bytes - r.per_gpu_bytes
        t.add_row(f"[{colour[r.status]}]{r.status}[/{colour[r.status]}]", esc(r.name), esc(r.model),
                  f"{r.count} x {esc(r.gpu)}", r.strategy or "-", gb(r.per_gpu_bytes), gb(r.budget_bytes),
                  gb(free) if free is None or free >= 0 else f"short {_num(-free)}",  # free memory is never < 0
                  gb(r.headroom_bytes))
    out.print(t)
    for r in report.results:
        out.print(f"[{colour[r.status]}]{r.status}[/{colour[r.status]}] {esc(r.name)}: {esc(r.reason)}")


def render_sweep(s: Any, out: Console) -> None:
    """`plan --sweep`: a stacked bar per point, the budget mark, where each strategy stops fitting."""
    from llm_mem.planner.sweep import ascii_chart

    out.print(f"{esc(s.model)} on {s.gpus} x {esc(s.gpu)} ({s.runtime}): memory per GPU by {s.field} "
              "(GB = 10^9 bytes)")
    for line in ascii_chart(s):
        out.print(line)
    for strategy, stop in s.stops.items():
        out.print(f"  {strategy}: " + (f"fits up to {s.field} {stop:,}" if stop else "never fits"))
    if s.plot:
        out.print(f"chart written to {esc(s.plot)}")
