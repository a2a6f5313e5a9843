"""Turn-2 benchmark as a regression test: `llm-mem estimate` against more published memory figures.

Runs benchmarks/turn2/run.py in-process (the real CLI through typer's CliRunner, offline) and checks that
the number of cases within 5% is the one committed in benchmarks/turn2/results.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1] / "benchmarks" / "turn2"


@pytest.fixture(scope="module")
def bench(script_loader):
    return script_loader(FOLDER / "run.py", "turn2_run")


@pytest.fixture(scope="module")
def results(bench):
    return bench.evaluate()


def test_within_5_percent_count_matches_committed_results(bench, results):
    committed = json.loads((FOLDER / "results.json").read_text())["summary"]
    s = bench.summary(results)
    assert not [r.id for r in results if r.error], "a case's command failed"
    assert s["cases"] == committed["cases"]
    assert s["within_5pct"] == committed["within_5pct"], (
        f"{s['within_5pct']}/{s['cases']} within 5%, results.json says {committed['within_5pct']}; over 5% now: "
        f"{s['over_5pct']}, committed: {committed['over_5pct']} "
        "(re-run `python benchmarks/turn2/run.py` if the change is intended)")
    assert s["expressible_within_5pct"] == committed["expressible_within_5pct"]


def test_every_case_over_5_percent_is_diagnosed(bench, results):
    assert not bench.summary(results)["undiagnosed"]
