"""The commands as functions: a typed request in, a typed result out. The CLI calls these and
renders what they return (`llm_mem.emit`); library callers use them the same way. No I/O but the
model source's and the catalog's, no rendering."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from llm_mem.choices import Precision
from llm_mem.requests import CheckRequest, EstimateRequest, GpusRequest, ModelRef, PlanRequest
from llm_mem.workload import MAX_GPUS, resolve_workload

if TYPE_CHECKING:
    from llm_mem.check import CheckReport
    from llm_mem.planner import Plan
    from llm_mem.planner.fit import FitTable
    from llm_mem.planner.sweep import Sweep
    from llm_mem.report import Report
    from llm_mem.results import GpuList, LargestFit, ModelList, PrecisionComparison
    from llm_mem.spec import ResolvedModel
    from llm_mem.workload import Workload

#: A context manager shown while a slow step runs (the CLI's spinner), given what is being done.
Progress = Callable[[str], AbstractContextManager[object]]
#: `--precision all` compares these.
COMPARED_PRECISIONS = (Precision.fp32, Precision.bf16, Precision.fp8, Precision.int8, Precision.int4)


def resolve(ref: ModelRef, progress: Progress | None = None, quant: str | None = None) -> ResolvedModel:
    """The model a reference names (local path, Ollama, bundled, or the Hub). ``quant`` (the workload's
    --quant) picks the file of a GGUF repo or folder, as llama.cpp's -hf repo:QUANT does."""
    from llm_mem.sources import resolve_model

    token = ref.token.get_secret_value() if ref.token is not None else None
    return resolve_model(ref.name, config=ref.config, revision=ref.revision, token=token, progress=progress,
                         quant=quant, allow_missing_shards=ref.allow_missing_shards)


def _is_gguf(model: ResolvedModel) -> bool:
    return model.checkpoint is not None and model.checkpoint.format == "gguf"


def _estimate_layout(w: Workload, count: int | None) -> tuple[Workload, str | None]:
    """`estimate --gpu NxGPU`: on vLLM the N GPUs are its tensor-parallel group (what a plain
    `vllm serve -tp N` does); elsewhere estimate sizes one process and the count is refused."""
    from llm_mem.choices import Runtime
    from llm_mem.errors import UsageError

    if count is None or count == 1:
        return w, None
    if w.runtime is not Runtime.vllm:
        raise UsageError(f"estimate sizes one GPU; {count} GPUs are a placement question",
                         f"use `llm-mem plan MODEL --gpu {count}xGPU`, or --runtime vllm to size one "
                         "tensor-parallel rank")
    ranks = w.tensor_parallel_size * w.pipeline_parallel_size * w.data_parallel_size
    if ranks == 1:
        return w.replace(tensor_parallel_size=count), f"{count} GPUs: sized as --tensor-parallel-size {count}"
    if ranks != count:
        raise UsageError(f"--gpu gives {count} GPUs but the layout uses {ranks} (tp x pp x dp)",
                         "make them agree, or drop the count from --gpu")
    return w, None


def run_estimate(req: EstimateRequest, progress: Progress | None = None) -> Report | PrecisionComparison:
    """The breakdown of one model and workload, or one per precision with `compare_precisions`."""
    from llm_mem.estimate import estimate

    gpu, count = None, None
    if req.gpu is not None:
        from llm_mem.catalog import load_catalog, resolve_gpu

        r = resolve_gpu(req.gpu, load_catalog(req.catalog))
        gpu, count = r.gpu, r.count
    model = resolve(req.model, progress, req.workload.quant)
    w, layout_note = _estimate_layout(resolve_workload(req.workload, model.spec, gguf_file=_is_gguf(model)), count)
    if req.compare_precisions:
        from llm_mem.results import PrecisionComparison

        return PrecisionComparison(model=model.name, precisions={
            str(p): estimate(model, w.replace(precision=p), gpu) for p in COMPARED_PRECISIONS})
    report = estimate(model, w, gpu)
    if layout_note:
        report = report.model_copy(update={"notes": [layout_note, *report.notes]})
    if req.verify:
        from llm_mem.verify import run_verify

        report = run_verify(model, report)
    return report


