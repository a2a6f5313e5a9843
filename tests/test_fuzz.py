"""Attacks on every input boundary (hypothesis): mutated real config.json files, option values, workloads
and command lines. Only the project's own errors (LlmMemError, exit code 2 in one line) may come out;
every estimate that is returned is finite, non-negative, and has no empty part the model has.

Examples are derandomized so CI is stable; LLM_MEM_FUZZ_EXAMPLES=N runs N examples per test instead
(the hardening pass ran 20,000 config mutations and 5,000 command lines this way)."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from llm_mem.cli import app
from llm_mem.errors import ConfigError, LlmMemError, UsageError
from llm_mem.estimate import estimate
from llm_mem.report import Report
from llm_mem.sources import parse
from llm_mem.sources.parse import parse_config
from llm_mem.sources.validate import _COUNTS, _FLAGS, _FRACTIONS, _SIZES
from llm_mem.spec import ResolvedModel, Source
from llm_mem.units import parse_size, parse_tokens
from llm_mem.workload import Workload

DATA = Path(__file__).parent / "data" / "hf-configs"
BUNDLED = Path(parse.__file__).resolve().parent.parent / "data" / "models"


def _native(raw: dict[str, Any]) -> bool:
    return parse.is_native(raw) if hasattr(parse, "is_native") else raw.get("model_type") in parse.KNOWN_FAMILIES


# Real configs with a native layout (a model type transformers would have to build is left out: each
# mutation would be a new meta-device construction, seconds each).
CONFIGS = [c for c in (json.loads(p.read_text()) for p in sorted(DATA.glob("*/config.json")) + sorted(BUNDLED.glob("*.json")))
           if _native(c)]
N = int(os.environ.get("LLM_MEM_FUZZ_EXAMPLES", "0"))
FIELDS = sorted({*_SIZES, *_COUNTS, *_FLAGS, *_FRACTIONS, "layer_types", "mlp_only_layers", "architectures",
                 "torch_dtype", "hidden_act", "quantization_config", "text_config", "model_type", "image_size",
                 "patch_size", "num_channels", "mm_tokens_per_image", "image_seq_length", "spatial_merge_size",
                 "vision_feature_layer", "vision_config"})
QUANT_FIELDS = ["quant_method", "bits", "w_bit", "group_size", "q_group_size", "weight_block_size", "load_in_4bit",
                "config_groups", "quant_algo"]
WORKLOADS = {"default": {}, "vllm": {"runtime": "vllm"}, "llamacpp": {"quant": "Q4_K_M"},
             "lora": {"train": "lora"}}


def _fuzz_settings(examples: int) -> Any:
    return settings(max_examples=N or examples, deadline=None, derandomize=not N, database=None,
                    suppress_health_check=list(HealthCheck))


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = {"text_config": value} if i % 2 else [value]
    return value


JUNK = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from(["true", "false", "", "12", "abc", "bfloat16", "nan", "-1", "x" * 5000]),
    st.integers(min_value=-2**70, max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 3, 7, 64, 128, 512, 513, 2**16, 2**17 + 1, 2**20, 2**23, 2**40, 10**7, 2**63,
                     2**64, 10**5000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 0.5, 4096.0]),
    st.lists(st.one_of(st.integers(-3, 600), st.text(max_size=3), st.none()), max_size=4),
    st.dictionaries(st.sampled_from(["a", "hidden_size", "bits", "weights"]), st.integers(-2, 2**20), max_size=3),
    st.builds(_nested, st.integers(1, 80)),
)


PLAUSIBLE = st.one_of(st.integers(1, 8), st.integers(1, 2**17), st.sampled_from([0, 1, 2, 3, 7, 64, 96, 512, 4096]))


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A real config with 1-4 keys deleted, retyped, nested or set to junk."""
    cfg = dict(draw(st.sampled_from(CONFIGS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "set", "set", "field", "quant", "swap", "retune", "retune", "inner"]))
        inner = sorted(k for k, v in cfg.items() if isinstance(v, dict) and v)
        if op == "inner" and inner:  # inside text_config, vision_config, rope_scaling...
            key = draw(st.sampled_from(inner))
            sub = dict(cfg[key])
            sub[draw(st.sampled_from(sorted(sub) + FIELDS))] = draw(st.one_of(JUNK, PLAUSIBLE))
            cfg[key] = sub
        elif op == "retune":  # a plausible but unusual size: the estimators must cope, not the validator
            keys = sorted(k for k, v in cfg.items() if isinstance(v, int) and not isinstance(v, bool)
                          and k != "model_type")
            if keys:
                cfg[draw(st.sampled_from(keys))] = draw(PLAUSIBLE)
        elif op == "delete" and cfg:
            cfg.pop(draw(st.sampled_from(sorted(cfg))), None)
        elif op == "set" and cfg:
            cfg[draw(st.sampled_from(sorted(cfg)))] = draw(JUNK)
        elif op == "field":
            cfg[draw(st.sampled_from(FIELDS))] = draw(JUNK)
        elif op == "quant":
            qc = cfg.get("quantization_config")
            qc = dict(qc) if isinstance(qc, dict) else {"quant_method": draw(st.sampled_from(["gptq", "awq", "fp8"]))}
            qc[draw(st.sampled_from(QUANT_FIELDS))] = draw(st.one_of(JUNK, st.sampled_from([-1, 0, [128, 128], [0]])))
            cfg["quantization_config"] = qc
        else:  # a bool where a number is, a string where a bool is, the reverse
            keys = sorted(k for k, v in cfg.items() if isinstance(v, (bool, int, float, str)))
            if keys:
                k = draw(st.sampled_from(keys))
                v = cfg[k]
                cfg[k] = str(v).lower() if isinstance(v, bool) else bool(v) if isinstance(v, (int, float)) else True
    return cfg


