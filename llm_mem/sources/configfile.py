"""Reading input files safely: a byte cap enforced while reading (never trusting st_size), regular
files only (a FIFO, a device or /dev/stdin would block or never end), JSON only, never code."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from llm_mem.errors import ConfigError
from llm_mem.sources.limits import MAX_CONFIG_BYTES

__all__ = ["MAX_CONFIG_BYTES", "load_config_file", "open_regular", "parse_json_object", "read_limited"]
_CHUNK = 1 << 16


def open_regular(path: Path, what: str = "file") -> tuple[int, int]:
    """Open a regular file read-only: (file descriptor, size). Opening never blocks (O_NONBLOCK, so a
    FIFO without a writer cannot hang us) and anything but a regular file (a folder, a FIFO, a device
    such as /dev/zero, a socket) is one ConfigError line. FileNotFoundError passes through. The caller
    closes the descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, device or socket)"
            raise ConfigError(f"{path} is {kind}", f"give the path of a {what}")
        return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_limited(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file, refusing more than ``limit`` bytes (counted while reading, so a
    file that grows or lies about its size cannot exceed it) and anything that is not a regular file.
    FileNotFoundError passes through; other problems are one ConfigError line."""
    fd, _ = open_regular(path, what)
    try:
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise ConfigError(f"{path} is larger than {limit:,} bytes, too large for a {what}")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def parse_json_object(data: bytes, where: str) -> dict[str, Any]:
    """A JSON object from bytes, or one ConfigError line naming ``where``."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise ConfigError(f"{where} nests JSON too deeply to be a config") from None
    except ValueError:  # an integer of more digits than int() converts (sys.get_int_max_str_digits)
        raise ConfigError(f"{where} holds a number too long to be a config value") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{where} holds a JSON {type(obj).__name__}, not an object")
    return obj


def load_config_file(path: Path) -> dict[str, Any]:
    """Read and JSON-parse a config file, refusing huge, special or malformed files with one clear line."""
    try:
        data = read_limited(path, MAX_CONFIG_BYTES, "config.json")
    except FileNotFoundError:
        raise ConfigError(f"cannot read {path}: no such file") from None
    return parse_json_object(data, str(path))
