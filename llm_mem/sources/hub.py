"""The Hugging Face Hub source: a repo's file listing, config.json, the safetensors index and headers,
GGUF headers; never weights.

Every read is a capped, deadlined GET (llm_mem.sources.http): the listing and JSON files whole under
their caps, headers with HTTP Range requests. File names from the listing and from an index are
checked before any request is made: only plain paths that the repo's own listing holds are fetched,
so a crafted index cannot make us request other paths with the user's token. huggingface_hub is
imported lazily. HF_ENDPOINT is read at call time and passed explicitly (huggingface_hub reads it
once, at import). HF_HUB_OFFLINE: config.json from the user's HF cache, nothing else; a config
fetched online is written to that cache, in huggingface_hub's layout, for later offline runs.
"""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit

from llm_mem.errors import ConfigError, GatedRepoError, HubUnavailableError, ModelNotFoundError, quote
from llm_mem.sources import limits
from llm_mem.sources.checkpoint import build, gb, safetensors_label
from llm_mem.sources.configfile import load_config_file, parse_json_object
from llm_mem.sources.gguf import read_gguf_header
from llm_mem.sources.gguf_load import GgufModel, gguf_model, read_projector
from llm_mem.sources.gguf_pick import best_mmproj, choose, model_groups, pick_group
from llm_mem.sources.gguf_split import split_names
from llm_mem.sources.http import Deadline, Reply, get, hub_headers, raise_for_status
from llm_mem.sources.safetensors import (
    ADAPTER_FILE,
    INDEX_FILE,
    SINGLE_FILE,
    header_length,
    parse_header,
    shard_groups,
    weight_map_files,
)
from llm_mem.spec import Checkpoint, StoredTensor

_LOGIN_HINT = "run `hf auth login` or set HF_TOKEN, or pass --config PATH to a local config.json"
DEFAULT_ENDPOINT = "https://huggingface.co"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_ETAG = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_REF = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
# huggingface_hub validate_repo_id: [\w.-] names, no "--" or "..", not starting/ending with "-" or "."
_REPO_PART = re.compile(r"^[A-Za-z0-9_](?:[\w.\-]{0,94}[A-Za-z0-9_])?$")


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or DEFAULT_ENDPOINT


def hub_offline() -> bool:
    """True when the user asked huggingface_hub to stay offline (HF_HUB_OFFLINE=1)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_repo_id(repo_id: str) -> None:
    """``org/name`` with plain parts (no '..', '--', or leading/trailing '.' and '-')."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_REPO_PART.match(p) and ".." not in p and "--" not in p for p in parts):
        raise ModelNotFoundError(f"{repo_id!r} is not a valid Hub repo id or local path")


def is_repo_path(name: str) -> bool:
    """A file path inside a repo that is safe to put in a URL: plain components only (no '.', '..',
    empty parts, backslashes, schemes, queries, fragments, escapes or control characters)."""
    if not 0 < len(name) <= 1000 or not name.isprintable():
        return False
    if any(c in name for c in '\\?#%:'):
        return False
    return all(p not in ("", ".", "..") for p in name.split("/"))


@dataclass(frozen=True)
class Listing:
    """A repo at one revision: its files (path -> size in bytes, when the Hub gave it) and commit."""

    repo_id: str
    revision: str | None
    commit: str | None
    files: dict[str, int | None]

    @property
    def ref(self) -> str:
        """What file URLs name: the listed commit (one consistent snapshot), else the revision."""
        return self.commit or self.revision or "main"

    @property
    def where(self) -> str:
        return f"{self.repo_id}@{self.revision or 'main'}"


def file_url(repo_id: str, ref: str, filename: str) -> str:
    """huggingface_hub's hf_hub_url ({endpoint}/{repo}/resolve/{ref}/{file}) of a checked file path."""
    import huggingface_hub as hh

    if not is_repo_path(filename):
        raise ConfigError(f"refusing to fetch {quote(filename)} from {repo_id}: not a plain file path")
    return str(hh.hf_hub_url(repo_id, filename, revision=ref, endpoint=endpoint()))


def _api_url(repo_id: str, revision: str | None) -> str:
    rev = f"/revision/{urlquote(revision, safe='')}" if revision else ""
    return f"{endpoint()}/api/models/{repo_id}{rev}?blobs=true"


