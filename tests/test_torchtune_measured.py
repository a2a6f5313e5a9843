"""torchtune's own modules against bytes autograd really saves (benchmarks/activations/measured_torchtune.json,
made by measure_torchtune.py on CPU with torchtune 0.4.0, the release of its README's "Optimization flags" table):
its attention hands SDPA K and V copied to every query head, and its recipes compile the chunked loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_mem.estimate import estimate
from llm_mem.estimators.saved import CPU
from llm_mem.estimators.training import TORCHTUNE_CE_CHUNKS, ce_logits_bytes, saved_activations
from llm_mem.report import Workload
from llm_mem.sources import parse_config, resolve_model

HERE = Path(__file__).parents[1] / "benchmarks" / "activations"
DATA = json.loads((HERE / "measured_torchtune.json").read_text())


def tiny_llama():  # type: ignore[no-untyped-def]
    raw = json.loads((HERE / "configs" / "tiny" / "llama.json").read_text())
    raw.pop("_source", None)
    return parse_config(raw)


@pytest.mark.parametrize("rec", DATA["layers"], ids=lambda r: f"{'compiled' if r['compiled'] else 'eager'}-"
                         f"{r['batch']}x{r['seq']}")
def test_torchtune_layers_are_byte_exact(rec):
    spec = tiny_llama()
    for expand, key in ((True, "torchtune_per_layer"), (False, "transformers_per_layer")):
        ours = saved_activations(spec, rec["batch"], rec["seq"], "sdpa", False, 2, kernels=CPU,
                                 compiled=rec["compiled"], expand_kv=expand).per_layer
        assert ours == max(rec[key]), (key, ours, rec[key])


@pytest.mark.parametrize("rec", DATA["chunked_loss"], ids=lambda r: f"{'compiled' if r['compiled'] else 'eager'}-"
                         f"{r['batch']}x{r['seq']}")
def test_chunked_loss_keeps_what_was_measured(rec):
    T, V, h = rec["batch"] * rec["seq"], 4096, 256
    kind = "chunked_compiled" if rec["compiled"] else "chunked"
    # the closed form less one chunk's backward and the projection's saved input: what the loss keeps
    per = -(-T // TORCHTUNE_CE_CHUNKS)
    transient = per * V * (2 if rec["compiled"] else 8) + T * h * 2
    kept = (ce_logits_bytes(kind, T, V, h, 2) - transient) / (T * V)
    assert abs(kept - rec["saved_bytes_per_logit"]) <= 0.005 * rec["saved_bytes_per_logit"]


def test_torchtune_trainer_sizes_its_own_attention_and_compiled_loss():
    m = resolve_model("meta-llama/Llama-3.2-3B-Instruct")
    base = dict(train="full", context=4096, batch=2, grad_checkpointing=False, chunked_ce=True,
                optimizer_in_bwd=False, optimizer="adamw")
    tt = estimate(m, Workload(**base, trainer="torchtune"))
    hf = estimate(m, Workload(**base))
    # K and V at query width (24 heads, not 8): 2 x (3072 - 1024) x 2 bytes per token per layer
    assert tt.component("activations") - hf.component("activations") == 2 * 2048 * 2 * 8192 * 28
    comp = estimate(m, Workload(**base, trainer="torchtune", torch_compile=True))
    T, V = 8192, 128256
    assert comp.component("logits") == ce_logits_bytes("chunked_compiled", T, V, 3072, 2)
    assert tt.component("logits") == ce_logits_bytes("chunked", T, V, 3072, 2)
    assert any("compiled" in c.note for c in comp.components if c.name == "logits" and c.note)
