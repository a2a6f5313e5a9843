"""A checkpoint's ``quantization_config`` -> QuantConfig: what its weights are stored as, and which
modules it keeps unquantized.

The methods and their fields, as the loaders read them:
* bitsandbytes: transformers' BitsAndBytesConfig (load_in_4bit/8bit, bnb_4bit_quant_type,
  bnb_4bit_use_double_quant, llm_int8_skip_modules).
* gptq / awq: bits, group_size (q_group_size, w_bit for AutoAWQ), modules_to_not_convert.
* fp8 (vLLM fp8.py Fp8Config.from_config): weight_block_size, ignored_layers or modules_to_not_convert.
* fbgemm_fp8 (vLLM fbgemm_fp8.py): per-channel fp8 with modules_to_not_convert (Meta's Llama-3.1-405B-FP8).
* compressed-tensors (vLLM compressed_tensors.py; compressed-tensors QuantizationScheme):
  config_groups[*].weights {num_bits, type int|float, strategy tensor|channel|group|block|tensor_group,
  group_size, block_structure}, targets, ignore (exact names or ``re:`` patterns).
* modelopt (vLLM modelopt.py): quant_algo FP8 / NVFP4 / W4A16_NVFP4 (top level or under
  ``quantization``), exclude_modules or ignore; the lm_head is quantized unless excluded.
* mxfp4 (gpt-oss): MoE experts in MXFP4, modules_to_not_convert.
Anything else is ``other``: the estimate warns and sizes the weights as the compute dtype.
"""

from __future__ import annotations

from typing import Any

from llm_mem.spec import QuantConfig, ScaleLayout

# compressed-tensors strategies -> our scale layouts (tensor_group is NVFP4's 16-element groups)
_CT_STRATEGY: dict[str, ScaleLayout] = {"tensor": "tensor", "channel": "channel", "group": "group",
                                        "block": "block", "tensor_group": "group"}
# NVFP4: 16 elements share one fp8 (e4m3) scale (NVIDIA ModelOpt / compressed-tensors nvfp4-pack-quantized)
NVFP4_GROUP = 16


def _names(value: Any) -> tuple[str, ...]:
    """A list of module names from a config field (anything else: none)."""
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if isinstance(v, str))[:100_000]
    return ()


def _int(value: Any, default: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # noqa: PLR0124 NaN
        return default
    return int(value)


def _skip(qc: dict[str, Any]) -> tuple[str, ...]:
    for key in ("modules_to_not_convert", "llm_int8_skip_modules", "ignore", "ignored_layers", "exclude_modules"):
        names = _names(qc.get(key))
        if names:
            return names
    return ()


def _compressed_tensors(qc: dict[str, Any]) -> QuantConfig:
    groups = qc.get("config_groups")
    weights: dict[str, Any] = {}
    targets: tuple[str, ...] = ()
    if isinstance(groups, dict):
        for group in groups.values():
            if isinstance(group, dict) and isinstance(group.get("weights"), dict):
                weights = group["weights"]
                targets = _names(group.get("targets"))
                break
    bits = _int(weights.get("num_bits"), 8) or 8
    kind = str(weights.get("type", "int")).lower()
    strategy = _CT_STRATEGY.get(str(weights.get("strategy", "tensor")).lower(), "tensor")
    group = _int(weights.get("group_size"), None)
    block = weights.get("block_structure")
    block_size = tuple(int(b) for b in block if isinstance(b, int))[:2] if isinstance(block, list) else None
    common = dict(source_method="compressed-tensors", skip_modules=_skip(qc),
                  quantize_lm_head=any(t == "lm_head" or "lm_head" in t for t in targets))
    if kind == "float" and bits == 8:
        return QuantConfig(method="fp8", bits=8, quant_type="e4m3", scale=strategy,
                           block_size=block_size if strategy == "block" else None, **common)
    if kind == "float" and bits == 4:
        return QuantConfig(method="nvfp4", bits=4, group_size=group or NVFP4_GROUP, scale="group", **common)
    if bits == 8:
        return QuantConfig(method="int8", bits=8, scale=strategy, group_size=group, **common)
    if bits == 4:
        return QuantConfig(method="int4", bits=4, scale=strategy, group_size=group or 128, **common)
    return QuantConfig(method="other", **common)


def _modelopt(qc: dict[str, Any]) -> QuantConfig:
    quantization = qc.get("quantization")
    inner: dict[str, Any] = quantization if isinstance(quantization, dict) else qc
    algo = str(inner.get("quant_algo") or qc.get("quant_algo") or "").upper()
    skip = _skip(inner) or _skip(qc)
    common = dict(source_method="modelopt", skip_modules=skip, quantize_lm_head=True)
    if algo in ("FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO"):
        return QuantConfig(method="fp8", bits=8, quant_type="e4m3",
                           scale="tensor" if algo == "FP8" else "channel", **common)
    if algo in ("NVFP4", "W4A16_NVFP4"):
        group = _int(inner.get("group_size"), NVFP4_GROUP) or NVFP4_GROUP
        return QuantConfig(method="nvfp4", bits=4, group_size=group, scale="group", **common)
    return QuantConfig(method="other", **{**common, "source_method": f"modelopt {algo}".strip()})


def parse_quantization(qc: Any) -> QuantConfig | None:
    """Normalise a ``quantization_config`` (None when there is none)."""
    if not isinstance(qc, dict):
        return None
    method = str(qc.get("quant_method", "")).lower()
    skip = _skip(qc)
    if method == "bitsandbytes" or qc.get("load_in_4bit") is True or qc.get("load_in_8bit") is True:
        four = qc.get("load_in_4bit") is True or qc.get("_load_in_4bit") is True
        return QuantConfig(
            method="bitsandbytes", source_method="bitsandbytes", bits=4 if four else 8,
            quant_type=str(qc.get("bnb_4bit_quant_type", "nf4")) if four else "int8",
            double_quant=qc.get("bnb_4bit_use_double_quant") is True, skip_modules=skip,
        )
    if method in ("gptq", "awq"):
        bits = _int(qc.get("bits", qc.get("w_bit")), 4) or 4
        group = _int(qc.get("group_size", qc.get("q_group_size")), 128)
        return QuantConfig(method=method, source_method=method, bits=float(bits), group_size=group, skip_modules=skip)
    if method == "fp8":
        block = qc.get("weight_block_size")
        block_size = tuple(int(b) for b in block if isinstance(b, int))[:2] if isinstance(block, list) else None
        return QuantConfig(method="fp8", source_method="fp8", bits=8, quant_type=str(qc.get("fmt", "e4m3")),
                           block_size=block_size or None, scale="block" if block_size else "tensor",
                           skip_modules=skip)
    if method == "fbgemm_fp8":
        return QuantConfig(method="fp8", source_method="fbgemm_fp8", bits=8, quant_type="e4m3", scale="channel",
                           skip_modules=skip)
    if method == "compressed-tensors":
        return _compressed_tensors(qc)
    if method in ("modelopt", "modelopt_fp4") or "quant_algo" in qc or isinstance(qc.get("quantization"), dict):
        return _modelopt(qc)
    if method == "mxfp4":
        return QuantConfig(method="mxfp4", source_method="mxfp4", bits=4.25, skip_modules=skip)
    return QuantConfig(method="other", source_method=method[:40] or "unknown", skip_modules=skip)
