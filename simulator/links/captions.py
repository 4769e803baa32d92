"""Captions of the Img2Img-SC link (:mod:`semlink.links.img2img`): a CSV file beside the images,
or BLIP at the transmitter (the authors' ``Salesforce/blip-image-captioning-large``).

A captions file is UTF-8 CSV with the header ``image,caption`` and one row per image, keyed by
the image's file name (``cat.png``, not a path); quote a caption that holds commas::

    image,caption
    kodim01.png,"a red door, a window and a wall"
    kodim02.png,a red motorcycle parked in front of a door

BLIP needs ``transformers`` (``pip install 'semlink[blip]'``) and a local model folder
(``BlipForConditionalGeneration`` + ``BlipProcessor`` files: ``config.json``,
``preprocessor_config.json``, the tokenizer files and the weights); it captions the scenario's
images (already resized) greedily with the model's generation settings. Both sources refuse a
caption longer than the link's caption budget (UTF-8 bytes), naming the image and the fix.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch

from semlink.errors import InputError, describe_error

__all__ = ["CAPTION_HEADER", "CaptionsFile", "BlipCaptioner"]

#: The header row of a captions file.
CAPTION_HEADER = ("image", "caption")


def _check_length(caption: str, max_bytes: int, where: str, image: str, fix: str) -> None:
    size = len(caption.encode("utf-8"))
    if size > max_bytes:
        raise InputError(f"{where}: the caption of {image} is {size} bytes (UTF-8), more than "
                         f"caption_bytes ({max_bytes}); {fix}")


class CaptionsFile:
    """The captions of a CSV file, checked when read.

    :param path: The file.
    :param max_bytes: int >= 1; longest caption in UTF-8 bytes (the link's ``caption_bytes``).
    :param key: What the scenario calls the file (``links.NAME.captions``), for messages.
    :raises InputError: One line naming the file (and line) if it is missing or unreadable,
        lacks the header, has a row without two fields, lists an image twice, or holds a
        caption longer than ``max_bytes``.
    """

    def __init__(self, path: str | Path, *, max_bytes: int, key: str = "captions") -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"{self.path}: captions file not found ({key}: a CSV image,caption "
                             "relative to the scenario's folder).") from None
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{self.path}: cannot read the captions ({describe_error(err)}); "
                             "it must be a UTF-8 CSV file.") from err
        rows = csv.reader(text.splitlines())
        header = next(rows, None)
        if header is None or tuple(h.strip() for h in header) != CAPTION_HEADER:
            raise InputError(f"{self.path}: the first row must be the header `image,caption`; "
                             f"got {','.join(header or [])!r}.")
        self.captions: dict[str, str] = {}
        for line, row in enumerate(rows, start=2):
            if not row:
                continue  # a blank line
            if len(row) != 2:
                raise InputError(f"{self.path}, line {line}: needs 2 fields (image,caption); got "
                                 f"{len(row)} (quote a caption that holds commas).")
            image, caption = row[0].strip(), row[1].strip()
            if image in self.captions:
                raise InputError(f"{self.path}, line {line}: {image} is listed twice.")
            _check_length(caption, max_bytes, f"{self.path}, line {line}", image,
                          "shorten it or raise the link's caption_bytes.")
            self.captions[image] = caption

    def __call__(self, images: torch.Tensor | None, names: Sequence[str] | None) -> list[str]:
        """The captions of the images named ``names`` (file names); ``images`` is unused.

        :raises ValueError: If ``names`` is None (the runner must pass the images' names).
        :raises InputError: If an image has no row, naming the file and the image.
        """
        if names is None:
            raise ValueError("`names` must give the images' file names: the captions file "
                             f"{self.path} is keyed by them.")
        self.check(names)
        return [self.captions[Path(n).name] for n in names]

    def check(self, names: Sequence[str]) -> None:
        """Check that every image named in ``names`` (file names or paths) has a caption, so a
        run can refuse a missing row before its first task.

        :raises InputError: For the first image without a row, naming the file and the image.
        """
        missing = [n for n in names if Path(n).name not in self.captions]
        if missing:
            raise InputError(f"{self.path}: no caption for image {Path(missing[0]).name} (add a "
                             f"row `{Path(missing[0]).name},<caption>`).")


class BlipCaptioner:
    """BLIP captions at the transmitter, from a local model folder (needs ``transformers``).

    :param folder: Folder of ``BlipForConditionalGeneration`` and ``BlipProcessor`` files.
    :param max_bytes: int >= 1; longest caption in UTF-8 bytes.
    :param device: Torch device.
    :param key: What the scenario calls the folder (``links.NAME.captioner``), for messages.
    :raises InputError: If ``transformers`` is missing, or the folder is missing, lacks
        ``config.json`` or weights, or transformers cannot load it (one line each).
    """

    def __init__(self, folder: str | Path, *, max_bytes: int, device: str = "cpu",
                 key: str = "captioner") -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.device = device
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: BLIP model folder not found ({key}: a local copy "
                             "of Salesforce/blip-image-captioning-large).")
        if not (self.folder / "config.json").is_file():
            raise InputError(f"{self.folder / 'config.json'}: missing ({key} must be a BLIP "
                             "model folder saved by transformers).")
        if not any((self.folder / f).is_file() for f in (
                "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")):
            raise InputError(f"{self.folder}: no model.safetensors (or pytorch_model.bin) in "
                             f"the BLIP folder ({key}); download the weights too.")
        try:
            from transformers import BlipForConditionalGeneration, BlipProcessor
        except ImportError as err:
            raise InputError(f"{key}: BLIP captions need transformers (pip install "
                             "'semlink[blip]'), or give `captions:` (a CSV image,caption file)"
                             ) from err
        try:
            self.processor = BlipProcessor.from_pretrained(str(self.folder))
            self.model = BlipForConditionalGeneration.from_pretrained(str(self.folder))
        except Exception as err:  # noqa: BLE001 - a library's multi-line failure: one line
            raise InputError(f"{self.folder}: transformers cannot load BLIP "
                             f"({describe_error(err)}).") from err
        self.model = self.model.to(device).eval()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, names: Sequence[str] | None) -> list[str]:
        """Greedy captions of ``images`` [batch, 3, H, W] in [0, 1]; ``names`` name the images
        in messages only (their indices when None).

        :raises InputError: If a caption is longer than ``max_bytes``.
        """
        pixels = self.processor(images=list(images.float().cpu()), do_rescale=False,
                                return_tensors="pt")["pixel_values"]
        dtype = next(self.model.parameters()).dtype
        out = self.model.generate(pixel_values=pixels.to(self.device, dtype))
        captions = [c.strip() for c in self.processor.batch_decode(out, skip_special_tokens=True)]
        for i, caption in enumerate(captions):
            name = Path(names[i]).name if names is not None else f"#{i} of the batch"
            _check_length(caption, self.max_bytes, str(self.folder), name,
                          "raise the link's caption_bytes.")
        return captions
