"""Every bound the model sources enforce, in one place (docs/limits.md lists them with their reasons).

Each cap is checked *while* reading: a byte count is compared before the bytes are read or kept, so
a file or a server that lies about its size cannot push more than the cap into memory. Bounds on
counts stop loops before they start. The time bounds are module constants so that tests can shorten
them (tests/test_hostile_hub.py monkeypatches them).
"""

from __future__ import annotations

# -- files and bodies -------------------------------------------------------------------------------

#: config.json. A real one is a few KB (DeepSeek-V3's is 1.7 KB; the largest multimodal ones ~50 KB).
MAX_CONFIG_BYTES = 2 * 2**20
#: model.safetensors.index.json. One line of about 90 bytes per tensor: DeepSeek-V3 (~91,000 tensors:
#: 58 MoE layers x 256 experts x 3 projections x weight + scale) makes ~9 MB. 64 MiB is 7x that.
MAX_INDEX_BYTES = 64 * 2**20
#: A safetensors JSON header. The safetensors reference implementation refuses headers over 100 MB
#: (safetensors/src/tensor.rs MAX_HEADER_SIZE = 100_000_000); so do we, local or remote.
MAX_SAFETENSORS_HEADER_BYTES = 100_000_000
#: First read of a remote safetensors file: huggingface_hub 2.4 parse_safetensors_file_metadata asks for
#: "bytes=0-100000" first (hf_api.py) and a second range only when the header is longer.
SAFETENSORS_FIRST_READ = 100_001
#: Hub API JSON (the repo listing, /api/models/{repo}?blobs=true). About 300 bytes per file; a repo of
#: 10,000 files is ~3 MB.
MAX_API_JSON_BYTES = 16 * 2**20
#: An Ollama manifest: a schema header and ~5 layers, under 2 KB (ollama manifest/manifest.go).
MAX_MANIFEST_BYTES = 2**20

# -- GGUF header ------------------------------------------------------------------------------------

#: Where the tensor-info section must end. The bulk of a header is the tokenizer: a 128,256-token BPE
#: vocabulary with 280,147 merges is about 128,256 x (8 + 7) + 280,147 x (8 + 11) = 7.2 MB of strings,
#: a 262,144-token one (Gemma 3) about 4 MB. 128 MiB is >15x the largest of these.
MAX_GGUF_HEADER_BYTES = 128 * 2**20
#: Key-value pairs. Real files hold 20-60 (llama.cpp's gguf.cpp only requires n_kv <= SIZE_MAX/sizeof).
MAX_GGUF_KV = 65_536
#: One key's length: the GGUF spec (ggml docs/gguf.md) limits keys to 65,535 bytes.
MAX_GGUF_KEY_BYTES = 65_535
#: One string value. gguf.cpp allows 1 GiB (GGUF_MAX_STRING_LENGTH); the longest real strings are
#: chat templates (tens of KB) and an embedded tokenizer.json (~10-20 MB). Long strings are skipped,
#: never fetched or kept, so the cap only guards the position arithmetic.
MAX_GGUF_STRING_BYTES = 64 * 2**20
#: Elements of one array. gguf.cpp allows 2^30 (GGUF_MAX_ARRAY_ELEMENTS); the longest real arrays are
#: vocabularies (262,144 tokens) and merge lists (~500,000): 2^22 is 8x those.
MAX_GGUF_ARRAY_ELEMENTS = 2**22
#: Tensors in one file. A merged-expert DeepSeek-V3 file holds ~1,150; unmerged Mixtral files ~1,000.
MAX_GGUF_TENSORS = 65_536
#: Tensor name length: ggml.h GGML_MAX_NAME = 64 bytes including the terminating NUL (gguf.cpp refuses
#: names of 64 bytes or more).
GGML_MAX_NAME = 64
#: Dimensions of one tensor: ggml.h GGML_MAX_DIMS.
GGML_MAX_DIMS = 4
#: Decoder layers: llama.cpp src/llama-hparams.h LLAMA_MAX_LAYERS = 512 (per-layer arrays are sized by it).
MAX_LAYERS = 512
#: Parts of a split GGUF (-0000k-of-0000N). A 1T-parameter BF16 model in 50 GB parts is ~45 parts.
MAX_GGUF_SPLITS = 256
#: Metadata values kept in memory: arrays longer than this are counted, not kept (a vocabulary's
#: strings are never needed; per-layer arrays have at most MAX_LAYERS entries).
MAX_KEPT_ARRAY = 4096
#: String values longer than this are skipped over (chat templates, embedded tokenizer JSON).
MAX_KEPT_STRING = 64 * 2**10
#: Largest single read of a header (one HTTP range or one pread).
MAX_READ_BYTES = 16 * 2**20
#: Readahead for local files (reading past the header costs nothing there).
LOCAL_READAHEAD = 2**20

