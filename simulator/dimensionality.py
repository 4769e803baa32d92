"""What each link of a scenario sends per image: the paper's Table 1 (``semlink info``).

A row is a link's :class:`~semlink.links.protocol.Dimensionality` at the scenario's image size:
the shape of the values it sends, the compression ratio ``3 H W / values`` (image values per
value sent), the values as a share of the image's ``3 H W``, and its complex channel uses per
image. The semantic link sends its embedding Z (``[16, 12, 12]`` at 512 px: CR 341, 0.29 %);
a classical link its frame, counted in bytes (the 8-bit image's unit, so its CR is the usual
raw-bytes-per-frame-byte one). Rows come from the link configs where they can give them without
models (semantic, classical); other links are built (:class:`~semlink.links.builder.LinkBuilder`).
A link whose frame is chosen per SNR point (adaptive, the ideal code) has no fixed row: its
frame is in the ``points`` table of a run (``frame_bits``, ``mcs``); BER links send no images.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from semlink.links.protocol import Dimensionality, per_snr

__all__ = ["LinkRow", "scenario_rows", "format_rows"]


@dataclasses.dataclass(frozen=True)
class LinkRow:
    """One link of a scenario in the table.

    :ivar link: Its name.
    :ivar type: Its ``type``.
    :ivar dimensionality: What it sends per image; None when it has no fixed row.
    :ivar channel_uses: Complex channel uses per image (None for a BER link).
    :ivar why: Why there is no row ("" when there is one).
    """

    link: str
    type: str
    dimensionality: Dimensionality | None
    channel_uses: int | None
    why: str = ""


def scenario_rows(scenario: Any, *, base_dir: Path, device: str = "cpu") -> list[LinkRow]:
    """The table's rows of ``scenario``'s links, in its order.

    :param base_dir: Folder the scenario's relative paths start from.
    :param device: Where a link that must be built to answer is built.
    :raises InputError: As a link's ``build`` does (a user's class that cannot be imported).
    """
    from semlink.links.builder import LinkBuilder

    builder = LinkBuilder(scenario, base_dir=base_dir, device=device)
    rows = []
    for name, config in scenario.links.items():
        if config.kind != "image":
            rows.append(LinkRow(name, config.type, None, None, "random bits, no images"))
            continue
        row = builder.dimensionality(name)
        uses = builder.channel_uses(name) if row is None else row.channel_uses
        why = "frame chosen per SNR point" if row is None and per_snr(config) else ""
        if why and getattr(config, "channel_code", None) == "capacity":
            from semlink.links.capacity import header_convention

            why += f"; {header_convention(config.codec, config.jpeg2000_header)}"
        rows.append(LinkRow(name, config.type, row, uses, why))
    return rows


def format_rows(rows: list[LinkRow]) -> list[str]:
    """The rows as aligned text lines (a header first), as ``semlink info`` prints them.

    >>> row = Dimensionality((16, 12, 12), (512, 512), 1152, "analog")
    >>> print("\\n".join(format_rows([LinkRow("semantic", "semantic", row, 1152)])))
    link      sent          values  CR     % of image  channel uses  what
    semantic  [16, 12, 12]  2304    341.3  0.293       1152          analog
    """
    table = [("link", "sent", "values", "CR", "% of image", "channel uses", "what")]
    for r in rows:
        d = r.dimensionality
        uses = "" if r.channel_uses is None else str(r.channel_uses)
        if d is None:
            table.append((r.link, "", "", "", "", uses, r.why))
        else:
            table.append((r.link, str(list(d.sent_shape)), str(d.values),
                          f"{d.compression_ratio:.1f}", f"{d.percent_of_image:.3g}", uses,
                          d.note))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(line, widths)), line[-1]]).rstrip()
            for line in table]
