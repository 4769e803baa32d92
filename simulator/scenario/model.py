"""The scenario model: a whole scenario file (images, SNR points, Monte-Carlo stop rules, the
channel and the links), its hash (results are keyed by it), and loading a scenario file."""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from semlink.devices import is_device_name
from semlink.scenario.channels import AWGNConfig, ChannelConfig
from semlink.links.protocol import per_snr
from semlink.scenario.limits import (LINK_NAME, MAX_BATCH_BITS, MAX_BATCH_SIZE, MAX_IMAGE_COUNT,
                                     MAX_LINKS, MAX_MONTE_CARLO_BITS, MAX_MONTE_CARLO_ERRORS,
                                     MAX_REPEATS, MAX_SNR_POINTS, METRICS, SET_METRICS,
                                     SNR_RANGE_DB, FiniteSnrDb, ImageSide, Seed, SnrDb, _Frozen)
from semlink.scenario.links import LinkConfig
from semlink.scenario.loading import (Override, ScenarioError, read_yaml_file,
                                      resolve_yaml, validate_yaml)

__all__ = [
    "ImagesConfig",
    "SNRConfig",
    "MonteCarloConfig",
    "Scenario",
    "scenario_hash",
    "load_scenario",
    "parse_scenario",
]


class ImagesConfig(_Frozen):
    """Which images a run transmits.

    ``source`` is ``sample`` (the 8 photos shipped with semlink), a folder, or a glob pattern;
    relative paths are relative to the scenario file. Images are centre-cropped to the output's
    aspect ratio (or resized whole when ``center_crop`` is false) and resized to ``size`` x
    ``size`` pixels, or to ``width`` x ``height`` when those are given (e.g. Kodak's 768 x 512).
    """

    source: str = "sample"
    size: ImageSide = Field(256, description="Side of the square image, pixels.")
    # None rather than a default value: see scenario_hash.
    width: ImageSide | None = Field(None, description="Width of a non-square image, pixels "
                                                      "(with height; replaces size).")
    height: ImageSide | None = Field(None, description="Height of a non-square image, pixels "
                                                       "(with width; replaces size).")
    count: int | None = Field(None, ge=1, le=MAX_IMAGE_COUNT,
                              description="Use at most this many images (sorted by name).")
    center_crop: bool = True

    @model_validator(mode="after")
    def _one_shape(self) -> "ImagesConfig":
        if (self.width is None) != (self.height is None):
            given, missing = ("width", "height") if self.height is None else ("height", "width")
            raise ValueError(f"{given} needs {missing} (or give size alone for a square image)")
        if self.width is not None and "size" in self.model_fields_set:
            raise ValueError("give either size (a square image) or width and height, not both")
        return self

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the transmitted images, pixels."""
        if self.width is None:
            return self.size, self.size
        return self.height, self.width

    @property
    def side_field(self) -> str:
        """What sets the images' smallest side, as error messages name it."""
        return "images.size" if self.width is None else "each of images.width and height"

    def describe(self) -> str:
        """The image size as messages print it: ``256`` (square) or ``768x512`` (width x
        height)."""
        height, width = self.shape
        return f"{self.size}" if self.width is None else f"{width}x{height}"


class SNRConfig(_Frozen):
    """SNR points, either listed or as an inclusive range; ``kind`` says what the dB values mean."""

    kind: Literal["esno", "ebno"] = "esno"
    points_db: list[SnrDb] | None = Field(None, max_length=MAX_SNR_POINTS)
    start_db: FiniteSnrDb | None = None
    stop_db: FiniteSnrDb | None = None
    step_db: float | None = Field(None, gt=0, le=SNR_RANGE_DB[1] - SNR_RANGE_DB[0])

    @model_validator(mode="after")
    def _one_form(self) -> "SNRConfig":
        ranged = (self.start_db, self.stop_db, self.step_db)
        if self.points_db is not None and any(v is not None for v in ranged):
            raise ValueError("give either points_db or start_db/stop_db/step_db, not both")
        if self.points_db is None:
            if any(v is None for v in ranged):
                raise ValueError("give points_db, or all of start_db, stop_db and step_db")
            if self.stop_db < self.start_db:
                raise ValueError(f"stop_db ({self.stop_db}) must be >= start_db ({self.start_db})")
            count = (self.stop_db - self.start_db) / self.step_db + 1
            if count > MAX_SNR_POINTS:
                raise ValueError(f"start_db..stop_db in steps of step_db gives {count:.0f} SNR "
                                 f"points; at most {MAX_SNR_POINTS}")
        elif not self.points_db:
            raise ValueError("points_db must not be empty")
        return self

    def values_db(self) -> list[float]:
        """The SNR points in dB, in the order given (a range is inclusive of ``stop_db``)."""
        if self.points_db is not None:
            return [float(v) for v in self.points_db]
        count = int(math.floor((self.stop_db - self.start_db) / self.step_db + 1e-9)) + 1
        return [round(self.start_db + i * self.step_db, 10) for i in range(count)]


