"""Regenerate the measurements the docs quote: run this folder's table scripts one after another.

    .venv/bin/python docs/tables/regenerate.py [NAME ...] [--out DIR] [--list] [--check]

Each ``NAME_table.py`` here prints Markdown (and the seconds it took) that a page of ``docs/``
quotes; each also runs on its own (``.venv/bin/python docs/tables/NAME_table.py``). This runs
the named ones (default: all, in the order of ``--list``) from the repository root with this
interpreter, prints their output under a heading per table and, with ``--out``, also writes it
to ``DIR/NAME.md``. No page is edited: paste the new rows there. ``training_logs`` copies the
logs of the ``small`` presets' training runs (``runs/train-small*/``, ``runs/train-deepjscc-small*/``) to the
``training-*.csv`` files here. ``small_preset`` and ``training_logs`` need the runs of
docs/training.md (hours); they are skipped while the runs are missing.

``--list`` prints every name, the page that quotes it and its time on the project's 2-core CPU
machine; ``--check`` only loads every script (no measurement, seconds).
"""
from __future__ import annotations

import argparse
import runpy
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass(frozen=True)
class Table:
    """One measurement: ``script`` (in this folder, run with ``args`` from the repository root)
    prints the Markdown ``page`` quotes; ``needs``: files (from the root) it reads, else skipped."""
    name: str
    page: str
    time: str
    script: str | None = None
    args: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()


_TRAINING_RUNS = ("train-small", "train-small-refine", "train-small-refine2",
                  "train-deepjscc-small", "train-deepjscc-small-refine")
_BUNDLES = ("runs/train-small-refine2/model.safetensors",
            "runs/train-small-noisefree-refine2/model.safetensors")

TABLES = {t.name: t for t in (
    Table("analog_estimate", "docs/semantic-link.md", "109 s", "analog_estimate_table.py",
          ("--repeats", "4")),
    Table("diversity", "docs/semantic-link.md", "52 s", "diversity_table.py"),
    Table("doppler", "docs/semantic-link.md", "63 s", "doppler_table.py"),
    Table("amplifier", "docs/semantic-link.md", "61 s", "amplifier_table.py"),
    Table("phase_noise", "docs/semantic-link.md", "82 s", "phase_noise_table.py"),
    Table("papr", "docs/semantic-link.md", "8 s", "papr_table.py"),
    Table("ofdm_amplifier", "docs/semantic-link.md", "77 s", "ofdm_amplifier_table.py"),
    Table("ofdm_domain", "docs/semantic-link.md", "45 s", "ofdm_domain_table.py"),
    Table("ofdm_phase_noise", "docs/semantic-link.md", "118 s", "ofdm_phase_noise_table.py"),
    Table("ofdm_frequency_offset", "docs/semantic-link.md", "67 s",
          "ofdm_frequency_offset_table.py"),
    Table("classical_link", "docs/classical-link.md", "~2.5 min", "classical_link_table.py",
          ("--repeats", "4")),
    Table("cbg", "docs/classical-link.md", "46 s", "cbg_table.py"),
    Table("pilot_spacing", "docs/classical-link.md", "67 s", "pilot_spacing_table.py"),
    Table("dimensionality", "docs/links.md", "13 s", "dimensionality_table.py"),
    Table("bfloat16", "docs/benchmarks.md", "40 s", "bfloat16_table.py"),
    Table("roofline", "docs/benchmarks.md", "50 s", "roofline_table.py"),
    Table("small_preset", "docs/training.md", "not recorded; the six training runs first",
          "small_preset_table.py", (*_BUNDLES, "--steps", "1", "--guidance", "1.0"), _BUNDLES),
    Table("training_logs", "docs/training.md", "a copy; the training runs first",
          needs=tuple(f"runs/{run}/{log}.csv" for run in _TRAINING_RUNS
                      for log in ("log", "validation"))),
)}


def _copy_training_logs() -> str:
    """Copy ``runs/<run>/{log,validation}.csv`` to ``training-<run minus 'train-'>-*.csv``."""
    lines = []
    for run in _TRAINING_RUNS:
        for log in ("log", "validation"):
            target = HERE / f"training-{run.removeprefix('train-')}-{log}.csv"
            shutil.copyfile(ROOT / "runs" / run / f"{log}.csv", target)
            lines.append(f"runs/{run}/{log}.csv -> {target.relative_to(ROOT)}")
    return "\n".join(lines) + "\n"


def _run(table: Table) -> tuple[int, str]:
    """Run ``table``, its output echoed as it comes; return the exit status and the output."""
    if table.script is None:
        text = _copy_training_logs()
        print(text, end="", flush=True)
        return 0, text
    command = [sys.executable, str(HERE / table.script), *table.args]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        lines = []
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    return process.returncode, "".join(lines)


def _check() -> int:
    """Load every script without measuring; return 1 if one fails or is not in ``TABLES``."""
    scripts = {t.script for t in TABLES.values() if t.script}
    unlisted = sorted(p.name for p in HERE.glob("*_table.py")
                      if p.name not in scripts and not p.name.startswith("_"))
    if unlisted:
        print(f"not in TABLES: {', '.join(unlisted)}")
        return 1
    sys.path.insert(0, str(HERE))  # as when a script runs on its own: _scenario_table imports
    for name, table in TABLES.items():
        if table.script:
            runpy.run_path(str(HERE / table.script), run_name=f"check_{name}")
            print(f"{name}: {table.script} loads")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="tables to regenerate (default: all; see --list)")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write each table's output to OUT/NAME.md")
    parser.add_argument("--list", action="store_true", help="list the tables and stop")
    parser.add_argument("--check", action="store_true",
                        help="only load every script (no measurement)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in TABLES]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(TABLES)}")
    if args.list:
        print("| name | quoted in | time (2-core CPU) |\n| --- | --- | --- |")
        for t in TABLES.values():
            print(f"| {t.name} | {t.page} | {t.time} |")
        return 0
    if args.check:
        return _check()
    failed, skipped = [], []
    for name in args.names or list(TABLES):
        table = TABLES[name]
        missing = [n for n in table.needs if not (ROOT / n).is_file()]
        if missing:
            skipped.append(name)
            print(f"\n## {name}: skipped, missing {', '.join(missing)}\n", flush=True)
            continue
        print(f"\n## {name} ({table.page})\n", flush=True)
        status, text = _run(table)
        if status:
            failed.append(name)
        elif args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{name}.md").write_text(text)
    print(f"\nskipped: {', '.join(skipped) or 'none'}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