# -- checkpoints --------------------------------------------------------------------------------------

#: Shard files of one safetensors checkpoint. DeepSeek-V3 has 163, Kimi-K2 62; 4,096 is 25x the largest.
MAX_SHARDS = 4096
#: Files in one repo listing that we consider.
MAX_REPO_FILES = 100_000
#: Tensors in one safetensors header (a 100 MB header of ~100-byte entries holds about 1,000,000).
MAX_SAFETENSORS_TENSORS = 1_000_000
#: A tensor shape's rank and extent: no real tensor has more than 8 dimensions; 2^48 elements is
#: 280 TB in one tensor, far beyond any checkpoint.
MAX_TENSOR_RANK = 8
MAX_TENSOR_ELEMENTS = 2**48

# -- config.json fields (llm_mem.sources.validate) ---------------------------------------------------
# Plausibility bounds on the sizes a config declares, far above every published model, so that a
# 763-byte config claiming ten million layers is one error line before anything is allocated. Each
# names the largest real value it was checked against.

#: Decoder layers: the same bound as GGUF files (llama.cpp LLAMA_MAX_LAYERS = 512). The deepest
#: published decoders: Llama 3.1 405B 126, Megatron-Turing NLG 530B 105, DeepSeek-V3 61 (+1 MTP).
MAX_CONFIG_LAYERS = MAX_LAYERS
#: hidden_size (and kv_lora_rank, q_lora_rank, word_embed_proj_dim): the widest published are
#: PaLM 540B and Nemotron-4 340B at 18,432; 2^17 = 131,072 is 7x that.
MAX_HIDDEN = 2**17
#: intermediate_size (and the MoE expert widths): the widest published are PaLM 540B and
#: Nemotron-4 340B at 73,728 (Llama 3.1 405B 53,248); 2^20 is 14x that.
MAX_INTERMEDIATE = 2**20
#: Attention heads and KV heads: the most published are 128 (Llama 3.1 405B, DeepSeek-V3); 2^14.
MAX_HEADS = 2**14
#: head_dim and the MLA head widths: the widest published are 256 (Gemma 2/3) and DeepSeek's 192
#: (128 nope + 64 rope); 2^14.
MAX_HEAD_DIM = 2**14
#: vocab_size: the largest published are 262,144 (Gemma 3) and 256,000 (Gemma, PaLM); 2^23 = 8,388,608.
MAX_VOCAB = 2**23
#: Routed experts (and experts per token, shared experts): the most published are 512 (Qwen3-Next)
#: and 384 (Kimi K2); 2^16.
MAX_EXPERTS = 2**16
#: max_position_embeddings, sliding_window: the longest published window is Llama 4 Scout's
#: 10,485,760 tokens; 2^40 leaves room for any declared maximum while keeping the arithmetic small.
MAX_POSITIONS = 2**40
#: quantization group / block sizes: GPTQ and AWQ use 32-128 (or -1: one group per row).
MAX_QUANT_GROUP = 2**20
#: Nesting of JSON objects and arrays in a config: real ones nest at most 5 deep
#: (quantization_config.config_groups.group_0.weights.*); deeper is refused before it is walked.
MAX_CONFIG_DEPTH = 32
#: Any integer in a config: JSON parsers in other languages hold at most 64 bits, and so do
#: transformers' tensors; a larger number is junk, refused wherever it sits.
MAX_CONFIG_INT = 2**63 - 1

# -- time ---------------------------------------------------------------------------------------------

#: Every Hub read of one `resolve_model` call together: listing, config.json, index, headers. A
#: config and a few headers take well under 5 s on a normal link; a GGUF tokenizer (~8 MB) under 30 s
#: on a slow one. A server that drips a byte a second is cut here.
HUB_DEADLINE_S = 60.0
#: Connecting, and each wait for the next bytes of a response (httpx per-read timeout). The Hub
#: answers in well under a second; 10 s is what hub.py used for its metadata requests.
READ_TIMEOUT_S = 10.0
#: Shard headers read at once (huggingface_hub's bulk file operations default to max_workers=8).
PARALLEL_READS = 8
