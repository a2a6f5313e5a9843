#!/usr/bin/env python3
"""Saved-for-backward bytes of QLoRA decoder layers as the recipes build them, on CPU with real bitsandbytes
4-bit layers (Linear4bit nf4, double quantization, bf16 compute dtype).

Three recipes on the same tiny Llama (benchmarks/activations/configs/tiny/llama.json), LoRA r8 on all seven
projections, no dropout, checkpointing off, shapes 1x128 and 2x256:

* ``peft``: get_peft_model on the 4-bit model (PEFT's default autocast_adapter_dtype: fp32 adapters); the
  frozen embeddings, norms and head stay bf16.
* ``peft-kbit``: PEFT's prepare_model_for_kbit_training first (peft/utils/other.py: "cast all non INT8
  parameters to fp32": every non-Params4bit parameter, the embeddings, norms and head, goes to fp32), then
  get_peft_model: the QLoRA recipe of PEFT's docs and of transformers' Trainer users.
* ``trl``: TRL's SFTTrainer (trl/trainer/sft_trainer.py at f2cd577): no prepare_model_for_kbit_training,
  and every trainable parameter of a quantized model cast to bf16 after get_peft_model.

Exact command (from the repository root, in the dev venv with the verify extra, bitsandbytes installed beside
it; about 1 minute):

    pip install --target /tmp/bnblib --no-deps bitsandbytes==0.50.2
    PYTHONPATH=/tmp/bnblib python benchmarks/activations/measure_qlora.py   # writes measured_qlora.json
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure_saved import decoder_layers, saved_step  # noqa: E402

warnings.filterwarnings("ignore")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SHAPES = [(1, 128), (2, 256)]
RECIPES = ("peft", "peft-kbit", "trl")


def build(recipe: str, folder: str):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    q = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.bfloat16, device_map="cpu", attn_implementation="sdpa",
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True,
                                               bnb_4bit_compute_dtype=torch.bfloat16))
    if recipe == "peft-kbit":
        q = prepare_model_for_kbit_training(q, use_gradient_checkpointing=False)
    torch.manual_seed(0)
    pm = get_peft_model(q, LoraConfig(r=8, target_modules=TARGETS, lora_dropout=0.0))
    if recipe == "trl":
        for p in pm.parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.bfloat16)
    return pm


def main() -> None:
    import bitsandbytes
    import peft
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    raw = json.loads((HERE / "configs" / "tiny" / "llama.json").read_text())
    raw.pop("_source", None)
    cfg = AutoConfig.for_model(raw.pop("model_type"), **raw)
    torch.manual_seed(0)
    folder = tempfile.mkdtemp()
    AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).save_pretrained(folder)
    records = []
    for recipe in RECIPES:
        pm = build(recipe, folder)
        inner = pm.base_model.model
        layers = decoder_layers(inner)
        dtypes = sorted({str(p.dtype).replace("torch.", "") for n, p in pm.named_parameters()
                         if "lora_" not in n and p.dtype != torch.uint8})
        for b, s in SHAPES:
            res, _, _ = saved_step(pm, inner, layers, cfg.vocab_size, b, s, False)
            rec = {"recipe": recipe, "batch": b, "seq": s, "frozen_float_dtypes": dtypes,
                   "per_layer_exclusive_bytes": res["per_layer_exclusive_bytes"],
                   "outside_exclusive_bytes": res["outside_exclusive_bytes"], "logits_bytes": res["logits_bytes"],
                   "total_saved_bytes": res["total_saved_bytes"]}
            records.append(rec)
            print(rec, flush=True)
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
           "bitsandbytes": bitsandbytes.__version__, "python": platform.python_version(),
           "config": "benchmarks/activations/configs/tiny/llama.json",
           "command": "PYTHONPATH=/tmp/bnblib python benchmarks/activations/measure_qlora.py", "records": records}
    (HERE / "measured_qlora.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
