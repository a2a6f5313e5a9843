# Truth for architecture coverage: for every model type that transformers maps to a causal LM (and to an
# image-text-to-text model), build the model from its DEFAULT config on the meta device and count its parameters.
# Usage: make_truth.py OUT_DIR   (writes OUT_DIR/configs/<kind>__<model_type>/config.json and OUT_DIR/arch_truth.jsonl)
# Needs torch + transformers (CPU). Nothing is downloaded: default configs only.
import json
import os
import signal
import sys
import warnings

warnings.filterwarnings("ignore")
import torch
import transformers
from transformers import AutoConfig
from transformers.models.auto import modeling_auto as ma

out = sys.argv[1]; os.makedirs(f"{out}/configs", exist_ok=True)
# --perturb SEED: change the default sizes (layers, widths, vocab, experts) so that defaults cannot be memorised
PERTURB = int(sys.argv[sys.argv.index("--perturb") + 1]) if "--perturb" in sys.argv else None
import random


def perturb(cfg, rng):
    def walk(c):
        for k in ("num_hidden_layers", "n_layer", "num_layers", "n_layers"):
            v = getattr(c, k, None)
            if isinstance(v, int) and v > 1: setattr(c, k, max(2, v + rng.choice([-3, -2, -1, 1, 2, 3])))
        for k in ("intermediate_size", "moe_intermediate_size", "ffn_hidden_size", "n_inner"):
            v = getattr(c, k, None)
            if isinstance(v, int) and v > 64: setattr(c, k, v + 64 * rng.choice([-2, -1, 1, 2]))
        v = getattr(c, "vocab_size", None)
        if isinstance(v, int) and v > 1000: c.vocab_size = v + rng.choice([-128, 64, 256, 1000])
        for k in ("num_experts", "num_local_experts", "n_routed_experts"):
            v = getattr(c, k, None)
            if isinstance(v, int) and v > 8: setattr(c, k, v - rng.choice([1, 2, 4]))
        for sub in ("text_config", "vision_config"):
            s = getattr(c, sub, None)
            if s is not None and hasattr(s, "to_dict"): walk(s)
    walk(cfg)
    lt = getattr(cfg, "layer_types", None)
    n = getattr(cfg, "num_hidden_layers", None)
    if isinstance(lt, list) and isinstance(n, int) and len(lt) != n:
        cfg.layer_types = (lt * (n // max(1, len(lt)) + 1))[:n]
kinds = [("causal", ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, transformers.AutoModelForCausalLM),
         ("vlm", ma.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES, transformers.AutoModelForImageTextToText)]
class Slow(Exception): pass
def alarm(*_): raise Slow()
signal.signal(signal.SIGALRM, alarm)
rows = []
for kind, mapping, auto in kinds:
    for mt, cls in sorted(mapping.items()):
        if isinstance(cls, (list, tuple)): cls = cls[0]
        r = {"kind": kind, "model_type": mt, "class": cls}
        signal.alarm(60)
        try:
            cfg = AutoConfig.for_model(mt)
            cfg.architectures = [cls]
            if PERTURB is not None: perturb(cfg, random.Random(f"{PERTURB}-{mt}"))
            with torch.device("meta"):
                m = auto.from_config(cfg)
            r["total"] = sum(p.numel() for p in m.parameters())
            d = cfg.to_dict(); d["architectures"] = [cls]
            folder = f"{kind}__{mt}"
            os.makedirs(f"{out}/configs/{folder}", exist_ok=True)
            with open(f"{out}/configs/{folder}/config.json", "w") as f: json.dump(d, f, indent=1, default=str)
            r["config"] = f"configs/{folder}"
        except BaseException as e:
            r["error"] = f"{type(e).__name__}: {e}"[:200]
        finally:
            signal.alarm(0)
        r["transformers"] = transformers.__version__
        rows.append(r); print(json.dumps(r), flush=True)
with open(f"{out}/arch_truth.jsonl", "w") as f:
    for r in rows: f.write(json.dumps(r) + "\n")
