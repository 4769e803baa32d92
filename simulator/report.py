"""The paper's protocol results laid out as the paper does (``semlink report``): Figure 4 (PSNR,
SSIM, LPIPS, FID vs SNR), Figure 8 (the ablations), Table 2 (predictability beside the published
values) and one Markdown page with the per-link, per-SNR means and their 95 % intervals.

What goes where (each file by its contents and name, nothing else):

- *ablation* files: those whose scenario name starts with ``ablation-`` (the ready
  ``scenarios/ablation-no-finetune.yaml`` and ``ablation-embedding-32.yaml``) and those given as
  ``ablation``. Each holds its reference link itself (``fine-tuned``, ``z-24``): Figure 8 draws
  every link of every ablation file.
- *predictability* files: the others with a ``predictability`` table (``repeats >= 2``,
  ``scenarios/paper-predictability.yaml``): Table 2. Figure 4 leaves them out (their images are
  the same few sent many times).
- *main* files: the rest (``scenarios/paper-awgn-512.yaml``): Figure 4 draws every link of each.

Every file's means go into the table of means; every file's predictability rows (an ablation
file's too) into Table 2. Means and intervals are :func:`semlink.summary.summarize`'s. Matplotlib
is imported only when the figures are drawn (:mod:`semlink.plots`).
"""
from __future__ import annotations

import math
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semlink.errors import InputError

__all__ = ["PAPER_TABLE2", "REPORT_METRICS", "ReportFile", "read_report_files",
           "predictability_means", "format_metric", "report_markdown", "check_report_folder",
           "write_report"]

#: The metrics of Figures 4 and 8 and of the table of means, in the paper's order.
REPORT_METRICS = ("psnr", "ssim", "lpips", "fid")
#: Published predictability, pairwise LPIPS (mean, std) over the 25 reconstructions of an image,
#: by column and SNR (dB): Khalid, Freire, Turitsyn, Prilepsky, "Efficient and Robust Semantic
#: Image Communication via Stable Cascade", ICML 2025 Workshop on ML for Wireless Communication
#: and Networks, Table 2.
PAPER_TABLE2: dict[str, dict[float, tuple[float, float]]] = {
    "ours-1024": {20.0: (0.173, 0.003), 15.0: (0.195, 0.003), 10.0: (0.229, 0.003),
                  5.0: (0.287, 0.004), 1.0: (0.351, 0.006)},
    "ours-512": {20.0: (0.205, 0.005), 15.0: (0.223, 0.006), 10.0: (0.264, 0.008),
                 5.0: (0.314, 0.009), 1.0: (0.371, 0.013)},
    "GESCO": {20.0: (0.401, 0.014), 15.0: (0.433, 0.012), 10.0: (0.424, 0.017),
              5.0: (0.575, 0.021), 1.0: (0.613, 0.017)},
    "Img2Img-SC": {20.0: (0.520, 0.011), 15.0: (0.541, 0.017), 10.0: (0.522, 0.012),
                   5.0: (0.554, 0.019), 1.0: (0.578, 0.019)},
}
_DECIMALS = {"psnr": 2, "ssim": 3, "lpips": 3, "fid": 1}
_HEADERS = {"psnr": "PSNR dB", "ssim": "SSIM", "lpips": "LPIPS", "fid": "FID"}
_ABLATION_PREFIX = "ablation-"
_NONE = "–"  # a cell without a value


@dataclass(frozen=True)
class ReportFile:
    """One results file of a report.

    :ivar path: The file, as given.
    :ivar name: Its scenario's ``name:``.
    :ivar role: ``main``, ``ablation`` or ``predictability`` (module docstring).
    :ivar summary: Its summary rows (:func:`semlink.summary.summarize`).
    :ivar predictability: :func:`predictability_means` of its ``predictability`` table.
    :ivar attrs: The file's root attributes.
    :ivar images: Distinct images it sent; ``repeats``: transmissions of each.
    """

    path: Path
    name: str
    role: str
    summary: list[dict[str, Any]]
    predictability: list[dict[str, Any]]
    attrs: dict[str, Any]
    images: int
    repeats: int

    @property
    def hash(self) -> str:
        """The first 12 hex digits of the scenario hash."""
        return str(self.attrs.get("scenario_hash", ""))[:12]

    @property
    def links(self) -> list[str]:
        """Its links with image metrics, in the file's order."""
        return list(dict.fromkeys(r["link"] for r in self.summary if r["metric"] in _DECIMALS))


