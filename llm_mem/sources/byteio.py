"""Random-access byte sources for header readers: a local file, or a file on the Hub read with HTTP
Range requests (llm_mem.sources.http.HubFile). Readers ask for exactly the bytes they parse; a
source may read ahead up to its ``readahead`` (local files: cheap; the Hub: nothing, so that not a
byte past a header is transferred)."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Protocol

from llm_mem.errors import ConfigError
from llm_mem.sources.configfile import open_regular
from llm_mem.sources.limits import LOCAL_READAHEAD


class ByteSource(Protocol):
    """A file read by offset. ``read`` returns exactly ``n`` bytes, fewer only at the end of the file."""

    @property
    def name(self) -> str:
        """For messages: a path or repo/file."""

    @property
    def size(self) -> int | None:
        """Bytes in the file, when known."""

    @property
    def readahead(self) -> int:
        """How many bytes past a request a read may fetch."""

    @property
    def fetched(self) -> int:
        """Bytes read so far (over HTTP: bytes transferred)."""

    def read(self, offset: int, n: int) -> bytes:
        """Exactly ``n`` bytes at ``offset``, fewer only at the end of the file."""


class LocalFile:
    """A regular local file (a FIFO or device is refused when opened), read with pread."""

    readahead = LOCAL_READAHEAD

    def __init__(self, path: Path, what: str = "file") -> None:
        self.path = path
        self.name = str(path)
        self.what = what
        self.fd, self.size = open_regular(path, what)
        self.fetched = 0

    def read(self, offset: int, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        try:
            while got < n:
                chunk = os.pread(self.fd, n - got, offset + got)
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
        except OSError as e:
            raise ConfigError(f"cannot read {self.what} {self.path}: {e.strerror or e}") from None
        self.fetched += got
        return b"".join(parts)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> LocalFile:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
