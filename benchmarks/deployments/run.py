"""Deployment benchmark: `llm-mem plan` against published real-world deployments.

Command (from the repository root; about 2 s, no network, no GPU):

    python benchmarks/deployments/run.py             # prints the table, writes RESULTS.md and results.json
    python benchmarks/deployments/run.py --no-write  # print only

Data: deployments.yaml in this folder is an unchanged copy of the shared reference set
(reference/deployments/deployments.yaml): each fact is a published deployment (model, precision,
context, engine, GPUs, a verbatim quote and its source) with a `check`: the `llm-mem plan` arguments
(model first) and what the planner must answer. h20_catalog.yaml is the user catalog the H20 fact
names (`--catalog {here}/h20_catalog.yaml`; `{here}` is this folder).

Each check runs exactly as `llm-mem plan <args> --json` would: the real CLI (`llm_mem.cli.app`) is
invoked in-process through typer's CliRunner (HF_HUB_OFFLINE=1; every model is bundled), and its JSON
plan is judged:

* fits: an option on `count` GPUs fits, and it is resident (single, tensor_parallel, pipeline); an
  offload option (expert_offload, offload) counts only when the check says `offload: true` or is an
  offload_layers check. A borderline fit (need within the budget, its error band not) counts as a fit.
* oom: no resident option on `count` GPUs fits.
* min_gpus: the recommended option uses `expect` GPUs.
* train_fits: the training option on `count` GPUs (default 1) fits.
* offload_layers: the recommended option is an offload with `expect` layers on the GPU (llama.cpp -ngl,
  the output layer counted; accelerate: resident layers), or within `[lo, hi]` when `expect` is a pair.
* strategy: the recommended option's strategy is `expect` (or one of a list).

Host RAM is this machine's (the CLI default); it only changes offload options, which no fits/oom
judgement uses. For every disagreement the table carries the estimate's breakdown on the option shown,
a one-line diagnosis and whether the cause is outside memory (DIAGNOSES below), and where the fact's
engine or an unstated flag explains it, the same check re-run with the flags that express it (WHAT_IF).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_common import cli, md_table, text_table

HERE = Path(__file__).resolve().parent
COMMAND = "python benchmarks/deployments/run.py"
FACTS = HERE / "deployments.yaml"
RESIDENT = ("single", "tensor_parallel", "pipeline")
OFFLOAD = ("expert_offload", "offload")
GB = 1e9

# Where the planner and the fact disagree: (category, one line). Categories: "memory" (our estimate or
# the source's own figure) or "outside memory: ..." (the fact depends on a different engine or version,
# a flag the fact does not state, or throughput). Checked against the run: a diagnosis for a fact that
# now agrees is reported as stale, a disagreement without one as undiagnosed.
DIAGNOSES: dict[str, tuple[str, str]] = {
    "F04": ("memory (the source's rounded claim; vLLM 0.34's fixed costs)",
            "18.1 GB needed of 16.0: weights 13.76 GB (the checkpoint's exact MXFP4 + bf16 bytes) plus vLLM 0.34's "
            "fixed costs, prompt-logprobs warm-up 2.06 GB (1024 rows x 201,088 vocab x 10 B), KV margin 1.55 GB "
            "(max(1 GiB, 0.75 x peak)), CUDA graphs 0.39 GB, non-torch 0.17 GB. With the smallest settings "
            "(WHAT_IF) it needs 16.2 GB, borderline. The cookbook's 'about 16GB' is a rounded claim written for "
            "vLLM ~0.10 (which kept no margin): the weights alone are 12.8 GiB."),
    "F20": ("outside memory: a different engine version (vLLM 0.5.3.post1)",
            "vLLM 0.34 fits at 131072 (72.3 of 84.0 GB per GPU: weights 60.9 GB, the published Meta FP8 checkpoint "
            "with its bf16 modules, vs 'Loading model weights took 57.75 GB' (GiB, 62.0 GB) in vllm#6746: -1.8%; "
            "KV 8.46 GB; a 2048-token chunked-prefill peak on an A100; gpu_memory_utilization unset). vLLM 0.5.3 used "
            "--gpu-memory-utilization 0.9 and profiled a forward of max_model_len = 131072 tokens (no chunked "
            "prefill): those settings as flags (WHAT_IF) need 93.8 GB of 76.6 -> OOM, as the issue reports."),
    "F58": ("outside memory: a flag the fact does not state (max-model-len in the recipe's --config YAML)",
            "103.0 GB needed of 84.5 at 131072 tokens: weights 72.66 GB (FP8, bf16 embed/head) + KV 21.49 GB "
            "(fp8, 160 KiB/token) alone exceed one H100, whatever the engine. The low-confidence recipe passes "
            "--config ${YAML_CONFIG} (not quoted), which must cap max-model-len: `--max-context` (WHAT_IF) finds "
            "18,432 tokens fit."),
}

# The same check with the flags that express the fact's engine, version or unstated setting (see DIAGNOSES).
WHAT_IF: dict[str, list[str]] = {
    "F04": ["--max-num-seqs", "16", "--max-num-batched-tokens", "512", "--enforce-eager"],
    "F20": ["--gpu-memory-utilization", "0.9", "--max-num-batched-tokens", "131072", "--max-num-seqs", "256",
            "--enforce-eager"],
    "F58": ["--max-context"],
}


@dataclass
class Got:
    """The option the judgement rests on (or the closest one), per GPU."""

    strategy: str | None = None
    gpus: int | None = None
    gpu: str | None = None
    per_gpu_gb: float | None = None
    budget_gb: float | None = None
    margin_gb: float | None = None
    verdict: str | None = None
    fits: bool | None = None
    layout: dict[str, Any] = field(default_factory=dict)
    gpu_layers: int | None = None
    runtime: str | None = None


@dataclass
class Outcome:
    id: str
    model: str
    engine: str
    check: str  # fits | oom | min_gpus | train_fits | offload_layers | strategy
    expected: str
    command: str
    agree: bool
    got: Got
    exit_code: int
    recommended: str | None = None
    breakdown: str | None = None  # disagreements: the estimate's components on the option shown
    category: str | None = None
    diagnosis: str | None = None
    what_if: str | None = None
    error: str | None = None


# ---- running the CLI --------------------------------------------------------------------------------
def fact_args(fact: dict[str, Any], folder: Path = HERE) -> list[str]:
    return [str(a).replace("{here}", str(folder)) for a in fact["check"]["args"]]


def shown_command(fact: dict[str, Any]) -> str:
    return "llm-mem plan " + " ".join(str(a).replace("{here}", "benchmarks/deployments") for a in fact["check"]["args"])


# ---- judging ----------------------------------------------------------------------------------------
def expected_text(check: dict[str, Any]) -> str:
    t, n = str(check["type"]), check.get("count")
    texts: dict[str, str] = {"fits": f"fits on {n}", "oom": f"OOM on {n}", "min_gpus": f"min {check.get('expect')} GPUs",
            "train_fits": f"trains on {n or 1}", "offload_layers": f"offload, -ngl {check.get('expect')}",
            "strategy": f"strategy {check.get('expect')}"}
    return texts.get(t, t)


def _got(o: dict[str, Any] | None) -> Got:
    if o is None:
        return Got()
    return Got(strategy=o["strategy"], gpus=o["gpus"], gpu=o["gpu"], per_gpu_gb=round(o["per_gpu_bytes"] / GB, 2),
               budget_gb=round(o["budget_bytes"] / GB, 2), margin_gb=round(o["margin_bytes"] / GB, 2),
               verdict=o["verdict"], fits=o["fits"], layout=dict(o.get("layout") or {}), gpu_layers=o.get("gpu_layers"),
               runtime=o.get("runtime"))


def _best(options: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A fitting option first, then the largest margin."""
    return max(options, key=lambda o: (o["fits"], o["margin_bytes"]), default=None)


