"""``semlink report`` (semlink.report, semlink.cli.report): the paper's Figure 4, Figure 8 and
Table 2 from results files that tiny scenarios wrote through ``semlink.run``.

The links are the user's-link example (docs/examples/downsample_link.py: pooled pixels sent as
analog symbols), fast on a CPU; the checks recompute every number from the stored per-image rows,
and Table 2's published column from the paper's text (not from ``PAPER_TABLE2``).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import semlink
from semlink.cli import main
from semlink.metrics.lpips import lpips_unavailable_reason
from semlink.report import read_report_files, report_markdown, write_report
from semlink.results import ResultsStore
from tests.cli_errors import one_line_error

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
LPIPS = lpips_unavailable_reason() is None
METRICS = "[psnr, ssim, lpips]" if LPIPS else "[psnr, ssim]"

SCENARIO = """\
name: {name}
device: cpu
images: {{source: sample, size: 64, count: 2}}
snr: {{points_db: [1, 10]}}
metrics: {metrics}
repeats: {repeats}
links:
{links}
"""
POOL = "  {0}: {{type: python, class: downsample_link:DownsampleLink, options: {{factor: {1}}}}}"
#: The paper's Table 2 as printed (/work/shared/paper.md): SNR -> ours-1024, ours-512, GESCO,
#: Img2Img-SC.
PUBLISHED = {20: ["0.173±0.003", "0.205±0.005", "0.401±0.014", "0.520±0.011"],
             15: ["0.195±0.003", "0.223±0.006", "0.433±0.012", "0.541±0.017"],
             10: ["0.229±0.003", "0.264±0.008", "0.424±0.017", "0.522±0.012"],
             5: ["0.287±0.004", "0.314±0.009", "0.575±0.021", "0.554±0.019"],
             1: ["0.351±0.006", "0.371±0.013", "0.613±0.017", "0.578±0.019"]}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Results files of a main, an ablation and a predictability scenario."""
    folder = tmp_path_factory.mktemp("report")
    shutil.copy(ROOT / "docs" / "examples" / "downsample_link.py", folder)
    made = {}
    for key, name, repeats, links in [
            ("main", "paper-awgn-512", 1, [("pool8", 8), ("pool4", 4)]),
            ("ablation", "ablation-no-finetune", 1, [("fine-tuned", 4), ("original", 16)]),
            ("predictability", "paper-predictability", 3, [("pool8", 8)])]:
        (folder / f"{key}.yaml").write_text(SCENARIO.format(
            name=name, metrics=METRICS, repeats=repeats,
            links="\n".join(POOL.format(*link) for link in links)))
        made[key] = folder / f"{key}.h5"
        semlink.run(semlink.read_scenario(folder / f"{key}.yaml"), output=made[key])
    return made


@pytest.fixture(scope="module")
def report(files, tmp_path_factory) -> Path:
    """The report of all three files, as ``semlink report`` writes it."""
    out = tmp_path_factory.mktemp("out") / "report"
    assert main(["report", str(files["main"]), str(files["ablation"]),
                 str(files["predictability"]), "-o", str(out), "-q"]) == 0
    return out


def _table(text: str, heading: str) -> list[list[str]]:
    """Header and body cells of the first Markdown table after the line ``heading``."""
    lines = text.splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    assert rows and set(rows[1]) == {"---"}
    return [rows[0], *rows[2:]]


def _by_hand(path: Path, metric: str) -> dict[tuple[str, float], np.ndarray]:
    """The per-image values of ``metric`` by link and SNR, from the stored rows."""
    values: dict[tuple[str, float], list[float]] = {}
    for row in semlink.open_results(path).rows("images"):
        values.setdefault((row["link"], row["snr_db"]), []).append(row[f"metric_{metric}"])
    return {key: np.asarray(v) for key, v in values.items()}


@pytest.mark.parametrize("metric, decimals", [("psnr", 2), ("ssim", 3)])
def test_the_means_are_those_of_the_stored_images(files, report, metric, decimals):
    """Each cell of the means table is the mean of the per-image rows (and the summary's
    value and 95 % interval), to the decimals the report prints."""
    text = (report / "report.md").read_text()
    header, *rows = _table(text, "### paper-awgn-512 (`main.h5`)")
    column = header.index({"psnr": "PSNR dB", "ssim": "SSIM"}[metric])
    summary = {(r["link"], r["snr_db"]): r for r in semlink.open_results(files["main"]).rows()
               if r["metric"] == metric}
    values = _by_hand(files["main"], metric)
    assert {(r[0], float(r[1])) for r in rows} == set(values) == set(summary)
    assert len(values) == 4
    for row in rows:
        key = (row[0], float(row[1]))
        mean, interval = row[column].split(" ", 1)
        assert mean == f"{values[key].mean():.{decimals}f}"
        s = summary[key]
        assert interval == f"[{s['ci_low']:.{decimals}f}, {s['ci_high']:.{decimals}f}]"
        assert s["ci_low"] <= s["value"] <= s["ci_high"]
        assert row[header.index("n")] == str(len(values[key])) == "2"
    if not LPIPS:  # not in the file: a dash, and the figure says so
        assert {row[header.index("LPIPS")] for row in rows} == {"–"}
    assert {row[header.index("FID")] for row in rows} == {"–"}


