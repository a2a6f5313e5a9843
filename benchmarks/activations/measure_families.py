#!/usr/bin/env python3
"""Saved-for-backward bytes of every bundled model family, full fine-tuning and LoRA, on CPU.

Exact command (from the repository root, in the dev venv; about 10 minutes on 2 CPU cores):

    python benchmarks/activations/tiny_configs.py        # configs/tiny/<model_type>.json (committed)
    python benchmarks/activations/measure_families.py    # writes measured_families.json

Options: ``--families llama,gemma2`` (exact model_type names), ``--shapes 1x128,2x256``,
``--out PATH``, ``--detail-out PATH`` (every saved storage with the autograd node that saved it, for
the first shape without checkpointing).

Method: the same meter as measure_saved.py (README.md, "What is counted"): one training forward
(``labels=input_ids``) of a randomly initialised bf16 model built from the tiny config with
``AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)``, under
``torch.autograd.graph.saved_tensors_hooks``; bytes of the distinct storages still alive at the end
of the forward, parameters and buffers excluded, per decoder layer and outside the layers.

Runs per family:
* ``full``: every parameter trainable (pure bf16, no autocast).
* ``lora``: PEFT ``get_peft_model(model, LoraConfig(r=8, target_modules=...))`` with PEFT's defaults
  otherwise (lora_alpha 8, dropout 0, ``autocast_adapter_dtype=True``: fp32 adapters on the bf16
  base, no autocast), for the family's default targets (PEFT's
  TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING; families without an entry make PEFT raise and
  are measured with ``all-linear`` only) and for ``all-linear``; plus one ``lora_dropout=0.05`` run.
  Each LoRA record lists the modules PEFT wrapped and the trainable parameter count.
* attention ``eager`` and ``sdpa`` (where transformers 5.24 has it: gemma2, gpt_oss and bloom have
  not), checkpointing off and on (``gradient_checkpointing_enable(gradient_checkpointing_kwargs=
  {"use_reentrant": False})``), shapes (batch, seq) 1x128, 2x256, 1x512.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure_saved import decoder_layers, fix_conv1d_layout, saved_step  # noqa: E402

warnings.filterwarnings("ignore")
TINY = HERE / "configs" / "tiny"
SHAPES = [(1, 128), (2, 256), (1, 512)]
LORA_R = 8


def build(family: str, attn: str):
    """The tiny model with attention `attn` chosen at construction (Falcon and BLOOM cannot switch later)."""
    raw = json.loads((TINY / f"{family}.json").read_text())
    raw.pop("_source", None)
    model_type = raw.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **raw)
    cfg.use_cache = False
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation=attn)
    fix_conv1d_layout(model)
    model.train()
    return model


def peft_default_targets(model_type: str):
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as M

    return M.get(model_type)


def with_lora(model, targets, dropout: float):
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(model, LoraConfig(r=LORA_R, target_modules=targets, lora_dropout=dropout))
    wrapped = sorted({n.split(".lora_A")[0].split(".")[-1] for n, _ in pm.named_parameters() if ".lora_A." in n})
    trainable = sum(p.numel() for p in pm.parameters() if p.requires_grad)
    return pm, wrapped, trainable


def run(model, base, b: int, s: int, attn: str, ckpt: bool, vocab: int, detail: bool):
    assert base.config._attn_implementation == attn, base.config._attn_implementation
    res, dt, det = saved_step(model, base, decoder_layers(base), vocab, b, s, ckpt, detail)
    return res, det, dt


def sdpa_supported(family: str) -> bool:
    """Whether transformers 5.24 runs this family with SDPA (gemma2, gpt_oss and bloom: no)."""
    try:
        model = build(family, "sdpa")
    except (ValueError, ImportError):
        return False
    return model.config._attn_implementation == "sdpa"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default="")
    ap.add_argument("--shapes", default="")
    ap.add_argument("--out", default=str(HERE / "measured_families.json"))
    ap.add_argument("--detail-out", default=str(HERE / "saved_families_detail.json"))
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [tuple(int(x) for x in sh.split("x")) for sh in args.shapes.split(",")] if args.shapes else SHAPES
    families = [f for f in args.families.split(",") if f] or sorted(p.stem for p in TINY.glob("*.json"))
    env = dict(torch=torch.__version__, transformers=transformers.__version__, python=platform.python_version(),
               peft=__import__("peft").__version__, threads=torch.get_num_threads())
    print(env, flush=True)
    records, details = [], []
    t_all = time.time()
    for family in families:
        attns = ["eager", "sdpa"] if sdpa_supported(family) else ["eager"]
        vocab = json.loads((TINY / f"{family}.json").read_text())["vocab_size"]
        default = peft_default_targets(family)
        variants = [("full", None, 0.0)]
        if default is not None:
            variants.append(("lora", list(default), 0.0))
        variants += [("lora", "all-linear", 0.0), ("lora", "all-linear", 0.05)]
        for mode, targets, dropout in variants:
            for attn in attns:
                if dropout and attn != attns[-1]:
                    continue  # the dropout run: one attention, no checkpointing
                model = build(family, attn)
                wrapped, trainable = None, sum(p.numel() for p in model.parameters())
                base = model
                if mode == "lora":
                    try:
                        model, wrapped, trainable = with_lora(model, targets, dropout)
                    except ValueError as err:  # peft refuses dropout on fused-expert parameters (ParamWrapper)
                        print(f"{family:12s} lora {targets} dropout={dropout}: skipped, peft says: {err}", flush=True)
                        continue
                    base = model.get_base_model()
                # every run without checkpointing first: transformers' gradient_checkpointing_enable on a PEFT
                # model registers enable_input_require_grads (the embeddings' output then requires grad), and
                # gradient_checkpointing_disable does not remove it
                for ckpt, (bi, (b, s)) in [(c, sh) for c in (False, True) for sh in enumerate(shapes)]:
                    if dropout and ckpt:
                        continue
                    detail = bi == 0 and not ckpt
                    res, det, dt = run(model, base, b, s, attn, ckpt, vocab, detail)
                    rec = dict(family=family, mode=mode, targets=targets, lora_r=LORA_R if mode == "lora" else None,
                               lora_dropout=dropout, wrapped=wrapped, trainable_params=trainable, batch=b, seq=s,
                               attn=attn, checkpointing=ckpt, dtype="bfloat16", **res, forward_seconds=round(dt, 3))
                    records.append(rec)
                    if det is not None:
                        details.append(dict(family=family, mode=mode, targets=targets, lora_dropout=dropout,
                                            batch=b, seq=s, attn=attn, storages=det))
                    print(f"{family:12s} {mode:4s} {str(targets)[:28]:28s} d={dropout} b={b} s={s} {attn:5s} "
                          f"ck={int(ckpt)} total={res['total_saved_bytes'] / 2**20:8.3f}MiB "
                          f"layers={[round(x / 2**20, 3) for x in res['per_layer_bytes']]} "
                          f"outside={res['outside_layers_bytes'] / 2**20:.3f} ({dt:.2f}s)", flush=True)
                del model, base
                gc.collect()
        for r in records:
            r["env"] = env
        Path(args.out).write_text(json.dumps(records, indent=0) + "\n")
        Path(args.detail_out).write_text(json.dumps(details, indent=0) + "\n")
    print(f"wrote {len(records)} records to {args.out} in {time.time() - t_all:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
