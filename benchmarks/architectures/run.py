"""Architecture coverage: llm-mem's parameter total against transformers' for every model type in the set.

Command (from the repository root; no network, no GPU):

    python benchmarks/architectures/run.py               # both modes, writes RESULTS.md and results.json
    python benchmarks/architectures/run.py --no-write    # print only
    python benchmarks/architectures/run.py --mode native # only the answer without transformers

Data: set.jsonl in this folder, one line per model type: the default config.json of every model type
that transformers 5.24 maps to a causal LM (AutoModelForCausalLM) or an image-text-to-text model
(AutoModelForImageTextToText), and the parameter total of the class it builds on the meta device
(`sum(p.numel() for p in model.parameters())`), made by make_truth.py (a copy of the shared reference
script). unbuildable.jsonl lists the model types whose default config transformers itself cannot build
(they have no truth and are not scored).

Each config goes through `parse_config` (the path every source takes) and `count_parameters`; an
LlmMemError is a refusal (its one line is recorded). Two modes:

* native: the fallback that builds the model with transformers is switched off (what a user without
  the `verify` extra gets);
* fallback: as shipped, with transformers installed (skipped when it is not).

Buckets: exact, within 1%, within 5%, over 5%, refused, crashed (any other exception: a bug).
The target: every type exact or refused in native mode, every type exact in fallback mode.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
COMMAND = "python benchmarks/architectures/run.py"
KINDS = ("causal", "image-text-to-text")
BUCKETS = ("exact", "within 1%", "within 5%", "over 5%", "refused", "crashed")


def load_set() -> list[dict[str, Any]]:
    """The scored cases, one per (kind, model_type)."""
    return [json.loads(line) for line in (HERE / "set.jsonl").read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def native_only() -> Iterator[None]:
    """Switch the transformers fallback off for the block (as if transformers were not installed)."""
    try:
        from llm_mem.sources import meta_count
    except ImportError:  # before the fallback existed: nothing to switch off
        yield
        return
    saved = meta_count.available
    meta_count.available = lambda: False
    try:
        yield
    finally:
        meta_count.available = saved


def score_one(case: dict[str, Any]) -> dict[str, Any]:
    """One case: our total, its error, its bucket; a refusal's or crash's message."""
    from llm_mem.errors import LlmMemError
    from llm_mem.params import count_parameters
    from llm_mem.sources.parse import parse_config

    row: dict[str, Any] = {"kind": case["kind"], "model_type": case["model_type"], "class": case["class"],
                           "truth": case["total"]}
    try:
        spec = parse_config(json.loads(json.dumps(case["config"])))
        ours = count_parameters(spec).total
    except LlmMemError as e:
        row.update(bucket="refused", reason=e.one_line())
        return row
    except Exception as e:
        row.update(bucket="crashed", reason=f"{type(e).__name__}: {e}"[:200])
        return row
    err = (ours - case["total"]) / case["total"] * 100
    bucket = ("exact" if ours == case["total"] else "within 1%" if abs(err) <= 1 else
              "within 5%" if abs(err) <= 5 else "over 5%")
    row.update(ours=ours, error_pct=round(err, 4), bucket=bucket, counted_by=getattr(spec, "counted_by", None))
    return row


def run_mode(cases: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """Score every case in one mode; the summary per kind and every row."""
    t0 = time.perf_counter()
    ctx = native_only() if mode == "native" else contextlib.nullcontext()
    with ctx:
        rows = [score_one(c) for c in cases]
    summary = {k: dict(Counter(r["bucket"] for r in rows if r["kind"] == k)) for k in KINDS}
    summary["all"] = dict(Counter(r["bucket"] for r in rows))
    return {"mode": mode, "seconds": round(time.perf_counter() - t0, 1), "summary": summary, "rows": rows}


def transformers_version() -> str | None:
    try:
        import transformers
    except ImportError:
        return None
    return str(transformers.__version__)


def table(result: dict[str, Any]) -> list[str]:
    """The per-kind bucket counts as markdown rows."""
    out = ["| kind | types | " + " | ".join(BUCKETS) + " |", "|---|---|" + "---|" * len(BUCKETS)]
    for k in (*KINDS, "all"):
        s = result["summary"][k]
        out.append(f"| {k} | {sum(s.values())} | " + " | ".join(str(s.get(b, 0)) for b in BUCKETS) + " |")
    return out


def details(result: dict[str, Any]) -> list[str]:
    """Every non-exact row."""
    out = ["| kind | model_type | class | transformers | ours | error | bucket / reason |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["bucket"] == "exact":
            continue
        ours = f"{r['ours']:,}" if "ours" in r else "-"
        err = f"{r['error_pct']:+.2f}%" if "error_pct" in r else "-"
        why = r["bucket"] + (f": {r['reason']}" if r.get("reason") else "")
        out.append(f"| {r['kind']} | {r['model_type']} | {r['class']} | {r['truth']:,} | {ours} | {err} | {why} |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("native", "fallback", "both"), default="both")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--baseline", type=Path, help="a results.json of an earlier run, shown as 'before'")
    args = ap.parse_args()
    cases = load_set()
    modes = ["native", "fallback"] if args.mode == "both" else [args.mode]
    tv = transformers_version()
    if tv is None and "fallback" in modes:
        print("transformers is not installed: fallback mode skipped")
        modes.remove("fallback")
    results = {m: run_mode(cases, m) for m in modes}
    lines: list[str] = []
    for m, res in results.items():
        lines += [f"### {m} ({res['seconds']} s)", "", *table(res), ""]
    print("\n".join(lines))
    bad = [r for res in results.values() for r in res["rows"] if r["bucket"] in ("within 1%", "within 5%", "over 5%",
                                                                                   "crashed")]
    bad_fallback = [r for r in results.get("fallback", {"rows": []})["rows"] if r["bucket"] != "exact"]
    if args.no_write:
        return 1 if bad or bad_fallback else 0
    out = {"date": datetime.date.today().isoformat(), "command": COMMAND, "transformers": tv,
           "cases": len(cases), "modes": results}
    (HERE / "results.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {HERE / 'results.json'}")
    return 1 if bad or bad_fallback else 0


if __name__ == "__main__":
    sys.exit(main())
