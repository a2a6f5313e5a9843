"""The commands as functions: a typed request in, a typed result out. The CLI calls these and
renders what they return (`llm_mem.emit`); library callers use them the same way. No I/O but the
model source's and the catalog's, no rendering."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from llm_mem.choices import Precision
from llm_mem.requests import CheckRequest, EstimateRequest, GpusRequest, ModelRef, PlanRequest
from llm_mem.workload import resolve_workload

if TYPE_CHECKING:
    from llm_mem.check import CheckReport
    from llm_mem.planner.fit import FitTable
    from llm_mem.planner import Plan
    from llm_mem.report import Report
    from llm_mem.results import GpuList, LargestFit, ModelList, PrecisionComparison
    from llm_mem.spec import ResolvedModel

#: A context manager shown while a slow step runs (the CLI's spinner), given what is being done.
Progress = Callable[[str], AbstractContextManager[object]]
#: `--precision all` compares these.
COMPARED_PRECISIONS = (Precision.fp32, Precision.bf16, Precision.fp8, Precision.int8, Precision.int4)


def resolve(ref: ModelRef, progress: Progress | None = None) -> ResolvedModel:
    """The model a reference names (local path, bundled, or the Hub)."""
    from llm_mem.sources import resolve_model

    token = ref.token.get_secret_value() if ref.token is not None else None
    return resolve_model(ref.name, config=ref.config, revision=ref.revision, token=token, progress=progress)


def run_estimate(req: EstimateRequest, progress: Progress | None = None) -> Report | PrecisionComparison:
    """The breakdown of one model and workload, or one per precision with `compare_precisions`."""
    from llm_mem.estimate import estimate

    gpu = None
    if req.gpu is not None:
        from llm_mem.catalog import load_catalog, resolve_gpu

        gpu = resolve_gpu(req.gpu, load_catalog(req.catalog)).gpu
    model = resolve(req.model, progress)
    w = resolve_workload(req.workload, model.spec)
    if req.compare_precisions:
        from llm_mem.results import PrecisionComparison

        return PrecisionComparison(model=model.name, precisions={
            str(p): estimate(model, w.model_copy(update={"precision": p}), gpu) for p in COMPARED_PRECISIONS})
    report = estimate(model, w, gpu)
    if req.verify:
        from llm_mem.verify import run_verify

        report = run_verify(model, report)
    return report


def run_plan(req: PlanRequest, progress: Progress | None = None) -> Plan | FitTable | LargestFit:
    """Where a model runs (or, with no model, what runs on one GPU)."""
    from llm_mem import planner as pl
    from llm_mem.catalog import load_catalog, resolve_gpu

    cat = load_catalog(req.catalog)
    if req.model is None:
        from llm_mem.planner.fit import fit_table

        assert req.gpu is not None  # PlanRequest's validator: a model, a GPU, or both
        r = resolve_gpu(req.gpu, cat)
        return fit_table(r.gpu, r.count, req.workload)
    model = resolve(req.model, progress)
    w = resolve_workload(req.workload, model.spec)
    reqs = [resolve_gpu(req.gpu, cat)] if req.gpu else [resolve_gpu(g, cat) for g in pl.DEFAULT_PLAN_GPUS]
    targets: list[pl.Target] = [(r.gpu, r.count) for r in reqs]
    report = None
    if req.verify:
        from llm_mem.estimate import estimate
        from llm_mem.verify import run_verify

        report = run_verify(model, estimate(model, w))
    if req.max_context or req.max_batch:
        from llm_mem.results import LargestFit

        field = "context" if req.max_context else "batch"
        upper = (model.spec.max_position_embeddings or pl.UNKNOWN_MAX_CONTEXT) if req.max_context else pl.MAX_BATCH_SEARCH
        value, best = pl.largest_fitting(model, w, targets[0][0], targets[0][1], field, upper)
        return LargestFit(model=model.name, gpu=targets[0][0].id, field=field, largest=value, plan=best)
    host_ram = req.host_ram if req.host_ram is not None else pl.host_ram_bytes()
    result = pl.plan(model, w, targets, req.disk_gbps, req.cpu_gbps, report=report, host_ram=host_ram)
    notes = [r.note for r in reqs if r.note]
    return result.model_copy(update={"notes": notes + result.notes}) if notes else result


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
