"""The Hub path against a hostile server (tests/fakehub.py behaviours): bodies without a length or
without an end, Range requests answered with whole files, servers that drip or stall, and indexes or
listings that name paths outside the repo. Each case is one clear error line (or the config-only
estimate with a note), within seconds, with bounded bytes read; no request leaves the repo's files."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import unquote, urlsplit

import pytest
from fakehub import ENDLESS_MAX_BYTES, SparseFile, llama_gguf_kv, llama_gguf_tensors, make_gguf, make_safetensors
from typer.testing import CliRunner

from llm_mem.cli import app
from llm_mem.errors import ConfigError, HubUnavailableError
from llm_mem.sources import limits, resolve_model

CFG = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
       "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100, "torch_dtype": "bfloat16"}
CFG_BYTES = json.dumps(CFG).encode()
TENSORS = {"model.embed_tokens.weight": ("BF16", [100, 64]), "lm_head.weight": ("BF16", [100, 64])}
TENSOR_BYTES = 2 * 100 * 64 * 2


def _one_line(err: BaseException) -> str:
    line = err.one_line()  # type: ignore[attr-defined]
    assert "\n" not in line
    return line


@pytest.fixture
def fast(monkeypatch):
    """Short bounds so each hostile case takes seconds: a 2 s deadline, 0.5 s per read."""
    monkeypatch.setattr(limits, "HUB_DEADLINE_S", 2.0)
    monkeypatch.setattr(limits, "READ_TIMEOUT_S", 0.5)


def _paths_seen(hub) -> set[str]:
    return {unquote(urlsplit(r.path).path) for r in hub.requests}


def _only_repo_paths(hub, repo: str) -> None:
    """Every request went to the repo's listing or to one of its own files."""
    files = set(hub.repos[repo].files)
    sha = hub.repos[repo].sha
    for p in _paths_seen(hub):
        if p.startswith(f"/api/models/{repo}"):
            continue
        prefix_main, prefix_sha = f"/{repo}/resolve/main/", f"/{repo}/resolve/{sha}/"
        assert p.startswith((prefix_main, prefix_sha)), p
        assert p.split("/resolve/", 1)[1].split("/", 1)[1] in files, p


# --------------------------------------------------------------------------------------------
# bodies


def test_config_without_content_length_is_cut_at_the_cap(fake_hub):
    fake_hub.add_repo("acme/nolen", {"config.json": b"{" + b" " * (3 * 2**20) + b"}"},
                      behaviours={"config.json": {"no_length"}})
    with pytest.raises(ConfigError) as err:
        resolve_model("acme/nolen")
    assert "larger than 2,097,152 bytes" in _one_line(err.value)


def test_endless_config_is_cut_quickly(fake_hub):
    fake_hub.add_repo("acme/endless", {"config.json": CFG_BYTES}, behaviours={"config.json": {"endless"}})
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=re.escape("too large for a config.json")):
        resolve_model("acme/endless")
    assert time.monotonic() - t0 < 10
    time.sleep(0.2)  # let the server notice the hang-up
    assert fake_hub.bytes_sent("config.json") < ENDLESS_MAX_BYTES


def test_endless_index_is_cut_at_its_cap(fake_hub, monkeypatch):
    monkeypatch.setattr(limits, "MAX_INDEX_BYTES", 2**20)
    index = json.dumps({"weight_map": {"a": "model-00001-of-00001.safetensors"}}).encode()
    fake_hub.add_repo("acme/endless-index", {"config.json": CFG_BYTES, "model.safetensors.index.json": index,
                                             "model-00001-of-00001.safetensors": make_safetensors(TENSORS)},
                      behaviours={"model.safetensors.index.json": {"endless"}})
    with pytest.raises(ConfigError, match="larger than 1,048,576 bytes"):
        resolve_model("acme/endless-index")


