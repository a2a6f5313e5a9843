"""GGUF sources: our streaming header reader against llama.cpp's own gguf-py (GGUFWriter writes every
file here, GGUFReader reads it back), hostile headers, split files, the architecture mapping, mmproj
projectors, quant picking in folders and Hub repos (HTTP Range only, never a byte past the header)."""

from __future__ import annotations

import json
import re
import struct
import time
from pathlib import Path

import pytest
from fakehub import SparseFile, llama_gguf_kv, llama_gguf_tensors, make_gguf, write_blob
from gguf import GGUFReader, GGUFValueType, LlamaFileType

from llm_mem.dtypes import ggml_nbytes
from llm_mem.errors import ConfigError, ModelNotFoundError, UsageError
from llm_mem.sources import limits, resolve_model
from llm_mem.sources.byteio import LocalFile
from llm_mem.sources.gguf import GgufArray, LongString, read_gguf_header
from llm_mem.sources.gguf_split import LLAMA_FTYPES, split_names

# --------------------------------------------------------------------------------------------
# the reader against gguf-py


def _read(path: Path):
    with LocalFile(path) as f:
        return read_gguf_header(f)


def _reader_value(field):
    """A GGUFReader field's value in the form our reader keeps it."""
    vals = field.contents()
    return vals


def test_reader_matches_gguf_py_on_every_value_and_tensor_type(tmp_path):
    kv = {
        "t.u8": (7, GGUFValueType.UINT8), "t.i8": (-7, GGUFValueType.INT8), "t.u16": (65535, GGUFValueType.UINT16),
        "t.i16": (-300, GGUFValueType.INT16), "t.u32": (4_000_000_000, GGUFValueType.UINT32),
        "t.i32": (-5, GGUFValueType.INT32), "t.f32": (0.5, GGUFValueType.FLOAT32), "t.bool": (True, GGUFValueType.BOOL),
        "t.str": ("héllo", GGUFValueType.STRING), "t.u64": (2**40 + 1, GGUFValueType.UINT64),
        "t.i64": (-(2**40), GGUFValueType.INT64), "t.f64": (0.125, GGUFValueType.FLOAT64),
        "t.arr_i32": [1, 2, 3], "t.arr_str": ["a", "", "ccc"], "t.arr_bool": ([True, False, True], GGUFValueType.ARRAY),
        "t.arr_f32": [0.5, 1.5], "general.alignment": (64, GGUFValueType.UINT32), "general.file_type": 15,
    }
    tensors = {"a.weight": ("F32", [64, 3]), "b.weight": ("F16", [32, 2, 2]), "c.weight": ("BF16", [8]),
               "d.weight": ("Q4_K", [256, 2]), "e.weight": ("Q6_K", [512]), "f.weight": ("Q8_0", [64, 5]),
               "g.weight": ("IQ4_XS", [256, 1]), "h.weight": ("Q4_0", [32, 7]), "i.weight": ("MXFP4", [64, 2]),
               "j.weight": ("I32", [3, 3, 3, 3])}
    path = tmp_path / "m.gguf"
    write_blob(path, make_gguf("llama", kv, tensors))
    ours = _read(path)
    ref = GGUFReader(path)

    assert [t.name for t in ours.tensors] == [t.name for t in ref.tensors]
    for mine, theirs in zip(ours.tensors, ref.tensors):
        assert mine.type_name == theirs.tensor_type.name
        assert list(mine.shape) == [int(d) for d in theirs.shape]
        assert mine.numel == int(theirs.n_elements)
        assert mine.nbytes == int(theirs.n_bytes) == ggml_nbytes(mine.type_name, mine.numel)
        assert ours.data_offset + mine.offset == int(theirs.data_offset)
    assert ours.alignment == 64 and ours.data_offset % 64 == 0
    assert ours.data_offset + ours.data_bytes == path.stat().st_size

    fields = {k: f for k, f in ref.fields.items() if not k.startswith("GGUF.")}
    assert set(ours.metadata) == set(fields)
    for key, field in fields.items():
        mine = ours.metadata[key]
        theirs = _reader_value(field)
        if isinstance(mine, GgufArray):
            assert list(mine.values) == pytest.approx(list(theirs)) if field.types[-1] in (
                GGUFValueType.FLOAT32, GGUFValueType.FLOAT64) else list(mine.values) == list(theirs), key
            assert mine.count == len(theirs)
        elif isinstance(mine, float):
            assert mine == pytest.approx(theirs), key
        else:
            assert mine == theirs, key
        assert ours.value_types[key] == int(field.types[0]), key


