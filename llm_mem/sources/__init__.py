"""Model sources, tried in order: local path, bundled registry, Hugging Face Hub."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from llm_mem.errors import ModelNotFoundError
from llm_mem.sources.bundled import close_matches, find_bundled, load_bundled_config
from llm_mem.sources.parse import parse_config
from llm_mem.spec import Checkpoint, ModelSpec, ResolvedModel, Source

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")


def _counts(dtypes: dict[str, int] | None) -> Checkpoint | None:
    """A safetensors checkpoint known by its element counts per dtype."""
    if dtypes is None:
        return None
    from llm_mem.estimators.weights import checkpoint_bytes

    return Checkpoint(format="safetensors", files=(), total_bytes=checkpoint_bytes(dtypes), dtype_counts=dtypes)


def _quiet(message: str) -> AbstractContextManager[object]:
    return nullcontext()


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(".json") or Path(name).exists()


def _warnings(spec: ModelSpec) -> tuple[str, ...]:
    if spec.known:
        return ()
    return (f"unknown architecture {spec.model_type!r}: generic decoder estimate from the standard fields "
            "(hidden_size, layers, heads, intermediate_size, vocab); expect a few % error",)


def resolve_model(name: str, *, config: Path | None = None, revision: str | None = None,
                  token: str | None = None, use_hub: bool = True,
                  progress: Callable[[str], AbstractContextManager[object]] | None = None) -> ResolvedModel:
    """Find MODEL (path, alias, bundled id or Hub id) and return its parsed description.
    ``progress(message)`` wraps the slow Hub reads (the CLI shows a spinner)."""
    if config is not None or _looks_like_path(name):
        from llm_mem.sources.local import load_local

        path = Path(config if config is not None else name).expanduser()
        if not path.exists():
            raise ModelNotFoundError(f"no such file or folder: {path}")
        raw, dtypes, where = load_local(path)
        spec = parse_config(raw)
        return ResolvedModel(name=name if config is None else str(name), spec=spec,
                             source=Source(kind="local", location=where), checkpoint=_counts(dtypes),
                             warnings=_warnings(spec))
    bundled = find_bundled(name) if revision is None else None
    if bundled is not None:
        spec = parse_config(load_bundled_config(bundled))
        note = None if bundled.provenance == "downloaded" else f"config {bundled.provenance}"
        is_alias = name.lower() in (a.lower() for a in bundled.aliases)
        display = bundled.id if is_alias else name
        if display.lower() != bundled.id.lower():
            note = f"same architecture as {bundled.id}" + (f"; {note}" if note else "")
        return ResolvedModel(name=display, spec=spec, source=Source(kind="bundled", location=bundled.file, note=note),
                             warnings=_warnings(spec))
    if not use_hub or not _REPO_ID.match(name):
        close = close_matches(name)
        raise ModelNotFoundError(
            f"unknown model {name!r}: not a local path, bundled model or Hub repo id (org/name)",
            f"did you mean {', '.join(close)}?" if close else "`llm-mem models` lists bundled models",
        )
    from llm_mem.sources import hub

    with (progress or _quiet)(f"reading {name} from the Hugging Face Hub"):
        raw, where = hub.fetch_config(name, revision, token)
        spec = parse_config(raw)
        dtypes, note = hub.fetch_safetensors_dtypes(name, revision, token)
    return ResolvedModel(name=name, spec=spec, source=Source(kind="hub", location=where, note=note),
                         checkpoint=_counts(dtypes), warnings=_warnings(spec))
