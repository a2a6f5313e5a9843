"""User settings -> a validated Workload, and pydantic's errors -> one line naming the setting.

The CLI, check files and library callers build workloads here (`build_workload`); `validation_problem`
words any request model's first ValidationError the way the CLI prints it.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from llm_mem.errors import SettingError, quote
from llm_mem.workload import Workload, field_flag

_BOUND_WORDS = {"greater_than_equal": ("at least", "ge"), "greater_than": ("above", "gt"),
                "less_than_equal": ("at most", "le"), "less_than": ("below", "lt")}


def validation_problem(exc: ValidationError) -> tuple[str, str]:
    """(field, message in words) of the first problem in a pydantic ValidationError."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    field = loc[0] if loc else ""
    msg = str(err["msg"]).removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "enum":
        enum = Workload.model_fields[field].annotation if field in Workload.model_fields else None
        msg = choice_problem(field, err.get("input"), enum)
    elif kind in _BOUND_WORDS:
        value = err.get("input")
        word, key = _BOUND_WORDS[kind]
        msg = ("nan is not a number" if isinstance(value, float) and math.isnan(value)
               else f"{quote(value)} must be {word} {ctx.get(key)}")
    elif kind == "extra_forbidden":
        msg = "unknown setting"
    elif len(loc) > 1 and loc[-1].isdigit():
        msg = f"item {int(loc[-1]) + 1}: {msg}"
    return field, msg


def choice_problem(field: str, value: Any, enum: Any) -> str:
    """"unknown precision 'int3' (choose fp32, bf16, ...)" for a value outside an Enum's choices."""
    members = [m for m in typing.get_args(enum) if isinstance(m, type)] or [enum]
    choices = next((m.values() for m in members if isinstance(m, type) and hasattr(m, "values")), ())
    noun = field.replace("_", " ")
    return f"unknown {noun} {quote(value)}" + (f" (choose {', '.join(choices)})" if choices else "")


def build_workload(settings: Mapping[str, Any], where: Callable[[str], str] = field_flag) -> Workload:
    """A validated Workload from the settings a user gave (None values are "not given").

    Every problem is one UsageError naming the setting as ``where(field)`` (a flag for the CLI,
    ``FILE:LINE: field X`` for a check file)."""
    given = {k: v for k, v in settings.items() if v is not None}
    try:
        return Workload(**given)
    except SettingError as err:
        raise err.placed(where(err.field)) from None