@contextmanager
def _native_only():
    """A mutation that makes a config non-native would send it to transformers: refuse it instead."""
    def refuse(*args: Any) -> Any:
        raise ConfigError("fuzz: not a native model type")

    with mock.patch.object(parse, "counted_spec", refuse) if hasattr(parse, "counted_spec") else mock.MagicMock():
        yield


def _check_report(r: Report, spec: Any) -> None:
    """The invariants a returned estimate keeps (Report's own validator checks them too)."""
    assert r.total_bytes == sum(c.bytes for c in r.components) - r.overlap_bytes and r.total_bytes > 0
    for c in r.components:
        assert 0 <= c.low <= c.bytes <= c.high, c
    assert r.host_bytes >= 0 and r.weights.bytes > 0 and r.parameters.total > 0
    if r.workload.train is None:
        assert r.component("weights") > 0 or r.host_bytes > 0
        if r.kv_cache.bytes_per_token > 0 and r.host_bytes == 0:
            assert r.component("kv_cache") > 0
    else:
        assert r.component("activations") > 0
        if r.workload.train.value in ("lora", "qlora"):
            assert r.component("lora_adapters") > 0
    assert all(b >= 0 for b in r.weights.per_layer_bytes) and len(r.weights.per_layer_bytes) == spec.num_layers


@_fuzz_settings(400)
@given(mutated_configs())
def test_parse_config_raises_only_its_own_errors(cfg):
    with _native_only():
        try:
            spec = parse_config(cfg)
        except LlmMemError as err:
            assert "\n" not in err.one_line() and len(err.one_line()) < 400
            return
    assert spec.num_layers == len(spec.layer_types) >= 1 and spec.head_dim >= 1 and spec.num_kv_heads >= 1


@_fuzz_settings(60)
@given(mutated_configs(), st.sampled_from(sorted(WORKLOADS)))
def test_every_returned_estimate_is_finite_and_complete(cfg, workload):
    with _native_only():
        try:
            spec = parse_config(cfg)
        except LlmMemError:
            return
    model = ResolvedModel(name="fuzzed", spec=spec, source=Source(kind="local", location="fuzz"))
    try:
        report = estimate(model, Workload(**WORKLOADS[workload]))
    except LlmMemError:
        return
    _check_report(report, spec)


@pytest.mark.parametrize("depth", [40, 500, 5000])
def test_deep_nesting_is_refused_not_recursed(depth):
    with pytest.raises(ConfigError, match="nests"):
        parse_config({**CONFIGS[0], "text_config": _nested(depth)})


