"""Plots of a results file: BER/BLER curves with theory, quality metrics with confidence bands,
the predictability table and an image grid (original and reconstructions per link and SNR);
and the power CCDF of ``semlink papr``.

Every figure is written as PNG and PDF. Curves differ by marker and line style as well as colour, so
they stay readable in greyscale. Matplotlib is imported here only (never by the simulator core).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402
from pydantic import TypeAdapter, ValidationError  # noqa: E402

from semlink.results import ResultsStore, reconstructions_dir  # noqa: E402
from semlink.scenario import ChannelConfig  # noqa: E402
from semlink.summary import summarize  # noqa: E402

__all__ = ["plot_metric_panels", "plot_power_ccdf", "plot_results"]

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
_STYLES = ["-", "--", "-.", ":"]
_CHANNEL = TypeAdapter(ChannelConfig)  # a channel section, by its type (the schema's registry)
_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM",
           "lpips": "LPIPS (lower is better)", "fid": "FID (lower is better)",
           "kid": "KID (lower is better)", "ber": "bit error rate", "bler": "block error rate",
           "channel_uses": "channel uses per image",
           "throughput": "throughput (payload bits per channel use)"}


def plot_results(store: ResultsStore, out_dir: str | Path) -> list[Path]:
    """Write every plot the results support into ``out_dir``; returns the written files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summarize(store)
    scenario = yaml.safe_load(store.attrs.get("scenario_text", "")) or {}
    snr_kind = (scenario.get("snr") or {}).get("kind", "esno")
    written: list[Path] = []
    if any(r["metric"] in ("ber", "bler") for r in rows):
        written += _plot_error_rates(store, rows, scenario, snr_kind, out)
    for metric in dict.fromkeys(r["metric"] for r in rows if r["metric"] not in ("ber", "bler")):
        written += _plot_metric(rows, metric, snr_kind, out, scenario)
    if store.table("predictability"):
        written.append(_predictability_table(store, out))
    grid = _image_grid(store, out)
    if grid is not None:
        written.append(grid)
    return written


def plot_power_ccdf(rows, out_dir: str | Path, *, title: str) -> list[Path]:
    """The power CCDF of each link of ``semlink papr`` (``rows``: its
    :class:`~semlink.link_papr.LinkPAPR` list) against a complex Gaussian signal's exp(-g),
    as ``power_ccdf.png`` / ``.pdf`` in ``out_dir``; returns the written files."""
    from semlink.link_papr import THRESHOLDS_DB

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    thresholds = np.asarray(THRESHOLDS_DB)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    floor = 1.0
    for i, r in enumerate(rows):
        ccdf = np.asarray(r.ccdf)
        floor = min(floor, 1.0 / r.samples)
        shown = ccdf > 0  # a log axis has no 0: the curve ends at its last sample
        ax.semilogy(thresholds[shown], ccdf[shown], marker=_MARKERS[i % len(_MARKERS)],
                    markevery=8, linestyle=_STYLES[i % len(_STYLES)],
                    label=f"{r.link} ({r.waveform})")
    ax.semilogy(thresholds, np.exp(-10 ** (thresholds / 10)), color="0.4", linestyle=":",
                label="complex Gaussian, exp(-g)")
    ax.set_ylim(max(floor, 1e-6) / 2, 1.5)
    ax.set_xlim(thresholds[0], thresholds[-1])
    ax.set_xlabel("power above the reference g (dB)")
    ax.set_ylabel("fraction of samples above g")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, out, "power_ccdf")


def _xlabel(snr_kind: str) -> str:
    return "Eb/N0 (dB)" if snr_kind == "ebno" else "SNR Es/N0 (dB)"


