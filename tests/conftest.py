from __future__ import annotations

import os
import socket

import pytest
from fakehub import FakeHub

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A started FakeHub, with the environment pointed at it and isolated from the user's HF setup.

    huggingface_hub reads most of its settings once, at import (constants.HF_HUB_OFFLINE, HF_HUB_CACHE,
    HF_TOKEN_PATH, HF_HUB_DISABLE_TELEMETRY, ENDPOINT...), so besides the environment variables the
    import-time constants are patched too. constants.ENDPOINT is deliberately NOT patched: code under
    test must pass endpoint= explicitly, and any request to another host (e.g. huggingface.co) is
    refused by a getaddrinfo guard and fails the test at teardown.
    """
    import huggingface_hub  # noqa: F401 - import before the env changes below, as a real process would
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    hf_home = tmp_path / "hf_home"
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 "HF_OIDC_RESOURCE", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    env = {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "NO_PROXY": ",".join(["127.0.0.1", "localhost", os.environ.get("NO_PROXY", "")]).rstrip(",")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("no_proxy", env["NO_PROXY"])
    for name, value in {
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,  # else the user-agent builder fetches {ENDPOINT}/api/agent-harnesses
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
    }.items():
        monkeypatch.setattr(constants, name, value)

    hub = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)

    blocked = hub.blocked_hosts  # non-loopback host lookups attempted during the test
    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if host is not None and name not in _LOOPBACK:
            blocked.append(name)
            raise socket.gaierror(f"fake_hub: network access to {name!r} is blocked in tests")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    if any(k.lower() in ("http_proxy", "https_proxy", "all_proxy") for k in os.environ):
        close_session()  # huggingface_hub's shared httpx client reads proxy settings when created
    try:
        yield hub
    finally:
        hub.stop()
    assert not blocked, f"test tried to reach non-local hosts: {sorted(set(blocked))}"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Every test: name resolution of anything but loopback fails, so no test can reach the Hub
    (or any host) even by accident. fake_hub layers its own recording guard on top."""
    real = socket.getaddrinfo

    def guard(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK:
            raise socket.gaierror(f"network access to {name!r} is blocked in tests")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guard)


def load_script(path, name: str):
    """Import a benchmark or dev script by path, registered in sys.modules (dataclasses look their
    module up while the class is built)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def script_loader():
    """`load_script` as a fixture, for test modules that load benchmarks/*/run.py."""
    return load_script
