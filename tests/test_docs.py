"""Every command is documented: named in README.md, with an Example in its --help; --version works."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llm_mem import __version__
from llm_mem.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands)


def test_the_app_has_the_expected_commands():
    assert set(COMMANDS) >= {"estimate", "plan", "models", "gpus", "check"}


@pytest.mark.parametrize("command", COMMANDS)
def test_command_is_in_readme(command):
    assert f"llm-mem {command}" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_has_an_example(command):
    r = runner.invoke(app, [command, "--help"])
    assert r.exit_code == 0, r.output
    assert "Example" in r.stdout


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"llm-mem {__version__}"
