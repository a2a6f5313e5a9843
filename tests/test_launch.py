"""Every printed launch command is valid for its engine: each flag of a `vllm serve` or `llama-server`
line is in that engine's real argument list (extracted from the pinned sources by scripts/extract_*_flags.py
into tests/data/engines/), the Python snippets parse, and the transformers one runs on CPU."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm_mem.cli import app

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ROOT / "tests" / "data" / "engines"
runner = CliRunner()


def _flags(name: str) -> tuple[str, set[str]]:
    lines = (ENGINES / name).read_text().splitlines()
    return lines[0], {x.strip() for x in lines[1:] if x.strip()}


VLLM_VERSION, VLLM_FLAGS = _flags("vllm_serve_flags.txt")
LLAMA_VERSION, LLAMA_FLAGS = _flags("llama_server_flags.txt")


def test_flag_lists_name_the_versions_modelled():
    assert VLLM_VERSION.startswith("# vllm 0.34.0") and LLAMA_VERSION.startswith("# llama.cpp b10470")
    assert {"--tensor-parallel-size", "--enable-expert-parallel", "--max-model-len", "--kv-cache-dtype"} <= VLLM_FLAGS
    assert {"-ngl", "-np", "-fa", "-ctk", "-ctv", "--n-cpu-moe", "-hf", "-ts"} <= LLAMA_FLAGS


def emitted_flags(line: str) -> tuple[str | None, list[str]]:
    """(engine, flags) of one launch line; comments after '#' are not part of the command."""
    command = line.split(" #", 1)[0].strip()
    if command.startswith("#") or not command:
        return None, []
    words = shlex.split(command)
    if words[:2] == ["vllm", "serve"]:
        return "vllm", [w.split("=", 1)[0] for w in words[3:] if w.startswith("-")]
    if words[0] == "llama-server":
        return "llamacpp", [w.split("=", 1)[0] for w in words[1:] if w.startswith("-")]
    return None, []


def check_launch(launch: list[str], runtime: str) -> None:
    for line in launch:
        if "\n" in line or line.startswith(("import ", "from ")):
            ast.parse(line)  # a Python snippet
            assert ("airllm" in line) or runtime == "transformers"
            continue
        engine, flags = emitted_flags(line)
        if engine is None:
            continue
        assert engine == runtime, f"{runtime} plan printed a {engine} command: {line}"
        known = VLLM_FLAGS if engine == "vllm" else LLAMA_FLAGS
        unknown = [f for f in flags if f not in known]
        assert not unknown, f"{engine} has no {unknown} ({line})"


def plan_json(*args: str) -> dict:
    r = runner.invoke(app, ["plan", *args, "--json", "--host-ram", "256GB"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


PLANS = [
    ("meta-llama/Llama-3.1-405B", "--precision", "fp8", "--gpu", "8xH100", "--runtime", "vllm"),
    ("meta-llama/Llama-3.1-405B", "--precision", "bf16", "--gpu", "H100", "--runtime", "vllm"),
    ("deepseek-ai/DeepSeek-V3", "--gpu", "8xH200", "--runtime", "vllm", "--context", "163840"),
    ("meta-llama/Llama-2-70b-hf", "--quant", "awq", "--gpu", "2x3090", "--runtime", "vllm", "--context", "16384"),
    ("meta-llama/Llama-3.1-8B", "--gpu", "L4", "--runtime", "vllm", "--context", "8k", "--kv-dtype", "fp8",
     "--max-num-seqs", "64", "--gpu-memory-utilization", "0.95"),
    ("meta-llama/Llama-3.1-8B", "--quant", "Q4_K_M", "--gpu", "3060", "--context", "8192", "--kv-dtype", "q8_0",
     "--batch", "4"),
    ("Qwen/Qwen3-30B-A3B", "--quant", "Q4_K_M", "--gpu", "8GB", "--context", "8192"),
    ("meta-llama/Llama-2-13b-hf", "--quant", "Q4_K_M", "--gpu", "2xRTX-4060-8GB", "--context", "4096"),
    ("meta-llama/Llama-3.1-405B", "--precision", "int4", "--gpu", "8GB", "--context", "2048"),
    ("meta-llama/Llama-3.1-70B", "--precision", "int4", "--gpu", "2x4090"),
    ("huggyllama/llama-7b", "--precision", "fp16", "--gpu", "T4"),
    ("meta-llama/Llama-3.1-8B", "--gpu", "2xT4", "--runtime", "vllm"),
    ("meta-llama/Llama-2-70b-hf", "--quant", "Q4_K_M", "--gpu", "4090,3060"),
    ("Qwen/Qwen3-30B-A3B", "--quant", "Q4_K_M", "--gpu", "3060,4060", "--context", "32k"),
    ("meta-llama/Llama-2-70b-hf", "--precision", "int4", "--gpu", "4090,3090"),
]


@pytest.mark.parametrize("args", PLANS, ids=lambda a: " ".join(a[:5]))
def test_every_launch_flag_is_the_engines_own(args):
    d = plan_json(*args)
    runtime = d["workload"]["runtime"]
    for opt in d["options"]:
        assert opt["runtime"] == runtime
        check_launch(opt["launch"], runtime)
        assert isinstance(opt["launch"], list) and all(isinstance(x, str) for x in opt["launch"])


def test_vllm_on_a_gpu_without_bf16_serves_fp16():
    # vllm/platforms/cuda.py check_if_supports_dtype: a bf16 model below compute capability 8.0 is a ValueError
    # ("You can use float16 instead ... --dtype=half"); the plan says so and launches with --dtype float16
    d = plan_json("meta-llama/Llama-3.1-8B", "--gpu", "2xT4", "--runtime", "vllm")
    serve = next(x for x in d["recommended"]["launch"] if x.startswith("vllm serve"))
    assert "--dtype float16" in serve
    assert any("has no bf16" in n for n in d["notes"])
    est = json.loads(runner.invoke(app, ["estimate", "meta-llama/Llama-3.1-8B", "--gpu", "T4", "--runtime", "vllm",
                                         "--json"]).stdout)
    assert (est["workload"]["precision"], est["workload"]["kv_dtype"], est["weights"]["format"]) == ("fp16", "fp16",
                                                                                                  "fp16")
    a100 = plan_json("meta-llama/Llama-3.1-8B", "--gpu", "A100", "--runtime", "vllm")
    assert "--dtype" not in next(x for x in a100["recommended"]["launch"] if x.startswith("vllm serve"))
    bad = runner.invoke(app, ["estimate", "meta-llama/Llama-3.1-8B", "--gpu", "T4", "--runtime", "vllm",
                              "--precision", "bf16"])
    assert bad.exit_code == 2 and "refuses bf16 on T4-16GB" in bad.output


def test_fp8_405b_on_vllm_loads_the_published_fp8_checkpoint():
    d = plan_json("meta-llama/Llama-3.1-405B", "--precision", "fp8", "--gpu", "8xH100", "--runtime", "vllm",
                  "--context", "8192")
    rec = d["recommended"]
    serve = next(x for x in rec["launch"] if x.startswith("vllm serve"))
    assert serve.startswith("vllm serve meta-llama/Llama-3.1-405B-Instruct-FP8 ")
    assert "--tensor-parallel-size 8" in serve and "--max-model-len 8192" in serve


def test_llamacpp_command_carries_cache_types_slots_and_flash_attention():
    d = plan_json("meta-llama/Llama-3.1-8B", "--quant", "Q4_K_M", "--gpu", "3060", "--context", "8192",
                  "--kv-dtype", "q8_0", "--batch", "4")
    line = next(x for x in d["recommended"]["launch"] if x.startswith("llama-server"))
    words = shlex.split(line)
    get = {words[i]: words[i + 1] for i in range(len(words) - 1) if words[i].startswith("-")}
    assert get["-ctk"] == "q8_0" and get["-ctv"] == "q8_0" and get["-fa"] == "on"  # a quantized V needs FA
    assert get["-np"] == "4" and get["-c"] == str(4 * 8192)
    assert get["-hf"] == "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M"


def test_moe_expert_offload_prints_n_cpu_moe():
    d = plan_json("Qwen/Qwen3-30B-A3B", "--quant", "Q4_K_M", "--gpu", "8GB", "--context", "8192")
    opt = next(o for o in d["options"] if o["strategy"] == "expert_offload")
    line = next(x for x in opt["launch"] if x.startswith("llama-server"))
    assert f"--n-cpu-moe {opt['cpu_moe_layers']}" in line


def test_transformers_snippet_names_dtype_and_leaves_room_under_usable_memory():
    d = plan_json("huggyllama/llama-7b", "--precision", "fp16", "--gpu", "T4")
    rec = d["recommended"]
    (snippet,) = rec["launch"]
    assert "dtype=torch.float16" in snippet
    room = float(re.search(r'0: "([0-9.]+)GiB"', snippet).group(1)) * 2**30
    assert room <= rec["budget_bytes"] - (rec["per_gpu_bytes"] - _weights(d))  # KV and activations stay free


def _weights(d: dict) -> int:
    r = runner.invoke(app, ["estimate", d["model"], "--precision", d["workload"]["precision"], "--json"])
    return json.loads(r.stdout)["weights"]["bytes"]


def test_int4_plans_pass_a_bitsandbytes_config_and_airllm_compression():
    d = plan_json("meta-llama/Llama-3.1-405B", "--precision", "int4", "--gpu", "8GB", "--context", "2048")
    stream = next(o for o in d["options"] if o["strategy"] == "streaming")
    assert 'compression="4bit"' in stream["launch"][0]
    single = next(o for o in d["options"] if o["strategy"] == "single")
    assert single["launch"] == []  # does not fit: no command
    multi = plan_json("meta-llama/Llama-3.1-70B", "--precision", "int4", "--gpu", "2x4090")["recommended"]
    assert "BitsAndBytesConfig(load_in_4bit=True" in multi["launch"][0] and '1: "' in multi["launch"][0]


@pytest.mark.torch
def test_transformers_snippet_runs_on_cpu_with_a_tiny_model(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=100, max_position_embeddings=256)
    model_dir = tmp_path / "tiny"
    transformers.LlamaForCausalLM(cfg).save_pretrained(model_dir)
    (model_dir / "config.json").write_text(json.dumps({**json.loads((model_dir / "config.json").read_text()),
                                                        "torch_dtype": "bfloat16"}))
    d = plan_json(str(model_dir), "--gpu", "T4", "--precision", "bf16", "--context", "128")
    (snippet,) = d["recommended"]["launch"]
    ast.parse(snippet)
    # no GPU in CI: the same call with its device map pointed at the CPU
    code = re.sub(r'device_map="auto", max_memory=\{[^}]*\}', 'device_map="cpu"', snippet)
    scope: dict = {}
    exec(compile(code, "<launch>", "exec"), scope)
    assert scope["model"].dtype == torch.bfloat16


def _doc_plans() -> list[list[str]]:
    """Every `llm-mem plan MODEL ...` command in the README and docs/."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in path.read_text().splitlines():
            m = re.search(r"llm-mem plan ([^`#|]+)", line)
            if m and not m.group(1).strip().startswith(("-", "MODEL")):
                out.append(shlex.split(m.group(1).strip()))
    return out


