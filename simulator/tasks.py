"""Task execution: what one sweep task computes, for BER links and image links.

:class:`TaskRunner` holds what tasks of one run share (the image set, links built once with
their models by :class:`~semlink.links.builder.LinkBuilder`, metric networks) and turns a
:class:`~semlink.plan.Task` into result rows, driving every link through the link protocol
(:mod:`semlink.links.protocol`: ``transmit`` per batch and repetition for image links,
``simulate`` per SNR point for bit links):

- ``ber``: bit and block error counts (BER links; classical and digital semantic links too).
- ``images``: one row per image and transmission with its metrics (failures scored as the
  link's policy says) and link facts (channel uses, code-block errors, ...).
- ``predictability``: with ``repeats >= 2``, the mean and std over all pairs of an image's
  reconstructions, per metric.

Every task's ``points`` fields include its seconds per stage (:mod:`semlink.stage_times`:
``seconds_load``, ``seconds_transmit``, ... ``seconds_write``), timed on the task's device.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from semlink.errors import InputError, first_line
from semlink.links.builder import LinkBuilder
from semlink.links.protocol import per_snr
from semlink.plan import REFERENCE, Task
from semlink.scenario import SET_METRICS, Scenario
from semlink.seeding import derive_seed, make_generator
from semlink.stage_times import StageTimer

if TYPE_CHECKING:
    import numpy as np

    from semlink.metrics.fid import FidStatistics
    from semlink.metrics.kid import KidEstimate

__all__ = ["TaskRunner", "METRIC_FUNCTIONS", "fid_of_group", "kid_of_group", "scenario_images",
           "wants_features"]

#: Scenario metric name -> name used by :mod:`semlink.metrics.failure` for failure scores.
_FAILURE_NAMES = {"psnr": "psnr_db", "ssim": "ssim", "ms_ssim": "ms_ssim", "lpips": "lpips"}
METRIC_FUNCTIONS = ("psnr", "ssim", "ms_ssim", "lpips")


class TaskRunner:
    """Runs tasks of one scenario on ``device``.

    :param scenario: The validated scenario.
    :param base_dir: Folder relative paths of the scenario start from.
    :param device: Torch device string.
    :param recon_dir: Where ``save_reconstructions`` writes PNGs (first transmission only):
        ``original/<image>.png`` and ``<link>/snr<snr_db>/<image>.png``.
    :raises InputError: If the images cannot be listed, a requested metric is unavailable, or
        FID or KID is requested of a single image.
    """

    def __init__(self, scenario: Scenario, *, base_dir: Path, device: str,
                 recon_dir: Path | None = None) -> None:
        self.scenario = scenario
        self.recon_dir = recon_dir if scenario.save_reconstructions else None
        self.base_dir = base_dir
        self.device = device
        self._links = LinkBuilder(scenario, base_dir=base_dir, device=device)
        self._images: torch.Tensor | None = None
        self._files = scenario_images(scenario, base_dir)
        self.num_images = len(self._files)
        for metric in SET_METRICS:
            if metric in scenario.metrics and self.num_images == 1:  # set statistics need two
                raise InputError(f"metrics: {metric} needs at least 2 images; images.source "
                                 f"{scenario.images.source!r} gives 1")
        self._lpips = self._build_lpips() if "lpips" in scenario.metrics else None

    # ------------------------------------------------------------------ set-up
    def _build_lpips(self):
        from semlink.metrics.lpips import LPIPS, lpips_unavailable_reason

        reason = lpips_unavailable_reason("alex")
        if reason is not None:
            raise InputError(f"metrics: lpips is unavailable: {reason}")
        return LPIPS(net="alex").to(self.device).eval()

    def images(self, indices: tuple[int, ...]) -> torch.Tensor:
        """[len(indices), 3, H, W] float32 in [0, 1] on the device (all loaded on first use)."""
        if self._images is None:
            from semlink.images import load_image

            cfg = self.scenario.images
            self._images = torch.stack([load_image(p, cfg.shape, center_crop=cfg.center_crop)
                                        for p in self._files])
        return self._images[list(indices)].to(self.device)

    def link(self, name: str, snr_db: float | None = None):
        """The built link ``name`` (semantic links load their models once); for a link built
        per SNR point (adaptive, the ideal code), the link of ``snr_db``."""
        return self._links.link(name, snr_db)

    def prepare(self, links: Iterable[str]) -> None:
        """Build the channel, and every link among ``links`` that is built once (its models,
        its code blocks; a user's class, checked), now: their tasks would build them anyway,
        so that missing or mismatched weights, a bandwidth too small for a frame, a class that
        breaks the link protocol, or settings no 5G LDPC code or channel model accepts are
        reported before any task runs, not after hours of other links' tasks. Links built per
        SNR point (adaptive modulation and coding, the ideal code) are built in their tasks.
        A batch whose estimated peak memory exceeds the limit (:mod:`semlink.memory`) is
        refused twice: before anything is built (links sized from their configs), and once
        the links are built (their weights counted).

        :raises InputError: As the links' ``build`` do; a ``ValueError`` of a component
            (a setting out of its range) becomes an InputError naming the link or the channel;
            a batch too large for the memory (:func:`semlink.memory.check_memory`).
        """
        from semlink.channel import build_channel

        links = list(links)
        self.check_memory(links, built=False)
        try:
            build_channel(self.scenario.channel, generator=None, device=self.device)
        except ValueError as err:
            raise InputError(f"channel: {first_line(err)}") from None
        for name in links:
            config = self.scenario.links.get(name)  # None: the FID reference's features
            try:
                if config is not None and not per_snr(config):
                    link = self.link(name)
                    if hasattr(link, "check_names"):
                        link.check_names([path.name for path in self._files])
            except InputError:
                raise  # already names what it is about
            except ValueError as err:
                raise InputError(f"links.{name}: {first_line(err)}") from None
        self.check_memory(links, built=True)

    def check_memory(self, links: Iterable[str], *, built: bool = True) -> None:
        """Refuse a batch of ``links`` that would not fit in memory
        (:func:`semlink.memory.check_memory`). ``built`` False sizes only the links whose
        configs give their channel uses without models, and builds nothing; True builds the
        links built once and counts their weights.

        :raises InputError: If the estimate exceeds the limit.
        """
        from semlink.memory import (check_memory, config_channel_uses, estimate_task_memory,
                                    module_bytes)

        uses, objects = config_channel_uses(self._links, links), []
        for name in links if built else ():
            config = self.scenario.links.get(name)
            if config is not None and config.kind == "image" and not per_snr(config):
                objects.append(self.link(name))
                uses[name] = self.channel_uses(name)
        estimate = estimate_task_memory(self.scenario, uses, links=links,
                                        weights_bytes=module_bytes(objects) if built else 0)
        check_memory(estimate, self.scenario, self.device)

    def channel_uses(self, name: str) -> int:
        """Complex channel uses per image of link ``name`` (bandwidth matching resolved)."""
        return self._links.channel_uses(name)

    # ------------------------------------------------------------------ tasks
    def run(self, task: Task) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """Run ``task``: its ``points`` row fields (its seconds per stage,
        :data:`semlink.stage_times.STAGE_COLUMNS`, among them) and its rows of other tables."""
        timer = StageTimer(device=self.device)
        if task.link == REFERENCE:
            point, tables = self._run_reference(task, timer)
        else:
            cfg = self.scenario.links[task.link]
            point, tables = (self._run_ber(task, timer) if cfg.kind == "bits" else
                             self._run_images(task, cfg, timer))
        timer.stop()
        return {**point, **timer.columns()}, tables

    def _run_reference(self, task, timer: StageTimer):
        """Inception features of the original images (the FID and KID reference set)."""
        timer.switch("load")
        images = self.images(task.image_indices)
        timer.switch("metrics")
        feats = self._features(images)
        rows = [{"link": REFERENCE, "snr_db": float("nan"), "image_index": i, "repeat": 0,
                 "failed": False, "feature": f} for i, f in zip(task.image_indices, feats)]
        return {"kind": "reference", "images": len(rows)}, {"features": rows}

    def _features(self, images: torch.Tensor):
        from semlink.metrics.fid import inception_features

        return list(inception_features(images).cpu().numpy())

    def _seed(self, task, *parts: object) -> int:
        return derive_seed(self.scenario.seed, task.link, task.snr_index, *parts)

    def _run_ber(self, task, timer: StageTimer):
        counts = self.link(task.link).simulate(
            task.snr_db, snr_kind=self.scenario.snr.kind, monte_carlo=self.scenario.monte_carlo,
            seed=self._seed(task), timer=timer)
        return {"kind": "ber"}, {"ber": [{"link": task.link, "snr_db": task.snr_db, **counts}]}

    def _run_images(self, task, cfg, timer: StageTimer):
        from semlink.channel import build_channel

        timer.switch("transmit")  # a link built per SNR point is built in its first task there
        link = self.link(task.link, task.snr_db)
        timer.switch("load")
        images = self.images(task.image_indices)
        recons, rows, features, counts = [], [], [], []
        names = ({"names": self._names(task)} if getattr(link, "wants_names", False) else {})
        for repeat in range(self.scenario.repeats):
            timer.switch("transmit")
            gen = make_generator(self._seed(task, task.batch_index, repeat, "channel"), self.device)
            channel = build_channel(self.scenario.channel, generator=gen, device=self.device)
            out = link.transmit(images, timer.timed(channel), task.snr_db,
                                self._generators(task, repeat), **names)
            timer.switch("metrics")
            recon, failed = out.images, out.failed
            if out.ber is not None:
                counts.append(out.ber)
            scored = self._metrics(images, recon, failed, link.scoring)
            if wants_features(self.scenario):
                features += [{"link": task.link, "snr_db": task.snr_db, "image_index": i,
                              "repeat": repeat, "failed": bool(f), "feature": v}
                             for i, f, v in zip(task.image_indices, failed.tolist(),
                                                self._features(recon))]
            if repeat == 0 and self.recon_dir is not None:
                timer.switch("write")
                self._save_pngs(task, images, recon)
                timer.switch("metrics")
            recons.append(recon)
            rows += self._image_rows(task, repeat, link.channel_uses, failed, scored,
                                     out.columns)
        tables = {"images": rows}
        if features:
            tables["features"] = features
        if counts:  # coded links: payload bit and code-block errors of every transmission
            tables["ber"] = [self._ber_row(task, counts)]
        if self.scenario.repeats >= 2:
            tables["predictability"] = self._predictability(task, torch.stack(recons, dim=1))
        point = {"kind": cfg.type, "images": len(images) * self.scenario.repeats,
                 **link.point_fields()}
        return point, tables

    def _generators(self, task, repeat: int):
        """``generators(purpose)``: one generator per image of the task for ``purpose``, seeded
        from (scenario seed, link, SNR point, image, repetition, purpose)."""
        def generators(purpose: str) -> list[torch.Generator]:
            return [make_generator(self._seed(task, "image", i, repeat, purpose), self.device)
                    for i in task.image_indices]
        return generators

    def _ber_row(self, task, counts: list) -> dict[str, Any]:
        """The ``ber`` row of a task's transmissions (their counts read back once). Its units
        are the image transmissions, with their errors squared, summed, where every batch's
        counts have them (None otherwise: the summary then takes the bits as independent)."""
        fields = ["bit_errors", "block_errors"]
        moments = all(b.bit_errors_squared is not None and b.block_errors_squared is not None
                      for b in counts)
        if moments:
            fields += ["bit_errors_squared", "block_errors_squared"]
        errors = torch.stack([torch.as_tensor(getattr(b, f), device=self.device).reshape(())
                              for b in counts for f in fields])
        sums = dict(zip(fields, errors.reshape(-1, len(fields)).sum(0).tolist()))
        first = counts[0]
        return {"link": task.link, "snr_db": task.snr_db, "modulation": first.modulation,
                "code_rate": first.code_rate, "bits": sum(b.bits for b in counts),
                "bit_errors": sums["bit_errors"], "blocks": sum(b.blocks for b in counts),
                "block_errors": sums["block_errors"], "esno_db": task.snr_db,
                "ebno_db": float("nan"),
                "units": len(counts) * len(task.image_indices) if moments else None,
                "bit_errors_squared": sums.get("bit_errors_squared"),
                "block_errors_squared": sums.get("block_errors_squared")}

    def _metrics(self, images, recon, failed, scoring: str) -> dict[str, torch.Tensor]:
        from semlink.metrics.failure import score_failures
        from semlink.metrics.quality import ms_ssim, psnr_db, ssim

        funcs = {"psnr": psnr_db, "ssim": _single(ssim), "ms_ssim": _single(ms_ssim),
                 "lpips": self._lpips_pair}
        values = {_FAILURE_NAMES[m]: funcs[m](images, recon).float()
                  for m in self.scenario.metrics if m in funcs}
        scored = score_failures(values, failed, scoring).metrics
        return {m: scored[_FAILURE_NAMES[m]] for m in self.scenario.metrics if m in funcs}

    @torch.no_grad()
    def _lpips_pair(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._lpips(a, b).reshape(-1)

    def _save_pngs(self, task, images: torch.Tensor, recon: torch.Tensor) -> None:
        from semlink.images import save_image

        for j, index in enumerate(task.image_indices):
            stem = self._files[index].stem
            original = self.recon_dir / "original" / f"{stem}.png"
            if not original.exists():
                save_image(images[j], original)
            save_image(recon[j], self.recon_dir / task.link / f"snr{task.snr_db:g}" / f"{stem}.png")

    def _names(self, task) -> list[str]:
        """File names of the task's images, in the batch's order."""
        return [self._files[i].name for i in task.image_indices]

    def _image_rows(self, task, repeat, channel_uses, failed, scored, extra):
        names = self._names(task)
        columns = {f"metric_{m}": v.tolist() for m, v in scored.items()}
        columns.update({k: v.tolist() for k, v in extra.items()})
        failed = failed.tolist()
        rows = []
        for j, index in enumerate(task.image_indices):
            rows.append({"link": task.link, "snr_db": task.snr_db, "image_index": index,
                         "image": names[j], "repeat": repeat, "channel_uses": channel_uses,
                         "failed": bool(failed[j]),
                         **{k: v[j] for k, v in columns.items()}})
        return rows

    def _predictability(self, task, recons: torch.Tensor) -> list[dict[str, Any]]:
        """Pairwise spread over the repeats of each image; ``recons`` [images, R, 3, H, W]."""
        from semlink.metrics.predictability import pairwise_spread
        from semlink.metrics.quality import psnr_db, ssim

        funcs = {"lpips": self._lpips_pair, "ssim": _single(ssim), "psnr": psnr_db}
        rows = []
        for metric in (m for m in ("lpips", "ssim", "psnr") if m in self.scenario.metrics):
            spread = pairwise_spread(recons, funcs[metric])
            means, stds = spread.mean.tolist(), spread.std.tolist()  # one read per batch
            for j, index in enumerate(task.image_indices):
                rows.append({"link": task.link, "snr_db": task.snr_db, "image_index": index,
                             "metric": metric, "mean": means[j], "std": stds[j],
                             "repeats": recons.shape[1]})
        return rows


def _single(metric):
    """``metric`` in float32: results are stored as float32 anyway, float32 SSIM/MS-SSIM stay
    within 1e-4 of the exact value (tests/simulator/metrics/test_quality.py), and float64
    convolutions take a slow CPU path (~8x slower: 2.6 s per 256 px image on a loaded core)."""
    return lambda x, x_hat: metric(x, x_hat, precision="single")


def scenario_images(scenario: Scenario, base_dir: Path) -> list[Path]:
    """The image files a scenario transmits, in order (none for BER-only scenarios).

    :raises InputError: If the source names no readable folder, pattern or image.
    """
    from semlink.images import list_images

    cfg = scenario.images
    if cfg is None:
        return []
    return list_images(cfg.source, base_dir=base_dir, count=cfg.count)


def wants_features(scenario: Scenario) -> bool:
    """Whether the run keeps every image's Inception features (for FID or KID)."""
    return any(metric in scenario.metrics for metric in SET_METRICS)


def kid_of_group(features: "np.ndarray", image_index: "np.ndarray",
                 reference: "np.ndarray", reference_index: "np.ndarray") -> "KidEstimate":
    """KID of one (link, SNR) group from stored Inception features, against the originals,
    with its jackknife interval over images.

    Every reconstruction counts as the receiver shows it (a lost image as its link's failure
    policy displays it: mid grey under ``paper``): KID has no published failure constant.
    Pairs of one image (an original and its reconstructions, or two repeats) are left out, so
    the estimate stays unbiased (:func:`semlink.metrics.kid.kid_jackknife`).

    :param features: [n, 2048] features of the reconstructions.
    :param image_index: [n] int; the image each reconstruction is of.
    :param reference: [m, 2048] features of the original images.
    :param reference_index: [m] int; their image indices.
    :output estimate: :class:`~semlink.metrics.kid.KidEstimate`; all NaN when fewer than two
        images are left to compare.
    """
    import math

    import numpy as np

    from semlink.metrics.kid import KidEstimate, kid_jackknife

    if len(np.unique(image_index)) < 2 or len(np.unique(reference_index)) < 2:
        images = len(np.unique(np.concatenate([image_index, reference_index])))
        return KidEstimate(math.nan, math.nan, math.nan, math.nan, images)
    return kid_jackknife(
        torch.as_tensor(np.asarray(reference)), torch.as_tensor(np.asarray(features)),
        groups1=torch.as_tensor(np.asarray(reference_index, dtype=np.int64)),
        groups2=torch.as_tensor(np.asarray(image_index, dtype=np.int64)))


def fid_of_group(features: "np.ndarray", failed: "np.ndarray",
                 reference: "np.ndarray | FidStatistics", *, policy: str) -> float:
    """FID of one (link, SNR) group from stored Inception features.

    :param features: [n, 2048] features of the reconstructions.
    :param failed: [n] bool; failed decodes.
    :param reference: [m, 2048] features of the original images, or reference statistics.
    :param policy: "paper" (FID of the decoded images mixed with 500 for the failed share, see
        :func:`semlink.metrics.failure.fid_with_failures`) or "concealed" (all images count).
    """
    import numpy as np

    from semlink.metrics.failure import fid_with_failures
    from semlink.metrics.fid import FidStatistics, frechet_distance

    keep = features if policy == "concealed" else features[~failed]
    decoded = float("nan")
    if len(keep) >= 2:
        ours, theirs = (x if isinstance(x, FidStatistics) else
                        FidStatistics.from_features(torch.as_tensor(np.asarray(x)))
                        for x in (keep, reference))
        # The factor of our covariance makes this an n x n problem: milliseconds, not seconds.
        decoded = float(frechet_distance(ours.mu, ours.sigma, theirs.mu, theirs.sigma,
                                         factor1=ours.factor))
    return fid_with_failures(decoded, int(failed.sum()) if policy == "paper" else 0,
                             len(features), policy)
