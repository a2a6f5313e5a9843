"""QLoRA as each recipe builds it, against bytes autograd saves with real bitsandbytes 4-bit layers on CPU
(benchmarks/activations/measured_qlora.json, measure_qlora.py): PEFT alone (fp32 adapters, bf16 rest), PEFT's
prepare_model_for_kbit_training (the rest in fp32, so the activations too) and TRL's SFTTrainer (bf16
adapters). And Unsloth's fused LoRA kernels, counted from their source (Triton, not measurable on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_mem.estimate import estimate
from llm_mem.estimators.saved import CPU
from llm_mem.estimators.training import saved_activations, trainable
from llm_mem.report import Workload
from llm_mem.sources import parse_config, resolve_model

HERE = Path(__file__).parents[1] / "benchmarks" / "activations"
DATA = json.loads((HERE / "measured_qlora.json").read_text())
ALL7 = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
WORKLOADS = {"peft": {"prepare_kbit": False}, "peft-kbit": {"prepare_kbit": True}, "trl": {"trainer": "trl"}}


@pytest.mark.parametrize("rec", DATA["records"], ids=lambda r: f"{r['recipe']}-{r['batch']}x{r['seq']}")
def test_qlora_layers_are_byte_exact_per_recipe(rec):
    raw = json.loads((HERE / "configs" / "tiny" / "llama.json").read_text())
    raw.pop("_source", None)
    spec = parse_config(raw)
    w = Workload(train="qlora", lora_rank=8, lora_targets=ALL7, lora_dropout=0.0, grad_checkpointing=False,
                 **WORKLOADS[rec["recipe"]])
    elem = 4 if rec["recipe"] == "peft-kbit" else 2  # the activations' dtype (estimate: plan.keep_bytes)
    ours = saved_activations(spec, rec["batch"], rec["seq"], "sdpa", False, elem, trainable(spec, w, ALL7),
                             kernels=CPU)
    assert ours.per_layer == max(rec["per_layer_exclusive_bytes"])
    # outside the layers: the embeddings', final norm's and head's saved tensors (the loss's log-softmax apart)
    assert abs(ours.outside - (rec["outside_exclusive_bytes"] - rec["logits_bytes"])) <= 16


def test_unsloth_kernels_keep_what_their_source_saves():
    m = resolve_model("meta-llama/Llama-3.1-8B-Instruct")
    h, a_d, kv_d, inter, heads = 4096, 4096, 1024, 14336, 32
    w = Workload(train="qlora", lora_rank=32, lora_targets=ALL7, batch=1, context=8192, trainer="unsloth",
                 attention="flash")
    r = estimate(m, w)
    # per token of the recomputed layer: the input and its rstd, LoRA_QKV's X, flash attention's q, k, v, output
    # and logsumexp (o_proj's input is the output), the residual and its rstd, LoRA_MLP's X, e and g
    per_token = 2 * (h + h + a_d + 2 * kv_d + a_d + h + h + 2 * inter) + 4 + 4 + 4 * heads
    # LoRA_MLP's backward: DW = dY @ down^T (T x I) beside the incoming dY (T x h); the rest in place
    per_token += 2 * (inter + h)
    assert r.component("activation_recompute") == 8192 * per_token
    # PEFT's modules (fp32 copies of each adapter's input, SwiGLU's product kept) keep far more
    peft = estimate(m, w.model_copy(update={"trainer": None, "prepare_kbit": False, "fused_ce": True,
                                             "activation_offloading": True}))
    assert peft.component("activation_recompute") > 2 * r.component("activation_recompute")
