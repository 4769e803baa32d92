"""CUDA graphs for fixed-shape model calls: capture once per input shape, replay after.

At batch 1 the semantic receiver is bound by kernel launches and host work, not arithmetic
(stage B lite + stage A take about as long at 1024 px as at 512 px on an H200,
docs/benchmarks.md): ten UNet evaluations launch thousands of small kernels. A CUDA graph
records those launches once and replays them with one call. A :class:`GraphCache` keeps one
captured graph per key (the caller's: shapes, steps, guidance, ...), so a sweep that sends the
same batch shape again and again captures once and replays ever after.

A captured function must be free of host synchronisation and of random-number calls (draw the
noise before, :func:`semlink.models.sampler.draw_sampling_noise`), and must read its tensor
inputs only (they are copied into static buffers before each replay). Where capture is
impossible (no CUDA, a host sync inside, an unsupported operation) the cache runs the function
eagerly and says why once (:attr:`GraphCache.fallback_reason`): the numbers are the same, only
slower.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch

from semlink.channels._checks import check_int

__all__ = ["CapturedCall", "GraphCache", "graphs_available"]

#: Eager calls made on a side stream before capture: cuDNN/cuBLAS pick their algorithms and the
#: caching allocator settles, as PyTorch's CUDA-graph notes ask.
WARMUP_CALLS = 2


def graphs_available(device: torch.device | str) -> bool:
    """True where CUDA graphs can be captured: a CUDA device with a working runtime."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


class CapturedCall:
    """``fn(*inputs)`` captured in one CUDA graph for inputs of fixed shapes, dtypes and device.

    :param fn: Tensor function of the tensors in ``example_inputs`` (positional), returning one
        tensor; run :data:`WARMUP_CALLS` times eagerly on a side stream, then captured.
    :param example_inputs: Tensors of the shapes every later call uses; their values are copied
        into the graph's static input buffers.
    :raises RuntimeError: If capture fails (a host sync or an operation CUDA graphs refuse).
    :input inputs: Tensors of the example inputs' shapes and dtypes, on their device.
    :output out: A fresh tensor (a clone of the graph's static output).
    """

    def __init__(self, fn: Callable[..., torch.Tensor], example_inputs: tuple[torch.Tensor, ...]
                 ) -> None:
        self._static_inputs = tuple(x.detach().clone() for x in example_inputs)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(WARMUP_CALLS):
                fn(*self._static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph), torch.no_grad():
            self._static_output = fn(*self._static_inputs)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self._static_inputs):
            raise ValueError(f"expected {len(self._static_inputs)} inputs; got {len(inputs)}.")
        for buffer, x in zip(self._static_inputs, inputs):
            if x.shape != buffer.shape or x.dtype != buffer.dtype:
                raise ValueError(f"input {tuple(x.shape)} {x.dtype} does not match the captured "
                                 f"{tuple(buffer.shape)} {buffer.dtype}.")
            buffer.copy_(x)
        self._graph.replay()
        return self._static_output.clone()


class GraphCache:
    """Captured graphs by key, the most recently used kept (each holds its own memory pool).

    :param max_graphs: int >= 1; graphs kept at most, default 4 (a sweep uses one or two batch
        shapes: the full batch and the last, shorter one).
    """

    def __init__(self, max_graphs: int = 4) -> None:
        self.max_graphs = check_int(max_graphs, name="max_graphs", low=1)
        self._graphs: OrderedDict[Hashable, CapturedCall] = OrderedDict()
        self.captures = 0
        self.fallback_reason: str | None = None

    def __len__(self) -> int:
        return len(self._graphs)

    def run(self, key: Hashable, fn: Callable[..., torch.Tensor], *inputs: torch.Tensor
            ) -> torch.Tensor:
        """``fn(*inputs)`` through the graph captured for ``key`` (captured on first use), or
        eagerly where graphs are unavailable or capture failed before."""
        if self.fallback_reason is not None or not graphs_available(inputs[0].device):
            return fn(*inputs)
        call = self._graphs.get(key)
        if call is None:
            try:
                call = CapturedCall(fn, inputs)
            except RuntimeError as err:  # capture refused: eager from now on, said once
                self.fallback_reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                warnings.warn(f"CUDA graph capture failed ({self.fallback_reason}); running "
                              "eagerly (same numbers, slower).", RuntimeWarning, stacklevel=2)
                torch.cuda.synchronize()
                return fn(*inputs)
            self.captures += 1
            self._graphs[key] = call
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        return call(*inputs)

    def clear(self) -> None:
        """Drop every captured graph (their memory pools go with them)."""
        self._graphs.clear()