def test_range_ignored_on_a_safetensors_header_reads_only_the_first_bytes(fake_hub):
    big = {"model.embed_tokens.weight": ("BF16", [1_000_000, 1000])}  # 2 GB of data after the header
    head = make_safetensors(big, with_data=False)
    shard = SparseFile(head, len(head) + 2 * 10**9)
    fake_hub.add_repo("acme/norange", {"config.json": CFG_BYTES, "model.safetensors": shard},
                      behaviours={"model.safetensors": {"ignore_range"}})
    m = resolve_model("acme/norange")  # the 200 answer's first 100,001 bytes hold the header: then hang up
    assert m.checkpoint.total_bytes == 2 * 10**9
    time.sleep(0.2)
    assert fake_hub.bytes_sent("model.safetensors") < 64 * 2**20


def test_range_ignored_but_header_fits_the_first_read(fake_hub):
    st = make_safetensors(TENSORS)
    fake_hub.add_repo("acme/norange-ok", {"config.json": CFG_BYTES, "model.safetensors": st},
                      behaviours={"model.safetensors": {"ignore_range"}})
    m = resolve_model("acme/norange-ok")
    assert m.checkpoint.total_bytes == TENSOR_BYTES


def test_range_ignored_on_a_gguf_is_refused_not_downloaded(fake_hub):
    blob = make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(hidden=4096, vocab=1_000_000), with_data=False)
    fake_hub.add_repo("acme/norange-GGUF", {"m-Q4_K_M.gguf": blob}, behaviours={"m-Q4_K_M.gguf": {"ignore_range"}})
    with pytest.raises(HubUnavailableError) as err:
        resolve_model("acme/norange-GGUF")
    assert "ignored an HTTP Range request" in _one_line(err.value)
    time.sleep(0.2)
    assert fake_hub.bytes_sent(".gguf") < 64 * 2**20 < blob.size


# --------------------------------------------------------------------------------------------
# time


def test_slow_drip_is_cut_at_the_deadline(fake_hub, monkeypatch):
    monkeypatch.setattr(limits, "HUB_DEADLINE_S", 2.0)
    fake_hub.drip_interval_s = 1.0  # a byte per second: never a 10 s silence, never done
    fake_hub.add_repo("acme/drip", {"config.json": CFG_BYTES}, behaviours={"config.json": {"slow"}})
    t0 = time.monotonic()
    with pytest.raises(HubUnavailableError) as err:
        resolve_model("acme/drip")
    elapsed = time.monotonic() - t0
    assert "within 2 s" in _one_line(err.value)
    assert 1.5 < elapsed < 4


def test_stalled_server_hits_the_read_timeout(fake_hub, fast):
    fake_hub.stall_s = 3.0
    fake_hub.add_repo("acme/stall", {"config.json": CFG_BYTES}, behaviours={"config.json": {"stall"}})
    t0 = time.monotonic()
    with pytest.raises(HubUnavailableError) as err:
        resolve_model("acme/stall")
    assert time.monotonic() - t0 < 2.5
    assert "0.5 s" in _one_line(err.value) or "within 2 s" in _one_line(err.value)


def test_stalled_shard_leaves_the_config_estimate_with_a_note(fake_hub, fast):
    fake_hub.stall_s = 3.0
    fake_hub.add_repo("acme/stall-shard", {"config.json": CFG_BYTES, "model.safetensors": make_safetensors(TENSORS)},
                      behaviours={"model.safetensors": {"stall"}})
    m = resolve_model("acme/stall-shard")
    assert m.checkpoint is None and "safetensors headers not read" in m.source.note


def test_cli_one_line_for_a_dripping_hub(fake_hub, monkeypatch):
    monkeypatch.setattr(limits, "HUB_DEADLINE_S", 1.0)
    fake_hub.drip_interval_s = 0.3
    fake_hub.add_repo("acme/drip", {"config.json": CFG_BYTES}, behaviours={"config.json": {"slow"}})
    r = CliRunner().invoke(app, ["estimate", "acme/drip"])
    assert r.exit_code == 2 and "within 1 s" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------
# names: nothing outside the repo is ever requested