def _save(fig, out: Path, name: str) -> list[Path]:
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for p in paths:
        fig.savefig(p, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return paths


def _series(rows, metric):
    by_link: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["metric"] == metric:
            by_link[r["link"]].append(r)
    return {link: sorted(rs, key=lambda r: r["snr_db"]) for link, rs in by_link.items()}


def _plot_error_rates(store, rows, scenario, snr_kind, out) -> list[Path]:
    channel_cfg = scenario.get("channel") or {}
    channel = channel_cfg.get("type", "awgn")
    link_facts = {r["link"]: r for r in store.rows("ber")}
    written = []
    for metric in ("ber", "bler"):
        series = _series(rows, metric)
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for i, (link, rs) in enumerate(series.items()):
            x = np.array([r["snr_db"] for r in rs])
            y = np.array([r["value"] for r in rs])
            lo = np.array([r["ci_low"] for r in rs])
            hi = np.array([r["ci_high"] for r in rs])
            keep = y > 0
            line, = ax.semilogy(x[keep], y[keep], marker=_MARKERS[i % len(_MARKERS)],
                                linestyle=_STYLES[i % len(_STYLES)],
                                label=_legend(link, scenario))
            ax.fill_between(x[keep], np.maximum(lo[keep], 1e-12), hi[keep],
                            color=line.get_color(), alpha=0.15, linewidth=0)
            facts = link_facts.get(link, {})
            uncoded = not np.isfinite(facts.get("code_rate", np.nan))
            finite = x[np.isfinite(x)]  # a noiseless (.inf) point has no theory value
            if (metric == "ber" and uncoded and snr_kind == "ebno" and "modulation" in facts
                    and finite.size):
                grid = np.linspace(finite.min(), finite.max(), 100)
                theory = _theory(channel_cfg, int(facts["modulation"]), grid)
                if theory is not None:
                    ax.semilogy(grid, theory, color=line.get_color(), linestyle=":",
                                linewidth=1.0, label=f"{link} theory")
        ax.set_xlabel(_xlabel(snr_kind))
        ax.set_ylabel(_LABELS[metric])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"{_LABELS[metric]} vs SNR ({channel})")
        written += _save(fig, out, metric)
    return written


def _theory(channel: dict, modulation: int, ebno_db: np.ndarray):
    """The closed-form BER of an uncoded link over the scenario's ``channel`` section, or None:
    the channel config of the section's ``type`` says (``theory_ber`` of
    :mod:`semlink.scenario.channels`). A section this version's schema refuses (a results file
    of another version) has none either."""
    try:  # lax: the stored text is read by yaml.safe_load, which leaves 1e-2 a string
        config = _CHANNEL.validate_python({"type": "awgn", **channel}, strict=False)
    except ValidationError:
        return None
    return config.theory_ber(modulation, ebno_db)


def _legend(link: str, scenario: dict) -> str:
    """The legend label of ``link``: its name; for a classical link over the ideal code, with
    the header convention of its bound
    (:func:`~semlink.links.capacity.header_convention`)."""
    section = (scenario.get("links") or {}).get(link)
    if not isinstance(section, dict) or section.get("channel_code") != "capacity":
        return link
    from semlink.links.capacity import header_convention

    convention = header_convention(section.get("codec", "jpeg2000"),
                                   section.get("jpeg2000_header", "implicit"))
    return f"{link} ({convention})"


def _plot_metric(rows, metric, snr_kind, out, scenario) -> list[Path]:
    series = _series(rows, metric)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    bands = False
    for i, (link, rs) in enumerate(series.items()):
        x = np.array([r["snr_db"] for r in rs])
        y = np.array([r["value"] for r in rs])
        lo = np.array([r["ci_low"] for r in rs], dtype=float)
        hi = np.array([r["ci_high"] for r in rs], dtype=float)
        line, = ax.plot(x, y, marker=_MARKERS[i % len(_MARKERS)],
                        linestyle=_STYLES[i % len(_STYLES)], label=_legend(link, scenario))
        if np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            bands = True
    ax.set_xlabel(_xlabel(snr_kind))
    ax.set_ylabel(_LABELS.get(metric, metric))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    # FID and throughput have no interval: say "band" only where one is drawn
    ax.set_title(f"{_LABELS.get(metric, metric)} vs SNR"
                 + (" (mean, 95% CI band)" if bands else ""))
    return _save(fig, out, f"quality_{metric}")


