"""The Hugging Face Hub source: config.json and safetensors headers only, never weights.

The only module that touches the network. huggingface_hub is imported lazily (it costs start-up
time and is not needed for bundled or local models). HF_ENDPOINT is read at call time and passed
explicitly, because huggingface_hub reads it once at import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from llm_mem.errors import ConfigError, GatedRepoError, HubUnavailableError, ModelNotFoundError
from llm_mem.sources.configfile import MAX_CONFIG_BYTES, load_config_file

_LOGIN_HINT = "run `hf auth login` or set HF_TOKEN, or pass --config PATH to a local config.json"
DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT_S = 10.0


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or DEFAULT_ENDPOINT


def hub_offline() -> bool:
    """True when the user asked huggingface_hub to stay offline (HF_HUB_OFFLINE=1)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _translate(exc: Exception, repo_id: str, what: str) -> Exception:
    """Map huggingface_hub / network exceptions to our one-line errors."""
    from huggingface_hub import errors as e

    if isinstance(exc, e.GatedRepoError):
        return GatedRepoError(f"{repo_id} is a gated repo and no valid token was given", _LOGIN_HINT)
    if isinstance(exc, e.RevisionNotFoundError):
        return ModelNotFoundError(f"{repo_id} has no revision named as requested", "check --revision")
    if isinstance(exc, e.RepositoryNotFoundError):
        return ModelNotFoundError(
            f"no model named {repo_id!r} on the Hub, bundled, or as a local path",
            "check the spelling; `llm-mem models` lists bundled models; private repos need `hf auth login`",
        )
    # LocalEntryNotFoundError subclasses EntryNotFoundError: test the offline cases first
    if isinstance(exc, (e.OfflineModeIsEnabled, e.LocalEntryNotFoundError)):
        return HubUnavailableError(
            f"cannot fetch {what} of {repo_id}: the Hub is unreachable or HF_HUB_OFFLINE is set and it is not cached",
            "connect, or pass --config PATH, or use a bundled model (`llm-mem models`)",
        )
    if isinstance(exc, e.EntryNotFoundError):
        return ConfigError(f"{repo_id} has no {what}", "is it a transformers model repo?")
    return HubUnavailableError(
        f"cannot reach the Hub for {repo_id} ({type(exc).__name__})",
        "check the network or HF_ENDPOINT; or pass --config PATH, or use a bundled model (`llm-mem models`)",
    )


def fetch_config(repo_id: str, revision: str | None, token: str | None) -> tuple[dict[str, Any], str]:
    """Download (or read from the user's cache) config.json. Returns (dict, resolved location)."""
    import huggingface_hub as hh
    from huggingface_hub import errors as e

    endpoint = _endpoint()
    offline = hub_offline()
    try:
        if not offline:
            meta = hh.get_hf_file_metadata(
                hh.hf_hub_url(repo_id, "config.json", revision=revision, endpoint=endpoint),
                token=token, timeout=TIMEOUT_S, endpoint=endpoint,
            )
            if meta.size is not None and meta.size > MAX_CONFIG_BYTES:
                raise ConfigError(f"{repo_id}/config.json is {meta.size:,} bytes, too large for a config.json")
        path = hh.hf_hub_download(
            repo_id, "config.json", revision=revision, token=token, endpoint=endpoint,
            local_files_only=offline, etag_timeout=TIMEOUT_S,
        )
    except ConfigError:
        raise
    except (e.HfHubHTTPError, e.OfflineModeIsEnabled, e.LocalEntryNotFoundError, e.EntryNotFoundError,
            e.HFValidationError, OSError) as exc:
        if isinstance(exc, e.HFValidationError):
            raise ModelNotFoundError(f"{repo_id!r} is not a valid Hub repo id or local path") from None
        raise _translate(exc, repo_id, "config.json") from None
    except Exception as exc:  # httpx/requests transport errors differ across versions
        raise _translate(exc, repo_id, "config.json") from None
    return load_config_file(Path(path)), f"{repo_id}@{revision or 'main'}"


def fetch_safetensors_dtypes(repo_id: str, revision: str | None, token: str | None) -> tuple[dict[str, int] | None, str | None]:
    """Element counts per dtype from the checkpoint's safetensors headers (HTTP Range requests).

    Returns (counts, note). counts is None when the repo has no safetensors or the Hub is offline;
    the note then says why, and the estimate goes on from config.json alone.
    """
    if hub_offline():
        return None, "HF_HUB_OFFLINE is set: checkpoint dtypes not read, sizes from config.json only"
    import huggingface_hub as hh
    from huggingface_hub import errors as e

    try:
        meta = hh.HfApi(endpoint=_endpoint(), token=token).get_safetensors_metadata(
            repo_id, revision=revision, timeout=TIMEOUT_S)
    except e.NotASafetensorsRepoError:
        return None, "no safetensors checkpoint in the repo: sizes from config.json only"
    except Exception as exc:
        return None, f"safetensors headers not read ({type(exc).__name__}): sizes from config.json only"
    return {str(k): int(v) for k, v in meta.parameter_count.items()}, None
