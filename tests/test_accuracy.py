"""Accuracy regression gate (issue #4): weights and KV cache against published measurements.

Runs the core of benchmarks/accuracy/run.py over its weights and kv_cache cases (checkpoint and GGUF
sizes, vLLM "Model loading took", KV bytes for a printed token count) and fails when the median
|error| of either component reaches 3 %. The full benchmark (all components, RESULTS.md) is
`python benchmarks/accuracy/run.py`.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy" / "run.py"


@pytest.fixture(scope="module")
def bench(script_loader):
    return script_loader(RUN, "accuracy_run")


@pytest.fixture(scope="module")
def results(bench):
    return bench.evaluate(components=("weights", "kv_cache"))


@pytest.mark.parametrize("component, at_least", [("weights", 50), ("kv_cache", 4)])
def test_median_error_under_3_percent(results, component, at_least):
    errs = {r.id: r.error_pct for r in results if r.component == component}
    assert len(errs) >= at_least, f"only {len(errs)} {component} cases ran"
    median = statistics.median(abs(e) for e in errs.values())
    worst = sorted(errs.items(), key=lambda kv: -abs(kv[1]))[:5]
    assert median < 3.0, f"{component}: median |error| {median:.2f}% >= 3%; worst: {worst}"


def test_every_case_is_copied_or_skipped_with_a_reason(bench):
    cases = bench.load_cases()
    used = {s.source_case or cid.split("#")[0] for cid, s in bench.SPECS.items()}
    assert used <= set(cases), f"cases missing from benchmarks/accuracy/*.yaml: {sorted(used - set(cases))}"
    assert not (set(cases) - used), "a copied case is not compared"
    assert not (used & set(bench.SKIPPED)), "a case is both compared and skipped"
    assert all(bench.SKIPPED.values())
