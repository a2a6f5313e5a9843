"""The committed JSON Schemas (docs/schemas/) match the pydantic models, and real `--json` outputs
validate against both the models (round trip) and the schemas (required keys, types)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llm_mem.check import CheckReport
from llm_mem.cli import app
from llm_mem.planner import Plan
from llm_mem.report import Report

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "docs" / "schemas"
runner = CliRunner()


def _gen():
    spec = importlib.util.spec_from_file_location("gen_schemas", ROOT / "scripts" / "gen_schemas.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _gen()
GENERATED = GEN.generate()


@pytest.mark.parametrize("fname", ["estimate.schema.json", "plan.schema.json", "check.schema.json"])
def test_committed_schema_has_not_drifted(fname):
    path = SCHEMAS / fname
    assert path.is_file(), f"{path} missing: run python scripts/gen_schemas.py"
    assert path.read_text(encoding="utf-8") == GEN.dumps(GENERATED[fname]), (
        f"{fname} differs from the pydantic model: run python scripts/gen_schemas.py and commit the result "
        "(bump schema_version if a field was removed or changed meaning)")


@pytest.mark.parametrize("fname,model", [("estimate.schema.json", Report), ("plan.schema.json", Plan),
                                         ("check.schema.json", CheckReport)])
def test_schema_id_carries_the_version(fname, model):
    doc = json.loads((SCHEMAS / fname).read_text())
    version = model.model_fields["schema_version"].default
    assert version == "1"
    assert doc["$id"] == GEN.schema_id(fname.split(".")[0], version) and doc["$id"].endswith(":v1")
    assert doc["$schema"].startswith("https://json-schema.org/")


# ---- a small validator: $ref, required, properties, types, enums, anyOf, items ----------------------
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _problems(value: Any, schema: dict, root: dict, path: str = "$") -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _problems(value, root["$defs"][name], root, path)
    if "anyOf" in schema:
        options = [_problems(value, s, root, path) for s in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{path}: matches no anyOf branch ({options[0][:1]})"]
    out = []
    t = schema.get("type")
    if t == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: {value!r} is not an integer"]
    elif t == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return [f"{path}: {value!r} is not a number"]
    elif t in _TYPES and not isinstance(value, _TYPES[t]):
        return [f"{path}: {type(value).__name__} is not {t}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} != {schema['const']!r}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: required key {key!r} missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                out += _problems(value[key], sub, root, f"{path}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, v in value.items():
                if key not in schema.get("properties", {}):
                    out += _problems(v, extra, root, f"{path}.{key}")
    if isinstance(value, list):
        if "prefixItems" in schema:
            for i, (v, sub) in enumerate(zip(value, schema["prefixItems"])):
                out += _problems(v, sub, root, f"{path}[{i}]")
        elif isinstance(schema.get("items"), dict):
            for i, v in enumerate(value):
                out += _problems(v, schema["items"], root, f"{path}[{i}]")
    return out


def _validate(data: dict, fname: str) -> None:
    schema = json.loads((SCHEMAS / fname).read_text())
    assert set(schema["required"]) <= set(data)
    assert set(data) == set(schema["properties"]), "output keys differ from the schema's properties"
    problems = _problems(data, schema, schema)
    assert not problems, problems[:5]
    try:  # the full validator when the environment has it (not a dependency)
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator(schema).validate(data)


def _run(*args: str, code: int = 0) -> str:
    r = runner.invoke(app, list(args))
    assert r.exit_code == code, r.output
    return r.stdout


@pytest.mark.parametrize("args", [
    ("estimate", "meta-llama/Llama-3.1-8B", "--json"),
    ("estimate", "llama-3.1-405b", "--precision", "int4", "--context", "32k", "--json"),
    ("estimate", "Qwen/Qwen3-30B-A3B", "--train", "lora", "--grad-checkpointing", "--json"),
    ("estimate", "deepseek-ai/DeepSeek-V3", "--runtime", "vllm", "--json"),
])
def test_estimate_json_validates(args):
    out = _run(*args)
    assert Report.model_validate_json(out).model_dump(mode="json") == json.loads(out)
    _validate(json.loads(out), "estimate.schema.json")


@pytest.mark.parametrize("args", [
    ("plan", "meta-llama/Llama-3.1-70B", "--precision", "bf16", "--host-ram", "64GB", "--json"),
    ("plan", "meta-llama/Llama-3.1-405B", "--precision", "int4", "--gpu", "8GB", "--host-ram", "64GB", "--json"),
])
def test_plan_json_validates(args):
    out = _run(*args)
    assert Plan.model_validate_json(out).model_dump(mode="json") == json.loads(out)
    _validate(json.loads(out), "plan.schema.json")


@pytest.mark.parametrize("args,code", [
    (("check", str(ROOT / "docs" / "sizing.yaml"), "--json"), 1),
    (("check", "--model", "llama-3.1-8b", "--gpu", "2xL4", "--precision", "fp8", "--json"), 0),
])
def test_check_json_validates(args, code):
    out = _run(*args, code=code)
    assert CheckReport.model_validate_json(out).model_dump(mode="json") == json.loads(out)
    _validate(json.loads(out), "check.schema.json")
