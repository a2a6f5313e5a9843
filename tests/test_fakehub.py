"""The FakeHub fixture, exercised through the real huggingface_hub calls that llm_mem.sources.hub makes.

These tests also pin down what the installed huggingface_hub raises in each failure case, so a
library upgrade that changes it shows up here first.
"""

from __future__ import annotations

import json
import os
import struct
import types
import urllib.error
import urllib.request

import huggingface_hub as hh
import pytest
from fakehub import FakeHub, Request, make_safetensors, make_sharded
from huggingface_hub import constants
from huggingface_hub import errors as e

CONFIG = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "torch_dtype": "bfloat16"}
CONFIG_BYTES = json.dumps(CONFIG, indent=2).encode()
TENSORS = {
    "model.embed_tokens.weight": ("BF16", [128, 64]),
    "model.layers.0.mlp.up_proj.weight": ("BF16", [256, 64]),
    "model.layers.0.input_layernorm.weight": ("F32", [64]),
    "model.norm.weight": ("F32", [64]),
    "lm_head.weight": ("BF16", [128, 64]),
}
COUNTS = {"BF16": 128 * 64 + 256 * 64 + 128 * 64, "F32": 64 + 64}


def _endpoint() -> str:
    return os.environ["HF_ENDPOINT"]  # what hub.py does: read at call time, pass explicitly


def _download(repo_id, filename="config.json", *, revision=None, token=None, **kw):
    return hh.hf_hub_download(repo_id, filename, revision=revision, token=token, endpoint=_endpoint(), **kw)


def _st_meta(repo_id, *, revision=None, token=None):
    return hh.HfApi(endpoint=_endpoint(), token=token).get_safetensors_metadata(repo_id, revision=revision)


def _assert_only_ranged_weight_gets(hub: FakeHub) -> None:
    st_gets = [r for r in hub.requests if r.method == "GET" and r.path.endswith(".safetensors")]
    assert st_gets, "expected some safetensors header reads"
    assert hub.gets_without_range() == []
    assert all(r.headers["range"].startswith("bytes=") for r in st_gets)


# --------------------------------------------------------------------------------------------
# environment


def test_fixture_environment(fake_hub, tmp_path):
    assert fake_hub.endpoint.startswith("http://127.0.0.1:")
    assert os.environ["HF_ENDPOINT"] == fake_hub.endpoint
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert "HF_TOKEN" not in os.environ and "HF_HUB_OFFLINE" not in os.environ
    assert os.environ["HF_HUB_CACHE"].startswith(str(tmp_path))
    # import-time constants are isolated too
    assert constants.HF_HUB_CACHE.startswith(str(tmp_path))
    assert constants.HF_TOKEN_PATH.startswith(str(tmp_path))
    assert constants.HF_HUB_OFFLINE is False and constants.HF_HUB_DISABLE_TELEMETRY is True
    # constants.ENDPOINT stays what it was at import: requests reach the fake only through endpoint=
    assert fake_hub.endpoint != constants.ENDPOINT
    assert hh.get_token() is None


def test_network_guard_catches_leaks(fake_hub, monkeypatch):
    """The guard is not vacuous: with telemetry on, huggingface_hub 2.4.0 builds its user-agent by
    fetching {constants.ENDPOINT}/api/agent-harnesses (import-time endpoint, NOT endpoint=) once per
    process. The fixture turns telemetry off; here it is turned back on to show the leak is caught."""
    from urllib.parse import urlsplit

    from huggingface_hub.utils import _detect_agent

    host = urlsplit(constants.ENDPOINT).hostname
    if host in ("127.0.0.1", "localhost", "::1"):
        pytest.skip("HF_ENDPOINT was a loopback address when huggingface_hub was imported")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.setattr(_detect_agent, "_registry", None)
    fake_hub.add_repo("org/model", {"config.json": CONFIG_BYTES})
    _download("org/model")  # still succeeds: the registry fetch is best-effort
    assert fake_hub.blocked_hosts == [host]
    fake_hub.blocked_hosts.clear()  # else the fixture fails the test at teardown


# --------------------------------------------------------------------------------------------
# config.json


