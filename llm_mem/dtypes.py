"""One table per fact: the element types llm-mem reads or prints, and their sizes.

* ``DTYPES``: tensor element types under every spelling the inputs use: torch names (config.json
  ``torch_dtype`` / ``dtype``), safetensors header dtypes (safetensors format spec, "Format"),
  and llm-mem's short names (``bf16``). Bits per element.
* ``GGML_TYPES``: llama.cpp's ggml tensor types as stored in GGUF files: the type id
  (ggml/include/ggml.h ``enum ggml_type``), elements per block and bytes per block
  (ggml/src/ggml-common.h block structs; equal to gguf-py ``GGML_QUANT_SIZES``, checked by
  tests/test_dtypes.py against the installed ``gguf`` package).
"""

from __future__ import annotations

from typing import NamedTuple


class DType(NamedTuple):
    """A tensor element type: canonical short name, bits per element, other spellings."""

    name: str
    bits: float
    aliases: tuple[str, ...]


# torch.float4_e2m1fn_x2 packs two 4-bit values in one byte: 8 bits per element of that dtype.
DTYPES: tuple[DType, ...] = (
    DType("fp64", 64, ("F64", "float64", "double")),
    DType("fp32", 32, ("F32", "float32", "float", "f32")),
    DType("bf16", 16, ("BF16", "bfloat16")),
    DType("fp16", 16, ("F16", "float16", "half", "f16")),
    DType("fp8_e4m3", 8, ("F8_E4M3", "float8_e4m3fn", "float8_e4m3fnuz", "fp8", "e4m3", "fp8-e4m3")),
    DType("fp8_e5m2", 8, ("F8_E5M2", "float8_e5m2", "float8_e5m2fnuz", "e5m2")),
    DType("fp8_e8m0", 8, ("F8_E8M0", "float8_e8m0fnu")),
    DType("fp6_e2m3", 6, ("F6_E2M3",)),
    DType("fp6_e3m2", 6, ("F6_E3M2",)),
    DType("fp4", 4, ("F4", "float4_e2m1fn")),
    DType("fp4x2", 8, ("float4_e2m1fn_x2",)),
    DType("int64", 64, ("I64", "U64", "uint64", "long")),
    DType("int32", 32, ("I32", "U32", "uint32", "int")),
    DType("int16", 16, ("I16", "U16", "uint16", "short")),
    DType("int8", 8, ("I8", "U8", "uint8")),
    DType("bool", 8, ("BOOL",)),
)
_BY_NAME: dict[str, DType] = {}
for _d in DTYPES:
    for _n in (_d.name, *_d.aliases):
        _BY_NAME.setdefault(_n.lower(), _d)

#: The floating-point types a model computes in, by canonical name: bytes per element.
FLOAT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def lookup(name: str) -> DType | None:
    """The element type for any spelling (``torch.bfloat16``, ``BF16``, ``bf16``), or None."""
    return _BY_NAME.get(str(name).strip().lower().removeprefix("torch."))


def bits(name: str, default: float | None = None) -> float | None:
    """Bits per element of a dtype name, ``default`` when the name is unknown."""
    d = lookup(name)
    return d.bits if d is not None else default


def float_name(name: str | None) -> str | None:
    """The canonical compute dtype (``fp32``, ``bf16``, ``fp16``) a name denotes, else None."""
    if not name:
        return None
    d = lookup(name)
    return d.name if d is not None and d.name in FLOAT_BYTES else None


class GgmlType(NamedTuple):
    """A ggml tensor type: id in GGUF files, elements and bytes per block."""

    name: str
    id: int
    block: int
    block_bytes: int

    @property
    def bpw(self) -> float:
        """Bits per weight, the block's scales included."""
        return self.block_bytes * 8 / self.block


