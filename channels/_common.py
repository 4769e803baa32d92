"""Private helpers shared by the channel models: generator checks, call-convention checks."""
from __future__ import annotations

import torch

from semlink.channels._checks import check_broadcasts_to, check_complex, check_type

__all__: list[str] = []


def check_generator(generator: torch.Generator | None, device: str) -> None:
    """Raise unless ``generator`` is None or a ``torch.Generator`` on ``device``."""
    if generator is None:
        return
    check_type(generator, torch.Generator, name="generator")
    if _same_device(generator.device, torch.device(device)):
        return
    raise ValueError(
        f"`generator` must live on the block's device {device!r}; got {str(generator.device)!r}."
    )


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    # "cuda" and "cuda:0" name the same device when the current device is 0.
    ia = a.index if a.index is not None else (0 if a.type != "cpu" else None)
    ib = b.index if b.index is not None else (0 if b.type != "cpu" else None)
    return ia == ib


def check_symbols_and_snr(x: torch.Tensor, snr_db: torch.Tensor | float | int, *,
                          check_values: bool) -> torch.Tensor:
    """Check the channel call convention and return ``snr_db`` as a ``[batch, 1]`` tensor.

    :input x: [batch, n], complex.
    :input snr_db: int, float, or real tensor of shape [] or [batch]; dB. NaN and ``-inf``
        are rejected when ``check_values`` is True; ``+inf`` means no noise.
    :output snr_db: [batch, 1], the real dtype matching ``x``, on ``x.device``.
    """
    check_complex(x, name="x")
    if x.dim() != 2:
        raise ValueError(f"`x` must have shape [batch, n]; got shape {tuple(x.shape)}.")
    real_dtype = x.real.dtype
    if isinstance(snr_db, (int, float)) and not isinstance(snr_db, bool):
        snr_db = torch.tensor(float(snr_db), dtype=real_dtype, device=x.device)
    if (not isinstance(snr_db, torch.Tensor) or snr_db.is_complex()
            or snr_db.dtype == torch.bool):
        got = snr_db.dtype if isinstance(snr_db, torch.Tensor) else repr(snr_db)
        raise TypeError(f"`snr_db` must be a real number or a real tensor; got {got}.")
    if snr_db.dim() > 1:
        raise ValueError(
            f"`snr_db` must be a scalar or have shape [batch] = ({x.shape[0]},); "
            f"got shape {tuple(snr_db.shape)}."
        )
    check_broadcasts_to(snr_db, (x.shape[0],), name="snr_db")
    snr_db = snr_db.to(dtype=real_dtype, device=x.device)
    if check_values and not bool(torch.all(snr_db > -float("inf"))):  # NaN fails too
        raise ValueError("`snr_db` must be > -inf and not NaN everywhere.")
    return snr_db.expand(x.shape[0]).unsqueeze(-1)  # [batch, 1]
