"""Build the reduced model on the local accelerator and measure it.

Everything here imports torch/transformers lazily (callers check they exist first). The model is
randomly initialised by `AutoModelForCausalLM.from_config` directly on the device in the measured
dtype; nothing is downloaded and remote code is never run (trust_remote_code=False).
"""

from __future__ import annotations

import gc
import inspect
import os
import platform
from dataclasses import dataclass, field
from typing import Any

# Weight formats whose tensors from_config can create as they are.
FLOAT_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# Formats bitsandbytes can apply on CUDA (transformers' BitsAndBytesConfig: load_in_4bit nf4/fp4, load_in_8bit).
BNB_FORMATS = ("nf4", "fp4", "int8")


@dataclass
class Parts:
    """Where the pieces of the reduced model are, and their parameter bytes."""

    layers: list[Any]
    embedding: Any
    lm_head: Any | None
    layer_param_bytes: list[int] = field(default_factory=list)
    layer_trainable_bytes: list[int] = field(default_factory=list)
    embedding_bytes: int = 0
    lm_head_bytes: int = 0
    other_bytes: int = 0
    buffer_bytes: int = 0


@dataclass
class Measurement:
    """Raw figures of the reduced model at the measured context (bytes)."""

    device: str
    device_type: str
    method: str
    dtype: str
    attention: str
    context: int
    batch: int
    n_layers: int
    weights_measured: bool
    parts: Parts
    layer_kv: list[int] = field(default_factory=list)  # storage bytes per layer
    layer_kv_tokens: list[int] = field(default_factory=list)  # storage length in tokens per layer
    layer_kv_logical: list[int] = field(default_factory=list)  # tokens the cache exposes per layer
    layer_act: list[int] = field(default_factory=list)  # inference: one layer's transient peak
    layer_saved: list[int] = field(default_factory=list)  # training: bytes each layer leaves alive
    layer_recompute: list[int] = field(default_factory=list)  # training + checkpointing: backward window
    layer_grads: list[int] = field(default_factory=list)
    layer_adapters: list[int] = field(default_factory=list)
    layer_optimizer: list[int] = field(default_factory=list)
    outside_saved: int = 0
    outside_grads: int = 0
    outside_adapters: int = 0
    outside_optimizer: int = 0
    logits: int = 0
    optimizer_measured: bool = False
    adapters_measured: bool = False
    peak: int = 0
    reserved_peak: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# ---- device ------------------------------------------------------------------------------------
def pick_device() -> tuple[Any, str]:
    """(torch.device, description): CUDA/ROCm, XPU, MPS, else CPU."""
    import torch

    if torch.cuda.is_available():
        kind = "ROCm" if getattr(torch.version, "hip", None) else "CUDA"
        return torch.device("cuda", torch.cuda.current_device()), f"{kind} {torch.cuda.get_device_name()}"
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        return torch.device("xpu", 0), f"XPU {torch.xpu.get_device_name(0)}"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps"), "Apple MPS"
    cpu = platform.processor() or platform.machine() or "CPU"
    return torch.device("cpu"), f"CPU {cpu} ({torch.get_num_threads()} threads)"


def _oom_types() -> tuple[type, ...]:
    import torch

    types: list[type] = [MemoryError]
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None:
        types.append(oom)
    return tuple(types)


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, _oom_types()):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


# ---- bytes of tensors --------------------------------------------------------------------------
def storage_bytes(tensors: Any, seen: set[int] | None = None) -> int:
    """Bytes of the distinct storages behind `tensors` (views and tied tensors count once)."""
    seen = set() if seen is None else seen
    total = 0
    for t in tensors:
        if t is None:
            continue
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError):
            continue
        key = st.data_ptr()
        if key in seen or key == 0:
            continue
        seen.add(key)
        total += st.nbytes()
    return total


def _bnb_state_tensors(module: Any) -> list[Any]:
    """Tensors bitsandbytes keeps beside a 4-bit weight (absmax, nested absmax, code)."""
    out = []
    for m in module.modules():
        w = getattr(m, "weight", None)
        qs = getattr(w, "quant_state", None)
        while qs is not None:
            out += [getattr(qs, "absmax", None), getattr(qs, "code", None)]
            qs = getattr(qs, "state2", None)
        scb = getattr(w, "SCB", None)  # int8: per-row scales
        if scb is not None:
            out.append(scb)
    return [t for t in out if t is not None]


# ---- measurement -------------------------------------------------------------------------------
def _hidden_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    return kwargs.get("hidden_states")


