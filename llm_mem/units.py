"""Units. Inside the program every size is an int of bytes. GB means 10**9 bytes and
GiB 2**30 bytes; they are never mixed, and every printed figure names its unit."""

from __future__ import annotations

import math
import re

from llm_mem.errors import UsageError, quote

KB, MB, GB, TB = 10**3, 10**6, 10**9, 10**12
KIB, MIB, GIB, TIB = 2**10, 2**20, 2**30, 2**40

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": KB, "kb": KB, "m": MB, "mb": MB, "g": GB, "gb": GB, "t": TB, "tb": TB,
    "kib": KIB, "mib": MIB, "gib": GIB, "tib": TIB,
}
# The largest memory size a flag may name: 1 EiB (2^60 bytes). The largest GPU holds 288 GB (MI355X),
# the largest single machines a few tens of TB of RAM; beyond this a size is a typo, not a machine.
MAX_SIZE_BYTES = 2**60
# The largest token count read from text before the workload's own bound (llm_mem.workload.MAX_CONTEXT)
# applies: 2^53, where floats stop holding every integer.
MAX_TOKENS_TEXT = 2**53
# A decimal number with no two ways to split its digits: `[0-9]*\.?[0-9]+` (the old form) backtracked
# quadratically on a long run of digits that then failed to match (40,000 digits: 27 s), and so did two
# `\s*` around an optional unit. Each pattern below is linear in the length of the text.
NUMBER = r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_SIZE_RE = re.compile(r"^\s*" + NUMBER + r"\s*(?:([a-zA-Z]+)\s*)?$")


def parse_size(text: str) -> int:
    """Parse a memory size such as ``8GB``, ``24 GiB``, ``80G`` or ``512MiB`` into bytes.

    ``G``/``GB`` are decimal (10**9) and ``GiB`` binary (2**30), as marketed GPU sizes are decimal-ish
    but nvidia-smi reports MiB. Raises UsageError on anything else (``8XB``).
    """
    m = _SIZE_RE.match(text) if isinstance(text, str) else None
    unit = (m.group(2) or "").lower() if m else None
    if not m or unit not in _SIZE_UNITS:
        raise UsageError(
            f"cannot read {quote(text)} as a memory size",
            "use a number and a unit such as 8GB, 24GiB, 80G or 512MiB",
        )
    value = float(m.group(1)) * _SIZE_UNITS[unit]
    if value <= 0:
        raise UsageError(f"memory size {quote(text)} must be positive")
    if not value <= MAX_SIZE_BYTES:  # inf from a 400-digit number included
        raise UsageError(f"memory size {quote(text)} is over 1 EiB", "no GPU or machine holds that much")
    if round(value) < 1:
        raise UsageError(f"memory size {quote(text)} is less than one byte")
    return round(value)


_TOKENS_RE = re.compile(r"^\s*" + NUMBER + r"\s*(?:([kKmM])\s*)?$")


def parse_tokens(text: str | int | float) -> int:
    """Parse a token count: ``2048``, ``32k`` (= 32 * 1024 = 32768, as context lengths are
    conventionally binary, cf. Llama's 131072 = "128k") or ``1m`` (2**20)."""
    if isinstance(text, bool):
        raise UsageError(f"cannot read {text} as a token count", "use e.g. 2048, 8k or 128k")
    if isinstance(text, float):
        if not text.is_integer():  # NaN and inf included
            raise UsageError(f"token count {text} is not a whole number")
        text = int(text)
    if isinstance(text, int):
        value = text
    else:
        m = _TOKENS_RE.match(text)
        if not m:
            raise UsageError(f"cannot read {quote(text)} as a token count", "use e.g. 2048, 8k or 128k")
        mult = {"": 1, "k": 1024, "m": 1024 * 1024}[(m.group(2) or "").lower()]
        number = float(m.group(1)) * mult
        if not number <= MAX_TOKENS_TEXT:  # inf from a 400-digit number included
            raise UsageError(f"token count {quote(text)} is too large", "contexts are at most a few million tokens")
        value = int(number)
    if value <= 0:
        raise UsageError(f"token count {quote(text)} must be positive")
    return value


def bits_to_bytes(n_elements: int, bits: float) -> int:
    """Bytes to store ``n_elements`` at ``bits`` each, rounded up (never 0 for int4)."""
    return math.ceil(n_elements * bits / 8)


def fmt_gb(n: int | float, digits: int = 2) -> str:
    """Format bytes as decimal gigabytes, e.g. ``16.06 GB``."""
    return f"{n / GB:,.{digits}f} GB"


def fmt_gib(n: int | float, digits: int = 2) -> str:
    """Format bytes as binary gibibytes, e.g. ``14.96 GiB``."""
    return f"{n / GIB:,.{digits}f} GiB"
