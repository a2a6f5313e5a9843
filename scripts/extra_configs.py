"""Configs of popular models bundled beyond ../shared/reference/hf-configs.

Each is reconstructed from the model's published config.json fields (architecture shapes only;
tokenizer ids and training flags left out). Their parameter totals are checked in
tests/test_params.py against the published counts quoted beside each entry.
"""

from __future__ import annotations

R = "reconstructed from the published config.json fields"


def _llama(h, n, a, kv, i, v, pos, tie=False, theta=500000.0, dtype="bfloat16", **extra):
    d = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h, "num_hidden_layers": n,
         "num_attention_heads": a, "num_key_value_heads": kv, "intermediate_size": i, "vocab_size": v,
         "max_position_embeddings": pos, "tie_word_embeddings": tie, "rope_theta": theta, "torch_dtype": dtype,
         "hidden_act": "silu", "rms_norm_eps": 1e-05}
    d.update(extra)
    return d


def _qwen(mt, h, n, a, kv, i, pos, tie, head_dim=None, v=151936, **extra):
    arch = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[mt]
    d = {"architectures": [arch], "model_type": mt, "hidden_size": h, "num_hidden_layers": n,
         "num_attention_heads": a, "num_key_value_heads": kv, "intermediate_size": i, "vocab_size": v,
         "max_position_embeddings": pos, "tie_word_embeddings": tie, "torch_dtype": "bfloat16",
         "hidden_act": "silu", "rms_norm_eps": 1e-06, "use_sliding_window": False}
    if head_dim:
        d["head_dim"] = head_dim
    d.update(extra)
    return d


EXTRA = [
    # Meta-Llama-3-8B: Llama-3.1-8B shapes with an 8k context (published 8.03B)
    ("meta-llama/Meta-Llama-3-8B", _llama(4096, 32, 32, 8, 14336, 128256, 8192), R),
    # CodeLlama-34b-hf: 33.7B published
    ("codellama/CodeLlama-34b-hf", _llama(8192, 48, 64, 8, 22016, 32000, 16384, theta=1000000.0), R),
    # deepseek-coder-6.7b-instruct: llama architecture, 6.74B
    ("deepseek-ai/deepseek-coder-6.7b-instruct", _llama(4096, 32, 32, 32, 11008, 32256, 16384, theta=100000.0), R),
    # huggyllama/llama-7b: the original LLaMA-7B (6.74B), 2k context, fp16 checkpoint
    ("huggyllama/llama-7b", _llama(4096, 32, 32, 32, 11008, 32000, 2048, theta=10000.0, dtype="float16"), R),
    # Qwen2.5-32B-Instruct (32.76B) and -72B-Instruct (72.71B)
    ("Qwen/Qwen2.5-32B-Instruct", _qwen("qwen2", 5120, 64, 40, 8, 27648, 32768, False, v=152064), R),
    ("Qwen/Qwen2.5-72B-Instruct", _qwen("qwen2", 8192, 80, 64, 8, 29568, 32768, False, v=152064), R),
    ("Qwen/Qwen2.5-1.5B-Instruct", _qwen("qwen2", 1536, 28, 12, 2, 8960, 32768, True, v=151936), R),
    # Qwen3 dense family (0.6B, 4B, 14B, 32B)
    ("Qwen/Qwen3-0.6B", _qwen("qwen3", 1024, 28, 16, 8, 3072, 40960, True, head_dim=128), R),
    ("Qwen/Qwen3-4B", _qwen("qwen3", 2560, 36, 32, 8, 9728, 40960, True, head_dim=128), R),
    ("Qwen/Qwen3-14B", _qwen("qwen3", 5120, 40, 40, 8, 17408, 40960, False, head_dim=128), R),
    ("Qwen/Qwen3-32B", _qwen("qwen3", 5120, 64, 64, 8, 25600, 40960, False, head_dim=128), R),
    # Mistral-Small-3.2-24B-Instruct-2506: the language model of the Mistral3 wrapper (23.6B text)
    ("mistralai/Mistral-Small-3.2-24B-Instruct-2506", {
        "architectures": ["Mistral3ForConditionalGeneration"], "model_type": "mistral3", "torch_dtype": "bfloat16",
        "text_config": {"model_type": "mistral", "hidden_size": 5120, "num_hidden_layers": 40,
                        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                        "intermediate_size": 32768, "vocab_size": 131072, "max_position_embeddings": 131072,
                        "sliding_window": None, "rope_theta": 1000000000.0, "tie_word_embeddings": False,
                        "hidden_act": "silu", "rms_norm_eps": 1e-05}}, R),
    # Gemma-3-12b-it text tower (Gemma3ForConditionalGeneration wrapper; 5:1 local:global, window 1024)
    ("google/gemma-3-12b-it", {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "torch_dtype": "bfloat16",
        "text_config": {"model_type": "gemma3_text", "hidden_size": 3840, "num_hidden_layers": 48,
                        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256,
                        "intermediate_size": 15360, "vocab_size": 262208, "max_position_embeddings": 131072,
                        "sliding_window": 1024, "sliding_window_pattern": 6, "hidden_activation": "gelu_pytorch_tanh",
                        "rms_norm_eps": 1e-06, "query_pre_attn_scalar": 256}}, R),
]