def test_long_arrays_and_strings_are_counted_not_kept(tmp_path):
    vocab = [f"token-{i}" for i in range(limits.MAX_KEPT_ARRAY + 10)]
    template = "x" * (limits.MAX_KEPT_STRING + 1)
    path = tmp_path / "m.gguf"
    write_blob(path, make_gguf("llama", {"tokenizer.ggml.tokens": vocab, "tokenizer.ggml.scores": [0.0] * len(vocab),
                                         "tokenizer.chat_template": template}, {"a.weight": ("F32", [4])}))
    h = _read(path)
    tokens = h.get("tokenizer.ggml.tokens")
    assert tokens == GgufArray(8, len(vocab), None)
    assert h.get("tokenizer.ggml.scores").values is None and h.get("tokenizer.ggml.scores").count == len(vocab)
    assert h.get("tokenizer.chat_template") == LongString(len(template))
    assert h.tensors[0].name == "a.weight"


def test_ftype_names_equal_llama_cpp():
    assert {t.value: t.name.removeprefix("MOSTLY_") for t in LlamaFileType if t.name not in ("GUESSED",)} == {
        **LLAMA_FTYPES, 0: "ALL_F32"}


# --------------------------------------------------------------------------------------------
# hostile headers: one ConfigError, never MemoryError or a hang


def _s(x: str | bytes) -> bytes:
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def _raw(*, magic=b"GGUF", version=3, n_tensors=None, n_kv=None, kvs=(), tensors=(), pad=64) -> bytes:
    """Hand-made header bytes (gguf-py will not write broken files), then ``pad`` zero bytes."""
    out = magic + struct.pack("<I", version)
    out += struct.pack("<q", len(tensors) if n_tensors is None else n_tensors)
    out += struct.pack("<q", len(kvs) if n_kv is None else n_kv)
    for k in kvs:
        out += k
    for t in tensors:
        out += t
    return out + bytes(pad)


def _kv_u32(key: str, v: int) -> bytes:
    return _s(key) + struct.pack("<iI", 4, v)


def _ti(name: str, dims: list[int], gtype: int, offset: int) -> bytes:
    return _s(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}q", *dims) + struct.pack("<iQ", gtype, offset)


HOSTILE = [
    ("bad magic", _raw(magic=b"GGML"), "not a GGUF file"),
    ("v1", _raw(version=1), "version 1"),
    ("v4", _raw(version=4), "version 4"),
    ("big endian", _raw(version=0x03000000), "big-endian"),
    ("negative tensors", _raw(n_tensors=-1), "declares -1 tensors"),
    ("2^62 tensors", _raw(n_tensors=2**62), "tensors"),
    ("2^62 kv", _raw(n_kv=2**62), "key-value pairs"),
    ("kv count past the file", _raw(n_kv=1000), "past the end of the file"),
    ("huge key", _raw(kvs=[struct.pack("<Q", 2**62)]), "over the 65,535 limit"),
    ("empty key", _raw(kvs=[_s("") + struct.pack("<iB", 0, 1)]), "empty"),
    ("huge string", _raw(kvs=[_s("k") + struct.pack("<iQ", 8, 2**62)]), "over the"),
    ("huge array", _raw(kvs=[_s("k") + struct.pack("<iiQ", 9, 4, 2**62)]), "elements, over"),
    ("string array past the file", _raw(kvs=[_s("k") + struct.pack("<iiQ", 9, 8, 1_000_000)]), "past the end"),
    ("nested array", _raw(kvs=[_s("k") + struct.pack("<iiQ", 9, 9, 1)]), "nested array"),
    ("bad value type", _raw(kvs=[_s("k") + struct.pack("<i", 13)]), "invalid GGUF type 13"),
    ("bad array type", _raw(kvs=[_s("k") + struct.pack("<iiQ", 9, 42, 1)]), "invalid GGUF type 42"),
    ("duplicate key", _raw(kvs=[_kv_u32("a", 1), _kv_u32("a", 2)]), "duplicate metadata key 'a'"),
    ("alignment not pow2", _raw(kvs=[_kv_u32("general.alignment", 48)]), "not a power of 2"),
    ("alignment wrong type", _raw(kvs=[_s("general.alignment") + struct.pack("<iQ", 10, 32)]), "must be a uint32"),
    ("5 dims", _raw(tensors=[_ti("t", [1, 1, 1, 1, 1], 0, 0)]), "5 dimensions"),
    ("negative dim", _raw(tensors=[_ti("t", [-4], 0, 0)]), "negative dimension"),
    ("overflowing numel", _raw(tensors=[_ti("t", [2**40, 2**40], 0, 0)]), "more than int64"),
    ("unknown ggml type", _raw(tensors=[_ti("t", [32], 77, 0)]), "ggml type 77"),
    ("name too long", _raw(tensors=[_ti("n" * 64, [32], 0, 0)]), "over the 63 limit"),
    ("duplicate tensor", _raw(tensors=[_ti("t", [32], 0, 0), _ti("t", [32], 0, 128)]), "duplicate tensor name"),
    ("row not whole blocks", _raw(tensors=[_ti("t", [100], 12, 0)]), "not a multiple of the block size 256"),
    ("wrong offset", _raw(tensors=[_ti("t", [32], 0, 64)]), "expected 0"),
    ("data past the file", _raw(tensors=[_ti("t", [1_000_000], 0, 0)]), "truncated"),
]


