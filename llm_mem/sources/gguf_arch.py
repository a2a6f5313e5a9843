"""GGUF architecture metadata -> an HF-style config dict -> ModelSpec (through parse_config).

llama.cpp writes a model's hyperparameters as ``{arch}.*`` keys (gguf-py constants Keys.LLM,
Keys.Attention, Keys.Rope). This module maps them onto the config.json fields that
llm_mem.sources.parse reads, for the families parse.py knows, and then adjusts the spec to what
llama.cpp runs from the file: its per-layer sliding-window pattern, and the full K/V cache of an
old DeepSeek file that has no MLA keys. An architecture it cannot map is one ConfigError line,
never a guess.
"""

from __future__ import annotations

from typing import Any

from llm_mem.errors import ConfigError, quote
from llm_mem.sources.gguf import GgufArray, GgufHeader
from llm_mem.sources.limits import MAX_LAYERS
from llm_mem.spec import ModelSpec

#: llama.cpp architecture (gguf-py MODEL_ARCH_NAMES) -> transformers model_type. llama with experts is
#: Mixtral; deepseek2 is DeepSeek-V3 when its router is a sigmoid (see _deepseek); Mistral 3 text
#: models are Mistral's layout; Command-R passes through as "cohere" (generic family in parse.py).
MODEL_TYPES: dict[str, str] = {
    "llama": "llama", "mistral3": "mistral", "qwen2": "qwen2", "qwen2moe": "qwen2_moe", "qwen3": "qwen3",
    "qwen3moe": "qwen3_moe", "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3_text", "phi3": "phi3",
    "deepseek2": "deepseek_v2", "gpt-oss": "gpt_oss", "olmo2": "olmo2", "granite": "granite", "gpt2": "gpt2",
    "bloom": "bloom", "falcon": "falcon", "gptneox": "gpt_neox", "command-r": "cohere", "cohere2": "cohere2",
}
#: llama.cpp src/llama-model.cpp load_hparams: the archs that run sliding-window attention and the
#: period of hparams.set_swa_pattern(n) ("the last of every n layers is full"): gemma2 2, gemma3 6,
#: gpt-oss 2, cohere2 4, olmo2 4 (OLMo 3, only when a window is set). Phi-3's window is disabled
#: (llama.cpp PR 13676: swa_type NONE), so phi3 files run full attention everywhere.
SWA_PERIOD: dict[str, int] = {"gemma2": 2, "gemma3": 6, "gpt-oss": 2, "cohere2": 4, "olmo2": 4}
#: llama.cpp llama-hparams.h enum llama_expert_gating_func_type: SOFTMAX = 1, SIGMOID = 2.
GATING_SIGMOID = 2
#: general.file_type (llama.h enum llama_ftype) of unquantized files -> the dtype their weights are
#: stored in; quantized files name none (their tensors carry their own types).
FLOAT_FILE_TYPES = {0: "float32", 1: "float16", 32: "bfloat16"}


def _scalar(h: GgufHeader, key: str, *, required: bool = False, default: int | None = None) -> int | None:
    v = h.get(key)
    if v is None:
        if required:
            raise ConfigError(f"{h.name}: GGUF metadata has no {key}", "is this a language model file?")
        return default
    if isinstance(v, GgufArray):
        raise ConfigError(f"{h.name}: {key} is an array, expected one number")
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"{h.name}: {key} = {quote(v)} is not a non-negative integer")
    return v


def _per_layer(h: GgufHeader, key: str, n: int) -> list[int] | None:
    """A value that may be one number or one per layer (llama.cpp get_key_or_arr)."""
    v = h.get(key)
    if v is None:
        return None
    if isinstance(v, GgufArray):
        if v.values is None or len(v.values) != n:
            raise ConfigError(f"{h.name}: {key} has {v.count} entries for {n} layers")
        vals = list(v.values)
    else:
        vals = [v] * n
    for x in vals:
        if isinstance(x, bool) or not isinstance(x, int) or x < 0:
            raise ConfigError(f"{h.name}: {key} holds {quote(x)}, not a non-negative integer")
    return vals