def list_repo(repo_id: str, revision: str | None, token: str | None, deadline: Deadline) -> Listing | None:
    """The repo's files with sizes (/api/models/{repo}?blobs=true, what HfApi.model_info(files_metadata=True)
    asks for). None when the endpoint serves no API (a plain file mirror)."""
    check_repo_id(repo_id)
    reply = get(_api_url(repo_id, revision), headers=hub_headers(token), limit=limits.MAX_API_JSON_BYTES,
                deadline=deadline, what=f"the file listing of {repo_id}", whole=True)
    if reply.status == 404 and not reply.headers.get("x-error-code"):
        return None
    raise_for_status(reply, repo_id, "file listing")
    if reply.over:
        raise ConfigError(f"the Hub's file listing of {repo_id} is larger than {limits.MAX_API_JSON_BYTES:,} bytes")
    info = parse_json_object(reply.body, f"the Hub's file listing of {repo_id}")
    sha = info.get("sha")
    siblings = info.get("siblings")
    if not isinstance(siblings, list):
        raise ConfigError(f"the Hub's file listing of {repo_id} has no file list")
    if len(siblings) > limits.MAX_REPO_FILES:
        raise ConfigError(f"{repo_id} lists {len(siblings):,} files (at most {limits.MAX_REPO_FILES:,} read)")
    files: dict[str, int | None] = {}
    for s in siblings:
        if not isinstance(s, dict):
            continue
        name = s.get("rfilename")
        if not isinstance(name, str) or not is_repo_path(name):
            continue  # never fetched: not a plain path
        size = s.get("size")
        lfs = s.get("lfs")
        if isinstance(lfs, dict) and isinstance(lfs.get("size"), int):
            size = lfs["size"]
        files[name] = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
    return Listing(repo_id, revision, sha if isinstance(sha, str) and _SHA.match(sha) else None, files)


# -- byte source over HTTP Range ---------------------------------------------------------------------


class HubFile:
    """A repo file read with HTTP Range requests; nothing past what a reader asks for (readahead 0)."""

    readahead = 0

    def __init__(self, repo_id: str, ref: str, path: str, size: int | None, token: str | None,
                 deadline: Deadline) -> None:
        self.repo_id = repo_id
        self.path = path
        self.name = f"{repo_id}/{path}"
        self.url = file_url(repo_id, ref, path)
        self.headers = hub_headers(token)
        self.size = size
        self.deadline = deadline
        self.fetched = 0

    def read(self, offset: int, n: int) -> bytes:
        if self.size is not None:
            n = min(n, self.size - offset)
        if n <= 0:
            return b""
        reply = get(self.url, headers={**self.headers, "Range": f"bytes={offset}-{offset + n - 1}"}, limit=n,
                    deadline=self.deadline, what=f"bytes {offset:,}-{offset + n - 1:,} of {self.name}")
        if reply.status == 416:
            return b""
        raise_for_status(reply, self.repo_id, self.path)
        if reply.status == 206:
            self._check_range(reply, offset)
        elif offset:  # a 200 to a ranged read past the start would be the whole file: not read
            raise HubUnavailableError(f"the server ignored an HTTP Range request for {self.name}; "
                                      "llm-mem reads headers only and does not download whole files")
        self._follow(reply)
        self.fetched += len(reply.body)
        return reply.body

    def _check_range(self, reply: Reply, offset: int) -> None:
        m = re.match(r"^bytes (\d+)-(\d+)/(\d+|\*)$", reply.headers.get("content-range", ""))
        if m is None or int(m[1]) != offset:
            raise HubUnavailableError(f"the server answered a Range request for {self.name} with "
                                      f"{quote(reply.headers.get('content-range'))}")
        if m[3] != "*":
            total = int(m[3])
            if self.size is None:
                self.size = total
            elif total != self.size:
                raise ConfigError(f"{self.name} is {total:,} bytes, the listing said {self.size:,}")

    def _follow(self, reply: Reply) -> None:
        """Read on from where a redirect led (a CDN); never send the token to another origin."""
        if reply.url and reply.url != self.url:
            a, b = urlsplit(self.url), urlsplit(reply.url)
            if (a.scheme, a.netloc) != (b.scheme, b.netloc):
                self.headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            self.url = reply.url


# -- config.json -------------------------------------------------------------------------------------


def fetch_config(repo_id: str, revision: str | None, token: str | None, *, deadline: Deadline | None = None,
                 listing: Listing | None = None) -> tuple[dict[str, Any], str]:
    """config.json as a dict, and the location shown in reports. Online: one capped GET (2 MiB) whose
    result is stored in the HF cache; offline (HF_HUB_OFFLINE): the cached copy only."""
    check_repo_id(repo_id)
    where = f"{repo_id}@{revision or 'main'}"
    if hub_offline():
        return _cached_config(repo_id, revision, token), where
    deadline = deadline or Deadline()
    ref = listing.ref if listing is not None else (revision or "main")
    reply = get(file_url(repo_id, ref, "config.json"), headers=hub_headers(token), limit=limits.MAX_CONFIG_BYTES,
                deadline=deadline, what=f"{repo_id}/config.json", whole=True)
    raise_for_status(reply, repo_id, "config.json")
    if reply.over:
        raise ConfigError(f"{repo_id}/config.json is larger than {limits.MAX_CONFIG_BYTES:,} bytes, "
                          "too large for a config.json")
    raw = parse_json_object(reply.body, f"{repo_id}/config.json")
    commit = reply.headers.get("x-repo-commit") or (listing.commit if listing else None)
    _store_in_cache(repo_id, revision, commit, "config.json", reply.body, reply.headers)
    return raw, where


