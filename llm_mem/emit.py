"""One way out for every result: `emit(result, as_json=...)` prints it (the pydantic JSON dump, or
the rich rendering) and returns the exit code. Exit codes are decided here: 0 answered / fits,
1 a check found an entry that does not fit, 2 an entry that could not be evaluated.

The JSON path imports nothing from rich: notes and warnings go to stderr as plain lines.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from llm_mem.check import CheckReport


def exit_code(result: Any) -> int:
    """The process exit code a result asks for (its ``exit_code`` property, else 0)."""
    code = getattr(result, "exit_code", 0)
    return code if isinstance(code, int) else 0


def _stderr_lines(result: Any, as_json: bool) -> list[str]:
    """What a result says on stderr: a check's entries that could not be evaluated (both modes);
    with --json, a report's notes and warnings (the table shows them)."""
    lines = getattr(result, "stderr_lines", None)
    return list(lines(as_json)) if callable(lines) else []


def emit(result: BaseModel, *, as_json: bool) -> int:
    """Print ``result`` and return its exit code."""
    from llm_mem.errors import visible

    for line in _stderr_lines(result, as_json):
        sys.stderr.write(visible(line) + "\n")  # one line each, whatever the data in it
    try:
        if as_json:
            sys.stdout.write(result.model_dump_json(indent=2) + "\n")
            sys.stdout.flush()
        else:
            from llm_mem.render import render

            render(result)
    except BrokenPipeError:
        _stdout_gone()
    return exit_code(result)


def _stdout_gone() -> None:
    """The reader of stdout went away (`llm-mem ... | head`): the rest of the output goes nowhere and the
    exit code stays the result's own (a broken pipe was exit 3, or rich's exit 1, "does not fit").
    stdout is pointed at /dev/null so that the interpreter's last flush cannot raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's buffer): nothing to flush
        pass


@contextmanager
def spinner(message: str) -> Iterator[None]:
    """A spinner on stderr while a slow step (reading the Hub) runs; nothing when stderr is not a
    terminal. Human mode only: the CLI passes no progress callback with --json."""
    if not sys.stderr.isatty():
        with nullcontext():
            yield
        return
    from rich.console import Console
    from rich.markup import escape

    with Console(stderr=True).status(escape(message)):
        yield


def write_junit(report: CheckReport, path: Path) -> None:
    """Write the check report as JUnit XML (llm_mem.check.junit_xml) to ``path``."""
    from llm_mem.check import junit_xml
    from llm_mem.sources.configfile import write_regular

    write_regular(path, junit_xml(report), "--junit")
