"""Start-up benchmark: `llm-mem estimate` on a bundled model vs a bare `python -c pass`.

    python benchmarks/startup.py [--runs 15]

The budget (issue #3): at most 20x the bare interpreter. Imports of typer, rich and pydantic
alone cost about 10x, so everything else is imported lazily. Prints medians and the ratio,
and writes benchmarks/startup_result.txt.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import typer, rich, pydantic": [sys.executable, "-c", "import typer, rich.console, pydantic"],
    "llm-mem estimate (table)": [sys.executable, "-m", "llm_mem", "estimate", "meta-llama/Llama-3.1-8B"],
    "llm-mem estimate --json": [sys.executable, "-m", "llm_mem", "estimate", "llama-3.1-405b", "--precision",
                                "int4", "--json"],
}
# issue #6: `plan --gpu 8GB` over every bundled model x 3 precisions "answers in under a second"
PLAN_FIT = [sys.executable, "-m", "llm_mem", "plan", "--gpu", "8GB", "--json"]


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    worst = max(float(line.split()[-1].rstrip("x")) for line in lines[2:])
    lines.append(f"budget 20x: {'OK' if worst <= 20 else 'OVER'} (worst {worst:.1f}x), median of {args.runs} runs")
    t = median_seconds(PLAN_FIT, max(3, args.runs // 3))
    lines.append(f"{'llm-mem plan --gpu 8GB (all models)':32s} {t * 1000:8.1f} ms  {t / base:5.1f}x  "
                 f"(budget 1 s: {'OK' if t < 1 else 'OVER'})")
    text = "\n".join(lines)
    print(text)
    (Path(__file__).parent / "startup_result.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
