"""A user's link (``type: python``): the class a scenario names, imported, built and held to the
image-link protocol (:class:`~semlink.links.protocol.ImageLink`; docs/user-links.md).

:func:`build_user_link` imports the class (``MODULE:ATTRIBUTE``, the scenario's folder searched
first; or an entry point of group ``semlink.links``), builds it as ``Class(context, **options)``
and wraps it in a :class:`UserLink` that checks what the runner relies on:

- at build: ``channel_uses`` an int >= 1, ``transmit`` callable, ``kind`` (if given) ``"image"``,
  ``scoring`` (if given) the scenario's, ``dimensionality()`` (if given) a
  :class:`~semlink.links.protocol.Dimensionality` of the scenario's image size and the link's
  channel uses; then one probe: a random image (seeded from the scenario's seed and the link's
  name) sent through a noiseless channel, whose output is checked as below and which must send
  at most ``channel_uses`` complex symbols per image;
- at every ``transmit``: a :class:`~semlink.links.protocol.Transmitted` whose ``images`` are
  float32, of the input's shape and device, finite and in [0, 1]; ``failed`` a bool [batch];
  ``columns`` [batch] real or integer tensors under names the ``images`` table does not use
  already (``transmissions`` and ``channel_uses`` may replace the runner's ``channel_uses``),
  the same names at every call; ``ber`` None or :class:`~semlink.links.protocol.BitCounts`.

A class that cannot be imported or built, or breaks the protocol, is an
:class:`~semlink.errors.InputError` of one line naming the link and the class (exit 2 on the
command line, before any result is written: a run builds every link first). Errors the class
raises while it transmits are its own and pass through.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from semlink.errors import InputError, describe_error
from semlink.links.protocol import (BitCounts, Dimensionality, ImageGenerators, LinkContext,
                                    Transmitted)
from semlink.scenario.link_python import ENTRY_POINT_GROUP, split_class_spec
from semlink.seeding import derive_seed, make_generator
from semlink.stage_times import STAGE_COLUMNS

__all__ = ["UserLink", "build_user_link", "import_link_class"]

#: Columns of the ``images`` table the runner writes; a link's columns may not reuse them.
_RUNNER_COLUMNS = ("link", "snr_db", "image_index", "image", "repeat", "failed")
#: Columns a link may give to replace the runner's (a link that resends).
_SEND_COLUMNS = ("transmissions", "channel_uses")
#: Fields of a ``points`` row the runner writes.
_RUNNER_POINT_FIELDS = ("link", "snr_index", "snr_db", "batch_index", "kind", "images",
                        "seconds", *STAGE_COLUMNS)
_PROBE_SNR_DB = 10.0  # the probe's channel is noiseless; the link is told this SNR


def import_link_class(spec: str, base_dir: Path, *, name: str = "link") -> Any:
    """The callable ``spec`` names: ``MODULE:ATTRIBUTE`` (imported with ``base_dir`` searched
    first) or an entry point of group ``semlink.links``.

    :param name: The link's name, for messages.
    :raises InputError: ``links.NAME.class: ...`` if it cannot be imported or is not callable.
    """
    where = f"links.{name}.class"
    try:
        module, attribute = split_class_spec(spec)
    except ValueError as err:
        raise InputError(f"{where}: {err}") from None
    if module is None:
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=attribute)
        if not found:
            raise InputError(f"{where}: no entry point {attribute!r} in group "
                             f"{ENTRY_POINT_GROUP}")
        entry = next(iter(found))
        try:
            target = entry.load()
        except Exception as err:  # any failure of the package's code: named, in one line
            raise InputError(f"{where}: entry point {attribute!r} ({entry.value}) cannot be "
                             f"loaded ({describe_error(err)})") from None
    else:
        folder = str(Path(base_dir).resolve())
        sys.path.insert(0, folder)  # the scenario's folder first, as for a script run there
        try:
            target = importlib.import_module(module)
        except Exception as err:  # any failure of the module's code: named, in one line
            raise InputError(f"{where}: cannot import {module!r} from {folder} or the Python "
                             f"path ({describe_error(err)})") from None
        finally:
            if folder in sys.path:
                sys.path.remove(folder)
        for part in attribute.split("."):
            if not hasattr(target, part):
                raise InputError(f"{where}: {getattr(target, '__name__', module)!r} has no "
                                 f"attribute {part!r}")
            target = getattr(target, part)
    if not callable(target):
        raise InputError(f"{where}: {spec} is a {type(target).__name__}, not a class")
    return target


def build_user_link(config: Any, context: LinkContext) -> UserLink:
    """Import, build (``Class(context, **options)``), check and probe a ``python`` link
    (the module docstring).

    :param config: The link's :class:`~semlink.scenario.link_python.PythonLinkConfig`.
    :raises InputError: One line naming the link and the class, if any of it fails.
    """
    cls = import_link_class(config.class_, context.base_dir, name=context.name)
    try:
        instance = cls(context, **config.options)
    except (TypeError, ValueError) as err:  # a misspelled option, a value it refuses
        raise InputError(f"links.{context.name}: {config.class_}(context, **options) "
                         f"refused options {config.options} ({describe_error(err)})") from None
    link = UserLink(instance, config, context)
    link.probe()
    return link


class UserLink:
    """A user's link object held to the protocol (the module docstring): the runner drives
    this, it drives the object.

    :param link: The object the user's class built.
    :param config: The link's config (``class`` names it in messages; ``scoring``).
    :param context: What it was built from (name, image size, device, seed).
    :raises InputError: If ``link`` lacks what the protocol needs.
    """

    kind = "image"

    def __init__(self, link: Any, config: Any, context: LinkContext) -> None:
        self.link = link
        self.scoring = config.scoring
        self._image_shape = tuple(context.image_shape)
        self._context = context
        self._where = f"links.{context.name} ({config.class_})"
        self._columns: tuple[str, ...] | None = None
        uses = getattr(link, "channel_uses", None)
        if isinstance(uses, bool) or not isinstance(uses, int) or uses < 1:
            self._fail(f"channel_uses must be an int >= 1 (complex channel uses per image); "
                       f"got {uses!r}" if uses is not None else
                       "has no channel_uses (an int >= 1: complex channel uses per image)")
        self.channel_uses = uses
        if not callable(getattr(link, "transmit", None)):
            self._fail("has no transmit(images, channel, snr_db, generators) method")
        kind = getattr(link, "kind", "image")
        if kind != "image":
            self._fail(f"kind must be 'image' (a python link sends images); got {kind!r}")
        scoring = getattr(link, "scoring", self.scoring)
        if scoring != self.scoring:
            self._fail(f"scores failed decodes as {scoring!r}, the scenario as "
                       f"{self.scoring!r}; set scoring: {scoring} in the link's section")
        self._dimensionality = self._checked_dimensionality()

    def _fail(self, what: str) -> None:
        raise InputError(f"{self._where}: {what}")

    def _checked_dimensionality(self) -> Dimensionality:
        ask = getattr(self.link, "dimensionality", None)
        if ask is None:
            return Dimensionality((2 * self.channel_uses,), self._image_shape, self.channel_uses,
                                  "real values of the complex symbols (no dimensionality())")
        row = ask()
        if not isinstance(row, Dimensionality):
            self._fail(f"dimensionality() must return a semlink.links.protocol.Dimensionality; "
                       f"got {type(row).__name__}")
        if tuple(row.image_shape) != self._image_shape or row.channel_uses != self.channel_uses:
            self._fail(f"dimensionality() describes {tuple(row.image_shape)} px images and "
                       f"{row.channel_uses} channel uses; the link has {self._image_shape} and "
                       f"{self.channel_uses}")
        return row

    # ------------------------------------------------------------------ protocol
    def dimensionality(self) -> Dimensionality:
        """The object's ``dimensionality()``, or ``(2 channel_uses,)`` real values."""
        return self._dimensionality

    def point_fields(self) -> dict[str, Any]:
        """The object's ``point_fields()`` (numbers or strings), or none."""
        ask = getattr(self.link, "point_fields", None)
        fields = {} if ask is None else ask()
        if not isinstance(fields, Mapping) or not all(isinstance(k, str) for k in fields):
            self._fail(f"point_fields() must return a mapping of names to numbers or strings; "
                       f"got {fields!r}")
        taken = [k for k in fields if k in _RUNNER_POINT_FIELDS]
        if taken:
            self._fail(f"point_fields() uses {taken[0]!r}, a field the runner writes")
        if not all(isinstance(v, (int, float, str)) for v in fields.values()):
            self._fail(f"point_fields() must hold numbers or strings; got {dict(fields)!r}")
        return dict(fields)

    def transmit(self, images: torch.Tensor, channel: Any, snr_db: float,
                 generators: ImageGenerators) -> Transmitted:
        """The object's ``transmit``, its output checked (the module docstring)."""
        out = self.link.transmit(images, channel, snr_db, generators)
        self._check(out, images)
        return out

    def probe(self) -> None:
        """Send one random image through a noiseless channel and check what comes back, and
        that at most ``channel_uses`` symbols per image crossed the channel.

        :raises InputError: If the output or the symbols break the protocol.
        """
        device = self._context.device
        seed = derive_seed(self._context.seed, self._context.name, "probe")
        image = torch.rand(1, 3, *self._image_shape, generator=make_generator(seed, device),
                           device=device)
        channel = _ProbeChannel(self._fail)

        def generators(purpose: str) -> list[torch.Generator]:
            return [make_generator(derive_seed(seed, purpose), device)]

        self.transmit(image, channel, _PROBE_SNR_DB, generators)
        if channel.symbols == 0:
            self._fail("sent nothing through the channel")
        if channel.symbols > self.channel_uses:
            self._fail(f"sent {channel.symbols} complex symbols per image through the channel "
                       f"(no noise, so no retransmission); it declares channel_uses "
                       f"{self.channel_uses}")

    # ------------------------------------------------------------------ checks
    def _check(self, out: Any, images: torch.Tensor) -> None:
        batch = images.shape[0]
        if not isinstance(out, Transmitted):
            self._fail(f"transmit must return a semlink.links.protocol.Transmitted; got "
                       f"{type(out).__name__}")
        recon = out.images
        if not isinstance(recon, torch.Tensor) or tuple(recon.shape) != tuple(images.shape) \
                or recon.dtype != torch.float32 or recon.device != images.device:
            got = (f"{recon.dtype} {list(recon.shape)} on {recon.device}"
                   if isinstance(recon, torch.Tensor) else type(recon).__name__)
            self._fail(f"transmit returned images {got}; expected torch.float32 "
                       f"{list(images.shape)} on {images.device} (as sent)")
        if not bool(((recon >= 0) & (recon <= 1)).all()):  # NaN fails too
            self._fail("transmit returned images with values that are not finite or not in "
                       "[0, 1]")
        failed = out.failed
        if not isinstance(failed, torch.Tensor) or failed.dtype != torch.bool \
                or tuple(failed.shape) != (batch,):
            got = (f"{failed.dtype} {list(failed.shape)}" if isinstance(failed, torch.Tensor)
                   else type(failed).__name__)
            self._fail(f"transmit returned failed flags {got}; expected torch.bool [{batch}]")
        self._check_columns(out.columns, batch)
        if out.ber is not None and not isinstance(out.ber, BitCounts):
            self._fail(f"transmit returned ber {type(out.ber).__name__}; expected None or a "
                       "semlink.links.protocol.BitCounts")

    def _check_columns(self, columns: Any, batch: int) -> None:
        if not isinstance(columns, Mapping):
            self._fail(f"transmit returned columns {type(columns).__name__}; expected a "
                       "mapping of names to [batch] tensors")
        for key, value in columns.items():
            if not isinstance(key, str) or key in _RUNNER_COLUMNS or key.startswith("metric_"):
                self._fail(f"transmit returned a column {key!r}, a name the runner writes")
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != (batch,) \
                    or value.is_complex():
                got = (f"{value.dtype} {list(value.shape)}" if isinstance(value, torch.Tensor)
                       else type(value).__name__)
                self._fail(f"transmit returned column {key!r} as {got}; expected a real or "
                           f"integer tensor [{batch}]")
        names = tuple(columns)
        if self._columns is not None and names != self._columns:
            self._fail(f"transmit returned columns {list(names)}, before {list(self._columns)}; "
                       "a link gives the same columns at every call")
        self._columns = names


class _ProbeChannel:
    """A noiseless channel that checks the symbols it is given and counts them per image."""

    def __init__(self, fail) -> None:
        self._fail = fail
        self.symbols = 0

    def __call__(self, x: torch.Tensor, snr_db):
        if not isinstance(x, torch.Tensor) or not x.is_complex() or x.ndim != 2:
            got = (f"{x.dtype} {list(x.shape)}" if isinstance(x, torch.Tensor)
                   else type(x).__name__)
            self._fail(f"sent {got} through the channel; expected complex symbols "
                       "[batch, n]")
        self.symbols += x.shape[1]
        return x, torch.zeros(x.shape, dtype=x.real.dtype, device=x.device)
