"""Peak memory of a sweep task, estimated from the scenario before anything runs.

A task sends one batch: ``batch_size`` images through an image link, or one Monte-Carlo batch
of ``ceil(batch_bits / payload_bits)`` code blocks through a BER link, as ``rows`` rows of
``n`` complex symbols (``n``: the link's channel uses per image, or a code block's symbols).
The model of what a task holds at its peak, in bytes (complex64 = 8, float32 = 4: channels
run in single precision), is

    peak = weights + images + link + channel

- ``weights``: the parameters and buffers of the link's networks, counted on the built links
  (:func:`module_bytes`); 0 where they are not built (``semlink validate``).
- ``images``: the batch and its reconstruction, ``2 x 4 x 3 H W`` per image.
- ``link``: the networks' activations, per image and pixel of the ``H x W`` image
  (:data:`ACTIVATION_BYTES_PER_PIXEL`: the semantic receiver's stage B and stage A, DeepJSCC's
  decoder, the img2img VAE, all at the image size), and for coded links the demapper and the
  LDPC decoder, :data:`CODED_BYTES_PER_BIT` per coded bit and ``16 M`` per ``M``-QAM symbol.
  These constants are coarse: the activations' was measured for the semantic preset small
  only (~650 bytes per pixel), the coding's not at all; they err low rather than refuse a run
  that fits.
- ``channel``, measured on the CPU with ``tests/simulator/test_memory.py`` (``U = 8 rows n``,
  one complex copy of the batch):

  * ``awgn``: ``3 U`` (the noise, its scaled copy, the output), plus ``1.5 U`` for each of a
    transmit amplifier, oscillator phase errors and a phase tracker.
  * ``rayleigh``/``rician``: ``(1.5 + 6 A) U`` with ``A`` receive antennas, ``28 A U`` for
    time-correlated (Doppler) fading; ``x 2.2`` with two transmit antennas (Alamouti's pairs);
    plus the impairments as for ``awgn``.
  * ``ofdm``: ``S = rows x ceil(n / D)`` slots (resource grids) of ``D`` data resource
    elements; each slot holds ``R = num_ofdm_symbols x fft_size`` resource elements, or in the
    time domain ``T = num_ofdm_symbols x (fft_size + cyclic_prefix_length)`` samples. The
    pipeline (grids, channel, estimate, LMMSE) keeps about 17 complex copies of them (19 with
    a multipath model, 21 with PT-RS). In the time domain the TR 38.901 model's taps are drawn
    for every one of ``T' = T + L - 1`` samples, ``L = l_max - l_min + 1`` lags at the
    bandwidth ``fft_size x subcarrier_spacing`` (``l_min = -6``, ``l_max = ceil(W tau_max) +
    6``): first its ``P`` paths' sums of 20 sinusoids (``20 P T' x 20`` bytes for TDL, ``24``
    per element for CDL's rays), then Sionna's sinc interpolation, a ``[P, T', L]`` complex
    product summed to the ``[T', L]`` taps (``8 (P + 1) T' L + 8 P T'``). A slot's peak is the
    largest of these three stages. At ``fft_size`` 4096, 140 symbols and TDL-A (100 ns, ``L``
    132) that is 14.6 GB per slot, what issue #22 measured (15.6 GB peak RSS).

Splitting a batch would change its random draws (one channel generator per task and
repetition draws for the whole batch), so a batch that does not fit is refused, not split
(:func:`check_memory`). The limit (:func:`memory_limit`): ``SEMLINK_MEMORY_LIMIT`` (``--memory-
limit`` of ``semlink validate`` and ``run``) if set, else a fraction of the memory available
now: :data:`AVAILABLE_FRACTION` of ``MemAvailable`` (psutil's, else ``/proc/meminfo``) on the
CPU, of the device's free memory on CUDA; no check where neither can be read.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from semlink.errors import InputError

__all__ = ["MemoryEstimate", "estimate_task_memory", "config_channel_uses", "channel_bytes", "memory_limit",
           "check_memory", "parse_size", "format_size", "module_bytes", "MEMORY_LIMIT_ENV",
           "AVAILABLE_FRACTION", "ACTIVATION_BYTES_PER_PIXEL", "CODED_BYTES_PER_BIT",
           "TR38901_PROFILES"]

#: Environment variable that sets the limit (``8GiB``, ``500MB``, bytes; ``off``: no check).
MEMORY_LIMIT_ENV = "SEMLINK_MEMORY_LIMIT"
#: Share of the memory available now that a batch may take by default.
AVAILABLE_FRACTION = 0.8
#: Activations per image pixel of the links' networks, bytes (semantic preset small at 256 px on
#: the CPU: ~650 measured; larger presets and the other links not measured).
ACTIVATION_BYTES_PER_PIXEL = {"semantic": 1024, "deepjscc": 1024, "img2img-sc": 1024}
#: Demapper LLRs and LDPC decoder messages per coded bit, bytes (coarse, not measured).
CODED_BYTES_PER_BIT = 64
#: TR 38.901 models: (paths P, largest delay over the delay spread), as Sionna has them
#: (tests/simulator/test_memory.py compares them with Sionna's).
TR38901_PROFILES = {
    "tdl-a": (23, 9.6586), "tdl-b": (23, 4.7834), "tdl-c": (24, 8.6523),
    "tdl-d": (13, 12.525), "tdl-e": (14, 20.6519),
    "cdl-a": (23, 9.6586), "cdl-b": (23, 4.7834), "cdl-c": (24, 8.6523),
    "cdl-d": (13, 12.525), "cdl-e": (14, 20.6419),
}
_SINUSOIDS = 20  # Sionna's TDL sinusoids per path, CDL's rays per cluster
_WINDOW_LAGS = 6  # Sionna's l_min = -6 and the 6 extra lags of l_max
_COMPLEX = 8
_GIB = 2 ** 30


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimated peak of one task.

    :ivar total_bytes: weights + images + link + channel, of the link with the largest peak.
    :ivar weights_bytes: Of the networks (0 where not counted).
    :ivar link: The link whose task peaks highest.
    :ivar what: What sizes its channel part, in words (``fft_size 4096 x 140 OFDM symbols ...``).
    :ivar batch: Images (or code blocks) per task of that link.
    :ivar unit: ``images`` or ``code blocks``.
    """

    total_bytes: int
    weights_bytes: int
    link: str
    what: str
    batch: int
    unit: str

    @property
    def working_bytes(self) -> int:
        """What a batch needs besides the networks' weights."""
        return self.total_bytes - self.weights_bytes


