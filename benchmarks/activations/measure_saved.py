#!/usr/bin/env python3
"""Measure the bytes autograd saves for backward (training activations), on CPU.

Ground truth for llm-mem's training-activation formula.

Exact command (from the repository root; ~10 min on 2 CPU cores, ~10 GiB RAM peak):

    python3 benchmarks/activations/measure_saved.py

Options: ``--models gpt2,llama`` (substring filter on the model key), ``--shapes 1x128,2x256``,
``--out PATH`` (default benchmarks/activations/measured.json), ``--detail-out PATH`` (default
benchmarks/activations/saved_tensors_detail.json, per-tensor listing for the detail shape),
``--detail-shape 2x256``.

What is measured
----------------
For every model config in ``configs/`` (HF ``config.json`` copies; some cut to 2 layers), every
(batch, seq), attention implementation in {eager, sdpa} and checkpointing in {off, on
(``gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})``)} we build
a randomly initialised bf16 model (``AutoConfig.for_model`` + ``AutoModelForCausalLM.from_config``;
nothing is downloaded, no remote code), put it in ``train()`` mode (dropout as in the config) and run
ONE forward pass with ``labels=input_ids`` (so the loss is computed) under
``torch.autograd.graph.saved_tensors_hooks``.  No backward is run.

* Every tensor autograd saves goes through the pack hook.  We keep a *weak* reference to it, and at
  the end of the forward (loss still alive) we count only saved tensors that are still alive, i.e.
  still held by the autograd graph (a graph branch that is dropped during forward frees what it
  saved; those bytes are reported as ``freed_during_forward_bytes``).
* Bytes are counted per underlying storage (``untyped_storage().nbytes()``), deduplicated by
  ``untyped_storage().data_ptr()``: a storage saved by several ops (or as several views) counts
  once, and a view saved from a larger buffer counts the whole buffer (that is what stays in RAM).
* Storages that belong to a model parameter or buffer are EXCLUDED (weights saved for matmul
  backward are not activations); their size is reported separately as ``param_storage_saved_bytes``.
  A *copy* of a weight (e.g. DeepSeek's router weight upcast to fp32 every forward) is a fresh
  storage and IS counted.
* Attribution: forward pre/post hooks on each decoder layer set a "current layer" marker.  With
  transformers>=5 the checkpoint wraps the layer's ``forward`` (not ``__call__``), so the hooks are
  outside the checkpoint and the inputs the non-reentrant checkpoint keeps are attributed to the
  layer.  Under non-reentrant checkpointing the checkpoint installs its own inner
  saved_tensors_hooks, so our hook only sees what the checkpoint keeps (the layer inputs).
  A storage is attributed to the context (layer index or "outside") that saved it FIRST
  (``per_layer_bytes``/``outside_layers_bytes``, they sum to ``total_saved_bytes``).  Storages saved
  from more than one context (e.g. RoPE cos/sin shared by all layers, the hidden state passed from one
  layer to the next) are also listed in ``shared_bytes`` and excluded from
  ``per_layer_exclusive_bytes`` / ``outside_exclusive_bytes``.
* ``logits_bytes``: storages whose tensor's last dim == vocab_size (the lm_head output, its fp32
  upcast in the loss, log_softmax output ...).
* ``by_dtype``: bytes per element dtype of the saved tensors.

Output: a JSON list of records (see ``record`` below) in measured.json and, for the detail shape,
a per-storage listing (shape, dtype, bytes, context, and for no-checkpointing runs the autograd
node/attribute names that saved it, found by walking the graph from the loss) in
saved_tensors_detail.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import warnings
import weakref
from collections import defaultdict
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

warnings.filterwarnings("ignore", category=FutureWarning)  # gradient_checkpointing_enable -> activation_checkpointing_enable rename

HERE = Path(__file__).resolve().parent
CONFIG_DIR = HERE / "configs"

# key, config file, number of layers to keep (None = all of them)
MODELS = [
    ("openai-community/gpt2", "openai-community__gpt2.json", None),
    ("facebook/opt-125m", "facebook__opt-125m.json", None),
    ("Qwen/Qwen2.5-0.5B", "Qwen__Qwen2.5-0.5B.json", 4),
    ("meta-llama/Llama-3.2-1B", "meta-llama__Llama-3.2-1B.json", 2),
    ("Qwen/Qwen3-30B-A3B", "Qwen__Qwen3-30B-A3B.json", 2),
    ("deepseek-ai/DeepSeek-V2-Lite", "deepseek-ai__DeepSeek-V2-Lite.json", 2),
]
SHAPES = [(1, 128), (2, 256), (1, 512)]
ATTNS = ["eager", "sdpa"]
CKPTS = [False, True]

DROP_KEYS = {"architectures", "auto_map", "_name_or_path", "transformers_version", "torch_dtype", "dtype"}


def load_config(fname: str, n_layers: int | None):
    raw = json.loads((CONFIG_DIR / fname).read_text())
    model_type = raw.pop("model_type")
    kw = {k: v for k, v in raw.items() if k not in DROP_KEYS}
    if n_layers is not None:
        for key in ("num_hidden_layers", "n_layer"):
            if key in kw:
                kw[key] = n_layers
    cfg = AutoConfig.for_model(model_type, **kw)
    cfg.use_cache = False
    return cfg


def cfg_get(cfg, *names, default=None):
    for n in names:
        v = getattr(cfg, n, None)
        if v is not None:
            return v
    return default


def describe(cfg):
    h = cfg_get(cfg, "hidden_size", "n_embd")
    heads = cfg_get(cfg, "num_attention_heads", "n_head")
    kv = cfg_get(cfg, "num_key_value_heads", default=heads)
    inter = cfg_get(cfg, "intermediate_size", "ffn_dim", "n_inner", default=4 * h)
    head_dim = cfg_get(cfg, "head_dim", default=h // heads)
    d = dict(
        layers=cfg_get(cfg, "num_hidden_layers", "n_layer"),
        hidden=h,
        heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        intermediate=inter,
        vocab=cfg.vocab_size,
        experts=cfg_get(cfg, "num_experts", "n_routed_experts", default=0),
        top_k=cfg_get(cfg, "num_experts_per_tok", default=0),
        moe_intermediate=cfg_get(cfg, "moe_intermediate_size", default=0),
        shared_experts=cfg_get(cfg, "n_shared_experts", default=0),
        first_k_dense_replace=cfg_get(cfg, "first_k_dense_replace", default=None),
        tie_word_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)),
    )
    if cfg.model_type == "deepseek_v2":
        d.update(
            kv_lora_rank=cfg.kv_lora_rank,
            q_lora_rank=cfg.q_lora_rank,
            qk_nope_head_dim=cfg.qk_nope_head_dim,
            qk_rope_head_dim=cfg.qk_rope_head_dim,
            v_head_dim=cfg.v_head_dim,
        )
    drop = {}
    for n in ("attn_pdrop", "resid_pdrop", "embd_pdrop", "dropout", "attention_dropout", "activation_dropout",
              "hidden_dropout"):
        v = getattr(cfg, n, None)
        if v is not None:
            drop[n] = v
    d["dropout"] = drop
    return d


def fix_conv1d_layout(model):
    """GPT-2's Conv1D computes addmm(b, x, W) with W stored (in, out) row-major; on CPU the bf16 kernel for that
    layout is ~30x slower than for nn.Linear's transposed weight.  Re-store W column-major (same values, same
    shape, still the parameter's own storage).  This changes speed only, not what autograd saves."""
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover
        return
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, Conv1D):
                mod.weight.data = mod.weight.data.t().contiguous().t()


