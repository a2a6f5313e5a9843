"""transformers 5.24 inference (``model.generate``): what the process allocates on its GPU.

* Attention: with no ``attn_implementation`` transformers picks SDPA when the model class supports it
  and eager otherwise (modeling_utils.py ``_check_and_adjust_attn_implementation``; gpt-oss, BLOOM and,
  since 5.x, Gemma-2 have ``_supports_sdpa = False``). ``--attention`` overrides; asking for SDPA on a
  family without it is refused, as transformers refuses it.
* KV: DynamicCache keeps every token of every layer; a sliding layer still holds the whole prefill right
  after it (DynamicSlidingWindowLayer keeps a view whose storage is the full prefill; measured with
  --verify on gpt-oss-20b, benchmarks/verify/RESULTS.md).
* Activations: the peak of one layer (no autograd graph at inference, layers do not accumulate), in
  prefill (the whole prompt) or decode; logits of the last position (generate) or every one.
* Overhead: the PyTorch caching allocator's slack. The CUDA context is not counted here: GPU budgets
  (llm_mem.catalog usable_bytes) already exclude it, so it is counted once.
"""

from __future__ import annotations

from llm_mem.choices import Attention, Logits
from llm_mem.errors import UsageError
from llm_mem.estimators.inference_activations import layer_peak, logits_bytes
from llm_mem.estimators.kv_cache import full_context_tokens, kv_cache
from llm_mem.runtimes import EngineMemory, EngineSettings, Part
from llm_mem.spec import ModelSpec
from llm_mem.workload import Workload

VERSION = "transformers 5.24"
# PyTorch caching allocator: reserved exceeds allocated by 3-15% of transient blocks
# (shared/reference/truth/notes.md, "HF transformers" section); we take 10% of the non-weight bytes.
ALLOCATOR_SLACK = 0.10


def attention_for(spec: ModelSpec, w: Workload) -> tuple[Attention, str | None]:
    """The attention implementation transformers runs, and a note when it is not what was asked."""
    if "attention" not in w.model_fields_set:
        if spec.sdpa:
            return Attention.sdpa, None
        return Attention.eager, f"{spec.model_type} runs eager attention in transformers (no SDPA path for it)"
    if w.attention is Attention.sdpa and not spec.sdpa:
        raise UsageError(f"transformers has no SDPA attention for {spec.model_type}",
                         "use --attention eager (its default) or flash")
    return w.attention, None


def inference(spec: ModelSpec, w: Workload, elem: int, weights_bytes: int) -> EngineMemory:
    """What generate() allocates besides the weights, for a prompt filling ``w.context`` tokens."""
    attention, note = attention_for(spec, w)
    kv = kv_cache(spec, full_context_tokens(spec, w.context), w.batch, w.kv_dtype)
    tokens = w.context * w.batch
    prefill = layer_peak(spec, tokens, w.batch, w.context, attention, elem)
    decode = layer_peak(spec, w.batch, w.batch, w.context, attention, elem)
    positions = tokens if w.logits is Logits.full else w.batch
    logits = logits_bytes(spec, positions, elem)
    acts = max(prefill, decode)
    phase = "prefill" if prefill >= decode else "decode"
    slack = int((kv.total + acts + logits) * ALLOCATOR_SLACK)
    notes = [note] if note else []
    if "sliding" in spec.layer_types and spec.sliding_window and w.context > spec.sliding_window:
        notes.append("transformers keeps the whole prefill in sliding-window layers until the first decode step; "
                     f"llama.cpp and vLLM keep about the {spec.sliding_window}-token window (--runtime)")
    parts = [Part("activations", acts, f"peak of one layer in {phase}, {attention}"),
             Part("logits", logits, "last position only (generate)" if w.logits is Logits.last
                  else "every position, fp32 upcast"),
             Part("runtime_overhead", slack, "PyTorch caching-allocator slack (10% of KV and activations); "
                  "the CUDA context is outside the GPU budget")]
    return EngineMemory(kv=kv, parts=parts, notes=notes,
                        settings=EngineSettings(runtime="transformers", version=VERSION, attention=str(attention)))
