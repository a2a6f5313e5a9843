"""Vision towers and projectors of image-text-to-text models, as transformers 5.24 lays them out.

``multimodal(raw)`` returns every parameter tensor around the language model (role "vision" for the
tower, "mmproj" for the projector, the roles llm_mem.sources.roles gives them in checkpoints), the
number of tokens one image adds to the context, and whether the head is tied to the embedding (a
wrapper's own ``tie_word_embeddings``). None when the wrapper or its tower is not laid out here: the
parser then lets transformers count the model (llm_mem.sources.counted).

Defaults are the config classes' (transformers/models/<name>/configuration_<name>.py): a tower's
class defaults, and the wrapper's ``sub_configs_defaults`` init_kwargs when it has no vision_config.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Tensors = list[tuple[str, str, tuple[int, ...]]]

# Tower config classes' defaults (siglip/configuration_siglip.py SiglipVisionConfig,
# clip/configuration_clip.py CLIPVisionConfig, pixtral/configuration_pixtral.py PixtralVisionConfig).
_QWEN3_VISION = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "in_channels": 3,
                 "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 3584,
                 "num_position_embeddings": 2304, "deepstack_visual_indexes": [8, 16, 24]}
TOWER_DEFAULTS: dict[str, dict[str, Any]] = {
    "siglip_vision_model": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                            "num_attention_heads": 12, "num_channels": 3, "image_size": 224, "patch_size": 16,
                            "vision_use_head": True},
    "clip_vision_model": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                          "num_attention_heads": 12, "num_channels": 3, "image_size": 224, "patch_size": 32},
    "pixtral": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                "num_channels": 3, "image_size": 1024, "patch_size": 16},
    # qwen2_vl/configuration_qwen2_vl.py Qwen2VLVisionConfig, qwen2_5_vl/configuration_qwen2_5_vl.py
    # Qwen2_5_VLVisionConfig, qwen3_vl/configuration_qwen3_vl.py Qwen3VLVisionConfig (Qwen3VLMoeVisionConfig
    # has the same defaults)
    "qwen2_vl_vision": {"depth": 32, "embed_dim": 1280, "hidden_size": 3584, "mlp_ratio": 4, "num_heads": 16,
                        "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
    "qwen2_5_vl_vision": {"depth": 32, "hidden_size": 3584, "intermediate_size": 3420, "num_heads": 16,
                          "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                          "out_hidden_size": 3584},
    "qwen3_vl_vision": _QWEN3_VISION,
    "qwen3_vl_moe_vision": _QWEN3_VISION,
    # qwen3_5/configuration_qwen3_5.py Qwen3_5VisionConfig (Qwen3_5MoeVisionConfig the same)
    "qwen3_5_vision": {**_QWEN3_VISION, "deepstack_visual_indexes": []},
    "qwen3_5_moe_vision": {**_QWEN3_VISION, "deepstack_visual_indexes": []},
    # siglip2/configuration_siglip2.py Siglip2VisionConfig; idefics3 / smolvlm configuration files' vision configs
    "siglip2_vision_model": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                             "num_attention_heads": 12, "num_channels": 3, "patch_size": 16, "num_patches": 256,
                             "vision_use_head": True},
    "idefics3_vision": {"hidden_size": 1152, "intermediate_size": 3072, "num_hidden_layers": 12,
                        "num_attention_heads": 16, "num_channels": 3, "image_size": 224, "patch_size": 32},
    "smolvlm_vision": {"hidden_size": 1152, "intermediate_size": 3072, "num_hidden_layers": 12,
                       "num_attention_heads": 16, "num_channels": 3, "image_size": 224, "patch_size": 32},
    # glm4v/configuration_glm4v.py Glm4vVisionConfig
    "glm4v_vision": {"depth": 24, "hidden_size": 1536, "num_heads": 12, "in_channels": 3, "image_size": 336,
                     "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 4096,
                     "intermediate_size": 13696},
    # glm4v_moe/configuration_glm4v_moe.py Glm4vMoeVisionConfig: the same defaults
    "glm4v_moe_vision": {"depth": 24, "hidden_size": 1536, "num_heads": 12, "in_channels": 3, "image_size": 336,
                         "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 4096,
                         "intermediate_size": 13696},
    # kimi_k25/configuration_kimi_k25.py Kimi_K25VisionConfig
    "kimi_k25_vision": {"patch_size": 14, "pos_emb_height": 64, "pos_emb_width": 64, "num_hidden_layers": 27,
                        "hidden_size": 1152, "intermediate_size": 4304, "merge_kernel_size": [2, 2]},
    # internvl/configuration_internvl.py InternVLVisionConfig
    "internvl_vision": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                        "intermediate_size": 4096, "image_size": [448, 448], "patch_size": [14, 14], "num_channels": 3},
    # llama4/configuration_llama4.py Llama4VisionConfig
    "llama4_vision_model": {"hidden_size": 768, "num_hidden_layers": 34, "num_attention_heads": 16, "num_channels": 3,
                            "intermediate_size": 5632, "vision_output_dim": 7680, "image_size": 448, "patch_size": 14,
                            "projector_input_dim": 4096, "projector_output_dim": 4096},
}


@dataclass(frozen=True)
class Multimodal:
    """What sits around the language model."""

    tensors: tuple[tuple[str, str, tuple[int, ...]], ...]
    image_tokens: int | None  # tokens one image adds to the context (the largest image, where it varies)
    tie_word_embeddings: bool


def _side(v: Any) -> int:
    """One side of an image or patch size given as an int or [height, width] (square images only)."""
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


def _lin(out: Tensors, name: str, role: str, o: int, i: int, bias: bool) -> None:
    out.append((f"{name}.weight", role, (o, i)))
    if bias:
        out.append((f"{name}.bias", role, (o,)))


def _ln(out: Tensors, name: str, role: str, d: int, bias: bool = True) -> None:
    out.append((f"{name}.weight", role, (d,)))
    if bias:
        out.append((f"{name}.bias", role, (d,)))


def _vit_layers(out: Tensors, p: str, v: dict[str, Any]) -> None:
    """CLIP / SigLIP encoder layers (modeling_clip.py CLIPEncoderLayer, modeling_siglip.py SiglipEncoderLayer):
    LayerNorms with bias, q/k/v/out projections and fc1/fc2 with bias."""
    h, i = int(v["hidden_size"]), int(v["intermediate_size"])
    for n in range(int(v["num_hidden_layers"])):
        q = f"{p}.encoder.layers.{n}"
        _ln(out, f"{q}.layer_norm1", "vision", h)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            _lin(out, f"{q}.self_attn.{proj}", "vision", h, h, True)
        _ln(out, f"{q}.layer_norm2", "vision", h)
        _lin(out, f"{q}.mlp.fc1", "vision", i, h, True)
        _lin(out, f"{q}.mlp.fc2", "vision", h, i, True)


def siglip(p: str, v: dict[str, Any]) -> Tensors:
    """SiglipVisionModel (modeling_siglip.py): patch conv with bias, one position per patch, encoder,
    post LayerNorm, and the attention-pooling head when ``vision_use_head``."""
    h, c, patch = int(v["hidden_size"]), int(v["num_channels"]), _side(v["patch_size"])
    positions = (_side(v["image_size"]) // patch) ** 2
    out: Tensors = [(f"{p}.embeddings.patch_embedding.weight", "vision", (h, c, patch, patch)),
                    (f"{p}.embeddings.patch_embedding.bias", "vision", (h,)),
                    (f"{p}.embeddings.position_embedding.weight", "vision", (positions, h))]
    return out + _siglip_encoder(p, v)


def _siglip_encoder(p: str, v: dict[str, Any]) -> Tensors:
    """SigLIP's encoder layers, post LayerNorm and (vision_use_head) attention-pooling head."""
    h, i = int(v["hidden_size"]), int(v["intermediate_size"])
    out: Tensors = []
    _vit_layers(out, p, v)
    _ln(out, f"{p}.post_layernorm", "vision", h)
    if v.get("vision_use_head", True):  # SiglipMultiheadAttentionPoolingHead: probe, nn.MultiheadAttention, LN, MLP
        out.append((f"{p}.head.probe", "vision", (1, 1, h)))
        out += [(f"{p}.head.attention.in_proj_weight", "vision", (3 * h, h)),
                (f"{p}.head.attention.in_proj_bias", "vision", (3 * h,))]
        _lin(out, f"{p}.head.attention.out_proj", "vision", h, h, True)
        _ln(out, f"{p}.head.layernorm", "vision", h)
        _lin(out, f"{p}.head.mlp.fc1", "vision", i, h, True)
        _lin(out, f"{p}.head.mlp.fc2", "vision", h, i, True)
    return out


