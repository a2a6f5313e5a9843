"""Ollama names and the local Ollama store: a store built in tmp_path (manifest + GGUF blobs written with
gguf-py's GGUFWriter), found through OLLAMA_MODELS, resolved by resolve_model and `llm-mem estimate`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fakehub import llama_gguf_kv, llama_gguf_tensors, make_gguf
from typer.testing import CliRunner

from llm_mem.cli import app
from llm_mem.errors import ConfigError, ModelNotFoundError
from llm_mem.sources import resolve_model
from llm_mem.sources.ollama import OllamaName, looks_like_ollama, parse_name, store_paths

MODEL = "application/vnd.ollama.image.model"


def _blob(store: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    (store / "blobs" / f"sha256-{digest}").write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def add_model(store: Path, name: str, layers: list[tuple[str, bytes]]) -> Path:
    """Write a manifest (manifests/<host>/<namespace>/<model>/<tag>) and its blobs, as `ollama pull` does."""
    n = parse_name(name)
    assert n is not None
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **_blob(store, b"{}")},
           "layers": [{"mediaType": media, **_blob(store, data)} for media, data in layers]}
    path = store / "manifests" / n.host / n.namespace / n.model / n.tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _gguf(**kw) -> bytes:
    return make_gguf("llama", llama_gguf_kv(**kw), llama_gguf_tensors())


@pytest.fixture
def store(tmp_path, monkeypatch):
    s = tmp_path / "ollama-models"
    s.mkdir()
    monkeypatch.setenv("OLLAMA_MODELS", str(s))
    return s


@pytest.mark.parametrize("name,parts", [
    ("llama3.1:8b", ("registry.ollama.ai", "library", "llama3.1", "8b")),
    ("qwen3:30b-a3b", ("registry.ollama.ai", "library", "qwen3", "30b-a3b")),
    ("qwen3", ("registry.ollama.ai", "library", "qwen3", "latest")),
    ("user/model:tag", ("registry.ollama.ai", "user", "model", "tag")),
    ("hf.co/org/repo:Q4_K_M", ("hf.co", "org", "repo", "Q4_K_M")),
    ("localhost:5000/ns/m:v1", ("localhost:5000", "ns", "m", "v1")),
])
def test_parse_name(name, parts):
    assert parse_name(name) == OllamaName(*parts)


@pytest.mark.parametrize("name", ["a/b/c/d:x", "bad name:tag", ":tag", "model:", "-x:y", "n.s/m:t", "m:t/a",
                                  "https://x/y:z", "m:" + "t" * 81])
def test_invalid_names(name):
    assert parse_name(name) is None or not looks_like_ollama(name)


def test_what_looks_like_an_ollama_name():
    assert looks_like_ollama("llama3.1:8b") and looks_like_ollama("hf.co/org/repo:Q4_K_M")
    assert not looks_like_ollama("meta-llama/Llama-3.1-8B")  # a Hub id: no colon tag
    assert not looks_like_ollama("llama-3.1-8b")  # a bundled alias
    assert not looks_like_ollama("qwen3")  # bare: only if the store has qwen3:latest (see below)


def test_default_store_paths(monkeypatch, tmp_path):
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert store_paths() == [tmp_path / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]


def test_resolve_from_the_store(store):
    manifest = add_model(store, "llama3.1:8b", [(MODEL, _gguf()),
                                                ("application/vnd.ollama.image.template", b"{{ .Prompt }}")])
    m = resolve_model("llama3.1:8b")
    assert m.name == "llama3.1:8b" and m.source.kind == "ollama" and m.source.location == str(manifest)
    assert (m.spec.num_layers, m.spec.hidden_size, m.spec.num_kv_heads) == (2, 256, 2)
    assert m.checkpoint.format == "gguf" and m.checkpoint.label == "GGUF Q4_K_M (file type 15)"
    assert m.checkpoint.files[0].startswith(str(store / "blobs" / "sha256-"))
    assert m.checkpoint.total_bytes == sum(t.nbytes for t in m.checkpoint.tensors) > 0


def test_namespaced_hf_and_bare_names(store):
    add_model(store, "user/tiny:q4", [(MODEL, _gguf())])
    add_model(store, "hf.co/org/Tiny-GGUF:Q4_K_M", [(MODEL, _gguf())])
    add_model(store, "mymodel", [(MODEL, _gguf())])
    assert resolve_model("user/tiny:q4").name == "user/tiny:q4"
    assert resolve_model("hf.co/org/Tiny-GGUF:Q4_K_M").name == "hf.co/org/Tiny-GGUF:Q4_K_M"
    assert resolve_model("mymodel").name == "mymodel:latest"  # bare name: the store's :latest
    assert resolve_model("MyModel:Latest").source.kind == "ollama"  # names match case-insensitively


def test_bundled_names_still_win(store):
    add_model(store, "llama-3.1-8b", [(MODEL, _gguf())])
    assert resolve_model("llama-3.1-8b").source.kind == "bundled"


def test_projector_and_adapter_layers(store):
    proj = make_gguf("clip", {"clip.vision.projection_dim": 256}, {"mm.0.weight": ("F16", [64, 256])})
    lora = make_gguf("llama", {"adapter.type": "lora"}, {"blk.0.attn_q.weight.lora_a": ("F32", [256, 8])})
    add_model(store, "vlm:7b", [(MODEL, _gguf()), ("application/vnd.ollama.image.projector", proj),
                                ("application/vnd.ollama.image.adapter", lora)])
    c = resolve_model("vlm:7b").checkpoint
    assert c.projector_bytes == 64 * 256 * 2 and c.adapter_bytes == 256 * 8 * 4


def test_missing_model_names_the_store(store):
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("llama3.1:70b")
    line = err.value.one_line()
    assert "llama3.1:70b is not in the local store" in line
    assert str(store / "manifests" / "registry.ollama.ai" / "library" / "llama3.1" / "70b") in line
    assert "\n" not in line


def test_broken_stores(store):
    path = add_model(store, "m:1", [(MODEL, _gguf())])
    doc = json.loads(path.read_text())
    doc["layers"][0]["digest"] = "sha256:../../etc/passwd"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="not a sha256 digest"):
        resolve_model("m:1")
    doc["layers"][0]["digest"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="is missing"):
        resolve_model("m:1")
    path.write_text(json.dumps({"layers": []}))
    with pytest.raises(ConfigError, match="0 GGUF model layers"):
        resolve_model("m:1")
    path.write_bytes(b"{" + b" " * (2**20 + 1) + b"}")
    with pytest.raises(ConfigError, match="larger than"):
        resolve_model("m:1")
    path.unlink()
    import os

    os.mkfifo(path)
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_model("m:1")


def test_cli_estimate_ollama_model(store):
    add_model(store, "llama3.1:8b", [(MODEL, _gguf())])
    r = CliRunner().invoke(app, ["estimate", "llama3.1:8b", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["model"] == "llama3.1:8b" and d["source"]["kind"] == "ollama"
    missing = CliRunner().invoke(app, ["estimate", "llama3.1:405b"])
    assert missing.exit_code == 2 and "not in the local store" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