@pytest.mark.parametrize("field,value,match", [
    ("num_hidden_layers", 10_000_000, "exceeds 512"),
    ("max_position_embeddings", True, "true/false, not an integer"),
    ("tie_word_embeddings", "false", "not true or false"),
    ("sliding_window", True, "true/false"),
    ("sliding_window", -4096, "at least 0"),
    ("hidden_size", float("nan"), "float, not an integer"),
    ("vocab_size", float("inf"), "float, not an integer"),
    ("intermediate_size", [14336], "list, not an integer"),
    ("num_key_value_heads", 0, "at least 1"),
    ("num_key_value_heads", 5, "not a multiple"),
    ("attention_dropout", float("nan"), "rate between 0 and 1"),
    ("hidden_size", 10**5000, "beyond 64 bits"),
], ids=lambda v: str(v)[:20] if not isinstance(v, int) or abs(v) < 10**20 else "huge")
def test_named_field_refused_in_one_line(field, value, match):
    llama = json.loads((BUNDLED / "meta-llama__Llama-3.1-8B.json").read_text())
    with pytest.raises(ConfigError, match=match) as info:
        parse_config({**llama, field: value})
    assert "\n" not in info.value.one_line()
    if "not a multiple" not in match:
        assert field in info.value.one_line()


def test_experts_per_token_at_most_experts():
    mixtral = json.loads((DATA / "mistralai__Mixtral-8x7B-v0.1" / "config.json").read_text())
    with pytest.raises(ConfigError, match="9 experts per token but only 8"):
        parse_config({**mixtral, "num_experts_per_tok": 9})
    with pytest.raises(ConfigError, match="num_local_experts = -8"):
        parse_config({**mixtral, "num_local_experts": -8})


def test_a_763_byte_config_with_ten_million_layers_is_refused_before_allocating():
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "vocab_size": 32000,
           "intermediate_size": 11008, "num_hidden_layers": 10_000_000}
    with pytest.raises(ConfigError, match="num_hidden_layers = 10,000,000 exceeds 512"):
        parse_config(cfg)


def test_deepseek_without_mla_ranks_is_one_line():
    ds = json.loads((DATA / "deepseek-ai__DeepSeek-V3" / "config.json").read_text())
    for key in ("kv_lora_rank", "qk_rope_head_dim", "moe_intermediate_size"):
        with pytest.raises(ConfigError, match=key):
            parse_config({k: v for k, v in ds.items() if k != key})
    with pytest.raises(ConfigError, match="kv_lora_rank = -512"):
        parse_config({**ds, "kv_lora_rank": -512})


@pytest.mark.parametrize("group", [-1, 128])
def test_awq_and_gptq_group_minus_one_is_per_channel(group):
    """AutoAWQ / AutoGPTQ group_size -1: no grouping, one scale row per output channel; smaller than group
    128 (fewer scales), never negative."""
    for name in ("TheBloke__Llama-2-7B-AWQ", "TheBloke__Trurl-2-7B-GPTQ"):
        cfg = json.loads((DATA / name / "config.json").read_text())
        cfg["quantization_config"] = {**cfg["quantization_config"], "group_size": group}
        model = ResolvedModel(name=name, spec=parse_config(cfg), source=Source(kind="local", location=name))
        report = estimate(model, Workload())
        assert report.component("weights") > 0
        if group == -1:
            cfg["quantization_config"]["group_size"] = 128
            grouped = estimate(ResolvedModel(name=name, spec=parse_config(cfg), source=model.source), Workload())
            assert 0 < report.component("weights") < grouped.component("weights")
    with pytest.raises(ConfigError, match="group_size = 0"):
        parse_config({**cfg, "quantization_config": {**cfg["quantization_config"], "group_size": 0}})


def test_every_real_config_passes_validation():
    for cfg in CONFIGS:
        parse_config(cfg)


@pytest.mark.parametrize("shape,offsets", [([-3, 4], [0, 24]), ([3.5], [0, 7]), ([True], [0, 2]), (["4"], [0, 8]),
                                           ([2**40] * 3, [0, 2]), ([2] * 9, [0, 1024]), ([2], [4, 0]),
                                           ([2], [-4, 0]), ([2], [0, 2**70])])
def test_safetensors_header_refuses_bad_shapes_and_offsets(shape, offsets):
    from llm_mem.sources.safetensors import parse_header

    header = json.dumps({"t": {"dtype": "F16", "shape": shape, "data_offsets": offsets}}).encode()
    with pytest.raises(ConfigError, match=r"shape|data_offsets|elements|ends at byte"):
        parse_header(header, "x.safetensors", 1024)


