"""Typed results of the commands that have no model of their own elsewhere. Each is a pydantic
model whose JSON dump is that command's `--json` output (schemas in docs/schemas/)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, RootModel

from llm_mem.catalog.model import Gpu
from llm_mem.planner import Plan
from llm_mem.report import Report

SCHEMA_VERSION = "1"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PrecisionComparison(_Frozen):
    """`estimate MODEL --precision all`: one report per precision, side by side."""

    schema_version: str = SCHEMA_VERSION
    model: str
    precisions: dict[str, Report]


class ModelEntry(_Frozen):
    """One bundled model."""

    id: str
    aliases: list[str]
    also: list[str]  # repos with exactly the same architecture
    parameters: int
    provenance: str  # "downloaded", or how the config was rebuilt


class ModelList(RootModel[list[ModelEntry]]):
    """`llm-mem models --json`: the bundled models, a JSON list."""

    model_config = ConfigDict(frozen=True)


class GpuList(_Frozen):
    """`llm-mem gpus --json`: the catalog's devices."""

    schema_version: str = SCHEMA_VERSION
    devices: list[Gpu]
    files: list[str] = Field(default_factory=list)  # the catalog files read, shipped first


class LargestFit(_Frozen):
    """`plan MODEL --max-context|--max-batch`: the largest value that fits resident, and its plan."""

    schema_version: str = SCHEMA_VERSION
    model: str
    gpu: str
    field: str  # "context" or "batch"
    largest: int  # 0: nothing fits even at 1
    plan: Plan | None
    # set when `largest` is where the search had to stop, not where memory runs out: the true answer is at
    # least `largest` (the model's max_position_embeddings, or the largest --batch accepted)
    limit: str | None = None
    # exit code 0 even when nothing fits: the question is answered (largest 0); exit 1 is `check`'s alone
