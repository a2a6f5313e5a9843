"""Reading input files safely: a byte cap enforced while reading (never trusting st_size), regular
files only (a FIFO, a device or /dev/stdin would block or never end), JSON only, never code. Output
files (--junit, --plot) are written the same way: regular files only, never blocking."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from llm_mem.errors import ConfigError
from llm_mem.sources.limits import MAX_CONFIG_BYTES

__all__ = ["MAX_CONFIG_BYTES", "load_config_file", "open_regular", "parse_json_object", "read_limited", "write_regular",
           "yaml_loader", "yaml_shape_problem"]
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


def write_regular(path: Path, text: str, flag: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, a regular file, created or replaced. Opening never blocks
    (O_NONBLOCK: a FIFO without a reader would hang us) and anything but a regular file (a FIFO, a
    device such as /dev/stdout, a folder) is refused before a byte is written: one UsageError line
    naming ``flag``, as is any OSError."""
    from llm_mem.errors import UsageError

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o666)
    except OSError as e:
        why = "a pipe with no reader" if e.errno == errno.ENXIO else e.strerror or e
        raise UsageError(f"cannot write {flag} {path}: {why}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"cannot write {flag} {path}: not a regular file (a pipe, device or socket)",
                             "give the path of a file")
        os.ftruncate(fd, 0)
        data = text.encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as e:
        raise UsageError(f"cannot write {flag} {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


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


def yaml_loader() -> Any:
    """PyYAML's safe loader class: libyaml's (about 10x faster) where PyYAML was built with it."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _event_line(event: Any) -> int:
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else 1


def yaml_shape_problem(text: str, max_nodes: int, max_depth: int) -> tuple[int, str] | None:
    """(line, problem) when a YAML document holds more than ``max_nodes`` values (scalars, aliases, lists,
    mappings) or nests more than ``max_depth`` lists and mappings; None when it holds neither. Checked on
    the parser's events, before anything is composed: the parser is a state machine (any depth is safe)
    and stops at the bound, while PyYAML's composer recurses once per level and a 2 MiB file of
    ``1,1,1,...`` takes a minute to build. A syntax error is left for the loader to report."""
    import yaml

    depth = nodes = 0
    loader = yaml_loader()(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                nodes += 1
                if nodes > max_nodes:
                    return _event_line(event), f"more than {max_nodes:,} values"
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > max_depth:
                    return _event_line(event), f"nests more than {max_depth} levels of lists and mappings"
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return None