def _predictability_table(store, out) -> Path:
    table = store.rows("predictability")
    groups: dict[tuple[str, str, float], list[tuple[float, float]]] = defaultdict(list)
    for r in table:
        groups[(r["link"], r["metric"], r["snr_db"])].append((r["mean"], r["std"]))
    lines = ["# Predictability: pairwise metric over repeated transmissions", "",
             "Mean over images of the per-image pairwise mean, and mean of the per-image std.", "",
             "| link | metric | SNR dB | pairwise mean | pairwise std | images |",
             "|---|---|---|---|---|---|"]
    for (link, metric, snr), vals in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[0][2])):
        means, stds = zip(*vals)
        lines.append(f"| {link} | {metric} | {snr:g} | {np.mean(means):.4f} | {np.mean(stds):.4f} "
                     f"| {len(vals)} |")
    path = out / "predictability.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _image_grid(store, out, max_images: int = 4) -> Path | None:
    folder = reconstructions_dir(store.path)
    if not folder.is_dir():
        return None
    scenario = yaml.safe_load(store.attrs.get("scenario_text", "")) or {}
    links = [l for l in (scenario.get("links") or {}) if (folder / l).is_dir()]
    snrs = sorted({float(p.name[len("snr"):]) for l in links for p in (folder / l).iterdir()
                   if p.name.startswith("snr")}, reverse=True)
    originals = sorted((folder / "original").glob("*.png"))[:max_images] \
        if (folder / "original").is_dir() else []
    if not links or not snrs or not originals:
        return None
    cols = 1 + len(links) * len(snrs)
    fig, axes = plt.subplots(len(originals), cols, figsize=(1.6 * cols, 1.7 * len(originals)),
                             squeeze=False)
    for r, original in enumerate(originals):
        panels = [("original", original)] + [
            (f"{l}\n{s:g} dB", folder / l / f"snr{s:g}" / original.name) for l in links for s in snrs]
        for c, (title, path) in enumerate(panels):
            ax = axes[r][c]
            ax.axis("off")
            if path.is_file():
                ax.imshow(Image.open(path))
            if r == 0:
                ax.set_title(title, fontsize=7)
    fig.suptitle("Reconstructions (first transmission)", fontsize=9)
    return _save(fig, out, "image_grid")[0]


def plot_metric_panels(curves, out_dir: str | Path, name: str, *,
                       metrics=("psnr", "ssim", "lpips", "fid"), title: str = "") -> list[Path]:
    """One panel per metric against SNR, as the paper's Figures 4 and 8 (``semlink report``):
    a curve per entry of ``curves`` (label -> summary rows of
    :func:`~semlink.summary.summarize`, any metrics), the same colour and marker in every
    panel, each point's 95 % interval as an error bar (none where the rows have none: FID); a
    panel whose metric no curve has says "not computed". Written as ``name``.png / .pdf in
    ``out_dir``; returns the written files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns = 2 if len(metrics) > 1 else 1
    rows_of_panels = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows_of_panels, columns, figsize=(5.4 * columns,
                                                               3.9 * rows_of_panels),
                             squeeze=False)
    handles = {}
    for ax, metric in zip(axes.flat, metrics):
        have = drawn = False
        for i, (label, rows) in enumerate(curves.items()):
            rs = sorted((r for r in rows if r["metric"] == metric), key=lambda r: r["snr_db"])
            have = have or bool(rs)
            rs = [r for r in rs if np.isfinite(r["value"])]
            if not rs:
                continue
            x = np.array([r["snr_db"] for r in rs], dtype=float)
            y = np.array([r["value"] for r in rs], dtype=float)
            err = np.array([[v - r["ci_low"], r["ci_high"] - v]
                            for v, r in zip(y, rs)], dtype=float).T  # [2, points]
            line, = ax.plot(x, y, marker=_MARKERS[i % len(_MARKERS)],
                            linestyle=_STYLES[i % len(_STYLES)], color=f"C{i % 10}",
                            label=label)
            bars = np.isfinite(err).all(axis=0)
            if bars.any():
                ax.errorbar(x[bars], y[bars], yerr=err[:, bars], fmt="none",
                            ecolor=line.get_color(), capsize=3, linewidth=1)
            handles.setdefault(label, line)
            drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "no finite values" if have else "not computed",
                    transform=ax.transAxes, ha="center", va="center", color="0.4")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel(_LABELS.get(metric, metric))
        ax.set_title(_LABELS.get(metric, metric).split(" (")[0])
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(f"{title}: mean, 95% interval" if title else "mean, 95% interval",
                 fontsize=10)
    fig.tight_layout()
    if handles:  # under the panels: the saved figure's tight bounding box takes it in
        fig.legend(list(handles.values()), list(handles), loc="upper center",
                   bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 4), fontsize=8)
    return _save(fig, out, name)
