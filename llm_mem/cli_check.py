"""`llm-mem check`: CI sizing checks from a YAML file (or one check from flags). Parsing and rendering
only; the logic is llm_mem/check.py. Imported by cli.py at start-up, so it imports nothing heavy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llm_mem.errors import UsageError

# What a check entry has as a flag (single-check mode); the rest of the format is file-only.
_FLAGS = ("precision", "quant", "context", "batch", "kv_dtype", "runtime", "min_headroom", "allow")


def check(
    file: Annotated[Optional[Path], typer.Argument(
        help="Check file (YAML, docs/check.md). Omit it and give --model and --gpu for one check.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Single check: Hub id, alias or path.")] = None,
    gpu: Annotated[Optional[str], typer.Option(
        "--gpu", help="Single check: the GPUs it must fit on, e.g. L4 (one) or 2xL4 (tensor parallel).")] = None,
    precision: Annotated[Optional[str], typer.Option(
        "--precision", "-p", help="fp32, bf16, fp16, fp8, int8, int4 (= bnb nf4).")] = None,
    quant: Annotated[Optional[str], typer.Option(
        "--quant", "-q", help="nf4, fp4, gptq, awq, mxfp4, fp8, int8, or a GGUF type (Q4_K_M...).")] = None,
    context: Annotated[Optional[str], typer.Option(
        "--context", "--seq", "-c", help="Tokens per sequence: 4096, 32k, 128k (default 4096).")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", "-b", help="Sequences in the batch (default 1).")] = None,
    kv_dtype: Annotated[Optional[str], typer.Option("--kv-dtype", help="KV cache dtype (default bf16).")] = None,
    runtime: Annotated[Optional[str], typer.Option(
        "--runtime", help="transformers (default), vllm or llamacpp.")] = None,
    min_headroom: Annotated[Optional[str], typer.Option(
        "--min-headroom", help="Memory that must stay free per GPU: 10% (of the budget) or 2GB.")] = None,
    allow: Annotated[Optional[list[str]], typer.Option(
        "--allow", help="Also pass with this strategy: offload or streaming (repeatable).")] = None,
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Run only the entry with this name (repeatable).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="The CheckReport as JSON on stdout, nothing else.")] = False,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Also write JUnit XML to this file.")] = None,
    catalog: Annotated[Optional[Path], typer.Option("--catalog", help="YAML file adding or overriding GPUs.")] = None,
) -> None:
    """Sizing checks for CI: does each deployment still fit, with headroom? Exit 0 when all pass,
    1 when one does not fit, 2 on a bad file or a model that cannot be read (e.g. Hub offline).

    Examples:

    * `llm-mem check docs/sizing.yaml`
    * `llm-mem check docs/sizing.yaml --only llama-8b-int4-on-l4 --junit report.xml`
    * `llm-mem check --model meta-llama/Llama-3.1-8B --gpu L4 --precision int4 --context 32k --min-headroom 10%`
    * `llm-mem check --model llama-3.1-70b --gpu L4 --precision int4 --allow streaming --json`
    """
    from llm_mem.catalog import load_catalog
    from llm_mem.check import load_checks, run_checks, select, single_check

    flags = {"precision": precision, "quant": quant, "context": context, "batch": batch, "kv_dtype": kv_dtype,
             "runtime": runtime, "min_headroom": min_headroom, "allow": allow or None}
    cat = load_catalog(catalog)
    if file is not None:
        single = {"model": model, "gpu": gpu, **flags}
        given = [f for f in ("model", "gpu", *_FLAGS) if single[f] is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} is for a single check without a file",
                             f"put `{given[0]}:` in {file}'s entries or defaults")
        checks = load_checks(file, cat)
    else:
        if model is None or gpu is None:
            raise UsageError("check needs a FILE, or --model and --gpu for one check",
                             "e.g. `llm-mem check docs/sizing.yaml` or `llm-mem check --model llama-3.1-8b --gpu L4`")
        checks = single_check({"model": model, "gpu": gpu, **flags}, cat)
    checks = select(checks, list(only or []))
    report = run_checks(checks)

    if junit is not None:
        from llm_mem.check import junit_xml

        try:
            junit.write_text(junit_xml(report), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write --junit {junit}: {exc.strerror or exc}") from None
    for r in report.results:
        if r.status == "error":
            typer.echo(f"error: {r.name}: {r.reason}", err=True)
    if json_out:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _render(report)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _render(report) -> None:  # noqa: ANN001 - a CheckReport; typed loosely to keep imports lazy
    from rich.markup import escape

    from llm_mem.render import console, render_rows
    from llm_mem.units import GB

    def gb(n: int | None) -> str:
        return "-" if n is None else f"{n / GB:,.2f}"

    colour = {"pass": "green", "fail": "red", "error": "yellow"}
    rows = [[f"[{colour[r.status]}]{r.status}[/{colour[r.status]}]", escape(r.name), escape(r.model),
             f"{r.count} x {r.gpu}", r.strategy or "-", gb(r.per_gpu_bytes), gb(r.budget_bytes),
             gb(None if r.per_gpu_bytes is None or r.budget_bytes is None else r.budget_bytes - r.per_gpu_bytes),
             gb(r.headroom_bytes)] for r in report.results]
    out = console()
    render_rows(f"llm-mem check{' ' + escape(report.file) if report.file else ''}: {report.passed} passed, "
                f"{report.failed} failed, {report.errors} errors  [dim](sizes in GB = 10^9 bytes, per GPU)[/dim]",
                ["status", "check", "model", "GPUs", "strategy", "needs GB", "budget GB", "free GB", "headroom GB"],
                rows, out)
    for r in report.results:
        out.print(f"[{colour[r.status]}]{r.status}[/{colour[r.status]}] {escape(r.name)}: {escape(r.reason)}")
