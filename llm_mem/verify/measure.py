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
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from llm_mem.errors import VerifyError

# transformers' attn_implementation names for --attention (transformers docs, "Attention interface").
ATTN_IMPL = {"eager": "eager", "sdpa": "sdpa", "flash": "flash_attention_2"}
# Weight formats whose tensors from_config can create as they are.
FLOAT_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# Formats bitsandbytes can apply on CUDA (transformers' BitsAndBytesConfig: load_in_4bit nf4/fp4, load_in_8bit).
BNB_FORMATS = ("nf4", "fp4", "int8")
# Share of the F.linear probe rate a reduced-model run reaches on CPU under live-tensor tracking
# (norms, softmax, routing, the dispatch-mode callback per op). benchmarks/verify (2-core CPU):
# Llama-3.2-1B LoRA step ~1.0, Qwen2.5-0.5B LoRA step ~0.9, gpt-oss-20b LoRA step ~1.15, Llama-3.2-1B
# inference at 1,024 tokens ~1.0; 0.8 keeps a margin.
CPU_EFFICIENCY = 0.8
# Backward costs about twice the forward (Kaplan et al. 2020, arXiv:2001.08361, sec. 2.1: 6N vs 2N FLOPs/token).
TRAIN_FLOP_FACTOR = 3
# Smallest context --verify measures at when it caps the context on CPU.
MIN_MEASURED_CONTEXT = 64
# Random init: std of transformers' default initializer_range (PretrainedConfig, 0.02) over a pool of
# 2^20 values tiled across each weight.
INIT_STD = 0.02
INIT_POOL = 2**20


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


# ---- the reduced model -------------------------------------------------------------------------
def find_parts(model: Any, n_layers: int) -> Parts:
    """The decoder layers, embedding and head of a transformers causal LM."""
    import torch

    layers = None
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_layers and name.split(".")[-1] in ("layers", "h"):
            layers = list(mod)
            break
    if layers is None:
        raise VerifyError(f"cannot find the {n_layers} decoder layers of {type(model).__name__}",
                          "this architecture is not supported by --verify")
    return Parts(layers=layers, embedding=model.get_input_embeddings(), lm_head=model.get_output_embeddings())


def count_parts(parts: Parts, model: Any) -> None:
    """Parameter bytes of each layer, the embedding, the head and the rest (distinct storages)."""
    seen: set[int] = set()
    parts.layer_param_bytes = []
    parts.layer_trainable_bytes = []
    for layer in parts.layers:
        frozen = [p for p in layer.parameters() if not p.requires_grad] + _bnb_state_tensors(layer)
        parts.layer_param_bytes.append(storage_bytes(frozen, seen))
        parts.layer_trainable_bytes.append(storage_bytes([p for p in layer.parameters() if p.requires_grad], seen))
    parts.embedding_bytes = storage_bytes(list(parts.embedding.parameters()), seen)
    parts.lm_head_bytes = (storage_bytes(list(parts.lm_head.parameters()) + _bnb_state_tensors(parts.lm_head), seen)
                           if parts.lm_head is not None else 0)
    parts.other_bytes = storage_bytes(list(model.parameters()), seen)
    parts.buffer_bytes = storage_bytes(list(model.buffers()), seen)


