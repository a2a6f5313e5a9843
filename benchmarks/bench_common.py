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

