"""Build a channel model of ``channels/`` from a scenario's channel configuration."""
from __future__ import annotations

from typing import TYPE_CHECKING

from semlink.scenario import ChannelConfig, union_members

if TYPE_CHECKING:
    import torch
    from sionna.phy import Block

__all__ = ["build_channel", "ChannelConfigKey"]

_CHANNEL_CLASSES = tuple(union_members(ChannelConfig).values())


def build_channel(config: ChannelConfig, *, generator: torch.Generator | None,
                  device: str, check_values: bool = False) -> Block:
    """The channel block for ``config``; call it as ``x_hat, no_eff = channel(x, snr_db)``.

    Each channel config class builds its own channel (``config.build``, see
    :mod:`semlink.scenario.channels`): a channel type is added there alone.

    :param config: A validated channel section of a scenario.
    :param generator: Source of fading and noise on ``device``.
    :param device: Torch device string.
    :param check_values: Check per call that ``snr_db`` is not NaN or -inf. Default False:
        a scenario's SNRs are validated when it is loaded, and the check reads a value back
        from the device, which stalls a CUDA hot path.
    """
    if not isinstance(config, _CHANNEL_CLASSES):
        raise TypeError(f"`config` must be a channel configuration; got {type(config).__name__}.")
    return config.build(generator=generator, device=device, check_values=check_values)


class ChannelConfigKey:
    """Hashable stand-in for a channel configuration (pydantic models may hold lists), for
    memoising Monte-Carlo estimates per channel (:mod:`semlink.links.amc`,
    :mod:`semlink.links.capacity`); ``.config`` is the configuration."""

    __slots__ = ("config", "_key")

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self._key = (type(config).__name__, config.model_dump_json())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelConfigKey) and self._key == other._key