@pytest.mark.parametrize("label,data,needle", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_header_is_one_config_error(tmp_path, label, data, needle):
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as err:
        _read(path)
    assert needle in err.value.one_line()
    assert "\n" not in err.value.one_line()
    assert time.monotonic() - t0 < 2


def test_header_cap_is_enforced_while_reading(tmp_path, monkeypatch):
    path = tmp_path / "m.gguf"
    write_blob(path, make_gguf("llama", {"tokenizer.ggml.tokens": [f"t{i}" for i in range(5000)]},
                               {"a.weight": ("F32", [4])}))
    with LocalFile(path) as f:
        with pytest.raises(ConfigError, match="larger than"):
            read_gguf_header(f, limit=10_000)
        assert f.fetched <= 10_000 + limits.LOCAL_READAHEAD


def test_fifo_and_device_refused(tmp_path):
    import os

    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_model(str(fifo))
    with pytest.raises(ConfigError, match="not a regular file"):
        LocalFile(Path("/dev/zero"))


# --------------------------------------------------------------------------------------------
# local files: spec, exact tensors, labels


def _llama_file(path: Path, **kw) -> Path:
    write_blob(path, make_gguf("llama", llama_gguf_kv(**kw), llama_gguf_tensors()))
    return path


def test_local_gguf_spec_and_exact_tensors(tmp_path):
    path = _llama_file(tmp_path / "tiny-Q4_K_M.gguf")
    m = resolve_model(str(path))
    assert m.source.kind == "gguf" and m.source.location == str(path)
    s = m.spec
    assert (s.model_type, s.num_layers, s.hidden_size, s.num_heads, s.num_kv_heads, s.head_dim) == (
        "llama", 2, 256, 4, 2, 64)
    assert (s.vocab_size, s.intermediate_size, s.max_position_embeddings, s.tie_word_embeddings) == (1000, 512, 4096, False)
    assert s.layer_types == ("full", "full") and s.llamacpp_arch == "llama"
    c = m.checkpoint
    ref = GGUFReader(path)
    assert c.format == "gguf" and c.label == "GGUF Q4_K_M (file type 15)"
    assert c.total_bytes == sum(int(t.n_bytes) for t in ref.tensors) == sum(t.nbytes for t in c.tensors)
    assert c.dtype_counts == {"Q4_K": 256 * 1000 + 2 * (256 * 256 * 2 + 256 * 128 + 2 * 256 * 512),
                              "Q6_K": 256 * 1000 + 2 * (256 * 128 + 512 * 256), "F32": 256 + 2 * 2 * 256}
    roles = {t.name: (t.layer, t.role) for t in c.tensors}
    assert roles["token_embd.weight"] == (None, "embed") and roles["output.weight"] == (None, "lm_head")
    assert roles["blk.1.attn_v.weight"] == (1, "attn_v") and roles["blk.0.ffn_down.weight"] == (0, "mlp_down")
    assert roles["blk.0.attn_norm.weight"] == (0, "norm")
    per_layer = [sum(t.nbytes for t in c.tensors if t.layer == i) for i in range(2)]
    assert per_layer[0] == per_layer[1] > 0


def test_tied_embeddings_and_f16_file(tmp_path):
    path = tmp_path / "m-F16.gguf"
    write_blob(path, make_gguf("llama", llama_gguf_kv(file_type=1), llama_gguf_tensors(qtype="F16", tied=True)))
    m = resolve_model(str(path))
    assert m.spec.tie_word_embeddings and m.spec.torch_dtype == "float16"
    assert m.checkpoint.label == "GGUF F16 (file type 1)"


def test_split_files_read_every_part(tmp_path):
    parts = make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(), split_max_tensors=8, name="big-Q4_K_M.gguf")
    assert len(parts) == 3 and "big-Q4_K_M-00002-of-00003.gguf" in parts
    for name, blob in parts.items():
        write_blob(tmp_path / name, blob)
    whole = resolve_model(str(tmp_path / "big-Q4_K_M-00001-of-00003.gguf"))
    middle = resolve_model(str(tmp_path / "big-Q4_K_M-00002-of-00003.gguf"))
    assert whole.checkpoint == middle.checkpoint
    assert len(whole.checkpoint.tensors) == len(llama_gguf_tensors())
    assert whole.checkpoint.files == tuple(str(tmp_path / n) for n in sorted(parts))
    single = _llama_file(tmp_path / "single.gguf")
    assert whole.checkpoint.total_bytes == resolve_model(str(single)).checkpoint.total_bytes

    (tmp_path / "big-Q4_K_M-00003-of-00003.gguf").unlink()
    with pytest.raises(ConfigError, match=re.escape("big-Q4_K_M-00003-of-00003.gguf is missing")):
        resolve_model(str(tmp_path / "big-Q4_K_M-00001-of-00003.gguf"))


