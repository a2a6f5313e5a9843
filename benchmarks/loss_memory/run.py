"""Peak memory of the training loss under the frameworks' cross-entropy implementations, measured on CPU.

Command (from the repository root; about 10 s, no network, no GPU; needs torch):

    python benchmarks/loss_memory/run.py            # prints the table, writes results.json
    python benchmarks/loss_memory/run.py --no-write

Each loss is re-implemented here from its framework's source, op for op (same dtypes, same chunking, same
checkpointing; the code is ours, the algorithm theirs), on bf16 hidden states of T tokens and a frozen bf16
output projection of V rows (LoRA-style: the head does not train, the hidden states need a gradient). The
peak of live tensors allocated from the head's forward to the end of the backward (the hidden states'
gradient included) is read with llm-mem's CPU live-tensor tracker (llm_mem/verify/tracker.py), and compared
with the closed forms llm_mem.estimators.training uses for the `logits` component:

* hf: transformers 5.24 ForCausalLMLoss (bf16 logits kept by the model output, `.float()`, cross_entropy).
* torchtune-ce: torchtune with a loss on the model's output (torch.nn.CrossEntropyLoss, CEWithChunkedOutputLoss's
  predecessor; torchtune/modules/transformer.py `output = self.output(h).float()` and the recipes' `del outputs`
  after the loss, recipes/full_finetune_single_device.py _loss_step, at bd2a0fc7c and since 2024).
* torchtune-linear-ce: torchtune LinearCrossEntropyLoss (torchtune/modules/loss/cross_entropy_loss.py at
  bd2a0fc7c): hidden states of valid tokens index_select-ed, 8 token chunks, per chunk the output
  projection, `.float()`, cross_entropy(reduction="sum"); eager (compile off, the recipes' default).
* trl-chunked-nll: TRL SFTTrainer loss_type="chunked_nll" (trl/trainer/sft_trainer.py
  _chunked_cross_entropy_loss at f2cd577, TRL 1.10.0.dev0): valid tokens sorted to the front, chunks of 256
  tokens, each chunk's fp32 projection + log_softmax + nll + accuracy + entropy under
  torch.utils.checkpoint (non-reentrant).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

T, H, V = 2048, 256, 8192  # tokens, hidden, vocabulary: V/H = 32 as Llama-3's 128256/4096 ~ 31
TRL_CHUNK = 256  # trl/trainer/sft_trainer.py _CHUNKED_LM_HEAD_CHUNK_SIZE
TT_CHUNKS = 8  # torchtune LinearCrossEntropyLoss(num_output_chunks=8)


def hf(torch: Any, F: Any, hidden: Any, w: Any, labels: Any) -> Any:
    logits = F.linear(hidden, w)  # the model output keeps these bf16 logits
    out = {"logits": logits}
    loss = F.cross_entropy(out["logits"].float(), labels, reduction="mean")
    return loss, out  # a loop that holds the model output through backward (`outputs = model(...)`, then
    # `outputs.loss.backward()`, as PEFT's method_comparison and llm-mem --verify do)


def torchtune_ce(torch: Any, F: Any, hidden: Any, w: Any, labels: Any) -> Any:
    outputs = F.linear(hidden, w).float()  # TransformerDecoder: output = self.output(h).float()
    loss = F.cross_entropy(outputs, labels)  # the recipe's loss on the fp32 outputs ...
    del outputs  # ... then "free outputs otherwise it peaks backward memory"
    return loss, None


def torchtune_linear_ce(torch: Any, F: Any, hidden: Any, w: Any, labels: Any) -> Any:
    idx = torch.where(labels != -100)[0]
    hid, tgt = hidden.index_select(0, idx), labels.index_select(0, idx)
    total = torch.tensor(0.0)
    for hc, tc in zip(hid.tensor_split(TT_CHUNKS, dim=0), tgt.tensor_split(TT_CHUNKS, dim=0)):
        logits = F.linear(hc, w)
        total = total + F.cross_entropy(logits.float(), tc, reduction="sum")
    return total / idx.numel(), None


def _trl_chunk(torch: Any, F: Any, h: Any, w: Any, lbl: Any) -> Any:
    logits = h.float() @ w.float().t()
    log_p = F.log_softmax(logits, dim=-1)
    loss = F.nll_loss(log_p, lbl, ignore_index=-100, reduction="sum")
    valid = lbl != -100
    correct = ((logits.argmax(dim=-1) == lbl) & valid).sum().float()
    entropy = (-(log_p.exp() * log_p).sum(dim=-1) * valid).sum()
    return loss, correct, entropy


def trl_chunked_nll(torch: Any, F: Any, hidden: Any, w: Any, labels: Any) -> Any:
    from torch.utils.checkpoint import checkpoint

    valid = labels != -100
    order = valid.to(torch.int8).argsort(descending=True, stable=True)
    hid, lbl = hidden[order], labels[order]
    loss = hid.new_zeros((), dtype=torch.float32)
    for start in range(0, T, TRL_CHUNK):
        cl, _, _ = checkpoint(lambda a, b, c: _trl_chunk(torch, F, a, b, c), hid[start:start + TRL_CHUNK], w,
                              lbl[start:start + TRL_CHUNK], use_reentrant=False)
        loss = loss + cl
    return loss / valid.sum(), None


def predicted(name: str, elem: int = 2) -> int:
    """The closed form llm_mem.estimators.training uses, for these shapes."""
    from llm_mem.estimators.training import ce_logits_bytes

    kind = {"hf": "standard", "torchtune-ce": "upcast", "torchtune-linear-ce": "chunked", "trl-chunked-nll": "trl"}[name]
    return ce_logits_bytes(kind, T, V, H, elem)


def measure(fn: Any) -> int:
    import torch
    import torch.nn.functional as F

    from llm_mem.verify.tracker import make_tracker

    torch.manual_seed(0)
    hidden0 = torch.randn(T, H, dtype=torch.bfloat16)
    w = (torch.randn(V, H) * 0.02).to(torch.bfloat16)
    labels = torch.randint(0, V, (T,))
    hidden = hidden0.clone().requires_grad_(True)
    with make_tracker(torch.device("cpu")) as tr:
        base = tr.live()
        loss, held = fn(torch, F, hidden, w, labels)  # `held`: what the training loop keeps through backward
        loss.backward()
        del held
        peak = tr.peak() - base
    return int(peak)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    for name, fn in (("hf", hf), ("torchtune-ce", torchtune_ce), ("torchtune-linear-ce", torchtune_linear_ce),
                     ("trl-chunked-nll", trl_chunked_nll)):
        got = measure(fn)
        want = predicted(name)
        rows.append({"loss": name, "tokens": T, "hidden": H, "vocab": V, "measured_peak_bytes": got,
                     "bytes_per_logit": round(got / (T * V), 3), "closed_form_bytes": want,
                     "error_pct": round(100 * (want - got) / got, 2)})
        print(f"{name:22s} peak {got:>12,} B = {got / (T * V):6.3f} B/logit; closed form {want:>12,} "
              f"({100 * (want - got) / got:+.2f}%)")
    if not args.no_write:
        (HERE / "results.json").write_text(json.dumps({"command": "python benchmarks/loss_memory/run.py",
                                                       "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