def test_the_published_table_2_is_printed_as_the_paper_has_it(report):
    header, *rows = _table((report / "report.md").read_text(), "## Table 2: predictability")
    assert header[-4:] == ["paper: ours-1024", "paper: ours-512", "paper: GESCO",
                           "paper: Img2Img-SC"]
    assert [int(r[0]) for r in rows] == [20, 15, 10, 5, 1]  # the paper's order
    for row in rows:
        assert [c.replace(" ", "") for c in row[-4:]] == PUBLISHED[int(row[0])]


def _lpips_file(files, tmp_path) -> Path:
    """A predictability file with LPIPS rows: the run's, or (LPIPS's backbone missing here) a
    copy of it whose SSIM spread rows are stored as LPIPS, the layout the run writes."""
    if LPIPS:
        return files["predictability"]
    store = ResultsStore.open(files["predictability"])
    rows = [{**r, "metric": "lpips"} for r in store.rows("predictability")
            if r["metric"] == "ssim"]
    copy = ResultsStore(tmp_path / "lpips.h5", store.attrs)
    copy.extend(store)
    copy.add("lpips-rows", {"link": "pool8"}, {"predictability": rows})
    return copy.path


def test_a_predictability_file_fills_the_ours_column(files, tmp_path):
    path = _lpips_file(files, tmp_path)
    text = report_markdown(read_report_files([path]))
    header, *rows = _table(text, "## Table 2: predictability")
    assert header[:2] == ["SNR dB", "ours: pool8"]  # one file: its link's name alone
    stored = [r for r in semlink.open_results(path).rows("predictability")
              if r["metric"] == "lpips"]
    cells = {int(r[0]): r[1] for r in rows}
    for snr in (1, 10):
        mine = [r for r in stored if r["snr_db"] == snr]
        assert len(mine) == 2 and {r["repeats"] for r in mine} == {3}  # images, transmissions
        mean = np.mean([r["mean"] for r in mine])
        std = np.mean([r["std"] for r in mine])
        assert cells[snr] == f"{mean:.3f} ± {std:.3f}"
    assert {cells[s] for s in (20, 15, 5)} == {"–"}  # SNRs of the paper the run lacks


def test_other_predictability_metrics_get_a_table_of_their_own(files, report):
    text = (report / "report.md").read_text()
    header, *rows = _table(text, "Pairwise SSIM, mean ± std (not in the paper):")
    assert header == ["SNR dB", "ours: pool8 (paper-predictability)"]
    stored = semlink.open_results(files["predictability"]).rows("predictability")
    for row in rows:
        mine = [r for r in stored if r["metric"] == "ssim" and r["snr_db"] == float(row[0])]
        assert row[1] == (f"{np.mean([r['mean'] for r in mine]):.3f} ± "
                          f"{np.mean([r['std'] for r in mine]):.3f}")


def test_the_figures_are_written_and_embedded(files, report):
    for name in ("figure4", "figure8"):
        png, pdf = (report / f"{name}.png").read_bytes(), (report / f"{name}.pdf").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
        assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    text = (report / "report.md").read_text()
    assert "![Figure 4: quality vs SNR](figure4.png)" in text
    assert "![Figure 8: ablations](figure8.png)" in text
    for key, name, role, images in [("main", "paper-awgn-512", "main", "2 images"),
                                    ("predictability", "paper-predictability",
                                     "predictability", "2 images x 3 transmissions")]:
        attrs = semlink.open_results(files[key]).attrs
        assert (f"- `{files[key]}`: scenario `{name}` ({role}), hash "
                f"`{attrs['scenario_hash'][:12]}`, {images}, device `{attrs['device']}`") in text


def _panels(monkeypatch) -> dict[str, dict[str, dict]]:
    """{figure: {panel title: {"curves": {label: (x, y)}, "texts": [...]}}} of what
    write_report draws (not saved: rendering is what takes time)."""
    import matplotlib.pyplot as plt

    from semlink import plots

    drawn: dict[str, dict[str, dict]] = {}

    def capture(fig, out, name):
        drawn[name] = {ax.get_title(): {
            "curves": {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
                       for line in ax.get_lines() if not line.get_label().startswith("_")},
            "texts": [t.get_text() for t in ax.texts]} for ax in fig.axes}
        plt.close(fig)
        return [out / f"{name}.png"]

    monkeypatch.setattr(plots, "_save", capture)
    return drawn


