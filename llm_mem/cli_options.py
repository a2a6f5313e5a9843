"""The option declarations the `llm-mem` commands share: the workload options (declared once, added to
`estimate` and `plan` by ``with_workload_options``) and the model/output options.

Annotations are evaluated (no ``from __future__ import annotations``): typer reads them.
"""

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from llm_mem.choices import (
    Attention,
    Choice,
    FlashAttn,
    Fsdp,
    KvDtype,
    Logits,
    MixedPrecision,
    Offload,
    Optimizer,
    Precision,
    Runtime,
    Trainer,
    TrainMode,
)


def _parsechoice_option(enum: type[Choice], noun: str) -> Callable[[Any], Any]:
    """A typer parser for a closed set of choices: case-insensitive, refused with
    "unknown runtime 'tgi' (choose transformers, vllm, llamacpp)"."""

    def parse(value: Any) -> Any:
        if value is None or isinstance(value, enum):
            return value
        member = enum.parse(str(value))
        if member is None:
            raise typer.BadParameter(f"unknown {noun} {str(value)[:40]!r} (choose {', '.join(enum.values())})")
        return member

    return parse


def choice_option(enum: type[Choice], noun: str, *decls: str, help: str) -> Any:
    """An option whose help and shell completion list the Enum's choices."""
    return typer.Option(*decls, parser=_parsechoice_option(enum, noun), metavar="[" + "|".join(enum.values()) + "]",
                        autocompletion=lambda: list(enum.values()), help=help, show_default=False)


# ---- the workload options, declared once, added to estimate and plan ----------------------------
# Engine knobs keep the engines' own flag names (vLLM's `vllm serve`, llama.cpp's llama-server).
def _opt(annotation: Any, *decls: str, help: str) -> Any:
    return Annotated[Optional[annotation], typer.Option(*decls, help=help, show_default=False)]


