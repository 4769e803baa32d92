"""The work a call does, counted operation by operation, and the time floors it sets on a device.

Before timing anything on a GPU, two numbers bound what any implementation can reach: the
floating-point operations the call must do over the device's arithmetic rate, and the bytes it
must move over its memory bandwidth. :func:`count_work` runs a call under two torch dispatch
modes and counts, for every ATen operation it dispatches:

* ``flops``: what ``torch.utils.flop_counter.FlopCounterMode`` counts: matrix products,
  convolutions and attention, two per multiply-add (elementwise work is not counted: it is
  small beside them and memory-bound anyway);
* ``bytes_moved``: the bytes of every tensor the operation reads and writes (inputs and
  outputs; views, which move nothing, left out): the device-memory traffic of the call run
  eagerly, one kernel per operation, each reading its inputs from and writing its outputs to
  device memory. Fused kernels (``torch.compile``) move less; caches can hide some of it;
* ``operations``: the operations dispatched: about the kernels an eager call launches.

Attention (``torch.nn.functional.scaled_dot_product_attention`` without a mask) is counted as
the one fused kernel a GPU runs for it in bfloat16 (flash attention: it reads the queries, keys
and values once and writes the output, the attention matrix never in memory), not as the
unfused math a CPU or the meta device would dispatch.

It counts on any device, the meta device included (shapes and dtypes only, no arithmetic), so
a 700M-parameter UNet at 1024 px is counted in seconds on a CPU. :meth:`Work.floor_seconds`
turns the counts into the two floors on a device's measured peaks.

>>> import torch
>>> a, b = torch.ones(64, 32), torch.ones(32, 16)
>>> work = count_work(torch.mm, a, b)
>>> work.flops == 2 * 64 * 32 * 16, work.bytes_moved == 4 * (64 * 32 + 32 * 16 + 64 * 16)
(True, True)
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_leaves

__all__ = ["Work", "count_work"]


@dataclasses.dataclass(frozen=True)
class Work:
    """What :func:`count_work` counted.

    :param flops: Floating-point operations of matrix products, convolutions and attention.
    :param bytes_moved: Bytes read and written by the operations, views excepted (eager,
        unfused traffic).
    :param operations: ATen operations dispatched, views excepted.
    """

    flops: int
    bytes_moved: int
    operations: int

    @property
    def flops_per_byte(self) -> float:
        """Arithmetic intensity: above a device's (flop rate / bandwidth) the call is bound by
        arithmetic, below by memory traffic."""
        return self.flops / self.bytes_moved if self.bytes_moved else float("inf")

    def floor_seconds(self, *, flops_per_second: float, bytes_per_second: float
                      ) -> dict[str, float]:
        """``{"compute", "memory", "floor"}``: seconds the flops take at ``flops_per_second``,
        the bytes at ``bytes_per_second``, and the larger of the two (no eager run of the call
        is faster; launch gaps and host work come on top)."""
        compute = self.flops / flops_per_second
        memory = self.bytes_moved / bytes_per_second
        return {"compute": compute, "memory": memory, "floor": max(compute, memory)}

    def scaled(self, factor: float) -> Work:
        """The counts times ``factor`` (per image: ``1 / batch``; ``steps`` calls), rounded."""
        return Work(round(self.flops * factor), round(self.bytes_moved * factor),
                    round(self.operations * factor))

    def __add__(self, other: Work) -> Work:
        """The work of one call and then the other."""
        return Work(self.flops + other.flops, self.bytes_moved + other.bytes_moved,
                    self.operations + other.operations)


class _ByteCounter(TorchDispatchMode):
    """Sums the bytes of each non-view operation's tensor inputs and outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes_moved = 0
        self.operations = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view and func not in _NO_TRAFFIC:
            tensors = [t for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
            self.bytes_moved += sum(t.numel() * t.element_size() for t in tensors)
            self.operations += 1
        return out


# Operations that move no data although they are not views by schema.
# (_unsafe_view is a view without the schema's alias annotation.)
_NO_TRAFFIC = frozenset({torch.ops.aten.empty.memory_format, torch.ops.aten.empty_strided.default,
                         torch.ops.aten.detach.default, torch.ops.aten.lift_fresh.default,
                         torch.ops.aten._unsafe_view.default, torch.ops.aten.sym_size.int,
                         torch.ops.aten.sym_stride.int})


def count_work(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Work:
    """Run ``fn(*args, **kwargs)`` once (no gradients) and count its work (module docstring).

    :output work: :class:`Work`.
    """
    from torch.utils.flop_counter import FlopCounterMode

    flop_counter = FlopCounterMode(display=False)
    byte_counter = _ByteCounter()
    functional = torch.nn.functional
    unfused = functional.scaled_dot_product_attention
    functional.scaled_dot_product_attention = functools.partial(_fused_attention, unfused)
    try:
        with torch.no_grad(), flop_counter, byte_counter:
            fn(*args, **kwargs)
    finally:
        functional.scaled_dot_product_attention = unfused
    return Work(int(flop_counter.get_total_flops()), byte_counter.bytes_moved,
                byte_counter.operations)


def _fused_attention(unfused: Callable[..., torch.Tensor], query: torch.Tensor,
                     key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                     dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                     **kwargs: Any) -> torch.Tensor:
    """Scaled dot-product attention counted as one flash-attention operation (what a GPU runs
    in bfloat16); with a mask, dropout or other options, the function itself, counted as it
    dispatches. The result is the function's, computed outside the count; the count is that
    of PyTorch's flash-attention operation on meta tensors of the same shapes (it exists for
    CUDA alone)."""
    if attn_mask is not None or dropout_p or kwargs or query.dim() != 4:
        return unfused(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                       is_causal=is_causal, scale=scale, **kwargs)
    with _disable_current_modes():
        out = unfused(query, key, value, is_causal=is_causal, scale=scale)
        shapes = [torch.empty_like(t, device="meta") for t in (query, key, value)]
    fused = torch.ops.aten._scaled_dot_product_flash_attention(
        *shapes, 0.0, is_causal, return_debug_mask=False, scale=scale)[0]
    with _disable_current_modes():  # flash attention's output layout: the same views after it
        return torch.empty_strided(fused.shape, fused.stride(), dtype=out.dtype,
                                   device=out.device).copy_(out)
