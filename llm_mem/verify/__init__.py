"""`--verify`: build the smallest slice of the model that holds one decoder layer of each kind,
randomly initialised on the local accelerator (CPU when none), measure its memory, scale it to the
whole model and calibrate the estimate with it.

torch and transformers are imported only when --verify runs (the `verify` extra); without them
`run_verify` raises a one-line VerifyError. See tracker.py for how memory is measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_mem.report import Report
    from llm_mem.spec import ResolvedModel

__all__ = ["render_verify", "run_verify"]


def run_verify(resolved: ResolvedModel, report: Report, **kwargs: Any) -> Report:
    """Measure and calibrate; see llm_mem.verify.run.run_verify."""
    from llm_mem.verify.run import run_verify as _run

    return _run(resolved, report, **kwargs)


def render_verify(report: Report, console: Any) -> None:
    """Print the estimate-vs-measured table of a verified report."""
    from llm_mem.verify.render import render_verify as _render

    _render(report, console)
