"""The reduced model --verify measures: built from the config with transformers on the device, randomly
initialised in the measured dtype (nothing downloaded, remote code never run), optionally quantized with
bitsandbytes; and how long a CPU run of it takes. torch and transformers are imported lazily."""

from __future__ import annotations

import gc
import time
import warnings
from typing import Any

from llm_mem.errors import VerifyError
from llm_mem.verify.measure import Parts, _bnb_state_tensors, _is_oom, storage_bytes

# transformers' attn_implementation names for --attention (transformers docs, "Attention interface").
ATTN_IMPL = {"eager": "eager", "sdpa": "sdpa", "flash": "flash_attention_2"}
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
def cpu_flops_per_s(dtype_name: str, train: bool = False) -> float:
    """The F.linear rate of this CPU in the measured dtype (a 256x1024x1024 product, best of 3). With
    ``train``, the rate of a training step's three products together (forward, weight gradient, input
    gradient: a third of the FLOPs each, so their harmonic mean): a CPU without native bf16 matmuls runs
    the input gradient (``grad @ W``) 20-40x slower than F.linear, and the forward rate alone predicted
    a full fine-tune of opt-125m at 2,048 tokens well inside the minute it then overran fivefold."""
    import torch
    import torch.nn.functional as F

    dtype = getattr(torch, dtype_name)
    a = torch.randn(256, 1024, dtype=dtype)
    w = torch.randn(1024, 1024, dtype=dtype)
    products = [lambda: F.linear(a, w)]
    if train:
        g = torch.randn(256, 1024, dtype=dtype)
        products += [lambda: g.t() @ a, lambda: g @ w]
    seconds = []
    for product in products:
        product()
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            product()
            best = min(best, time.perf_counter() - t)
        seconds.append(max(best, 1e-9))
    return 2 * 256 * 1024 * 1024 * len(seconds) / sum(seconds)


def predicted_flops(active_layer_params: int, head_params: int, n_layers: int, heads: int, head_dim: int,
                    batch: int, context: int, head_positions: int, train: bool) -> float:
    """FLOPs of one reduced-model run: 2 per parameter per token (Kaplan et al. 2020, arXiv:2001.08361,
    eq. 2.1) plus attention scores and weighted sum (4 * s^2 * heads * head_dim per layer and sequence)."""
    tokens = batch * context
    f = 2 * active_layer_params * tokens + 2 * head_params * head_positions
    f += 4 * batch * context * context * heads * head_dim * n_layers
    return f * (TRAIN_FLOP_FACTOR if train else 1)
