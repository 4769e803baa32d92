"""The ``deepjscc`` link: images through a DeepJSCC autoencoder and the scenario's channel.

The encoder's output is the transmitted signal itself (no quantisation, no channel code): each
image's ``channels x H/32 x W/32`` reals leave as pairs, one unit-power complex symbol each,
cross the channel (equalised by it, as the semantic link's analog symbols are) and the decoder
turns the received symbols into the image. Nothing can fail to decode: quality degrades with the
SNR, without the cliff of a digital link.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from semlink.errors import InputError
from semlink.links.protocol import Dimensionality, ImageGenerators, LinkContext, Transmitted
from semlink.models.bundle import BUNDLE_FILE, load_bundle, read_bundle_info
from semlink.models.deepjscc import DEEPJSCC_PRESET, DeepJSCC

__all__ = ["DeepJSCCLink", "shipped_weights", "load_deepjscc"]

_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "weights"


def shipped_weights(preset: str) -> Path:
    """The bundle of a shipped DeepJSCC preset (``data/weights/deepjscc-PRESET/``)."""
    return _DATA_DIR / f"deepjscc-{preset}" / BUNDLE_FILE


def load_deepjscc(path: str | Path, *, device: str | torch.device = "cpu") -> DeepJSCC:
    """A DeepJSCC autoencoder from a bundle written by ``semlink train`` (the architecture is
    read from the bundle's info), in eval mode.

    :param path: ``model.safetensors`` or a folder holding it.
    :raises InputError: Naming the file: missing, not a DeepJSCC bundle, keys or shapes that do
        not fit the recorded architecture, non-finite values.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / BUNDLE_FILE
    info = read_bundle_info(path)
    if info["preset"] != DEEPJSCC_PRESET:
        raise InputError(f"{path}: holds weights of {info['preset']!r}, not a DeepJSCC "
                         "autoencoder (train one with a recipe whose model has deepjscc:)")
    arch = ((info.get("info") or {}).get("architecture") or {}).get("deepjscc")
    if not isinstance(arch, dict):
        raise InputError(f"{path}: its info records no DeepJSCC architecture "
                         "(architecture.deepjscc); was it written by semlink train?")
    try:
        model = DeepJSCC(**arch)
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: architecture.deepjscc {arch} does not build a DeepJSCC "
                         f"({err})") from None
    load_bundle(path, {"deepjscc": model}, preset=DEEPJSCC_PRESET)
    return model.to(device).eval().requires_grad_(False)


class DeepJSCCLink:
    """A trained DeepJSCC autoencoder as a link of the image protocol
    (:class:`semlink.links.protocol.ImageLink`).

    :param model: The autoencoder (its device is the link's).
    :param image_shape: (height, width) of the images, px; multiples of ``2 ** model.stages``.
    :raises InputError: If the image sides do not fit the network's stride.
    """

    kind = "image"
    scoring = "concealed"

    def __init__(self, model: DeepJSCC, image_shape: tuple[int, int]) -> None:
        self.model = model
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        try:
            self.channel_uses = model.channel_uses(*self.image_shape)
        except ValueError as err:
            raise InputError(f"images: {err}") from None

    @classmethod
    def from_config(cls, config: Any, context: LinkContext) -> DeepJSCCLink:
        """Build from a :class:`~semlink.scenario.link_deepjscc.DeepJSCCLinkConfig`: the given
        ``weights`` (relative to the scenario's folder) or the preset's shipped bundle."""
        if config.weights is None:
            path = shipped_weights(config.preset)
            if not path.is_file():
                raise InputError(f"links.{context.name}.preset: the {config.preset!r} DeepJSCC "
                                 f"weights are not installed ({path}); train them with semlink "
                                 f"train scenarios/train-deepjscc-{config.preset}.yaml --set "
                                 "data.source=DIR and give weights:")
        else:
            path = Path(config.weights).expanduser()
            if not path.is_absolute():
                path = context.base_dir / path
        try:
            model = load_deepjscc(path, device=context.device)
        except InputError as err:
            raise InputError(f"links.{context.name}.weights: {err}") from None
        try:
            return cls(model, context.image_shape)
        except InputError as err:
            raise InputError(f"links.{context.name}: {err}") from None

    def dimensionality(self) -> Dimensionality:
        """The encoder's output, ``(channels, H / 2^stages, W / 2^stages)`` reals."""
        return Dimensionality(self.model.latent_shape(*self.image_shape), self.image_shape,
                              self.channel_uses, "analog symbols (learned)")

    @torch.no_grad()
    def transmit(self, images: torch.Tensor, channel: Any, snr_db: float,
                 generators: ImageGenerators) -> Transmitted:
        """Encode, send through ``channel`` at ``snr_db``, decode; nothing fails.

        :input images: [batch, 3, H, W], float32 in [0, 1], on the model's device.
        :output out: images [batch, 3, H, W] in (0, 1); column ``symbol_mse`` [batch], the mean
            squared error of the equalised symbols (unit-power symbols: about 1 / SNR on AWGN).
        """
        x = self.model.encode(images)                                 # [batch, n] complex64
        x_hat, _ = channel(x, snr_db)
        recon = self.model.decode(x_hat, self.image_shape)
        failed = torch.zeros(images.shape[0], dtype=torch.bool, device=images.device)
        return Transmitted(recon, failed,
                           columns={"symbol_mse": (x_hat - x).abs().pow(2).mean(dim=1)})

    def point_fields(self) -> dict[str, Any]:
        """No per-point facts: the link is the same at every SNR."""
        return {}
