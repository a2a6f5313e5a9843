"""The `llm-mem` command line: parse options, call the core, render. No arithmetic, no HTTP."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from llm_mem import __version__
from llm_mem.errors import LlmMemError, UsageError

app = typer.Typer(
    name="llm-mem", no_args_is_help=True, add_completion=True, rich_markup_mode="markdown",
    help="How much memory an LLM needs, and on what hardware it fits.\n\n"
         "Sizes are printed in GB (10^9 bytes) and GiB (2^30 bytes), always labelled.",
)

# ---- shared options (declared once, reused by estimate / plan / check) --------------------------
ModelArg = Annotated[str, typer.Argument(help="Hub id (org/name), bundled alias, config.json or model folder.")]
PrecisionOpt = Annotated[Optional[str], typer.Option(
    "--precision", "-p", help="fp32, bf16, fp16, fp8, int8, int4 (= bnb nf4), or `all` (estimate only).")]
QuantOpt = Annotated[Optional[str], typer.Option(
    "--quant", "-q", help="Format: nf4, fp4, gptq, awq, mxfp4, fp8, int8, or a GGUF type (Q8_0, Q4_K_M, IQ2_XS...).")]
ContextOpt = Annotated[Optional[str], typer.Option(
    "--context", "--seq", "-c", help="Tokens per sequence: 4096, 32k, 128k (default: 4096, or the model's maximum if smaller).")]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", help="Sequences in the batch.")]
KvDtypeOpt = Annotated[str, typer.Option("--kv-dtype", help="KV cache dtype: bf16, fp16, fp8, fp32, q8_0, q4_0.")]
AttentionOpt = Annotated[str, typer.Option("--attention", help="eager, sdpa or flash.")]
RuntimeOpt = Annotated[str, typer.Option("--runtime", help="transformers, vllm or llamacpp.")]
LogitsOpt = Annotated[str, typer.Option("--logits", help="last (generate) or full (evaluation, prompt logprobs).")]
TrainOpt = Annotated[Optional[str], typer.Option("--train", help="full, lora or qlora.")]
LoraRankOpt = Annotated[int, typer.Option("--lora-rank", help="LoRA rank r.")]
LoraTargetsOpt = Annotated[Optional[str], typer.Option(
    "--lora-targets", help="Comma-separated modules (default q,k,v,o,gate,up,down projections; `all-linear`).")]
OptimizerOpt = Annotated[str, typer.Option(
    "--optimizer", help="adamw, adamw-8bit, paged-adamw-8bit, adafactor, sgd, sgd-momentum, lion.")]
MixedOpt = Annotated[str, typer.Option("--mixed-precision", help="bf16, fp16 (fp32 master weights) or none.")]
CkptOpt = Annotated[bool, typer.Option("--grad-checkpointing/--no-grad-checkpointing", help="Keep only layer inputs.")]
ZeroOpt = Annotated[int, typer.Option("--zero", help="DeepSpeed ZeRO stage 0-3.")]
GpusOpt = Annotated[int, typer.Option("--gpus", help="Data-parallel GPUs (training; components become per GPU).")]
OffloadOpt = Annotated[str, typer.Option("--offload", help="none, optimizer or parameters (ZeRO-Offload).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout; notes go to stderr.")]
RevisionOpt = Annotated[Optional[str], typer.Option("--revision", help="Hub branch, tag or commit.")]
TokenOpt = Annotated[Optional[str], typer.Option("--token", help="Hub token (default: HF_TOKEN or `hf auth login`).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Read this config.json instead of the Hub.")]
VerifyOpt = Annotated[bool, typer.Option("--verify", help="Measure one real layer on the local GPU (or CPU).")]
GpuOpt = Annotated[Optional[str], typer.Option(
    "--gpu", help="A catalog GPU (H100, 4090), a count (4xA100-80GB), a size (8GB, 24GiB) or `local`.")]
CatalogOpt = Annotated[Optional[Path], typer.Option("--catalog", help="YAML file adding or overriding GPUs.")]


def handles_errors(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn expected errors into one line on stderr and their exit code (2), never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except LlmMemError as err:
            typer.echo(f"error: {err.one_line()}", err=True)
            raise typer.Exit(err.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as err:
            if os.environ.get("LLM_MEM_DEBUG"):
                raise
            typer.echo(f"error: internal error {type(err).__name__}: {err} (LLM_MEM_DEBUG=1 shows a traceback)",
                       err=True)
            raise typer.Exit(3) from None

    return wrapper


def _choice(value: str, choices: tuple[str, ...], flag: str) -> str:
    v = value.strip().lower()
    if v not in choices:
        raise UsageError(f"{flag} {value!r} is not one of {', '.join(choices)}")
    return v


DEFAULT_CONTEXT = 4096  # stated in every report; never silently the model's 128k maximum


def default_context(workload, resolved, given: Optional[str]):
    """Without --context: 4096 tokens, or the model's max_position_embeddings when smaller."""
    mx = resolved.spec.max_position_embeddings
    if given is None and mx and mx < workload.context:
        return workload.model_copy(update={"context": mx})
    return workload


