"""Model sources, tried in order: a local path, an Ollama name, the bundled registry, the Hugging Face Hub.

How a name is told apart (docs/sources.md):
* a path: ``--config``, or a name starting with ``.``, ``/`` or ``~``, ending in ``.json`` or ``.gguf``,
  or naming something that exists;
* an Ollama model: a ``:tag`` after the last ``/`` (``llama3.1:8b``, ``user/model:tag``,
  ``hf.co/org/repo:Q4_K_M``): Hub ids and bundled names never carry one;
* bundled: an id, alias or same-architecture repo of llm_mem/data/registry.json;
* a Hub repo: ``org/name``; with ``quant``, a GGUF repo's file is picked by its tag;
* a bare name that is none of these, e.g. ``llama3.1``: the Ollama store's ``:latest``, if present.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_mem.errors import ModelNotFoundError, UsageError
from llm_mem.sources.bundled import close_matches, find_bundled, load_bundled_config
from llm_mem.sources.parse import parse_config
from llm_mem.spec import Checkpoint, ModelSpec, ResolvedModel, Source

if TYPE_CHECKING:
    from llm_mem.sources.gguf_load import GgufModel

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")
Progress = Callable[[str], AbstractContextManager[object]]


def _quiet(message: str) -> AbstractContextManager[object]:
    return nullcontext()


def _exists(path: Path) -> bool:
    """Whether ``path`` exists. A name the OS cannot even look up (a component over 255 bytes, a folder
    we may not enter) is one ModelNotFoundError, never an OSError."""
    try:
        return path.exists()
    except OSError as exc:
        raise ModelNotFoundError(f"cannot look up {str(path)[:200]!r}: {exc.strerror or exc}") from None


def _expand(name: str | Path) -> Path:
    """``~`` and ``~user`` expanded; an unknown user is one ModelNotFoundError (pathlib raises RuntimeError)."""
    try:
        return Path(name).expanduser()
    except RuntimeError:
        raise ModelNotFoundError(f"no such file or folder: {str(name)[:200]} (no home folder for that user)") from None


def _looks_like_path(name: str) -> bool:
    return (name.startswith((".", "/", "~")) or name.endswith((".json", ".gguf", ".GGUF"))
            or _exists(_expand(name)))


def _warnings(spec: ModelSpec, extra: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    out = list(extra)
    if spec.counted_by is not None:
        how = "read from the safetensors headers" if "headers" in spec.counted_by else "counted by transformers"
        out.insert(0, f"no native layout for model_type {spec.model_type!r}: the parameters are exact ({how}), "
                      "the KV cache and activations are those of a standard transformer with its hidden size, "
                      "layers and heads")
    return tuple(out)


def _unread(what: str, **given: object) -> None:
    """Refuse an option this kind of source does not read (--revision and --token are for the Hub,
    --allow-missing-shards for safetensors indexes): never silently ignored."""
    for option, value in given.items():
        if value not in (None, False):
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{flag} does not apply to {what}", "drop it")


def _from_gguf(name: str, g: GgufModel, source: Source) -> ResolvedModel:
    return ResolvedModel(name=name, spec=g.spec, source=source, checkpoint=g.checkpoint,
                         warnings=_warnings(g.spec, g.warnings))


def resolve_model(name: str, *, config: Path | None = None, revision: str | None = None,
                  token: str | None = None, use_hub: bool = True,
                  progress: Progress | None = None, quant: str | None = None,
                  allow_missing_shards: bool = False) -> ResolvedModel:
    """Find MODEL (path, Ollama name, alias, bundled id or Hub id) and return its parsed description.

    ``quant``: for a GGUF repo or folder, the file whose name carries this tag (Q4_K_M, UD-Q4_K_XL,
    IQ4_XS...); without it llama.cpp's choice (Q4_K_M, else Q8_0, else the first). Ignored for
    safetensors models, where it is a format request for the estimators.
    ``allow_missing_shards``: a local or Hub checkpoint whose index names absent shards gives a
    warning and the config-based estimate instead of an error.
    ``progress(message)`` wraps the slow Hub reads (the CLI shows a spinner)."""
    if config is not None or _looks_like_path(name):
        from llm_mem.sources.local import load_local

        path = _expand(config if config is not None else name)
        _unread("a local path" if config is None else "--config", revision=revision, token=token)
        if not _exists(path):
            raise ModelNotFoundError(f"no such file or folder: {path}")
        local = load_local(path, quant=quant, allow_missing_shards=allow_missing_shards)
        display = name if config is None else str(name)
        if local.gguf is not None:
            _unread("a GGUF file (its split parts are all read)", allow_missing_shards=allow_missing_shards)
            return _from_gguf(display, local.gguf, Source(kind="gguf", location=local.location))
        assert local.raw is not None
        spec = _parse(local.raw, local.checkpoint)
        return ResolvedModel(name=display, spec=spec, source=Source(kind="local", location=local.location),
                             checkpoint=local.checkpoint, warnings=_warnings(spec, local.warnings))

    stripped = name.strip()
    if stripped.rfind(":") > stripped.rfind("/"):  # a tag: only Ollama names have one (imported only then)
        from llm_mem.sources.ollama import looks_like_ollama

        if looks_like_ollama(name):
            _unread("an Ollama model", revision=revision, token=token, allow_missing_shards=allow_missing_shards)
            return _ollama(name)
    bundled = find_bundled(name) if revision is None else None
    if bundled is not None:
        _unread("a bundled model (its config ships with llm-mem)", token=token,
                allow_missing_shards=allow_missing_shards)
        spec = parse_config(load_bundled_config(bundled))
        note = None if bundled.provenance == "downloaded" else f"config {bundled.provenance}"
        is_alias = name.lower() in (a.lower() for a in bundled.aliases)
        display = bundled.id if is_alias else name
        if display.lower() != bundled.id.lower():
            note = f"same architecture as {bundled.id}" + (f"; {note}" if note else "")
        return ResolvedModel(name=display, spec=spec, source=Source(kind="bundled", location=bundled.file, note=note),
                             warnings=_warnings(spec))
    if "/" not in name and _in_ollama_store(name):
        _unread("an Ollama model", token=token, allow_missing_shards=allow_missing_shards)
        return _ollama(name)
    if not use_hub or not _REPO_ID.match(name):
        close = close_matches(name)
        raise ModelNotFoundError(
            f"unknown model {name!r}: not a local path, Ollama name:tag, bundled model or Hub repo id (org/name)",
            f"did you mean {', '.join(close)}?" if close else "`llm-mem models` lists bundled models",
        )
    with (progress or _quiet)(f"reading {name} from the Hugging Face Hub"):
        return _hub(name, revision, token, quant, allow_missing_shards)


def _in_ollama_store(name: str) -> bool:
    from llm_mem.sources.ollama import find_manifest, parse_name, store_paths

    n = parse_name(name)
    return n is not None and find_manifest(n, store_paths()) is not None


def _parse(raw: dict[str, Any], checkpoint: Checkpoint | None) -> ModelSpec:
    """config.json as a ModelSpec, with the checkpoint's safetensors tensors when they were read."""
    stored = checkpoint.tensors if checkpoint is not None and checkpoint.format == "safetensors" else ()
    return parse_config(raw, stored)


