"""A streaming reader of GGUF headers: metadata and tensor infos, never tensor data.

Layout (llama.cpp b10470 ggml/src/gguf.cpp gguf_init_from_reader; ggml docs/gguf.md), little endian:

    "GGUF" | uint32 version | int64 n_tensors | int64 n_kv
    n_kv x  (string key, int32 type, value)
    n_tensors x (string name, uint32 n_dims, int64 ne[n_dims], int32 ggml_type, uint64 offset)
    padding to general.alignment (default 32) | tensor data

    string = uint64 length + bytes; array = int32 element type + uint64 count + elements.

Why our own reader rather than gguf-py's GGUFReader: GGUFReader memory-maps the whole file with
numpy (a 100 GB file on the Hub cannot be mapped; a local one drags numpy into start-up) and trusts
the counts it reads. This reader pulls bytes through a `ByteSource` (a local file or HTTP Range
reads on the Hub), asks only for what it parses (over HTTP never a byte past the tensor infos: each
read is no larger than the least the rest of the header must still hold), skips long strings and
numeric arrays without fetching them, and checks every count and length against llm_mem.sources.limits
*before* reading. A hostile file is one ConfigError line, never a MemoryError or a hang.
tests/test_gguf_source.py checks it against files written by gguf-py's GGUFWriter and read by GGUFReader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from llm_mem.dtypes import GGML_BY_ID
from llm_mem.errors import ConfigError, quote
from llm_mem.sources.byteio import ByteSource
from llm_mem.sources.limits import (
    GGML_MAX_DIMS,
    GGML_MAX_NAME,
    MAX_GGUF_ARRAY_ELEMENTS,
    MAX_GGUF_HEADER_BYTES,
    MAX_GGUF_KEY_BYTES,
    MAX_GGUF_KV,
    MAX_GGUF_STRING_BYTES,
    MAX_GGUF_TENSORS,
    MAX_KEPT_ARRAY,
    MAX_KEPT_STRING,
    MAX_READ_BYTES,
)

GGUF_MAGIC = b"GGUF"
#: Versions read: 2 and 3 share the little-endian layout (v3 only added big-endian files); gguf.cpp
#: refuses v1 (32-bit counts) and anything newer than GGUF_VERSION = 3.
SUPPORTED_VERSIONS = (2, 3)
#: gguf.cpp GGUF_DEFAULT_ALIGNMENT.
DEFAULT_ALIGNMENT = 32

# gguf.h enum gguf_type: id -> (struct format, size). STRING = 8 and ARRAY = 9 are variable-sized.
GGUF_STRING = 8
GGUF_ARRAY = 9
_FIXED: dict[int, tuple[str, int]] = {
    0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4), 6: ("f", 4),
    7: ("b", 1),  # BOOL: an int8, true when != 0 (gguf.cpp gguf_reader::read(bool &))
    10: ("Q", 8), 11: ("q", 8), 12: ("d", 8),
}
GGUF_UINT32 = 4
GGUF_BOOL = 7
# The least bytes a key-value pair and a tensor info can take, for the reader's lower bound on what the
# header still holds: key (8-byte length + at least 1 byte: gguf.cpp refuses empty keys) + 4-byte type
# + at least a 1-byte value; name (8 + 0) + n_dims (4) + type (4) + offset (8).
_MIN_KV_BYTES = 8 + 1 + 4 + 1
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8


@dataclass(frozen=True)
class GgufArray:
    """An array value: element type, count, and the values when short enough to keep."""

    type: int
    count: int
    values: tuple[Any, ...] | None  # None: longer than MAX_KEPT_ARRAY (counted, not kept)


@dataclass(frozen=True)
class LongString:
    """A string value longer than MAX_KEPT_STRING: skipped, only its length kept."""

    length: int


@dataclass(frozen=True)
class GgufTensorInfo:
    """One tensor info: shape in ggml order (ne[0] first), type, offset in the data section, bytes."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    type_name: str
    offset: int
    numel: int
    nbytes: int


