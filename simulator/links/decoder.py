"""The LDPC decoder a scenario asks for: its ``decoder`` section as the decoder's arguments."""
from __future__ import annotations

__all__ = ["decoder_settings"]


def decoder_settings(decoder) -> dict[str, object]:
    """``num_iter`` and ``cn_update`` of a scenario's ``decoder`` section (classical, BER or
    digital semantic link), as :class:`~semlink.modulation.ldpc.CodeBlockDecoder` takes them; its
    defaults, 20 iterations of boxplus, for None.

    >>> decoder_settings(None)
    {'num_iter': 20, 'cn_update': 'boxplus'}
    """
    if decoder is None:
        return {"num_iter": 20, "cn_update": "boxplus"}
    return {"num_iter": decoder.iterations, "cn_update": decoder.check_node}
