"""A GGUF model from its files' headers: split parts, the spec from the metadata, exact tensors, and
the multimodal projector (mmproj) beside it. Used for local files and folders, Hub repos and the
Ollama store; where the bytes come from is the caller's ByteSource."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_mem.errors import ConfigError, quote
from llm_mem.sources.byteio import ByteSource, LocalFile
from llm_mem.sources.checkpoint import gb, gguf_checkpoint
from llm_mem.sources.gguf import GgufArray, GgufHeader, read_gguf_header
from llm_mem.sources.gguf_arch import gguf_warnings, spec_from_gguf
from llm_mem.sources.gguf_pick import best_mmproj, choose, is_mmproj
from llm_mem.sources.gguf_split import check_splits, split_names
from llm_mem.spec import Checkpoint, ModelSpec


@dataclass(frozen=True)
class GgufModel:
    """What a GGUF source hands to resolve_model."""

    spec: ModelSpec
    checkpoint: Checkpoint
    warnings: tuple[str, ...]
    headers: tuple[GgufHeader, ...]
    projector: GgufHeader | None = None


def projector_fits(projector: GgufHeader, spec: ModelSpec) -> bool:
    """An mmproj belongs to the model when it projects into the model's hidden size: llama.cpp's
    convert_hf_to_gguf.py MmprojModel writes clip.vision.projection_dim = the text model's n_embd."""
    dim = projector.get("clip.vision.projection_dim")
    return not isinstance(dim, int) or isinstance(dim, (bool, GgufArray)) or dim == spec.hidden_size


def read_projector(src: ByteSource) -> GgufHeader:
    h = read_gguf_header(src)
    if h.get("general.architecture") != "clip":
        raise ConfigError(f"{src.name} is not a multimodal projector (general.architecture is "
                          f"{quote(h.get('general.architecture'))}, expected 'clip')")
    return h


def gguf_model(headers: Sequence[GgufHeader], files: Sequence[str], *, projector: GgufHeader | None = None,
               projector_file: str | None = None, adapter_bytes: int = 0,
               notes: Sequence[str] = ()) -> GgufModel:
    """Spec, checkpoint and warnings of a model whose part headers are ``headers`` (part 1 first)."""
    check_splits(list(headers))
    first = headers[0]
    shapes = {t.name: t.shape for h in headers for t in h.tensors}
    spec = spec_from_gguf(first, shapes)
    warnings = list(gguf_warnings(first))
    proj_bytes = 0
    out_notes = list(notes)
    if projector is not None:
        if projector_fits(projector, spec):
            proj_bytes = projector.tensor_bytes
            out_notes.append(f"multimodal projector {projector_file}: {gb(proj_bytes)}")
        else:
            out_notes.append(f"{projector_file} skipped: it projects to {projector.get('clip.vision.projection_dim')}, "
                             f"the model's hidden size is {spec.hidden_size}")
            projector = None
    ckpt = gguf_checkpoint(headers, files, projector_bytes=proj_bytes, adapter_bytes=adapter_bytes, notes=out_notes)
    return GgufModel(spec, ckpt, tuple(warnings), tuple(headers), projector)


def read_local_parts(path: Path) -> tuple[list[GgufHeader], list[str]]:
    """Headers of a local GGUF file, or of every part of a split one (any part's path may be given);
    a missing part is one ConfigError line naming it."""
    names = split_names(path.name)
    paths = [path.with_name(n) for n in names]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"split GGUF part {missing[0]} is missing ({len(missing)} of {len(paths)} parts absent)",
                          "download every -0000k-of-0000N.gguf part into the same folder")
    headers = []
    for p in paths:
        with LocalFile(p, "GGUF file") as f:
            headers.append(read_gguf_header(f))
    return headers, [str(p) for p in paths]


def _local_projector(folder: Path, model: Path) -> tuple[GgufHeader | None, str | None]:
    candidates = sorted(p.name for p in folder.iterdir() if is_mmproj(p.name) and not p.is_dir())
    pick = best_mmproj(candidates, model.name)
    if pick is None:
        return None, None
    with LocalFile(folder / pick, "GGUF file") as f:
        return read_projector(f), str(folder / pick)


def load_local_gguf(path: Path, notes: Sequence[str] = ()) -> GgufModel:
    """A local .gguf file (any part of a split model), with the mmproj beside it when there is one."""
    headers, files = read_local_parts(path)
    if headers[0].get("general.architecture") == "clip":
        raise ConfigError(f"{path} is a multimodal projector (mmproj), not a language model",
                          "give the model's .gguf; the mmproj beside it is added as projector bytes")
    proj, proj_file = _local_projector(path.parent, path)
    return gguf_model(headers, files, projector=proj, projector_file=proj_file, notes=notes)


def local_gguf_sizes(folder: Path) -> dict[str, int | None]:
    """The .gguf files of a folder and their sizes, sorted by name (the order llama.cpp lists them)."""
    out: dict[str, int | None] = {}
    for p in sorted(folder.iterdir()):
        if p.name.lower().endswith(".gguf") and not p.is_dir():
            out[p.name] = p.stat().st_size
    return out


def load_gguf_folder(folder: Path, quant: str | None, notes: Sequence[str] = ()) -> GgufModel:
    """The GGUF model of a folder: ``quant`` picks the file as llama.cpp's `-hf repo:quant` would."""
    sizes = local_gguf_sizes(folder)
    group, pick_notes = choose(sizes, quant, str(folder))
    return load_local_gguf(folder / group.first, notes=(*notes, *pick_notes))