@dataclass(frozen=True)
class GgufHeader:
    """A parsed header. ``header_bytes`` is where the tensor infos end (what a reader needs);
    ``data_offset`` where the aligned data section starts; ``data_bytes`` its size as gguf.cpp
    computes it (each tensor padded to the alignment)."""

    name: str
    version: int
    metadata: dict[str, Any]
    value_types: dict[str, int]
    tensors: tuple[GgufTensorInfo, ...]
    alignment: int
    header_bytes: int
    data_offset: int
    data_bytes: int
    file_size: int | None
    fetched: int

    def get(self, key: str, default: Any = None) -> Any:
        """A metadata value (arrays as GgufArray), or ``default``."""
        return self.metadata.get(key, default)

    @property
    def tensor_bytes(self) -> int:
        """Exact bytes of all tensors (padding excluded)."""
        return sum(t.nbytes for t in self.tensors)


class _Cursor:
    """Sequential reads over a ByteSource, with a cap on the position and reads sized by a lower bound
    on what the header still holds (``rest``: bytes known to follow the item being read)."""

    def __init__(self, src: ByteSource, limit: int) -> None:
        self.src = src
        self.limit = limit if src.size is None else min(limit, src.size)
        self.pos = 0
        self.buf = b""
        self.buf_start = 0
        self.rest = 0

    def _fail(self, n: int) -> ConfigError:
        if self.src.size is not None and self.pos + n > self.src.size:
            return ConfigError(f"{self.src.name}: GGUF header runs past the end of the file "
                               f"({self.src.size:,} bytes): truncated or not a GGUF file")
        return ConfigError(f"{self.src.name}: GGUF header is larger than {MAX_GGUF_HEADER_BYTES:,} bytes",
                           "a real header (tokenizer included) is under 20 MB")

    def take(self, n: int) -> bytes:
        """Exactly ``n`` bytes at the position, advancing it."""
        if self.pos + n > self.limit:
            raise self._fail(n)
        off = self.pos - self.buf_start
        if off >= 0 and off + n <= len(self.buf):
            self.pos += n
            return self.buf[off:off + n]
        have = self.buf[off:] if 0 <= off < len(self.buf) else b""
        start = self.pos + len(have)
        need = n - len(have)
        want = max(need + self.rest, self.src.readahead)
        want = max(need, min(want, MAX_READ_BYTES, self.limit - start))
        data = self.src.read(start, want)
        if len(data) < need:
            raise self._fail(n)
        self.buf = have + data
        self.buf_start = self.pos
        self.pos += n
        return self.buf[:n]

    def skip(self, n: int) -> None:
        """Advance past ``n`` bytes without fetching them."""
        if self.pos + n > self.limit:
            raise self._fail(n)
        self.pos += n

    def unpack(self, fmt: str, size: int) -> Any:
        return struct.unpack("<" + fmt, self.take(size))[0]


def _string(cur: _Cursor, what: str, cap: int, keep: int | None = None) -> str | LongString:
    n = cur.unpack("Q", 8)
    if n > cap:
        raise ConfigError(f"{cur.src.name}: {what} is {n:,} bytes long, over the {cap:,} limit")
    limit = keep if keep is not None else cap
    if n > limit:
        cur.skip(n)
        return LongString(n)
    return cur.take(n).decode("utf-8", errors="replace") if n else ""


def _value(cur: _Cursor, vtype: int, key: str) -> Any:
    if vtype in _FIXED:
        fmt, size = _FIXED[vtype]
        v = cur.unpack(fmt, size)
        return v != 0 if vtype == GGUF_BOOL else v
    if vtype == GGUF_STRING:
        return _string(cur, f"the value of {quote(key)}", MAX_GGUF_STRING_BYTES, MAX_KEPT_STRING)
    if vtype == GGUF_ARRAY:
        return _array(cur, key)
    raise ConfigError(f"{cur.src.name}: key {quote(key)} has invalid GGUF type {vtype}")


