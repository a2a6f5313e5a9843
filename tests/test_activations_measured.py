"""The training-activation formula against bytes autograd really saves (committed measurements,
benchmarks/activations/measured.json, made by measure_saved.py with transformers on CPU)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "activations"))
import compare

ROWS = compare.rows()


def test_measurements_cover_dense_moe_and_checkpointing():
    models = {r["model"] for r in ROWS}
    assert {"openai-community/gpt2", "facebook/opt-125m", "Qwen/Qwen2.5-0.5B", "meta-llama/Llama-3.2-1B",
            "Qwen/Qwen3-30B-A3B"} <= models
    assert {r["checkpointing"] for r in ROWS} == {True, False} and {r["attn"] for r in ROWS} == {"eager", "sdpa"}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['model']}-b{r['batch']}-s{r['seq']}-{r['attn']}-ck{int(r['checkpointing'])}")
def test_within_10_percent(row):
    assert row["ours_layers"] == pytest.approx(row["measured_layers"], rel=0.10)
    assert row["ours_total"] == pytest.approx(row["measured_total"], rel=0.10)