def build_workload(precision: Optional[str], quant: Optional[str], context: str, batch: int, kv_dtype: str,
                   attention: str, runtime: str, logits: str, train: Optional[str] = None, lora_rank: int = 16,
                   lora_targets: Optional[str] = None, optimizer: str = "adamw", mixed_precision: str = "bf16",
                   grad_checkpointing: bool = False, zero: int = 0, gpus: int = 1, offload: str = "none"):
    """Validate raw option strings into a Workload (UsageError on nonsense)."""
    from llm_mem.formats import get_format
    from llm_mem.report import Workload
    from llm_mem.units import parse_tokens

    if precision and precision.lower() != "all":
        get_format(precision)
    if quant:
        get_format(quant)
    if batch <= 0:
        raise UsageError(f"--batch must be positive, got {batch}")
    kw = dict(
        precision=precision, quant=quant, context=parse_tokens(context or DEFAULT_CONTEXT), batch=batch, kv_dtype=kv_dtype.lower(),
        attention=_choice(attention, ("eager", "sdpa", "flash"), "--attention"),
        runtime=_choice(runtime, ("transformers", "vllm", "llamacpp"), "--runtime"),
        logits=_choice(logits, ("last", "full"), "--logits"),
        train=_choice(train, ("full", "lora", "qlora"), "--train") if train else None,
        lora_rank=lora_rank, optimizer=optimizer.lower(),
        mixed_precision=_choice(mixed_precision, ("bf16", "fp16", "none"), "--mixed-precision"),
        grad_checkpointing=grad_checkpointing, zero=zero, gpus=gpus,
        offload=_choice(offload, ("none", "optimizer", "parameters"), "--offload"),
    )
    if lora_targets:
        kw["lora_targets"] = tuple(x.strip() for x in lora_targets.split(",") if x.strip())
    return Workload(**kw)


@app.command()
@handles_errors
def estimate(
    model: ModelArg,
    precision: PrecisionOpt = None, quant: QuantOpt = None, context: ContextOpt = None, batch: BatchOpt = 1,
    kv_dtype: KvDtypeOpt = "bf16", attention: AttentionOpt = "sdpa", runtime: RuntimeOpt = "transformers",
    logits: LogitsOpt = "last", train: TrainOpt = None, lora_rank: LoraRankOpt = 16,
    lora_targets: LoraTargetsOpt = None, optimizer: OptimizerOpt = "adamw", mixed_precision: MixedOpt = "bf16",
    grad_checkpointing: CkptOpt = False, zero: ZeroOpt = 0, gpus: GpusOpt = 1, offload: OffloadOpt = "none",
    json_out: JsonOpt = False, revision: RevisionOpt = None, token: TokenOpt = None, config: ConfigOpt = None,
    verify: VerifyOpt = False,
) -> None:
    """Memory breakdown of MODEL for inference or training.

    Examples:

    * `llm-mem estimate meta-llama/Llama-3.1-8B --precision bf16 --context 32k --batch 4`
    * `llm-mem estimate llama-3.1-405b --precision int4`
    * `llm-mem estimate Qwen/Qwen3-30B-A3B --precision all`
    * `llm-mem estimate ./my-model/ --train lora --lora-rank 16 --seq 2048 --grad-checkpointing`
    """
    from llm_mem.estimate import estimate as run_estimate
    from llm_mem.render import console, render_report, render_side_by_side
    from llm_mem.sources import resolve_model

    w = build_workload(precision, quant, context, batch, kv_dtype, attention, runtime, logits, train, lora_rank,
                       lora_targets, optimizer, mixed_precision, grad_checkpointing, zero, gpus, offload)
    resolved = resolve_model(model, config=config, revision=revision, token=token)
    w = default_context(w, resolved, context)
    if precision and precision.lower() == "all":
        reports = [(p, run_estimate(resolved, w.model_copy(update={"precision": p})))
                   for p in ("fp32", "bf16", "fp8", "int8", "int4")]
        if json_out:
            import json

            typer.echo(json.dumps({"model": resolved.name, "precisions": {
                p: r.model_dump(mode="json") for p, r in reports}}, indent=2))
            return
        render_side_by_side(reports, console())
        return
    report = run_estimate(resolved, w)
    if verify:
        from llm_mem.verify import run_verify

        report = run_verify(resolved, report)
    if json_out:
        err = console(stderr=True)
        for n in report.notes:
            err.print(f"note: {n}")
        for m in report.warnings:
            err.print(f"warning: {m}")
        typer.echo(report.model_dump_json(indent=2))
        return
    render_report(report, console())
    if verify:
        from llm_mem.verify import render_verify

        render_verify(report, console())


