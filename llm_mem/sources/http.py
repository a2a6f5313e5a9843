"""Capped, deadlined HTTP GETs to the Hub: the only code that opens connections.

Every GET goes through huggingface_hub's shared session (its proxies, certificates and user agent;
httpx in huggingface_hub >= 1.0, requests before) with the token header that huggingface_hub builds.
Three bounds hold for every response, whatever the server does:

* bytes: the body is read in chunks and abandoned once the caller's cap is reached, so a missing or
  lying Content-Length, an endless body, or a 200 with the whole file in answer to a Range request
  never puts more than the cap in memory. Compressed bodies are refused (a small gzip can inflate to
  any size), so we ask for ``Accept-Encoding: identity``;
* time per read: READ_TIMEOUT_S for connecting and for each wait on the socket;
* time overall: a `Deadline` shared by every request of one resolve_model call (HUB_DEADLINE_S). The
  request runs in a worker thread that the caller stops waiting for at the deadline, so a server
  that drips a byte a second, in the headers or the body, is cut there.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from llm_mem.errors import ConfigError, GatedRepoError, HubUnavailableError, ModelNotFoundError
from llm_mem.sources import limits

_CHUNK = 1 << 16
_LOGIN_HINT = "run `hf auth login` or set HF_TOKEN, or pass --config PATH to a local config.json"
_NET_HINT = "check the network or HF_ENDPOINT; or pass --config PATH, or use a bundled model (`llm-mem models`)"


class Deadline:
    """One overall time budget for several requests."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = limits.HUB_DEADLINE_S if seconds is None else seconds
        self.end = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def expired_error(self, what: str) -> HubUnavailableError:
        return HubUnavailableError(f"the Hub did not deliver {what} within {self.seconds:g} s",
                                   "a slow or stalled server; try again, or pass --config PATH")


@dataclass(frozen=True)
class Reply:
    """A response: status, lower-cased headers, at most ``limit`` body bytes, and whether more followed."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    over: bool  # the body went past the cap (and was cut there)


def hub_headers(token: str | None) -> dict[str, str]:
    """huggingface_hub's request headers (user agent, Authorization from ``token`` or the stored login)."""
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]  # public, not in __all__

    from llm_mem import __version__

    headers = {str(k): str(v) for k, v in build_hf_headers(token=token, library_name="llm-mem",
                                                         library_version=__version__).items()}
    headers["Accept-Encoding"] = "identity"
    return headers


def _run(url: str, headers: dict[str, str], limit: int, cancel: threading.Event, timeout: float,
         whole: bool) -> Reply:
    from huggingface_hub import get_session

    session: Any = get_session()
    if hasattr(session, "stream"):  # httpx / httpx2 (huggingface_hub >= 1.0)
        with session.stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as r:
            return _consume(r.status_code, r.headers, str(r.url), r.iter_raw(_CHUNK), limit, cancel, whole)
    r = session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=True)  # requests
    try:
        return _consume(r.status_code, r.headers, str(r.url), r.raw.stream(_CHUNK, decode_content=False), limit,
                        cancel, whole)
    finally:
        r.close()


def _consume(status: int, raw_headers: Any, url: str, chunks: Any, limit: int, cancel: threading.Event,
             whole: bool) -> Reply:
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
    if status >= 400 or status in (204, 304):
        return Reply(status, headers, b"", url, False)
    if headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        raise ConfigError(f"the Hub answered with a {headers['content-encoding']}-compressed body, which llm-mem "
                          "does not inflate (an inflated size has no bound)")
    length = headers.get("content-length", "")
    if whole and length.isdigit() and int(length) > limit:  # declared too large: not a byte read
        return Reply(status, headers, b"", url, True)
    parts: list[bytes] = []
    got = 0
    over = False
    for chunk in chunks:
        if cancel.is_set():
            break
        if got + len(chunk) > limit:
            parts.append(chunk[: limit - got])
            got = limit
            over = True
            break
        parts.append(chunk)
        got += len(chunk)
    return Reply(status, headers, b"".join(parts), url, over)


def get(url: str, *, headers: dict[str, str], limit: int, deadline: Deadline, what: str,
        whole: bool = False) -> Reply:
    """GET ``url``, reading at most ``limit`` body bytes, within the deadline (``whole``: the caller
    needs all of the body or none, so a declared Content-Length over the limit stops before reading).
    Transport failures are a HubUnavailableError; HTTP error statuses come back in the Reply."""
    remaining = deadline.remaining()
    if remaining <= 0:
        raise deadline.expired_error(what)
    box: list[Reply | BaseException] = []
    cancel = threading.Event()

    def work() -> None:
        try:
            box.append(_run(url, headers, limit, cancel, min(limits.READ_TIMEOUT_S, max(remaining, 0.01)), whole))
        except BaseException as exc:  # handed to the caller's thread
            box.append(exc)

    t = threading.Thread(target=work, name="llm-mem-http", daemon=True)
    t.start()
    t.join(remaining)
    if t.is_alive():
        cancel.set()
        raise deadline.expired_error(what)
    result = box[0]
    if isinstance(result, Reply):
        return result
    if isinstance(result, ConfigError):
        raise result
    name = type(result).__name__
    if "Timeout" in name:
        raise HubUnavailableError(f"the Hub did not answer {what} within {limits.READ_TIMEOUT_S:g} s ({name})",
                                  _NET_HINT)
    raise HubUnavailableError(f"cannot reach the Hub for {what} ({name})", _NET_HINT)


def raise_for_status(reply: Reply, repo_id: str, what: str) -> None:
    """Our one-line error for a Hub error status (X-Error-Code, as huggingface_hub's
    hf_raise_for_status reads it)."""
    if reply.status < 400:
        return
    code = reply.headers.get("x-error-code", "")
    message = reply.headers.get("x-error-message", "")
    if code == "GatedRepo":
        raise GatedRepoError(f"{repo_id} is a gated repo and no valid token was given", _LOGIN_HINT)
    if code == "RevisionNotFound":
        raise ModelNotFoundError(f"{repo_id} has no revision named as requested", "check --revision")
    if code == "RepoNotFound" or (reply.status == 401 and message != "Invalid credentials in Authorization header"):
        raise ModelNotFoundError(
            f"no model named {repo_id!r} on the Hub, bundled, or as a local path",
            "check the spelling; `llm-mem models` lists bundled models; private repos need `hf auth login`")
    if code == "EntryNotFound" or reply.status == 404:
        raise ConfigError(f"{repo_id} has no {what}", "is it a transformers model repo?")
    if reply.status in (401, 403):
        raise GatedRepoError(f"the Hub refused {what} of {repo_id} (HTTP {reply.status})", _LOGIN_HINT)
    raise HubUnavailableError(f"the Hub answered HTTP {reply.status} for {what} of {repo_id}", _NET_HINT)