def run_plan(req: PlanRequest, progress: Progress | None = None) -> Plan | FitTable | LargestFit | Sweep:
    """Where a model runs (or, with no model, what runs on one GPU)."""
    from llm_mem import planner as pl
    from llm_mem.catalog import load_catalog, resolve_gpu

    cat = load_catalog(req.catalog)
    if req.model is None:
        from llm_mem.planner.fit import fit_table

        assert req.gpu is not None  # PlanRequest's validator: a model, a GPU, or both
        r = resolve_gpu(req.gpu, cat)
        return fit_table(r.gpu, r.count, req.workload, req.cpu_gbps)
    model = resolve(req.model, progress, req.workload.quant)
    w = resolve_workload(req.workload, model.spec, gguf_file=_is_gguf(model))
    if req.gpu and "," in req.gpu:  # mixed GPUs in one machine: one pool
        pool = []
        for part in req.gpu.split(","):
            r = resolve_gpu(part, cat)
            pool += [r.gpu] * (r.count or 1)
            if len(pool) > MAX_GPUS:
                from llm_mem.errors import UsageError

                raise UsageError(f"--gpu names more than {MAX_GPUS:,} devices in one pool")
        targets: list[pl.Target] = [pool]
        reqs = []
    else:
        reqs = [resolve_gpu(req.gpu, cat)] if req.gpu else [resolve_gpu(g, cat) for g in pl.DEFAULT_PLAN_GPUS]
        targets = [(r.gpu, r.count) for r in reqs]
        counted = next((r for r in reqs if r.count is not None), None)
        if counted is not None and w.given("gpus") and counted.count != w.gpus:
            from llm_mem.errors import UsageError

            raise UsageError(f"--gpus {w.gpus} and --gpu {req.gpu} name different GPU counts",
                             f"give the count once: --gpu {counted.count}x{counted.gpu.id} (the data-parallel GPUs)")
    if req.sweep is not None:
        from llm_mem.planner.sweep import svg_chart, sweep

        gpu, count = targets[0] if isinstance(targets[0], tuple) else (targets[0][0], len(targets[0]))
        result = sweep(model, w, gpu, count, req.sweep, req.host_ram)
        if req.plot is not None:
            from llm_mem.sources.configfile import write_regular

            write_regular(req.plot, svg_chart(result), "--plot")
            result = result.model_copy(update={"plot": str(req.plot)})
        return result
    report = None
    if req.verify:
        from llm_mem.estimate import estimate
        from llm_mem.verify import run_verify

        report = run_verify(model, estimate(model, w))
    if req.max_context or req.max_batch:
        from llm_mem.results import LargestFit

        field = "context" if req.max_context else "batch"
        if req.max_context:
            upper = limit = model.spec.max_position_embeddings or pl.UNKNOWN_MAX_CONTEXT
            why = ("the model's max_position_embeddings" if model.spec.max_position_embeddings
                   else "the search's upper end for a model that names no maximum")
        else:  # start at MAX_BATCH_SEARCH, and keep doubling while it fits, up to the workload's bound
            from llm_mem.workload import MAX_BATCH

            upper, limit, why = pl.MAX_BATCH_SEARCH, MAX_BATCH, "the largest --batch llm-mem accepts"
        if not isinstance(targets[0], tuple):
            from llm_mem.errors import UsageError

            raise UsageError("--max-context/--max-batch search one GPU kind", "give --gpu NxGPU, not a mix")
        gpu, count = targets[0]
        value, best = pl.largest_fitting(model, w, gpu, count, field, upper, limit)
        return LargestFit(model=model.name, gpu=gpu.id, field=field, largest=value, plan=best,
                          limit=why if value == limit else None)
    host_ram = req.host_ram if req.host_ram is not None else pl.host_ram_bytes()
    placed = pl.plan(model, w, targets, req.disk_gbps, req.cpu_gbps, report=report, host_ram=host_ram)
    if w.train is not None:  # tokens/s and hours of each training option (llm_mem.planner.train_time)
        from llm_mem.planner.train_time import DEFAULT_MFU, attach

        gpus = [g for t in targets for g in (t if isinstance(t, list) else [t[0]])]
        placed = attach(placed, model.spec, gpus, req.train_tokens, req.mfu or DEFAULT_MFU)
    notes = [r.note for r in reqs if r.note]
    return placed.model_copy(update={"notes": notes + placed.notes}) if notes else placed


def run_models() -> ModelList:
    """The bundled models with their aliases and parameter counts."""
    from llm_mem.params import count_parameters
    from llm_mem.results import ModelEntry, ModelList
    from llm_mem.sources.bundled import load_bundled_config, registry
    from llm_mem.sources.parse import parse_config

    return ModelList([ModelEntry(id=m.id, aliases=m.aliases, also=m.also, provenance=m.provenance,
                                 parameters=count_parameters(parse_config(load_bundled_config(m))).total)
                      for m in registry()])


def run_gpus(req: GpusRequest) -> GpuList:
    """The GPU catalog (shipped, plus a user file)."""
    from llm_mem.catalog import load_catalog
    from llm_mem.results import GpuList

    cat = load_catalog(req.catalog)
    return GpuList(devices=list(cat.devices), files=list(cat.files))


def run_check(req: CheckRequest, progress: Progress | None = None) -> CheckReport:
    """Evaluate a check file (or one check given by flags)."""
    from llm_mem.catalog import load_catalog
    from llm_mem.check import load_checks, run_checks, select, single_check

    cat = load_catalog(req.catalog)
    checks = load_checks(req.file, cat) if req.file is not None else single_check(req.single, cat)
    return run_checks(select(checks, list(req.only)))
