"""Task execution: what one sweep task computes, for BER links and image links.

:class:`TaskRunner` holds what tasks of one run share (the image set, links built once with
their models, metric networks) and turns a :class:`~semlink.plan.Task` into result rows:

- ``ber``: bit and block error counts (BER links; classical and digital semantic links too).
- ``images``: one row per image and transmission with its metrics (failures scored as the
  link's policy says) and link facts (channel uses, code-block errors, ...).
- ``predictability``: with ``repeats >= 2``, the mean and std over all pairs of an image's
  reconstructions, per metric.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from semlink.errors import InputError, first_line
from semlink.plan import REFERENCE, Task
from semlink.scenario import (SET_METRICS, BERLinkConfig, ClassicalLinkConfig, Scenario,
                                SemanticLinkConfig)
from semlink.seeding import derive_seed, make_generator

if TYPE_CHECKING:
    import numpy as np

    from semlink.metrics.fid import FidStatistics
    from semlink.metrics.kid import KidEstimate

__all__ = ["TaskRunner", "METRIC_FUNCTIONS", "fid_of_group", "kid_of_group", "scenario_images",
           "scoring_policy", "wants_features"]

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
        self._links: dict[str, Any] = {}
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
        """The built link ``name`` (semantic links load their models once); for an adaptive
        classical link, the link of the MCS chosen at ``snr_db``."""
        cfg = self.scenario.links[name]
        if isinstance(cfg, ClassicalLinkConfig) and _per_snr(cfg):
            return self._per_snr_link(name, cfg, snr_db)
        if name not in self._links:
            cfg = self.scenario.links[name]
            if isinstance(cfg, SemanticLinkConfig):
                from semlink.links.semantic import SemanticLink

                weights = cfg.weights
                if weights is not None and not Path(weights).expanduser().is_absolute():
                    weights = str(self.base_dir / weights)
                self._links[name] = SemanticLink(
                    preset=cfg.preset, image_size=self.scenario.images.shape,
                    transmission=cfg.transmission,
                    steps=cfg.steps, guidance=cfg.guidance, resize_factor=cfg.resize_factor,
                    weights=weights, device=self.device)
            else:
                self._links[name] = self._classical(name, cfg, cfg.modulation, cfg.code_rate)
        return self._links[name]

    def _classical(self, name: str, cfg: ClassicalLinkConfig, modulation: int, code_rate: float):
        from semlink.links.classical import ClassicalLink
        from semlink.links.decoder import decoder_settings
        from semlink.links.harq import harq_settings

        channel_uses = self.channel_uses(name)
        try:
            return ClassicalLink(channel_uses=channel_uses, image_size=self.scenario.images.shape,
                                 modulation=modulation, code_rate=code_rate,
                                 codeword_length=cfg.codeword_length,
                                 failure_policy=cfg.failure_policy,
                                 jpeg2000_header=cfg.jpeg2000_header,
                                 **harq_settings(cfg.harq), **decoder_settings(cfg.decoder),
                                 device=self.device)
        except InputError as err:  # "bandwidth: ..." -> "links.NAME.bandwidth: ..."
            raise InputError(f"links.{name}.{err}") from None

    def _per_snr_link(self, name: str, cfg: ClassicalLinkConfig, snr_db: float | None):
        """The link of ``snr_db`` for a link whose frame depends on the SNR: adaptive
        (:meth:`_adaptive_link`) or over the ideal code (:meth:`_capacity_link`)."""
        if snr_db is None:  # channel uses do not depend on the SNR
            return _ChannelUses(self.channel_uses(name))
        key = (name, snr_db)
        if key not in self._links:
            build = self._capacity_link if cfg.channel_code == "capacity" else \
                self._adaptive_link
            self._links[key] = build(name, cfg, snr_db)
        return self._links[key]

    def _capacity_link(self, name: str, cfg: ClassicalLinkConfig, snr_db: float):
        """JPEG2000 over an ideal code: the frame of the AWGN capacity at ``snr_db``, or with
        ``adaptive`` of the estimated outage rate (:func:`semlink.links.capacity.
        estimate_outage_rate`, one seed for all SNRs as for AMC)."""
        from semlink.links.capacity import (CapacityLink, capacity_payload_bytes,
                                              estimate_outage_rate)

        channel_uses = self.channel_uses(name)
        rate = None
        if cfg.adaptive:
            rate = estimate_outage_rate(channel_uses, snr_db, outage_target=cfg.bler_target,
                                        channel_config=self.scenario.channel,
                                        seed=derive_seed(self.scenario.seed, name, "outage"),
                                        device=self.device)
        link = CapacityLink(
            channel_uses=channel_uses, image_size=self.scenario.images.shape,
            payload_bytes=rate.payload_bytes if rate else capacity_payload_bytes(channel_uses,
                                                                                 snr_db),
            failure_policy=cfg.failure_policy, jpeg2000_header=cfg.jpeg2000_header,
            device=self.device)
        link.outage_rate = rate
        return link

    def _adaptive_link(self, name: str, cfg: ClassicalLinkConfig, snr_db: float):
        """AMC: the MCS with the largest frame whose estimated BLER at ``snr_db`` meets the
        target (:func:`semlink.links.amc.select_mcs`), seeded per link and SNR."""
        from semlink.links.amc import select_mcs
        from semlink.links.decoder import decoder_settings

        choice = select_mcs(self.channel_uses(name), self.scenario.images.shape, snr_db,
                            channel_config=self.scenario.channel,
                            bler_target=cfg.bler_target, codeword_length=cfg.codeword_length,
                            jpeg2000_header=cfg.jpeg2000_header,
                            **decoder_settings(cfg.decoder),
                            # One seed for all SNRs: the same noise draws at every SNR
                            # keep the choice monotone in SNR.
                            seed=derive_seed(self.scenario.seed, name, "amc"),
                            device=self.device)
        link = self._classical(name, cfg, choice.mcs.modulation, choice.mcs.code_rate)
        link.mcs_choice = choice
        return link

    def prepare(self, links: Iterable[str]) -> None:
        """Build the channel, the semantic and fixed-MCS classical links among ``links`` and the
        code blocks of their BER links now (their tasks would build them anyway), so that
        missing or mismatched weights, a bandwidth too small for a JPEG2000 frame, or settings
        no 5G LDPC code or channel model accepts are reported before any task runs, not after
        hours of other links' tasks. Adaptive links choose their MCS per SNR point, in their
        tasks.

        :raises InputError: As the links' constructors do; a ``ValueError`` of a component
            (a setting out of its range) becomes an InputError naming the link or the channel.
        """
        from semlink.channel import build_channel
        from semlink.links.ber import ber_link_rate

        try:
            build_channel(self.scenario.channel, generator=None, device=self.device)
        except ValueError as err:
            raise InputError(f"channel: {first_line(err)}") from None
        for name in links:
            cfg = self.scenario.links.get(name)
            try:
                if isinstance(cfg, BERLinkConfig):
                    ber_link_rate(cfg)  # plans the code blocks
                elif isinstance(cfg, SemanticLinkConfig) or (
                        isinstance(cfg, ClassicalLinkConfig) and not _per_snr(cfg)):
                    self.link(name)
            except InputError:
                raise  # already names what it is about
            except ValueError as err:
                raise InputError(f"links.{name}: {first_line(err)}") from None

    def channel_uses(self, name: str) -> int:
        """Complex channel uses per image of link ``name`` (bandwidth matching resolved)."""
        cfg = self.scenario.links[name]
        if isinstance(cfg, ClassicalLinkConfig):
            bw = cfg.bandwidth
            if bw.match is not None:
                return self.link(bw.match).channel_uses
            if bw.channel_uses is not None:
                return bw.channel_uses
            height, width = self.scenario.images.shape
            return max(1, round(bw.ratio * 3 * height * width))
        return self.link(name).channel_uses

    # ------------------------------------------------------------------ tasks
    def run(self, task: Task) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """Run ``task``: its ``points`` row fields and its rows of other tables."""
        if task.link == REFERENCE:
            return self._run_reference(task)
        link = self.scenario.links[task.link]
        if isinstance(link, BERLinkConfig):
            return self._run_ber(task, link)
        return self._run_images(task, link)

    def _run_reference(self, task):
        """Inception features of the original images (the FID and KID reference set)."""
        feats = self._features(self.images(task.image_indices))
        rows = [{"link": REFERENCE, "snr_db": float("nan"), "image_index": i, "repeat": 0,
                 "failed": False, "feature": f} for i, f in zip(task.image_indices, feats)]
        return {"kind": "reference", "images": len(rows)}, {"features": rows}

    def _features(self, images: torch.Tensor):
        from semlink.metrics.fid import inception_features

        return list(inception_features(images).cpu().numpy())

    def _seed(self, task, *parts: object) -> int:
        return derive_seed(self.scenario.seed, task.link, task.snr_index, *parts)

    def _run_ber(self, task, link: BERLinkConfig):
        from semlink.links.ber import simulate_ber_point

        counts = simulate_ber_point(
            link, self.scenario.channel, task.snr_db, snr_kind=self.scenario.snr.kind,
            monte_carlo=self.scenario.monte_carlo, seed=self._seed(task), device=self.device)
        row = {"link": task.link, "snr_db": task.snr_db, "modulation": link.modulation,
               "code_rate": float("nan") if link.code_rate is None else link.code_rate,
               **dataclasses.asdict(counts)}
        return {"kind": "ber"}, {"ber": [row]}

    def _run_images(self, task, cfg):
        from semlink.channel import build_channel

        link = self.link(task.link, task.snr_db)
        images = self.images(task.image_indices)
        semantic = isinstance(cfg, SemanticLinkConfig)
        z = link.encode(images) if semantic else None
        recons, rows, features, errors = [], [], [], []
        # Coded links (classical over LDPC, digital semantic) count payload bit and code-block
        # errors; analog semantic links and the ideal code have no code blocks.
        plan = link.code_plan
        for repeat in range(self.scenario.repeats):
            gen = make_generator(self._seed(task, task.batch_index, repeat, "channel"), self.device)
            channel = build_channel(self.scenario.channel, generator=gen, device=self.device)
            if semantic:
                zhat, blk, bit_err, sends, uses = link.send(z, channel, task.snr_db)
                gens = [make_generator(self._seed(task, "image", i, repeat, "sampler"), self.device)
                        for i in task.image_indices]
                recon = link.reconstruct(zhat, gens)
                failed = torch.zeros(len(images), dtype=torch.bool, device=self.device)
                extra = {"block_errors": blk, "embedding_mse": ((zhat - z) ** 2).flatten(1).mean(1),
                         "embedding_power": (z ** 2).flatten(1).mean(1)}
                if plan is not None:
                    extra["bit_errors"] = bit_err
            else:
                out = link.transmit(images, channel, task.snr_db)
                recon, failed = out.images, out.failed
                blk, bit_err, sends = out.block_errors, out.bit_errors, out.transmissions
                uses = out.channel_uses
                extra = {"block_errors": blk, "codestream_bytes_used": out.bytes_used}
                if plan is not None:
                    extra.update(bit_errors=bit_err,
                                 mcs_modulation=torch.full_like(
                                     blk, 2 ** link.budget.bits_per_symbol),
                                 mcs_code_rate=torch.full(blk.shape, plan.code_rate,
                                                          dtype=torch.float64))
                else:  # the ideal code: what the channel gave each codeword, and its size
                    extra.update(mutual_information_bits=out.mutual_information_bits,
                                 frame_bits=torch.full_like(blk, 8 * link.payload_bytes))
            if _harq_of(cfg) is not None:
                extra.update(transmissions=sends, channel_uses=uses)
            if plan is not None:
                errors.append(torch.stack([bit_err.sum(), blk.sum()]))
            scored = self._metrics(images, recon, failed, cfg)
            if wants_features(self.scenario):
                features += [{"link": task.link, "snr_db": task.snr_db, "image_index": i,
                              "repeat": repeat, "failed": bool(f), "feature": v}
                             for i, f, v in zip(task.image_indices, failed.tolist(),
                                                self._features(recon))]
            if repeat == 0 and self.recon_dir is not None:
                self._save_pngs(task, images, recon)
            recons.append(recon)
            rows += self._image_rows(task, repeat, link.channel_uses, failed, scored, extra)
        tables = {"images": rows}
        if features:
            tables["features"] = features
        if plan is not None:
            bit_errors, block_errors = torch.stack(errors).sum(0).tolist()  # one read per task
            transmissions = len(images) * self.scenario.repeats
            modulation = cfg.transmission.modulation if semantic else \
                2 ** link.budget.bits_per_symbol
            tables["ber"] = [{"link": task.link, "snr_db": task.snr_db, "modulation": modulation,
                              "code_rate": plan.code_rate,
                              "bits": transmissions * plan.num_payload_bits,
                              "bit_errors": bit_errors, "blocks": transmissions * plan.num_blocks,
                              "block_errors": block_errors, "esno_db": task.snr_db,
                              "ebno_db": float("nan")}]
        if self.scenario.repeats >= 2:
            tables["predictability"] = self._predictability(task, torch.stack(recons, dim=1))
        point = {"kind": cfg.type, "images": len(images) * self.scenario.repeats}
        choice = getattr(link, "mcs_choice", None)
        if choice is not None:  # what AMC chose, and the BLER it expected of it
            point.update(mcs=choice.mcs.name, mcs_estimated_bler=choice.estimate.bler,
                         mcs_estimate_blocks=choice.estimate.blocks)
        if not semantic and plan is None:  # the ideal code's frame at this SNR
            point["frame_bits"] = 8 * link.payload_bytes
            rate = link.outage_rate
            if rate is not None:  # and the outage probability estimated for it
                point.update(outage_estimate=rate.outage, outage_estimate_frames=rate.frames)
        return point, tables

    def _metrics(self, images, recon, failed, cfg) -> dict[str, torch.Tensor]:
        from semlink.metrics.failure import score_failures
        from semlink.metrics.quality import ms_ssim, psnr_db, ssim

        funcs = {"psnr": psnr_db, "ssim": _single(ssim), "ms_ssim": _single(ms_ssim),
                 "lpips": self._lpips_pair}
        values = {_FAILURE_NAMES[m]: funcs[m](images, recon).float()
                  for m in self.scenario.metrics if m in funcs}
        scored = score_failures(values, failed, scoring_policy(cfg)).metrics
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

    def _image_rows(self, task, repeat, channel_uses, failed, scored, extra):
        names = [self._files[i].name for i in task.image_indices]
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


def _per_snr(cfg: ClassicalLinkConfig) -> bool:
    """The link's frame depends on the SNR point: AMC, or the ideal code."""
    return cfg.adaptive or cfg.channel_code == "capacity"


def scoring_policy(cfg) -> str:
    """How a link's failed decodes are scored: ``"paper"`` for classical links under the paper's
    policy (a lost image gets the paper's constants, FID 500 for its share), ``"concealed"``
    otherwise (the image the receiver actually shows is scored)."""
    return "paper" if getattr(cfg, "failure_policy", None) == "paper" else "concealed"


def scenario_images(scenario: Scenario, base_dir: Path) -> list[Path]:
    """The image files a scenario transmits, in order (none for BER-only scenarios).

    :raises InputError: If the source names no readable folder, pattern or image.
    """
    from semlink.images import list_images

    cfg = scenario.images
    if cfg is None:
        return []
    return list_images(cfg.source, base_dir=base_dir, count=cfg.count)


class _ChannelUses:
    """Stand-in for a per-SNR link where only its channel uses are asked for."""

    def __init__(self, channel_uses: int) -> None:
        self.channel_uses = channel_uses


def _harq_of(cfg):
    """The ``harq`` section of an image link (classical, or a digital semantic link's
    transmission), or None."""
    return getattr(cfg, "harq", None) or getattr(getattr(cfg, "transmission", None), "harq",
                                                 None)


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