def _array(cur: _Cursor, key: str) -> GgufArray:
    etype = cur.unpack("i", 4)
    count = cur.unpack("Q", 8)
    if etype == GGUF_ARRAY:  # gguf.cpp: nested arrays are an invalid type
        raise ConfigError(f"{cur.src.name}: key {quote(key)} is a nested array, which GGUF does not allow")
    if etype != GGUF_STRING and etype not in _FIXED:
        raise ConfigError(f"{cur.src.name}: key {quote(key)} is an array of invalid GGUF type {etype}")
    if count > MAX_GGUF_ARRAY_ELEMENTS:
        raise ConfigError(f"{cur.src.name}: key {quote(key)} holds {count:,} elements, over the "
                          f"{MAX_GGUF_ARRAY_ELEMENTS:,} limit")
    outer = cur.rest
    if etype in _FIXED:
        fmt, size = _FIXED[etype]
        if count > MAX_KEPT_ARRAY:
            cur.skip(count * size)  # a vocabulary's scores or types: never fetched
            return GgufArray(etype, count, None)
        raw = cur.take(count * size)
        vals = struct.unpack(f"<{count}{fmt}", raw)
        return GgufArray(etype, count, tuple(v != 0 for v in vals) if etype == GGUF_BOOL else vals)
    if cur.pos + 8 * count > cur.limit:  # every string has at least its 8-byte length
        raise cur._fail(8 * count)
    what = f"an element of {quote(key)}"
    if count > MAX_KEPT_ARRAY:  # a vocabulary or merge list: walk it, keep nothing
        _skip_strings(cur, count, outer, what)
        return GgufArray(GGUF_STRING, count, None)
    out: list[str] = []
    for i in range(count):
        cur.rest = outer + 8 * (count - i - 1)
        s = _string(cur, what, MAX_GGUF_STRING_BYTES, MAX_KEPT_STRING)
        out.append(s if isinstance(s, str) else "")
    cur.rest = outer
    return GgufArray(GGUF_STRING, count, tuple(out))


def _skip_strings(cur: _Cursor, count: int, outer: int, what: str) -> None:
    """Step over ``count`` strings: a tight loop over the buffered bytes, the cursor for the rest."""
    unpack_from = struct.unpack_from
    i = 0
    while i < count:
        buf, off, end = cur.buf, cur.pos - cur.buf_start, len(cur.buf)
        while i < count and off >= 0 and off + 8 <= end:
            (n,) = unpack_from("<Q", buf, off)
            if n > MAX_GGUF_STRING_BYTES or off + 8 + n > end:
                break
            off += 8 + n
            i += 1
        if 0 <= off <= end:
            cur.pos = cur.buf_start + off
        if i < count:  # a string across the buffer's end (or an oversized one): the checked path
            cur.rest = outer + 8 * (count - i - 1)
            _string(cur, what, MAX_GGUF_STRING_BYTES, 0)
            i += 1
    cur.rest = outer


