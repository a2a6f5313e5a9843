"""Ground-truth parameter counts from transformers, written as golden data for the tests.

    python scripts/ground_truth_params.py [DIR ...] [-o tests/data/golden_params.json]

Default DIRs: tests/data/hf-configs (subfolders ORG__NAME holding config*.json files) and
llm_mem/data/models (flat ORG__NAME.json files); a DIR that does not exist is skipped.
Needs torch and transformers (the `verify` extra); the tests only read the JSON it writes.

For every *.json under each DIR (recursively; `quantize_config*.json` skipped) it:
  * drops `quantization_config` (we count logical, unpacked parameters),
  * uses the nested `text_config` when there is one (multimodal wrapper) for the per-part counts, and
    builds the wrapper's own class (its `architectures`, e.g. Gemma3ForConditionalGeneration) for
    `total`; `multimodal` is what that class adds (vision tower + projector),
  * builds the config with `AutoConfig.for_model(model_type, **d)` (never trust_remote_code),
  * instantiates `AutoModelForCausalLM.from_config(cfg)` on the meta device (no memory),
  * records total / token_embedding / position_embedding / lm_head / per-layer counts
    (plus experts / shared_experts / router per layer for MoE) and `other`, the remainder
    (final norm, bloom's word_embeddings_layernorm, ...).
A config that fails is recorded as {"error": "..."}; failures are listed on stderr.
Keys are paths relative to their DIR, e.g. `meta-llama__Llama-3.1-8B/config.json` or
`meta-llama__Llama-3.1-8B.json`. The output file is rewritten from scratch on every run.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = [ROOT / "tests" / "data" / "hf-configs", ROOT / "llm_mem" / "data" / "models"]
DEFAULT_OUT = ROOT / "tests" / "data" / "golden_params.json"

EXPERTS_NAMES = ("experts",)
SHARED_NAMES = ("shared_experts", "shared_expert", "shared_expert_gate", "shared_mlp")
ROUTER_NAMES = ("gate", "router")
POSITION_NAMES = ("wpe", "embed_positions", "position_embeddings", "pos_embed")


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def find_layers(model):
    """The nn.ModuleList holding the decoder blocks: the ModuleList with the most parameters."""
    import torch.nn as nn

    best, best_name, best_n = None, None, -1
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > 0:
            n = numel(mod)
            if n > best_n:
                best, best_name, best_n = mod, name, n
    return best_name, best


def moe_parts(block):
    """(experts, shared_experts, router, num_experts) numel for one decoder block; zeros if dense."""
    import torch.nn as nn

    experts = shared = router = 0
    num_experts = 0
    for _, mod in block.named_modules():
        children = dict(mod.named_children())
        exp = next((children[n] for n in EXPERTS_NAMES if n in children), None)
        if exp is None:
            continue
        experts += numel(exp)
        if isinstance(exp, nn.ModuleList):
            num_experts = max(num_experts, len(exp))
        else:  # fused experts: 3-D parameters [num_experts, ...]
            dims = [p.shape[0] for p in exp.parameters(recurse=False) if p.dim() == 3]
            if not dims:
                dims = [getattr(exp, "num_experts", 0)]
            num_experts = max(num_experts, max(dims))
        shared += sum(numel(children[n]) for n in SHARED_NAMES if n in children)
        router += sum(numel(children[n]) for n in ROUTER_NAMES if n in children)
    return experts, shared, router, num_experts


def count(d: dict) -> dict:
    import torch
    import torch.nn as nn
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    d = dict(d)
    d.pop("quantization_config", None)
    full = dict(d)
    wrapper_type = None
    if isinstance(d.get("text_config"), dict):
        wrapper_type = d.get("model_type")
        text = dict(d["text_config"])
        text.pop("quantization_config", None)
        # tie_word_embeddings set only on the wrapper applies to the text model
        if "tie_word_embeddings" in d and "tie_word_embeddings" not in text:
            text["tie_word_embeddings"] = d["tie_word_embeddings"]
        d = text
    model_type = d.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **d)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_config(cfg)

    total = sum(p.numel() for p in model.parameters())
    emb_in = model.get_input_embeddings()
    emb_out = model.get_output_embeddings()
    tied = emb_out is not None and emb_out.weight is emb_in.weight
    token_embedding = emb_in.weight.numel()
    lm_head = 0 if (emb_out is None or tied) else emb_out.weight.numel()

    layers_name, layers = find_layers(model)
    layer_ids = {id(p) for p in layers.parameters()} if layers is not None else set()
    position_embedding = 0
    position_names = []
    for name, mod in model.named_modules():
        if (isinstance(mod, nn.Embedding) and mod is not emb_in and name.split(".")[-1] in POSITION_NAMES
                and id(mod.weight) not in layer_ids):
            position_embedding += mod.weight.numel()
            position_names.append(name)

    rec = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "model_type": model_type,
        "architecture": type(model).__name__,
        "total": total,
        "token_embedding": token_embedding,
        "position_embedding": position_embedding,
        "lm_head": lm_head,
        "tied": tied,
        "layers_module": layers_name,
        "layers": [numel(b) for b in layers] if layers is not None else [],
    }
    if wrapper_type:
        rec["wrapper_model_type"] = wrapper_type
        whole = wrapper_total(full)
        rec["architecture"], rec["text_total"], rec["multimodal"] = whole[0], total, whole[1] - total
        rec["total"] = total = whole[1]
    parts = [moe_parts(b) for b in layers] if layers is not None else []
    if any(p[0] for p in parts):
        rec["experts"] = [p[0] for p in parts]
        rec["num_experts"] = max(p[3] for p in parts)
        rec["shared_experts"] = [p[1] for p in parts]
        rec["router"] = [p[2] for p in parts]
    rec["other"] = rec.get("text_total", total) - token_embedding - position_embedding - lm_head - sum(rec["layers"])
    # names of the parameters making up `other`, so tests/readers can see what it is
    counted = {id(emb_in.weight)} | layer_ids
    if emb_out is not None:
        counted.add(id(emb_out.weight))
    for name in position_names:
        counted.add(id(model.get_submodule(name).weight))
    other_params = {}
    seen = set()
    for name, p in model.named_parameters():
        if id(p) in counted or id(p) in seen:
            continue
        seen.add(id(p))
        other_params[name] = p.numel()
    rec["other_params"] = other_params
    return rec


def wrapper_total(d: dict) -> tuple[str, int]:
    """(class, parameters) of the class a multimodal wrapper config names, built on the meta device."""
    import torch
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    cfg = CONFIG_MAPPING[d["model_type"]].from_dict(d)
    cls = getattr(transformers, d["architectures"][0])
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls._from_config(cfg)
    return cls.__name__, sum(p.numel() for p in model.parameters())


def config_files(directory: Path):
    for f in sorted(directory.rglob("*.json")):
        if f.name.startswith("quantize_config"):
            continue
        yield f.relative_to(directory).as_posix(), f


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="*", type=Path, default=DEFAULT_DIRS)
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    out, failures = {}, []
    for directory in args.dirs:
        if not directory.is_dir():
            print(f"skip {directory}: not a directory", file=sys.stderr)
            continue
        for key, path in config_files(directory):
            if key in out:
                print(f"warning: duplicate key {key} ({path}) overrides an earlier one", file=sys.stderr)
            try:
                rec = count(json.loads(path.read_text()))
                print(f"{key}: {rec['total']:,}", file=sys.stderr)
            except Exception as e:
                rec = {"error": f"{type(e).__name__}: {e}"}
                failures.append((key, rec["error"]))
                print(f"{key}: FAILED {rec['error']}", file=sys.stderr)
                traceback.print_exc(limit=3, file=sys.stderr)
            out[key] = rec

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, sort_keys=True, indent=1) + "\n")
    print(f"wrote {len(out)} entries to {args.output} ({len(failures)} failed)", file=sys.stderr)
    for key, err in failures:
        print(f"  FAILED {key}: {err}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