# ggml.h enum ggml_type and ggml-common.h block sizes (QK_K = 256 super-blocks for k- and i-quants;
# QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = QK4_NL = QK_MXFP4 = 32). Ids 4, 5 (Q4_2, Q4_3) and
# 31-33, 36-38 were removed upstream and never appear in a current file.
GGML_TYPES: tuple[GgmlType, ...] = (
    GgmlType("F32", 0, 1, 4),
    GgmlType("F16", 1, 1, 2),
    GgmlType("Q4_0", 2, 32, 18),  # fp16 d + qs[16]
    GgmlType("Q4_1", 3, 32, 20),  # fp16 d, m + qs[16]
    GgmlType("Q5_0", 6, 32, 22),  # fp16 d + qh[4] + qs[16]
    GgmlType("Q5_1", 7, 32, 24),  # fp16 d, m + qh[4] + qs[16]
    GgmlType("Q8_0", 8, 32, 34),  # fp16 d + int8 qs[32]
    GgmlType("Q8_1", 9, 32, 40),  # fp32 d, s + int8 qs[32]
    GgmlType("Q2_K", 10, 256, 84),  # scales[16] + qs[64] + fp16 d, dmin
    GgmlType("Q3_K", 11, 256, 110),  # hmask[32] + qs[64] + scales[12] + fp16 d
    GgmlType("Q4_K", 12, 256, 144),  # fp16 d, dmin + scales[12] + qs[128]
    GgmlType("Q5_K", 13, 256, 176),  # fp16 d, dmin + scales[12] + qh[32] + qs[128]
    GgmlType("Q6_K", 14, 256, 210),  # ql[128] + qh[64] + int8 scales[16] + fp16 d
    GgmlType("Q8_K", 15, 256, 292),  # fp32 d + qs[256] + bsums[16] (int16)
    GgmlType("IQ2_XXS", 16, 256, 66),  # fp16 d + u16 qs[32]
    GgmlType("IQ2_XS", 17, 256, 74),  # fp16 d + u16 qs[32] + scales[8]
    GgmlType("IQ3_XXS", 18, 256, 98),  # fp16 d + qs[96]
    GgmlType("IQ1_S", 19, 256, 50),  # fp16 d + qs[32] + u16 qh[8]
    GgmlType("IQ4_NL", 20, 32, 18),  # fp16 d + qs[16], non-linear grid
    GgmlType("IQ3_S", 21, 256, 110),  # fp16 d + qs[64] + qh[8] + signs[32] + scales[4]
    GgmlType("IQ2_S", 22, 256, 82),  # fp16 d + qs[64] + qh[8] + scales[8]
    GgmlType("IQ4_XS", 23, 256, 136),  # fp16 d + u16 scales_h + scales_l[4] + qs[128]
    GgmlType("I8", 24, 1, 1),
    GgmlType("I16", 25, 1, 2),
    GgmlType("I32", 26, 1, 4),
    GgmlType("I64", 27, 1, 8),
    GgmlType("F64", 28, 1, 8),
    GgmlType("IQ1_M", 29, 256, 56),  # qs[32] + qh[16] + scales[8]
    GgmlType("BF16", 30, 1, 2),
    GgmlType("TQ1_0", 34, 256, 54),  # ternary: qs[48] + qh[4] + fp16 d
    GgmlType("TQ2_0", 35, 256, 66),  # ternary: qs[64] + fp16 d
    GgmlType("MXFP4", 39, 32, 17),  # OCP MX: e8m0 scale + 16 bytes of e2m1 pairs
    GgmlType("NVFP4", 40, 64, 36),  # NVIDIA FP4: 4 fp8 scales per 64 + 32 bytes of e2m1
    GgmlType("Q1_0", 41, 128, 18),
)
GGML_BY_NAME = {t.name: t for t in GGML_TYPES}
GGML_BY_ID = {t.id: t for t in GGML_TYPES}
#: Bits per weight of every ggml type by name.
GGML_BPW = {t.name: t.bpw for t in GGML_TYPES}


def ggml_nbytes(type_name: str, numel: int) -> int:
    """Bytes of ``numel`` elements of a ggml type (whole blocks; ggml_row_size x rows)."""
    t = GGML_BY_NAME[type_name]
    return -(-numel // t.block) * t.block_bytes