def _cache_layers(cache: Any) -> list[tuple[Any, Any]]:
    """(keys, values) per layer of a transformers cache (Cache.layers in v5, key_cache lists before)."""
    if cache is None:
        return []
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(getattr(layer, "keys", None), getattr(layer, "values", None)) for layer in layers]
    kc, vc = getattr(cache, "key_cache", None), getattr(cache, "value_cache", None)
    if kc is not None:
        return list(zip(kc, vc or []))
    return [tuple(x) for x in cache]  # legacy tuple[Any, ...] of tuples


def _input_ids(vocab: int, batch: int, context: int, device: Any) -> Any:
    """Random token ids, the same on every run (seed 0)."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(0)
    return torch.randint(0, vocab, (batch, context), generator=gen).to(device)


def _supports(model: Any, arg: str) -> bool:
    try:
        return arg in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def measure_inference(model: Any, parts: Parts, tracker: Any, device: Any, batch: int, context: int,
                      vocab: int, logits_mode: str, m: Measurement) -> None:
    """One prefill of batch x context with use_cache=True; per-layer transient, KV and logits."""
    import torch

    n = len(parts.layers)
    rec: list[dict[str, int]] = [{} for _ in range(n)]
    hooks = []

    def pre(i: int) -> Any:
        def hook(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            hs = _hidden_arg(args, kwargs)
            rec[i]["input"] = storage_bytes([hs]) if isinstance(hs, torch.Tensor) else 0
            rec[i]["base"] = tracker.live()
            tracker.reset_peak()
        return hook

    def post(i: int) -> Any:
        def hook(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            rec[i]["peak"] = tracker.peak()
        return hook

    for i, layer in enumerate(parts.layers):
        hooks.append(layer.register_forward_pre_hook(pre(i), with_kwargs=True))
        hooks.append(layer.register_forward_hook(post(i), with_kwargs=True))
    ids = _input_ids(vocab, batch, context, device)
    kw: dict[str, Any] = {"input_ids": ids, "use_cache": True}
    if _supports(model, "logits_to_keep"):
        # generate() asks for the last position only (transformers generation/utils.py:
        # model_kwargs["logits_to_keep"] = 1) and copies it to fp32 (`.to(copy=True, dtype=torch.float32)`)
        kw["logits_to_keep"] = 1 if logits_mode == "last" else 0
    try:
        with torch.no_grad(), tracker:
            out = model(**kw)
            logits = out.logits
            up = logits[:, -1, :].to(copy=True, dtype=torch.float32) if logits_mode == "last" else logits.float()
            # the head's output and the fp32 copy, counted as tensors (a peak difference would be
            # blurred by the final norm's output being freed in between)
            m.logits = storage_bytes([logits]) + storage_bytes([up])
            m.peak = max(r.get("peak", 0) for r in rec)
            m.reserved_peak = tracker.reserved_peak()
            del up, logits
        cache = out["cache"] if "cache" in out else out.get("past_key_values")
        for k, v in _cache_layers(cache)[:n]:
            kv = storage_bytes([k, v])
            m.layer_kv.append(kv)
            per_token = 0
            logical = 0
            for t in (k, v):
                if t is not None and t.dim() >= 2:
                    per_token += t.numel() // max(t.shape[-2], 1) * t.element_size()
                    logical = t.shape[-2]
            m.layer_kv_tokens.append(kv // per_token if per_token else 0)
            m.layer_kv_logical.append(logical)
        while len(m.layer_kv) < n:
            m.layer_kv.append(0)
            m.layer_kv_tokens.append(0)
            m.layer_kv_logical.append(0)
        for i in range(n):
            r = rec[i]
            m.layer_act.append(max(0, r["peak"] - r["base"] - m.layer_kv[i] + r["input"]))
        del out, cache
    finally:
        for h in hooks:
            h.remove()


def measure_training(model: Any, parts: Parts, tracker: Any, device: Any, batch: int, context: int,
                     vocab: int, checkpointing: bool, optimizer: str, lora: bool, m: Measurement) -> None:
    """One forward with labels and one backward (and, for adapters, one optimizer step)."""
    import torch

    n = len(parts.layers)
    saved: list[int] = [0] * n
    base: list[int] = [0] * n
    state: dict[str, Any] = {"phase": "forward", "window": None, "win_base": 0}
    recompute: list[int] = [0] * n
    marks: dict[str, int] = {}
    hooks = []

    def close_window() -> None:
        w = state["window"]
        if w is not None:
            recompute[w] = max(recompute[w], tracker.peak() - state["win_base"])
            state["window"] = None

    def pre(i: int) -> Any:
        def hook(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if i == 0:
                marks["layers_start"] = tracker.live()
            base[i] = tracker.live()
        return hook

    def post(i: int) -> Any:
        def hook(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            saved[i] = tracker.live() - base[i]
            marks["layers_end"] = tracker.live()
        return hook

    def child_pre(i: int) -> Any:
        def hook(mod: Any, args: tuple[Any, ...]) -> None:
            # under checkpointing the layer's children run again in backward: the recompute of layer i
            if state["phase"] == "backward" and state["window"] != i:
                close_window()
                state["window"], state["win_base"] = i, tracker.live()
                tracker.reset_peak()
        return hook

    def head_grad(grad: Any) -> None:
        # the gradient reaching the head's input: the loss and head backward are done
        marks["head_bwd_peak"] = tracker.peak()

    def head_pre(mod: Any, args: tuple[Any, ...]) -> None:
        marks["head"] = tracker.live()
        tracker.reset_peak()
        if args and isinstance(args[0], torch.Tensor) and args[0].requires_grad:
            args[0].register_hook(head_grad)

    for i, layer in enumerate(parts.layers):
        hooks.append(layer.register_forward_pre_hook(pre(i), with_kwargs=True))
        hooks.append(layer.register_forward_hook(post(i), with_kwargs=True))
        if checkpointing:
            for child in layer.children():
                hooks.append(child.register_forward_pre_hook(child_pre(i)))
    if parts.lm_head is not None:
        hooks.append(parts.lm_head.register_forward_pre_hook(head_pre))
    ids = _input_ids(vocab, batch, context, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        with tracker:
            start = tracker.live()
            out = model(input_ids=ids, labels=ids, use_cache=False)
            end = tracker.live()
            fwd_peak = tracker.peak()
            head_fwd = fwd_peak - marks.get("head", end)  # logits, fp32 upcast, log-softmax, loss
            m.outside_saved = (marks.get("layers_start", start) - start) + (marks.get("head", end)
                                                                             - marks.get("layers_end", end))
            state["phase"] = "backward"
            tracker.reset_peak()
            out.loss.backward()
            close_window()
            bwd_peak = tracker.peak()
            m.peak = max(fwd_peak, bwd_peak)
            # logits: the larger of the forward peak after the head and the backward peak up to the
            # head's input gradient, less the head's own weight gradient made in that window
            head_grads = storage_bytes([p.grad for p in parts.lm_head.parameters() if p.grad is not None]
                                       ) if parts.lm_head is not None else 0
            head_bwd = marks.get("head_bwd_peak", 0) - marks.get("head", end) - head_grads
            m.logits = max(head_fwd, head_bwd)
            del out
            if lora and optimizer in ("adamw", "sgd-momentum"):
                # torch.optim.AdamW keeps exp_avg + exp_avg_sq per parameter (torch/optim/adamw.py);
                # SGD with momentum keeps momentum_buffer (torch/optim/sgd.py)
                opt = (torch.optim.AdamW(trainable, lr=1e-4) if optimizer == "adamw"
                       else torch.optim.SGD(trainable, lr=1e-4, momentum=0.9))
                opt.step()
                m.optimizer_measured = True
                per_param = {id(p): storage_bytes([v for v in opt.state[p].values()
                                                    if isinstance(v, torch.Tensor) and v.dim() > 0])
                             for p in trainable}
                m.layer_optimizer = [sum(per_param.get(id(p), 0) for p in layer.parameters()) for layer in parts.layers]
                m.outside_optimizer = sum(per_param.values()) - sum(m.layer_optimizer)
                del opt
            m.reserved_peak = tracker.reserved_peak()
        m.layer_saved = saved
        for i, layer in enumerate(parts.layers):
            grads = [p.grad for p in layer.parameters() if p.grad is not None]
            g = storage_bytes(grads)
            m.layer_grads.append(g)
            m.layer_recompute.append(max(0, recompute[i] - g) if checkpointing else 0)
        layer_ids = {id(p) for layer in parts.layers for p in layer.parameters()}
        m.outside_grads = storage_bytes([p.grad for p in model.parameters() if p.grad is not None
                                         and id(p) not in layer_ids])
        m.layer_adapters = list(parts.layer_trainable_bytes) if lora else [0] * n
        m.adapters_measured = lora
        m.outside_adapters = 0
        for p in model.parameters():
            p.grad = None
    finally:
        for h in hooks:
            h.remove()


def free(device: Any) -> None:
    """Give memory back after a run."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def cpu_threads_note() -> str:
    import torch

    return f"CPU run on {torch.get_num_threads()} threads ({os.cpu_count()} logical cores)"
