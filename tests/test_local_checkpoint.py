"""Local safetensors checkpoints: which files count (the index's weight_map, one layout, never the
adapter), exact per-tensor records with roles from HF names, and headers read with their length checked
against the cap and the file before a byte of JSON is read."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest
from fakehub import make_safetensors, make_sharded

from llm_mem.errors import ConfigError
from llm_mem.sources import resolve_model
from llm_mem.sources.limits import MAX_SAFETENSORS_HEADER_BYTES
from llm_mem.sources.safetensors import read_local_header

CFG = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
       "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100, "torch_dtype": "bfloat16"}


def _tensors(layers: int = 2) -> dict[str, tuple[str, list[int]]]:
    t = {"model.embed_tokens.weight": ("BF16", [100, 64]), "model.norm.weight": ("BF16", [64]),
         "lm_head.weight": ("BF16", [100, 64])}
    for i in range(layers):
        p = f"model.layers.{i}"
        t |= {f"{p}.self_attn.q_proj.weight": ("BF16", [64, 64]), f"{p}.self_attn.k_proj.weight": ("BF16", [32, 64]),
              f"{p}.self_attn.v_proj.weight": ("BF16", [32, 64]), f"{p}.self_attn.o_proj.weight": ("BF16", [64, 64]),
              f"{p}.mlp.gate_proj.weight": ("BF16", [128, 64]), f"{p}.mlp.up_proj.weight": ("BF16", [128, 64]),
              f"{p}.mlp.down_proj.weight": ("BF16", [64, 128]), f"{p}.input_layernorm.weight": ("BF16", [64]),
              f"{p}.post_attention_layernorm.weight": ("BF16", [64]), f"{p}.mlp.mystery.weight": ("F32", [3])}
    return t


def _bytes(t: dict[str, tuple[str, list[int]]]) -> int:
    size = {"BF16": 2, "F32": 4, "I32": 4, "F16": 2}
    total = 0
    for dtype, shape in t.values():
        n = 1
        for d in shape:
            n *= d
        total += n * size[dtype]
    return total


def _folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(CFG))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def test_tensors_roles_and_exact_bytes(tmp_path):
    t = _tensors()
    _folder(tmp_path, {"model.safetensors": make_safetensors(t)})
    c = resolve_model(str(tmp_path)).checkpoint
    assert c.format == "safetensors" and c.label == "safetensors BF16"
    assert c.total_bytes == _bytes(t) == sum(x.nbytes for x in c.tensors)
    assert c.dtype_counts == {"BF16": sum(_numel(s) for d, s in t.values() if d == "BF16"), "F32": 6}
    roles = {x.name: (x.layer, x.role) for x in c.tensors}
    assert roles["model.layers.1.self_attn.k_proj.weight"] == (1, "attn_k")
    assert roles["model.layers.0.mlp.down_proj.weight"] == (0, "mlp_down")
    assert roles["model.layers.0.input_layernorm.weight"] == (0, "norm")
    assert roles["model.embed_tokens.weight"] == (None, "embed") and roles["lm_head.weight"] == (None, "lm_head")
    assert roles["model.layers.1.mlp.mystery.weight"] == (1, "other")
    per_layer = [sum(x.nbytes for x in c.tensors if x.layer == i) for i in (0, 1)]
    assert per_layer[0] == per_layer[1] == (64 * 64 * 2 + 32 * 64 * 2 + 3 * 128 * 64 + 2 * 64) * 2 + 12


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def test_index_decides_which_shards_count(tmp_path):
    t = _tensors()
    files = make_sharded(t, num_shards=2)
    files["model.safetensors"] = make_safetensors(t)  # a consolidated copy beside the shards: one layout only
    files["model-00001-of-00009.safetensors"] = make_safetensors({"stray": ("BF16", [1000])})  # not in the index
    _folder(tmp_path, files)
    c = resolve_model(str(tmp_path)).checkpoint
    assert c.total_bytes == _bytes(t)
    assert [Path(f).name for f in c.files] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def test_missing_shard_is_an_error_or_a_warning(tmp_path):
    files = make_sharded(_tensors(), num_shards=3)
    del files["model-00002-of-00003.safetensors"]
    _folder(tmp_path, files)
    with pytest.raises(ConfigError) as err:
        resolve_model(str(tmp_path))
    assert "model-00002-of-00003.safetensors" in err.value.one_line()
    m = resolve_model(str(tmp_path), allow_missing_shards=True)
    assert m.checkpoint is None
    assert any("model-00002-of-00003.safetensors" in w and "config.json" in w for w in m.warnings)


def test_shards_without_index_must_be_complete(tmp_path):
    files = make_sharded(_tensors(), num_shards=2)
    del files["model.safetensors.index.json"]
    _folder(tmp_path, files)
    assert resolve_model(str(tmp_path)).checkpoint.total_bytes == _bytes(_tensors())
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ConfigError, match=re.escape("model-00002-of-00002.safetensors is missing")):
        resolve_model(str(tmp_path))


@pytest.mark.parametrize("bad", ["../outside.safetensors", "/etc/passwd", "sub/dir.safetensors",
                                 "https://evil.example/x.safetensors", "a.safetensors?x=1", ".."])
def test_index_names_outside_the_folder_are_refused(tmp_path, bad):
    index = {"weight_map": {"a": "model-00001-of-00001.safetensors", "b": bad}}
    _folder(tmp_path, {"model.safetensors.index.json": json.dumps(index).encode(),
                       "model-00001-of-00001.safetensors": make_safetensors({"a": ("BF16", [4])})})
    (tmp_path.parent / "outside.safetensors").write_bytes(make_safetensors({"b": ("BF16", [4])}))
    with pytest.raises(ConfigError, match="not a file name"):
        resolve_model(str(tmp_path))


def test_adapter_is_reported_not_added(tmp_path):
    t = _tensors()
    lora = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": ("F32", [16, 64]),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": ("F32", [64, 16])}
    _folder(tmp_path, {"model.safetensors": make_safetensors(t), "adapter_model.safetensors": make_safetensors(lora),
                       "adapter_config.json": b'{"r": 16}'})
    c = resolve_model(str(tmp_path)).checkpoint
    assert c.total_bytes == _bytes(t) and c.adapter_bytes == 2 * 16 * 64 * 4
    assert any("adapter_model.safetensors" in n for n in c.notes)


def test_config_json_path_reads_the_folder(tmp_path):
    _folder(tmp_path, {"model.safetensors": make_safetensors(_tensors())})
    m = resolve_model(str(tmp_path / "config.json"))
    assert m.checkpoint.total_bytes == _bytes(_tensors())


def _raw_st(header: bytes, declared: int | None = None, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header) if declared is None else declared) + header + data


@pytest.mark.parametrize("content,needle", [
    (b"abc", "shorter than 8 bytes"),
    (_raw_st(b"{}", declared=MAX_SAFETENSORS_HEADER_BYTES + 1), "exceeds the 100,000,000 limit"),
    (_raw_st(b"{}", declared=10_000), "claims 10,000 bytes but the file holds"),
    (_raw_st(b"{not json"), "not valid JSON"),
    (_raw_st(b"[1,2]"), "not a JSON object"),
    (_raw_st(json.dumps({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}).encode()), "data section"),
    (_raw_st(json.dumps({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 6]}}).encode(), data=bytes(6)),
     "make 8"),
    (_raw_st(json.dumps({"w": {"dtype": "BF16", "shape": [-4], "data_offsets": [0, 0]}}).encode()), "invalid shape"),
    (_raw_st(json.dumps({"w": {"dtype": "BF16", "shape": [2**40, 2**40], "data_offsets": [0, 0]}}).encode()),
     "claims"),
    (_raw_st(json.dumps({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [8, 0]}}).encode()), "data_offsets"),
    (_raw_st(json.dumps({"w": {"dtype": 7, "shape": [4], "data_offsets": [0, 8]}}).encode()), "no valid dtype"),
])
def test_hostile_safetensors_headers(tmp_path, content, needle):
    _folder(tmp_path, {"model.safetensors": content})
    with pytest.raises(ConfigError) as err:
        resolve_model(str(tmp_path))
    assert needle in err.value.one_line() and "\n" not in err.value.one_line()


def test_header_length_checked_before_reading(tmp_path):
    """A header claiming 99 MB in a 20-byte file is refused from its first 8 bytes."""
    p = tmp_path / "model.safetensors"
    p.write_bytes(_raw_st(b"{}", declared=99_000_000))
    with pytest.raises(ConfigError, match="the file holds 10"):
        read_local_header(p)


def test_special_files_are_refused(tmp_path):
    os.mkfifo(tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(CFG))
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_model(str(tmp_path))
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_model("/dev/zero", config=Path("/dev/zero"))
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "config.json").write_text(json.dumps(CFG))
    os.mkfifo(index_dir / "model.safetensors.index.json")
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_model(str(index_dir))


def test_oversized_index_refused(tmp_path, monkeypatch):
    from llm_mem.sources import local

    monkeypatch.setattr(local, "MAX_INDEX_BYTES", 1000)
    _folder(tmp_path, {"model.safetensors.index.json": json.dumps({"weight_map": {f"t{i}": "a.safetensors"
                                                                                 for i in range(200)}}).encode()})
    with pytest.raises(ConfigError, match="larger than 1,000 bytes"):
        resolve_model(str(tmp_path))


def test_quantized_suffixes_keep_their_module_role(tmp_path):
    t = {"model.layers.0.self_attn.q_proj.qweight": ("I32", [8, 64]), "model.layers.0.self_attn.q_proj.scales": ("F16", [1, 64]),
         "model.layers.0.mlp.experts.3.up_proj.weight": ("BF16", [16, 64]),
         "model.layers.0.mlp.gate.weight": ("BF16", [8, 64]), "model.vision_tower.blocks.0.attn.qkv.weight": ("BF16", [4, 4]),
         "model.multi_modal_projector.linear_1.weight": ("BF16", [4, 4])}
    _folder(tmp_path, {"model.safetensors": make_safetensors(t)})
    roles = {x.name: x.role for x in resolve_model(str(tmp_path)).checkpoint.tensors}
    assert roles == {"model.layers.0.self_attn.q_proj.qweight": "attn_q", "model.layers.0.self_attn.q_proj.scales": "attn_q",
                     "model.layers.0.mlp.experts.3.up_proj.weight": "expert_up", "model.layers.0.mlp.gate.weight": "router",
                     "model.vision_tower.blocks.0.attn.qkv.weight": "vision",
                     "model.multi_modal_projector.linear_1.weight": "mmproj"}


def _unknown_arch(tmp_path: Path, tensors: dict[str, tuple[str, list[int]]]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps({**CFG, "model_type": "zzfoo", "architectures": ["ZzForCausalLM"]}))
    (tmp_path / "model.safetensors").write_bytes(make_safetensors(tensors))
    return tmp_path


def test_unknown_architecture_is_exact_from_its_headers_without_transformers(tmp_path, monkeypatch):
    from llm_mem.estimate import estimate
    from llm_mem.sources import meta_count
    from llm_mem.workload import Workload

    monkeypatch.setattr(meta_count, "available", lambda: False)  # as without the verify extra
    t = _tensors()
    m = resolve_model(str(_unknown_arch(tmp_path, t)))
    assert m.spec.model_type == "zzfoo" and not m.spec.known and "safetensors headers" in (m.spec.counted_by or "")
    r = estimate(m, Workload())
    # every tensor the headers list, the unknown "mystery" ones too: the parameter total is their element sum
    assert r.parameters.total == sum(_numel(s) for _, s in t.values())
    assert r.weights.bytes == _bytes(t) == m.checkpoint.total_bytes
    # KV from the config's standard fields: 2 layers x 2 KV heads x 16 dims x (K, V) x 2 bytes
    assert r.kv_cache.bytes_per_token == 2 * 2 * 16 * 2 * 2
    assert any("read from the safetensors headers" in w for w in r.warnings)


def test_unknown_architecture_with_packed_weights_is_refused_without_transformers(tmp_path, monkeypatch):
    from llm_mem.errors import ConfigError
    from llm_mem.sources import meta_count

    monkeypatch.setattr(meta_count, "available", lambda: False)
    t = {**_tensors(), "model.layers.0.mlp.gate_proj.qweight": ("I32", [8, 128])}  # GPTQ-packed: 8 nf4 per int32
    with pytest.raises(ConfigError, match="unknown architecture 'zzfoo'"):
        resolve_model(str(_unknown_arch(tmp_path, t)))