WORKLOAD_OPTIONS: dict[str, Any] = {
    "precision": Annotated[Optional[str], choice_option(
        Precision, "precision", "--precision", "-p",
        help="fp32, bf16, fp16, fp8, int8, int4 (= bnb nf4; llama.cpp: Q4_K_M), or `all` (estimate).")],
    "quant": Annotated[Optional[str], typer.Option(
        "--quant", "-q", show_default=False,
        help="Format: nf4, fp4, gptq, awq, mxfp4, fp8, w8a8, w4a16, nvfp4, or a GGUF type (Q4_K_M, IQ2_XS...; "
             "runs on llama.cpp).",
        autocompletion=lambda: sorted(__import__("llm_mem.formats", fromlist=["ALL_FORMATS"]).ALL_FORMATS))],
    "context": _opt(str, "--context", "--seq", "--max-model-len",
                    help="Tokens per sequence: 4096, 32k, 128k (default: 4096, or the model's maximum if smaller)."),
    "batch": _opt(int, "--batch", help="Sequences served at once (default 1)."),
    "kv_dtype": Annotated[Optional[str], choice_option(KvDtype, "KV cache dtype", "--kv-dtype", "--kv-cache-dtype",
                                                 help="KV cache dtype (default bf16; llama.cpp f16).")],
    "attention": Annotated[Optional[str], choice_option(Attention, "attention", "--attention",
                                                  help="transformers' kernel (default: sdpa, eager where the "
                                                       "family has no SDPA).")],
    "runtime": Annotated[Optional[str], choice_option(Runtime, "runtime", "--runtime",
                                                help="Serving engine (default transformers; llama.cpp for GGUF).")],
    "logits": Annotated[Optional[str], choice_option(Logits, "logits mode", "--logits",
                                               help="last (generate) or full (evaluation, prompt logprobs).")],
    "tensor_parallel_size": _opt(int, "--tensor-parallel-size", "-tp", help="vLLM tensor-parallel GPUs."),
    "pipeline_parallel_size": _opt(int, "--pipeline-parallel-size", "-pp", help="vLLM pipeline stages."),
    "data_parallel_size": _opt(int, "--data-parallel-size", "-dp", help="vLLM data-parallel ranks (attention DP)."),
    "enable_expert_parallel": Annotated[Optional[bool], typer.Option(
        "--enable-expert-parallel/--no-enable-expert-parallel", "-ep", show_default=False,
        help="vLLM: split MoE experts over TP x DP GPUs.")],
    "gpu_memory_utilization": _opt(float, "--gpu-memory-utilization",
                                   help="vLLM: share of the GPU it may use (default: unset, measured)."),
    "max_num_seqs": _opt(int, "--max-num-seqs", help="vLLM: most sequences per step (default from the GPU)."),
    "max_num_batched_tokens": _opt(int, "--max-num-batched-tokens",
                                   help="vLLM: most tokens per step (default from the GPU)."),
    "block_size": _opt(int, "--block-size", help="vLLM: tokens per KV block (default 64)."),
    "enforce_eager": Annotated[Optional[bool], typer.Option(
        "--enforce-eager/--no-enforce-eager", show_default=False, help="vLLM: no CUDA graphs.")],
    "flash_attn": Annotated[Optional[str], choice_option(FlashAttn, "flash-attn mode", "--flash-attn", "-fa",
                                                   help="llama.cpp: on, off or auto (default auto).")],
    "ubatch_size": _opt(int, "--ubatch-size", "-ub", help="llama.cpp: physical batch (default 512)."),
    "batch_size": _opt(int, "--batch-size", "-b", help="llama.cpp: logical batch (default 2048)."),
    "ctx_size": _opt(str, "--ctx-size", "-c", help="llama.cpp: context over all slots; each of the -np slots "
                                                   "gets ctx-size / np (instead of --context per sequence)."),
    "parallel": _opt(int, "--parallel", "-np", help="llama.cpp: server slots (= --batch)."),
    "n_gpu_layers": _opt(int, "--n-gpu-layers", "-ngl", help="llama.cpp: layers on the GPU, the output layer "
                                                               "counted (default all)."),
    "n_cpu_moe": _opt(int, "--n-cpu-moe", "-ncmoe", help="llama.cpp: keep the experts of the first N layers on "
                                                          "the CPU."),
    "train": Annotated[Optional[str], choice_option(TrainMode, "training mode", "--train",
                                              help="Fine-tune: full, lora, qlora; RL post-training: grpo, dpo, ppo.")],
    "lora_rank": _opt(int, "--lora-rank", help="LoRA rank r (default 16)."),
    "lora_targets": _opt(str, "--lora-targets",
                         help="Comma-separated modules (default q,k,v,o,gate,up,down projections; `all-linear`)."),
    "optimizer": Annotated[Optional[str], choice_option(Optimizer, "optimizer", "--optimizer",
                                                  help="Optimizer (default adamw).")],
    "mixed_precision": Annotated[Optional[str], choice_option(MixedPrecision, "mixed precision", "--mixed-precision",
                                                        help="bf16, fp16 (fp32 master weights) or none.")],
    "grad_checkpointing": Annotated[Optional[bool], typer.Option(
        "--grad-checkpointing/--no-grad-checkpointing", help="Keep only layer inputs.", show_default=False)],
    "zero": _opt(int, "--zero", help="DeepSpeed ZeRO stage 0-3."),
    "gpus": _opt(int, "--gpus", help="Data-parallel GPUs (training; components become per GPU)."),
    "gradient_accumulation_steps": _opt(int, "--gradient-accumulation-steps",
                                        help="Micro-batches per optimizer step (default 1; above 1 gradients "
                                             "stay live through the forwards)."),
    "offload": Annotated[Optional[str], choice_option(Offload, "offload", "--offload",
                                                help="none, optimizer or parameters (ZeRO-Offload).")],
}


# ---- training frameworks' memory features (issue 17): a --trainer preset and one switch per feature ----
def _switch(flag: str, help: str) -> Any:
    return Annotated[Optional[bool], typer.Option(f"--{flag}/--no-{flag}", help=help, show_default=False)]


WORKLOAD_OPTIONS.update({
    "trainer": Annotated[Optional[str], choice_option(
        Trainer, "trainer", "--trainer",
        help="Training framework whose default recipe sets the memory features below (hf, trl, torchtune, "
             "unsloth, axolotl); each flag below overrides it.")],
    "fused_ce": _switch("fused-ce", "Fused linear cross-entropy (Liger, Unsloth, TRL chunked_nll): only a chunk "
                                    "of logits is live."),
    "chunked_ce": _switch("chunked-ce", "torchtune's chunked cross-entropy (8 chunks of tokens)."),
    "activation_offloading": _switch("activation-offloading", "Saved activations in host RAM (torchtune "
                                                              "enable_activation_offloading, Unsloth's checkpoints)."),
    "optimizer_in_bwd": _switch("optimizer-in-bwd", "Optimizer step fused into backward (torchtune "
                                                    "optimizer_in_bwd): one gradient live at a time."),
    "packing": _switch("packing", "Sequences packed to --seq (no padding; stated, bytes per token unchanged)."),
    "torch_compile": _switch("torch-compile", "torch.compile of each decoder layer: fewer saved intermediates "
                                              "(measured families; others sized eager)."),
    "prepare_kbit": _switch("prepare-kbit", "QLoRA: PEFT's prepare_model_for_kbit_training (unquantized weights "
                                            "and activations in fp32); on by default without --trainer or with hf."),
})


