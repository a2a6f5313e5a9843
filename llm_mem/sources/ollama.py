"""Models in the local Ollama store: ``llama3.1:8b``, ``qwen3:30b-a3b``, ``user/model:tag``,
``hf.co/org/repo:Q4_K_M``.

Names follow ollama types/model/name.go (ParseName): ``[host/][namespace/]model[:tag]`` with the
defaults registry.ollama.ai, library and latest; a part is letters, digits and ``_``, then also
``-``, ``.`` (not in a namespace) and ``:`` (host only), at most 80 characters (350 for a host).
The store is OLLAMA_MODELS, else ~/.ollama/models (ollama envconfig.Models), else the Linux
service's /usr/share/ollama/.ollama/models (ollama docs/faq.mdx). A manifest is
manifests/<host>/<namespace>/<model>/<tag> (manifest/paths.go); its layer of mediaType
application/vnd.ollama.image.model is the GGUF blob blobs/sha256-<hex>; .projector is the
multimodal projector, .adapter a LoRA adapter (server/create.go).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_mem.errors import ConfigError, ModelNotFoundError, quote

if TYPE_CHECKING:  # the GGUF reader is imported when a model is loaded: names are checked on every resolve
    from llm_mem.sources.gguf_load import GgufModel

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MODEL_MEDIA = "application/vnd.ollama.image.model"
PROJECTOR_MEDIA = "application/vnd.ollama.image.projector"
ADAPTER_MEDIA = "application/vnd.ollama.image.adapter"
# manifest/paths.go BlobsPath: only real sha256 digests
_DIGEST = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")
_LINUX_SERVICE_STORE = Path("/usr/share/ollama/.ollama/models")


@dataclass(frozen=True)
class OllamaName:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def display(self) -> str:
        """name.go DisplayShortest: host and namespace only when not the defaults."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"


def _valid(part: str, kind: str) -> bool:
    """name.go isValidPart."""
    if not 1 <= len(part) <= (350 if kind == "host" else 80):
        return False
    if not (part[0].isascii() and (part[0].isalnum() or part[0] == "_")):
        return False
    for c in part[1:]:
        if c.isascii() and (c.isalnum() or c in "_-"):
            continue
        if c == "." and kind != "namespace":
            continue
        if c == ":" and kind == "host":
            continue
        return False
    return True


def parse_name(name: str) -> OllamaName | None:
    """name.go ParseName (defaults merged); None when a part is invalid."""
    s = name.strip()
    if "://" in s:
        return None
    tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, _, tag = s.rpartition(":")
        if not tag:  # name.go cutPromised: a ':' promises a tag
            return None
    parts = s.split("/")
    if len(parts) > 3:
        return None
    model = parts[-1]
    namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
    host = parts[-3] if len(parts) == 3 else DEFAULT_HOST
    n = OllamaName(host, namespace, model, tag or DEFAULT_TAG)
    ok = _valid(n.host, "host") and _valid(n.namespace, "namespace") and _valid(n.model, "model") \
        and _valid(n.tag, "tag")
    return n if ok else None


def looks_like_ollama(name: str) -> bool:
    """A colon tag after the last '/' makes a name Ollama's (``llama3.1:8b``, ``user/m:tag``); a Hub
    id never has one, and bundled names have none."""
    s = name.strip()
    return s.rfind(":") > s.rfind("/") and parse_name(s) is not None


def store_paths() -> list[Path]:
    """Where the store may be: OLLAMA_MODELS, else the user's and the Linux service's default."""
    env = os.environ.get("OLLAMA_MODELS", "").strip()
    if env:
        return [Path(env).expanduser()]
    return [Path.home() / ".ollama" / "models", _LINUX_SERVICE_STORE]


def _child(folder: Path, name: str) -> Path | None:
    """folder/name, matched case-insensitively when the exact name is absent (Ollama names are)."""
    exact = folder / name
    if exact.exists():
        return exact
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.lower() == name.lower():
                    return folder / entry.name
    except OSError:
        return None
    return None


def find_manifest(n: OllamaName, stores: list[Path]) -> tuple[Path, Path] | None:
    """(store, manifest path) of a name, or None."""
    for store in stores:
        here: Path | None = store / "manifests"
        for part in (n.host, n.namespace, n.model, n.tag):
            here = _child(here, part) if here is not None else None
        if here is not None and here.exists():  # a FIFO or folder here is refused when read
            return store, here
    return None


def _blob(store: Path, layer: dict[str, Any], manifest: Path) -> Path:
    digest = layer.get("digest")
    m = _DIGEST.match(digest) if isinstance(digest, str) else None
    if m is None:
        raise ConfigError(f"{manifest}: layer digest {quote(digest)} is not a sha256 digest")
    path = store / "blobs" / f"sha256-{m[1]}"
    if not path.exists():
        raise ConfigError(f"{manifest}: blob {path} is missing", "run `ollama pull` again")
    return path


def load_ollama(name: str) -> tuple[GgufModel, str, str]:
    """(model, display name, manifest path) of an Ollama model name; ModelNotFoundError naming the
    store when it is not there."""
    from llm_mem.sources.byteio import LocalFile
    from llm_mem.sources.configfile import parse_json_object, read_limited
    from llm_mem.sources.gguf import read_gguf_header
    from llm_mem.sources.gguf_load import gguf_model, read_projector
    from llm_mem.sources.limits import MAX_MANIFEST_BYTES

    n = parse_name(name)
    if n is None:
        raise ModelNotFoundError(f"{quote(name)} is not a valid Ollama model name")
    stores = store_paths()
    found = find_manifest(n, stores)
    if found is None:
        searched = " and ".join(str(s / "manifests" / n.host / n.namespace / n.model / n.tag) for s in stores)
        raise ModelNotFoundError(
            f"Ollama model {n.display} is not in the local store (looked for {searched})",
            "`ollama pull` it, set OLLAMA_MODELS, or use org/repo --quant TAG for a Hub GGUF repo")
    store, manifest = found
    doc = parse_json_object(read_limited(manifest, MAX_MANIFEST_BYTES, "Ollama manifest"), str(manifest))
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ConfigError(f"{manifest} has no layers list")
    models = [x for x in layers if isinstance(x, dict) and x.get("mediaType") == MODEL_MEDIA]
    if len(models) != 1:
        raise ConfigError(f"{manifest} has {len(models)} GGUF model layers ({MODEL_MEDIA}), expected one",
                          "models stored as safetensors tensors are not supported")
    blob = _blob(store, models[0], manifest)
    with LocalFile(blob, "GGUF blob") as f:
        header = read_gguf_header(f)
    projector = None
    proj_file = None
    adapter_bytes = 0
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        if layer.get("mediaType") == PROJECTOR_MEDIA and projector is None:
            path = _blob(store, layer, manifest)
            with LocalFile(path, "GGUF blob") as f:
                projector = read_projector(f)
            proj_file = path.name
        elif layer.get("mediaType") == ADAPTER_MEDIA:
            with LocalFile(_blob(store, layer, manifest), "GGUF blob") as f:
                adapter_bytes += read_gguf_header(f).tensor_bytes
    g = gguf_model([header], [str(blob)], projector=projector, projector_file=proj_file, adapter_bytes=adapter_bytes,
                   notes=(f"Ollama manifest {manifest}",))
    return g, n.display, str(manifest)