def clip(p: str, v: dict[str, Any]) -> Tensors:
    """CLIPVisionModel (modeling_clip.py): class embedding, patch conv without bias, positions for the
    patches and the class token, pre and post LayerNorm (no projection: that is CLIPVisionModelWithProjection)."""
    h, c, patch = int(v["hidden_size"]), int(v["num_channels"]), _side(v["patch_size"])
    out: Tensors = [(f"{p}.embeddings.class_embedding", "vision", (h,)),
                    (f"{p}.embeddings.patch_embedding.weight", "vision", (h, c, patch, patch)),
                    (f"{p}.embeddings.position_embedding.weight", "vision",
                     ((_side(v["image_size"]) // patch) ** 2 + 1, h))]
    _ln(out, f"{p}.pre_layrnorm", "vision", h)
    _vit_layers(out, p, v)
    _ln(out, f"{p}.post_layernorm", "vision", h)
    return out


def pixtral(p: str, v: dict[str, Any]) -> Tensors:
    """PixtralVisionModel (modeling_pixtral.py): patch conv without bias, RMSNorm ln_pre, layers of
    RMSNorms, bias-free attention (heads x head_dim) and gated MLP; no final norm."""
    h, i, c, patch = int(v["hidden_size"]), int(v["intermediate_size"]), int(v["num_channels"]), _side(v["patch_size"])
    inner = int(v.get("num_attention_heads", 16)) * int(v.get("head_dim") or h // int(v.get("num_attention_heads", 16)))
    out: Tensors = [(f"{p}.patch_conv.weight", "vision", (h, c, patch, patch)), (f"{p}.ln_pre.weight", "vision", (h,))]
    for n in range(int(v["num_hidden_layers"])):
        q = f"{p}.transformer.layers.{n}"
        out.append((f"{q}.attention_norm.weight", "vision", (h,)))
        for proj in ("gate_proj", "up_proj"):
            _lin(out, f"{q}.feed_forward.{proj}", "vision", i, h, False)
        _lin(out, f"{q}.feed_forward.down_proj", "vision", h, i, False)
        for proj in ("q_proj", "k_proj", "v_proj"):
            _lin(out, f"{q}.attention.{proj}", "vision", inner, h, False)
        _lin(out, f"{q}.attention.o_proj", "vision", h, inner, False)
        out.append((f"{q}.ffn_norm.weight", "vision", (h,)))
    return out


def _qwen_merger(out: Tensors, p: str, v: dict[str, Any], width: int, norm: int) -> None:
    """Qwen3-VL's patch merger (Qwen3VLVisionPatchMerger): a LayerNorm over ``norm`` channels, then an MLP from
    the merged patches (``width`` = tower width x spatial_merge_size^2) to out_hidden_size, biases throughout."""
    _ln(out, f"{p}.norm", "mmproj", norm)
    _lin(out, f"{p}.linear_fc1", "mmproj", width, width, True)
    _lin(out, f"{p}.linear_fc2", "mmproj", int(v.get("out_hidden_size") or v["hidden_size"]), width, True)


def qwen2_vl(p: str, v: dict[str, Any]) -> Tensors:
    """Qwen2VisionTransformerPretrainedModel (modeling_qwen2_vl.py): a Conv3d patch embedding without bias
    (temporal_patch_size x patch_size^2), blocks of LayerNorms with bias, fused qkv and proj with bias and a
    plain fc1 / fc2 MLP of embed_dim x mlp_ratio, and PatchMerger (LayerNorm ln_q, then embed_dim x merge^2 ->
    same -> hidden_size, biases); hidden_size is the vision config's own (the merger's output width)."""
    e, c, patch = int(v["embed_dim"]), int(v.get("in_channels") or v.get("in_chans") or 3), _side(v["patch_size"])
    width = e * int(v["spatial_merge_size"]) ** 2
    out: Tensors = [(f"{p}.patch_embed.proj.weight", "vision", (e, c, _side(v["temporal_patch_size"]), patch, patch))]
    inner = int(e * float(v["mlp_ratio"]))
    for n in range(int(v["depth"])):
        _qwen_vit_block(out, f"{p}.blocks.{n}", e, inner, "fc1", "fc2")
    _ln(out, f"{p}.merger.ln_q", "mmproj", e)
    _lin(out, f"{p}.merger.mlp.0", "mmproj", width, width, True)
    _lin(out, f"{p}.merger.mlp.2", "mmproj", int(v["hidden_size"]), width, True)
    return out


def _qwen_vit_block(out: Tensors, q: str, e: int, inner: int, fc1: str, fc2: str) -> None:
    """A Qwen2-VL / Qwen3-VL vision block: LayerNorms with bias, fused qkv and proj, a two-layer MLP, all biased."""
    _ln(out, f"{q}.norm1", "vision", e)
    _ln(out, f"{q}.norm2", "vision", e)
    _lin(out, f"{q}.attn.qkv", "vision", 3 * e, e, True)
    _lin(out, f"{q}.attn.proj", "vision", e, e, True)
    _lin(out, f"{q}.mlp.{fc1}", "vision", inner, e, True)
    _lin(out, f"{q}.mlp.{fc2}", "vision", e, inner, True)


def _gated_vit_block(out: Tensors, q: str, e: int, inner: int, *, qkv_bias: bool, bias: bool) -> None:
    """A vision block of two RMSNorms, fused qkv and proj, and a gated MLP (Qwen2.5-VL, GLM-4V); ``bias``
    for proj and the MLP."""
    out += [(f"{q}.norm1.weight", "vision", (e,)), (f"{q}.norm2.weight", "vision", (e,))]
    _lin(out, f"{q}.attn.qkv", "vision", 3 * e, e, qkv_bias)
    _lin(out, f"{q}.attn.proj", "vision", e, e, bias)
    _lin(out, f"{q}.mlp.gate_proj", "vision", inner, e, bias)
    _lin(out, f"{q}.mlp.up_proj", "vision", inner, e, bias)
    _lin(out, f"{q}.mlp.down_proj", "vision", e, inner, bias)


def qwen2_5_vl(p: str, v: dict[str, Any]) -> Tensors:
    """Qwen2_5_VisionTransformerPretrainedModel (modeling_qwen2_5_vl.py): Qwen2-VL's patch embedding at
    hidden_size, blocks of RMSNorms, qkv / proj with bias and a gated MLP of intermediate_size with biases;
    the merger's ln_q is an RMSNorm, its MLP goes hidden x merge^2 -> same -> out_hidden_size."""
    e, c, patch = int(v["hidden_size"]), int(v.get("in_channels") or v.get("in_chans") or 3), _side(v["patch_size"])
    i, width = int(v["intermediate_size"]), int(v["hidden_size"]) * int(v["spatial_merge_size"]) ** 2
    out: Tensors = [(f"{p}.patch_embed.proj.weight", "vision", (e, c, _side(v["temporal_patch_size"]), patch, patch))]
    for n in range(int(v["depth"])):
        _gated_vit_block(out, f"{p}.blocks.{n}", e, i, qkv_bias=True, bias=True)
    out.append((f"{p}.merger.ln_q.weight", "mmproj", (e,)))
    _lin(out, f"{p}.merger.mlp.0", "mmproj", width, width, True)
    _lin(out, f"{p}.merger.mlp.2", "mmproj", int(v.get("out_hidden_size") or 3584), width, True)
    return out


def qwen3_vl(p: str, v: dict[str, Any]) -> Tensors:
    """Qwen3VLVisionModel (modeling_qwen3_vl.py): a Conv3d patch embedding with bias, a learned position table
    (num_position_embeddings), blocks of LayerNorms with bias, qkv / proj and linear_fc1 / linear_fc2 with bias;
    the merger (LayerNorm over hidden_size, hidden x merge^2 -> same -> out_hidden_size) and one DeepStack
    merger per deepstack_visual_indexes entry (the same, its LayerNorm after the shuffle: hidden x merge^2)."""
    e, c, patch = int(v["hidden_size"]), int(v.get("in_channels") or 3), _side(v["patch_size"])
    i, width = int(v["intermediate_size"]), e * int(v["spatial_merge_size"]) ** 2
    out: Tensors = [(f"{p}.patch_embed.proj.weight", "vision", (e, c, _side(v["temporal_patch_size"]), patch, patch)),
                    (f"{p}.patch_embed.proj.bias", "vision", (e,)),
                    (f"{p}.pos_embed.weight", "vision", (int(v["num_position_embeddings"]), e))]
    for n in range(int(v["depth"])):
        _qwen_vit_block(out, f"{p}.blocks.{n}", e, i, "linear_fc1", "linear_fc2")
    _qwen_merger(out, f"{p}.merger", v, width, e)
    for k in range(len(v.get("deepstack_visual_indexes") or ())):
        _qwen_merger(out, f"{p}.deepstack_merger_list.{k}", v, width, width)
    return out


def qwen3_5_vision(p: str, v: dict[str, Any]) -> Tensors:
    """Qwen3_5VisionModel (modeling_qwen3_5.py, and Qwen3.5-MoE's): Qwen3-VL's tower and merger without the
    DeepStack mergers (Qwen3_5VisionConfig has no deepstack_visual_indexes)."""
    return qwen3_vl(p, {**v, "deepstack_visual_indexes": []})


def _sides(v: Any) -> tuple[int, int]:
    """(height, width) of an image or patch size given as an int or [height, width]."""
    if isinstance(v, (list, tuple)):
        return int(v[0]), int(v[-1])
    return int(v), int(v)


def internvl_vision(p: str, v: dict[str, Any]) -> Tensors:
    """InternVLVisionModel (modeling_internvl.py): a CLS token, a patch conv with bias, one position per patch plus
    the CLS token (use_absolute_position_embeddings), a mask token with use_mask_token; layers of two norms
    (LayerNorms with bias, or RMSNorms with norm_type rms_norm), q/k/v biased by attention_bias, q/k RMSNorms over
    the width with use_qk_norm, projection_layer and fc1 / fc2 with bias, and the layer scales lambda_1 / lambda_2;
    a final LayerNorm unless use_mean_pooling."""
    h, i, c = int(v["hidden_size"]), int(v["intermediate_size"]), int(v["num_channels"])
    (ih, iw), (ph, pw) = _sides(v["image_size"]), _sides(v["patch_size"])
    out: Tensors = [(f"{p}.embeddings.cls_token", "vision", (1, 1, h)),
                    (f"{p}.embeddings.patch_embeddings.projection.weight", "vision", (h, c, ph, pw)),
                    (f"{p}.embeddings.patch_embeddings.projection.bias", "vision", (h,))]
    if v.get("use_mask_token"):
        out.append((f"{p}.embeddings.mask_token", "vision", (1, 1, h)))
    if v.get("use_absolute_position_embeddings", True):
        out.append((f"{p}.embeddings.position_embeddings", "vision", (1, (ih // ph) * (iw // pw) + 1, h)))
    rms = v.get("norm_type", "layer_norm") == "rms_norm"
    bias = bool(v.get("attention_bias", False))
    for n in range(int(v["num_hidden_layers"])):
        q = f"{p}.encoder.layer.{n}"
        out += [(f"{q}.lambda_1", "vision", (h,)), (f"{q}.lambda_2", "vision", (h,))]
        for proj in ("q_proj", "k_proj", "v_proj"):
            _lin(out, f"{q}.attention.{proj}", "vision", h, h, bias)
        _lin(out, f"{q}.attention.projection_layer", "vision", h, h, True)
        if v.get("use_qk_norm"):
            out += [(f"{q}.attention.q_norm.weight", "vision", (h,)), (f"{q}.attention.k_norm.weight", "vision", (h,))]
        _lin(out, f"{q}.mlp.fc1", "vision", i, h, True)
        _lin(out, f"{q}.mlp.fc2", "vision", h, i, True)
        _ln(out, f"{q}.layernorm_before", "vision", h, not rms)
        _ln(out, f"{q}.layernorm_after", "vision", h, not rms)
    if not v.get("use_mean_pooling", True):
        _ln(out, f"{p}.layernorm", "vision", h)
    return out


def _internvl(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """InternVLMultiModalProjector: a LayerNorm over the pixel-shuffled width (vision x (1 / downsample_ratio)^2),
    linear_1 to the text width and linear_2, with biases; InternVLConfig.image_seq_length tokens per tile."""
    width = int(v["hidden_size"]) * int(1 / float(raw.get("downsample_ratio", 0.5))) ** 2
    out: Tensors = []
    _ln(out, "multi_modal_projector.layer_norm", "mmproj", width)
    _lin(out, "multi_modal_projector.linear_1", "mmproj", text_h, width, True)
    _lin(out, "multi_modal_projector.linear_2", "mmproj", text_h, text_h, True)
    return out, int(raw.get("image_seq_length", 256))


def siglip2(p: str, v: dict[str, Any]) -> Tensors:
    """Siglip2VisionTransformer (modeling_siglip2.py): a linear patch embedding with bias (channels x patch^2 in),
    num_patches positions, SigLIP's encoder and post LayerNorm, and the pooling head with vision_use_head."""
    h, c, patch = int(v["hidden_size"]), int(v["num_channels"]), _side(v["patch_size"])
    return [(f"{p}.embeddings.patch_embedding.weight", "vision", (h, c * patch * patch)),
            (f"{p}.embeddings.patch_embedding.bias", "vision", (h,)),
            (f"{p}.embeddings.position_embedding.weight", "vision", (int(v["num_patches"]), h)),
            *_siglip_encoder(p, v)]


def _idefics3(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """Idefics3Connector / SmolVLMConnector: pixel shuffle by scale_factor, then one bias-free linear from
    vision x scale_factor^2 to the text width; an image (tile) is (side / patch / scale)^2 tokens."""
    scale = int(raw.get("scale_factor", 2))
    out: Tensors = []
    _lin(out, "connector.modality_projection.proj", "mmproj", text_h, int(v["hidden_size"]) * scale * scale, False)
    return out, (_side(v["image_size"]) // _side(v["patch_size"]) // scale) ** 2


def _lfm2_vl(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """Lfm2VlMultiModalProjector: pixel unshuffle by downsample_factor, a LayerNorm with projector_use_layernorm,
    linear_1 to projector_hidden_size and linear_2 to the text width, biased by projector_bias; images take a
    processor-chosen number of tokens."""
    width = int(v["hidden_size"]) * int(raw.get("downsample_factor", 2)) ** 2
    mid, bias = int(raw.get("projector_hidden_size", 2560)), bool(raw.get("projector_bias", True))
    out: Tensors = []
    if raw.get("projector_use_layernorm", True):
        _ln(out, "multi_modal_projector.layer_norm", "mmproj", width)
    _lin(out, "multi_modal_projector.linear_1", "mmproj", mid, width, bias)
    _lin(out, "multi_modal_projector.linear_2", "mmproj", text_h, mid, bias)
    return out, None


def kimi_k25_vision(p: str, v: dict[str, Any]) -> Tensors:
    """Kimi_K25VisionModel (modeling_kimi_k25.py, MoonViT): a 3-channel patch conv with bias, a learned
    pos_emb_height x pos_emb_width position grid (the time axis is sinusoidal, no parameters), layers of
    LayerNorms, q/k/v/proj and fc1 / fc2 with biases, and a final LayerNorm."""
    h, i, patch = int(v["hidden_size"]), int(v["intermediate_size"]), _side(v["patch_size"])
    out: Tensors = [(f"{p}.patch_embed.proj.weight", "vision", (h, 3, patch, patch)),
                    (f"{p}.patch_embed.proj.bias", "vision", (h,)),
                    (f"{p}.patch_embed.pos_emb.position_embeddings", "vision",
                     (int(v["pos_emb_height"]), int(v["pos_emb_width"]), h))]
    for n in range(int(v["num_hidden_layers"])):
        q = f"{p}.layers.{n}"
        _ln(out, f"{q}.norm1", "vision", h)
        _ln(out, f"{q}.norm2", "vision", h)
        for proj in ("q_proj", "k_proj", "v_proj", "proj"):
            _lin(out, f"{q}.attn.{proj}", "vision", h, h, True)
        _lin(out, f"{q}.mlp.fc1", "vision", i, h, True)
        _lin(out, f"{q}.mlp.fc2", "vision", h, i, True)
    _ln(out, f"{p}.final_layernorm", "vision", h)
    return out


def _kimi_k25(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """Kimi_K25MultimodalProjection: a LayerNorm over projection_hidden_size, in_proj over the merged patches
    (hidden x merge_kernel_size area) and out_proj to the text width, with biases; images take a dynamic number
    of tokens."""
    k = v.get("merge_kernel_size") or [2, 2]
    width = int(v["hidden_size"]) * int(k[0]) * int(k[-1])
    out: Tensors = []
    _ln(out, "mm_projector.pre_norm", "mmproj", int(raw.get("projection_hidden_size") or 1152))
    _lin(out, "mm_projector.in_proj", "mmproj", width, width, True)
    _lin(out, "mm_projector.out_proj", "mmproj", text_h, width, True)
    return out, None


def _cohere2_vision(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """Cohere2VisionMultiModalProjector: pixel shuffle by downsample_factor, linear_1 to
    alignment_intermediate_size, SwiGLU (halving it), linear_2 to the text width, with biases; one image tile is
    (side / patch / downsample)^2 tokens."""
    ds, mid = int(raw.get("downsample_factor", 2)), int(raw.get("alignment_intermediate_size", 36864))
    out: Tensors = []
    _lin(out, "multi_modal_projector.linear_1", "mmproj", mid, int(v["hidden_size"]) * ds * ds, True)
    _lin(out, "multi_modal_projector.linear_2", "mmproj", text_h, mid // 2, True)
    return out, (_side(v["image_size"]) // _side(v["patch_size"]) // ds) ** 2


def glm4v_vision(p: str, v: dict[str, Any]) -> Tensors:
    """Glm4vVisionModel (modeling_glm4v.py): a learned position per patch of the base image, a Conv3d patch
    embedding with bias, blocks of RMSNorms, fused qkv (attention_bias) and a bias-free proj, a gated bias-free
    MLP of out_hidden_size, then post_layernorm, a Conv2d downsample by spatial_merge_size (with bias) to
    out_hidden_size, and the merger (bias-free proj, a LayerNorm with bias, a gated MLP of intermediate_size);
    post_conv_layernorm is also built."""
    h, c, patch = int(v["hidden_size"]), int(v.get("in_channels") or 3), _side(v["patch_size"])
    o, i, m = int(v["out_hidden_size"]), int(v["intermediate_size"]), int(v["spatial_merge_size"])
    bias = bool(v.get("attention_bias", False))
    positions = (_side(v["image_size"]) // patch) ** 2
    out: Tensors = [(f"{p}.embeddings.position_embedding.weight", "vision", (positions, h)),
                    (f"{p}.patch_embed.proj.weight", "vision", (h, c, _side(v["temporal_patch_size"]), patch, patch)),
                    (f"{p}.patch_embed.proj.bias", "vision", (h,))]
    for n in range(int(v["depth"])):
        _gated_vit_block(out, f"{p}.blocks.{n}", h, o, qkv_bias=bias, bias=False)
    out += [(f"{p}.post_conv_layernorm.weight", "vision", (h,)), (f"{p}.post_layernorm.weight", "vision", (h,)),
            (f"{p}.downsample.weight", "mmproj", (o, h, m, m)), (f"{p}.downsample.bias", "mmproj", (o,))]
    _lin(out, f"{p}.merger.proj", "mmproj", o, o, False)
    _ln(out, f"{p}.merger.post_projection_norm", "mmproj", o)
    _lin(out, f"{p}.merger.gate_proj", "mmproj", i, o, False)
    _lin(out, f"{p}.merger.up_proj", "mmproj", i, o, False)
    _lin(out, f"{p}.merger.down_proj", "mmproj", o, i, False)
    return out


def llama4_vision(p: str, v: dict[str, Any]) -> Tensors:
    """Llama4VisionModel (modeling_llama4.py): an unfold patch embedding (a bias-free linear from channels x
    patch^2), a class embedding and one position per patch plus the class token, LayerNorms before and after,
    encoder layers of LayerNorms, q/k/v/o and fc1 / fc2 all with bias, and the pixel-shuffle adapter
    (Llama4VisionMLP2: fc1 intermediate_size -> projector_input_dim, fc2 projector_output_dim square, no bias)."""
    h, i, c, patch = int(v["hidden_size"]), int(v["intermediate_size"]), int(v["num_channels"]), _side(v["patch_size"])
    out: Tensors = [(f"{p}.class_embedding", "vision", (h,)),
                    (f"{p}.positional_embedding_vlm", "vision", ((_side(v["image_size"]) // patch) ** 2 + 1, h)),
                    (f"{p}.patch_embedding.linear.weight", "vision", (h, c * patch * patch))]
    _ln(out, f"{p}.layernorm_pre", "vision", h)
    _ln(out, f"{p}.layernorm_post", "vision", h)
    for n in range(int(v["num_hidden_layers"])):
        q = f"{p}.model.layers.{n}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            _lin(out, f"{q}.self_attn.{proj}", "vision", h, h, True)
        _lin(out, f"{q}.mlp.fc1", "vision", i, h, True)
        _lin(out, f"{q}.mlp.fc2", "vision", h, i, True)
        _ln(out, f"{q}.input_layernorm", "vision", h)
        _ln(out, f"{q}.post_attention_layernorm", "vision", h)
    _lin(out, f"{p}.vision_adapter.mlp.fc1", "vision", int(v["projector_input_dim"]), i, False)
    _lin(out, f"{p}.vision_adapter.mlp.fc2", "vision", int(v["projector_output_dim"]),
         int(v["projector_output_dim"]), False)
    return out


def _llama4(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """Llama4MultiModalProjector: one bias-free linear from vision_output_dim to the text width. An image is
    split into a processor-chosen number of tiles, so no token count is assumed."""
    out: Tensors = []
    _lin(out, "multi_modal_projector.linear_1", "mmproj", text_h, int(v["vision_output_dim"]), False)
    return out, None


TOWERS: dict[str, Callable[[str, dict[str, Any]], Tensors]] = {
    "siglip_vision_model": siglip, "clip_vision_model": clip, "pixtral": pixtral, "qwen2_vl_vision": qwen2_vl,
    "qwen2_5_vl_vision": qwen2_5_vl, "qwen3_vl_vision": qwen3_vl, "qwen3_vl_moe_vision": qwen3_vl,
    "llama4_vision_model": llama4_vision, "qwen3_5_vision": qwen3_5_vision, "qwen3_5_moe_vision": qwen3_5_vision,
    "internvl_vision": internvl_vision, "siglip2_vision_model": siglip2, "kimi_k25_vision": kimi_k25_vision,
    "glm4v_vision": glm4v_vision, "glm4v_moe_vision": glm4v_vision,
    # Idefics3VisionTransformer / SmolVLMVisionTransformer: SigLIP's tower without the pooling head
    "idefics3_vision": lambda p, v: siglip(p, {**v, "vision_use_head": False}),
    "smolvlm_vision": lambda p, v: siglip(p, {**v, "vision_use_head": False})}
# Old checkpoints name the tower after the wrapper (configuration_qwen2_vl.py / qwen3_vl / qwen3_vl_moe
# __post_init__: "old ckpt with incorrect model type -> override manually").
_TOWER_ALIASES = {"qwen2_vl": "qwen2_vl_vision", "qwen2_5_vl": "qwen2_5_vl_vision", "qwen3_vl": "qwen3_vl_vision",
                  "qwen3_vl_moe": "qwen3_vl_moe_vision"}


def _feature_layers(raw: dict[str, Any], default: int | list[int]) -> int:
    layer = raw.get("vision_feature_layer", default)
    return len(layer) if isinstance(layer, list) else 1


def _gemma3(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """Gemma3MultiModalProjector (modeling_gemma3.py): a (vision, text) matrix and an RMSNorm (weight only)."""
    vh = int(v["hidden_size"])
    out: Tensors = [("multi_modal_projector.mm_input_projection_weight", "mmproj", (vh, text_h)),
                    ("multi_modal_projector.mm_soft_emb_norm.weight", "mmproj", (vh,))]
    return out, int(raw.get("mm_tokens_per_image", 256))  # Gemma3Config.mm_tokens_per_image


def _llava_mlp(raw: dict[str, Any], v: dict[str, Any], text_h: int, layer_default: int, bias_default: bool,
               in_scale: int = 1) -> Tensors:
    """linear_1 (vision x feature layers -> text), GELU, linear_2 (text -> text) (modeling_llava.py
    LlavaMultiModalProjector, modeling_mistral3.py Mistral3MultiModalProjector)."""
    bias = bool(raw.get("multimodal_projector_bias", bias_default))
    out: Tensors = []
    _lin(out, "multi_modal_projector.linear_1", "mmproj", text_h,
         int(v["hidden_size"]) * _feature_layers(raw, layer_default) * in_scale, bias)
    _lin(out, "multi_modal_projector.linear_2", "mmproj", text_h, text_h, bias)
    return out


def _llava(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    # LlavaConfig: vision_feature_layer -2, multimodal_projector_bias True, image_seq_length 576
    return _llava_mlp(raw, v, text_h, -2, True), int(raw.get("image_seq_length", 576))


def _mistral3(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """Mistral3MultiModalProjector: RMSNorm, Mistral3PatchMerger (merge^2 patches -> one, no bias), then the
    LLaVA MLP (Mistral3Config: vision_feature_layer -1, multimodal_projector_bias False, spatial_merge_size 2)."""
    vh, merge = int(v["hidden_size"]), int(raw.get("spatial_merge_size", 2))
    out: Tensors = [("multi_modal_projector.norm.weight", "mmproj", (vh,)),
                    ("multi_modal_projector.patch_merger.merging_layer.weight", "mmproj", (vh, vh * merge * merge))]
    out += _llava_mlp(raw, v, text_h, -1, False)
    side = _side(v["image_size"]) // _side(v["patch_size"]) // merge  # the largest image, merged patches per side
    return out, side * side


def _vipllava(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """VipLlavaMultiModalProjector: a LayerNorm and linear_1 over the concatenated feature layers
    (VipLlavaConfig.vision_feature_layer: 5 layers), linear_2; biases always."""
    width = int(v["hidden_size"]) * _feature_layers(raw, [-2, -5, -8, -11, 6])
    out: Tensors = []
    _ln(out, "multi_modal_projector.projector_layernorm", "mmproj", width)
    _lin(out, "multi_modal_projector.linear_1", "mmproj", text_h, width, True)
    _lin(out, "multi_modal_projector.linear_2", "mmproj", text_h, text_h, True)
    return out, int(raw.get("image_seq_length", 576))


def _paligemma(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    """PaliGemmaMultiModalProjector: one linear, vision -> projection_dim (PaliGemmaConfig 2048), with bias;
    one token per patch."""
    out: Tensors = []
    _lin(out, "multi_modal_projector.linear", "mmproj", int(raw.get("projection_dim") or 2048), int(v["hidden_size"]),
         True)
    return out, (_side(v["image_size"]) // _side(v["patch_size"])) ** 2


def _llava_next(layer: int, seq: int | None) -> Callable[[dict[str, Any], dict[str, Any], int],
                                                         tuple[Tensors, int | None]]:
    """LLaVA-NeXT / OneVision: the LLaVA MLP and ``image_newline`` (a text-width vector the model appends
    after each row of patches, modeling_llava_next.py); ``seq``: tokens of the base image (None: one per patch)."""
    def build(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
        out = _llava_mlp(raw, v, text_h, layer, True)
        per_patch = (_side(v["image_size"]) // _side(v["patch_size"])) ** 2
        tokens = int(raw.get("image_seq_length") or seq) if seq else per_patch
        return [*out, ("image_newline", "mmproj", (text_h,))], tokens
    return build


def _no_projector(raw: dict[str, Any], v: dict[str, Any], text_h: int) -> tuple[Tensors, int | None]:
    return [], None


@dataclass(frozen=True)
class Wrapper:
    """How one image-text-to-text wrapper builds its parts (transformers 5.24 configuration_<name>.py)."""

    vision_type: str  # the tower's model_type when vision_config does not say
    vision_init: dict[str, Any]  # sub_configs_defaults init_kwargs, used when there is no vision_config
    projector: Callable[[dict[str, Any], dict[str, Any], int], tuple[Tensors, int | None]]
    tie_default: bool  # the wrapper config's own tie_word_embeddings default
    tie_from_text: bool = False  # LlavaConfig.__post_init__: a tied text config ties the wrapper
    towers: tuple[str, ...] = ("model.vision_tower",)  # Video-LLaVA builds two towers from one vision_config


# The CLIP ViT-L/14 at 336 px of the LLaVA family's sub_configs_defaults.
_CLIP_L336 = {"intermediate_size": 4096, "hidden_size": 1024, "patch_size": 14, "image_size": 336,
              "num_hidden_layers": 24, "num_attention_heads": 16}

WRAPPERS: dict[str, Wrapper] = {
    # configuration_gemma3.py: vision_config AutoConfig siglip_vision_model (class defaults), tie True
    "gemma3": Wrapper("siglip_vision_model", {}, _gemma3, True),
    # configuration_mistral3.py: Pixtral with the Mistral-Small-3.1 sizes, tie True
    "mistral3": Wrapper("pixtral", {"intermediate_size": 4096, "hidden_size": 1024, "patch_size": 14,
                                    "image_size": 1540, "num_hidden_layers": 24, "num_attention_heads": 16,
                                    "head_dim": 64}, _mistral3, True),
    # configuration_llava.py: CLIP ViT-L/14-336, tie False unless the text config ties
    "llava": Wrapper("clip_vision_model", _CLIP_L336, _llava, False, tie_from_text=True),
    # configuration_llava_next(_video).py: the same CLIP; only the video config forwards a tied text config
    "llava_next": Wrapper("clip_vision_model", _CLIP_L336, _llava_next(-2, 576), False),
    "llava_next_video": Wrapper("clip_vision_model", _CLIP_L336, _llava_next(-2, 576), False, tie_from_text=True),
    # configuration_llava_onevision.py: SigLIP-so400m at 384 px without the pooling head, feature layer -1
    "llava_onevision": Wrapper("siglip_vision_model", {"hidden_size": 1152, "intermediate_size": 4304, "patch_size": 14,
                                                       "image_size": 384, "num_hidden_layers": 26,
                                                       "num_attention_heads": 16, "vision_use_head": False},
                               _llava_next(-1, None), False, tie_from_text=True),
    # configuration_vipllava.py: CLIP ViT-L/14-336, five feature layers
    "vipllava": Wrapper("clip_vision_model", _CLIP_L336, _vipllava, False),
    # configuration_video_llava.py: CLIP ViT-L/14-224 for images and for video frames (two towers)
    "video_llava": Wrapper("clip_vision_model", {**_CLIP_L336, "image_size": 224},
                           lambda raw, v, h: (_llava_mlp(raw, v, h, -2, True), int(raw.get("image_seq_length", 256))),
                           False, towers=("model.image_tower", "model.video_tower")),
    # configuration_paligemma.py: SigLIP-so400m/14 at 224 px without head, a linear projector, tie True
    "paligemma": Wrapper("siglip_vision_model", {"intermediate_size": 4096, "hidden_size": 1152, "patch_size": 14,
                                                 "image_size": 224, "num_hidden_layers": 27, "num_attention_heads": 16,
                                                 "vision_use_head": False}, _paligemma, True),
    # configuration_shieldgemma2.py: Gemma 3's parts; tie False unless the text config ties (its default)
    "shieldgemma2": Wrapper("siglip_vision_model", {}, _gemma3, False, tie_from_text=True),
    # configuration_qwen2_vl.py / configuration_qwen2_5_vl.py / configuration_qwen3_vl(_moe).py: the merger is
    # part of the tower (model.visual); images take a dynamic number of tokens (the processor's pixel bounds,
    # not the config), so none is assumed; Qwen2(.5)-VL forward a tied text config (__post_init__ BC)
    "qwen2_vl": Wrapper("qwen2_vl_vision", {}, _no_projector, False, tie_from_text=True, towers=("model.visual",)),
    "qwen2_5_vl": Wrapper("qwen2_5_vl_vision", {}, _no_projector, False, tie_from_text=True,
                          towers=("model.visual",)),
    # configuration_idefics3.py / configuration_smolvlm.py: their vision config classes, tie False;
    # configuration_lfm2_vl.py: Siglip2VisionConfig defaults, tie True
    "idefics3": Wrapper("idefics3_vision", {}, _idefics3, False, towers=("model.vision_model",)),
    "smolvlm": Wrapper("smolvlm_vision", {}, _idefics3, False, towers=("model.vision_model",)),
    "lfm2_vl": Wrapper("siglip2_vision_model", {}, _lfm2_vl, True),
    # configuration_glm4v.py: the merger is part of the tower (model.visual); dynamic image sizes; tie False unless
    # a pre-v5 text config ties (__post_init__ BC)
    "glm4v": Wrapper("glm4v_vision", {}, _no_projector, False, tie_from_text=True, towers=("model.visual",)),
    # configuration_glm46v.py (GLM-4.6V; "glmga" builds the same class) and configuration_glm4v_moe.py: GLM-4V's
    # tower, tie False
    "glm46v": Wrapper("glm4v_vision", {}, _no_projector, False, towers=("model.visual",)),
    "glmga": Wrapper("glm4v_vision", {}, _no_projector, False, towers=("model.visual",)),
    "glm4v_moe": Wrapper("glm4v_moe_vision", {}, _no_projector, False, towers=("model.visual",)),
    # configuration_kimi_k25.py: Kimi_K25VisionConfig, tie True (the DeepSeek-V3 text model's head stays its own
    # when the config says so)
    "kimi_k25": Wrapper("kimi_k25_vision", {}, _kimi_k25, True),
    # configuration_lighton_ocr.py: Pixtral with the sizes of its sub_configs_defaults and Mistral 3's projector
    # (model.vision_projection), tie True
    "lighton_ocr": Wrapper("pixtral", {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                                       "num_attention_heads": 16, "head_dim": 64, "image_size": 1540,
                                       "patch_size": 14}, _mistral3, True, towers=("model.vision_encoder",)),
    # configuration_cohere2_vision.py: SigLIP of its sub_configs_defaults, tie True
    "cohere2_vision": Wrapper("siglip_vision_model", {"hidden_size": 1152, "intermediate_size": 3072,
                                                      "image_size": 512, "num_hidden_layers": 27,
                                                      "num_attention_heads": 12}, _cohere2_vision, True),
    # configuration_internvl.py: InternVLVisionConfig defaults, tie True
    "internvl": Wrapper("internvl_vision", {}, _internvl, True),
    # configuration_llama4.py: Llama4VisionConfig defaults, tie False; the tower sits beside the model
    "llama4": Wrapper("llama4_vision_model", {}, _llama4, False, towers=("vision_model",)),
    "qwen3_vl": Wrapper("qwen3_vl_vision", {}, _no_projector, False, towers=("model.visual",)),
    "qwen3_vl_moe": Wrapper("qwen3_vl_moe_vision", {}, _no_projector, False, towers=("model.visual",)),
    # configuration_qwen3_5(_moe).py: tie False
    "qwen3_5": Wrapper("qwen3_5_vision", {}, _no_projector, False, towers=("model.visual",)),
    "qwen3_5_moe": Wrapper("qwen3_5_moe_vision", {}, _no_projector, False, towers=("model.visual",)),
}
# Wrappers whose older config.json holds the text model's fields at the top level, beside vision_config
# (Qwen2VLConfig.__post_init__: "Hub configs are saved as flat dicts"), and their text model_type.
FLAT_TEXT_TYPES = {"qwen2_vl": "qwen2_vl_text", "qwen2_5_vl": "qwen2_5_vl_text"}


def supported(raw: dict[str, Any]) -> bool:
    """Whether the wrapper and its tower are laid out here."""
    w = WRAPPERS.get(str(raw.get("model_type") or ""))
    given = raw.get("vision_config")
    if w is None or (given is not None and not isinstance(given, dict)):
        return False
    return _tower_type(given, w) in TOWERS


def _tower_type(given: dict[str, Any] | None, w: Wrapper) -> str:
    vtype = str((given or {}).get("model_type") or w.vision_type)
    return _TOWER_ALIASES.get(vtype, vtype)


def multimodal(raw: dict[str, Any], text: dict[str, Any], text_tie: bool) -> Multimodal | None:
    """The towers and projector of ``raw`` (a wrapper config), or None when they are not laid out here."""
    w = WRAPPERS.get(str(raw.get("model_type") or ""))
    if w is None:
        return None
    given = raw.get("vision_config")
    if given is not None and not isinstance(given, dict):
        return None
    vtype = _tower_type(given, w)
    build = TOWERS.get(vtype)
    if build is None:
        return None
    v = {**TOWER_DEFAULTS[vtype], **(given if given is not None else w.vision_init)}
    text_h = int(text["hidden_size"])
    tensors = [t for prefix in w.towers for t in build(prefix, v)]
    proj, image_tokens = w.projector(raw, v, text_h)
    tensors += [(f"model.{n}", r, s) for n, r, s in proj]
    top = raw.get("tie_word_embeddings")
    tie = bool(top) if isinstance(top, bool) else w.tie_default
    if w.tie_from_text and not tie and text_tie:
        tie = True
    assert all(math.prod(s) > 0 for _, _, s in tensors)
    return Multimodal(tuple(tensors), image_tokens, tie)