def build_model(model_type: str, kw: dict[str, Any], device: Any, dtype_name: str, attention: str,
                use_cache: bool) -> tuple[Any, str, list[str]]:
    """from_config on the device, randomly initialised. Returns (model, attention used, notes)."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    notes: list[str] = []
    dtype = getattr(torch, dtype_name)
    try:
        cfg = AutoConfig.for_model(model_type, **kw)
    except (ValueError, KeyError) as exc:
        raise VerifyError(f"transformers {transformers.__version__} does not know model_type {model_type!r} "
                          f"({str(exc).splitlines()[0][:120]})",
                          "upgrade transformers; --verify never runs remote code") from None
    cfg.use_cache = use_cache
    impl = ATTN_IMPL[attention]
    if impl == "flash_attention_2":
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            impl = "sdpa"
        if device.type != "cuda" or impl == "sdpa":
            impl = "sdpa"
            notes.append("flash-attention 2 is not available here: measured with sdpa (same memory class, "
                         "no seq^2 buffer)")
    tried = [impl] + (["eager"] if impl != "eager" else [])
    last: Exception | None = None
    for attempt in tried:
        try:
            with torch.device(device), warnings.catch_warnings(), _skip_init():
                warnings.simplefilter("ignore")
                model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attempt,
                                                         trust_remote_code=False)
            if getattr(model.config, "tie_word_embeddings", False):
                model.tie_weights()  # init_weights (skipped above) is what ties them in from_config
            fast_init(model)
            if attempt != impl:
                notes.append(f"{type(model).__name__} does not support attn_implementation={impl!r}: measured "
                             f"with {attempt}")
            return model, attempt, notes
        except ValueError as exc:
            last = exc
            continue
        except Exception as exc:
            if _is_oom(exc):
                raise
            raise VerifyError(f"transformers {transformers.__version__} cannot build {model_type}: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}",
                              "upgrade transformers") from None
    raise VerifyError(f"transformers cannot build {model_type} with attention {attention}: "
                      f"{str(last).splitlines()[0][:160] if last else ''}", "try --attention eager")


def _skip_init() -> Any:
    """transformers' own switch that leaves parameters uninitialised (torch.empty) at construction;
    buffers computed in __init__ (RoPE inv_freq) are unaffected. fast_init fills the parameters."""
    import contextlib

    try:
        from transformers.initialization import no_init_weights  # transformers >= 5
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights  # type: ignore[attr-defined,no-redef,unused-ignore]  # 4.x
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


def fast_init(model: Any) -> None:
    """Random weights, quickly: a 2^20-value N(0, INIT_STD) pool tiled over every matrix (normal_ on
    hundreds of millions of CPU elements takes seconds per layer); norm weights 1, vectors 0. Memory
    does not depend on the values, but MoE routing does: random router weights spread tokens over the
    experts as a trained router roughly does, where equal (zero) logits would send every token to the
    same top-k experts."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(0)
    pool_cpu = torch.randn(INIT_POOL, generator=gen) * INIT_STD
    pools: dict[tuple[Any, Any], Any] = {}
    with torch.no_grad():
        for mod in model.modules():
            norm_like = "norm" in type(mod).__name__.lower()
            for name, p in mod.named_parameters(recurse=False):
                if p.device.type == "meta":
                    continue
                if p.dim() < 2:
                    p.fill_(1.0 if (norm_like and name == "weight") else 0.0)
                    continue
                key = (p.device, p.dtype)
                if key not in pools:
                    pools[key] = pool_cpu.to(device=p.device, dtype=p.dtype)
                pool = pools[key]
                if not p.is_contiguous():
                    p.normal_(0.0, INIT_STD)
                    continue
                flat = p.view(-1)
                rows = flat.numel() // INIT_POOL
                if rows:  # one broadcast copy: ~6x faster than a Python loop of chunk copies
                    flat[: rows * INIT_POOL].view(rows, INIT_POOL).copy_(pool.expand(rows, INIT_POOL))
                rest = flat.numel() - rows * INIT_POOL
                if rest:
                    flat[rows * INIT_POOL:].copy_(pool[:rest])


def quantize_bnb(model: Any, fmt: str, dtype_name: str) -> None:
    """Replace every nn.Linear but the head by its bitsandbytes counterpart, in place on CUDA
    (what transformers' BitsAndBytesConfig does at load: lm_head stays unquantized,
    transformers/integrations/bitsandbytes.py `get_keys_to_not_convert`). Double quant on for 4-bit
    (llm-mem's int4 = nf4 with double quant, see llm_mem/estimate.py INT4_NOTE)."""
    import bitsandbytes as bnb
    import torch

    head = model.get_output_embeddings()
    compute = getattr(torch, dtype_name)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, torch.nn.Linear) or child is head:
                continue
            dev = child.weight.device
            if fmt == "int8":
                new = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=child.bias is not None,
                                          has_fp16_weights=False, device="meta")
                new.weight = bnb.nn.Int8Params(child.weight.data.cpu(), requires_grad=False, has_fp16_weights=False)
            else:
                new = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                        compute_dtype=compute, compress_statistics=True, quant_type=fmt,
                                        device="meta")
                new.weight = bnb.nn.Params4bit(child.weight.data.cpu(), requires_grad=False,
                                               compress_statistics=True, quant_type=fmt)
            if child.bias is not None:
                new.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            new = new.to(dev)
            setattr(parent, name, new)
            del child
    gc.collect()
    torch.cuda.empty_cache()


# ---- how long a CPU run takes ------------------------------------------------------------------
def cpu_flops_per_s(dtype_name: str) -> float:
    """The F.linear rate of this CPU in the measured dtype (a 256x1024x1024 product, best of 3)."""
    import torch
    import torch.nn.functional as F

    dtype = getattr(torch, dtype_name)
    a = torch.randn(256, 1024, dtype=dtype)
    w = torch.randn(1024, 1024, dtype=dtype)
    F.linear(a, w)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        F.linear(a, w)
        best = min(best, time.perf_counter() - t)
    return 2 * 256 * 1024 * 1024 / max(best, 1e-9)


def predicted_flops(active_layer_params: int, head_params: int, n_layers: int, heads: int, head_dim: int,
                    batch: int, context: int, head_positions: int, train: bool) -> float:
    """FLOPs of one reduced-model run: 2 per parameter per token (Kaplan et al. 2020, arXiv:2001.08361,
    eq. 2.1) plus attention scores and weighted sum (4 * s^2 * heads * head_dim per layer and sequence)."""
    tokens = batch * context
    f = 2 * active_layer_params * tokens + 2 * head_params * head_positions
    f += 4 * batch * context * context * heads * head_dim * n_layers
    return f * (TRAIN_FLOP_FACTOR if train else 1)


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
        for i, (k, v) in enumerate(_cache_layers(cache)[:n]):
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
