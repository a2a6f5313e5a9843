"""A local, in-process fake of the Hugging Face Hub HTTP API, for tests.

Speaks just enough of the Hub protocol for real `huggingface_hub` calls (`hf_hub_download`,
`get_hf_file_metadata`, `HfApi.get_safetensors_metadata`) to work against it:

- HEAD/GET  /{repo_id}/resolve/{revision}/{filename}   (Range -> 206, X-Repo-Commit, ETag, ...)
- GET       /api/models/{repo_id}[/revision/{revision}] (minimal model_info; not used by the above)

Errors carry the `X-Error-Code` header that `huggingface_hub.utils.hf_raise_for_status` maps to its
exception classes: GatedRepo (401), RepoNotFound (404), RevisionNotFound (404), EntryNotFound (404).

Every request is recorded in `FakeHub.requests` as `Request(method, path, headers)`; `path` is the raw
(percent-encoded) request path and `headers` a dict with lower-cased names.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from math import prod
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

VALID_TOKEN = "hf_valid_token"

# Files the real Hub stores in LFS/Xet: served with a sha256 ETag plus X-Linked-Etag / X-Linked-Size.
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".onnx")

DTYPE_SIZES = {
    "F64": 8, "I64": 8, "U64": 8,
    "F32": 4, "I32": 4, "U32": 4,
    "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
}


class Request(NamedTuple):
    method: str
    path: str  # raw request path, percent-encoded, query string included
    headers: dict[str, str]  # lower-cased header names


class _Repo(NamedTuple):
    files: dict[str, bytes]
    gated: bool
    sha: str


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
        self.valid_tokens: set[str] = {VALID_TOKEN}
        self.blocked_hosts: list[str] = []  # filled by the fake_hub fixture's network guard (conftest.py)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- repos --------------------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        gated: bool = False,
        revision_sha: str | None = None,
    ) -> str:
        """Add (or replace) a model repo. Its files resolve at revision "main" and at its commit sha,
        which is `revision_sha` or a sha derived from repo_id. Returns the sha."""
        sha = revision_sha or hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = _Repo(dict(files), gated, sha)
        return sha

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
        self._send_file(data, filename, repo.sha, head)

    def _model_info(self, rest: str, head: bool) -> None:
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
            "siblings": [{"rfilename": name} for name in sorted(repo.files)],
        }
        self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)

    # -- responses ----------------------------------------------------------------------------
    def _send_file(self, data: bytes, filename: str, sha: str, head: bool) -> None:
        size = len(data)
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes", "Content-Type": _content_type(filename)}
        if filename.endswith(_LFS_SUFFIXES):
            etag = hashlib.sha256(data).hexdigest()
            headers |= {"ETag": f'"{etag}"', "X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(size)}
        else:  # git blob sha1, as the Hub does for regular files
            git_sha = hashlib.sha1(b"blob %d\x00" % size + data).hexdigest()
            headers["ETag"] = f'"{git_sha}"'

        rng = self.headers.get("Range")
        if rng is None:
            return self._send(200, data, headers, head)
        span = _parse_range(rng, size)
        if span is None:  # unsatisfiable
            return self._send(416, b"", headers | {"Content-Range": f"bytes */{size}"}, head)
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(206, data[start:end + 1], headers, head)

    def _error(self, status: int, code: str | None, message: str, head: bool,
               extra: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
        if code is not None:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers, head)

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        # No keep-alive: nothing stays pooled in huggingface_hub's shared client, and no handler thread
        # outlives stop().
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)


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
