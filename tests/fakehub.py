"""A local, in-process fake of the Hugging Face Hub HTTP API, for tests.

Speaks just enough of the Hub protocol for real `huggingface_hub` calls (`hf_hub_download`,
`get_hf_file_metadata`, `HfApi.get_safetensors_metadata`) to work against it:

- HEAD/GET  /{repo_id}/resolve/{revision}/{filename}   (Range -> 206, X-Repo-Commit, ETag, ...)
- GET       /api/models/{repo_id}[/revision/{revision}] (minimal model_info; not used by the above)

Errors carry the `X-Error-Code` header that `huggingface_hub.utils.hf_raise_for_status` maps to its
exception classes: GatedRepo (401), RepoNotFound (404), RevisionNotFound (404), EntryNotFound (404).

Every request is recorded in `FakeHub.requests` as `Request(method, path, headers)`; `path` is the raw
(percent-encoded) request path and `headers` a dict with lower-cased names. Every response body sent is
recorded in `FakeHub.transfers` as `Transfer(method, path, range, status, sent)` (`sent`: body bytes
written to the socket, so tests can assert how much of a file a client pulled).

`/api/models/{repo}?blobs=true` adds each file's `size` (and `lfs` for LFS files), as the Hub does for
`HfApi.model_info(files_metadata=True)`.

Hostile behaviours, per file (`FakeHub.add_repo(..., behaviours={"config.json": {"endless"}})` or
`FakeHub.set_behaviour(repo, file, *flags)`), each bounded in bytes and time so the server always stops:

- "no_length": no Content-Length; the body ends when the connection closes.
- "endless": after the file, filler bytes without end (no Content-Length), until the client hangs up
  (or ENDLESS_MAX_BYTES / ENDLESS_MAX_S).
- "ignore_range": answers a Range request with 200 and the whole body.
- "slow": one byte every `FakeHub.drip_interval_s` (default 1 s), headers included.
- "stall": waits `FakeHub.stall_s` before answering at all.

`SparseFile(head, size)` serves a file of `size` bytes whose first bytes are `head` and the rest zeros,
without allocating it: a 10 GB GGUF costs only its header. `make_gguf` writes GGUF bytes with llama.cpp's
own gguf-py `GGUFWriter`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from math import prod
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

VALID_TOKEN = "hf_valid_token"

# Files the real Hub stores in LFS/Xet: served with a sha256 ETag plus X-Linked-Etag / X-Linked-Size.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".onnx")

DTYPE_SIZES = {
    "F64": 8, "I64": 8, "U64": 8,
    "F32": 4, "I32": 4, "U32": 4,
    "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
}


# Bounds of the hostile behaviours: the server stops by itself whatever the client does.
ENDLESS_MAX_BYTES = 256 * 2**20
ENDLESS_MAX_S = 30.0
SLOW_MAX_S = 30.0
BEHAVIOURS = frozenset({"no_length", "endless", "ignore_range", "slow", "stall"})


class Request(NamedTuple):
    method: str
    path: str  # raw request path, percent-encoded, query string included
    headers: dict[str, str]  # lower-cased header names


class Transfer(NamedTuple):
    method: str
    path: str  # decoded path, without the query
    range: str | None  # the request's Range header
    status: int
    sent: int  # body bytes written


class SparseFile:
    """A file of `size` bytes: `head`, then zeros. Slicing returns bytes; nothing big is allocated
    unless a client asks for it (a test that reads headers only never does)."""

    def __init__(self, head: bytes, size: int) -> None:
        if size < len(head):
            raise ValueError("size is smaller than the head")
        self.head = head
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: slice) -> bytes:
        start, stop, _ = key.indices(self.size)
        if stop <= start:
            return b""
        part = self.head[start:min(stop, len(self.head))]
        return part + bytes(max(0, stop - max(start, len(self.head))))

    def digest(self) -> str:
        return hashlib.sha256(self.head + str(self.size).encode()).hexdigest()


Blob = Any  # bytes or SparseFile


class _Repo(NamedTuple):
    files: dict[str, Blob]
    gated: bool
    sha: str
    behaviours: dict[str, frozenset[str]]


# ----------------------------------------------------------------------------------------------
# safetensors builders


def make_safetensors(
    tensors: dict[str, tuple[str, list[int]]],
    *,
    with_data: bool = True,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """Build a safetensors file: 8-byte little-endian header length, JSON header, data.

    `tensors` maps name -> (dtype, shape), e.g. {"w": ("BF16", [4, 8])}. The data section is all zero
    bytes. With `with_data=False` the data section is left out entirely (header only, the file is
    truncated): still enough for `get_safetensors_metadata`, which reads only the header, and lets a
    test describe a 70B model without allocating it.
    """
    header: dict[str, object] = {"__metadata__": metadata if metadata is not None else {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        if dtype not in DTYPE_SIZES:
            raise ValueError(f"unsupported dtype {dtype!r}; known: {sorted(DTYPE_SIZES)}")
        nbytes = prod(shape) * DTYPE_SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header with spaces to 8-byte alignment
    return struct.pack("<Q", len(raw)) + raw + (bytes(offset) if with_data else b"")


def make_sharded(
    tensors: dict[str, tuple[str, list[int]]],
    num_shards: int = 2,
    *,
    with_data: bool = True,
    prefix: str = "model",
) -> dict[str, bytes]:
    """Split `tensors` (in order) into `num_shards` safetensors shards plus their index.

    Returns {"model.safetensors.index.json": ..., "model-00001-of-0000N.safetensors": ..., ...},
    ready to merge into the `files` of `FakeHub.add_repo`.
    """
    names = list(tensors)
    if not 1 <= num_shards <= max(len(names), 1):
        raise ValueError(f"num_shards must be between 1 and the number of tensors ({len(names)})")
    per_shard, extra = divmod(len(names), num_shards)
    files: dict[str, bytes] = {}
    weight_map: dict[str, str] = {}
    total_size = 0
    start = 0
    for i in range(num_shards):
        chunk = names[start:start + per_shard + (1 if i < extra else 0)]
        start += len(chunk)
        shard_name = f"{prefix}-{i + 1:05d}-of-{num_shards:05d}.safetensors"
        files[shard_name] = make_safetensors({n: tensors[n] for n in chunk}, with_data=with_data)
        for n in chunk:
            dtype, shape = tensors[n]
            weight_map[n] = shard_name
            total_size += prod(shape) * DTYPE_SIZES[dtype]
    index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    files[f"{prefix}.safetensors.index.json"] = json.dumps(index, indent=2).encode()
    return files


# ----------------------------------------------------------------------------------------------
# the server


class FakeHub:
    """In-process Hub on 127.0.0.1:<free port>. Use start()/stop() or `with FakeHub() as hub:`."""

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.requests: list[Request] = []
        self.transfers: list[Transfer] = []
        self.drip_interval_s = 1.0  # "slow": seconds per byte
        self.stall_s = 5.0  # "stall": seconds before answering
        self.valid_tokens: set[str] = {VALID_TOKEN}
        self.blocked_hosts: list[str] = []  # filled by the fake_hub fixture's network guard (conftest.py)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- repos --------------------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: dict[str, Blob],
        gated: bool = False,
        revision_sha: str | None = None,
        behaviours: dict[str, Iterable[str]] | None = None,
    ) -> str:
        """Add (or replace) a model repo. Its files resolve at revision "main" and at its commit sha,
        which is `revision_sha` or a sha derived from repo_id. `behaviours` maps file names to hostile
        behaviour flags (see the module doc). Returns the sha."""
        sha = revision_sha or hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = _Repo(dict(files), gated, sha, {})
        for name, flags in (behaviours or {}).items():
            self.set_behaviour(repo_id, name, *flags)
        return sha

    def set_behaviour(self, repo_id: str, filename: str, *flags: str) -> None:
        """Make `filename` of `repo_id` misbehave (flags from BEHAVIOURS; none: behave again)."""
        unknown = set(flags) - BEHAVIOURS
        if unknown:
            raise ValueError(f"unknown behaviours {sorted(unknown)}; known: {sorted(BEHAVIOURS)}")
        self.repos[repo_id].behaviours[filename] = frozenset(flags)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        if self._server is not None:
            return self
        hub = self

        class Handler(_HubHandler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # short poll interval: stop() waits up to one interval for serve_forever to notice
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="FakeHub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- assertions helpers -------------------------------------------------------------------
    def gets_without_range(self, suffix: str = ".safetensors") -> list[Request]:
        """GET requests for files ending in `suffix` that carried no Range header (full downloads)."""
        return [
            r for r in self.requests
            if r.method == "GET" and urlsplit(r.path).path.endswith(suffix) and "range" not in r.headers
        ]

    def bytes_sent(self, suffix: str = "") -> int:
        """Body bytes sent for GETs of paths ending in `suffix`."""
        return sum(t.sent for t in self.transfers if t.method == "GET" and t.path.endswith(suffix))

    def resolve_requests(self, filename: str | None = None) -> list[Request]:
        """Requests on /{repo}/resolve/..., optionally only those for `filename`."""
        out = [r for r in self.requests if "/resolve/" in r.path]
        if filename is not None:
            out = [r for r in out if unquote(urlsplit(r.path).path).endswith("/" + filename)]
        return out


class _HubHandler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # one send per response (flushed after each request), no Nagle/delayed-ACK stalls
    disable_nagle_algorithm = True
    server_version = "FakeHub/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -- dispatch -----------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        self.fake.requests.append(Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        path = urlsplit(self.path).path
        if path.startswith("/api/models/"):
            self._model_info(path[len("/api/models/"):], head)
        elif "/resolve/" in path:
            self._resolve(path, head)
        else:
            self._error(404, None, f"Not found: {path}", head)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[len("Bearer "):].strip() in self.fake.valid_tokens

    # -- routes -------------------------------------------------------------------------------
    def _resolve(self, path: str, head: bool) -> None:
        repo_part, _, rest = path.lstrip("/").partition("/resolve/")
        revision, _, filename = rest.partition("/")
        repo_id, revision, filename = unquote(repo_part), unquote(revision), unquote(filename)
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found", head)
        if repo.gated and not self._authorized():
            return self._error(
                401, "GatedRepo",
                f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to access it. Please log in.",
                head,
            )
        if revision not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, head)
        data = repo.files.get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", "Entry not found", head, {"X-Repo-Commit": repo.sha})
        self._send_file(data, filename, repo.sha, head, repo.behaviours.get(filename, frozenset()))

    def _model_info(self, rest: str, head: bool) -> None:
        blobs = parse_qs(urlsplit(self.path).query).get("blobs", ["false"])[0].lower() == "true"
        repo_id, _, revision = rest.partition("/revision/")
        repo_id, revision = unquote(repo_id.strip("/")), unquote(revision.strip("/")) or "main"
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found", head)
        if revision not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, head)
        info = {
            "id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False,
            "gated": "manual" if repo.gated else False,
            "siblings": [_sibling(name, data) if blobs else {"rfilename": name} for name, data in sorted(repo.files.items())],
        }
        self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)

    # -- responses ----------------------------------------------------------------------------
    def _send_file(self, data: Blob, filename: str, sha: str, head: bool, flags: frozenset[str] = frozenset()) -> None:
        size = len(data)
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes", "Content-Type": _content_type(filename)}
        if filename.endswith(_LFS_SUFFIXES):
            etag = data.digest() if isinstance(data, SparseFile) else hashlib.sha256(data).hexdigest()
            headers |= {"ETag": f'"{etag}"', "X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(size)}
        else:  # git blob sha1, as the Hub does for regular files
            git_sha = hashlib.sha1(b"blob %d\x00" % size + bytes(data[0:size])).hexdigest()
            headers["ETag"] = f'"{git_sha}"'
        if "stall" in flags:
            time.sleep(self.fake.stall_s)
        rng = self.headers.get("Range")
        if rng is None or "ignore_range" in flags:
            return self._send_blob(200, data, 0, size, headers, head, flags)
        span = _parse_range(rng, size)
        if span is None:  # unsatisfiable
            return self._send(416, b"", headers | {"Content-Range": f"bytes */{size}"}, head)
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send_blob(206, data, start, end + 1, headers, head, flags)

    def _error(self, status: int, code: str | None, message: str, head: bool,
               extra: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
        if code is not None:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers, head)

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self._send_blob(status, body, 0, len(body), headers, head)

    def _record(self, status: int, sent: int) -> None:
        self.fake.transfers.append(Transfer(self.command, unquote(urlsplit(self.path).path),
                                            self.headers.get("Range"), status, sent))

    def _send_blob(self, status: int, data: Blob, start: int, end: int, headers: dict[str, str], head: bool,
                   flags: frozenset[str] = frozenset()) -> None:
        """Status line, headers, and data[start:end] written in chunks (a SparseFile is never built
        whole), with the hostile behaviours of `flags`, each bounded in bytes and seconds. No
        keep-alive: nothing stays pooled in huggingface_hub's shared client, and no handler thread
        outlives stop()."""
        reason = {200: "OK", 206: "Partial Content", 416: "Range Not Satisfiable"}.get(status, "Error")
        lines = [f"HTTP/1.1 {status} {reason}\r\n", f"Server: {self.server_version}\r\n"]
        lines += [f"{k}: {v}\r\n" for k, v in headers.items()]
        if head or not flags & {"endless", "no_length"}:
            lines.append(f"Content-Length: {end - start}\r\n")
        lines.append("Connection: close\r\n\r\n")
        preamble = "".join(lines).encode("latin-1")
        sock = self.connection
        sent = 0
        t0 = time.monotonic()
        self.close_connection = True
        try:
            if "slow" in flags and not head:  # every byte, headers included, an interval apart
                for i in range(len(preamble) + end - start):
                    if time.monotonic() - t0 > SLOW_MAX_S:
                        break
                    if i < len(preamble):
                        sock.sendall(preamble[i:i + 1])
                    else:
                        sock.sendall(bytes(data[start + i - len(preamble):start + i - len(preamble) + 1]))
                        sent += 1
                    time.sleep(self.fake.drip_interval_s)
                return
            sock.sendall(preamble)
            if head:
                return
            for off in range(start, end, 1 << 20):
                chunk = bytes(data[off:min(end, off + (1 << 20))])
                sock.sendall(chunk)
                sent += len(chunk)
            if "endless" in flags:
                filler = b" " * (1 << 16)
                while sent < ENDLESS_MAX_BYTES and time.monotonic() - t0 < ENDLESS_MAX_S:
                    sock.sendall(filler)
                    sent += len(filler)
        except OSError:
            pass  # the client hung up: what a capped client does
        finally:
            self._record(status, sent)


def _sibling(name: str, data: Blob) -> dict[str, Any]:
    """A sibling of /api/models?blobs=true: name, size, blob id, and lfs for LFS files."""
    size = len(data)
    entry: dict[str, Any] = {"rfilename": name, "size": size,
                             "blobId": hashlib.sha1(name.encode() + str(size).encode()).hexdigest()}
    if name.endswith(_LFS_SUFFIXES):
        sha = data.digest() if isinstance(data, SparseFile) else hashlib.sha256(data).hexdigest()
        entry["lfs"] = {"sha256": sha, "size": size, "pointerSize": 134}
    return entry


def _content_type(filename: str) -> str:
    if filename.endswith(".json"):
        return "application/json"
    if filename.endswith((".md", ".txt")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """Inclusive (start, end) for a single `bytes=` range, clamped like a real server; None if
    unsatisfiable. Multi-range requests are not supported (treated as unsatisfiable)."""
    unit, _, spec = value.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":  # suffix range: last N bytes
            n = int(last)
            return (max(size - n, 0), size - 1) if n > 0 and size > 0 else None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


# ----------------------------------------------------------------------------------------------
# GGUF builders (llama.cpp's gguf-py GGUFWriter, imported here only)


def _gguf_value(writer: Any, key: str, value: Any) -> None:
    from gguf import GGUFValueType as T

    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], T):  # (value, explicit type)
        v, t = value
        sub = None
        if t == T.ARRAY:
            first = v[0] if v else 0
            sub = (T.STRING if isinstance(first, str) else T.BOOL if isinstance(first, bool)
                   else T.FLOAT32 if isinstance(first, float) else T.INT32)
        writer.add_key_value(key, v, t, sub_type=sub)
    elif isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    elif isinstance(value, list):
        writer.add_array(key, value)
    else:
        raise TypeError(f"{key}: cannot write {type(value).__name__}")


def make_gguf(
    arch: str,
    kv: dict[str, Any],
    tensors: dict[str, tuple[str, list[int]]],
    *,
    with_data: bool = True,
    split_max_tensors: int = 0,
    name: str = "model.gguf",
) -> Any:
    """GGUF file bytes written by gguf-py's GGUFWriter.

    `kv`: metadata (int -> uint32, bool, float -> float32, str, list -> array; or (value, GGUFValueType));
    general.architecture = `arch` is added by the writer. `tensors`: name -> (ggml type name, shape in
    ggml order, ne[0] first), data all zeros. `with_data=False` returns a `SparseFile` (header bytes, full
    size) instead of allocating the data. `split_max_tensors` > 0 returns {part file name: bytes} as
    llama.cpp's gguf-split names them (`name` with -0000k-of-0000N).
    """
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        w = GGUFWriter(path, arch, split_max_tensors=split_max_tensors)
        for k, v in kv.items():
            if k == "general.alignment":  # the writer must pad to it too
                w.add_custom_alignment(v[0] if isinstance(v, tuple) else v)
            else:
                _gguf_value(w, k, v)
        for tname, (tname_type, shape) in tensors.items():
            qt = GGMLQuantizationType[tname_type]
            block, block_bytes = GGML_QUANT_SIZES[qt]
            if shape[0] % block:
                raise ValueError(f"{tname}: ne[0] = {shape[0]} is not a multiple of the {tname_type} block {block}")
            byte_shape = (*reversed(shape[1:]), shape[0] // block * block_bytes)
            nbytes = int(prod(byte_shape))
            if with_data:
                w.add_tensor(tname, np.zeros(byte_shape, dtype=np.uint8), raw_dtype=qt)
            else:
                w.add_tensor_info(tname, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=qt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        if with_data:
            w.write_tensors_to_file()
        else:
            w.write_ti_data_to_file()
        w.close()
        outs = sorted(f for f in os.listdir(tmp) if f.endswith(".gguf"))
        blobs: dict[str, Any] = {}
        for f in outs:
            with open(os.path.join(tmp, f), "rb") as fh:
                raw = fh.read()
            blobs[f] = raw if with_data else SparseFile(raw, _gguf_full_size(raw))
    if split_max_tensors:
        return blobs
    return blobs[name]


def _gguf_full_size(header: bytes) -> int:
    """The size a GGUF file would have with its data, from its header (read with llm-mem's reader)."""
    from llm_mem.sources.gguf import read_gguf_header

    class _Mem:
        name = "memory"
        size = None
        readahead = 0
        fetched = 0

        def read(self, offset: int, n: int) -> bytes:
            return header[offset:offset + n]

    h = read_gguf_header(_Mem())
    return h.data_offset + h.data_bytes


def write_blob(path: Any, blob: Any) -> None:
    """Write bytes, or a SparseFile as its head plus a hole up to its size (no disk used for the data)."""
    with open(path, "wb") as f:
        if isinstance(blob, SparseFile):
            f.write(blob.head)
            f.truncate(blob.size)
        else:
            f.write(blob)


def llama_gguf_tensors(layers: int = 2, hidden: int = 256, ff: int = 512, vocab: int = 1000, kv_dim: int = 128,
                       qtype: str = "Q4_K", tied: bool = False) -> dict[str, tuple[str, list[int]]]:
    """The tensors of a small llama-architecture GGUF, in llama.cpp's names (ggml order shapes)."""
    t: dict[str, tuple[str, list[int]]] = {"token_embd.weight": (qtype, [hidden, vocab]),
                                           "output_norm.weight": ("F32", [hidden])}
    if not tied:
        t["output.weight"] = ("Q6_K", [hidden, vocab])
    for i in range(layers):
        t |= {f"blk.{i}.attn_norm.weight": ("F32", [hidden]), f"blk.{i}.attn_q.weight": (qtype, [hidden, hidden]),
              f"blk.{i}.attn_k.weight": (qtype, [hidden, kv_dim]), f"blk.{i}.attn_v.weight": ("Q6_K", [hidden, kv_dim]),
              f"blk.{i}.attn_output.weight": (qtype, [hidden, hidden]), f"blk.{i}.ffn_norm.weight": ("F32", [hidden]),
              f"blk.{i}.ffn_gate.weight": (qtype, [hidden, ff]), f"blk.{i}.ffn_up.weight": (qtype, [hidden, ff]),
              f"blk.{i}.ffn_down.weight": ("Q6_K", [ff, hidden])}
    return t


def llama_gguf_kv(layers: int = 2, hidden: int = 256, ff: int = 512, vocab: int = 1000, heads: int = 4,
                  kv_heads: int = 2, file_type: int = 15) -> dict[str, Any]:
    """Metadata of the same small llama model (general.file_type 15 = MOSTLY_Q4_K_M)."""
    return {"general.file_type": file_type, "llama.block_count": layers, "llama.context_length": 4096,
            "llama.embedding_length": hidden, "llama.feed_forward_length": ff, "llama.attention.head_count": heads,
            "llama.attention.head_count_kv": kv_heads, "llama.rope.dimension_count": hidden // heads,
            "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": [f"tok{i}" for i in range(vocab)]}