def format_size(size: float) -> str:
    """``1.2 GiB``, ``340 MiB``, ``12 KiB``: binary units, two or three digits.

    >>> format_size(15.6e9)
    '14.5 GiB'
    """
    for unit, scale in (("GiB", _GIB), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(size)} B"


def parse_size(text: str) -> int | None:
    """Bytes of ``8GiB``, ``8 GB``, ``500M``, ``123456``; None for ``off``/``none``.

    :raises ValueError: If ``text`` is no size.

    >>> parse_size("8GiB"), parse_size("1.5 GB"), parse_size("off")
    (8589934592, 1500000000, None)
    """
    if text.strip().lower() in ("off", "none"):
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(i?)b?\s*", text, re.IGNORECASE)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"a memory limit must be a size such as 8GiB, 500MB or off; "
                         f"got {text!r}")
    number, prefix, binary = match.groups()
    power = " kmgt".index(prefix.lower() or " ")
    return int(float(number) * (1024 if binary else 1000) ** power)


def _impairment_copies(config: Any) -> float:
    layers = (getattr(config, "amplifier", None) is not None,
              getattr(config, "phase_noise_linewidth", None) is not None
              or getattr(config, "frequency_offset", None) is not None,
              getattr(config, "phase_tracking", None) is not None)
    return 1.5 * sum(layers)


def _lags(config: Any, paths_delay: float) -> int:
    """``L``: Sionna's lags ``l_min .. l_max`` at the grid's bandwidth."""
    bandwidth_hz = config.fft_size * config.subcarrier_spacing_hz
    return int(math.ceil(bandwidth_hz * paths_delay * config.delay_spread_s)) \
        + 2 * _WINDOW_LAGS + 1