# Repos with exactly the same architecture as a bundled one (instruct/chat variants, re-uploads).
SAME_ARCHITECTURE = {
    "meta-llama/Llama-3.1-8B": ["meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-8B",
                                "meta-llama/Meta-Llama-3.1-8B-Instruct"],
    "meta-llama/Llama-3.1-70B": ["meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Meta-Llama-3.1-70B",
                                 "meta-llama/Meta-Llama-3.1-70B-Instruct", "meta-llama/Llama-3.3-70B-Instruct"],
    "meta-llama/Llama-3.1-405B": ["meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Meta-Llama-3.1-405B",
                                  "meta-llama/Meta-Llama-3.1-405B-Instruct"],
    "meta-llama/Llama-3.2-1B": ["meta-llama/Llama-3.2-1B-Instruct"],
    "meta-llama/Llama-3.2-3B": ["meta-llama/Llama-3.2-3B-Instruct"],
    "meta-llama/Llama-2-7b-hf": ["meta-llama/Llama-2-7b-chat-hf"],
    "meta-llama/Llama-2-13b-hf": ["meta-llama/Llama-2-13b-chat-hf"],
    "meta-llama/Llama-2-70b-hf": ["meta-llama/Llama-2-70b-chat-hf"],
    "meta-llama/Meta-Llama-3-8B": ["meta-llama/Meta-Llama-3-8B-Instruct"],
    "Qwen/Qwen2.5-0.5B": ["Qwen/Qwen2.5-0.5B-Instruct"],
    "Qwen/Qwen2.5-7B": ["Qwen/Qwen2.5-7B-Instruct"],
    "mistralai/Mistral-7B-v0.1": ["mistralai/Mistral-7B-Instruct-v0.1"],
    "mistralai/Mistral-7B-v0.3": ["mistralai/Mistral-7B-Instruct-v0.3"],
    "mistralai/Mixtral-8x7B-v0.1": ["mistralai/Mixtral-8x7B-Instruct-v0.1"],
    "google/gemma-2-9b": ["google/gemma-2-9b-it"],
    "google/gemma-2-27b": ["google/gemma-2-27b-it"],
    "unsloth/Meta-Llama-3.1-405B-Instruct-bnb-4bit": [],
}

ALIASES = {
    "meta-llama/Llama-3.1-405B": ["llama-3.1-405b", "llama3.1-405b", "llama-405b"],
    "meta-llama/Llama-3.1-70B": ["llama-3.1-70b", "llama3.1-70b", "llama-3.3-70b"],
    "meta-llama/Llama-3.1-8B": ["llama-3.1-8b", "llama3.1-8b"],
    "meta-llama/Llama-2-7b-hf": ["llama-2-7b", "llama2-7b"],
    "huggyllama/llama-7b": ["llama-7b"],
    "mistralai/Mistral-7B-v0.1": ["mistral-7b"],
    "mistralai/Mixtral-8x7B-v0.1": ["mixtral-8x7b"],
    "mistralai/Mixtral-8x22B-v0.1": ["mixtral-8x22b"],
    "deepseek-ai/DeepSeek-V3": ["deepseek-v3"],
    "openai/gpt-oss-20b": ["gpt-oss-20b"],
    "openai/gpt-oss-120b": ["gpt-oss-120b"],
    "openai-community/gpt2": ["gpt2"],
}
