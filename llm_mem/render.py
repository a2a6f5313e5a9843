"""Human output (rich tables). The only module besides cli.py that imports rich; JSON output is
the pydantic models' own dump, never hand-written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_mem.units import GB, GIB

if TYPE_CHECKING:
    from rich.console import Console

    from llm_mem.report import Report


def console(stderr: bool = False) -> Console:
    """A rich console; width fixed when not a terminal so piped output is stable."""
    from rich.console import Console

    c = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not c.is_terminal:  # piped: a fixed, readable width instead of rich's 80-column default
        c = Console(stderr=stderr, highlight=False, soft_wrap=False, width=120)
    return c


def _gb(n: int) -> str:
    return f"{n / GB:,.2f}"


def _gib(n: int) -> str:
    return f"{n / GIB:,.2f}"


def _workload_line(r: Report) -> str:
    w = r.workload
    if w.train:
        parts = [f"train {w.train}", f"batch {w.batch}", f"seq {w.context:,}", f"optimizer {w.optimizer}",
                 f"mixed precision {w.mixed_precision}"]
        if w.grad_checkpointing:
            parts.append("gradient checkpointing")
        if w.zero:
            parts.append(f"ZeRO-{w.zero} over {w.gpus} GPUs" + (f", offload {w.offload}" if w.offload != "none" else ""))
    else:
        parts = [f"inference on {w.runtime}", f"context {w.context:,} tokens", f"batch {w.batch}",
                 f"KV {w.kv_dtype}", f"attention {w.attention}"]
    return ", ".join(parts)


def render_report(r: Report, out: Console) -> None:
    """The breakdown table for one report, with parameters, KV figures, notes and warnings."""
    from rich.table import Table

    src = f"{r.source.kind}: {r.source.location}" + (f" ({r.source.note})" if r.source.note else "")
    title = f"{r.model}  [dim]({src})[/dim]"
    t = Table(title=title, caption=_workload_line(r), title_justify="left", caption_justify="left")
    t.add_column("component")
    t.add_column("GB (10^9 B)", justify="right")
    t.add_column("GiB (2^30 B)", justify="right")
    t.add_column("share", justify="right")
    t.add_column("± band", justify="right")
    t.add_column("what", overflow="fold")
    for c in r.components:
        share = 100 * c.bytes / r.total_bytes if r.total_bytes else 0
        band = f"±{100 * (c.high - c.bytes) / c.bytes:.0f}%" if c.bytes else ""
        t.add_row(c.name, _gb(c.bytes), _gib(c.bytes), f"{share:.1f}%", band, c.note or "")
    t.add_section()
    scope = " per GPU" if r.per_gpu else ""
    t.add_row(f"[bold]total{scope}[/bold]", f"[bold]{_gb(r.total_bytes)}[/bold]", f"[bold]{_gib(r.total_bytes)}[/bold]",
              "100%", "", f"range {_gb(r.total_low_bytes)}-{_gb(r.total_high_bytes)} GB")
    out.print(t)
    p = r.parameters
    line = f"parameters: {p.total:,} total"
    if p.active != p.total:
        line += f", {p.active:,} active per token"
    line += f"; embedding {p.embedding:,}; lm_head {p.lm_head:,}" + (" (tied)" if p.lm_head == 0 else "")
    out.print(line)
    out.print(f"weights: {r.weights.label}; largest layer {_gb(r.weights.largest_layer_bytes)} GB, "
              f"largest single piece {_gb(r.weights.largest_unit_bytes)} GB")
    kv = r.kv_cache
    out.print(f"KV cache: {kv.bytes_per_token:,} bytes/token; {_gib(kv.bytes_per_1k_tokens)} GiB "
              f"({_gb(kv.bytes_per_1k_tokens)} GB) per 1k tokens, {kv.dtype}")
    if r.host_bytes:
        out.print(f"host RAM for offload: {_gb(r.host_bytes)} GB")
    for n in r.notes:
        out.print(f"[dim]note:[/dim] {n}")
    for wmsg in r.warnings:
        out.print(f"[yellow]warning:[/yellow] {wmsg}")


def render_side_by_side(reports: list[tuple[str, Report]], out: Console) -> None:
    """`--precision all`: one column per precision, a row per component, totals in GB and GiB."""
    from rich.table import Table

    first = reports[0][1]
    t = Table(title=f"{first.model}  [dim]({first.source.kind})[/dim]", caption=_workload_line(first),
              title_justify="left", caption_justify="left")
    t.add_column("component (GB)")
    for label, _ in reports:
        t.add_column(label, justify="right")
    names: list[str] = []
    for _, r in reports:
        names += [c.name for c in r.components if c.name not in names]
    for name in names:
        t.add_row(name, *[_gb(r.component(name)) for _, r in reports])
    t.add_section()
    t.add_row("[bold]total GB[/bold]", *[f"[bold]{_gb(r.total_bytes)}[/bold]" for _, r in reports])
    t.add_row("total GiB", *[_gib(r.total_bytes) for _, r in reports])
    out.print(t)
    for label, r in reports:
        out.print(f"[dim]{label}:[/dim] {r.weights.label}")


def render_rows(title: str, columns: list[str], rows: list[list[Any]], out: Console) -> None:
    """A plain table (models, gpus, plan options, check results)."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*[str(x) for x in row])
    out.print(t)


