"""The `llm-mem` command line: option declarations, one request per command, one call into
`llm_mem.api`, one `emit`. No arithmetic, no HTTP, no rendering here.

Annotations are evaluated (no ``from __future__ import annotations``): typer reads them, and the
workload options are declared once in llm_mem.cli_options and added to each command's signature.
"""

import functools
import os
import sys

# llm-mem uses no pydantic plugins: without this, building the first model class scans every installed
# distribution's entry points for them (pydantic/plugin/_loader.py), a cost paid at every start-up.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError

from llm_mem import __version__
from llm_mem.choices import KvDtype, Precision, Runtime
from llm_mem.cli_options import (
    CatalogOpt,
    ConfigOpt,
    GpuOpt,
    JsonOpt,
    MissingShardsOpt,
    ModelArg,
    RevisionOpt,
    TokenOpt,
    VerifyOpt,
    choice_option,
    with_workload_options,
)
from llm_mem.errors import LlmMemError, SettingError, UsageError, visible
from llm_mem.settings import validation_problem
from llm_mem.workload import field_flag

try:  # typer >= 0.26 vendors click as typer._click; older typer uses click itself
    from typer import _click as click  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - depends on the installed typer
    import click  # type: ignore[no-redef,unused-ignore]

# Exit codes, decided here and in llm_mem.emit: 0 answered/fits, 1 a check does not fit, 2 bad input.
INTERNAL_ERROR_EXIT = 3