def _cached_config(repo_id: str, revision: str | None, token: str | None) -> dict[str, Any]:
    import huggingface_hub as hh
    from huggingface_hub import errors as e

    try:
        path = hh.hf_hub_download(repo_id, "config.json", revision=revision, token=token, endpoint=endpoint(),
                                  local_files_only=True)
    except (e.HFValidationError, ValueError):
        raise ModelNotFoundError(f"{repo_id!r} is not a valid Hub repo id or local path") from None
    except Exception:  # LocalEntryNotFoundError and friends: not in the cache
        raise HubUnavailableError(
            f"cannot fetch config.json of {repo_id}: HF_HUB_OFFLINE is set and it is not cached",
            "connect, or pass --config PATH, or use a bundled model (`llm-mem models`)") from None
    return load_config_file(Path(path))


def _store_in_cache(repo_id: str, revision: str | None, commit: str | None, filename: str, data: bytes,
                    headers: dict[str, str]) -> None:
    """Write a fetched file into the HF cache as huggingface_hub lays it out (blobs/<etag>,
    snapshots/<commit>/<file>, refs/<revision>), so that HF_HUB_OFFLINE runs find it. Best effort."""
    if not commit or not _SHA.match(commit):
        return
    ref = revision or "main"
    if not _REF.match(ref) or ".." in ref:
        return
    etag = (headers.get("x-linked-etag") or headers.get("etag") or "").removeprefix("W/").strip('"')
    if not _ETAG.match(etag):
        etag = hashlib.sha256(data).hexdigest()
    try:
        from huggingface_hub import constants

        repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
        blob = repo / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            tmp = blob.with_name(f"{etag}.{os.getpid()}.incomplete")
            tmp.write_bytes(data)
            os.replace(tmp, blob)
        snap = repo / "snapshots" / commit / filename
        snap.parent.mkdir(parents=True, exist_ok=True)
        if not snap.exists():
            try:
                snap.symlink_to(os.path.relpath(blob, snap.parent))
            except OSError:
                snap.write_bytes(data)
        if ref != commit:
            (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
            (repo / "refs" / ref).write_text(commit)
    except OSError:
        pass


# -- safetensors ---------------------------------------------------------------------------------------


def _remote_header(listing: Listing, path: str, token: str | None, deadline: Deadline) -> list[StoredTensor]:
    size = listing.files.get(path)
    src = HubFile(listing.repo_id, listing.ref, path, size, token, deadline)
    head = src.read(0, limits.SAFETENSORS_FIRST_READ)
    n = header_length(head, src.name, src.size)
    if 8 + n > len(head):
        head += src.read(len(head), 8 + n - len(head))
        if len(head) < 8 + n:
            raise ConfigError(f"{src.name}: safetensors header is truncated")
    data_size = src.size - 8 - n if src.size is not None else None
    return parse_header(head[8:8 + n], src.name, data_size)


def _st_files(listing: Listing, token: str | None, deadline: Deadline,
              allow_missing: bool) -> tuple[list[str] | None, list[str], str | None]:
    """(shard paths to read, warnings, note when there is no checkpoint)."""
    files = listing.files
    repo = listing.repo_id
    if INDEX_FILE in files:
        reply = get(file_url(repo, listing.ref, INDEX_FILE), headers=hub_headers(token),
                    limit=limits.MAX_INDEX_BYTES, deadline=deadline, what=f"{repo}/{INDEX_FILE}", whole=True)
        raise_for_status(reply, repo, INDEX_FILE)
        if reply.over:
            raise ConfigError(f"{repo}/{INDEX_FILE} is larger than {limits.MAX_INDEX_BYTES:,} bytes")
        names = weight_map_files(parse_json_object(reply.body, f"{repo}/{INDEX_FILE}"), f"{repo}/{INDEX_FILE}")
        if len(names) > limits.MAX_SHARDS:
            raise ConfigError(f"{repo}/{INDEX_FILE} names {len(names):,} shards (at most {limits.MAX_SHARDS:,} read)")
        for f in names:
            if not is_repo_path(f) or not f.endswith(".safetensors"):
                raise ConfigError(f"{repo}/{INDEX_FILE} names {quote(f)}, which is not a safetensors file of the repo",
                                  "a broken or crafted index: nothing it names was fetched")
        missing = [f for f in names if f not in files]
        if missing:
            msg = f"{repo}/{INDEX_FILE} names {len(missing)} shard(s) the repo does not have, first {quote(missing[0])}"
            if not allow_missing:
                raise ConfigError(msg, "allow_missing_shards sizes the weights from config.json instead")
            return None, [msg + ": weights sized from config.json, not from the checkpoint"], None
        return names, [], None
    if SINGLE_FILE in files:
        return [SINGLE_FILE], [], None
    root = [f for f in files if f.endswith(".safetensors") and "/" not in f and not f.startswith("adapter_model")]
    groups = shard_groups(root)
    if groups:
        out: list[str] = []
        for (prefix, count), _ in sorted(groups.items()):
            want = [f"{prefix}-{k:05d}-of-{count:05d}.safetensors" for k in range(1, count + 1)]
            absent = [w for w in want if w not in files]
            if absent:
                msg = f"shard {repo}/{absent[0]} is missing ({len(absent)} of {count} absent)"
                if not allow_missing:
                    raise ConfigError(msg, "allow_missing_shards sizes the weights from config.json instead")
                return None, [msg + ": weights sized from config.json, not from the checkpoint"], None
            out += want
        return out, [], None
    if root:
        return sorted(root), [], None
    return None, [], "no safetensors checkpoint in the repo: sizes from config.json only"


def safetensors_checkpoint(listing: Listing, token: str | None, deadline: Deadline,
                           allow_missing_shards: bool = False) -> tuple[Checkpoint | None, list[str], str | None]:
    """The repo's safetensors checkpoint from its headers (HTTP Range), warnings, and a note when there
    is none. A Hub that fails mid-way leaves the config-based estimate and a note; a malformed or
    crafted header or index is an error."""
    names, warnings, note = _st_files(listing, token, deadline, allow_missing_shards)
    adapter = ADAPTER_FILE in listing.files
    if names is None and not adapter:
        return None, warnings, note
    todo = list(names or []) + ([ADAPTER_FILE] if adapter else [])
    try:
        with ThreadPoolExecutor(max_workers=limits.PARALLEL_READS) as pool:
            results = list(pool.map(lambda f: _remote_header(listing, f, token, deadline), todo))
    except (HubUnavailableError, GatedRepoError) as exc:
        return None, warnings, f"safetensors headers not read ({exc.message}): sizes from config.json only"
    by_file = dict(zip(todo, results))
    notes: list[str] = []
    adapter_bytes = 0
    if adapter:
        adapter_bytes = sum(t.nbytes for t in by_file.pop(ADAPTER_FILE))
        notes.append(f"LoRA adapter {ADAPTER_FILE}: {gb(adapter_bytes)}, not part of the base weights")
    if names is None:
        return None, warnings, note
    tensors = [t for f in names for t in by_file[f]]
    return build("safetensors", names, tensors, safetensors_label(tensors), adapter_bytes=adapter_bytes,
                 notes=notes), warnings, None


# -- GGUF --------------------------------------------------------------------------------------------


def wants_gguf(listing: Listing, quant: str | None) -> bool:
    """A repo is read as GGUF when it has GGUF model files and either no safetensors weights, or a
    ``quant`` tag that names one of its GGUF files."""
    groups = model_groups(listing.files)
    if not groups:
        return False
    if quant and pick_group(groups, quant) is not None:
        return True
    return not any(f.endswith(".safetensors") and not f.rsplit("/", 1)[-1].startswith("adapter_model")
                   for f in listing.files)


def gguf_from_listing(listing: Listing, quant: str | None, token: str | None, deadline: Deadline) -> GgufModel:
    """The GGUF model llama.cpp's `-hf repo[:quant]` would load, from its headers only (HTTP Range), with
    the best mmproj of the repo as its projector."""
    group, notes = choose(listing.files, quant, listing.repo_id)
    folder = group.first[: len(group.first) - len(group.first.rsplit("/", 1)[-1])]
    expected = [folder + n for n in split_names(group.first.rsplit("/", 1)[-1])]
    missing = [p for p in expected if p not in listing.files]
    if missing:
        raise ConfigError(f"split GGUF part {listing.repo_id}/{missing[0]} is missing from the repo "
                          f"({len(missing)} of {len(expected)} parts absent)")
    headers = []
    for p in expected:
        src = HubFile(listing.repo_id, listing.ref, p, listing.files.get(p), token, deadline)
        headers.append(read_gguf_header(src))
    proj_path = best_mmproj(list(listing.files), group.first)
    projector = None
    if proj_path is not None:
        projector = read_projector(HubFile(listing.repo_id, listing.ref, proj_path, listing.files.get(proj_path),
                                           token, deadline))
    fetched = sum(h.fetched for h in headers) + (projector.fetched if projector else 0)
    notes = (*notes, f"read {fetched:,} header bytes over HTTP Range ({', '.join(expected)})")
    return gguf_model(headers, expected, projector=projector, projector_file=proj_path, notes=notes)

