#!/usr/bin/env python3
"""Saved-for-backward bytes of decoder layers under torch.compile, beside eager, on CPU.

Exact command (from the repository root, in the dev venv with the verify extra; about 6 minutes on 2 CPU
cores, most of it inductor compiling):

    python benchmarks/activations/measure_compile.py    # writes measured_compile.json

Method: the meter of measure_saved.py (saved_tensors_hooks, distinct storages alive at the end of one
training forward, parameters excluded, per decoder layer) on the tiny bf16 configs of measure_families.py,
full fine-tuning, checkpointing off, shapes 1x128 and 2x256; ``compiled`` runs call ``layer.compile()`` on
every decoder layer, as torchtune's ``training.compile_model`` does (inductor, default mode). AOTAutograd's
compiled function saves its tensors through ``save_for_backward``, so the same hooks see them. torch and
transformers versions are recorded in the file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from pathlib import Path

import torch
import transformers

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure_families import build  # noqa: E402
from measure_saved import decoder_layers, saved_step  # noqa: E402

warnings.filterwarnings("ignore")
# (family, attention): dense and MoE RMSNorm + gated-MLP layers, and the two that follow other rules
FAMILIES = [("llama", "sdpa"), ("mistral", "sdpa"), ("qwen2", "sdpa"), ("qwen3", "sdpa"), ("phi3", "sdpa"),
            ("mixtral", "sdpa"), ("qwen3_moe", "sdpa"), ("gpt2", "sdpa"), ("gemma2", "eager")]
SHAPES = [(1, 128), (2, 256)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default="", help="comma-separated model_type names (default: all)")
    ap.add_argument("--out", default=str(HERE / "measured_compile.json"))
    args = ap.parse_args()
    wanted = set(args.families.split(",")) if args.families else None
    records = []
    for fam, attn in FAMILIES:
        if wanted and fam not in wanted:
            continue
        for compiled in (False, True):
            model = build(fam, attn)
            layers = decoder_layers(model)
            if compiled:
                # every family's layers share transformers' forward code object: without a reset, dynamo's
                # recompile limit (8) is reached after a few families and the rest silently run eager
                torch._dynamo.reset()
                for layer in layers:
                    layer.compile()
            for b, s in SHAPES:
                res, _, _ = saved_step(model, model, layers, model.config.vocab_size, b, s, False)
                records.append({"family": fam, "attention": attn, "compiled": compiled, "batch": b, "seq": s,
                                "per_layer_exclusive_bytes": res["per_layer_exclusive_bytes"]})
                print(fam, attn, "compiled" if compiled else "eager", b, s, res["per_layer_exclusive_bytes"],
                      flush=True)
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
           "command": "python benchmarks/activations/measure_compile.py", "records": records}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