class OneLineGroup(typer.core.TyperGroup):  # type: ignore[misc,unused-ignore]
    """Usage errors (unknown option, bad choice) as one line on stderr and exit 2, never a box."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.pop("standalone_mode", True)
        try:
            rv = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.ClickException as err:
            if not standalone:
                raise
            click.echo(f"error: {visible(' '.join(err.format_message().split()))}", err=True)
            sys.exit(err.exit_code)
        except typer.Abort:
            if not standalone:
                raise
            click.echo("error: aborted", err=True)
            sys.exit(1)
        if standalone:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


app = typer.Typer(
    name="llm-mem", cls=OneLineGroup, no_args_is_help=True, add_completion=True, rich_markup_mode="markdown",
    help="How much memory an LLM needs, and on what hardware it fits.\n\n"
         "Sizes are printed in GB (10^9 bytes) and GiB (2^30 bytes), always labelled.",
)


def runs(fn: Callable[..., Any]) -> Callable[..., None]:
    """Run a command body that returns (result, as_json): emit it and exit with its code. Expected
    errors become one line on stderr and exit 2; anything else exit 3 (LLM_MEM_DEBUG=1: traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from llm_mem.emit import emit

        try:
            try:
                result, as_json = fn(*args, **kwargs)
            except SettingError as err:
                raise err.placed(field_flag(err.field)) from None
            except ValidationError as exc:  # a request model's own field rules (e.g. --host-ram > 0)
                field, msg = validation_problem(exc)
                raise UsageError(f"{field_flag(field)}: {msg}" if field else msg) from None
            code = emit(result, as_json=as_json)
        except LlmMemError as err:
            typer.echo(f"error: {err.one_line()}", err=True)
            raise typer.Exit(err.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as err:
            if os.environ.get("LLM_MEM_DEBUG"):
                raise
            typer.echo(f"error: internal error {type(err).__name__}: {visible(str(err)[:200])} "
                       "(LLM_MEM_DEBUG=1 shows a traceback)", err=True)
            raise typer.Exit(INTERNAL_ERROR_EXIT) from None
        if code:
            raise typer.Exit(code)

    return wrapper


def _model_ref(model: str, revision: Optional[str], token: Optional[str], config: Optional[Path],
               allow_missing_shards: bool = False) -> Any:
    from llm_mem.requests import ModelRef

    try:
        return ModelRef(name=model, revision=revision, token=token, config=config,
                        allow_missing_shards=allow_missing_shards)
    except ValidationError as exc:
        field, msg = validation_problem(exc)
        raise UsageError(f"{'MODEL' if field == 'name' else field_flag(field)}: {msg}") from None


def _progress(as_json: bool) -> Any:
    if as_json:
        return None
    from llm_mem.emit import spinner

    return spinner


def _sweep_field(value: Any) -> str:
    v = str(value).strip().lower()
    if v not in ("context", "batch"):
        raise typer.BadParameter(f"sweep {str(value)[:40]!r}: choose context or batch")
    return v


def _split_precision(settings: dict[str, Any]) -> bool:
    """`--precision all` is a comparison, not a workload: take it out and say so."""
    if settings.get("precision") is Precision.all:
        settings["precision"] = None
        return True
    return False


@app.command()
@runs
@with_workload_options
def estimate(
    model: ModelArg, gpu: GpuOpt = None, catalog: CatalogOpt = None, json_out: JsonOpt = False,
    revision: RevisionOpt = None, token: TokenOpt = None, config: ConfigOpt = None, verify: VerifyOpt = False,
    allow_missing_shards: MissingShardsOpt = False, *, settings: dict[str, Any],
) -> tuple[Any, bool]:
    """Memory breakdown of MODEL for inference or training.

    Examples:

    * `llm-mem estimate meta-llama/Llama-3.1-8B --precision bf16 --context 32k --batch 4`
    * `llm-mem estimate llama-3.1-405b --precision int4`
    * `llm-mem estimate Qwen/Qwen3-30B-A3B --precision all`
    * `llm-mem estimate ./my-model/ --train lora --lora-rank 16 --seq 2048 --grad-checkpointing`
    * `llm-mem estimate meta-llama/Llama-3.1-8B --runtime vllm --gpu L4 --max-model-len 8k`
    * `llm-mem estimate Qwen/Qwen3-30B-A3B --quant Q4_K_M -ngl 30 --n-cpu-moe 12`
    """
    from llm_mem.api import run_estimate
    from llm_mem.requests import EstimateRequest
    from llm_mem.settings import build_workload

    compare = _split_precision(settings)
    req = EstimateRequest(model=_model_ref(model, revision, token, config, allow_missing_shards),
                          workload=build_workload(settings), compare_precisions=compare, verify=verify, gpu=gpu,
                          catalog=catalog)
    return run_estimate(req, _progress(json_out)), json_out


@app.command()
@runs
def models(json_out: JsonOpt = False) -> tuple[Any, bool]:
    """List the bundled models (usable offline) and their aliases.

    Example: `llm-mem models`
    """
    from llm_mem.api import run_models

    return run_models(), json_out


@app.command()
@runs
@with_workload_options
def plan(
    model: Annotated[Optional[str], typer.Argument(help="Model to place; omit with --gpu to list what fits.")] = None,
    gpu: GpuOpt = None, catalog: CatalogOpt = None,
    max_context: Annotated[bool, typer.Option("--max-context", help="Find the largest context that fits.")] = False,
    max_batch: Annotated[bool, typer.Option("--max-batch", help="Find the largest batch that fits.")] = False,
    disk_gbps: Annotated[Optional[float], typer.Option(
        "--disk-gbps", help="Disk read GB/s for layer streaming (default 3.5).")] = None,
    cpu_gbps: Annotated[Optional[float], typer.Option(
        "--cpu-gbps", help="Host memory GB/s for offloaded layers (default 76.8).")] = None,
    host_ram: Annotated[Optional[str], typer.Option(
        "--host-ram", help="Host RAM for offload (default: this machine's).")] = None,
    sweep: Annotated[Optional[str], typer.Option(
        "--sweep", parser=_sweep_field, metavar="[context|batch]",
        help="Chart memory against context or batch on the --gpu, with the budget line.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="With --sweep: also write the chart as SVG.")] = None,
    train_tokens: Annotated[Optional[str], typer.Option(
        "--train-tokens", help="With --train: tokens to train on (1B = 10^9, 500M, 15T), for the time.")] = None,
    mfu: Annotated[Optional[float], typer.Option(
        "--mfu", help="With --train: model FLOPs utilization assumed (default 0.4, Llama 3's 38-43%).")] = None,
    json_out: JsonOpt = False, revision: RevisionOpt = None, token: TokenOpt = None, config: ConfigOpt = None,
    verify: VerifyOpt = False, allow_missing_shards: MissingShardsOpt = False, *, settings: dict[str, Any],
) -> tuple[Any, bool]:
    """Which hardware runs MODEL: single GPU, tensor parallel, multi-node, CPU offload or layer streaming.

    Examples:

    * `llm-mem plan meta-llama/Llama-3.1-405B --precision int4 --gpu 8GB`
    * `llm-mem plan meta-llama/Llama-3.1-405B --precision bf16`
    * `llm-mem plan --gpu 8GB` (which bundled models fit, at which precision and context)
    * `llm-mem plan huggyllama/llama-7b --gpu T4 --precision fp16 --max-context`
    * `llm-mem plan meta-llama/Llama-3.1-8B --gpu L4 --runtime vllm --sweep context --plot mem.svg`
    * `llm-mem plan meta-llama/Llama-2-70b-hf --quant Q4_K_M --gpu 4090,3090` (mixed cards, one machine)
    """
    from llm_mem.api import run_plan
    from llm_mem.requests import PlanRequest
    from llm_mem.settings import build_workload
    from llm_mem.units import parse_size

    if _split_precision(settings):
        raise UsageError("--precision all compares precisions in `estimate`", "plan one precision at a time")
    if model is None:  # the model's own options, given to the fit table, would be silently ignored
        unread = next((f for f, v in (("--config", config), ("--revision", revision), ("--token", token),
                                       ("--allow-missing-shards", allow_missing_shards)) if v), None)
        if unread is not None:
            raise UsageError(f"{unread} reads a MODEL; the fit table (plan --gpu without a MODEL) has none",
                             "name the MODEL, or drop it")
    req = PlanRequest.model_validate({
        "model": _model_ref(model, revision, token, config, allow_missing_shards) if model is not None else None,
        "workload": build_workload(settings), "gpu": gpu, "catalog": catalog, "max_context": max_context,
        "max_batch": max_batch, "host_ram": parse_size(host_ram) if host_ram else None, "verify": verify,
        "sweep": sweep, "plot": plot, **_train_time_settings(train_tokens, mfu),
        **{k: v for k, v in (("disk_gbps", disk_gbps), ("cpu_gbps", cpu_gbps)) if v is not None}})
    return run_plan(req, _progress(json_out)), json_out


def _train_time_settings(train_tokens: str | None, mfu: float | None) -> dict[str, Any]:
    """plan's --train-tokens (decimal suffixes, llm_mem.planner.train_time) and --mfu, when given."""
    out: dict[str, Any] = {}
    if train_tokens is not None:
        from llm_mem.planner.train_time import parse_train_tokens

        out["train_tokens"] = parse_train_tokens(train_tokens)
    if mfu is not None:
        out["mfu"] = mfu
    return out


@app.command("gpus")
@runs
def gpus_cmd(catalog: CatalogOpt = None, json_out: JsonOpt = False) -> tuple[Any, bool]:
    """List the GPU catalog (gpu_catalog.yaml, plus --catalog FILE).

    Example: `llm-mem gpus`
    """
    from llm_mem.api import run_gpus
    from llm_mem.requests import GpusRequest

    return run_gpus(GpusRequest(catalog=catalog)), json_out


@app.command()
@runs
def check(
    file: Annotated[Optional[Path], typer.Argument(
        help="Check file (YAML, docs/check.md). Omit it and give --model and --gpu for one check.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Single check: Hub id, alias or path.")] = None,
    gpu: Annotated[Optional[str], typer.Option(
        "--gpu", help="Single check: the GPUs it must fit on, e.g. L4 (one) or 2xL4 (tensor parallel).")] = None,
    precision: Annotated[Optional[str], choice_option(Precision, "precision", "--precision", "-p",
                                                help="fp32, bf16, fp16, fp8, int8, int4 (= bnb nf4).")] = None,
    quant: Annotated[Optional[str], typer.Option(
        "--quant", "-q", help="nf4, fp4, gptq, awq, mxfp4, fp8, int8, or a GGUF type (Q4_K_M...).")] = None,
    context: Annotated[Optional[str], typer.Option(
        "--context", "--seq", "-c", help="Tokens per sequence: 4096, 32k, 128k (default 4096).")] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", "-b", help="Sequences in the batch (default 1).")] = None,
    kv_dtype: Annotated[Optional[str], choice_option(
        KvDtype, "KV cache dtype", "--kv-dtype", help="KV cache dtype (default bf16).")] = None,
    runtime: Annotated[Optional[str], choice_option(
        Runtime, "runtime", "--runtime", help="transformers (default), vllm or llamacpp.")] = None,
    min_headroom: Annotated[Optional[str], typer.Option(
        "--min-headroom", help="Memory that must stay free per GPU: 10% (of the budget) or 2GB.")] = None,
    allow: Annotated[Optional[list[str]], typer.Option(
        "--allow", help="Also pass with this strategy: offload or streaming (repeatable).")] = None,
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Run only the entry with this name (repeatable).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="The CheckReport as JSON on stdout, nothing else.")] = False,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Also write JUnit XML to this file.")] = None,
    catalog: CatalogOpt = None,
) -> tuple[Any, bool]:
    """Sizing checks for CI: does each deployment still fit, with headroom? Exit 0 when all pass,
    1 when one does not fit, 2 on a bad file or a model that cannot be read (e.g. Hub offline).

    Examples:

    * `llm-mem check docs/sizing.yaml`
    * `llm-mem check docs/sizing.yaml --only llama-8b-int4-on-l4 --junit report.xml`
    * `llm-mem check --model meta-llama/Llama-3.1-8B --gpu L4 --precision int4 --context 32k --min-headroom 10%`
    * `llm-mem check --model llama-3.1-70b --gpu L4 --precision int4 --allow streaming --json`
    """
    from llm_mem.api import run_check
    from llm_mem.emit import write_junit
    from llm_mem.requests import CheckRequest

    single = {"model": model, "gpu": gpu, "precision": precision, "quant": quant, "context": context,
              "batch": batch, "kv_dtype": kv_dtype, "runtime": runtime, "min_headroom": min_headroom,
              "allow": allow or None}
    req = CheckRequest(file=file, single=single, only=tuple(only or ()), junit=junit, catalog=catalog)
    report = run_check(req)
    if junit is not None:
        write_junit(report, junit)
    return report, json_out


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llm-mem {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """llm-mem: will this model fit, and on what?"""


def main() -> None:
    """Console-script entry. Typer turns every registered command into a click command before parsing
    (estimate, plan and check carry ~70 options each: ~15 ms); a run names one command, so only that one
    is built, under the same root callback (click's lazily loaded subcommands pattern). Anything else
    (help, --version, completion) goes through the full app."""
    name = sys.argv[1] if len(sys.argv) > 1 else None
    picked = [c for c in app.registered_commands if c.callback is not None and
              (c.name or c.callback.__name__.replace("_", "-")) == name]
    if not picked:
        app()
        return
    one = typer.Typer(name=app.info.name, cls=OneLineGroup, add_completion=False, rich_markup_mode="markdown",
                      help=app.info.help)
    one.registered_commands = picked
    one.registered_callback = app.registered_callback
    one()