def read_report_files(paths: Sequence[str | Path], *,
                      ablation: Sequence[str | Path] = ()) -> list[ReportFile]:
    """Read the results files of a report: ``paths``, then ``ablation`` (ablation files
    whatever their scenario's name).

    :raises InputError: If no file is given, a file is given twice, is missing, is not a
        results file, or holds no image link (a BER-only run).
    """
    from semlink.api import open_results

    given = [(Path(p), False) for p in paths] + [(Path(p), True) for p in ablation]
    if not given:
        raise InputError("report: give at least one results file")
    seen: set[Path] = set()
    files = []
    for path, is_ablation in given:
        key = path.resolve()
        if key in seen:
            raise InputError(f"{path}: given twice")
        seen.add(key)
        results = open_results(path)
        table = results.store.table("images")
        if not table or not len(table.get("link", ())):
            raise InputError(f"{path}: no image link in this results file (a BER-only run?); "
                             "report needs image metrics")
        name = str(results.attrs.get("scenario_name") or path.stem)
        spread = predictability_means(results.store.rows("predictability"))
        role = ("ablation" if is_ablation or name.startswith(_ABLATION_PREFIX)
                else "predictability" if spread else "main")
        repeats = (int(np.max(table["repeat"])) + 1) if "repeat" in table else 1
        files.append(ReportFile(path, name, role, results.rows("summary"), spread,
                                results.attrs, len(set(table["image_index"].tolist())),
                                repeats))
    return files


