"""The closed sets of choices a user picks from: one Enum each, shared by the request models
(validation, JSON schema), the CLI (help and shell completion list them) and check files.

Each member is a ``str`` whose value is the spelling users type; look-ups ignore case and
``-``/``_`` differences, and ``str()`` / f-strings give the value.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Choice(str, Enum):
    """A str Enum that prints as its value and parses case-insensitively."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def _missing_(cls, value: Any) -> Choice | None:
        if isinstance(value, str):
            key = value.strip().lower().replace("_", "-")
            for member in cls:
                if member.value.lower().replace("_", "-") == key:
                    return member
        return None

    @classmethod
    def parse(cls, value: str) -> Choice | None:
        """The member a user's spelling names, or None."""
        try:
            return cls(value)
        except ValueError:
            return None

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Every value, in declaration order."""
        return tuple(m.value for m in cls)


class Runtime(Choice):
    """The serving engine whose memory rules apply."""

    transformers = "transformers"
    vllm = "vllm"
    llamacpp = "llamacpp"


class Precision(Choice):
    """Weight precision; ``int4`` is bitsandbytes nf4, ``all`` compares them side by side."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    int8 = "int8"
    int4 = "int4"
    all = "all"


class Attention(Choice):
    """Attention kernel: eager (materialises scores), sdpa, flash."""

    eager = "eager"
    sdpa = "sdpa"
    flash = "flash"


class Logits(Choice):
    """Which positions' logits are materialised: the last (generate) or every one (evaluation)."""

    last = "last"
    full = "full"


class TrainMode(Choice):
    """Fine-tuning mode."""

    full = "full"
    lora = "lora"
    qlora = "qlora"
    # RL post-training of the whole policy (llm_mem.estimators.rl): TRL's GRPOTrainer, DPOTrainer, PPOTrainer
    grpo = "grpo"
    dpo = "dpo"
    ppo = "ppo"


#: RL post-training modes: the policy trains every weight, beside the copies each algorithm keeps.
RL_MODES = frozenset({TrainMode.grpo, TrainMode.dpo, TrainMode.ppo})


class Fsdp(Choice):
    """PyTorch FSDP2 sharding: full (FULL_SHARD, one mesh dim) or hybrid (HSDP: shard inside a group,
    replicate across groups)."""

    full = "full"
    hybrid = "hybrid"


class MixedPrecision(Choice):
    """Mixed precision with fp32 master weights (bf16, fp16) or pure (none)."""

    bf16 = "bf16"
    fp16 = "fp16"
    none = "none"


class Offload(Choice):
    """What DeepSpeed ZeRO-Offload moves to the CPU."""

    none = "none"
    optimizer = "optimizer"
    parameters = "parameters"


class Optimizer(Choice):
    """Optimizer whose states are sized."""

    adamw = "adamw"
    adamw_8bit = "adamw-8bit"
    paged_adamw_8bit = "paged-adamw-8bit"
    paged_adamw_32bit = "paged-adamw-32bit"
    adafactor = "adafactor"
    sgd = "sgd"
    sgd_momentum = "sgd-momentum"
    lion = "lion"


class Trainer(Choice):
    """The training framework whose default recipe sets the memory features (llm_mem.estimate_training
    TRAINER_PRESETS): transformers' Trainer, TRL's SFTTrainer, torchtune, Unsloth, axolotl."""

    hf = "hf"
    trl = "trl"
    torchtune = "torchtune"
    unsloth = "unsloth"
    axolotl = "axolotl"


class FlashAttn(Choice):
    """llama.cpp's --flash-attn: on, off, or auto (on where the backend supports the shapes)."""

    on = "on"
    off = "off"
    auto = "auto"


class KvDtype(Choice):
    """KV cache element type; q8_0 / q4_0 are llama.cpp's block types."""

    bf16 = "bf16"
    fp16 = "fp16"
    fp32 = "fp32"
    fp8 = "fp8"
    fp8_e5m2 = "fp8_e5m2"
    q8_0 = "q8_0"
    q5_1 = "q5_1"
    q5_0 = "q5_0"
    q4_1 = "q4_1"
    iq4_nl = "iq4_nl"
    q4_0 = "q4_0"

    @classmethod
    def _missing_(cls, value: Any) -> KvDtype | None:
        # vLLM spells fp8 as fp8 / fp8_e4m3; llama.cpp spells its cache types f16, f32, bf16
        aliases = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "fp8_e4m3": "fp8", "f16": "fp16",
                   "f32": "fp32"}
        if isinstance(value, str) and value.strip().lower() in aliases:
            return cls(aliases[value.strip().lower()])
        found = super()._missing_(value)
        return found if isinstance(found, KvDtype) else None


#: KV cache types llama.cpp's -ctk/-ctv accept (common/arg.cpp kv_cache_types) and those vLLM's
#: --kv-cache-dtype does (vllm/config/cache.py CacheDType); the rest of KvDtype is generic.
LLAMACPP_KV = frozenset({KvDtype.fp32, KvDtype.fp16, KvDtype.bf16, KvDtype.q8_0, KvDtype.q5_1, KvDtype.q5_0,
                         KvDtype.q4_1, KvDtype.iq4_nl, KvDtype.q4_0})
VLLM_KV = frozenset({KvDtype.bf16, KvDtype.fp16, KvDtype.fp32, KvDtype.fp8, KvDtype.fp8_e5m2})
