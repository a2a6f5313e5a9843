"""Training capabilities of a family (ModelSpec.training): module names, PEFT's default LoRA targets
and what the family's modules save for backward. The only place that knows them by family name.
"""

from __future__ import annotations

from typing import Any

from llm_mem.spec import TrainingCaps

# PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING (peft/utils/constants.py, peft 0.21.2 and
# main @5d602fdb): the modules LoraConfig(target_modules=None) wraps. Families without an entry
# (phi3, qwen2_moe, qwen3_moe, deepseek_v2/v3, gpt_oss, olmo2, granite) make PEFT raise "Please specify
# `target_modules` in `peft_config`" (tuners_utils.py _prepare_adapter_config).
PEFT_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt2": ("c_attn",), "bloom": ("query_key_value",), "opt": ("q_proj", "v_proj"),
    "gpt_neox": ("query_key_value",), "falcon": ("query_key_value",), "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"), "mixtral": ("q_proj", "v_proj"), "gemma": ("q_proj", "v_proj"),
    "gemma2": ("q_proj", "v_proj"), "gemma3_text": ("q_proj", "v_proj"), "qwen2": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"), "llama4": ("q_proj", "v_proj"),
}
# transformers' nn.Linear names per family (models/<family>/modeling_<family>.py, transformers 5.24):
# (q/k/v or the fused projection, attention output, MLP input(s), MLP output).
_NAMES: dict[str, tuple[tuple[str, ...], str, tuple[str, ...], str]] = {
    "gpt2": (("c_attn",), "c_proj", ("c_fc",), "c_proj"),  # Conv1D modules, which PEFT's all-linear includes
    "opt": (("q_proj", "k_proj", "v_proj"), "out_proj", ("fc1",), "fc2"),
    "bloom": (("query_key_value",), "dense", ("dense_h_to_4h",), "dense_4h_to_h"),
    "gpt_neox": (("query_key_value",), "dense", ("dense_h_to_4h",), "dense_4h_to_h"),
    "falcon": (("query_key_value",), "dense", ("dense_h_to_4h",), "dense_4h_to_h"),
    "phi3": (("qkv_proj",), "o_proj", ("gate_up_proj",), "down_proj"),
}


def training_caps(family: str, model_type: str, cfg: dict[str, Any]) -> TrainingCaps:
    """The family's TrainingCaps from its config (soft-capping values are per checkpoint)."""
    kw: dict[str, Any] = {"lora_default_targets": PEFT_TARGETS.get(model_type, ())}
    if family in _NAMES:
        qkv, o, up, down = _NAMES[family]
        kw.update(qkv_modules=qkv, o_module=o, up_modules=up, down_module=down)
    if family == "falcon":
        # modeling_falcon.py FalconAttention.forward: `query_layer.transpose(1, 2).reshape(...)` copies q/k/v out
        # of the fused projection; the old architecture's multi-query K/V (one head) reach
        # `query @ key.transpose(-1, -2)` and scaled_dot_product_attention unrepeated (no enable_gqa)
        kw["qkv_split_copies"] = True
        kw["kv_broadcast"] = not cfg.get("new_decoder_architecture", False) and bool(cfg.get("multi_query", True))
    if family in ("mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3"):
        # peft's transformers-v5 weight conversion (peft/utils/transformers_weight_conversion.py) turns the
        # per-expert Linears of the v4 layout into ParamWrappers on the fused experts and the router
        # (measured with peft 0.21.2: benchmarks/activations/measured_families.json); gpt-oss was fused already
        kw["lora_experts"] = True
    # MoE routers (modeling_<family>.py *TopKRouter / *TopkRouter.forward, transformers 5.24)
    if family in ("deepseek_v2", "deepseek_v3"):
        kw.update(router_fp32_input=True, routing_fp32=True, router_norm_topk=bool(cfg.get("norm_topk_prob", False)),
                  router_scores="sigmoid" if family == "deepseek_v3" else "softmax")
    elif family == "mixtral":  # softmax(router_logits.float()), top-k, always renormalised, weights stay fp32
        kw.update(routing_fp32=True, router_norm_topk=True)
    elif family in ("qwen2_moe", "qwen3_moe"):  # fp32 softmax, norm_topk_prob, weights cast back to the dtype
        kw["router_norm_topk"] = bool(cfg.get("norm_topk_prob", family == "qwen3_moe"))
    elif family == "gpt_oss":  # top-k of the logits, softmax of those k; GptOssExperts._apply_gate
        kw.update(router_scores="topk_softmax", expert_clamp_glu=True)
    if family in ("gemma", "gemma2", "gemma3_text", "gpt_oss"):
        # Gemma*RMSNorm: `output * (1.0 + self.weight.float())` in fp32, then `.type_as(x)`;
        # GptOssRMSNorm: `(self.weight * hidden_states).to(input_dtype)` with hidden_states in fp32
        kw["norm_fp32_scale"] = True
    if family == "gpt_neox":  # partial rotary: `torch.cat([q_embed, q_pass], dim=-1)` is head-major
        kw["q_head_major"] = True
    if family == "gpt2":  # GPT2Block is called with the eager causal mask as a positional argument
        drop = cfg.get("embd_pdrop", 0.1)  # GPT2Config default
        kw.update(ckpt_mask_arg=True, embed_dropout=float(drop) if isinstance(drop, (int, float)) else 0.0)
    if family in ("gemma2", "gemma3_text"):
        # Gemma2Config defaults: attn_logit_softcapping 50.0, final_logit_softcapping 30.0; Gemma3: None
        defaults = {"attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0} if family == "gemma2" else {}
        for key, field in (("attn_logit_softcapping", "attn_softcap"), ("final_logit_softcapping", "logit_softcap")):
            v = cfg.get(key, defaults.get(key))
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
                kw[field] = float(v)
    return TrainingCaps(**kw)