class MonteCarloConfig(_Frozen):
    """Stop rules for BER/BLER points: run until enough errors, never below ``min_bits``,
    never above ``max_bits``."""

    target_bit_errors: int = Field(1000, ge=1, le=MAX_MONTE_CARLO_ERRORS)
    target_block_errors: int = Field(100, ge=1, le=MAX_MONTE_CARLO_ERRORS)
    min_bits: int = Field(100_000, ge=1, le=MAX_MONTE_CARLO_BITS)
    max_bits: int = Field(10_000_000, ge=1, le=MAX_MONTE_CARLO_BITS)
    batch_bits: int = Field(200_000, ge=1000, le=MAX_BATCH_BITS,
                            description="Bits simulated per batch.")

    @model_validator(mode="after")
    def _ordered(self) -> "MonteCarloConfig":
        if self.max_bits < self.min_bits:
            raise ValueError(f"max_bits ({self.max_bits}) must be >= min_bits ({self.min_bits})")
        return self


class Scenario(_Frozen):
    """A whole scenario file."""

    name: str = "scenario"
    description: str = ""
    seed: Seed = 0
    device: str = "auto"
    batch_size: int = Field(4, ge=1, le=MAX_BATCH_SIZE)
    repeats: int = Field(1, ge=1, le=MAX_REPEATS,
                         description="Transmissions per image (predictability).")
    images: ImagesConfig | None = None
    channel: ChannelConfig = AWGNConfig(type="awgn")
    snr: SNRConfig
    links: dict[str, LinkConfig] = Field(min_length=1, max_length=MAX_LINKS)
    metrics: list[Literal["psnr", "ssim", "ms_ssim", "lpips", "fid", "kid"]] = Field(
        default_factory=lambda: ["psnr", "ssim"])
    monte_carlo: MonteCarloConfig = MonteCarloConfig()
    output: str = Field("results/scenario.h5", min_length=1)
    save_reconstructions: bool = False
    fid_reference: str | None = Field(
        None, description="pytorch-fid statistics (.npz) FID is measured against instead of "
                          "the transmitted originals; relative to the scenario file.")

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        if is_device_name(device):
            return device
        raise ValueError(f"must be auto, cpu, cuda or cuda:N; got {device!r}")

    @field_validator("links")
    @classmethod
    def _link_names(cls, links: dict[str, Any]) -> dict[str, Any]:
        # Names become folder names of reconstructions and labels in results files.
        for name in links:
            if not LINK_NAME.fullmatch(name):
                raise ValueError(f"link name {name!r}: use letters, digits and _ . + - (not "
                                 "first), as it names folders and rows of the results")
        return links

    @model_validator(mode="after")
    def _links_consistent(self) -> "Scenario":
        for name, link in self.links.items():
            match = getattr(getattr(link, "bandwidth", None), "match", None)
            if match is not None:
                self._check_match(name, match)
        if self.fid_reference is not None and "fid" not in self.metrics:
            raise ValueError("fid_reference: set, but fid is not among the metrics")
        needs_images = any(link.kind == "image" for link in self.links.values())
        if needs_images and self.images is None:
            raise ValueError("images: required when an image link (not a BER link) is present")
        if needs_images and not self.metrics:
            raise ValueError("metrics: empty; image links need at least one "
                             f"of {', '.join(METRICS)}")
        for metric in SET_METRICS:
            if needs_images and metric in self.metrics and self.images.count == 1:
                raise ValueError(f"metrics: {metric} needs at least 2 images; images.count is 1")
            if not needs_images and metric in self.metrics:
                raise ValueError(f"metrics: {metric} needs an image link; this scenario has BER "
                                 "links only")
        for name, link in self.links.items():
            check = getattr(link, "check_scenario", None)  # optional (semlink.links.protocol)
            if check is not None:
                check(self, name)
        if needs_images and "ms_ssim" in self.metrics:
            from semlink.metrics.quality import MS_SSIM_BETAS, ms_ssim_max_scales

            if ms_ssim_max_scales(*self.images.shape) < len(MS_SSIM_BETAS):
                raise ValueError(f"metrics: ms_ssim (5 scales, as published) needs "
                                 f"{self.images.side_field} >= 192; got {self.images.describe()}")
        if needs_images and self.snr.kind == "ebno":
            raise ValueError("snr.kind: ebno (per information bit) applies to BER links only; "
                             "image links are compared at the same Es/N0 (kind: esno)")
        return self

    def _check_match(self, name: str, match: str) -> None:
        """``bandwidth.match`` names another image link of fixed channel uses, and following
        the matches from ``name`` comes to an end."""
        where = f"links.{name}.bandwidth.match"
        if match not in self.links:
            raise ValueError(f"{where}: no link named {match!r}; links are "
                             f"{', '.join(self.links)}")
        target = self.links[match]
        if target.kind != "image":
            raise ValueError(f"{where}: {match!r} must be an image link (not a BER link)")
        if per_snr(target):
            raise ValueError(f"{where}: {match!r} sends a frame chosen per SNR point (adaptive "
                             "or capacity); match a link of fixed channel uses")
        chain = [name]
        while match is not None:
            if match in chain:
                raise ValueError(f"{where}: the matches {' -> '.join([*chain, match])} go round "
                                 "in a circle; give one of them channel_uses or ratio")
            chain.append(match)
            match = getattr(getattr(self.links[match], "bandwidth", None), "match", None)

    def warnings(self) -> list[str]:
        """Lines on what is valid but likely not meant (a preset run at an image size it was
        not trained on), ``yaml.path: message`` each; the links' optional
        ``scenario_warnings(scenario, name)`` (semlink.links.protocol) say them."""
        lines = []
        for name, link in self.links.items():
            warn = getattr(link, "scenario_warnings", None)
            if warn is not None:
                lines += warn(self, name)
        return lines

    def trained_image_sizes(self) -> dict[str, int]:
        """``{link: side}``, px, of the links whose models were trained at one image size (a
        semantic link's preset), as results files record them."""
        return {name: link.trained_image_size() for name, link in self.links.items()
                if getattr(link, "trained_image_size", None) is not None}

    def referenced_paths(self) -> dict[str, str]:
        """The files and folders the scenario names, by field (``images.source`` unless
        ``sample``, the links' (a semantic link's ``weights``), ``fid_reference``); relative
        ones start from the scenario file's folder."""
        paths: dict[str, str] = {}
        if self.images is not None and self.images.source != "sample":
            paths["images.source"] = self.images.source
        for name, link in self.links.items():
            named = getattr(link, "referenced_paths", None)  # optional (semlink.links.protocol)
            if named is not None:
                paths.update({f"links.{name}.{field}": value
                              for field, value in named().items()})
        if self.fid_reference is not None:
            paths["fid_reference"] = self.fid_reference
        return paths


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 (hex) of the resolved scenario and semlink's version: results are keyed by it.

    The ``device`` field is left out: where a run executes is checked on resume by the device
    type it resolved to (see :func:`semlink.sweep.open_store`), so ``auto`` and ``cuda``, or a
    ``--device`` given on the command line, resume the same results. So are fields that are
    unset (null): an optional field added to the schema later leaves the hashes of existing
    results files, and their resumes, as they were.
    """
    from semlink import __version__

    content = scenario.model_dump(mode="json", exclude={"device"}, exclude_none=True)
    payload = json.dumps({"scenario": content, "semlink": __version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def load_scenario(path: str | Path, *,
                  overrides: Mapping[str, Any] | Sequence[Override] | None = None,
                  overrides_dir: str | Path | None = None,
                  allow_missing: bool = False) -> tuple[Scenario, str]:
    """Read and validate a scenario file (a ``python`` link's class is looked for beside it
    first: :func:`parse_scenario`'s ``base_dir``).

    :param path: YAML file.
    :param overrides: Values to change, by dotted path (``--set KEY=VALUE``; a mapping such as
        ``{"snr.points_db": [5]}``): :func:`semlink.scenario.validate_yaml`.
    :param overrides_dir: The folder relative paths in ``overrides`` start from (the current
        directory for the command line); None: the file's folder, as its own.
    :param allow_missing: Accept ``???`` (a value to supply) where a string goes.
    :output: ``(scenario, text)``: the validated scenario and the text stored with results (the
        file's; with ``overrides``, the effective scenario: :func:`~semlink.scenario.resolve_yaml`).
    :raises ScenarioError: With one line per problem, ``FILE:LINE: yaml.path: message``.
    """
    path = Path(path)
    try:
        text = read_yaml_file(path, what="scenario")
    except FileNotFoundError:
        raise ScenarioError([f"{path}: scenario file not found"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError([f"{path}: cannot read scenario file ({err})"]) from None
    if not overrides and not allow_missing:
        return parse_scenario(text, source=str(path), base_dir=path.parent), text
    return resolve_yaml(text, Scenario, source=str(path), context={"base_dir": path.parent},
                        overrides=overrides, overrides_dir=overrides_dir,
                        allow_missing=allow_missing)


def parse_scenario(text: str, *, source: str = "<scenario>",
                   base_dir: str | Path | None = None) -> Scenario:
    """Validate scenario YAML ``text``; ``source`` names it in error messages.

    :param base_dir: The folder the scenario's relative paths start from; given, a ``python``
        link's class is looked for there (and on the Python path) while loading
        (:func:`semlink.scenario.link_python.locate_link_class`); None: its syntax only (a
        results file's stored scenario, read where its module may be absent).
    """
    context = None if base_dir is None else {"base_dir": Path(base_dir)}
    return validate_yaml(text, Scenario, source=source, context=context)