@_fuzz_settings(300)
@given(st.dictionaries(st.sampled_from(["dtype", "shape", "data_offsets", "x"]), JUNK, max_size=4))
def test_safetensors_header_entries_raise_only_config_errors(entry):
    from llm_mem.sources.safetensors import parse_header

    try:
        raw = json.dumps({"model.layers.0.mlp.up_proj.weight": entry}).encode()
    except ValueError:  # NaN is JSON for Python only; a 5000-digit int has no str
        return
    try:
        tensors = parse_header(raw, "x.safetensors", 2**40)
    except ConfigError:
        return
    assert all(t.numel >= 0 and t.nbytes >= 0 for t in tensors)


def test_numbers_too_long_for_int_are_one_config_error():
    from llm_mem.sources.configfile import parse_json_object

    with pytest.raises(ConfigError, match="number too long"):
        parse_json_object(b'{"hidden_size": ' + b"9" * 5000 + b"}", "config.json")


# ---- option values ---------------------------------------------------------------------------------
NUMBERISH = st.one_of(
    st.from_regex(r"\A[-+]?[0-9]{0,400}\.?[0-9]{0,30}([eE][-+]?[0-9]{1,4})?\s?(k|K|m|M|GB|GiB|TB|MiB|kb|%|x)?\Z"),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-0", "0.0000001", "9" * 400, "9" * 5000 + "k", "",
                     " ", "1_000", "0x10", "８", "1e-320"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-2**80, max_value=2**80).map(str),
)


@_fuzz_settings(400)
@given(NUMBERISH)
def test_size_and_token_parsers_raise_only_usage_errors(text):
    for parser in (parse_size, parse_tokens):
        try:
            value = parser(text)
        except UsageError as err:
            assert "\n" not in err.one_line() and len(err.one_line()) < 300
        else:
            assert isinstance(value, int) and 1 <= value <= 2**60


WORKLOAD_VALUES = st.one_of(JUNK, NUMBERISH, st.sampled_from(["vllm", "llamacpp", "lora", "qlora", "full", "Q4_K_M",
                                                              "all", "fp8", "q8_0", "on", "int4"]))


@_fuzz_settings(400)
@given(st.dictionaries(st.sampled_from(sorted(Workload.model_fields)), WORKLOAD_VALUES, min_size=1, max_size=3))
def test_workload_raises_only_setting_errors(settings_):
    try:
        w = Workload(**settings_)
    except UsageError as err:
        assert "\n" not in err.one_line() and len(err.one_line()) < 400
        return
    assert 1 <= w.context <= 2**26 and 1 <= w.batch <= 2**20


# ---- the command line ------------------------------------------------------------------------------
runner = CliRunner()
TINY = "Qwen/Qwen2.5-0.5B"
# flag -> the arguments that make it apply (its runtime or mode)
FLAGS: dict[str, list[str]] = {
    "--context": [], "--batch": [], "--lora-rank": ["--train", "lora"], "--zero": ["--train", "full"],
    "--gpus": ["--train", "full"], "--tensor-parallel-size": ["--runtime", "vllm"],
    "--pipeline-parallel-size": ["--runtime", "vllm"], "--data-parallel-size": ["--runtime", "vllm"],
    "--gpu-memory-utilization": ["--runtime", "vllm"], "--max-num-seqs": ["--runtime", "vllm"],
    "--max-num-batched-tokens": ["--runtime", "vllm"], "--block-size": ["--runtime", "vllm"],
    "--ubatch-size": ["--quant", "Q4_K_M"], "--batch-size": ["--quant", "Q4_K_M"],
    "--parallel": ["--quant", "Q4_K_M"], "--n-gpu-layers": ["--quant", "Q4_K_M"],
    "--n-cpu-moe": ["--quant", "Q4_K_M"], "--gpu": [],
}
PLAN_FLAGS = {"--disk-gbps": ["--gpu", "4GB"], "--cpu-gbps": ["--gpu", "4GB"], "--host-ram": ["--gpu", "4GB"]}


def _cli(args: list[str]) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code in (0, 1, 2), (args, r.exit_code, r.stderr[-500:])
    if r.exit_code == 2:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr[-500:])


@_fuzz_settings(80)
@given(st.sampled_from(sorted(FLAGS)), NUMBERISH)
def test_estimate_numeric_options_exit_0_or_2(flag, value):
    _cli(["estimate", TINY, *FLAGS[flag], f"{flag}={value}"])


