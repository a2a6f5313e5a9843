"""Parameter counts against transformers on the meta device (tests/data/golden_params.json,
made by scripts/ground_truth_params.py with transformers 5.24 / torch 2.13) and published totals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_mem.params import count_parameters
from llm_mem.sources.configfile import load_config_file
from llm_mem.sources.parse import parse_config

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "golden_params.json").read_text())
PKG_MODELS = Path(__file__).parents[1] / "llm_mem" / "data" / "models"


def _config_path(key: str) -> Path:
    p = DATA / "hf-configs" / key
    return p if p.exists() else PKG_MODELS / key


def test_golden_covers_every_reference_config_and_bundled_model():
    ref = {str(p.relative_to(DATA / "hf-configs")) for p in (DATA / "hf-configs").glob("*/config*.json")}
    bundled = {p.name for p in PKG_MODELS.glob("*.json")}
    assert ref <= set(GOLDEN) and bundled <= set(GOLDEN)
    assert len(ref) == 33


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_counts_equal_transformers_meta_device(key):
    g = GOLDEN[key]
    c = count_parameters(parse_config(load_config_file(_config_path(key))))
    assert c.total == g["total"]
    assert c.multimodal == g.get("multimodal", 0)  # a wrapper's vision tower and projector
    assert c.embedding == g["token_embedding"] + g["position_embedding"]
    assert c.lm_head == g["lm_head"]
    assert (c.lm_head == 0) == g["tied"]
    assert c.per_layer == g["layers"]
    if g.get("experts"):
        assert c.experts_per_layer == g["experts"]
        assert c.per_expert == max(g["experts"]) // g["num_experts"]


@pytest.mark.parametrize("key,published", [
    # the acceptance figure, and the index total_size / 2 of the official checkpoint
    ("meta-llama__Llama-3.1-405B/config.json", 405_853_388_800),
    ("meta-llama__Llama-3.1-8B/config.json", 8_030_261_248),
    # gpt2 real parameters (notes.md: 124,439,808; its safetensors also holds attention-mask buffers)
    ("openai-community__gpt2/config.json", 124_439_808),
    # Llama-3.2-3B: tied embeddings stored once, 3,212,749,824 (truth/notes.md)
    ("meta-llama__Llama-3.2-3B/config.json", 3_212_749_824),
])
def test_published_totals(key, published):
    assert count_parameters(parse_config(load_config_file(DATA / "hf-configs" / key))).total == published


@pytest.mark.parametrize("key,active", [
    # Mixtral-8x7B: "12.9B active parameters" (Mistral AI announcement) incl. embeddings
    ("mistralai__Mixtral-8x7B-v0.1/config.json", 12_879_925_248),
    # gpt-oss-20b model card: 3.6B active excluding the 0.58B embedding table
    ("openai__gpt-oss-20b/config.json", 3_608_307_264 + 201_088 * 2_880),
])
def test_active_parameters_moe(key, active):
    c = count_parameters(parse_config(load_config_file(DATA / "hf-configs" / key)))
    assert c.active == active
    assert c.active < c.total


def test_dense_model_active_equals_total():
    c = count_parameters(parse_config(load_config_file(DATA / "hf-configs/meta-llama__Llama-3.1-8B/config.json")))
    assert c.active == c.total and c.per_expert == 0


def test_largest_layer_of_405b_is_the_embedding():
    # 128256 x 16384 = 2.1B parameters, more than one decoder layer (3.25B: 0.6B attention + 2.6B MLP)
    c = count_parameters(parse_config(load_config_file(DATA / "hf-configs/meta-llama__Llama-3.1-405B/config.json")))
    assert c.embedding == 128256 * 16384
    assert c.largest_layer == max(*c.per_layer, c.embedding)