def _data_per_slot(config: Any) -> int:
    """Data resource elements of one OFDM slot (pilot symbols, guards, DC and PT-RS out)."""
    effective = config.fft_size - sum(config.num_guard_carriers or (0, 0)) - bool(config.dc_null)
    symbols = config.num_ofdm_symbols - len(config.pilot_ofdm_symbol_indices)
    if config.phase_tracking is not None:
        effective -= -(-effective // config.phase_tracking.subcarrier_stride)
    return max(1, symbols * effective)


def channel_bytes(config: Any, rows: int, n: int) -> tuple[int, str]:
    """Peak bytes of one call of the channel of ``config`` on ``rows`` rows of ``n`` symbols,
    and what sizes it, in words (see the module docstring for the model).

    :param config: A channel configuration of :mod:`semlink.scenario.channels`.
    """
    copy = _COMPLEX * rows * n
    if config.type == "awgn":
        return int((3 + _impairment_copies(config)) * copy), f"{rows} x {n} symbols"
    if config.type in ("rayleigh", "rician"):
        antennas = config.num_rx_antennas or 1
        copies = 28 * antennas if config.normalized_doppler is not None else 1.5 + 6 * antennas
        if (config.num_tx_antennas or 1) == 2:
            copies *= 2.2
        return (int((copies + _impairment_copies(config)) * copy),
                f"{rows} x {n} symbols x {antennas} antenna(s)")
    if config.type != "ofdm":
        raise TypeError(f"`config` must be a channel configuration; got {type(config).__name__}.")
    slots = rows * -(-n // _data_per_slot(config))
    time_domain = config.domain == "time"
    samples = config.num_ofdm_symbols * (config.fft_size
                                         + (config.cyclic_prefix_length if time_domain else 0))
    copies = 17 + 2 * (config.model != "none") + 2 * (config.phase_tracking is not None)
    per_slot = copies * _COMPLEX * samples
    what = (f"fft_size {config.fft_size} x {config.num_ofdm_symbols} OFDM symbols x {slots} "
            f"slot(s)")
    if time_domain and config.model != "none":
        paths, delay = TR38901_PROFILES[config.model]
        lags = _lags(config, delay)
        drawn = samples + lags - 1  # T'
        sinusoids = (24 if config.model.startswith("cdl") else 20) * paths * drawn * _SINUSOIDS
        sinc = _COMPLEX * ((paths + 1) * drawn * lags + paths * drawn)
        per_slot = max(per_slot, sinusoids, sinc)
        what = (f"fft_size {config.fft_size} x {config.num_ofdm_symbols} OFDM symbols x "
                f"{lags} taps x {paths} paths ({config.model}) x {slots} slot(s)")
    return int(per_slot * slots), what


def _link_rows(config: Any, scenario: Any, uses: int | None) -> tuple[int, int, str] | None:
    """``(rows, symbols per row, unit)`` a task of link ``config`` sends; None if unknown."""
    if config.kind == "bits":
        from semlink.links.ber import ber_link_rate

        try:
            bits_per_symbol, n, rate = ber_link_rate(config)
        except ValueError:
            return None  # reported, in its words, when the link is built
        payload = max(1, int(n * rate))
        return (max(1, -(-scenario.monte_carlo.batch_bits // payload)), n // bits_per_symbol,
                "code blocks")
    if uses is None:
        return None
    return scenario.batch_size, uses, "images"


def _link_bytes(config: Any, scenario: Any, rows: int, n: int) -> int:
    """Images, activations and coding of one batch of link ``config``."""
    extra = 0
    if scenario.images is not None and config.kind != "bits":
        height, width = scenario.images.shape
        pixels = height * width
        extra += rows * pixels * (2 * 4 * 3 + ACTIVATION_BYTES_PER_PIXEL.get(config.type, 0))
    modulation = getattr(config, "modulation", None)
    coded = getattr(config, "code_rate", None) is not None or config.kind == "bits"
    if isinstance(modulation, int) and coded:
        bits = rows * n * max(1, modulation.bit_length() - 1)
        extra += CODED_BYTES_PER_BIT * bits + 16 * modulation * rows * n
    return extra


def estimate_task_memory(scenario: Any, channel_uses: Mapping[str, int | None], *,
                         weights_bytes: int = 0,
                         links: Iterable[str] | None = None) -> MemoryEstimate | None:
    """The largest estimated peak among the tasks of ``scenario``'s links.

    :param channel_uses: Complex channel uses per image of each image link (None or absent:
        unknown, left out); BER links are sized from their config.
    :param weights_bytes: Of the built links' networks (:func:`module_bytes`).
    :param links: The links to size (default all; other names, the FID reference, skipped).
    :output estimate: None when no link could be sized.
    """
    best = None
    names = scenario.links if links is None else [n for n in links if n in scenario.links]
    for name in names:
        config = scenario.links[name]
        sized = _link_rows(config, scenario, channel_uses.get(name))
        if sized is None:
            continue
        rows, n, unit = sized
        channel, what = channel_bytes(scenario.channel, rows, n)
        total = weights_bytes + channel + _link_bytes(config, scenario, rows, n)
        if best is None or total > best.total_bytes:
            best = MemoryEstimate(total, weights_bytes, name, what, rows, unit)
    return best


def config_channel_uses(builder: Any, links: Iterable[str]) -> dict[str, int]:
    """Channel uses per image of the image links among ``links`` whose configs give them
    without models (semantic, classical), from ``builder``, a
    :class:`~semlink.links.builder.LinkBuilder`; a link whose config cannot say is left out
    (its build reports why)."""
    from semlink.links.protocol import per_snr

    uses = {}
    for name in links:
        config = builder.scenario.links.get(name)  # None: the FID reference's features
        if (config is None or config.kind != "image" or per_snr(config)
                or not callable(getattr(config, "channel_uses", None))):
            continue
        try:
            uses[name] = builder.channel_uses(name)
        except (InputError, ValueError):
            pass
    return uses


def module_bytes(objects: Any) -> int:
    """Bytes of the parameters and buffers of the ``torch.nn.Module`` s among ``objects`` and
    their attributes, two levels deep (a link's networks, a receiver's), each tensor once."""
    import torch

    seen: dict[int, int] = {}

    def walk(obj: Any, depth: int) -> None:
        if isinstance(obj, torch.nn.Module):
            for tensor in (*obj.parameters(), *obj.buffers()):
                seen[id(tensor)] = tensor.numel() * tensor.element_size()
        elif depth and hasattr(obj, "__dict__") and not isinstance(obj, type):
            for value in vars(obj).values():
                walk(value, depth - 1)

    for obj in objects:
        walk(obj, 2)
    return sum(seen.values())


def _available_bytes(device: str) -> tuple[int | None, str]:
    """Memory a batch may take now on ``device`` and where that was read, or (None, why)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(AVAILABLE_FRACTION * free), f"{AVAILABLE_FRACTION:.0%} of {device}'s free memory"
    try:
        import psutil

        available = psutil.virtual_memory().available
    except ImportError:
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                match = re.search(r"^MemAvailable:\s+(\d+) kB", f.read(), re.MULTILINE)
        except OSError:
            match = None
        if match is None:
            return None, "available memory unknown"
        available = int(match.group(1)) * 1024
    return int(AVAILABLE_FRACTION * available), f"{AVAILABLE_FRACTION:.0%} of available memory"


def memory_limit(device: str) -> tuple[int | None, str, bool]:
    """``(bytes, source, explicit)``: the limit of a task's peak on ``device``, what set it,
    and whether it was given (``SEMLINK_MEMORY_LIMIT``; it then bounds the whole peak, weights
    included) rather than read off the memory available now (which the loaded weights have
    already taken: it then bounds the rest). ``bytes`` None: no check.

    :raises InputError: If ``SEMLINK_MEMORY_LIMIT`` holds no size.
    """
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        try:
            return parse_size(text), f"--memory-limit / {MEMORY_LIMIT_ENV}", True
        except ValueError as err:
            raise InputError(f"{MEMORY_LIMIT_ENV}: {err}") from None
    return (*_available_bytes(device), False)


def check_memory(estimate: MemoryEstimate | None, scenario: Any, device: str) -> None:
    """Refuse a scenario whose task would not fit, in one line with the estimate and the fix.

    :raises InputError: If the estimated peak exceeds :func:`memory_limit`.
    """
    if estimate is None:
        return
    limit, source, explicit = memory_limit(device)
    need = estimate.total_bytes if explicit else estimate.working_bytes
    if limit is None or need <= limit:
        return
    fix = ("lower batch_size, fft_size or num_ofdm_symbols" if scenario.channel.type == "ofdm"
           else "lower batch_size" + (" or the image size" if scenario.images else ""))
    if estimate.unit == "code blocks":
        fix = "lower monte_carlo.batch_bits"
    raise InputError(
        f"{_section(scenario)}: this configuration needs about {format_size(need)} per batch "
        f"of {estimate.batch} {estimate.unit} of link {estimate.link} ({estimate.what}); the "
        f"limit is {format_size(limit)} ({source}); {fix}")


def _section(scenario: Any) -> str:
    return "channel" if scenario.channel.type == "ofdm" else "batch_size"
