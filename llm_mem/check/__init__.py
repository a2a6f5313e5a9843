"""CI sizing checks (`llm-mem check`): a YAML file of deployments that must fit, evaluated with the
planner. ``file`` parses and validates the file, ``evaluate`` plans and judges each entry, ``report``
holds the results and writes JUnit. No typer, no rich: the command is in llm_mem/cli.py.

File format (docs/check.md)::

    version: 1
    defaults:            # merged into every entry (an entry's own keys win)
      runtime: vllm
      min_headroom: 10%
    checks:
      - name: chat-8b
        model: meta-llama/Llama-3.1-8B
        gpu: L4          # one device; "2xL4" = two, tensor parallel
        precision: int4
        context: 8k

An entry passes when a fitting plan option is resident on the GPUs it names (single GPU, tensor
parallel, or pipeline when the count spans nodes) -- or is a strategy listed in ``allow`` (offload,
streaming) -- and leaves at least ``min_headroom`` of each GPU's budget free.
"""

from llm_mem.check.evaluate import evaluate, run_checks, select
from llm_mem.check.file import (
    Check,
    CheckSet,
    headroom_bytes,
    load_checks,
    parse_checks,
    parse_headroom,
    single_check,
)
from llm_mem.check.report import SCHEMA_VERSION, CheckReport, CheckResult, junit_xml

__all__ = ["SCHEMA_VERSION", "Check", "CheckReport", "CheckResult", "CheckSet", "evaluate", "headroom_bytes",
           "junit_xml", "load_checks", "parse_checks", "parse_headroom", "run_checks", "select", "single_check"]
