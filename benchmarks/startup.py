"""Start-up benchmark: `llm-mem estimate` on a bundled model vs a bare `python -c pass`.

    python benchmarks/startup.py [--runs 15]

Budgets (issue 12): `estimate` on a bundled model within 15x the bare interpreter, `plan --gpu 8GB`
over every bundled model within 20x. Imports of typer, rich and pydantic alone cost about 10x, so
everything else is imported lazily. Prints medians and the ratios, and writes
benchmarks/startup_result.txt.

Each command runs once untimed first, with bytecode writing allowed (PYTHONDONTWRITEBYTECODE unset):
what a user has after `pip install`, which compiles the package's .pyc files. Without it every run
would recompile ~90 modules (~60 ms) and measure the compiler, not llm-mem.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

FLOOR = """
import typer, pydantic
from rich.console import Console
from rich.table import Table
class Row(pydantic.BaseModel):
    name: str
    bytes: int
app = typer.Typer()
@app.command()
def estimate(model: str, json_out: bool = typer.Option(False, "--json")) -> None:
    rows = [Row(name=n, bytes=b) for n, b in (("weights", 16), ("kv_cache", 1), ("overhead", 1))]
    t = Table("component", "GB")
    for r in rows:
        t.add_row(r.name, str(r.bytes))
    Console().print(t)
@app.command()
def other() -> None:
    pass
app(["estimate", "x"])
"""
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import typer, rich, pydantic": [sys.executable, "-c", "import typer, rich.console, pydantic"],
    # The least any program on this stack pays for what `estimate` does: a typer command, one pydantic model
    # validated, a rich table printed. Pydantic's first model class imports its schema machinery
    # (pydantic._internal._generate_schema, pydantic.types, plugin._loader -> importlib.metadata).
    "stack floor (typer+model+table)": [sys.executable, "-c", FLOOR],
    "llm-mem estimate (table)": [sys.executable, "-m", "llm_mem", "estimate", "meta-llama/Llama-3.1-8B"],
    "llm-mem estimate --json": [sys.executable, "-m", "llm_mem", "estimate", "llama-3.1-405b", "--precision",
                                "int4", "--json"],
}
# issue #6: `plan --gpu 8GB` over every bundled model x 3 precisions "answers in under a second"
PLAN_FIT = [sys.executable, "-m", "llm_mem", "plan", "--gpu", "8GB", "--json"]


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ESTIMATE_BUDGET = 15  # x python -c pass (issue 12)
PLAN_FIT_BUDGET = 20


def median_seconds(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    base = None
    lines = []
    for name, cmd in CASES.items():
        t = median_seconds(cmd, args.runs)
        base = base or t
        lines.append(f"{name:32s} {t * 1000:8.1f} ms  {t / base:5.1f}x")
    worst = max(float(line.split()[-1].rstrip("x")) for line in lines[3:])
    lines.append(f"estimate budget {ESTIMATE_BUDGET}x: {'OK' if worst <= ESTIMATE_BUDGET else 'OVER'} "
                 f"(worst {worst:.1f}x), median of {args.runs} runs")
    t = median_seconds(PLAN_FIT, max(3, args.runs // 3))
    assert base is not None
    ratio = t / base
    lines.append(f"{'llm-mem plan --gpu 8GB (all models)':32s} {t * 1000:8.1f} ms  {ratio:5.1f}x  "
                 f"(budget {PLAN_FIT_BUDGET}x: {'OK' if ratio <= PLAN_FIT_BUDGET else 'OVER'})")
    text = "\n".join(lines)
    print(text)
    (Path(__file__).parent / "startup_result.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
