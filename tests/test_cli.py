"""The CLI through typer's CliRunner: JSON contract, exit codes, one-line errors."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from llm_mem.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_405b_json_offline_contract():
    r = run("estimate", "meta-llama/Llama-3.1-405B", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["parameters"]["total"] == 405_853_388_800
    assert d["source"]["kind"] == "bundled"
    for key in ("model", "source", "parameters", "components", "total_bytes"):
        assert key in d
    for key in ("total", "embedding", "lm_head", "per_layer", "active"):
        assert key in d["parameters"]
    assert d["total_bytes"] == sum(c["bytes"] for c in d["components"])
    assert {c["name"] for c in d["components"]} >= {"weights", "kv_cache", "activations", "runtime_overhead"}


def test_json_stdout_is_only_json_notes_go_to_stderr():
    r = run("estimate", "llama-3.1-405b", "--precision", "int4", "--json")
    assert r.exit_code == 0
    json.loads(r.stdout)  # nothing but the object on stdout
    assert "bitsandbytes nf4" in r.stderr


def test_table_output_names_units_source_and_context():
    r = run("estimate", "meta-llama/Llama-3.1-8B", "--precision", "bf16", "--context", "32k", "--batch", "4")
    assert r.exit_code == 0
    out = r.stdout
    assert "GB (10^9 B)" in out and "GiB (2^30 B)" in out
    assert "bundled" in out and "context 32,768 tokens" in out and "per 1k tokens" in out
    assert "16.06" in out  # Llama-3.1-8B bf16 weights = 16.06 GB (issue #4)


def test_precision_all_side_by_side():
    r = run("estimate", "Qwen/Qwen3-30B-A3B", "--precision", "all")
    assert r.exit_code == 0
    for p in ("fp32", "bf16", "fp8", "int8", "int4"):
        assert p in r.stdout


def test_models_lists_aliases():
    r = run("models", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert len(rows) >= 40
    llama = next(x for x in rows if x["id"] == "meta-llama/Llama-3.1-405B")
    assert "llama-3.1-405b" in llama["aliases"] and llama["parameters"] == 405_853_388_800


@pytest.mark.parametrize("args,needle", [
    (["estimate", "llama-3.1-8b", "--precision", "int3"], "unknown precision"),
    (["estimate", "llama-3.1-8b", "--context", "12q"], "token count"),
    (["estimate", "llama-3.1-8b", "--batch", "0"], "--batch"),
    (["estimate", "llama-3.1-8b", "--quant", "mxfp4"], "MoE experts only"),
    (["estimate", "llama-3.1-8b", "--kv-dtype", "q4_0"], "llama.cpp cache type"),
    (["estimate", "lama-3.1-8b"], "did you mean"),
    (["estimate", "./does/not/exist.json"], "no such file"),
    (["estimate", "llama-3.1-8b", "--runtime", "tgi"], "--runtime"),
])
def test_bad_input_one_line_exit_2(args, needle):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr
    assert "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_malformed_config_file(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("{not json")
    r = run("estimate", str(p))
    assert r.exit_code == 2 and "not valid JSON" in r.stderr


def test_local_config_and_folder(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100, "torch_dtype": "bfloat16"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    for target in (str(tmp_path), str(tmp_path / "config.json")):
        r = run("estimate", target, "--json")
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout)
        assert d["source"]["kind"] == "local"
        # 100*64 embed + 2 layers (4*64*... ) computed independently: embed 6400, head 6400, final norm 64
        per_layer = 64 * 64 + 2 * (32 * 64) + 64 * 64 + 3 * 64 * 128 + 2 * 64
        assert d["parameters"]["total"] == 6400 + 6400 + 64 + 2 * per_layer


def test_version_and_help():
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.startswith("llm-mem ")
    for cmd in ("estimate", "models"):
        h = run(cmd, "--help")
        assert h.exit_code == 0 and "Example" in h.stdout


def test_catalog_fifo_is_refused_not_waited_on(tmp_path):
    import os

    fifo = tmp_path / "catalog.yaml"
    os.mkfifo(fifo)  # no writer: reading it would block forever
    r = run("gpus", "--catalog", str(fifo))
    assert r.exit_code == 2
    assert "not a regular file" in r.output and len(r.output.strip().splitlines()) == 1


def test_catalog_alias_bomb_error_is_one_short_line(tmp_path):
    import yaml

    from llm_mem.catalog.load import _shipped_catalog_path

    entry = next(d for d in yaml.safe_load(_shipped_catalog_path().read_text())["devices"] if d["id"] == "L4-24GB")
    entry = {**entry, "id": "X"}
    entry.pop("aliases", None)
    text = yaml.safe_dump({"devices": [entry]}).rstrip() + "\n  junk:\n"
    text += '    a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for prev, name in zip("abcdef", "bcdefg"):
        text += f"    {name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
    text += "  aliases: *g\n"  # 9^7 = 4.8 million strings when expanded
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    r = run("gpus", "--catalog", str(path))
    assert r.exit_code == 2
    assert "field 'aliases'" in r.output
    assert len(r.output) < 1100 and len(r.output.strip().splitlines()) == 1


# ---- training frameworks' presets (issue 17) ------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (("--trainer", "torchtune"), "--trainer"),
    (("--fused-ce",), "--fused-ce"),
    (("--train", "lora", "--trainer", "megatron"), "unknown trainer"),
])
def test_trainer_flags_without_training_are_one_line_exit_2(args, needle):
    r = run("estimate", "meta-llama/Llama-3.1-8B", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_trainer_preset_in_json_workload_and_notes():
    r = run("estimate", "meta-llama/Llama-3.1-8B", "--train", "lora", "--trainer", "unsloth", "--seq", "2048",
            "--no-activation-offloading", "--json")
    assert r.exit_code == 0, r.output
    w = json.loads(r.stdout)["workload"]
    assert (w["trainer"], w["fused_ce"], w["grad_checkpointing"], w["activation_offloading"]) == (
        "unsloth", True, True, False)
    assert "unsloth preset" in r.stderr


def test_console_entry_builds_only_the_named_command(monkeypatch, capsys):
    # main() builds just the command a run names (llm_mem.cli.main); its output and exit codes equal the full
    # app's, and anything that is not a command name (help, --version) goes through the full app.
    from llm_mem import cli

    def run_main(argv: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["llm-mem", *argv])
        with pytest.raises(SystemExit) as e:
            cli.main()
        out = capsys.readouterr()
        return int(e.value.code or 0), out.out, out.err

    argv = ["estimate", "meta-llama/Llama-3.1-8B", "--context", "8k", "--json"]
    code, out, _ = run_main(argv)
    full = CliRunner().invoke(app, argv)
    assert code == 0 and json.loads(out) == json.loads(full.stdout)
    code, _, err = run_main(["plan", "llama-3.1-8b", "--contxt", "3"])
    assert code == 2 and err.startswith("error: No such option: --contxt")
    code, out, _ = run_main(["--version"])
    assert code == 0 and out.startswith("llm-mem ")