def test_config_download_round_trips(fake_hub):
    sha = fake_hub.add_repo("org/model", {"config.json": CONFIG_BYTES})
    path = _download("org/model")
    with open(path, "rb") as f:
        assert f.read() == CONFIG_BYTES
    assert path.startswith(constants.HF_HUB_CACHE) and f"/snapshots/{sha}/" in path
    assert [(r.method, r.path) for r in fake_hub.requests] == [
        ("HEAD", "/org/model/resolve/main/config.json"),
        ("GET", "/org/model/resolve/main/config.json"),
    ]
    # explicit cache_dir and a pinned commit sha work too
    other_cache = os.path.join(os.environ["HF_HOME"], "other-cache")
    path2 = _download("org/model", revision=sha, cache_dir=other_cache)
    assert path2.startswith(other_cache)
    with open(path2, "rb") as f:
        assert json.load(f) == CONFIG


def test_file_metadata_headers(fake_hub):
    """hub.py calls get_hf_file_metadata first to size-check config.json."""
    sha = fake_hub.add_repo("org/model", {"config.json": CONFIG_BYTES, "model.safetensors": make_safetensors(TENSORS)})
    url = hh.hf_hub_url("org/model", "config.json", endpoint=_endpoint())
    assert url.startswith(fake_hub.endpoint)
    meta = hh.get_hf_file_metadata(url, endpoint=_endpoint())
    assert (meta.size, meta.commit_hash, meta.xet_file_data) == (len(CONFIG_BYTES), sha, None)
    assert len(meta.etag) == 40  # git blob sha1 for regular files
    st = hh.get_hf_file_metadata(hh.hf_hub_url("org/model", "model.safetensors", endpoint=_endpoint()))
    assert len(st.etag) == 64  # sha256 (X-Linked-Etag) for LFS files
    assert st.size == len(make_safetensors(TENSORS))
    assert [r.method for r in fake_hub.requests] == ["HEAD", "HEAD"]


def test_local_files_only_uses_cache_and_sends_nothing(fake_hub):
    fake_hub.add_repo("org/model", {"config.json": CONFIG_BYTES})
    with pytest.raises(e.LocalEntryNotFoundError):
        _download("org/model", local_files_only=True)
    assert fake_hub.requests == []
    path = _download("org/model")
    n = len(fake_hub.requests)
    assert _download("org/model", local_files_only=True) == path
    assert len(fake_hub.requests) == n


# --------------------------------------------------------------------------------------------
# safetensors headers


def test_safetensors_single_file(fake_hub):
    fake_hub.add_repo("org/single", {"config.json": CONFIG_BYTES, "model.safetensors": make_safetensors(TENSORS)})
    meta = _st_meta("org/single")
    assert meta.sharded is False
    assert meta.parameter_count == COUNTS
    assert set(meta.weight_map) == set(TENSORS)
    _assert_only_ranged_weight_gets(fake_hub)
    assert [(r.method, r.path.rsplit("/", 1)[-1], r.headers.get("range")) for r in fake_hub.requests] == [
        ("HEAD", "model.safetensors", None),  # file_exists
        ("GET", "model.safetensors", "bytes=0-100000"),
    ]


def test_safetensors_sharded(fake_hub):
    files = make_sharded(TENSORS, num_shards=3)
    assert sorted(files) == [
        "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
        "model-00003-of-00003.safetensors", "model.safetensors.index.json",
    ]
    fake_hub.add_repo("org/sharded", {"config.json": CONFIG_BYTES, **files})
    meta = _st_meta("org/sharded")
    assert meta.sharded is True
    assert meta.parameter_count == COUNTS
    assert len(meta.files_metadata) == 3
    assert meta.metadata == {"total_size": 2 * COUNTS["BF16"] + 4 * COUNTS["F32"]}
    _assert_only_ranged_weight_gets(fake_hub)
    seen = sorted((r.method, r.path.rsplit("/", 1)[-1]) for r in fake_hub.requests)
    assert seen == sorted([
        ("HEAD", "model.safetensors"),             # file_exists -> 404 EntryNotFound
        ("HEAD", "model.safetensors.index.json"),  # file_exists
        ("HEAD", "model.safetensors.index.json"),  # hf_hub_download of the index
        ("GET", "model.safetensors.index.json"),
        ("GET", "model-00001-of-00003.safetensors"),
        ("GET", "model-00002-of-00003.safetensors"),
        ("GET", "model-00003-of-00003.safetensors"),
    ])


