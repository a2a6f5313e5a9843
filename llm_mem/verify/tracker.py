"""Memory trackers for --verify: the allocator's own counters on CUDA/ROCm (and XPU), live-tensor
tracking elsewhere (CPU, MPS), behind one interface: `live()`, `peak()`, `reset_peak()`, used as a
context manager around the measured code.

Live-tensor tracking (CPU/MPS) — the method
-------------------------------------------
A `TorchDispatchMode` sees every ATen op that runs while it is active, forward and backward
(autograd carries the mode to its worker threads as part of its thread-local state). For every
tensor an op returns we look at its *storage*: a storage not seen before, and not shared with one
of the op's inputs (views, in-place and out= ops allocate nothing), is a new allocation of
`storage.nbytes()` bytes. A `weakref` to the storage (PyTorch preserves a storage's Python object
while its C++ StorageImpl lives, so the weakref fires exactly when the memory is freed) subtracts
those bytes again. `live()` is the sum of tracked storages; the peak is kept at every allocation.
Storages that exist before tracking starts (weights, buffers, inputs) are not counted: every
figure --verify derives is a difference of live/peak readings, and weights are counted from the
parameters themselves.

What it cannot see: scratch buffers a kernel allocates and frees inside one op (e.g. the per-thread
blocks of the CPU flash-attention kernel), and allocator rounding/caching. On CPU those are small
(kernel scratch is bounded per thread); the CUDA path measures the allocator and sees everything.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

_SLOW_CPU_MATMULS: set[Any] = set()


class CudaTracker:
    """torch.cuda (or torch.xpu) allocator counters: memory_allocated / max_memory_allocated
    (reset by reset_peak_memory_stats), plus max_memory_reserved for the caching slack."""

    method = "cuda max_memory_allocated"

    def __init__(self, mod: Any, device: Any) -> None:
        self.mod, self.device = mod, device

    def __enter__(self) -> CudaTracker:
        self.mod.synchronize(self.device)
        self.mod.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.mod.synchronize(self.device)

    def live(self) -> int:
        self.mod.synchronize(self.device)
        return int(self.mod.memory_allocated(self.device))

    def peak(self) -> int:
        self.mod.synchronize(self.device)
        return int(self.mod.max_memory_allocated(self.device))

    def reserved_peak(self) -> int:
        return int(self.mod.max_memory_reserved(self.device))

    def reset_peak(self) -> None:
        self.mod.synchronize(self.device)
        self.mod.reset_peak_memory_stats(self.device)


def _column_major_rhs(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """(a, b) with a 16-bit row-major b replaced by a column-major copy of it (same values)."""
    import torch

    if len(args) < 2:
        return args
    a, b = args[0], args[1]
    if (isinstance(b, torch.Tensor) and b.dtype in (torch.bfloat16, torch.float16) and b.dim() >= 2
            and b.stride(-1) == 1 and b.shape[-1] > 1 and b.shape[-2] > 1):
        b = b.transpose(-1, -2).contiguous().transpose(-1, -2)
        return (a, b) + tuple(args[2:])
    return args


def _make_live_tracker() -> Any:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    # CPU speed only: oneDNN's bf16/fp16 GEMM on AVX2 CPUs without native bf16 runs ~40x slower when
    # the right operand is row-major (a @ W, as gpt-oss's experts multiply) than column-major
    # (F.linear's x @ W.T): 7.1 s vs 0.18 s for 64x2880 @ 2880x5760 on this project's CI CPU
    # (gpt-oss-20b's expert shape), and 6.9 s vs 2.3 s (copy included) for its 32-expert _grouped_mm.
    # Such products get a column-major copy of W; the output, which is all that is tracked, is the
    # same tensor, and the copy is freed inside the op (not counted: the real run does not make it).
    _SLOW_CPU_MATMULS.update({torch.ops.aten.mm.default, torch.ops.aten.bmm.default})
    grouped = getattr(torch.ops.aten, "_grouped_mm", None)  # transformers 5 MoE experts (grouped_mm)
    if grouped is not None:
        _SLOW_CPU_MATMULS.add(grouped.default)

    class LiveTensorTracker(TorchDispatchMode):
        """Live bytes of storages allocated by ATen ops while active (see the module docstring)."""

        def __init__(self, device_type: str = "cpu") -> None:
            super().__init__()
            self.device_type = device_type
            self.method = f"{device_type} live-tensor tracking"
            self._live = 0
            self._peak = 0
            self._refs: dict[int, Any] = {}  # data_ptr -> weakref to the storage

        # -- interface --
        def live(self) -> int:
            return self._live

        def peak(self) -> int:
            return self._peak

        def reserved_peak(self) -> int:
            return self._peak

        def reset_peak(self) -> None:
            self._peak = self._live

        # -- bookkeeping --
        def _freed(self, key: int, nbytes: int, ref: Any) -> None:
            if self._refs.get(key) is ref:
                del self._refs[key]
                self._live -= nbytes

        def _track(self, t: torch.Tensor, inputs: set[int]) -> None:
            if t.device.type != self.device_type or t.is_sparse:
                return
            try:
                st = t.untyped_storage()
            except (RuntimeError, NotImplementedError):  # tensor subclasses without storage
                return
            key = st.data_ptr()
            n = st.nbytes()
            if key == 0 or n == 0 or key in inputs:
                return
            old = self._refs.get(key)
            if old is not None and old() is st:
                return  # already tracked (an op returned an existing storage)
            def on_free(r: Any, key: Any = key, n: int = n) -> None:
                self._freed(key, n, r)

            ref = weakref.ref(st, on_free)
            self._refs[key] = ref
            self._live += n
            self._peak = max(self._peak, self._live)

        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                               kwargs: dict[str, Any] | None = None) -> Any:
            if func in _SLOW_CPU_MATMULS and self.device_type == "cpu":
                args = _column_major_rhs(args)
            out = func(*args, **(kwargs or {}))
            inputs: set[int] = set()
            for a in tree_flatten((args, kwargs or {}))[0]:
                if isinstance(a, torch.Tensor) and a.device.type == self.device_type:
                    with contextlib.suppress(RuntimeError, NotImplementedError):
                        inputs.add(a.untyped_storage().data_ptr())
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self._track(t, inputs)
            return out

    return LiveTensorTracker


def make_tracker(device: Any) -> Any:
    """The tracker for a torch.device."""
    import torch

    if device.type == "cuda":
        return CudaTracker(torch.cuda, device)
    if device.type == "xpu":
        return CudaTracker(torch.xpu, device)
    return _make_live_tracker()(device.type)