def test_split_names():
    assert split_names("m-00002-of-00003.gguf") == ["m-00001-of-00003.gguf", "m-00002-of-00003.gguf",
                                                    "m-00003-of-00003.gguf"]
    assert split_names("plain.gguf") == ["plain.gguf"]


def test_part_renamed_is_caught_by_split_keys(tmp_path):
    parts = make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(), split_max_tensors=10)
    first = next(iter(sorted(parts)))
    write_blob(tmp_path / "renamed.gguf", parts[first])
    with pytest.raises(ConfigError, match=re.escape("split.count")):
        resolve_model(str(tmp_path / "renamed.gguf"))


# --------------------------------------------------------------------------------------------
# architecture metadata -> spec


def _spec(tmp_path, arch, kv, tensors=None, name="m.gguf"):
    path = tmp_path / name
    write_blob(path, make_gguf(arch, kv, tensors or {"token_embd.weight": ("F16", [kv.get(f"{arch}.embedding_length", 64), 100])},
                               with_data=False))
    return resolve_model(str(path))


def _base(arch, n=4, hidden=64, heads=4, kv=2, ff=128, **extra):
    return {f"{arch}.block_count": n, f"{arch}.embedding_length": hidden, f"{arch}.attention.head_count": heads,
            f"{arch}.attention.head_count_kv": kv, f"{arch}.feed_forward_length": ff, f"{arch}.context_length": 8192,
            **{f"{arch}.{k}": v for k, v in extra.items()}}


def test_gemma2_and_gemma3_sliding_patterns(tmp_path):
    g2 = _spec(tmp_path, "gemma2", _base("gemma2", **{"attention.sliding_window": 4096, "attention.key_length": 32}))
    assert g2.spec.layer_types == ("sliding", "full", "sliding", "full") and g2.spec.sliding_window == 4096
    assert g2.spec.head_dim == 32 and g2.spec.family == "gemma2"
    g3 = _spec(tmp_path, "gemma3", _base("gemma3", n=12, **{"attention.sliding_window": 1024}))
    assert g3.spec.model_type == "gemma3_text"
    assert [i for i, k in enumerate(g3.spec.layer_types) if k == "full"] == [5, 11]  # the last of every 6
    period = _spec(tmp_path, "gemma3", _base("gemma3", n=6, **{"attention.sliding_window": 512,
                                                                "attention.sliding_window_pattern": 3}))
    assert period.spec.layer_types == ("sliding", "sliding", "full") * 2
    per_layer = _spec(tmp_path, "gemma3", _base("gemma3", n=4, **{
        "attention.sliding_window": 512,
        "attention.sliding_window_pattern": ([True, False, False, True], GGUFValueType.ARRAY)}))
    assert per_layer.spec.layer_types == ("sliding", "full", "full", "sliding")


def test_phi3_window_is_disabled_as_in_llama_cpp(tmp_path):
    m = _spec(tmp_path, "phi3", _base("phi3", heads=4, kv=4, **{"attention.sliding_window": 2047}))
    assert set(m.spec.layer_types) == {"full"} and m.spec.sliding_window is None