def test_safetensors_header_only_big_model_and_long_header(fake_hub):
    """with_data=False: a 'big' checkpoint costs only its header. A header over 100 kB makes
    huggingface_hub issue a second ranged GET for the rest of it."""
    big = {f"model.layers.{i}.self_attn.q_proj.weight": ("BF16", [4096, 4096]) for i in range(1500)}
    big["lm_head.weight"] = ("F32", [32000, 4096])
    data = make_safetensors(big, with_data=False)
    assert struct.unpack("<Q", data[:8])[0] + 8 == len(data) > 100_000
    fake_hub.add_repo("org/big", {"model.safetensors": data})
    meta = _st_meta("org/big")
    assert meta.parameter_count == {"BF16": 1500 * 4096 * 4096, "F32": 32000 * 4096}
    ranges = [r.headers["range"] for r in fake_hub.requests if r.method == "GET"]
    assert ranges == ["bytes=0-100000", f"bytes=8-{len(data) - 1}"]
    _assert_only_ranged_weight_gets(fake_hub)


def test_not_a_safetensors_repo(fake_hub):
    fake_hub.add_repo("org/bin-only", {"config.json": CONFIG_BYTES, "pytorch_model.bin": b"\0" * 16})
    with pytest.raises(e.NotASafetensorsRepoError):
        _st_meta("org/bin-only")


# --------------------------------------------------------------------------------------------
# gated / missing


def test_gated_repo(fake_hub):
    files = {"config.json": CONFIG_BYTES, "model.safetensors": make_safetensors(TENSORS)}
    fake_hub.add_repo("org/gated", files, gated=True)
    for token in (None, "hf_wrong"):
        with pytest.raises(e.GatedRepoError) as exc:
            _download("org/gated", token=token)
        assert exc.value.response.status_code == 401
        with pytest.raises(e.GatedRepoError):
            _st_meta("org/gated", token=token)
    assert not any(r.method == "GET" for r in fake_hub.requests)

    path = _download("org/gated", token="hf_valid_token")
    with open(path, "rb") as f:
        assert f.read() == CONFIG_BYTES
    assert _st_meta("org/gated", token="hf_valid_token").parameter_count == COUNTS
    authed = [r for r in fake_hub.requests if r.method == "GET"]
    assert authed and all(r.headers["authorization"] == "Bearer hf_valid_token" for r in authed)


def test_missing_repo(fake_hub):
    with pytest.raises(e.RepositoryNotFoundError) as exc:
        _download("org/nope")
    assert type(exc.value) is e.RepositoryNotFoundError  # not the GatedRepoError subclass
    assert exc.value.response.status_code == 404
    # get_safetensors_metadata swallows RepositoryNotFoundError in file_exists():
    with pytest.raises(e.NotASafetensorsRepoError):
        _st_meta("org/nope")


def test_missing_file(fake_hub):
    fake_hub.add_repo("org/model", {"README.md": b"# hi\n"})
    with pytest.raises(e.RemoteEntryNotFoundError) as exc:
        _download("org/model")
    assert isinstance(exc.value, e.EntryNotFoundError) and isinstance(exc.value, e.HfHubHTTPError)
    with pytest.raises(e.RemoteEntryNotFoundError):
        hh.get_hf_file_metadata(hh.hf_hub_url("org/model", "config.json", endpoint=_endpoint()))


def test_missing_revision(fake_hub):
    fake_hub.add_repo("org/model", {"config.json": CONFIG_BYTES, "model.safetensors": make_safetensors(TENSORS)})
    with pytest.raises(e.RevisionNotFoundError):
        _download("org/model", revision="v9")
    with pytest.raises(e.NotASafetensorsRepoError):  # swallowed by file_exists() as well
        _st_meta("org/model", revision="v9")


# --------------------------------------------------------------------------------------------
# offline / unreachable


def test_offline_mode_constant(fake_hub, monkeypatch):
    """huggingface_hub's own offline switch is constants.HF_HUB_OFFLINE, read once at import:
    setting HF_HUB_OFFLINE=1 in os.environ afterwards changes nothing (hence local_files_only in hub.py)."""
    fake_hub.add_repo("org/model", {"config.json": CONFIG_BYTES, "model.safetensors": make_safetensors(TENSORS)})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hh.is_offline_mode() is False
    cached = _download("org/model")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    n = len(fake_hub.requests)
    assert _download("org/model") == cached  # falls back to the cache
    with pytest.raises(e.LocalEntryNotFoundError) as exc:
        _download("org/model", "model.safetensors")
    assert isinstance(exc.value.__cause__, e.OfflineModeIsEnabled)
    with pytest.raises(e.OfflineModeIsEnabled):
        hh.get_hf_file_metadata(hh.hf_hub_url("org/model", "config.json", endpoint=_endpoint()))
    with pytest.raises(e.OfflineModeIsEnabled):
        _st_meta("org/model")
    assert len(fake_hub.requests) == n