@pytest.mark.parametrize("args", _doc_plans(), ids=lambda a: " ".join(a)[:60])
def test_plans_in_the_docs_print_valid_commands(args):
    if any(a in ("--sweep", "--plot", "--max-context", "--max-batch") for a in args):
        pytest.skip("charts and searches print no launch list of their own")
    r = runner.invoke(app, ["plan", *args, "--json"])
    if r.exit_code != 0:
        pytest.fail(f"`llm-mem plan {' '.join(args)}` failed: {r.output}")
    d = json.loads(r.stdout)
    if "options" not in d:
        return
    for opt in d["options"]:
        check_launch(opt["launch"], d["workload"]["runtime"])


def test_llama_cpp_c_and_b_mean_what_they_mean_to_llama_server():
    """-c is llama.cpp's context over all slots (each of -np slots gets c / np) and -b its logical batch;
    the printed command gives them back unchanged."""
    d = plan_json("meta-llama/Llama-3.1-8B", "--quant", "Q4_K_M", "--gpu", "3060", "-np", "4", "-c", "32k",
                  "-b", "1024")
    assert d["workload"]["context"] == 8192 and d["workload"]["batch_size"] == 1024
    get = _words(next(x for x in d["recommended"]["launch"] if x.startswith("llama-server")))
    assert get["-c"] == "32768" and get["-np"] == "4" and get["-b"] == "1024"
    for args, needle in ((["-c", "32k"], "llamacpp setting"),
                         (["--quant", "Q4_K_M", "-c", "32k", "--context", "8k"], "not both")):
        r = runner.invoke(app, ["estimate", "meta-llama/Llama-3.1-8B", *args])
        assert r.exit_code == 2 and needle in r.output and len(r.output.strip().splitlines()) == 1


def _words(line: str) -> dict[str, str]:
    w = shlex.split(line)
    return {w[i]: w[i + 1] for i in range(len(w) - 1) if w[i].startswith("-")}