def test_gpt_oss_experts_and_alternating_window(tmp_path):
    m = _spec(tmp_path, "gpt-oss", _base("gpt-oss", heads=8, kv=2, **{
        "attention.sliding_window": 128, "expert_count": 32, "expert_used_count": 4,
        "expert_feed_forward_length": 96, "attention.key_length": 16}))
    s = m.spec
    assert s.model_type == "gpt_oss" and s.layer_types == ("sliding", "full") * 2 and s.sliding_window == 128
    assert (s.moe.num_experts, s.moe.top_k, s.moe.expert_intermediate_size) == (32, 4, 96)


def test_moe_families(tmp_path):
    mixtral = _spec(tmp_path, "llama", _base("llama", expert_count=8, expert_used_count=2))
    assert mixtral.spec.model_type == "mixtral" and mixtral.spec.moe.num_experts == 8
    assert mixtral.spec.llamacpp_arch == "llama"
    q3 = _spec(tmp_path, "qwen3moe", _base("qwen3moe", **{"expert_count": 16, "expert_used_count": 4,
                                                          "expert_feed_forward_length": 32, "attention.key_length": 32}))
    assert (q3.spec.moe.num_experts, q3.spec.moe.expert_intermediate_size, q3.spec.head_dim) == (16, 32, 32)
    q2 = _spec(tmp_path, "qwen2moe", _base("qwen2moe", expert_count=16, expert_used_count=4, expert_feed_forward_length=32, expert_shared_feed_forward_length=80))
    assert q2.spec.moe.shared_intermediate_size == 80 and q2.spec.moe.shared_expert_gate


def _deepseek_kv(mla: bool, gating: int = 1):
    # DeepSeek-V2-Lite (deepseek-ai/DeepSeek-V2-Lite config.json): 27 layers, 16 heads, kv_lora_rank 512,
    # rope 64, nope 128, v 128, 64 experts (6 used, 2 shared, 1408 wide), first layer dense (10944)
    kv = {"deepseek2.block_count": 27, "deepseek2.embedding_length": 2048, "deepseek2.context_length": 163840,
          "deepseek2.feed_forward_length": 10944, "deepseek2.attention.head_count": 16,
          "deepseek2.rope.dimension_count": 64, "deepseek2.attention.kv_lora_rank": 512,
          "deepseek2.leading_dense_block_count": 1, "deepseek2.expert_count": 64, "deepseek2.expert_used_count": 6,
          "deepseek2.expert_shared_count": 2, "deepseek2.expert_feed_forward_length": 1408,
          "deepseek2.expert_gating_func": gating, "deepseek2.vocab_size": 102400}
    if mla:  # llama.cpp after the MLA change: one latent "head" of 576 = 512 + 64
        kv |= {"deepseek2.attention.head_count_kv": 1, "deepseek2.attention.key_length": 576,
               "deepseek2.attention.value_length": 512, "deepseek2.attention.key_length_mla": 192,
               "deepseek2.attention.value_length_mla": 128}
    else:  # older files: per-head K (nope 128 + rope 64) and V (128)
        kv |= {"deepseek2.attention.head_count_kv": 16, "deepseek2.attention.key_length": 192,
               "deepseek2.attention.value_length": 128}
    return kv


def test_deepseek_current_file_has_mla(tmp_path):
    m = _spec(tmp_path, "deepseek2", _deepseek_kv(mla=True), {"token_embd.weight": ("Q8_0", [2048, 102400])})
    s = m.spec
    assert s.model_type == "deepseek_v2" and s.mla is not None
    assert (s.mla.kv_lora_rank, s.mla.qk_rope_head_dim, s.mla.qk_nope_head_dim, s.mla.v_head_dim, s.mla.q_lora_rank) == (
        512, 64, 128, 128, None)
    assert s.moe.moe_layers == (False,) + (True,) * 26 and s.moe.shared_intermediate_size == 2 * 1408
    # the latent cache llama.cpp keeps: (kv_lora_rank + rope) per token and layer, f16: 121.5 MiB at 4,096 tokens
    latent = s.num_layers * (s.mla.kv_lora_rank + s.mla.qk_rope_head_dim) * 2 * 4096
    assert latent == 127_401_984 and round(latent / 2**20, 1) == 121.5


def test_old_deepseek_file_runs_full_mha_cache(tmp_path):
    s = _spec(tmp_path, "deepseek2", _deepseek_kv(mla=False), {"token_embd.weight": ("Q8_0", [2048, 102400])}).spec
    assert s.mla is None and (s.num_kv_heads, s.head_dim, s.v_head_dim) == (16, 192, 128)
    # llama.cpp's K and V cache for such a file: n_head_kv x (192 + 128) per token and layer, f16:
    # 1,080 MiB at 4,096 tokens (measured; the brief's figure)
    full = s.num_layers * s.num_kv_heads * (s.head_dim + s.v_head_dim) * 2 * 4096
    assert full == 1080 * 2**20


