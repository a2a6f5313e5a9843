"""Error tree. Every error the user can cause is an LlmMemError with a one-line message
and an optional hint; the CLI turns it into one line on stderr and an exit code."""

from __future__ import annotations


class LlmMemError(Exception):
    """Base of all expected errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint joined into the single line the CLI prints."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(LlmMemError):
    """A flag or value the user gave makes no sense (bad size, unknown precision...)."""


class ModelNotFoundError(LlmMemError):
    """No local path, bundled model or Hub repo answers to the name."""


class GatedRepoError(LlmMemError):
    """The Hub repo exists but needs a token the user does not have."""


class HubUnavailableError(LlmMemError):
    """The Hub cannot be reached (offline, timeout, HF_HUB_OFFLINE)."""


class ConfigError(LlmMemError):
    """A config.json that is not JSON, too large, or lacks fields we need."""


class CatalogError(LlmMemError):
    """gpu_catalog.yaml (or a --catalog file) is malformed, or a GPU name is unknown."""


class VerifyError(LlmMemError):
    """--verify cannot run (no torch, layer does not fit the device)."""


class CheckFileError(UsageError):
    """A sizing check file (`llm-mem check FILE`) is malformed; the message reads FILE:LINE: field X: problem."""