def render_plan(p: Any, out: Console) -> None:
    """The planner's options table, the recommendation and its launch hints."""
    from rich.table import Table

    t = Table(title=f"{p.model}: {p.total_bytes / GB:,.1f} GB needed in one place  [dim]({_plan_line(p)})[/dim]",
              title_justify="left")
    for col in ("strategy", "gpu", "GPUs", "per GPU GB", "budget GB", "fits", "tokens/s", "why"):
        t.add_column(col, overflow="fold", justify="right" if col in ("GPUs", "per GPU GB", "budget GB", "tokens/s")
                     else "left")
    for o in p.options:
        tps = "" if o.tokens_per_s is None else (f"{o.tokens_per_s:,.1f}" if o.tokens_per_s >= 1
                                                  else f"{1 / o.tokens_per_s:,.1f} s/token")
        gpus = f"{o.gpus}" + (f" ({o.nodes} nodes)" if o.nodes > 1 else "")
        t.add_row(o.strategy, o.gpu, gpus, _gb(o.per_gpu_bytes), _gb(o.budget_bytes),
                  "[green]yes[/green]" if o.fits else "[red]no[/red]", tps, o.reason)
    out.print(t)
    r = p.recommended
    if r is None:
        out.print("[red]nothing fits[/red]: see the reasons above")
    else:
        out.print(f"[bold]recommended:[/bold] {r.strategy} on {r.gpus} x {r.gpu}: {r.reason}")
        for hint in r.launch:
            out.print(f"  [dim]$[/dim] {hint}")
        for a in r.assumptions:
            out.print(f"  [dim]assumes[/dim] {a}")
    for n in p.notes:
        out.print(f"[dim]note:[/dim] {n}")


def _plan_line(p: Any) -> str:
    w = p.workload
    return (f"{w.precision or w.quant or 'checkpoint dtype'}, context {w.context:,}, batch {w.batch}"
            + (f", train {w.train}" if w.train else f", {w.runtime}"))


def render_fit_table(table: Any, out: Console) -> None:
    """`plan --gpu X` without a model: what fits, at which precision and context."""
    rows = [[r.model, r.precision, r.strategy, f"{r.max_context:,}" if r.max_context else "-",
             _gb(r.bytes_at_4k) if r.bytes_at_4k else "-", r.reason] for r in table.rows]
    render_rows(f"What fits on {table.gpu} ({_gb(table.budget_bytes)} GB usable, {table.runtime})",
                ["model", "precision", "how", "largest context", "GB at 4k", "notes"], rows, out)