# ---- FSDP2 and RL post-training (llm_mem.estimators.fsdp, llm_mem.estimators.rl) ----
WORKLOAD_OPTIONS.update({
    "fsdp": Annotated[Optional[str], choice_option(
        Fsdp, "FSDP sharding", "--fsdp",
        help="PyTorch FSDP2: full (FULL_SHARD over --gpus) or hybrid (HSDP: shard in groups, replicate across).")],
    "fsdp_shard_size": _opt(int, "--fsdp-shard-size", help="HSDP: GPUs per shard group (default 8, one node)."),
    "fsdp_offload": Annotated[Optional[bool], typer.Option(
        "--fsdp-offload/--no-fsdp-offload", show_default=False,
        help="FSDP2 CPUOffloadPolicy: sharded params, grads and optimizer states in host RAM.")],
    "num_generations": _opt(int, "--num-generations", help="GRPO: completions per prompt (TRL default 8)."),
    "beta": _opt(float, "--beta", help="RL KL coefficient (TRL: GRPO 0 = no reference model, DPO 0.1, PPO 0.05)."),
    "rollout_gpu_memory_utilization": _opt(
        float, "--rollout-gpu-memory-utilization",
        help="GRPO/PPO: share of each GPU the colocated vLLM rollout engine takes (TRL default 0.3)."),
    "use_peft": Annotated[Optional[bool], typer.Option(
        "--use-peft/--no-use-peft", show_default=False,
        help="GRPO/DPO: a LoRA policy (TRL's use_peft; r 16, dropout 0.05; no reference copy).")],
})


# ---- Megatron-LM's model parallelism for training, Megatron's own flag names (llm_mem.estimators.megatron) ----
WORKLOAD_OPTIONS.update({
    "tensor_model_parallel_size": _opt(int, "--tensor-model-parallel-size",
                                       help="Training: Megatron tensor-parallel GPUs (heads and MLP split)."),
    "sequence_parallel": Annotated[Optional[bool], typer.Option(
        "--sequence-parallel/--no-sequence-parallel", show_default=False,
        help="Training: Megatron sequence parallelism (the residual stream split over the TP ranks).")],
    "context_parallel_size": _opt(int, "--context-parallel-size",
                                  help="Training: Megatron context-parallel GPUs (sequence split, ring attention)."),
})


def with_workload_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add WORKLOAD_OPTIONS to a command's signature; the command receives them as ``settings``."""
    sig = inspect.signature(fn)
    own = [p for p in sig.parameters.values() if p.name != "settings"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
             for name, ann in WORKLOAD_OPTIONS.items()]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        settings = {name: kwargs.pop(name) for name in WORKLOAD_OPTIONS}
        return fn(settings=settings, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=own + extra)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**{p.name: p.annotation for p in own}, **WORKLOAD_OPTIONS}
    return wrapper


ModelArg = Annotated[str, typer.Argument(help="Hub id (org/name), bundled alias, config.json or model folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout; notes go to stderr.")]
RevisionOpt = Annotated[Optional[str], typer.Option("--revision", help="Hub branch, tag or commit.")]
TokenOpt = Annotated[Optional[str], typer.Option("--token", help="Hub token (default: HF_TOKEN or `hf auth login`).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Read this config.json instead of the Hub.")]
MissingShardsOpt = Annotated[bool, typer.Option(
    "--allow-missing-shards", help="A checkpoint index naming absent shards: warn and size from config.json.")]
VerifyOpt = Annotated[bool, typer.Option("--verify", help="Measure one real layer on the local GPU (or CPU).")]
GpuOpt = Annotated[Optional[str], typer.Option(
    "--gpu", help="A catalog GPU (H100, 4090), a count (4xA100-80GB), a size (8GB, 24GiB) or `local`.")]
CatalogOpt = Annotated[Optional[Path], typer.Option("--catalog", help="YAML file adding or overriding GPUs.")]