@_fuzz_settings(40)
@given(st.sampled_from(sorted(PLAN_FLAGS)), NUMBERISH)
def test_plan_numeric_options_exit_0_1_or_2(flag, value):
    _cli(["plan", TINY, *PLAN_FLAGS[flag], f"{flag}={value}"])


@_fuzz_settings(30)
@given(st.sampled_from(["--min-headroom", "--context", "--batch", "--gpu"]), NUMBERISH)
def test_check_numeric_options_exit_0_1_or_2(flag, value):
    base = ["check", "--model", TINY] + ([] if flag == "--gpu" else ["--gpu", "L4"])
    _cli([*base, f"{flag}={value}"])


@pytest.mark.parametrize("args,needle", [
    (["plan", TINY, "--gpu", "4GB", "--disk-gbps", "-1"], "--disk-gbps: -1.0 GB/s must be a positive number"),
    (["plan", TINY, "--gpu", "4GB", "--disk-gbps", "nan"], "--disk-gbps: nan GB/s"),
    (["plan", TINY, "--gpu", "4GB", "--cpu-gbps", "1e-300"], "--cpu-gbps: 1e-300 GB/s is outside"),
    (["plan", TINY, "--gpu", "4GB", "--host-ram", "0.0000001"], "less than one byte"),
    (["plan", TINY, "--gpu", "4GB", "--host-ram", "9" * 400 + "TB"], "over 1 EiB"),
    (["estimate", TINY, "--context", "9" * 400 + "k"], "--context: token count"),
    (["estimate", TINY, "--runtime", "vllm", "--gpu-memory-utilization", "0"], "0.0 must be above 0"),
    (["estimate", TINY, "--runtime", "vllm", "--gpu-memory-utilization", "nan"], "nan is not a number"),
    (["plan", TINY, "--gpus", "2", "--gpu", "4xH100"], "--gpus: data-parallel GPUs apply to training"),
    (["plan", TINY, "--train", "full", "--gpus", "2", "--gpu", "4xH100"], "--gpus 2 and --gpu 4xH100"),
    (["plan", "--gpu", "8GB", "--disk-gbps", "5"], "--disk-gbps does not apply to the fit table"),
    (["plan", "--gpu", "8GB", "--host-ram", "5GB"], "--host-ram does not apply"),
    (["plan", TINY, "--gpu", "L4", "--max-context", "--disk-gbps", "5"], "--disk-gbps does not apply to --max-context"),
    (["plan", TINY, "--gpu", "L4", "--max-batch", "--host-ram", "5GB"], "--host-ram does not apply to --max-batch"),
    (["plan", TINY, "--gpu", "L4", "--sweep", "context", "--cpu-gbps", "5"], "--cpu-gbps does not apply to --sweep"),
    (["estimate", TINY, "--catalog", "x.yaml"], "--catalog names GPUs"),
    (["estimate", TINY, "--precision", "all", "--verify"], "--verify measures one precision"),
])
def test_numbers_and_flags_that_do_not_apply_are_one_line_errors(args, needle):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_max_batch_never_reports_its_search_cap_as_the_answer():
    """A tiny model on eight big GPUs fits more than MAX_BATCH_SEARCH sequences: the search goes on, up to
    the largest --batch accepted, and says "at least" when it stops there."""
    from llm_mem.planner import MAX_BATCH_SEARCH

    r = runner.invoke(app, ["plan", "facebook/opt-125m", "--gpu", "8xH200", "--context", "16", "--max-batch",
                            "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["largest"] != MAX_BATCH_SEARCH and out["largest"] > MAX_BATCH_SEARCH
    assert (out["limit"] is not None) == (out["largest"] == 2**20)


# ---- the hostile command lines of the CLI hardening pass (each used to exit 3, hang, print two lines, or
# ignore a flag): now one line and exit 2, or a sane answer ------------------------------------------------
def _one_line_error(args: list[str], needle: str) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, (args[:6], r.exit_code, r.stderr[-300:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr[-300:]


@pytest.mark.parametrize("args,needle", [
    (["estimate", "x" * 300], "File name too long"),  # was OSError (ENAMETOOLONG): exit 3
    (["estimate", "x" * 5000], "MODEL: 5,000 characters, more than 4,096"),
    (["estimate", "~no-such-user-llm-mem/x"], "no home folder for that user"),  # was RuntimeError: exit 3
    (["estimate", "--config", "~no-such-user-llm-mem/c.json", "x"], "no home folder"),
    (["estimate", "a\nb"], "MODEL: holds the control character '\\n'"),  # the error was two lines
    (["estimate", "llama-3.1-8b", "--revision", "a\x1b[31m"], "--revision: holds the control character"),
    (["estimate", "   "], "MODEL: empty"),
    (["estimate", "org/model", "--token", "é"], "--token: must be 1 to 1024 printable ASCII"),  # UnicodeEncodeError
    (["estimate", "llama-3.1-8b", "--token", "hf_x"], "--token does not apply to a bundled model"),  # was ignored
    (["estimate", "llama-3.1-8b", "--allow-missing-shards"], "--allow-missing-shards does not apply to a bundled"),
    (["estimate", "./no-such-folder", "--revision", "main"], "--revision does not apply to a local path"),
    (["estimate", "llama3.1:8b", "--revision", "main"], "--revision does not apply to an Ollama model"),
    (["check", "--model", "a\nb", "--gpu", "L4"], "--model: holds the control character"),
    (["check", "--model", "llama-3.1-8b", "--gpu", "L\x1b4"], "--gpu: holds the control character"),
    (["check", "--model", "opt-125m", "--gpu", "999999999999999999999xH100"], "over 131,072 devices"),  # OverflowError
    (["plan", "opt-125m", "--gpu", "9" * 5000 + "xH100"], "over 131,072 devices"),
    (["plan", "opt-125m", "--gpu", "131073xH100"], "over 131,072 devices"),
    (["plan", "opt-125m", "--gpu", "131072xH100,4090"], "more than 131,072 devices in one pool"),
    (["plan", "llama-3.1-8b", "--gpu", "4090,L4", "--sweep", "context"], "--sweep charts one GPU kind"),
    (["plan", "--gpu", "8GB", "--config", "x.json"], "--config reads a MODEL"),  # silently ignored before
    (["plan", "--gpu", "8GB", "--revision", "main"], "--revision reads a MODEL"),
    (["plan", "--gpu", "8GB", "--allow-missing-shards"], "--allow-missing-shards reads a MODEL"),
    (["plan", "--gpu", "8GB", "--precision", "int8"], "--precision does not apply to the fit table"),
    (["plan", "--gpu", "8GB", "--context", "32k"], "--context does not apply to the fit table"),
    (["plan", "--gpu", "8GB", "--runtime", "vllm"], "--runtime does not apply to the fit table"),
    (["plan", "--gpu", "8GB", "--train", "lora"], "--train does not apply to the fit table"),
    (["plan", "--gpu", "8GB", "--kv-dtype", "fp8"], "--kv-dtype does not apply"),  # was a llama.cpp error
    (["plan", "--gpu", "8GB", "--quant", "Q4_K_M", "-ngl", "10"], "does not apply to the fit table"),
    (["estimate", "llama-3.1-8b", "--train", "lora", "--runtime", "vllm"], "--runtime applies to inference"),
    (["plan", "llama-3.1-8b", "--train", "full", "--train-tokens", "9" * 400], "must be between 1 and 10^15"),
    (["estimate", "llama-3.1-8b", "--train", "full", "--kv-dtype", "fp8"], "--kv-dtype applies to inference"),
], ids=lambda v: repr(v)[:60] if isinstance(v, list) else None)
def test_hostile_command_lines_are_one_line_errors(args, needle):
    _one_line_error(args, needle)


@pytest.mark.parametrize("flag", ["--junit", "--plot"])
def test_output_files_refuse_fifos_and_devices_without_blocking(tmp_path, flag):
    """--junit and --plot on a FIFO used to block forever in open(); /dev/stdout would mix into --json."""
    fifo = tmp_path / "out.svg"
    os.mkfifo(fifo)
    base = (["check", "--model", "opt-125m", "--gpu", "L4"] if flag == "--junit"
            else ["plan", "opt-125m", "--gpu", "L4", "--sweep", "context"])
    _one_line_error([*base, flag, str(fifo)], "a pipe with no reader")
    folder = tmp_path / "d.svg"
    folder.mkdir()
    _one_line_error([*base, flag, str(folder)], f"cannot write {flag}")
    if flag == "--junit":
        _one_line_error([*base, "--json", flag, "/dev/null"], "not a regular file")


def _yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_check_and_catalog_yaml_bombs_are_refused_fast(tmp_path):
    """A 5,000-deep list hit PyYAML's recursion (exit 3); a flat list of 200,000 values took a minute per
    2 MiB to build; 10,000 entries took 25 s to plan. Each is refused before it is built."""
    import time

    for depth in (100, 5000):  # libyaml itself refuses 1,000 levels; the pure-Python composer recursed
        deep = "version: 1\nchecks: " + "[" * depth + "]" * depth + "\n"
        _one_line_error(["check", _yaml(tmp_path, deep)], "nest")
        _one_line_error(["gpus", "--catalog", _yaml(tmp_path, "devices: " + "[" * depth + "]" * depth)], "nest")
    _one_line_error(["check", _yaml(tmp_path, "version: 1\nchecks: " + "[" * 40 + "]" * 40)], "more than 32 levels")
    start = time.monotonic()
    flat = "version: 1\nchecks: [" + "1," * 200_000 + "]\n"
    _one_line_error(["check", _yaml(tmp_path, flat)], "more than 100,000 values")
    _one_line_error(["gpus", "--catalog", _yaml(tmp_path, "devices: [" + "1," * 200_000 + "]")], "more than 100,000")
    entries = "".join(f"  - {{name: c{i}, model: opt-125m, gpu: L4}}\n" for i in range(1001))
    _one_line_error(["check", _yaml(tmp_path, "version: 1\nchecks:\n" + entries)], "1,001 entries, more than 1,000")
    assert time.monotonic() - start < 20


def test_check_names_with_control_characters_are_refused(tmp_path):
    """A name holding a newline split its stderr line in two and reached the JUnit file."""
    text = 'version: 1\nchecks:\n  - name: "a\\nb"\n    model: opt-125m\n    gpu: L4\n'
    _one_line_error(["check", _yaml(tmp_path, text)], "field name: holds the control character")


def test_check_allows_llamacpp_expert_offload_as_offload():
    """llama.cpp's MoE experts in host RAM (planner strategy expert_offload) was a KeyError in check: exit 3."""
    args = ["check", "--model", "qwen3-30b-a3b", "--gpu", "8GB", "--runtime", "llamacpp", "--json"]
    r = runner.invoke(app, [*args, "--allow", "offload"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["strategy"] == "offload"
    r = runner.invoke(app, args[:-1])  # not allowed: a fail naming offload, and no negative "free" figure
    assert r.exit_code == 1 and "would run with offload" in r.stdout and "short" in r.stdout, r.stdout
    assert not any(cell.strip().startswith("-") and cell.strip()[1:2].isdigit() for cell in r.stdout.split("│"))


def test_vllm_budget_is_never_negative_on_a_tiny_device():
    """A 1-byte budget with data parallel (NCCL buffers reserved) gave capacity.budget_bytes < 0."""
    r = runner.invoke(app, ["estimate", "gpt-oss-20b", "--runtime", "vllm", "-dp", "2", "--gpu", "1B", "--json"])
    assert r.exit_code == 0, r.stderr
    cap = json.loads(r.stdout)["capacity"]
    assert cap["budget_bytes"] == 0 and cap["available_kv_bytes"] == 0 and cap["max_concurrency"] == 0


@pytest.mark.parametrize("field,value,needle", [
    ("bandwidth_gbps", ".inf", "finite number"),  # every speed divided by zero: exit 3
    ("bandwidth_gbps", "1e-308", "greater than or equal to 0.001"),  # seconds per token overflowed to inf
    ("tflops", "{bf16: .nan}", "finite number"),
    ("interconnect", "{name: x, per_direction_gbps: .inf}", "finite number"),
    ("memory_bytes", "1000000000000000000000000000", "less than or equal to"),
    ("devices_per_card", "1000000", "less than or equal to 131072"),
])
def test_catalog_figures_are_finite_and_bounded(tmp_path, field, value, needle):
    text = (f"devices:\n  - id: X-GPU\n    name: X\n    vendor: nvidia\n    sources: [x]\n"
            f"    {'memory_bytes: 80 GiB' if field != 'memory_bytes' else ''}\n    {field}: {value}\n")
    _one_line_error(["plan", "opt-125m", "--gpu", "2xX-GPU", "--catalog", _yaml(tmp_path, text)], needle)


def test_local_folders_with_broken_links_are_one_line_errors(tmp_path):
    """A dangling symlink among the shards or GGUF files, or a symlink loop, was an OSError: exit 3."""
    gguf = tmp_path / "g"
    gguf.mkdir()
    (gguf / "a-Q4_K_M.gguf").symlink_to(tmp_path / "absent")
    _one_line_error(["estimate", str(gguf)], "No such file or directory")
    loop = tmp_path / "l"
    loop.mkdir()
    (loop / "x.gguf").symlink_to(loop / "x.gguf")
    _one_line_error(["estimate", str(loop)], "Too many levels of symbolic links")
    st = tmp_path / "s"
    st.mkdir()
    (st / "config.json").write_text((BUNDLED / "meta-llama__Llama-3.1-8B.json").read_text())
    (st / "model.safetensors").symlink_to(tmp_path / "absent")
    _one_line_error(["estimate", str(st)], "cannot read")


def test_control_characters_in_data_never_reach_the_terminal(tmp_path):
    """A GGUF file named with an ESC sequence was printed raw (in the header and the llama-server line)."""
    from fakehub import llama_gguf_kv, llama_gguf_tensors, make_gguf, write_blob

    folder = tmp_path / "m"
    folder.mkdir()
    write_blob(folder / "m\x1b[2J\r-Q4_K_M.gguf", make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors()))
    for args in (["estimate", str(folder)], ["plan", str(folder), "--gpu", "L4"], ["estimate", str(folder), "--json"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.stderr
        assert "\x1b" not in r.stdout + r.stderr and "\r" not in r.stdout + r.stderr
        if "--json" not in args:
            assert "m\\x1b[2J\\r-Q4_K_M.gguf" in r.stdout


def test_llamacpp_plan_says_the_ngl_it_was_given():
    """`plan ... -ngl 0` sized the user's -ngl but called it "every layer on the GPU"."""
    r = runner.invoke(app, ["plan", "qwen3-30b-a3b", "--gpu", "8GB", "--quant", "Q4_K_M", "-ngl", "0", "--json"])
    assert r.exit_code == 0, r.stderr
    single = json.loads(r.stdout)["options"][0]
    assert "-ngl 0: 0/48 layers on the GPU" in single["reason"] and "every layer" not in single["reason"]


def test_a_closed_stdout_ends_quietly_with_the_results_exit_code():
    """`llm-mem ... | head`: a broken pipe was exit 3 with --json, and rich's exit 1 ("does not fit") without."""
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first byte
    try:
        for args in (["models", "--json"], ["models"]):
            p = subprocess.run([sys.executable, "-m", "llm_mem", *args], stdout=w, stderr=subprocess.PIPE,
                               timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            assert p.returncode == 0 and not p.stderr, (args, p.returncode, p.stderr[-300:])
    finally:
        os.close(w)


@pytest.mark.parametrize("args", [
    ["plan", "opt-125m", "--gpu", "9" * 50_000 + "xH100"],  # took minutes: [0-9]*\.?[0-9]+ backtracked
    ["estimate", "opt-125m", "--context", "9" * 50_000 + "x"],
    ["plan", "opt-125m", "--gpu", "4GB", "--host-ram", "1" + " " * 50_000 + "!"],  # \s*([a-zA-Z]*)\s*$
    ["check", "--model", "opt-125m", "--gpu", "L4", "--min-headroom", "9" * 50_000 + "%x"],
    ["plan", "opt-125m", "--train", "full", "--train-tokens", "1" + " " * 50_000 + "!"],
], ids=["gpu-count", "context", "host-ram-spaces", "headroom", "train-tokens"])
def test_number_parsers_are_linear_on_long_text(args):
    import time

    start = time.monotonic()
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-300:]
    assert time.monotonic() - start < 3  # 40,000 digits took 27 s before


def test_verify_training_time_budget_counts_the_backward_products(monkeypatch):
    """--verify --train full on CPU ran ~5 min against its 60 s budget: the budget assumed F.linear's rate,
    and a CPU without native bf16 matmuls runs the input gradient (grad @ W) 20-40x slower."""
    torch = pytest.importorskip("torch")
    from llm_mem.verify.build import cpu_flops_per_s

    matmul = torch.Tensor.__matmul__

    def slow(self, other):  # a backward product 100 ms slower than the forward, whatever the CPU and its load
        import time

        time.sleep(0.1)
        return matmul(self, other)

    forward = cpu_flops_per_s("float32")
    monkeypatch.setattr(torch.Tensor, "__matmul__", slow)
    assert cpu_flops_per_s("float32", train=True) < forward / 2