@app.command()
@handles_errors
def models(json_out: JsonOpt = False) -> None:
    """List the bundled models (usable offline) and their aliases.

    Example: `llm-mem models`
    """
    from llm_mem.params import count_parameters
    from llm_mem.sources.bundled import load_bundled_config, registry
    from llm_mem.sources.parse import parse_config

    rows = []
    for m in registry():
        total = count_parameters(parse_config(load_bundled_config(m))).total
        rows.append({"id": m.id, "aliases": m.aliases, "also": m.also, "parameters": total,
                     "provenance": m.provenance})
    if json_out:
        import json

        typer.echo(json.dumps(rows, indent=2))
        return
    from llm_mem.render import console, render_rows

    render_rows(f"{len(rows)} bundled models", ["id", "aliases / same architecture", "parameters", "config"],
                [[r["id"], ", ".join(r["aliases"] + r["also"]), f"{r['parameters'] / 1e9:,.2f} B",
                  r["provenance"]] for r in rows], console())


DEFAULT_PLAN_GPUS = ("H100-SXM-80GB", "A100-SXM-80GB", "MI250-2X64GB", "L40S-48GB", "RTX-4090-24GB")


@app.command()
@handles_errors
def plan(
    model: Annotated[Optional[str], typer.Argument(help="Model to place; omit with --gpu to list what fits.")] = None,
    gpu: GpuOpt = None, catalog: CatalogOpt = None,
    precision: PrecisionOpt = None, quant: QuantOpt = None, context: ContextOpt = None, batch: BatchOpt = 1,
    kv_dtype: KvDtypeOpt = "bf16", attention: AttentionOpt = "sdpa", runtime: RuntimeOpt = "transformers",
    logits: LogitsOpt = "last", train: TrainOpt = None, lora_rank: LoraRankOpt = 16,
    lora_targets: LoraTargetsOpt = None, optimizer: OptimizerOpt = "adamw", mixed_precision: MixedOpt = "bf16",
    grad_checkpointing: CkptOpt = False, zero: ZeroOpt = 0, gpus: GpusOpt = 1, offload: OffloadOpt = "none",
    max_context: Annotated[bool, typer.Option("--max-context", help="Find the largest context that fits.")] = False,
    max_batch: Annotated[bool, typer.Option("--max-batch", help="Find the largest batch that fits.")] = False,
    disk_gbps: Annotated[float, typer.Option("--disk-gbps", help="Disk read GB/s for layer streaming.")] = 3.5,
    cpu_gbps: Annotated[float, typer.Option("--cpu-gbps", help="Host memory GB/s for offloaded layers.")] = 76.8,
    host_ram: Annotated[Optional[str], typer.Option("--host-ram", help="Host RAM for offload (default: this machine's).")] = None,
    json_out: JsonOpt = False, revision: RevisionOpt = None, token: TokenOpt = None, config: ConfigOpt = None,
    verify: VerifyOpt = False,
) -> None:
    """Which hardware runs MODEL: single GPU, tensor parallel, multi-node, CPU offload or layer streaming.

    Examples:

    * `llm-mem plan meta-llama/Llama-3.1-405B --precision int4 --gpu 8GB`
    * `llm-mem plan meta-llama/Llama-3.1-405B --precision bf16`
    * `llm-mem plan --gpu 8GB` (which bundled models fit, at which precision and context)
    * `llm-mem plan huggyllama/llama-7b --gpu T4 --precision fp16 --max-context`
    """
    from llm_mem import planner as pl
    from llm_mem.catalog import load_catalog, resolve_gpu
    from llm_mem.render import console, render_plan
    from llm_mem.units import parse_size

    w = build_workload(precision, quant, context, batch, kv_dtype, attention, runtime, logits, train, lora_rank,
                       lora_targets, optimizer, mixed_precision, grad_checkpointing, zero, gpus, offload)
    cat = load_catalog(catalog)
    ram = parse_size(host_ram) if host_ram else pl.host_ram_bytes()
    if model is None:
        if gpu is None:
            raise UsageError("plan needs a MODEL, a --gpu, or both", "e.g. `llm-mem plan --gpu 8GB`")
        from llm_mem.fit import fit_table

        req = resolve_gpu(gpu, cat)
        table = fit_table(req.gpu, req.count, w)
        if json_out:
            typer.echo(table.model_dump_json(indent=2))
        else:
            from llm_mem.render import render_fit_table

            render_fit_table(table, console())
        return
    from llm_mem.sources import resolve_model

    resolved = resolve_model(model, config=config, revision=revision, token=token)
    w = default_context(w, resolved, context)
    reqs = [resolve_gpu(gpu, cat)] if gpu else [resolve_gpu(g, cat) for g in DEFAULT_PLAN_GPUS]
    targets = [(r.gpu, r.count) for r in reqs]
    report = None
    if verify:
        from llm_mem.estimate import estimate as run_estimate
        from llm_mem.verify import run_verify

        report = run_verify(resolved, run_estimate(resolved, w))
    if max_context or max_batch:
        field = "context" if max_context else "batch"
        upper = (resolved.spec.max_position_embeddings or 131072) if max_context else 4096
        value, best = pl.largest_fitting(resolved, w, targets[0][0], targets[0][1], field, upper)
        result = {"model": resolved.name, "gpu": targets[0][0].id, "field": field, "largest": value,
                  "plan": best.model_dump(mode="json") if best else None}
        if json_out:
            import json

            typer.echo(json.dumps(result, indent=2))
        else:
            out = console()
            if value == 0:
                out.print(f"{resolved.name} does not fit resident on {targets[0][0].id} even at {field} 1")
            else:
                out.print(f"largest {field} that fits resident on {targets[0][0].id}: {value:,}")
                render_plan(best, console())
        if value == 0:
            raise typer.Exit(1)
        return
    result_plan = pl.plan(resolved, w, targets, disk_gbps, cpu_gbps, report=report, host_ram=ram)
    notes = [r.note for r in reqs if r.note]
    if notes:
        result_plan = result_plan.model_copy(update={"notes": notes + result_plan.notes})
    if json_out:
        typer.echo(result_plan.model_dump_json(indent=2))
        return
    render_plan(result_plan, console())


@app.command("gpus")
@handles_errors
def gpus_cmd(catalog: CatalogOpt = None, json_out: JsonOpt = False) -> None:
    """List the GPU catalog (gpu_catalog.yaml, plus --catalog FILE).

    Example: `llm-mem gpus`
    """
    from llm_mem.catalog import load_catalog

    cat = load_catalog(catalog)
    if json_out:
        typer.echo(cat.model_dump_json(indent=2, include={"devices"}))
        return
    from llm_mem.render import console, render_rows
    from llm_mem.units import GIB

    rows = [[g.id, f"{g.memory_bytes / GIB:g}", f"{g.usable_bytes / GIB:.1f}", g.bandwidth_gbps or "?",
             g.tflops.get("bf16", "?"), g.node_size or "?", ", ".join(g.aliases)] for g in cat.devices]
    render_rows(f"{len(rows)} devices (memory per device)",
                ["id", "memory GiB", "usable GiB", "bandwidth GB/s", "bf16 TFLOPS", "node", "aliases"], rows, console())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llm-mem {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """llm-mem: will this model fit, and on what?"""


from llm_mem.cli_check import check as _check  # noqa: E402

app.command("check")(handles_errors(_check))


def main() -> None:
    """Console-script entry."""
    app()