def _ollama(name: str) -> ResolvedModel:
    from llm_mem.sources.ollama import load_ollama

    g, display, manifest = load_ollama(name)
    return _from_gguf(display, g, Source(kind="ollama", location=manifest))


def _hub(name: str, revision: str | None, token: str | None, quant: str | None,
         allow_missing_shards: bool) -> ResolvedModel:
    from llm_mem.sources import hub
    from llm_mem.sources.http import Deadline

    hub.check_repo_id(name)
    if hub.hub_offline():
        raw, where = hub.fetch_config(name, revision, token)
        spec = parse_config(raw)
        note = "HF_HUB_OFFLINE is set: checkpoint headers not read, sizes from config.json only"
        return ResolvedModel(name=name, spec=spec, source=Source(kind="hub", location=where, note=note),
                             warnings=_warnings(spec))
    deadline = Deadline()
    listing = hub.list_repo(name, revision, token, deadline)
    if listing is not None and hub.wants_gguf(listing, quant):
        g = hub.gguf_from_listing(listing, quant, token, deadline)
        return _from_gguf(name, g, Source(kind="hub", location=f"{listing.where}/{g.checkpoint.files[0]}"))
    raw, where = hub.fetch_config(name, revision, token, deadline=deadline, listing=listing)
    if listing is None:
        spec = parse_config(raw)
        return ResolvedModel(name=name, spec=spec, source=Source(
            kind="hub", location=where, note="the endpoint serves no file listing: sizes from config.json only"),
            warnings=_warnings(spec))
    ckpt, warns, st_note = hub.safetensors_checkpoint(listing, token, deadline, allow_missing_shards)
    spec = _parse(raw, ckpt)
    return ResolvedModel(name=name, spec=spec, source=Source(kind="hub", location=where, note=st_note),
                         checkpoint=ckpt, warnings=_warnings(spec, warns))