def decoder_layers(model):
    names = set(getattr(model, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    assert layers, f"no decoder layers found ({names})"
    return layers


class SavedTensorMeter:
    """saved_tensors_hooks that record every saved tensor (weakly) with the current context."""

    def __init__(self, model, vocab: int):
        self.vocab = vocab
        self.param_ptrs = {}
        for t in list(model.parameters()) + list(model.buffers()):
            st = t.untyped_storage()
            self.param_ptrs[st.data_ptr()] = st.nbytes()
        self.ctx = "outside"
        self.entries = []  # (weakref to tensor, ptr, nbytes, dtype, shape, ctx)
        self.param_saved = {}
        self.n_packed = 0

    # context markers -------------------------------------------------------------------------
    def install_layer_hooks(self, layers):
        handles = []
        for i, layer in enumerate(layers):
            def pre(mod, args, i=i):
                self.ctx = i

            def post(mod, args, out):
                self.ctx = "outside"

            handles.append(layer.register_forward_pre_hook(pre))
            handles.append(layer.register_forward_hook(post))
        return handles

    # hooks -----------------------------------------------------------------------------------
    def pack(self, t):
        self.n_packed += 1
        st = t.untyped_storage()
        ptr = st.data_ptr()
        nbytes = st.nbytes()
        if ptr in self.param_ptrs and ptr != 0:
            self.param_saved[ptr] = nbytes
            return t.detach()
        # Return a detached alias (same storage, no grad_fn).  Returning `t` itself leaks: when `t` is the
        # output of the op that saves it (softmax, rsqrt, ...), node -> saved t -> t.grad_fn -> node is a C++
        # reference cycle that Python's GC cannot break, so every forward's activations would stay alive.
        d = t.detach()
        self.entries.append((weakref.ref(d), ptr, nbytes, t.dtype, tuple(t.shape), self.ctx))
        return d

    @staticmethod
    def unpack(t):
        return t

    # summary ---------------------------------------------------------------------------------
    def summarize(self, n_layers: int):
        storages = {}  # ptr -> dict
        freed = 0
        for ref, ptr, nbytes, dtype, shape, ctx in self.entries:
            if ref() is None:
                freed += nbytes
                continue
            s = storages.get(ptr)
            if s is None:
                s = storages[ptr] = dict(ptr=ptr, nbytes=nbytes, dtype=str(dtype).replace("torch.", ""),
                                         shapes=[], ctxs=[], logits=False)
            s["nbytes"] = max(s["nbytes"], nbytes)
            if shape not in s["shapes"]:
                s["shapes"].append(shape)
            if ctx not in s["ctxs"]:
                s["ctxs"].append(ctx)
            if len(shape) > 0 and shape[-1] == self.vocab:
                s["logits"] = True
        per_layer = [0] * n_layers
        per_layer_excl = [0] * n_layers
        outside = outside_excl = shared = logits = total = 0
        by_dtype = defaultdict(int)
        for s in storages.values():
            b = s["nbytes"]
            total += b
            by_dtype[s["dtype"]] += b
            first = s["ctxs"][0]
            if first == "outside":
                outside += b
            else:
                per_layer[first] += b
            if len(s["ctxs"]) > 1:
                shared += b
            elif first == "outside":
                outside_excl += b
            else:
                per_layer_excl[first] += b
            if s["logits"]:
                logits += b
        return dict(
            total_saved_bytes=total,
            per_layer_bytes=per_layer,
            outside_layers_bytes=outside,
            per_layer_exclusive_bytes=per_layer_excl,
            outside_exclusive_bytes=outside_excl,
            shared_bytes=shared,
            logits_bytes=logits,
            by_dtype=dict(sorted(by_dtype.items())),
            freed_during_forward_bytes=freed,
            param_storage_saved_bytes=sum(self.param_saved.values()),
            n_saved_tensors=self.n_packed,
            n_storages=len(storages),
        ), storages


def graph_saved_names(loss):
    """Walk the autograd graph; map storage ptr -> list of 'Node.attr' that saved it."""
    names = defaultdict(list)
    seen = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        nname = node.name()
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            try:
                val = getattr(node, attr)
            except Exception:
                continue
            vals = val if isinstance(val, (tuple, list)) else (val,)
            for v in vals:
                if isinstance(v, torch.Tensor):
                    names[v.untyped_storage().data_ptr()].append(f"{nname}.{attr[7:]}{tuple(v.shape)}")
        if hasattr(node, "saved_tensors") and not nname.startswith("torch::autograd"):
            try:
                for v in node.saved_tensors:
                    if isinstance(v, torch.Tensor):
                        names[v.untyped_storage().data_ptr()].append(f"{nname}.saved{tuple(v.shape)}")
            except Exception:
                pass
        for nxt, _ in node.next_functions:
            if nxt is not None:
                stack.append(nxt)
    return names


def saved_step(model, ckpt_model, meter_layers, vocab, b, s, ckpt, detail=False):
    """One training forward of ``model`` under the meter (checkpointing switched on ``ckpt_model``, the
    module transformers enables it on): (summary, seconds of the forward, per-storage detail or None)."""
    if ckpt:
        ckpt_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        ckpt_model.gradient_checkpointing_disable()
    model.train()
    g = torch.Generator().manual_seed(1234 + b * 7 + s)
    ids = torch.randint(0, vocab, (b, s), generator=g)
    meter = SavedTensorMeter(model, vocab)
    handles = meter.install_layer_hooks(meter_layers)
    torch.manual_seed(0)
    t0 = time.time()
    try:
        with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
            out = model(input_ids=ids, labels=ids, use_cache=False)
        loss = out.loss
        assert loss is not None and loss.requires_grad
        dt = time.time() - t0
        res, storages = meter.summarize(len(meter_layers))
        details = None
        if detail:
            names = graph_saved_names(loss) if not ckpt else {}
            details = [dict(ctx=st["ctxs"], nbytes=st["nbytes"], dtype=st["dtype"],
                            shapes=[list(x) for x in st["shapes"]],
                            saved_by=sorted(set(names.get(st["ptr"], [])))) for st in storages.values()]
    finally:
        for h in handles:
            h.remove()
    del out, loss, meter
    gc.collect()
    return res, dt, details


def measure(model, meter_layers, desc, b, s, attn, ckpt, detail=False):
    model.set_attn_implementation(attn)
    assert model.config._attn_implementation == attn, model.config._attn_implementation
    return saved_step(model, model, meter_layers, desc["vocab"], b, s, ckpt, detail)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="", help="comma-separated substrings of model keys")
    ap.add_argument("--shapes", default="", help="e.g. 1x128,2x256")
    ap.add_argument("--attn", default=",".join(ATTNS))
    ap.add_argument("--ckpt", default="0,1")
    ap.add_argument("--out", default=str(HERE / "measured.json"))
    ap.add_argument("--detail-out", default=str(HERE / "saved_tensors_detail.json"))
    ap.add_argument("--detail-shape", default="2x256")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--moe-eager-experts", default="0",
                    help="1: also measure MoE models with experts_implementation='eager' (sdpa, no ckpt, "
                         "shapes 1x128 and 2x256; adds ~2 min)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    shapes = [tuple(int(x) for x in sh.split("x")) for sh in args.shapes.split(",")] if args.shapes else SHAPES
    attns = args.attn.split(",")
    ckpts = [bool(int(c)) for c in args.ckpt.split(",")]
    detail_shape = tuple(int(x) for x in args.detail_shape.split("x"))
    filt = [f.lower() for f in args.models.split(",") if f]

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}, "
          f"threads {torch.get_num_threads()}", flush=True)
    records, details = [], []
    t_all = time.time()
    for key, fname, n_layers in MODELS:
        if filt and not any(f in key.lower() for f in filt):
            continue
        cfg = load_config(fname, n_layers)
        desc = describe(cfg)
        torch.manual_seed(0)
        t0 = time.time()
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)  # `torch_dtype=` is deprecated in transformers 5
        model.train()
        fix_conv1d_layout(model)
        n_params = sum(p.numel() for p in model.parameters())
        layers = decoder_layers(model)
        assert len(layers) == desc["layers"], (len(layers), desc["layers"])
        experts_impl = getattr(model.config, "_experts_implementation", None) if desc["experts"] else None
        print(f"== {key}: {desc['layers']} layers, {n_params/1e6:.1f}M params, built in {time.time()-t0:.1f}s, "
              f"experts_impl={experts_impl}", flush=True)
        for b, s in shapes:
            for attn in attns:
                for ckpt in ckpts:
                    want_detail = (b, s) == detail_shape
                    res, dt, det = measure(model, layers, desc, b, s, attn, ckpt, detail=want_detail)
                    rec = dict(model=key, **dict(desc.items()), experts_impl=experts_impl,
                               batch=b, seq=s, attn=attn, checkpointing=ckpt, dtype="bfloat16", **res,
                               forward_seconds=round(dt, 2))
                    records.append(rec)
                    if det is not None:
                        details.append(dict(model=key, experts_impl=experts_impl, batch=b, seq=s, attn=attn,
                                            checkpointing=ckpt,
                                            storages=det))
                    pl = ",".join(f"{x/2**20:.2f}" for x in res["per_layer_bytes"])
                    print(f"  b={b} s={s} {attn:5s} ckpt={int(ckpt)}  total={res['total_saved_bytes']/2**20:9.2f}MiB "
                          f"layers=[{pl}]MiB outside={res['outside_layers_bytes']/2**20:.2f}MiB "
                          f"logits={res['logits_bytes']/2**20:.2f}MiB shared={res['shared_bytes']/2**20:.3f}MiB "
                          f"freed={res['freed_during_forward_bytes']/2**20:.2f}MiB ({dt:.1f}s)", flush=True)
        if experts_impl and experts_impl != "eager" and args.moe_eager_experts == "1":
            # transformers' original per-expert python loop, for comparison with the default grouped_mm
            model.set_experts_implementation("eager")
            for b, s in [sh for sh in shapes if sh[0] * sh[1] <= 512][:2]:
                res, dt, det = measure(model, layers, desc, b, s, "sdpa", False, detail=(b, s) == detail_shape)
                records.append(dict(model=key, **desc, experts_impl="eager", batch=b, seq=s, attn="sdpa",
                                    checkpointing=False, dtype="bfloat16", **res, forward_seconds=round(dt, 2)))
                if det is not None:
                    details.append(dict(model=key, experts_impl="eager", batch=b, seq=s, attn="sdpa",
                                        checkpointing=False, storages=det))
                pl = ",".join(f"{x/2**20:.2f}" for x in res["per_layer_bytes"])
                print(f"  [experts=eager] b={b} s={s} sdpa  ckpt=0  total={res['total_saved_bytes']/2**20:9.2f}MiB "
                      f"layers=[{pl}]MiB ({dt:.1f}s)", flush=True)
            model.set_experts_implementation(experts_impl)
        del model, layers
        gc.collect()
        write(records, details, args)  # after every model, so a partial run still leaves results
    write(records, details, args)
    print(f"wrote {len(records)} records to {args.out} in {time.time()-t_all:.0f}s", flush=True)


def write(records, details, args):
    meta = dict(torch=torch.__version__, transformers=transformers.__version__, python=platform.python_version(),
                machine=platform.machine(), processor=platform.processor(), threads=torch.get_num_threads())
    for r in records:
        r["env"] = meta
    Path(args.out).write_text(json.dumps(records, indent=1) + "\n")
    if details:
        Path(args.detail_out).write_text(json.dumps(details, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
