"""One validated request model per command. The CLI builds them from its options, `check` from its
file entries, a library caller directly; `llm_mem.api` runs them and returns typed results."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from llm_mem.errors import SettingError
from llm_mem.workload import Workload

# Layer-streaming disk and host-memory defaults (see llm_mem.planner for their sources).
DEFAULT_DISK_GBPS = 3.5
DEFAULT_CPU_GBPS = 76.8


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The longest model reference read: Linux's PATH_MAX (a Hub id is at most 96 + 1 + 96 characters).
MAX_MODEL_NAME = 4096
# The longest --token read (a Hugging Face token is 37 characters), and what it may hold: an HTTP header value.
MAX_TOKEN = 1024
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")
# The longest --revision: git ref names have no hard limit, but a branch, tag or 40-hex commit is short.
MAX_REVISION = 256


def text_problem(value: str, limit: int) -> str | None:
    """Why ``value`` cannot be a name (a model reference, revision, check name): empty, longer than
    ``limit``, or holding a control character (a newline would split the one-line error, an escape
    sequence would drive the terminal). None when it is fine."""
    if not value.strip():
        return "empty"
    if len(value) > limit:
        return f"{len(value):,} characters, more than {limit:,}"
    bad = next((c for c in value if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        return f"holds the control character {bad!r}"
    return None


def name_text(value: object, limit: int) -> object:
    if isinstance(value, str):
        problem = text_problem(value, limit)
        if problem is not None:
            raise ValueError(problem)
    return value


class ModelRef(_Request):
    """Which model: a Hub id, bundled alias, config.json or folder, with Hub options."""

    name: str = Field(min_length=1)
    revision: str | None = None
    config: Path | None = None  # read this config.json instead of resolving `name`
    token: SecretStr | None = None  # never printed; default: HF_TOKEN or `hf auth login`
    allow_missing_shards: bool = False  # an index naming absent shards: warn and size from config.json

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        return name_text(value, MAX_MODEL_NAME)

    @field_validator("revision", mode="before")
    @classmethod
    def _revision(cls, value: object) -> object:
        return name_text(value, MAX_REVISION)

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, value: object) -> object:
        # sent as an HTTP header: anything but printable ASCII failed as "cannot reach the Hub"
        # (UnicodeEncodeError) or split the header; the value is never repeated in the message
        if isinstance(value, str) and (not _TOKEN_RE.match(value) or len(value) > MAX_TOKEN):
            raise ValueError(f"must be 1 to {MAX_TOKEN} printable ASCII characters without spaces "
                             "(a Hugging Face token is hf_ and 34 letters)")
        return value


class EstimateRequest(_Request):
    """`llm-mem estimate`: one model, one workload; `compare_precisions` for `--precision all`."""

    model: ModelRef
    workload: Workload = Workload()
    compare_precisions: bool = False
    verify: bool = False
    gpu: str | None = None  # the GPU the engine's defaults and capacity are for (vLLM picks defaults from it)
    catalog: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EstimateRequest:
        if self.catalog is not None and self.gpu is None:
            raise SettingError("catalog", "{} names GPUs; estimate reads it only with --gpu", "add --gpu, or drop it")
        if self.compare_precisions and self.verify:
            raise SettingError("verify", "{} measures one precision, not --precision all", "pick one precision")
        return self


# Plausible bandwidths for --disk-gbps / --cpu-gbps: 1 MB/s (a slow USB stick) to 100,000 GB/s, 12x the
# fastest memory there is (B200 HBM3e, 8,000 GB/s; a 12-channel DDR5 host ~600 GB/s, PCIe 5 NVMe ~14 GB/s).
MIN_RATE_GBPS = 0.001
MAX_RATE_GBPS = 100_000.0


def _positive_rate(field: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise SettingError(field, f"{value} GB/s must be a positive number")
    if not MIN_RATE_GBPS <= value <= MAX_RATE_GBPS:
        raise SettingError(field, f"{value:g} GB/s is outside {MIN_RATE_GBPS:g}-{MAX_RATE_GBPS:,.0f} GB/s",
                           "no disk or memory is that slow or that fast")
    return value


# The workload settings the fit table (`plan --gpu X` without a model) reads; it chooses the rest per row.
FIT_TABLE_FIELDS = frozenset({"batch"})


class PlanRequest(_Request):
    """`llm-mem plan`: a model on GPUs (`gpu` None: the default set), or with no model the fit
    table of one GPU; `max_context` / `max_batch` ask for the largest value that fits."""

    model: ModelRef | None = None
    workload: Workload = Workload()
    gpu: str | None = None
    catalog: Path | None = None
    max_context: bool = False
    max_batch: bool = False
    disk_gbps: float = DEFAULT_DISK_GBPS
    cpu_gbps: float = DEFAULT_CPU_GBPS
    host_ram: int | None = Field(default=None, gt=0)  # bytes; None = this machine's RAM
    verify: bool = False
    sweep: Literal["context", "batch"] | None = None  # chart memory against context or batch
    # ---- training time (llm_mem.planner.train_time): tokens to train on, and the MFU assumed ----
    train_tokens: int | None = Field(default=None, gt=0, le=10**15)  # --train-tokens 1B
    mfu: float | None = Field(default=None, gt=0, le=1)  # None: llm_mem.planner.train_time.DEFAULT_MFU
    plot: Path | None = None  # write the sweep's chart as SVG here

    @field_validator("disk_gbps")
    @classmethod
    def _disk(cls, value: float) -> float:
        return _positive_rate("disk_gbps", value)

    @field_validator("cpu_gbps")
    @classmethod
    def _cpu(cls, value: float) -> float:
        return _positive_rate("cpu_gbps", value)

    @model_validator(mode="after")
    def _consistent(self) -> PlanRequest:
        if self.model is None and self.gpu is None:
            raise SettingError("", "plan needs a MODEL, a --gpu, or both", "e.g. `llm-mem plan --gpu 8GB`")
        if self.max_context and self.max_batch:
            raise SettingError("", "ask for --max-context or --max-batch, not both")
        if (self.max_context or self.max_batch) and self.model is None:
            raise SettingError("max_context" if self.max_context else "max_batch", "{} needs a MODEL")
        if self.model is None and self.verify:
            raise SettingError("verify", "{} needs a MODEL")
        self._flags_apply()
        for name in ("train_tokens", "mfu"):  # training time needs a model and --train
            if name in self.model_fields_set and getattr(self, name) is not None and (
                    self.model is None or self.workload.train is None or self.max_context or self.max_batch
                    or self.sweep is not None):
                raise SettingError(name, "{} applies to training plans", "add MODEL and --train, without "
                                   "--max-context, --max-batch or --sweep")
        if self.plot is not None and self.sweep is None:
            raise SettingError("plot", "{} draws a sweep", "add --sweep context or --sweep batch")
        if self.sweep is not None:
            if self.model is None or self.gpu is None:
                raise SettingError("sweep", "{} needs a MODEL and a --gpu")
            if self.max_context or self.max_batch:
                raise SettingError("sweep", "{} draws every value; drop --max-context / --max-batch")
            if "," in self.gpu:
                raise SettingError("sweep", "{} charts one GPU kind", "give --gpu NxGPU, not a mix")
            if self.plot is not None and self.plot.suffix.lower() != ".svg":
                raise SettingError("plot", "{} writes SVG: give a file name ending in .svg")
        return self


    def _flags_apply(self) -> None:
        """A setting the chosen question does not read is an error, never silently ignored."""
        given = self.model_fields_set
        unread: tuple[str, ...]
        if self.model is None:
            unread, what = ("disk_gbps", "host_ram"), "the fit table (plan --gpu without a MODEL)"
        elif self.max_context or self.max_batch:
            unread, what = ("disk_gbps", "cpu_gbps", "host_ram", "verify"), \
                f"{'--max-context' if self.max_context else '--max-batch'} (resident strategies only)"
        elif self.sweep is not None:
            unread, what = ("disk_gbps", "cpu_gbps", "verify"), "--sweep"
        else:
            return
        for name in unread:
            if name in given and getattr(self, name) not in (None, False):
                raise SettingError(name, f"{{}} does not apply to {what}", "drop it")
        if self.model is None:  # the fit table picks precision, format, runtime and context per row itself
            w = self.workload
            other = next((f for f in sorted(w.model_fields_set) if f not in FIT_TABLE_FIELDS and w.given(f)), None)
            if other is not None:
                raise SettingError(other, f"{{}} does not apply to {what}: it compares every precision and "
                                   "runtime itself", "name a MODEL to plan with it; the fit table reads --batch")


class GpusRequest(_Request):
    """`llm-mem gpus`: the catalog, with a user file merged in."""

    catalog: Path | None = None


class CheckRequest(_Request):
    """`llm-mem check`: a check file, or one check from flags (`single`: entry fields)."""

    file: Path | None = None
    single: dict[str, object] = Field(default_factory=dict)  # entry fields given as flags (None: not given)
    only: tuple[str, ...] = ()
    junit: Path | None = None
    catalog: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CheckRequest:
        given = [k for k, v in self.single.items() if v is not None and v != []]
        if self.file is not None:
            if given:
                raise SettingError(given[0], "{} is for a single check without a file",
                                   f"put `{given[0]}:` in {self.file}'s entries or defaults")
            return self
        if "model" not in given or "gpu" not in given:
            raise SettingError("", "check needs a FILE, or --model and --gpu for one check",
                               "e.g. `llm-mem check docs/sizing.yaml` or `llm-mem check --model llama-3.1-8b --gpu L4`")
        if self.only:
            raise SettingError("only", "{} picks entries of a check file", "give the FILE, or drop --only")
        return self
