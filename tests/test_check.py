"""`llm-mem check`: the docs samples, exit codes 0/1/2, FILE:LINE errors, JUnit, single-check mode,
allowed strategies and the Hub offline. Never touches the network (conftest blocks it)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm_mem.cli import app

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "docs" / "sizing.yaml"
MALFORMED = ROOT / "docs" / "sizing-malformed.yaml"
PASSING = "llama-8b-int4-on-l4"
FAILING = "llama-70b-bf16-on-l4"

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(r) -> str:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


# ---- the docs samples ---------------------------------------------------------------------------
def test_sample_exits_1_with_one_pass_and_one_fail():
    r = run("check", SAMPLE, "--json")
    assert r.exit_code == 1, r.output
    d = json.loads(r.stdout)
    by = {x["name"]: x for x in d["results"]}
    assert (d["passed"], d["failed"], d["errors"]) == (1, 1, 0)
    ok, bad = by[PASSING], by[FAILING]
    assert ok["status"] == "pass" and ok["strategy"] == "single" and ok["count"] == 1 and ok["gpu"] == "L4-24GB"
    assert ok["per_gpu_bytes"] <= ok["budget_bytes"] - ok["headroom_bytes"]
    assert ok["headroom_bytes"] == -(-ok["budget_bytes"] * 10 // 100)  # min_headroom: 10% of the budget
    assert bad["status"] == "fail" and bad["per_gpu_bytes"] > bad["budget_bytes"]
    assert "short" in bad["reason"] and "not allowed" in bad["reason"]
    assert bad["line"] == line_of(SAMPLE, f"name: {FAILING}")


def test_sample_passing_entry_alone_exits_0():
    r = run("check", SAMPLE, "--only", PASSING)
    assert r.exit_code == 0, r.output
    assert "pass" in r.stdout and PASSING in r.stdout and "GB" in r.stdout


def test_table_output_exits_1_and_names_units():
    r = run("check", SAMPLE)
    assert r.exit_code == 1
    assert "1 passed, 1 failed, 0 errors" in r.stdout and "10^9 bytes" in r.stdout
    assert r.stderr == ""


def test_malformed_sample_exits_2_naming_file_line_and_field():
    msg = one_line_error(run("check", MALFORMED))
    assert f"sizing-malformed.yaml:{line_of(MALFORMED, 'context: 12q')}: field context:" in msg
    assert "token count" in msg and "typo-in-context" in msg


def test_docs_check_md_examples_are_valid_files():
    from llm_mem.catalog import load_catalog
    from llm_mem.check import parse_checks

    text = (ROOT / "docs" / "check.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("version: 1")]
    assert blocks
    for b in blocks:
        assert parse_checks(b, "check.md", load_catalog()).checks


# ---- JUnit --------------------------------------------------------------------------------------
def test_junit_has_one_testcase_per_entry_and_the_failure(tmp_path):
    out = tmp_path / "report.xml"
    r = run("check", SAMPLE, "--junit", out)
    assert r.exit_code == 1
    suite = ET.parse(out).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "llm-mem"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [PASSING, FAILING]
    assert len(suite.findall("testcase/failure")) == 1 and not suite.findall("testcase/error")
    failure = cases[1].find("failure")
    assert failure is not None and "does not fit" in failure.get("message") and cases[0].find("failure") is None


def test_junit_records_an_error(tmp_path, monkeypatch, offline_hub):
    f = tmp_path / "s.yaml"
    f.write_text(f"version: 1\nchecks:\n  - name: hub\n    model: {NOT_BUNDLED}\n    gpu: L4\n")
    out = tmp_path / "r.xml"
    r = run("check", f, "--junit", out)
    assert r.exit_code == 2
    suite = ET.parse(out).getroot()
    assert suite.get("errors") == "1" and len(suite.findall("testcase/error")) == 1


# ---- single-check mode --------------------------------------------------------------------------
def test_single_check_from_flags():
    r = run("check", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "L4", "--precision", "int4", "--context", "32k",
            "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["file"] is None and d["passed"] == 1
    res = d["results"][0]
    assert res["model"] == "meta-llama/Llama-3.1-8B" and res["strategy"] == "single" and res["line"] is None


def test_single_check_that_does_not_fit_exits_1():
    r = run("check", "--model", "llama-3.1-70b", "--gpu", "L4", "--precision", "bf16")
    assert r.exit_code == 1 and "does not fit" in r.stdout


def test_headroom_turns_a_fit_into_a_fail():
    base = ("check", "--model", "llama-3.1-8b", "--gpu", "L4", "--precision", "bf16", "--json")
    assert run(*base).exit_code == 0
    r = run(*base, "--min-headroom", "30%")
    assert r.exit_code == 1
    res = json.loads(r.stdout)["results"][0]
    assert res["per_gpu_bytes"] <= res["budget_bytes"] and "headroom" in res["reason"]


@pytest.mark.parametrize("args,needle", [
    (["check"], "--model and --gpu"),
    (["check", "--model", "llama-3.1-8b"], "--model and --gpu"),
    (["check", str(SAMPLE), "--precision", "int4"], "--precision is for a single check"),
    (["check", "--model", "llama-3.1-8b", "--gpu", "L4", "--min-headroom", "12"], "headroom"),
    (["check", "--model", "llama-3.1-8b", "--gpu", "L4", "--allow", "swap"], "--allow"),
    (["check", "--model", "llama-3.1-8b", "--gpu", "L44"], "unknown GPU"),
    (["check", "--model", "llama-3.1-8b", "--gpu", "L4", "--context", "12q"], "token count"),
    (["check", str(SAMPLE), "--only", "nope"], "no check named 'nope'"),
    (["check", "does-not-exist.yaml"], "no such check file"),
])
def test_bad_flags_one_line_exit_2(args, needle):
    assert needle in one_line_error(run(*args))


# ---- strategies ---------------------------------------------------------------------------------
def test_allow_streaming_lets_a_too_big_model_pass(tmp_path):
    f = tmp_path / "s.yaml"
    body = "version: 1\nchecks:\n  - name: big\n    model: llama-3.1-70b\n    gpu: L4\n    precision: bf16\n"
    f.write_text(body)
    assert run("check", f).exit_code == 1
    f.write_text(body + "    allow: [streaming]\n")
    r = run("check", f, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["results"][0]
    assert res["status"] == "pass" and res["strategy"] == "streaming"


def test_allow_offload_keeps_the_headroom_free():
    r = run("check", "--model", "llama-3.1-70b", "--gpu", "L4", "--precision", "int4", "--allow", "offload",
            "--min-headroom", "2GB", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["results"][0]
    assert res["strategy"] == "offload" and res["headroom_bytes"] == 2_000_000_000
    assert res["per_gpu_bytes"] <= res["budget_bytes"] - res["headroom_bytes"]


def test_tensor_parallel_count_training_and_defaults(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("""version: 1
defaults:
  precision: bf16
  context: 8k
