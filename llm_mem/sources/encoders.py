"""BERT-style encoders (BERT, RoBERTa, XLM-RoBERTa, CamemBERT, Data2Vec-Text, X-MOD, ELECTRA, ERNIE 1-3,
BertGeneration, BigBird, RoFormer, and the pre-LN RoBERTa-PreLayerNorm, XLM-RoBERTa-XL and Megatron-BERT) and
ModernBERT-decoder, as spec fields over the Llama-way reading of their config.

An encoder layer is post-LN: q/k/v and the attention output with biases, a LayerNorm after attention, a
plain up / down MLP with biases, a LayerNorm after it. Around the layers: word, position and token-type
embeddings with a LayerNorm, no final norm, and an LM-head transform (dense + LayerNorm) before the tied
decoder and its bias. The encoders attend both ways and keep no KV cache (``encoder``); a config with
``is_decoder`` (the causal-LM use of the same classes) keeps one.

Read off transformers 5.24 models/<family>/modeling_<family>.py: BertEmbeddings, BertSelfAttention,
BertSelfOutput, BertIntermediate, BertOutput, BertLMPredictionHead (cls.predictions.transform + bias),
RobertaLMHead (lm_head.dense, lm_head.layer_norm, lm_head.bias), XmodAdapter, ElectraModel.embeddings_project,
ElectraGeneratorPredictions, ModernBertDecoderLayer, ModernBertDecoderPredictionHead; defaults from
configuration_<family>.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Fields = dict[str, Any]
Extra = list[tuple[int, str, str, tuple[int, ...]]]

# Families whose encoder is RobertaEmbeddings + RobertaLMHead (their modeling files copy Roberta's).
ROBERTA_LIKE = frozenset({"roberta", "xlm-roberta", "camembert", "data2vec-text", "xmod", "roberta-prelayernorm",
                          "xlm-roberta-xl"})
# Pre-LN encoders: a final LayerNorm after the last layer (RobertaPreLayerNormModel.LayerNorm,
# XLMRobertaXLEncoder.LayerNorm, MegatronBertEncoder.ln), and no LayerNorm on the embeddings for two of them.
FINAL_NORM = frozenset({"roberta-prelayernorm", "xlm-roberta-xl", "megatron-bert"})
NO_EMBEDDING_NORM = frozenset({"xlm-roberta-xl", "megatron-bert"})
ENCODERS = ROBERTA_LIKE | {"bert", "electra", "megatron-bert", "ernie", "bert-generation", "big_bird", "roformer"}


def _get(cfg: dict[str, Any], key: str, default: Any) -> Any:
    v = cfg.get(key)
    return default if v is None else v


def _ln(out: Extra, layer: int, name: str, d: int, bias: bool = True) -> None:
    out.append((layer, f"{name}.weight", "norm", (d,)))
    if bias:
        out.append((layer, f"{name}.bias", "norm", (d,)))


def _dense(out: Extra, layer: int, name: str, role: str, o: int, i: int, bias: bool = True) -> None:
    out.append((layer, f"{name}.weight", role, (o, i)))
    if bias:
        out.append((layer, f"{name}.bias", "bias", (o,)))


def _encoder(cfg: dict[str, Any], family: str) -> Fields:
    h, v = int(cfg["hidden_size"]), int(cfg["vocab_size"])
    e = int(_get(cfg, "embedding_size", h)) if family == "electra" else h  # ElectraConfig.embedding_size
    positions = int(_get(cfg, "max_position_embeddings", 512))
    # BertGenerationEmbeddings has no token-type table (and BertGenerationOnlyLMHead no transform)
    types = 0 if family == "bert-generation" else int(_get(cfg, "type_vocab_size", 2))
    extra: Extra = []
    kw: Fields = {"norm": "layer", "norm_bias": True, "norms_per_layer": 2, "final_norm": False, "qkv_bias": True,
                  "o_bias": True, "mlp_kind": "plain", "mlp_bias": True, "qk_norm": False,
                  "tie_word_embeddings": bool(_get(cfg, "tie_word_embeddings", True)),
                  "encoder": not bool(cfg.get("is_decoder", False)), "layer_types": ("full",) * int(
                      cfg["num_hidden_layers"]), "sliding_window": None}
    if e == h:
        kw.update(position_embeddings=positions, embedding_norm=family not in NO_EMBEDDING_NORM,
                  final_norm=family in FINAL_NORM)
        if types:
            extra.append((-1, "embeddings.token_type_embeddings.weight", "pos_embed", (types, h)))
        if family == "roformer":  # RoFormerEncoder.embed_positions: a sinusoidal table of one head's width
            kw["position_embeddings"] = 0
            extra.append((-1, "encoder.embed_positions.weight", "pos_embed",
                          (positions, h // int(cfg["num_attention_heads"]))))
        if family == "ernie" and cfg.get("use_task_id"):  # ErnieEmbeddings: a task-type table with use_task_id
            extra.append((-1, "embeddings.task_type_embeddings.weight", "pos_embed",
                          (int(_get(cfg, "task_type_vocab_size", 3)), h)))
    else:
        # ELECTRA: embeddings of embedding_size, embeddings_project up to hidden (with bias), and the generator
        # head's dense back down (with bias): llm_mem.params' embed_proj_dim pair, their biases here
        kw.update(embed_proj_dim=e, position_embeddings=0, embedding_norm=False)
        extra.append((-1, "embeddings.position_embeddings.weight", "pos_embed", (positions, e)))
        if types:
            extra.append((-1, "embeddings.token_type_embeddings.weight", "pos_embed", (types, e)))
        _ln(extra, -1, "embeddings.LayerNorm", e)
        extra.append((-1, "embeddings_project.bias", "bias", (h,)))
        extra.append((-1, "generator_predictions.dense.bias", "bias", (e,)))
        _ln(extra, -1, "generator_predictions.LayerNorm", e)
        extra.append((-1, "generator_lm_head.bias", "bias", (v,)))
        kw["extra"] = tuple(extra)
        return kw
    if family == "xmod":
        # XmodOutput: one bottleneck adapter (dense1, dense2 with biases) per language, an own LayerNorm with
        # adapter_layer_norm; XmodEncoder: a final LayerNorm with pre_norm
        bottleneck = h // int(_get(cfg, "adapter_reduction_factor", 2))
        langs = cfg.get("languages") or ["en_XX"]
        for i in range(int(cfg["num_hidden_layers"])):
            for lang in langs:
                p = f"layers.{i}.output.adapter_modules.{lang}"
                _dense(extra, i, f"{p}.dense1", "mlp_up", bottleneck, h)
                _dense(extra, i, f"{p}.dense2", "mlp_down", h, bottleneck)
            if _get(cfg, "adapter_layer_norm", False):
                _ln(extra, i, f"layers.{i}.output.adapter_layer_norm", h)
        if _get(cfg, "pre_norm", False):
            _ln(extra, -1, "encoder.LayerNorm", h)
    if family == "big_bird":  # BigBirdForCausalLM builds BigBirdModel with its pooler (add_pooling_layer=True)
        _dense(extra, -1, "bert.pooler", "embed_proj", h, h)
        kw["qkv_bias"] = bool(_get(cfg, "use_bias", True))  # BigBirdSelfAttention: q/k/v biased by use_bias
    if family == "bert-generation":  # BertGenerationOnlyLMHead: the tied decoder and its bias
        extra.append((-1, "lm_head.bias", "bias", (v,)))
        if not kw["tie_word_embeddings"]:
            extra.append((-1, "lm_head.decoder.bias", "bias", (v,)))
        kw["extra"] = tuple(extra)
        return kw
    head = "lm_head" if family in ROBERTA_LIKE else "cls.predictions.transform"
    _dense(extra, -1, f"{head}.dense", "embed_proj", h, h)
    _ln(extra, -1, f"{head}.layer_norm" if family in ROBERTA_LIKE else f"{head}.LayerNorm", h)
    extra.append((-1, "lm_head.bias" if family in ROBERTA_LIKE else "cls.predictions.bias", "bias", (v,)))
    if not kw["tie_word_embeddings"]:  # _tied_weights_keys ties the decoder's bias to that one only with the weight
        decoder = "lm_head.decoder" if family in ROBERTA_LIKE else "cls.predictions.decoder"
        extra.append((-1, f"{decoder}.bias", "bias", (v,)))
    kw["extra"] = tuple(extra)
    return kw


def _modernbert_decoder(cfg: dict[str, Any]) -> Fields:
    """ModernBertDecoderLayer: attn_norm (Identity in layer 0), q/k/v and Wo with attention_bias, mlp_norm,
    Wi (2 x intermediate, one gated MLP) and Wo with mlp_bias; LayerNorms with norm_bias; an embedding norm
    and a final norm; the head's dense (classifier_bias) and norm before the tied decoder (decoder_bias)."""
    h, v, n = int(cfg["hidden_size"]), int(cfg["vocab_size"]), int(cfg["num_hidden_layers"])
    nb = bool(_get(cfg, "norm_bias", False))
    bias = bool(_get(cfg, "attention_bias", False))
    extra: Extra = []
    for i in range(1, n):
        _ln(extra, i, f"layers.{i}.attn_norm", h, nb)
    _dense(extra, -1, "lm_head.dense", "embed_proj", h, h, bool(_get(cfg, "classifier_bias", False)))
    _ln(extra, -1, "lm_head.norm", h, nb)
    if _get(cfg, "decoder_bias", True):
        extra.append((-1, "decoder.bias", "bias", (v,)))
    # ModernBertDecoderConfig.__post_init__: sliding_window = local_attention // 2 (the file's own is
    # overwritten); without layer_types, every global_attn_every_n_layers-th layer (3) is full, from layer 0
    window = int(_get(cfg, "local_attention", 128)) // 2 or None
    types = cfg.get("layer_types")
    if not isinstance(types, list) or len(types) != n:
        every = int(_get(cfg, "global_attn_every_n_layers", 3)) or 1
        types = ["sliding_attention" if i % every else "full_attention" for i in range(n)]
    kinds = tuple("sliding" if "sliding" in str(t) and window else "full" for t in types)
    return {"layer_types": kinds, "norm": "layer", "norm_bias": nb, "norms_per_layer": 1, "embedding_norm": True,
            "qkv_bias": bias, "o_bias": bias, "mlp_bias": bool(_get(cfg, "mlp_bias", False)), "qk_norm": False,
            "sliding_window": window, "tie_word_embeddings": bool(_get(cfg, "tie_word_embeddings", True)),
            "extra": tuple(extra)}


def _for(family: str) -> Callable[[dict[str, Any]], Fields]:
    return lambda cfg: _encoder(cfg, family)


FAMILIES: dict[str, Callable[[dict[str, Any]], Fields]] = {
    **{f: _for(f) for f in sorted(ENCODERS)},
    "modernbert-decoder": _modernbert_decoder,
}


def unsupported(cfg: dict[str, Any], family: str) -> str | None:
    """An option these layouts do not cover, or None."""
    if family == "roformer" and cfg.get("embedding_size") not in (None, cfg.get("hidden_size")):
        return "embedding_size"  # an embedding narrower than the encoder (embeddings_project), not laid out
    if family in ENCODERS and cfg.get("add_cross_attention"):
        return "add_cross_attention"  # a second attention block per layer (the encoder-decoder use)
    return None