def _layer_kinds(h: GgufHeader, arch: str, n: int) -> tuple[list[str], int | None]:
    """Per-layer attention as llama.cpp runs the file, and the window."""
    window = _scalar(h, f"{arch}.attention.sliding_window", default=0) or None
    period = SWA_PERIOD.get(arch)
    if period is None or window is None:
        return ["full_attention"] * n, None
    pattern = h.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, GgufArray):  # one bool per layer: true = sliding
        if pattern.values is None or len(pattern.values) != n:
            raise ConfigError(f"{h.name}: {arch}.attention.sliding_window_pattern has {pattern.count} entries "
                              f"for {n} layers")
        sliding = [bool(x) for x in pattern.values]
    else:
        if pattern is not None:
            if isinstance(pattern, bool) or not isinstance(pattern, int) or pattern < 0:
                raise ConfigError(f"{h.name}: {arch}.attention.sliding_window_pattern = {quote(pattern)} "
                                  "is not a period")
            period = pattern
        # llama_hparams::set_swa_pattern(n): layer il slides when n == 0 or il % n < n - 1
        sliding = [period == 0 or i % period < period - 1 for i in range(n)]
    return ["sliding_attention" if s else "full_attention" for s in sliding], window


def _vocab(h: GgufHeader, arch: str, tensors: dict[str, tuple[int, ...]]) -> int:
    v = _scalar(h, f"{arch}.vocab_size")
    if v:
        return v
    tokens = h.get("tokenizer.ggml.tokens")
    if isinstance(tokens, GgufArray) and tokens.count:
        return tokens.count
    emb = tensors.get("token_embd.weight")
    if emb is not None and len(emb) >= 2:
        return emb[1]
    raise ConfigError(f"{h.name}: no vocabulary size ({arch}.vocab_size, tokenizer.ggml.tokens or token_embd)")