def test_deepseek_v3_by_sigmoid_router(tmp_path):
    s = _spec(tmp_path, "deepseek2", _deepseek_kv(mla=True, gating=2), {"token_embd.weight": ("Q8_0", [2048, 102400])})
    assert s.spec.model_type == "deepseek_v3" and s.spec.mla is not None


def test_falcon_and_gpt2(tmp_path):
    f = _spec(tmp_path, "falcon", _base("falcon", heads=8, kv=1))
    assert f.spec.num_kv_heads == 1 and f.spec.family == "falcon"
    f40 = _spec(tmp_path, "falcon", _base("falcon", heads=8, kv=2), name="f40.gguf")
    assert f40.spec.num_kv_heads == 2
    g = _spec(tmp_path, "gpt2", _base("gpt2", heads=4, kv=4))
    assert g.spec.position_embeddings == 8192 and g.spec.norm == "layer"


def test_per_layer_arrays(tmp_path):
    m = _spec(tmp_path, "llama", _base("llama", n=3, **{
        "attention.head_count_kv": ([2, 4, 2], GGUFValueType.ARRAY),
        "feed_forward_length": ([128, 256, 128], GGUFValueType.ARRAY)}))
    assert m.spec.num_kv_heads == 4 and m.spec.intermediate_size == 256
    assert any("varies by layer" in w for w in m.warnings)
    with pytest.raises(ConfigError, match="3 entries for 4 layers"):
        _spec(tmp_path, "llama", _base("llama", n=4, **{"attention.head_count_kv": ([2, 2, 2], GGUFValueType.ARRAY)}))


def test_unsupported_architecture_and_projector_as_model(tmp_path):
    with pytest.raises(ConfigError, match="GGUF architecture 'mamba' is not supported"):
        _spec(tmp_path, "mamba", _base("mamba"))
    with pytest.raises(ConfigError, match="multimodal projector"):
        _spec(tmp_path, "clip", {"clip.vision.projection_dim": 64})
    with pytest.raises(ConfigError, match=re.escape("no llama.block_count")):
        _spec(tmp_path, "llama", {"llama.embedding_length": 64})


# --------------------------------------------------------------------------------------------
# mmproj and folders of quants


def _mmproj(dim: int) -> bytes:
    return make_gguf("clip", {"clip.vision.projection_dim": dim, "clip.has_vision_encoder": True},
                     {"v.patch_embd.weight": ("F16", [64, 64]), "mm.0.weight": ("F16", [64, dim])})


def test_mmproj_beside_the_model_adds_projector_bytes(tmp_path):
    path = _llama_file(tmp_path / "vlm-Q4_K_M.gguf")
    write_blob(tmp_path / "mmproj-F32.gguf", _mmproj(256))
    write_blob(tmp_path / "mmproj-F16.gguf", _mmproj(256))
    m = resolve_model(str(path))
    assert m.checkpoint.projector_bytes == 64 * 64 * 2 + 64 * 256 * 2  # one of the two
    assert any("mmproj-F16.gguf" in n for n in m.checkpoint.notes)  # closest to 4 bits, as llama.cpp picks
    assert all(t.role != "mmproj" for t in m.checkpoint.tensors)
    with pytest.raises(ConfigError, match="multimodal projector"):
        resolve_model(str(tmp_path / "mmproj-F16.gguf"))


def test_mmproj_of_another_model_is_skipped(tmp_path):
    path = _llama_file(tmp_path / "m-Q4_K_M.gguf")
    write_blob(tmp_path / "mmproj-F16.gguf", _mmproj(4096))
    m = resolve_model(str(path))
    assert m.checkpoint.projector_bytes == 0 and any("skipped" in n for n in m.checkpoint.notes)


def test_folder_of_quants(tmp_path):
    for q, t in (("Q8_0", "Q8_0"), ("Q4_K_M", "Q4_K"), ("IQ4_XS", "IQ4_XS")):
        write_blob(tmp_path / f"Tiny-{q}.gguf", make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(qtype=t)))
    default = resolve_model(str(tmp_path))
    assert default.checkpoint.files == (str(tmp_path / "Tiny-Q4_K_M.gguf"),)
    assert default.source.kind == "gguf"
    assert any(n.startswith(f"also in {tmp_path}: IQ4_XS ") and "Q8_0" in n for n in default.checkpoint.notes)
    iq4 = resolve_model(str(tmp_path), quant="iq4_xs")
    assert iq4.checkpoint.files == (str(tmp_path / "Tiny-IQ4_XS.gguf"),)
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model(str(tmp_path), quant="Q2_K")
    line = err.value.one_line()
    assert "no GGUF file for quant 'Q2_K'" in line and "Q8_0 0." in line and "GB" in line
    with pytest.raises(UsageError):
        resolve_model(str(tmp_path), quant="Q4_K_M; rm -rf /")


