#!/usr/bin/env python3
"""Saved-for-backward bytes of torchtune's own Llama decoder (not transformers') on CPU, eager and compiled,
beside transformers' Llama with the same shapes, and what torchtune's losses keep for backward.

torchtune builds its models itself (torchtune/modules/transformer.py, attention.py, position_embeddings.py), so
the per-layer rules measured on transformers' modules need checking there: torchtune's RoPE runs in fp32, its
attention reshapes differ, and its recipes compile the loss as well as the layers.

Exact command (from the repository root, in the dev venv with the verify extra; torchtune 0.4.0, the
release of the README's "Optimization flags" table (Nov 2024), and torchao 0.7.0 installed beside it without
their dataset/tokenizer dependencies, which the model code does not use):

    pip install --target /tmp/ttlib --no-deps torchtune==0.4.0 torchao==0.7.0
    PYTHONPATH=/tmp/ttlib python benchmarks/activations/measure_torchtune.py   # writes measured_torchtune.json

Method: the meter of measure_saved.py (saved_tensors_hooks, distinct storages alive at the end of one training
forward, parameters excluded, per decoder layer); ``compiled`` calls ``layer.compile()`` on every decoder layer,
as torchtune's ``training.compile_model`` does. Loss rows: CEWithChunkedOutputLoss (8 chunks) on the model's
chunked bf16 output, eager and with ``compute_cross_entropy`` compiled as torchtune's ``compile_loss`` does
(torchtune/training/_compile.py at 1814feb17, the commit of the README's "Optimization flags" table): bytes per
logit alive after the loss forward once the recipe has dropped its reference to the logits (``del logits``).
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import json
import platform
import sys
import warnings
from pathlib import Path
from typing import ClassVar
from unittest import mock

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure_saved import SavedTensorMeter  # noqa: E402

warnings.filterwarnings("ignore")


class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """torchtune imports its dataset and tokenizer dependencies at package import; the model code never calls
    them, so they are stubbed rather than installed."""

    NAMES: ClassVar[set[str]] = {"datasets", "sentencepiece", "tiktoken", "blobfile", "omegaconf", "kagglehub", "tokenizers"}

    def find_spec(self, name, path, target=None):
        return importlib.machinery.ModuleSpec(name, self, is_package=True) if name.split(".")[0] in self.NAMES \
            else None

    def create_module(self, spec):
        m = mock.MagicMock(name=spec.name)
        m.__path__, m.__spec__ = [], spec
        return m

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Stub())

TINY = json.loads((HERE / "configs" / "tiny" / "llama.json").read_text())
H, INTER, NH, NKV, V = (TINY[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                       "num_key_value_heads", "vocab_size"))
LAYERS = 2
SHAPES = [(1, 128), (2, 256)]


def torchtune_model():
    from torchtune.models.llama3_1._component_builders import llama3_1

    torch.manual_seed(0)
    with torch.device("cpu"):
        m = llama3_1(vocab_size=V, num_layers=LAYERS, num_heads=NH, num_kv_heads=NKV, embed_dim=H,
                     max_seq_len=4096, intermediate_dim=INTER, rope_base=500000)
    return m.to(torch.bfloat16).train()


def hf_model():
    from transformers import AutoConfig, AutoModelForCausalLM

    raw = {k: v for k, v in TINY.items() if k not in ("_source", "model_type")}
    cfg = AutoConfig.for_model("llama", **raw)
    cfg.use_cache = False
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa").train()


def layer_bytes(model, layers, run) -> list[int]:
    meter = SavedTensorMeter(model, V)
    handles = meter.install_layer_hooks(layers)
    try:
        with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
            out = run()
        res, _ = meter.summarize(len(layers))
    finally:
        for h in handles:
            h.remove()
    del out
    gc.collect()
    return res["per_layer_exclusive_bytes"]


def loss_bytes_per_logit(compiled: bool, b: int, s: int) -> float:
    """Bytes per logit the chunked loss keeps for backward once the recipe drops the logits list."""
    from torchtune.modules.loss import CEWithChunkedOutputLoss

    loss_fn = CEWithChunkedOutputLoss()
    if compiled:
        loss_fn.compute_cross_entropy = torch.compile(loss_fn.compute_cross_entropy)
    torch.manual_seed(0)
    chunks = [torch.randn(b, s // 8, V, dtype=torch.bfloat16, requires_grad=True) for _ in range(8)]
    leaves = {c.untyped_storage().data_ptr() for c in chunks}
    logits = [c * 1 for c in chunks]  # non-leaf, as the model's output projection returns
    labels = torch.randint(0, V, (b, s))
    kept: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in leaves:
            kept[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(logits, labels)
    del logits
    gc.collect()
    n = sum(kept.values())
    loss.backward()
    return n / (b * s * V)


def main() -> None:
    import torchtune

    records = []
    for compiled in (False, True):
        torch._dynamo.reset()
        tt = torchtune_model()
        hf = hf_model()
        if compiled:
            for layer in list(tt.layers) + list(hf.model.layers):
                layer.compile()
        for b, s in SHAPES:
            ids = torch.randint(0, V, (b, s), generator=torch.Generator().manual_seed(b * 7 + s))
            t_bytes = layer_bytes(tt, list(tt.layers), lambda ids=ids, tt=tt: tt(ids))
            h_bytes = layer_bytes(hf, list(hf.model.layers),
                                  lambda ids=ids, hf=hf: hf(input_ids=ids, labels=ids).loss)
            rec = {"compiled": compiled, "batch": b, "seq": s, "torchtune_per_layer": t_bytes,
                   "transformers_per_layer": h_bytes, "ratio": t_bytes[0] / h_bytes[0],
                   "extra_bytes_per_token": (t_bytes[0] - h_bytes[0]) / (b * s)}
            records.append(rec)
            print(rec, flush=True)
    loss = []
    for compiled in (False, True):
        torch._dynamo.reset()
        for b, s in SHAPES:
            bpl = loss_bytes_per_logit(compiled, b, s)
            loss.append({"compiled": compiled, "batch": b, "seq": s, "saved_bytes_per_logit": bpl})
            print("chunked loss", compiled, b, s, bpl, flush=True)
    out = {"torch": torch.__version__, "torchtune": torchtune.__version__, "python": platform.python_version(),
           "config": "benchmarks/activations/configs/tiny/llama.json",
           "command": "PYTHONPATH=/tmp/ttlib python benchmarks/activations/measure_torchtune.py",
           "layers": records, "chunked_loss": loss}
    (HERE / "measured_torchtune.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
