"""Error tree. Every error the user can cause is an LlmMemError with a one-line message
and an optional hint; the CLI turns it into one line on stderr and an exit code."""

from __future__ import annotations

import re

#: The most characters of a user's value an error message repeats (an attacker's 100 MB string stays out).
QUOTE_LIMIT = 60
#: The longest one-line error the CLI prints (a few quoted values and a hint fit easily).
MESSAGE_LIMIT = 1000


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with an ellipsis: for quoting input in messages."""
    import reprlib  # bounded: a YAML alias bomb's nested lists are never walked in full

    r = reprlib.Repr()  # attributes, not keywords: Python 3.10/3.11 take none
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 4, 4, 4, 4
    r.maxstring = r.maxother = r.maxlong = limit
    try:
        text = r.repr(value)
    except ValueError:  # an int over sys.get_int_max_str_digits() digits has no repr
        text = f"<a {value.bit_length() if isinstance(value, int) else 'huge'}-bit integer>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LlmMemError(Exception):
    """Base of all expected errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint joined into the single line the CLI prints (newlines folded, at most
        MESSAGE_LIMIT characters: a message never repeats a hostile input at length)."""
        text = f"{self.message} ({self.hint})" if self.hint else self.message
        text = visible(" ".join(text.split()))
        return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def visible(text: str, keep_newlines: bool = False) -> str:
    """``text`` with its control characters written as Python escapes (``\\x1b``, ``\\n``), for printing
    data (a file name, a GGUF string) to a terminal: an ESC sequence would drive it, a CR overwrite the
    line, a newline split a one-line message. ``keep_newlines`` keeps line breaks (multi-line snippets)."""
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(lambda m: repr(m.group())[1:-1], text)


class InternalError(RuntimeError):
    """A broken invariant of our own (an estimate with a negative part): a bug, never the user's input.
    Deliberately not an LlmMemError: the CLI reports it as an internal error (exit 3), and pydantic
    validators let it through unwrapped."""


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


def flag_of(field: str) -> str:
    """The command-line flag of a setting: ``kv_dtype`` -> ``--kv-dtype``."""
    return "--" + field.replace("_", "-")


class SettingError(UsageError):
    """One setting (a CLI flag, a check-file field) is wrong. ``field`` names it; the message is
    placed after the setting (``--kv-dtype: ...``) or where the template says ``{}``. The default
    place is the flag; `placed` puts it elsewhere (``FILE:LINE: field kv_dtype``). An empty
    ``field`` is a problem of the whole request: the message stands alone."""

    def __init__(self, field: str, template: str, hint: str | None = None) -> None:
        self.field = field
        self.template = template
        super().__init__(self._text(flag_of(field)), hint)

    def _text(self, where: str) -> str:
        if not self.field:
            return self.template
        return self.template.format(where) if "{}" in self.template else f"{where}: {self.template}"

    def placed(self, where: str) -> UsageError:
        """The same error with the setting's place (``--gpus``, ``FILE:LINE: field gpus``)."""
        return UsageError(self._text(where), self.hint)


class CombinationError(SettingError):
    """A setting that is fine alone but not with the others (a training flag without --train)."""