def _in(value: Any, expect: Any) -> bool:
    if isinstance(expect, (list, tuple)) and len(expect) == 2 and all(isinstance(x, int) for x in expect):
        return value is not None and bool(expect[0] <= value <= expect[1])
    if isinstance(expect, (list, tuple)):
        return value in expect
    return bool(value == expect)


def judge(check: dict[str, Any], plan: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """(agree, the option the judgement rests on) for one check and the plan JSON."""
    t = check["type"]
    options = plan.get("options") or []
    rec = plan.get("recommended")
    if t in ("fits", "oom", "train_fits"):
        count = check.get("count") or 1
        allowed = RESIDENT + (OFFLOAD if check.get("offload") else ())
        if t == "train_fits":
            allowed = RESIDENT
        cands = [o for o in options if o["gpus"] == count and o["strategy"] in allowed]
        best = _best(cands)
        fits = best is not None and best["fits"]
        return (not fits if t == "oom" else fits), best
    if t == "min_gpus":
        return rec is not None and rec["gpus"] == check["expect"], rec or _best(options)
    if t == "offload_layers":
        ok = rec is not None and rec["strategy"] in OFFLOAD and _in(rec.get("gpu_layers"), check["expect"])
        return ok, rec or _best(options)
    if t == "strategy":
        return rec is not None and _in(rec["strategy"], check["expect"]), rec or _best(options)
    raise ValueError(f"unknown check type {t!r}")


def breakdown(args: list[str], o: Got) -> str | None:
    """`llm-mem estimate` with the same arguments on the option's layout: the components per GPU."""
    est = list(args)
    if o.runtime == "vllm" and o.layout:
        lay = o.layout
        est += ["-tp", str(lay.get("tensor_parallel_size", 1)), "-pp", str(lay.get("pipeline_parallel_size", 1)),
                "-dp", str(lay.get("data_parallel_size", 1))]
        if lay.get("enable_expert_parallel"):
            est.append("-ep")
        est = _drop_gpu_count(est)
    elif o.gpus == 1:
        est = _drop_gpu_count(est)
    else:
        return None  # a layer split's share is the planner's arithmetic, not one estimate
    _, data, _ = cli(["estimate", *est])
    if data is None or "components" not in data:
        return None
    parts = ", ".join(f"{c['name']} {c['bytes'] / GB:.2f}" for c in data["components"] if c["bytes"])
    return f"{parts} GB (total {data['total_bytes'] / GB:.2f} GB per GPU)"


def _drop_gpu_count(args: list[str]) -> list[str]:
    """`--gpu 8xH100` -> `--gpu H100` (estimate sizes one GPU; the layout flags give the split)."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a == "--gpu":
            v = out[i + 1]
            head, sep, tail = v.partition("x")
            if sep and head.strip().isdigit():
                out[i + 1] = tail
    return out


def what_if(fid: str, args: list[str]) -> str | None:
    extra = WHAT_IF.get(fid)
    if not extra:
        return None
    code, data, out = cli(["plan", *args, *extra])
    flags = " ".join(extra)
    if data is None:
        return f"with {flags}: exit {code}: {out}"
    if "largest" in data:
        return f"with {flags}: largest {data['field']} that fits = {data['largest']:,}"
    o = _best([x for x in data.get("options", []) if x["strategy"] in RESIDENT])
    if o is None:
        return f"with {flags}: no resident option"
    return (f"with {flags}: {o['strategy']} on {o['gpus']}, {o['per_gpu_bytes'] / GB:.1f} of "
            f"{o['budget_bytes'] / GB:.1f} GB per GPU -> {o['verdict']}")


def run_fact(fact: dict[str, Any], folder: Path = HERE) -> Outcome:
    check = fact["check"]
    args = fact_args(fact, folder)
    code, plan, out = cli(["plan", *args])
    base = dict(id=fact["id"], model=str(check["args"][0]), engine=str(fact.get("engine", "")),
                check=check["type"], expected=expected_text(check), command=shown_command(fact), exit_code=code)
    if plan is None or "options" not in plan:
        return Outcome(**base, agree=False, got=Got(), error=out or f"exit {code}")
    agree, opt = judge(check, plan)
    got = _got(opt)
    rec = plan.get("recommended")
    o = Outcome(**base, agree=agree, got=got,
                recommended=f"{rec['strategy']} x{rec['gpus']}" if rec else None)
    if not agree:
        o.breakdown = breakdown(args, got) if opt is not None else None
        o.what_if = what_if(fact["id"], args)
    if fact["id"] in DIAGNOSES:
        o.category, o.diagnosis = DIAGNOSES[fact["id"]]
    return o


def load_facts(folder: Path = HERE) -> list[dict[str, Any]]:
    return list(yaml.safe_load((folder / FACTS.name).read_text())["facts"])


def evaluate(folder: Path = HERE) -> list[Outcome]:
    return [run_fact(f, folder) for f in load_facts(folder)]


# ---- output -----------------------------------------------------------------------------------------
def got_text(o: Outcome) -> str:
    g = o.got
    if o.error:
        return f"error: {o.error}"
    if g.strategy is None:
        return "no option"
    lay = g.layout
    layout = ""
    if g.runtime == "vllm" and lay:
        parts = []
        if lay.get("data_parallel_size", 1) > 1:
            parts.append(f"DP {lay['data_parallel_size']}")
        parts.append(f"TP {lay.get('tensor_parallel_size', 1)}")
        if lay.get("pipeline_parallel_size", 1) > 1:
            parts.append(f"PP {lay['pipeline_parallel_size']}")
        layout = " (" + " x ".join(parts) + (" + EP" if lay.get("enable_expert_parallel") else "") + ")"
    ngl = f", -ngl {g.gpu_layers}" if g.gpu_layers is not None and g.strategy in OFFLOAD else ""
    return f"{g.strategy}{layout} x{g.gpus} {g.gpu}{ngl}"


HEADER = ["fact", "model", "expected", "got", "per-GPU GB", "budget GB", "margin GB", "verdict", "agree"]


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def rows(results: list[Outcome]) -> list[list[str]]:
    out = []
    for r in results:
        g = r.got
        out.append([r.id, r.model, r.expected, got_text(r), _num(g.per_gpu_gb), _num(g.budget_gb),
                    "" if g.margin_gb is None else f"{g.margin_gb:+.1f}", g.verdict or "",
                    "agree" if r.agree else "DISAGREE"])
    return out




def runtime_of(fact: dict[str, Any]) -> str:
    """The --runtime the check passes (transformers when none)."""
    args = [str(a) for a in fact["check"]["args"]]
    return args[args.index("--runtime") + 1] if "--runtime" in args[:-1] else "transformers"


def _same_engine(engine: str, runtime: str) -> bool:
    e = engine.lower().replace(".", "")
    return {"vllm": "vllm", "llamacpp": "llamacpp", "transformers": "transformers"}[runtime] in e


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 4].rsplit(" ", 1)[0] + " ..."


def summary(results: list[Outcome]) -> dict[str, Any]:
    dis = [r for r in results if not r.agree]
    return {"facts": len(results), "agree": sum(r.agree for r in results), "disagree": [r.id for r in dis],
            "undiagnosed": [r.id for r in dis if r.id not in DIAGNOSES],
            "stale_diagnoses": sorted(set(DIAGNOSES) - {r.id for r in dis}),
            "outside_memory": [r.id for r in dis if (r.category or "").startswith("outside memory")]}


def write_outputs(results: list[Outcome], s: dict[str, Any], facts: list[dict[str, Any]], folder: Path = HERE) -> None:
    today = datetime.date.today().isoformat()
    by_id = {f["id"]: f for f in facts}
    dis = [r for r in results if not r.agree]
    mapped = [r for r in results if not _same_engine(r.engine, runtime_of(by_id[r.id]))]
    earlier = [[f["id"], _clip(str(f.get("diagnosis") or f.get("note") or ""), 200),
                next(("agrees now" if r.agree else "still disagrees") for r in results if r.id == f["id"])]
               for f in facts if f.get("diagnosis") or f.get("note")]
    md = [
        "# Deployment benchmark: `llm-mem plan` vs published deployments",
        "",
        f"Command: `{COMMAND}` (from the repository root; no network, no GPU). Date: {today}.",
        "",
        "Facts: `deployments.yaml` in this folder (an unchanged copy of the shared reference set). Each check runs "
        "`llm-mem plan <args> --json` through the real CLI (typer's CliRunner, in-process) and is judged as the "
        "README and the top of `run.py` explain (fits: a resident option on `count` GPUs fits; oom: none does; "
        "min_gpus: the recommended option's GPU count; train_fits: the training option fits).",
        "",
        f"**Agreement: {s['agree']}/{s['facts']}.**",
        "",
        "## Facts",
        "",
        md_table(HEADER, rows(results)),
        "",
        "GB = 10^9 bytes. per-GPU GB is the option's need on its busiest GPU; budget GB is what the planner "
        "allows there (usable memory: the framework total less the CUDA context, and less NCCL buffers under a "
        "multi-GPU vLLM layout; a bare `--gpu 16GB` is taken as is); margin = budget - need.",
        "",
        f"## Disagreements ({len(dis)})",
        "",
    ]
    if dis:
        for r in dis:
            md += [f"### {r.id}: {by_id[r.id]['model']} ({r.engine}), expected {r.expected}", "",
                   f"- command: `{r.command}`",
                   f"- got: {got_text(r)}, {r.got.per_gpu_gb} GB needed of {r.got.budget_gb} GB ({r.got.verdict})",
                   f"- breakdown (per GPU): {r.breakdown or 'n/a'}",
                   f"- cause: **{r.category or 'UNDIAGNOSED'}**. {r.diagnosis or ''}"]
            if r.what_if:
                md.append(f"- re-run {r.what_if}")
            md.append("")
    else:
        md += ["None.", ""]
    md += [
        "Outside memory: "
        + (", ".join(s["outside_memory"]) if s["outside_memory"] else "none")
        + ". The issue allows these: the fact depends on a different engine or version, or on a flag the fact "
        "does not state, which the check's arguments do not carry.",
        "",
        "## Facts served by another engine than the one checked",
        "",
        "The checks map these engines to the runtime llm-mem models closest to them (SGLang, TGI and TensorRT-LLM "
        "to vLLM: a paged KV pool sized after a warm-up; Meta's reference code to transformers). Agreement there is "
        "about memory, not about that engine's own overheads.",
        "",
        md_table(["fact", "engine", "checked as", "agree"],
                 [[r.id, r.engine, runtime_of(by_id[r.id]), "agree" if r.agree else "DISAGREE"] for r in mapped]),
        "",
        "## What earlier planner versions got wrong (the facts' `diagnosis` / `note`)",
        "",
        md_table(["fact", "earlier note", "now"], earlier),
        "",
    ]
    (folder / "RESULTS.md").write_text("\n".join(md))
    payload = {"date": today, "command": COMMAND, "summary": s,
               "facts": [{k: v for k, v in asdict(r).items() if v is not None} for r in results]}
    (folder / "results.json").write_text(json.dumps(payload, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="print only; do not rewrite RESULTS.md/results.json")
    a = ap.parse_args(argv)
    facts = load_facts()
    results = evaluate()
    s = summary(results)
    print(text_table(HEADER, rows(results)))
    print(f"\nagreement: {s['agree']}/{s['facts']}")
    for r in results:
        if not r.agree:
            print(f"\n{r.id} DISAGREES ({r.category or 'UNDIAGNOSED'}): {r.diagnosis or ''}")
            print(f"  breakdown: {r.breakdown}")
            if r.what_if:
                print(f"  re-run {r.what_if}")
    if s["undiagnosed"]:
        print(f"\nundiagnosed disagreements: {', '.join(s['undiagnosed'])}")
    if s["stale_diagnoses"]:
        print(f"diagnoses for facts that now agree (stale): {', '.join(s['stale_diagnoses'])}")
    if not a.no_write:
        write_outputs(results, s, facts)
        print(f"wrote {HERE / 'RESULTS.md'} and {HERE / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
