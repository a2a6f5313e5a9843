#!/usr/bin/env python3
"""Live bytes of one checkpointed decoder layer's backward on CPU: the layer recomputed plus the transients
of its backward (the gradients its ops allocate while they run), beside the bytes the layer saves.

Method: the tiny bf16 models of measure_families.py, gradient checkpointing on (non-reentrant), one training
step under llm-mem's CPU live-tensor tracker (llm_mem/verify/tracker.py: every storage an ATen op allocates,
freed by weakref). A backward pre-hook on each decoder layer marks the start of its backward: the peak of live
bytes allocated from there until the next layer's backward starts, less the gradients of the layer's own
trainable parameters (kept after it), is the layer's backward working set. The middle layer of each model is
reported (the last one's backward overlaps the loss's).

Exact command (from the repository root, in the dev venv with the verify extra; about 1 minute):

    python benchmarks/activations/measure_backward.py        # writes measured_backward.json
"""

from __future__ import annotations

import json
import platform
import sys
import warnings
from pathlib import Path

import torch
import transformers

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))
from measure_families import build  # noqa: E402
from measure_saved import decoder_layers  # noqa: E402

from llm_mem.verify.tracker import make_tracker  # noqa: E402

warnings.filterwarnings("ignore")
FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gpt2", "gemma2"]
SHAPES = [(1, 256), (2, 256), (1, 1024)]
MODES = ["full", "lora"]
ALL_LINEAR = "all-linear"


def step(model, layers, vocab: int, b: int, s: int) -> list[int]:
    """Per decoder layer: peak live bytes allocated during its backward (recompute included)."""
    marks: list[tuple[int, int]] = []  # (layer index, live bytes at its backward's start)
    tracker = make_tracker(torch.device("cpu"))
    peaks: dict[int, int] = {}

    def pre(i):
        def hook(mod, grad_out):
            if marks:
                j, base = marks[-1]
                peaks[j] = tracker.peak() - base
            live = tracker.live()
            marks.append((i, live))
            tracker.reset_peak()
        return hook

    handles = [layer.register_full_backward_pre_hook(pre(i)) for i, layer in enumerate(layers)]
    ids = torch.randint(0, vocab, (b, s), generator=torch.Generator().manual_seed(b * 7 + s))
    try:
        out = model(input_ids=ids, labels=ids, use_cache=False)
        with tracker:
            out.loss.backward()
            if marks:
                j, base = marks[-1]
                peaks[j] = tracker.peak() - base
    finally:
        for h in handles:
            h.remove()
    model.zero_grad(set_to_none=True)
    return [peaks.get(i, 0) for i in range(len(layers))]


def main() -> None:
    from peft import LoraConfig, get_peft_model

    records = []
    for fam in FAMILIES:
        attn = "eager" if fam == "gemma2" else "sdpa"
        for mode in MODES:
            model = build(fam, attn)
            inner = model
            if mode == "lora":
                model = get_peft_model(model, LoraConfig(r=8, target_modules=ALL_LINEAR, lora_dropout=0.0))
                inner = model.base_model.model
            inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.train()
            layers = decoder_layers(inner)
            grads = [sum(p.numel() * p.element_size() for p in layer.parameters() if p.requires_grad)
                     for layer in layers]
            for b, s in SHAPES:
                peaks = step(model, layers, inner.config.vocab_size, b, s)
                mid = len(layers) // 2
                rec = {"family": fam, "attention": attn, "mode": mode, "batch": b, "seq": s,
                       "layer": mid, "backward_peak_bytes": peaks[mid], "layer_param_grad_bytes": grads[mid]}
                records.append(rec)
                print(rec, flush=True)
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
           "command": "python benchmarks/activations/measure_backward.py", "records": records}
    (HERE / "measured_backward.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
