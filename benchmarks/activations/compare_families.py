"""Compare llm-mem's saved-for-backward replay with measured_families.json (every bundled family).

    python benchmarks/activations/compare_families.py [--family gemma2] [--worst 20]

For each record: the tiny config (configs/tiny/) parsed by llm-mem, the run's trainable set (full, or
PEFT LoRA r=8 on the record's targets with its dropout), replayed with the CPU kernels' rules
(llm_mem.estimators.saved.CPU) and compared with the bytes the meter counted: the decoder layers, and
the total (layers + embeddings + final norm + head + what the loss saves).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llm_mem.estimators.lora import lora_target_modules
from llm_mem.estimators.saved import CPU, Trainable
from llm_mem.estimators.training import saved_activations
from llm_mem.sources.parse import parse_config

HERE = Path(__file__).parent


def spec_of(family: str) -> Any:
    raw = json.loads((HERE / "configs" / "tiny" / f"{family}.json").read_text())
    raw.pop("_source", None)
    return parse_config(raw)


def trainable_of(spec: Any, r: dict[str, Any]) -> Trainable:
    if r["mode"] == "full":
        return Trainable(full=True)
    targets = (r["targets"],) if isinstance(r["targets"], str) else tuple(r["targets"])
    mods = lora_target_modules(spec, targets)
    return Trainable(full=False, adapted=frozenset((m.layer, m.name) for m in mods if m.copies == 1),
                     experts_adapted=frozenset(m.layer for m in mods if m.copies > 1 and m.layer is not None),
                     rank=r["lora_r"], dropout=r["lora_dropout"])


def rows(path: Path = HERE / "measured_families.json") -> list[dict[str, Any]]:
    """Measured and replayed bytes for every record."""
    out = []
    specs: dict[str, Any] = {}
    for r in json.loads(path.read_text()):
        spec = specs.setdefault(r["family"], spec_of(r["family"]))
        tr = trainable_of(spec, r)
        a = saved_activations(spec, r["batch"], r["seq"], r["attn"], r["checkpointing"], 2, tr, CPU)
        out.append({**{k: r[k] for k in ("family", "mode", "targets", "lora_dropout", "batch", "seq", "attn",
                                         "checkpointing", "trainable_params")},
                    "measured_layers": sum(r["per_layer_bytes"]), "ours_layers": a.layers_total,
                    "measured_total": r["total_saved_bytes"], "ours_total": a.layers_total + a.outside + a.logits_saved,
                    "measured_per_layer": r["per_layer_bytes"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="")
    ap.add_argument("--worst", type=int, default=0)
    args = ap.parse_args()
    res = [x for x in rows() if not args.family or x["family"] == args.family]
    for x in res:
        x["err_l"] = 100 * (x["ours_layers"] / x["measured_layers"] - 1)
        x["err_t"] = 100 * (x["ours_total"] / x["measured_total"] - 1)
    if args.worst:
        res = sorted(res, key=lambda x: -max(abs(x["err_l"]), abs(x["err_t"])))[:args.worst]
    worst: dict[str, float] = {}
    for x in res:
        worst[x["family"]] = max(worst.get(x["family"], 0.0), abs(x["err_l"]), abs(x["err_t"]))
        print(f"{x['family']:12s} {x['mode']:4s} {str(x['targets'])[:22]:22s} d={x['lora_dropout']} b={x['batch']} "
              f"s={x['seq']:3d} {x['attn']:5s} ck={int(x['checkpointing'])} layers {x['measured_layers']/2**20:8.3f}/"
              f"{x['ours_layers']/2**20:8.3f} MiB {x['err_l']:+6.1f}%  total {x['measured_total']/2**20:8.3f}/"
              f"{x['ours_total']/2**20:8.3f} {x['err_t']:+6.1f}%")
    print("worst |error| per family:", {k: round(v, 1) for k, v in sorted(worst.items())})


if __name__ == "__main__":
    main()
