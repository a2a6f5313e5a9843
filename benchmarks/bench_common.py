"""What the benchmark scripts share: `llm-mem <args> --json` run in-process through the real CLI
(typer's CliRunner), offline."""

from __future__ import annotations

import json
from typing import Any

# Benchmarks never touch the network and never hide a traceback behind LLM_MEM_DEBUG.
ENV = {"HF_HUB_OFFLINE": "1", "LLM_MEM_DEBUG": ""}


def cli(args: list[str]) -> tuple[int, dict[str, Any] | None, str]:
    """Run `llm-mem <args> --json` in-process: (exit code, JSON or None, output tail)."""
    from typer.testing import CliRunner

    from llm_mem.cli import app

    res = CliRunner().invoke(app, [*args, "--json"], env=ENV)
    try:
        data = json.loads(res.stdout) if res.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    return res.exit_code, data, (res.output or "").strip()[-400:]



def text_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, for the terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (pipes in cells escaped), for RESULTS.md."""
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
