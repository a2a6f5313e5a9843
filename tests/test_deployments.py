"""Deployment benchmark as a regression test: `llm-mem plan` against published deployments.

Runs benchmarks/deployments/run.py in-process (the real CLI through typer's CliRunner, offline) and
checks that the agreement count is the one committed in benchmarks/deployments/results.json, so a
planner change that loses (or gains) a fact shows up here, and that a few key facts hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1] / "benchmarks" / "deployments"


@pytest.fixture(scope="module")
def bench(script_loader):
    return script_loader(FOLDER / "run.py", "deployments_run")


@pytest.fixture(scope="module")
def results(bench):
    return {r.id: r for r in bench.evaluate()}


def test_agreement_count_matches_committed_results(bench, results):
    committed = json.loads((FOLDER / "results.json").read_text())["summary"]
    agree = sorted(i for i, r in results.items() if r.agree)
    assert len(results) == committed["facts"]
    assert len(agree) == committed["agree"], (
        f"{len(agree)}/{len(results)} facts agree, results.json says {committed['agree']}; "
        f"disagreeing now: {sorted(set(results) - set(agree))}, committed: {committed['disagree']} "
        "(re-run `python benchmarks/deployments/run.py` if the change is intended)")


def test_every_disagreement_is_diagnosed(bench, results):
    s = bench.summary(list(results.values()))
    assert not s["undiagnosed"], f"disagreements without a diagnosis in run.py DIAGNOSES: {s['undiagnosed']}"


def test_llama_8b_bf16_fits_one_l4_on_vllm(results):
    r = results["F26"]
    assert r.agree and r.got.fits and r.got.strategy == "single" and r.got.gpus == 1


def test_deepseek_v3_on_8_h200_is_tp8_with_expert_parallel(results):
    r = results["F08"]
    assert r.agree and r.got.gpus == 8
    assert r.got.layout["tensor_parallel_size"] == 8
    assert r.got.layout["pipeline_parallel_size"] == 1
    assert r.got.layout["enable_expert_parallel"] is True


def test_70b_awq_on_two_3090s_is_tensor_parallel_2(results):
    r = results["F52"]
    assert r.agree and r.got.strategy == "tensor_parallel"
    assert r.got.layout["tensor_parallel_size"] == 2