def test_connection_refused(fake_hub, monkeypatch):
    httpx2 = pytest.importorskip("httpx2")  # huggingface_hub 2.x's HTTP client
    with FakeHub() as dead:
        endpoint = dead.endpoint
    url = hh.hf_hub_url("org/model", "config.json", endpoint=endpoint)
    with pytest.raises(httpx2.ConnectError):
        hh.get_hf_file_metadata(url, endpoint=endpoint)
    with pytest.raises(httpx2.ConnectError):
        hh.HfApi(endpoint=endpoint).get_safetensors_metadata("org/model")

    # hf_hub_download: the HEAD fails, then is retried 5 times with backoff (1+2+4+8+8 = 23 s of sleep,
    # skipped here), then it raises LocalEntryNotFoundError from the ConnectError.
    sleeps: list[float] = []
    import huggingface_hub.utils._http as hf_http
    monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(sleep=sleeps.append))
    with pytest.raises(e.LocalEntryNotFoundError) as exc:
        hh.hf_hub_download("org/model", "config.json", endpoint=endpoint)
    assert isinstance(exc.value.__cause__, httpx2.ConnectError)
    assert sleeps == [1, 2, 4, 8, 8]


# --------------------------------------------------------------------------------------------
# the fake itself


def test_make_safetensors_layout():
    data = make_safetensors({"a": ("F16", [2, 3]), "b": ("I8", [5]), "s": ("F32", [])})
    n = struct.unpack("<Q", data[:8])[0]
    assert n % 8 == 0
    header = json.loads(data[8:8 + n])
    assert header["a"] == {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}
    assert header["b"]["data_offsets"] == [12, 17]
    assert header["s"]["data_offsets"] == [17, 21]
    assert data[8 + n:] == bytes(21)
    assert make_safetensors({"a": ("F16", [2, 3])}, with_data=False)[8 + n:] == b""
    with pytest.raises(ValueError):
        make_safetensors({"x": ("Q4", [1])})


def test_make_sharded_index():
    files = make_sharded(TENSORS, num_shards=2, with_data=False)
    index = json.loads(files["model.safetensors.index.json"])
    assert set(index["weight_map"]) == set(TENSORS)
    assert set(index["weight_map"].values()) == {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}


def test_raw_http_ranges_and_errors(fake_hub):
    body = bytes(range(100))
    fake_hub.add_repo("org/raw", {"w.safetensors": body})

    def get(path, headers=None, method="GET"):
        req = urllib.request.Request(fake_hub.endpoint + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    st, h, b = get("/org/raw/resolve/main/w.safetensors", {"Range": "bytes=10-19"})
    assert (st, b, h["Content-Range"]) == (206, body[10:20], "bytes 10-19/100")
    st, h, b = get("/org/raw/resolve/main/w.safetensors", {"Range": "bytes=90-100000"})
    assert (st, b, h["Content-Range"]) == (206, body[90:], "bytes 90-99/100")
    st, h, b = get("/org/raw/resolve/main/w.safetensors", {"Range": "bytes=-5"})
    assert (st, b) == (206, body[-5:])
    st, h, _ = get("/org/raw/resolve/main/w.safetensors", {"Range": "bytes=100-"})
    assert (st, h["Content-Range"]) == (416, "bytes */100")
    st, h, b = get("/org/raw/resolve/main/w.safetensors", method="HEAD")
    assert (st, b, h["Content-Length"], h["X-Linked-Size"]) == (200, b"", "100", "100")
    assert get("/org/raw/resolve/main/nope")[1]["X-Error-Code"] == "EntryNotFound"
    assert get("/org/none/resolve/main/x")[1]["X-Error-Code"] == "RepoNotFound"
    st, _, b = get("/api/models/org/raw")
    assert st == 200 and json.loads(b)["siblings"] == [{"rfilename": "w.safetensors"}]
    assert fake_hub.requests[0] == Request("GET", "/org/raw/resolve/main/w.safetensors", fake_hub.requests[0].headers)
    assert fake_hub.gets_without_range() == []  # every GET of the .safetensors file was ranged