def test_figure_4_draws_every_main_link_and_says_what_is_missing(files, tmp_path, monkeypatch):
    drawn = _panels(monkeypatch)
    write_report([files["main"], files["ablation"]], tmp_path / "r")
    figure4, figure8 = drawn["figure4"], drawn["figure8"]
    assert set(figure4) == set(figure8) == {"PSNR", "SSIM", "LPIPS", "FID"}
    psnr = _by_hand(files["main"], "psnr")
    # two files: each link labelled with its scenario's name too
    assert set(figure4["PSNR"]["curves"]) == {"pool8 (paper-awgn-512)", "pool4 (paper-awgn-512)"}
    for label, (x, y) in figure4["PSNR"]["curves"].items():
        link = label.split()[0]
        assert x == [1.0, 10.0]
        assert y == pytest.approx([psnr[(link, s)].mean() for s in x], rel=1e-9)
    assert figure4["FID"]["texts"] == ["not computed"] and not figure4["FID"]["curves"]
    assert (figure4["LPIPS"]["texts"] == ["not computed"]) is not LPIPS
    assert set(figure8["SSIM"]["curves"]) == {"fine-tuned (ablation-no-finetune)",
                                              "original (ablation-no-finetune)"}


def test_ablation_option_and_name_rule(files):
    roles = {f.path.name: f.role for f in read_report_files(
        [files["ablation"], files["predictability"]], ablation=[files["main"]])}
    assert roles == {"ablation.h5": "ablation", "predictability.h5": "predictability",
                     "main.h5": "ablation"}
    text = report_markdown(read_report_files([files["predictability"]]))
    assert "Not drawn: no main results file given" in text
    assert "Not drawn: no ablation file given" in text


def test_fid_is_a_point_without_an_interval(files, tmp_path, monkeypatch):
    store = ResultsStore.open(files["main"])
    copy = ResultsStore(tmp_path / "fid.h5", store.attrs)
    copy.extend(store)
    copy.add("fid", {"link": "pool8"}, {"fid": [
        {"link": "pool8", "snr_db": s, "fid": f, "num_images": 2, "num_failed": 0}
        for s, f in ((1.0, 123.44), (10.0, 67.06))]})
    drawn = _panels(monkeypatch)
    write_report([copy.path], tmp_path / "r")
    assert drawn["figure4"]["FID"]["curves"] == {"pool8": ([1.0, 10.0], [123.44, 67.06])}
    header, *rows = _table((tmp_path / "r" / "report.md").read_text(),
                           "### paper-awgn-512 (`fid.h5`)")
    fid = {(r[0], r[1]): r[header.index("FID")] for r in rows}
    assert fid[("pool8", "1")] == "123.4" and fid[("pool8", "10")] == "67.1"
    assert fid[("pool4", "1")] == "–"


# ---------------------------------------------------------------------------- the command
def test_the_command_lists_what_it_wrote(files, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", str(files["main"]), "-o", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out / n) for n in
                                               ("figure4.png", "figure4.pdf", "report.md")]
    # a folder with files: only with --overwrite
    line = one_line_error(["report", str(files["main"]), "-o", str(out)], capsys)
    assert f"--output: {out} exists and is not empty; pass --overwrite" in line
    assert main(["report", str(files["main"]), "-o", str(out), "--overwrite", "-q"]) == 0
    assert capsys.readouterr().out == ""


def _ber_only(path: Path) -> Path:
    store = ResultsStore(path, {"scenario_name": "ber"})
    store.add("b", {"link": "qpsk"}, {"ber": [{"link": "qpsk", "snr_db": 1.0, "modulation": 4,
                                               "code_rate": float("nan"), "bits": 100,
                                               "bit_errors": 1, "blocks": 1,
                                               "block_errors": 1}]})
    return path


@pytest.mark.parametrize("case, expected", [
    ("missing", "missing.h5: results file not found"),
    ("text", "text.h5: cannot read results file"),
    ("ber", "ber.h5: no image link in this results file"),
    ("twice", "main.h5: given twice"),
    ("file-as-output", "--output: {tmp}/taken is a file; give a folder"),
    ("under-a-file", "--output: {tmp}/taken/report: a file stands where a folder is needed"),
])
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, capsys, case, expected):
    (tmp_path / "text.h5").write_text("not hdf5\n")
    (tmp_path / "taken").write_text("a file\n")
    inputs = {"missing": [tmp_path / "missing.h5"], "text": [tmp_path / "text.h5"],
              "ber": [_ber_only(tmp_path / "ber.h5")],
              "twice": [files["main"], files["main"]]}.get(case, [files["main"]])
    out = {"file-as-output": tmp_path / "taken",
           "under-a-file": tmp_path / "taken" / "report"}.get(case, tmp_path / "out")
    line = one_line_error(["report", *map(str, inputs), "-o", str(out)], capsys)
    assert expected.format(tmp=tmp_path) in line
    assert not (tmp_path / "out").exists()