def test_safetensors_win_over_gguf_unless_a_gguf_path_is_given(tmp_path):
    from fakehub import make_safetensors

    cfg = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors").write_bytes(make_safetensors({"model.embed_tokens.weight": ("BF16", [1000, 256])}))
    gg = _llama_file(tmp_path / "m-Q4_K_M.gguf")
    folder = resolve_model(str(tmp_path))
    assert folder.checkpoint.format == "safetensors" and any("give a .gguf path" in n for n in folder.checkpoint.notes)
    assert resolve_model(str(gg)).checkpoint.format == "gguf"
    assert resolve_model(str(tmp_path), quant="Q4_K_M").checkpoint.format == "gguf"


# --------------------------------------------------------------------------------------------
# Hub GGUF repos: header only, over HTTP Range


def _hub_repo(fake_hub, repo="acme/Tiny-GGUF", sparse=True, extra=None):
    files = {}
    for q, t in (("Q4_K_M", "Q4_K"), ("Q8_0", "Q8_0"), ("UD-Q4_K_XL", "Q4_K")):
        files[f"Tiny-{q}.gguf"] = make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(qtype=t), with_data=not sparse)
    files["README.md"] = b"# tiny"
    files |= extra or {}
    fake_hub.add_repo(repo, files)
    return files


def test_hub_gguf_repo_reads_headers_only(fake_hub):
    files = _hub_repo(fake_hub, sparse=False)
    m = resolve_model("acme/Tiny-GGUF")
    assert m.source.kind == "hub" and m.source.location == "acme/Tiny-GGUF@main/Tiny-Q4_K_M.gguf"
    assert m.checkpoint.label == "GGUF Q4_K_M (file type 15)"
    assert any(n.startswith("also in acme/Tiny-GGUF: Q8_0 0.") and "UD-Q4_K_XL" in n for n in m.checkpoint.notes)
    gets = [r for r in fake_hub.requests if r.method == "GET" and ".gguf" in r.path]
    assert gets and all("range" in r.headers for r in gets)
    local = files["Tiny-Q4_K_M.gguf"]
    with LocalFile(_tmp_write(local)) as f:
        h = read_gguf_header(f)
    # not one byte past the tensor infos
    assert fake_hub.bytes_sent("Tiny-Q4_K_M.gguf") == h.header_bytes < len(local)
    assert m.checkpoint.total_bytes == h.tensor_bytes


def _tmp_write(blob) -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp())
    write_blob(d / "x.gguf", blob)
    return d / "x.gguf"


def test_hub_gguf_quant_picks_the_file(fake_hub):
    _hub_repo(fake_hub)
    q8 = resolve_model("acme/Tiny-GGUF", quant="Q8_0")
    assert q8.checkpoint.files == ("Tiny-Q8_0.gguf",) and set(q8.checkpoint.dtype_counts) == {"Q8_0", "Q6_K", "F32"}
    ud = resolve_model("acme/Tiny-GGUF", quant="ud-q4_k_xl")
    assert ud.checkpoint.files == ("Tiny-UD-Q4_K_XL.gguf",)
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("acme/Tiny-GGUF", quant="IQ2_XXS")
    assert "available: Q4_K_M 0." in err.value.one_line() and "UD-Q4_K_XL" in err.value.one_line()
    assert fake_hub.gets_without_range(".gguf") == []


def test_hub_gguf_default_is_q8_then_first_without_q4_k_m(fake_hub):
    fake_hub.add_repo("acme/a", {"m-Q8_0.gguf": make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(qtype="Q8_0")),
                                 "m-Q2_K.gguf": make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(qtype="Q2_K"))})
    assert resolve_model("acme/a").checkpoint.files == ("m-Q8_0.gguf",)
    fake_hub.add_repo("acme/b", {"m-Q2_K.gguf": make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(qtype="Q2_K")),
                                 "m-Q3_K_M.gguf": make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(qtype="Q3_K"))})
    assert resolve_model("acme/b").checkpoint.files == ("m-Q2_K.gguf",)


