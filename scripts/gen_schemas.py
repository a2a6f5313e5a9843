"""Write the JSON Schemas of the `--json` outputs to docs/schemas/ (generated from the pydantic models).

    python scripts/gen_schemas.py           # (re)write docs/schemas/*.schema.json
    python scripts/gen_schemas.py --check   # exit 1 if a committed schema differs (CI drift check)

Each schema's "$id" carries the output's schema_version ("1"); bump the version in the model when
a field changes meaning or disappears, then regenerate. tests/test_schemas.py fails on drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _models() -> dict[str, tuple[Any, str]]:
    """name -> (pydantic model, the command whose --json output it describes)."""
    sys.path.insert(0, str(ROOT))
    from llm_mem.check import CheckReport
    from llm_mem.planner import Plan
    from llm_mem.planner.fit import FitTable
    from llm_mem.planner.sweep import Sweep
    from llm_mem.report import Report
    from llm_mem.results import GpuList, LargestFit, ModelList, PrecisionComparison

    return {"estimate": (Report, "llm-mem estimate --json"),
            "estimate-all": (PrecisionComparison, "llm-mem estimate MODEL --precision all --json"),
            "plan": (Plan, "llm-mem plan MODEL --json"),
            "plan-largest": (LargestFit, "llm-mem plan MODEL --max-context|--max-batch --json"),
            "plan-fit": (FitTable, "llm-mem plan --gpu X --json"),
            "plan-sweep": (Sweep, "llm-mem plan MODEL --gpu X --sweep context|batch --json"),
            "models": (ModelList, "llm-mem models --json"),
            "gpus": (GpuList, "llm-mem gpus --json"),
            "check": (CheckReport, "llm-mem check --json")}


def schema_version(model: Any) -> str:
    """A result model's schema_version default ("1"); a JSON list (ModelList) has none and is "1"."""
    field = getattr(model, "model_fields", {}).get("schema_version")
    return str(field.default) if field is not None else "1"


def schema_id(name: str, version: str) -> str:
    """The "$id" of a schema: a URN naming the output and its schema version."""
    return f"urn:llm-mem:schema:{name}:v{version}"


def generate() -> dict[str, dict[str, Any]]:
    """File name -> schema document, for every --json output."""
    out = {}
    for name, (model, command) in _models().items():
        version = schema_version(model)
        body = model.model_json_schema()
        doc = {"$schema": DRAFT, "$id": schema_id(name, version),
               "description": f"Output of `{command}`, schema_version {version}. "
                              f"Generated from {model.__module__}.{model.__name__} by scripts/gen_schemas.py.",
               **{k: v for k, v in body.items() if k != "description"}}
        out[f"{name}.schema.json"] = doc
    return out


def dumps(doc: dict[str, Any]) -> str:
    """The committed text of a schema (stable: indent 2, trailing newline)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write (or with --check, compare) the schemas; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    args = ap.parse_args()
    drift = []
    for fname, doc in generate().items():
        path = OUT / fname
        text = dumps(doc)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                drift.append(str(path.relative_to(ROOT)))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    if drift:
        print(f"schema drift: {', '.join(drift)} differ from the models; run python scripts/gen_schemas.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