def predictability_means(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``predictability`` table's rows (one per image) averaged per link, metric and SNR:
    the mean over images of each image's pairwise mean, and of each image's pairwise std (one
    image, as in the paper: its own mean and std).

    :returns: Dicts ``link``, ``metric``, ``snr_db``, ``mean``, ``std``, ``images``,
        ``repeats``, ordered by link (as stored), metric and SNR (descending, as Table 2).

    >>> rows = [{"link": "sc", "metric": "lpips", "snr_db": 5.0, "mean": m, "std": s,
    ...          "repeats": 25} for m, s in ((0.2, 0.01), (0.4, 0.03))]
    >>> r = predictability_means(rows)[0]
    >>> round(r["mean"], 6), round(r["std"], 6), r["images"]
    (0.3, 0.02, 2)
    """
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(str(r["link"]), str(r["metric"]), float(r["snr_db"]))].append(r)
    order = {link: i for i, link in enumerate(dict.fromkeys(k[0] for k in groups))}
    out = []
    for (link, metric, snr_db), rs in sorted(groups.items(),
                                             key=lambda kv: (order[kv[0][0]], kv[0][1],
                                                             -kv[0][2])):
        out.append({"link": link, "metric": metric, "snr_db": snr_db,
                    "mean": float(np.mean([r["mean"] for r in rs])),
                    "std": float(np.mean([r["std"] for r in rs])),
                    "images": len(rs), "repeats": int(max(r["repeats"] for r in rs))})
    return out


def format_metric(metric: str, value: float) -> str:
    """A metric value as the report prints it: PSNR 2 decimals, SSIM and LPIPS 3, FID 1 (others
    4 significant digits); NaN as a dash.

    >>> format_metric("psnr", 21.456), format_metric("lpips", 0.1734), format_metric("fid", 45.04)
    ('21.46', '0.173', '45.0')
    """
    if not math.isfinite(value) and not math.isinf(value):
        return _NONE
    decimals = _DECIMALS.get(metric)
    return f"{value:.{decimals}f}" if decimals is not None else f"{value:.4g}"


def report_markdown(files: Sequence[ReportFile], figures: Sequence[str] = ()) -> str:
    """The report page: the files, the figures named in ``figures`` (``figure4``,
    ``figure8``; PNG beside the page, PDF linked), the means with 95 % intervals, Table 2."""
    from semlink import __version__

    lines = ["# semlink report", "",
             f"The evaluation protocol of Khalid et al. (ICML 2025 workshop) from "
             f"{len(files)} results file{'s' * (len(files) != 1)}, by semlink {__version__} "
             "(`semlink report`).", "", "## Results files", ""]
    for f in files:
        repeats = f" x {f.repeats} transmissions" if f.repeats > 1 else ""
        lines.append(f"- `{f.path}`: scenario `{f.name}` ({f.role}), hash `{f.hash}`, "
                     f"{f.images} images{repeats}, device `{f.attrs.get('device', '?')}`")
    lines += _figure_section("figure4", "Figure 4: quality vs SNR",
                             [f for f in files if f.role == "main"], figures,
                             "no main results file given (a scenario such as "
                             "scenarios/paper-awgn-512.yaml)")
    lines += _figure_section("figure8", "Figure 8: ablations",
                             [f for f in files if f.role == "ablation"], figures,
                             "no ablation file given (scenario name `ablation-...`, or "
                             "--ablation FILE)")
    lines += _means_section(files)
    lines += _table2_section(files)
    return "\n".join(lines) + "\n"


def check_report_folder(out_dir: str | Path, *, overwrite: bool = False,
                        option: str = "--output") -> Path:
    """Make sure the report can be written to ``out_dir`` before any work: create it, or accept
    an empty one, or with ``overwrite`` one that holds files; and write a temporary file there.

    :raises InputError: If ``out_dir`` is a file, is a folder with files and ``overwrite`` is
        not given, or cannot be created or written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{option}: {out} is a file; give a folder")
    if out.is_dir() and not overwrite and any(out.iterdir()):
        raise InputError(f"{option}: {out} exists and is not empty; pass --overwrite to write "
                         "into it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".report."):
            pass
    except OSError as err:
        where = err.filename if err.filename is not None else out
        why = ("a file stands where a folder is needed in this path"
               if isinstance(err, (FileExistsError, NotADirectoryError))
               else err.strerror or str(err))
        raise InputError(f"{option}: {where}: {why}") from None
    return out


def write_report(paths: Sequence[str | Path], out_dir: str | Path, *,
                 ablation: Sequence[str | Path] = (), overwrite: bool = False,
                 option: str = "--output") -> list[Path]:
    """Write ``figure4.png``/``.pdf`` (main files), ``figure8.png``/``.pdf`` (ablation files;
    each figure only when it has files) and ``report.md`` into ``out_dir``.

    :param paths: Results files (``semlink run``).
    :param ablation: More results files, taken as ablations whatever their scenario's name.
    :param overwrite: Write into a folder that already holds files (replacing the report's).
    :param option: How messages about ``out_dir`` name it.
    :returns: The written files, ``report.md`` last.
    :raises InputError: As :func:`read_report_files` and :func:`check_report_folder`.
    """
    files = read_report_files(paths, ablation=ablation)
    out = check_report_folder(out_dir, overwrite=overwrite, option=option)
    from semlink.plots import plot_metric_panels

    written: list[Path] = []
    figures = []
    for name, role, title in (("figure4", "main", "Quality vs SNR (Figure 4)"),
                              ("figure8", "ablation", "Ablations (Figure 8)")):
        chosen = [f for f in files if f.role == role]
        if chosen:
            written += plot_metric_panels(_curves(chosen, _labels(files)), out, name,
                                          metrics=REPORT_METRICS, title=title)
            figures.append(name)
    page = out / "report.md"
    page.write_text(report_markdown(files, figures), encoding="utf-8")
    return written + [page]


# ---------------------------------------------------------------------------- sections
def _labels(files: Sequence[ReportFile]) -> dict[int, str]:
    """What names each of the report's files beside its links in legends and columns: nothing
    when the report has one file, else its scenario's name (its file name where two share one)."""
    if len(files) < 2:
        return {id(f): "" for f in files}
    names = [f.name for f in files]
    return {id(f): f.path.name if names.count(f.name) > 1 else f.name for f in files}


def _curves(files: Sequence[ReportFile],
            labels: dict[int, str]) -> dict[str, list[dict[str, Any]]]:
    curves: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        for link in f.links:
            label = f"{link} ({labels[id(f)]})" if labels[id(f)] else link
            curves[label] = [r for r in f.summary if r["link"] == link]
    return curves


def _figure_section(name: str, title: str, files: Sequence[ReportFile], figures: Sequence[str],
                    missing: str) -> list[str]:
    lines = ["", f"## {title}", ""]
    if name not in figures:
        return lines + [f"Not drawn: {missing}."]
    what = ", ".join(f"`{f.name}`" for f in files)
    return lines + [f"![{title}]({name}.png)", "",
                    f"Every link of {what}; mean and 95 % interval per SNR (error bars; FID is "
                    f"one number per link and SNR, without one). Also as [PDF]({name}.pdf)."]


def _means_section(files: Sequence[ReportFile]) -> list[str]:
    lines = ["", "## Means per link and SNR", "",
             "Mean over images and transmissions, 95 % Student-t interval in brackets (FID: one "
             "value per link and SNR, no interval); n: image transmissions, failed: lost "
             f"decodes (scored as the link's failure policy says); {_NONE}: not computed."]
    header = ["link", "SNR dB", *(_HEADERS[m] for m in REPORT_METRICS), "n", "failed"]
    for f in files:
        lines += ["", f"### {f.name} (`{f.path.name}`)", "", _row(header),
                  _row(["---"] * len(header))]
        cells: dict[tuple[str, float], dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in f.summary:
            if r["metric"] in _DECIMALS:
                cells[(r["link"], r["snr_db"])][r["metric"]] = r
        for (link, snr_db), by_metric in cells.items():
            counted = next((by_metric[m] for m in ("psnr", "ssim", "lpips")
                            if m in by_metric), next(iter(by_metric.values())))
            lines.append(_row([link, f"{snr_db:g}",
                               *(_mean_cell(m, by_metric.get(m)) for m in REPORT_METRICS),
                               str(counted["count"]), str(counted["failures"])]))
    return lines


def _mean_cell(metric: str, row: dict[str, Any] | None) -> str:
    if row is None:
        return _NONE
    text = format_metric(metric, row["value"])
    low, high = float(row["ci_low"]), float(row["ci_high"])
    if math.isfinite(low) and math.isfinite(high):
        text += f" [{format_metric(metric, low)}, {format_metric(metric, high)}]"
    return text


def _table2_section(files: Sequence[ReportFile]) -> list[str]:
    lines = ["", "## Table 2: predictability", "",
             "Pairwise LPIPS over the transmissions of an image, mean ± std (mean over images "
             "of each image's pairwise mean and std); paper: the published values (Khalid et "
             "al., Table 2; 25 transmissions of one image, 512 px unless -1024)."]
    ours = _predictability_columns(files, "lpips")
    if not ours:
        lines += ["", "No LPIPS predictability in the files given (a scenario such as "
                      "scenarios/paper-predictability.yaml: `repeats: 25`, `metrics: [lpips]`)."]
    lines += [""] + _spread_table(ours, "lpips", paper=True)
    for metric in ("ssim", "psnr"):
        other = _predictability_columns(files, metric)
        if other:
            lines += ["", f"Pairwise {_HEADERS[metric]}, mean ± std (not in the paper):", ""]
            lines += _spread_table(other, metric, paper=False)
    return lines


def _predictability_columns(files: Sequence[ReportFile],
                            metric: str) -> dict[str, dict[float, dict[str, Any]]]:
    with_rows = [f for f in files if any(r["metric"] == metric for r in f.predictability)]
    labels = _labels(files)
    columns: dict[str, dict[float, dict[str, Any]]] = defaultdict(dict)
    for f in with_rows:
        for r in f.predictability:
            if r["metric"] == metric:
                label = f"ours: {r['link']}" + (f" ({labels[id(f)]})" if labels[id(f)] else "")
                columns[label][r["snr_db"]] = r
    return dict(columns)


def _spread_table(ours: dict[str, dict[float, dict[str, Any]]], metric: str, *,
                  paper: bool) -> list[str]:
    published = PAPER_TABLE2 if paper else {}
    snrs = sorted({s for col in ours.values() for s in col}
                  | {s for col in published.values() for s in col}, reverse=True)
    header = ["SNR dB", *ours, *(f"paper: {name}" for name in published)]
    lines = [_row(header), _row(["---"] * len(header))]
    for snr in snrs:
        cells = [f"{snr:g}"]
        for col in ours.values():
            r = col.get(snr)
            cells.append(_NONE if r is None else _spread(metric, r["mean"], r["std"]))
        for col in published.values():
            cells.append(_spread(metric, *col[snr]) if snr in col else _NONE)
        lines.append(_row(cells))
    return lines


def _spread(metric: str, mean: float, std: float) -> str:
    return f"{format_metric(metric, mean)} ± {format_metric(metric, std)}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