checks:
  - name: tp4
    model: llama-3.1-70b
    gpu: 4xH100
  - name: pp3
    model: llama-3.1-8b
    gpu: 3xL4
  - name: too-big
    model: llama-3.1-70b
    gpu: L4
  - name: lora
    model: llama-3.1-8b
    gpu: 2xA100-80GB
    train: lora
    context: 2k
    grad_checkpointing: true
  - name: tp4-vllm
    model: llama-3.1-70b
    gpu: 4xH100
    runtime: vllm
  - name: pp3-vllm
    model: llama-3.1-8b
    gpu: 3xL4
    runtime: vllm
""")
    r = run("check", f, "--json")
    assert r.exit_code == 1, r.output
    by = {x["name"]: x for x in json.loads(r.stdout)["results"]}
    # transformers (the default runtime) places the 70B over the four GPUs with device_map: a layer split
    assert by["tp4"]["status"] == "pass" and by["tp4"]["strategy"] == "pipeline" and by["tp4"]["count"] == 4
    assert by["pp3"]["status"] == "pass" and by["pp3"]["strategy"] == "pipeline"
    assert by["too-big"]["status"] == "fail"
    assert by["lora"]["status"] == "pass" and by["lora"]["strategy"] == "data_parallel" and by["lora"]["count"] == 2
    # vLLM: tensor parallel over the four; 3 does not divide 32 heads, so three L4s are TP 1 x PP 3
    assert by["tp4-vllm"]["status"] == "pass" and by["tp4-vllm"]["strategy"] == "tensor_parallel"
    assert by["pp3-vllm"]["status"] == "pass" and by["pp3-vllm"]["strategy"] == "pipeline"


# ---- malformed files: FILE:LINE: field X ---------------------------------------------------------
GOOD = "version: 1\nchecks:\n  - name: a\n    model: llama-3.1-8b\n    gpu: L4\n"


@pytest.mark.parametrize("text,line,needle", [
    (GOOD + "    contxt: 8k\n", 6, "field contxt: unknown field (did you mean context?)"),
    (GOOD + "    batch: 0\n", 6, "field batch:"),
    (GOOD + "    precision: int3\n", 6, "field precision: unknown precision"),
    (GOOD + "    allow: [offload, swap]\n", 6, "field allow: item 2"),
    (GOOD + "    min_headroom: 10\n", 6, "field min_headroom:"),
    (GOOD + "    gpu: H100\n", 6, "field gpu: given twice"),
    (GOOD + "    kv_dtype: q4_0\n", 6, "field kv_dtype:"),
    (GOOD + "    gpus: 2\n", 6, "field gpus: data-parallel GPUs apply to training"),
    (GOOD + "  - name: a\n    model: llama-3.1-8b\n    gpu: L4\n", 6, "field name: 'a' is already"),
    (GOOD + "  - name: b\n    model: llama-3.1-8b\n", 6, "field gpu: required, missing"),
    (GOOD.replace("gpu: L4", "gpu: L44"), 5, "field gpu: unknown GPU"),
    ("version: 1\ndefaults:\n  runtime: tgi\n" + GOOD.split("\n", 1)[1], 3, "field runtime:"),
    ("version: 1\ndefaults:\n  context: 12q\n" + GOOD.split("\n", 1)[1], 3, "field context:"),
    ("version: 2\n" + GOOD.split("\n", 1)[1], 1, "field version: 2 is not supported"),
    (GOOD.split("\n", 1)[1], 1, "field version: required"),
    ("version: 1\nchecks: []\n", 2, "field checks:"),
    ("version: 1\nchecks:\n  - name: [a\n", 4, "not valid YAML"),
    ("version: 1\ncheks: []\n", 2, "field cheks: unknown top-level field"),
])
def test_malformed_file_points_at_line_and_field(tmp_path, text, line, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    msg = one_line_error(run("check", f))
    assert f"bad.yaml:{line}:" in msg and needle in msg, msg


# ---- the Hub: offline or unreachable is an error, never a pass ----------------------------------
NOT_BUNDLED = "some-org/not-a-bundled-model"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 with an empty Hugging Face cache."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_offline_hub_model_is_an_error_exit_2(tmp_path, offline_hub):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD + f"  - name: hub\n    model: {NOT_BUNDLED}\n    gpu: L4\n")
    r = run("check", f, "--json")
    assert r.exit_code == 2, r.output
    d = json.loads(r.stdout)
    assert (d["passed"], d["errors"]) == (1, 1)
    err = next(x for x in d["results"] if x["name"] == "hub")
    assert err["status"] == "error" and "HF_HUB_OFFLINE" in err["reason"] and "s.yaml:6" in err["reason"]
    assert "error: hub:" in r.stderr and "Traceback" not in r.output


def test_offline_hub_single_check_exit_2(offline_hub):
    r = run("check", "--model", NOT_BUNDLED, "--gpu", "L4")
    assert r.exit_code == 2 and "HF_HUB_OFFLINE" in r.stderr


def test_unreachable_hub_is_an_error(tmp_path, monkeypatch):
    # no HF_HUB_OFFLINE: conftest's guard makes every host unresolvable, as on a machine without network
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    r = run("check", "--model", NOT_BUNDLED, "--gpu", "L4", "--json")
    assert r.exit_code == 2, r.output
    assert json.loads(r.stdout)["results"][0]["status"] == "error"


def test_relative_model_path_is_relative_to_the_check_file(tmp_path, monkeypatch):
    cfg = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100, "torch_dtype": "bfloat16"}
    (tmp_path / "ci" / "models").mkdir(parents=True)
    (tmp_path / "ci" / "models" / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "ci" / "sizing.yaml").write_text(
        "version: 1\nchecks:\n  - name: tiny\n    model: ./models/config.json\n    gpu: 8GB\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (tmp_path, elsewhere, tmp_path / "ci"):
        monkeypatch.chdir(cwd)
        target = Path("..") / "ci" / "sizing.yaml" if cwd == elsewhere else (
            Path("sizing.yaml") if cwd.name == "ci" else Path("ci") / "sizing.yaml")
        r = run("check", target, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["results"][0]["status"] == "pass"