def config_from_gguf(h: GgufHeader, tensor_shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """The HF-style config dict of a GGUF model (``tensor_shapes``: every part's tensors, by name)."""
    arch = h.get("general.architecture")
    if not isinstance(arch, str):
        raise ConfigError(f"{h.name}: GGUF metadata has no general.architecture")
    if arch == "clip":
        raise ConfigError(f"{h.name} is a multimodal projector (mmproj), not a language model",
                          "give the model's .gguf; its mmproj beside it is added to the projector bytes")
    model_type = MODEL_TYPES.get(arch)
    if model_type is None:
        raise ConfigError(f"GGUF architecture {quote(arch)} is not supported",
                          f"supported: {', '.join(sorted(MODEL_TYPES))}")
    shapes = tensor_shapes if tensor_shapes is not None else {t.name: t.shape for t in h.tensors}
    n = _scalar(h, f"{arch}.block_count", required=True)
    assert n is not None
    if not 1 <= n <= MAX_LAYERS:
        raise ConfigError(f"{h.name}: {arch}.block_count = {n} (llama.cpp allows 1 to {MAX_LAYERS} layers)")
    hidden = _scalar(h, f"{arch}.embedding_length", required=True)
    heads_l = _per_layer(h, f"{arch}.attention.head_count", n)
    if not heads_l or max(heads_l) == 0:
        raise ConfigError(f"{h.name}: GGUF metadata has no {arch}.attention.head_count")
    heads = max(heads_l)
    kv_l = _per_layer(h, f"{arch}.attention.head_count_kv", n) or heads_l
    kv = max(kv_l) or heads
    assert hidden is not None
    key_len = _scalar(h, f"{arch}.attention.key_length") or hidden // heads
    ff_l = _per_layer(h, f"{arch}.feed_forward_length", n) or [0]
    cfg: dict[str, Any] = {
        "model_type": model_type, "hidden_size": hidden, "num_hidden_layers": n, "num_attention_heads": heads,
        "num_key_value_heads": kv, "head_dim": key_len, "intermediate_size": max(ff_l) or 4 * hidden,
        "vocab_size": _vocab(h, arch, shapes), "tie_word_embeddings": "output.weight" not in shapes,
    }
    ctx = _scalar(h, f"{arch}.context_length")
    if ctx:
        cfg["max_position_embeddings"] = ctx
    ftype = h.get("general.file_type")
    if isinstance(ftype, int) and ftype in FLOAT_FILE_TYPES:
        cfg["torch_dtype"] = FLOAT_FILE_TYPES[ftype]
    kinds, window = _layer_kinds(h, arch, n)
    cfg["layer_types"] = kinds
    if window:
        cfg["sliding_window"] = window

    experts = _scalar(h, f"{arch}.expert_count", default=0) or 0
    used = _scalar(h, f"{arch}.expert_used_count", default=0) or 0
    expert_ff = _scalar(h, f"{arch}.expert_feed_forward_length", default=0) or 0
    if arch == "llama" and experts:
        # Mixtral: old converters wrote the expert width as feed_forward_length
        cfg.update(model_type="mixtral", num_local_experts=experts, num_experts_per_tok=used or 2,
                   intermediate_size=expert_ff or cfg["intermediate_size"])
    elif arch in ("qwen2moe", "qwen3moe"):
        if not experts or not expert_ff:
            raise ConfigError(f"{h.name}: {arch} file lacks {arch}.expert_count or expert_feed_forward_length")
        cfg.update(num_experts=experts, num_experts_per_tok=used or 1, moe_intermediate_size=expert_ff)
        shared_ff = _scalar(h, f"{arch}.expert_shared_feed_forward_length", default=0) or 0
        if shared_ff:
            cfg["shared_expert_intermediate_size"] = shared_ff
    elif arch == "gpt-oss":
        cfg.update(num_local_experts=experts, experts_per_token=used or 4,
                   intermediate_size=expert_ff or cfg["intermediate_size"],
                   moe_intermediate_size=expert_ff or cfg["intermediate_size"])
    elif arch == "deepseek2":
        _deepseek(h, cfg, experts, used, expert_ff, heads, key_len)
    elif arch == "falcon":
        # Falcon-7B is multi-query (1 KV head); Falcon-40B/180B the "new decoder architecture" (8 KV heads)
        if kv == 1:
            cfg.update(multi_query=True, new_decoder_architecture=False)
        elif kv == heads:
            cfg.update(multi_query=False, new_decoder_architecture=False)
        else:
            cfg.update(new_decoder_architecture=True, num_kv_heads=kv)
    elif arch == "gpt2":
        cfg["n_positions"] = ctx or 1024
    elif arch == "gptneox":
        par = h.get(f"{arch}.use_parallel_residual")
        cfg["use_parallel_residual"] = bool(par) if isinstance(par, bool) else True
    return cfg


def _deepseek(h: GgufHeader, cfg: dict[str, Any], experts: int, used: int, expert_ff: int, heads: int,
              key_len: int) -> None:
    """DeepSeek-V2/V3 (llama.cpp arch deepseek2): experts, dense prefix and the attention keys."""
    a = "deepseek2"
    rope = _scalar(h, f"{a}.rope.dimension_count", required=True)
    kv_rank = _scalar(h, f"{a}.attention.kv_lora_rank", required=True)
    q_rank = _scalar(h, f"{a}.attention.q_lora_rank", default=0) or None
    if not experts or not expert_ff:
        raise ConfigError(f"{h.name}: deepseek2 file lacks {a}.expert_count or expert_feed_forward_length")
    gating = _scalar(h, f"{a}.expert_gating_func", default=1)
    cfg.update(model_type="deepseek_v3" if gating == GATING_SIGMOID else "deepseek_v2",
               n_routed_experts=experts, num_experts_per_tok=used or 6, moe_intermediate_size=expert_ff,
               n_shared_experts=_scalar(h, f"{a}.expert_shared_count", default=0) or 0,
               first_k_dense_replace=_scalar(h, f"{a}.leading_dense_block_count", default=0) or 0,
               moe_layer_freq=1, kv_lora_rank=kv_rank, q_lora_rank=q_rank, qk_rope_head_dim=rope,
               num_key_value_heads=heads)
    k_mla = _scalar(h, f"{a}.attention.key_length_mla")
    v_mla = _scalar(h, f"{a}.attention.value_length_mla")
    assert rope is not None
    if k_mla:  # current files: key_length is the latent (kv_lora_rank + rope), the MLA keys the per-head widths
        if k_mla <= rope or not v_mla:
            raise ConfigError(f"{h.name}: {a}.attention.key_length_mla = {k_mla} with a rope of {rope} "
                              f"and value_length_mla {v_mla}: not an MLA layout")
        cfg.update(qk_nope_head_dim=k_mla - rope, v_head_dim=v_mla)
    else:  # old files: key_length is nope + rope per head, value_length the V head width
        v_len = _scalar(h, f"{a}.attention.value_length") or key_len
        if key_len <= rope:
            raise ConfigError(f"{h.name}: {a}.attention.key_length = {key_len} is not above the rope width {rope}")
        cfg.update(qk_nope_head_dim=key_len - rope, v_head_dim=v_len)


def spec_from_gguf(h: GgufHeader, tensor_shapes: dict[str, tuple[int, ...]] | None = None) -> ModelSpec:
    """The ModelSpec llama.cpp runs from a GGUF file's metadata.

    DeepSeek (deepseek2) files written before llama.cpp's MLA change have no
    ``deepseek2.attention.key_length_mla``: llama.cpp then runs plain multi-head attention with a full
    cache of n_head_kv x key_length (nope + rope) for K and n_head_kv x value_length for V per token
    and layer (llama.cpp b10470 src/llama-kv-cache.cpp; measured: DeepSeek-V2-Lite at 4,096 tokens
    1,080 MiB, against 121 MiB for the latent cache of a current file). Such a spec has no ``mla``,
    ``head_dim`` = key_length and ``v_head_dim`` = value_length.
    """
    from llm_mem.sources.parse import parse_config

    arch = str(h.get("general.architecture"))
    cfg = config_from_gguf(h, tensor_shapes)
    spec = parse_config(cfg)
    update: dict[str, Any] = {"llamacpp_arch": arch}
    if arch == "deepseek2" and not h.get(f"{arch}.attention.key_length_mla"):
        n = spec.num_layers
        kv_l = _per_layer(h, f"{arch}.attention.head_count_kv", n) or _per_layer(h, f"{arch}.attention.head_count", n)
        key_len = _scalar(h, f"{arch}.attention.key_length") or spec.head_dim
        v_len = _scalar(h, f"{arch}.attention.value_length") or key_len
        assert key_len is not None
        update.update(mla=None, num_kv_heads=max(kv_l or [spec.num_heads]), head_dim=key_len,
                      v_head_dim=v_len if v_len != key_len else None)
    elif arch != "deepseek2":
        v_width = _scalar(h, f"{arch}.attention.value_length")
        if v_width and v_width != spec.head_dim:
            update["v_head_dim"] = v_width
    return spec.model_copy(update=update)


def gguf_warnings(h: GgufHeader) -> tuple[str, ...]:
    """Notes on what the spec simplifies: per-layer head counts or widths that vary."""
    arch = str(h.get("general.architecture"))
    out: list[str] = []
    n = h.get(f"{arch}.block_count")
    if not isinstance(n, int):
        return ()
    for key in ("attention.head_count_kv", "attention.head_count", "feed_forward_length"):
        v = h.get(f"{arch}.{key}")
        if isinstance(v, GgufArray) and v.values is not None and len(set(v.values)) > 1:
            out.append(f"{arch}.{key} varies by layer ({min(v.values)}..{max(v.values)}): "
                       "the spec uses the largest; the weights are exact from the file's tensors")
    return tuple(out)