@pytest.mark.parametrize("bad", ["../../api/whoami-v2", "/etc/passwd", "https://evil.example/x.safetensors",
                                 "model-00001-of-00001.safetensors?download=1", "a/../../b.safetensors",
                                 "..%2F..%2Fapi%2Fwhoami-v2", "C:\\x.safetensors", ""])
def test_crafted_index_never_leaves_the_repo(fake_hub, bad):
    index = {"weight_map": {"a": "model-00001-of-00001.safetensors", "b": bad}}
    fake_hub.add_repo("acme/evil", {"config.json": CFG_BYTES, "model.safetensors.index.json": json.dumps(index).encode(),
                                    "model-00001-of-00001.safetensors": make_safetensors(TENSORS)})
    with pytest.raises(ConfigError) as err:
        resolve_model("acme/evil", token="hf_valid_token")
    line = _one_line(err.value)
    assert "not a safetensors file of the repo" in line or "not a file name" in line
    _only_repo_paths(fake_hub, "acme/evil")
    assert not any("whoami" in p or "passwd" in p for p in _paths_seen(fake_hub))


def test_index_naming_a_plain_file_the_repo_lacks(fake_hub):
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    fake_hub.add_repo("acme/partial", {"config.json": CFG_BYTES,
                                       "model.safetensors.index.json": json.dumps(index).encode(),
                                       "model-00001-of-00002.safetensors": make_safetensors(TENSORS)})
    with pytest.raises(ConfigError, match=re.escape("does not have, first 'model-00002-of-00002.safetensors'")):
        resolve_model("acme/partial")
    m = resolve_model("acme/partial", allow_missing_shards=True)
    assert m.checkpoint is None and any("model-00002-of-00002" in w for w in m.warnings)
    _only_repo_paths(fake_hub, "acme/partial")


def test_listing_entries_with_traversal_are_dropped(fake_hub):
    """A server listing '../secret.safetensors' (and naming it in its index) gets no request for it."""
    index = {"weight_map": {"a": "../secret.safetensors"}}
    fake_hub.add_repo("acme/listing", {"config.json": CFG_BYTES,
                                       "model.safetensors.index.json": json.dumps(index).encode(),
                                       "../secret.safetensors": make_safetensors(TENSORS)})
    with pytest.raises(ConfigError):
        resolve_model("acme/listing")
    assert not any("secret" in p for p in _paths_seen(fake_hub))


@pytest.mark.parametrize("name", ["a/..", "../b", "a--b/c", "a/b.", "a/.b"])
def test_invalid_repo_ids_make_no_request(fake_hub, name):
    with pytest.raises(Exception) as err:
        resolve_model(name)
    assert type(err.value).__name__ in ("ModelNotFoundError", "ConfigError")
    assert fake_hub.requests == []


def test_sharded_repo_reads_headers_in_parallel_and_only_headers(fake_hub):
    tensors = {f"model.layers.{i}.mlp.up_proj.weight": ("BF16", [256, 64]) for i in range(8)}
    from fakehub import make_sharded

    files = make_sharded(tensors, num_shards=8)
    files["config.json"] = CFG_BYTES
    fake_hub.add_repo("acme/sharded", files)
    m = resolve_model("acme/sharded")
    assert m.checkpoint.total_bytes == 8 * 256 * 64 * 2 and len(m.checkpoint.files) == 8
    assert fake_hub.gets_without_range(".safetensors") == []
    assert {t.role for t in m.checkpoint.tensors} == {"mlp_up"}


def test_offline_uses_the_config_cached_by_the_capped_fetch(fake_hub, monkeypatch):
    fake_hub.add_repo("acme/cache", {"config.json": CFG_BYTES})
    assert resolve_model("acme/cache").spec.hidden_size == 64
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(fake_hub.requests)
    m = resolve_model("acme/cache")
    assert m.spec.hidden_size == 64 and "HF_HUB_OFFLINE" in m.source.note
    assert len(fake_hub.requests) == n
