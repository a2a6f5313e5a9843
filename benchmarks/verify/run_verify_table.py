#!/usr/bin/env python3
"""Estimate vs --verify measurement, per component, for a few bundled models.

Exact command (from the repository root; about 7 minutes on this project's 2-core CPU machine):

    python3 benchmarks/verify/run_verify_table.py

Runs `llm-mem estimate MODEL --precision bf16 --context C --verify --json` (and the same with
`--train lora`) for Llama-3.2-1B, Qwen2.5-0.5B, Qwen3-30B-A3B and gpt-oss-20b (--verify builds one
layer of each kind: 1 layer for the first three, a sliding + a full layer for gpt-oss) at contexts
256 and 1024, batch 1, plus DeepSeek-V2-Lite inference at 256 (MLA, dense + MoE layer); with a CUDA
device and bitsandbytes installed it adds `--precision int4` (bitsandbytes nf4) inference runs. Each run is a separate process (memory is given back between
runs). Writes benchmarks/verify/RESULTS.md and benchmarks/verify/results.json.

Options: --models SUBSTR[,SUBSTR] (filter), --contexts 256,1024, --out DIR, --render (rewrite
RESULTS.md from results.json only).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ["meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-0.5B", "Qwen/Qwen3-30B-A3B", "openai/gpt-oss-20b"]
CONTEXTS = [256, 1024]
MODES = [("inference", []), ("lora", ["--train", "lora"])]
# Beyond the list: an MLA model (transformers caches DeepSeek's compressed latent), inference only.
EXTRA = [("deepseek-ai/DeepSeek-V2-Lite", 256, "inference", [])]


def _cuda_bnb() -> bool:
    try:
        import bitsandbytes  # noqa: F401
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def run_one(model: str, context: int, extra: list[str], precision: str) -> dict:
    cmd = ["llm-mem", "estimate", model, "--precision", precision, "--context", str(context), *extra,
           "--verify", "--json"]
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "llm_mem", *cmd[1:]], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        return {"command": " ".join(cmd), "error": (p.stderr or p.stdout).strip().splitlines()[-1:], "wall_s": wall}
    report = json.loads(p.stdout)
    return {"command": " ".join(cmd), "wall_s": round(wall, 1), "verify": report["verify"],
            "total_bytes": report["total_bytes"]}


def _gb(b: int | None) -> str:
    return "-" if b is None else f"{b / 1e9:,.4f}"


def write_markdown(rows: list[dict], out: Path) -> None:
    first = next((r["verify"] for r in rows if "verify" in r), None)
    lines = ["# --verify: estimate vs measurement", "",
             "Made by `python3 benchmarks/verify/run_verify_table.py` (see its docstring). "
             "GB = 10^9 bytes. error = (estimate - measured) / measured: positive means the estimate is too high.",
             "Measured figures are the reduced model's (one layer of each kind) scaled to the whole model "
             "(llm_mem/verify/calibrate.py); `runtime_overhead` is never measured (it is recomputed from the "
             "measured components).", ""]
    if first:
        lines += [f"- device: {first['device']}", f"- method: {first['method']}",
                  f"- torch {first['torch_version']}, transformers {first['transformers_version']}",
                  f"- host: {platform.platform()}, Python {platform.python_version()}", ""]
    names = ["weights", "kv_cache", "lora_adapters", "gradients", "optimizer_states", "activations", "logits"]
    lines += ["## Summary: estimate error per component", "",
              "| model | workload | context (measured) | " + " | ".join(names) + " |",
              "| --- | --- | --- | " + " | ".join("---:" for _ in names) + " |"]
    for r in rows:
        if "verify" not in r:
            continue
        v = r["verify"]
        by = {c["name"]: c for c in v["components"]}
        cells = []
        for n in names:
            c = by.get(n)
            cells.append("" if c is None else ("n/m" if c["measured_bytes"] is None else
                                                "-" if c["error_pct"] is None else f"{c['error_pct']:+.1f}%"))
        cmd = r["command"].split()
        work = "LoRA step" if "--train" in cmd else "inference"
        lines.append(f"| {cmd[2]} | {work} | {v['requested_context']:,} ({v['measured_context']:,}) | "
                     + " | ".join(cells) + " |")
    lines += ["", "n/m: not measured (kept from the estimate). Details per run below.", ""]
    for r in rows:
        lines.append(f"## `{r['command']}`")
        lines.append("")
        if "error" in r:
            lines += [f"failed: {' '.join(r['error'])}", ""]
            continue
        v = r["verify"]
        ctx = f"{v['measured_context']:,}"
        if v["measured_context"] != v["requested_context"]:
            ctx += f" (extrapolated to {v['requested_context']:,})"
        lines.append(f"{v['measured_layers']} layer(s) measured ({', '.join(f'{k}: {n}' for k, n in v['layer_kinds'].items())} "
                     f"in the model), {v['dtype']}, attention {v['attention']}, measured context {ctx}, "
                     f"{v['seconds']:.1f} s (process {r['wall_s']:.0f} s)")
        lines.append("")
        lines.append("| component | estimate GB | measured GB | error |")
        lines.append("| --- | ---: | ---: | ---: |")
        for c in v["components"]:
            err = "not measured" if c["measured_bytes"] is None else (
                "-" if c["error_pct"] is None else f"{c['error_pct']:+.1f}%")
            lines.append(f"| {c['name']} | {_gb(c['estimate_bytes'])} | {_gb(c['measured_bytes'])} | {err} |")
        lines.append(f"| **total** | {_gb(v['estimate_total_bytes'])} | {_gb(v['calibrated_total_bytes'])} "
                     "| calibrated |")
        lines.append("")
        for n in v["notes"]:
            lines.append(f"- {n}")
        lines.append("")
    out.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="")
    ap.add_argument("--contexts", default=",".join(map(str, CONTEXTS)))
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--render", action="store_true", help="only rewrite RESULTS.md from results.json")
    a = ap.parse_args()
    if a.render:
        write_markdown(json.loads((a.out / "results.json").read_text()), a.out / "RESULTS.md")
        return
    models = [m for m in MODELS if not a.models or any(s.lower() in m.lower() for s in a.models.split(","))]
    contexts = [int(c) for c in a.contexts.split(",")]
    plan = [(m, c, name, extra, "bf16") for m in models for name, extra in MODES for c in contexts]
    plan += [(m, c, name, extra, "bf16") for m, c, name, extra in EXTRA
             if not a.models or any(s.lower() in m.lower() for s in a.models.split(","))]
    if _cuda_bnb():
        plan += [(m, c, "inference", [], "int4") for m in models for c in contexts]
    rows = []
    for m, c, name, extra, prec in plan:
        print(f"{m} {name} {prec} context {c} ...", end=" ", flush=True)
        r = run_one(m, c, extra, prec)
        print(r.get("wall_s"), "s" if "verify" in r else f"FAILED {r.get('error')}", flush=True)
        rows.append(r)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps(rows, indent=2))
    write_markdown(rows, a.out / "RESULTS.md")
    print(f"wrote {a.out / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