def test_hub_split_gguf_in_a_folder_with_mmproj(fake_hub):
    parts = make_gguf("llama", llama_gguf_kv(), llama_gguf_tensors(), split_max_tensors=8, name="Big-Q4_K_M.gguf",
                      with_data=False)
    files = {f"Q4_K_M/{n}": b for n, b in parts.items()}
    files["mmproj-F16.gguf"] = _mmproj(256)
    files["mmproj-F32.gguf"] = _mmproj(256)
    fake_hub.add_repo("acme/Big-GGUF", files)
    m = resolve_model("acme/Big-GGUF", quant="Q4_K_M")
    assert m.checkpoint.files == tuple(f"Q4_K_M/{n}" for n in sorted(parts))
    assert m.checkpoint.projector_bytes == 64 * 64 * 2 + 64 * 256 * 2
    assert any("mmproj-F16.gguf" in n for n in m.checkpoint.notes)
    header_total = sum(len(b.head) for b in parts.values())
    assert fake_hub.bytes_sent("-of-00003.gguf") <= header_total
    del files["Q4_K_M/Big-Q4_K_M-00002-of-00003.gguf"]
    fake_hub.add_repo("acme/Big-GGUF", files)
    with pytest.raises(ConfigError, match=re.escape("Big-Q4_K_M-00002-of-00003.gguf is missing from the repo")):
        resolve_model("acme/Big-GGUF", quant="Q4_K_M")


def test_hub_realistic_tokenizer_few_requests_exact_bytes(fake_hub):
    """A 128,256-token vocabulary with 280,147 merges, in an 8B-sized (sparse) file: how many requests and
    bytes a header read costs."""
    vocab = [f"tok{i:06d}" for i in range(128_256)]
    merges = [f"m{i:06d} x{i:04d}" for i in range(280_147)]
    kv = llama_gguf_kv(layers=32, hidden=4096, ff=14336, heads=32, kv_heads=8, vocab=10) | {"tokenizer.ggml.tokens": vocab, "tokenizer.ggml.merges": merges,
                                     "tokenizer.ggml.token_type": ([1] * len(vocab), GGUFValueType.ARRAY)}
    tensors = llama_gguf_tensors(layers=32, hidden=4096, ff=14336, vocab=128_256, kv_dim=1024)
    blob = make_gguf("llama", kv, tensors, with_data=False)
    assert isinstance(blob, SparseFile) and blob.size > 4 * 10**9
    fake_hub.add_repo("acme/L8-GGUF", {"L8-Q4_K_M.gguf": blob})
    t0 = time.monotonic()
    m = resolve_model("acme/L8-GGUF")
    elapsed = time.monotonic() - t0
    assert m.spec.vocab_size == 128_256 and m.spec.num_layers == 32
    ranged = [r for r in fake_hub.requests if r.path.endswith(".gguf")]
    sent = fake_hub.bytes_sent(".gguf")
    print(f"\nheader {len(blob.head):,} B of a {blob.size:,} B file: {len(ranged)} range requests, {sent:,} B, "
          f"{elapsed:.2f} s")
    with LocalFile(_tmp_write(blob)) as f:
        header_end = read_gguf_header(f).header_bytes
    token_types = 4 * len(vocab)  # a numeric array is skipped, not fetched (but for reads that overlap it)
    assert sent <= header_end - token_types // 2
    assert len(ranged) <= 60 and elapsed < 20


def test_estimate_quant_sizes_the_file_it_picked(fake_hub):
    """`estimate org/X-GGUF --quant Q8_0` weighs the Q8_0 file's tensors (not the default Q4_K_M, not a
    formula), as `llama-server -hf org/X-GGUF:Q8_0` would load it; an Unsloth dynamic tag works too."""
    from llm_mem.api import run_estimate
    from llm_mem.requests import EstimateRequest, ModelRef
    from llm_mem.workload import Workload

    _hub_repo(fake_hub)
    for quant, fname in (("Q8_0", "Tiny-Q8_0.gguf"), ("UD-Q4_K_XL", "Tiny-UD-Q4_K_XL.gguf"), (None, "Tiny-Q4_K_M.gguf")):
        want = resolve_model("acme/Tiny-GGUF", quant=quant).checkpoint
        assert want.files == (fname,)
        r = run_estimate(EstimateRequest(model=ModelRef(name="acme/Tiny-GGUF"),
                                         workload=Workload(quant=quant, context=512)))
        assert r.workload.runtime == "llamacpp"
        assert r.weights.bytes == want.total_bytes and r.weights.source == "checkpoint"
        assert r.weights.label == want.label
