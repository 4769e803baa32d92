"""The links of one scenario, built on demand through the link protocol
(:mod:`semlink.links.protocol`) and kept: what the task runner, ``semlink transmit``,
``semlink papr`` and ``semlink info`` share.

Each link is built once (its models loaded once), or once per SNR point for a config whose
``per_snr`` says its frame depends on the SNR (adaptive modulation and coding, the ideal code).
A link's :class:`~semlink.links.protocol.LinkContext` resolves ``bandwidth: {match: NAME}``
through :meth:`LinkBuilder.channel_uses`, which asks the config (no models) before it builds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from semlink.errors import InputError
from semlink.links.protocol import Dimensionality, LinkContext, per_snr, scoring_rule

__all__ = ["LinkBuilder"]


class LinkBuilder:
    """Builds and keeps the links of ``scenario``.

    :param scenario: The validated scenario.
    :param base_dir: Folder relative paths of the scenario start from.
    :param device: Torch device string the links run on.
    """

    def __init__(self, scenario: Any, *, base_dir: Path, device: str) -> None:
        self.scenario = scenario
        self.base_dir = Path(base_dir)
        self.device = device
        self._built: dict[tuple[str, float | None], Any] = {}

    def context(self, name: str, snr_db: float | None = None) -> LinkContext:
        """What link ``name``'s config builds from (``snr_db`` for a per-SNR link)."""
        images = self.scenario.images
        return LinkContext(name=name, image_shape=None if images is None else images.shape,
                           device=self.device, seed=self.scenario.seed, base_dir=self.base_dir,
                           channel=self.scenario.channel, channel_uses_of=self.channel_uses,
                           snr_db=snr_db)

    def link(self, name: str, snr_db: float | None = None):
        """The built link ``name``; for a per-SNR link, the one of ``snr_db``.

        :raises ValueError: If a per-SNR link is asked for without ``snr_db``.
        :raises InputError: As the link's ``build`` does, or if the built link scores failures
            otherwise than its config says.
        """
        config = self.scenario.links[name]
        if per_snr(config):
            if snr_db is None:
                raise ValueError(f"link {name!r} is built per SNR point; give `snr_db`.")
            key = (name, float(snr_db))
        else:
            key = (name, None)
        if key not in self._built:
            built = config.build(self.context(name, key[1]))
            rule = getattr(built, "scoring", None)
            if built.kind == "image" and rule != scoring_rule(config):
                raise InputError(f"links.{name}: the built link scores failed decodes as "
                                 f"{rule!r}, its config as {scoring_rule(config)!r}")
            self._built[key] = built
        return self._built[key]

    def channel_uses(self, name: str) -> int:
        """Complex channel uses per image of link ``name``: its config's ``channel_uses``
        (no models), else the built link's."""
        config = self.scenario.links[name]
        ask = getattr(config, "channel_uses", None)  # optional (semlink.links.protocol)
        if callable(ask):
            return ask(self.context(name))
        return self.link(name).channel_uses

    def dimensionality(self, name: str, snr_db: float | None = None) -> Dimensionality | None:
        """The Table 1 row of link ``name`` (at ``snr_db`` for a per-SNR link): its config's
        ``dimensionality`` (no models), else the built link's; None for a per-SNR link without
        ``snr_db``."""
        config = self.scenario.links[name]
        ask = getattr(config, "dimensionality", None)  # optional (semlink.links.protocol)
        row = ask(self.context(name, snr_db)) if callable(ask) else None
        if row is not None:
            return row
        if per_snr(config) and snr_db is None:
            return None
        return self.link(name, snr_db).dimensionality()