def read_gguf_header(src: ByteSource, *, limit: int = MAX_GGUF_HEADER_BYTES) -> GgufHeader:
    """Parse the header of the GGUF file ``src``: metadata, tensor infos, alignment and data extent.
    Every problem is one ConfigError line naming the file."""
    cur = _Cursor(src, limit)
    name = src.name
    cur.rest = 20  # version + counts follow the magic
    magic = cur.take(4)
    if magic != GGUF_MAGIC:
        raise ConfigError(f"{name} is not a GGUF file (magic {magic!r}, expected b'GGUF')")
    version = cur.unpack("I", 4)
    if version and version & 0xFFFF == 0:
        raise ConfigError(f"{name} is a big-endian GGUF file; llm-mem reads little-endian files",
                          "convert it with gguf-py's gguf_convert_endian")
    if version not in SUPPORTED_VERSIONS:
        raise ConfigError(f"{name} is GGUF version {version}; llm-mem reads versions 2 and 3"
                          + (" (v1 is no longer supported by llama.cpp)" if version == 1 else ""))
    n_tensors = cur.unpack("q", 8)
    n_kv = cur.unpack("q", 8)
    if not 0 <= n_tensors <= MAX_GGUF_TENSORS:
        raise ConfigError(f"{name}: GGUF header declares {n_tensors:,} tensors (at most {MAX_GGUF_TENSORS:,} read)")
    if not 0 <= n_kv <= MAX_GGUF_KV:
        raise ConfigError(f"{name}: GGUF header declares {n_kv:,} key-value pairs (at most {MAX_GGUF_KV:,} read)")
    floor = n_kv * _MIN_KV_BYTES + n_tensors * _MIN_TENSOR_INFO_BYTES
    if cur.pos + floor > cur.limit:
        raise cur._fail(floor)

    metadata: dict[str, Any] = {}
    types: dict[str, int] = {}
    for i in range(n_kv):
        cur.rest = (n_kv - i - 1) * _MIN_KV_BYTES + n_tensors * _MIN_TENSOR_INFO_BYTES + 5
        key = _string(cur, "a metadata key", MAX_GGUF_KEY_BYTES)
        assert isinstance(key, str)
        if not key:
            raise ConfigError(f"{name}: metadata key {i} is empty")
        if key in metadata:
            raise ConfigError(f"{name}: duplicate metadata key {quote(key)}")
        cur.rest -= 4
        vtype = cur.unpack("i", 4)
        cur.rest = (n_kv - i - 1) * _MIN_KV_BYTES + n_tensors * _MIN_TENSOR_INFO_BYTES
        metadata[key] = _value(cur, vtype, key)
        types[key] = vtype

    alignment = DEFAULT_ALIGNMENT
    if "general.alignment" in metadata:
        a = metadata["general.alignment"]
        if types["general.alignment"] != GGUF_UINT32:
            raise ConfigError(f"{name}: general.alignment must be a uint32")
        if a == 0 or a & (a - 1):
            raise ConfigError(f"{name}: general.alignment {a} is not a power of 2")
        alignment = int(a)

    tensors: list[GgufTensorInfo] = []
    seen: set[str] = set()
    expected = 0
    for i in range(n_tensors):
        others = (n_tensors - i - 1) * _MIN_TENSOR_INFO_BYTES
        cur.rest = others + 16  # after the name: n_dims, type, offset
        tname = _string(cur, "a tensor name", GGML_MAX_NAME - 1)
        assert isinstance(tname, str)
        if tname in seen:
            raise ConfigError(f"{name}: duplicate tensor name {quote(tname)}")
        seen.add(tname)
        cur.rest = others + 12
        n_dims = cur.unpack("I", 4)
        if n_dims > GGML_MAX_DIMS:
            raise ConfigError(f"{name}: tensor {quote(tname)} has {n_dims} dimensions (ggml allows {GGML_MAX_DIMS})")
        shape = struct.unpack(f"<{n_dims}q", cur.take(8 * n_dims)) if n_dims else ()
        numel = 1
        for d in shape:
            if d < 0:
                raise ConfigError(f"{name}: tensor {quote(tname)} has a negative dimension {d}")
            numel *= d
        if numel >= 2**63:  # gguf.cpp: the element count must be representable in int64
            raise ConfigError(f"{name}: tensor {quote(tname)} has {numel:,} elements, more than int64 holds")
        cur.rest = others + 8
        type_id = cur.unpack("i", 4)
        gt = GGML_BY_ID.get(type_id)
        if gt is None:
            raise ConfigError(f"{name}: tensor {quote(tname)} has ggml type {type_id}, which llm-mem does not know",
                              "a newer llama.cpp type? update llm-mem")
        ne0 = shape[0] if shape else 1
        if ne0 % gt.block:  # gguf.cpp: each row must be whole blocks
            raise ConfigError(f"{name}: tensor {quote(tname)} of type {gt.name} has rows of {ne0} elements, "
                              f"not a multiple of the block size {gt.block}")
        nbytes = numel // gt.block * gt.block_bytes
        cur.rest = others
        offset = cur.unpack("Q", 8)
        if offset != expected:  # gguf.cpp: tensors are laid out in order, each padded to the alignment
            raise ConfigError(f"{name}: tensor {quote(tname)} has data offset {offset:,}, expected {expected:,}")
        expected += -(-nbytes // alignment) * alignment
        tensors.append(GgufTensorInfo(tname, tuple(shape), type_id, gt.name, offset, numel, nbytes))

    header_bytes = cur.pos
    data_offset = -(-header_bytes // alignment) * alignment if n_tensors else header_bytes
    if src.size is not None and data_offset + expected > src.size:
        raise ConfigError(f"{name}: the header describes {data_offset + expected:,} bytes but the file holds "
                          f"{src.size:,}: truncated")
    return GgufHeader(name, version, metadata, types, tuple(tensors), alignment, header_bytes, data_offset,
                      expected, src.size, src.fetched)
