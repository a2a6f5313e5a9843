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


# ---- training peaks (issue 17): each case's command states its recipe (--trainer presets, LitGPT's no-AC) ----
@pytest.fixture(scope="module")
def training(bench):
    return bench.evaluate(components=("peak_training", "fit"))


def test_training_peaks_stay_where_the_recipes_put_them(training):
    # committed level (benchmarks/accuracy/RESULTS.md): median 5.3% over 22 published peaks (6.3% before the
    # three-moment peak, torchtune's K/V expansion and its compiled chunked loss; 7.2% over 14 before torchtune's
    # lever rows); the cases above 15% say why in their notes (pre-0.44 bitsandbytes, an init-time reserved peak)
    errs = {r.id: r.error_pct for r in training if r.component == "peak_training"}
    assert len(errs) >= 22
    median = statistics.median(abs(e) for e in errs.values())
    assert median < 5.5, f"peak_training median |error| {median:.2f}%"
    off = {cid for cid, e in errs.items() if abs(e) > 15}
    notes = {r.id: r.note for r in training}
    assert all("OFF" in notes[cid] for cid in off), f"cases above 15% without an OFF note: {sorted(off)}"


def test_fit_boundaries_are_classified(training):
    fits = [r for r in training if r.component == "fit"]
    assert fits and all(r.fits_pred == r.fits_meas for r in fits), [(r.id, r.detail) for r in fits]


def test_longest_trainable_context_against_unsloths_table(bench):
    # committed level (benchmarks/accuracy/RESULTS.md): the "Hugging Face + FA2" column, sized as PEFT's QLoRA
    # recipe, within -6% to +14% from 16 GiB up; Unsloth's column 21-35% long there (part of its per-token cost
    # is not modelled, docs/methodology.md)
    rows = bench.evaluate(components=("max_context",))
    errs = {r.id: r.error_pct for r in rows}
    assert len(errs) == 13
    big = {cid: e for cid, e in errs.items() if not cid.endswith(("-8gb", "-12gb"))}
    assert all(abs(e) < 15 for cid, e in big.items() if "-hf-" in cid), big
    assert all(0 < e < 40 for cid, e in big.items() if "-unsloth-" in cid), big
