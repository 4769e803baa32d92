"""Commands that read a results file: ``export``, ``compare``, ``plot``."""
from __future__ import annotations

import argparse

from semlink.cli._shared import (EXIT_OK, add_command, add_output, check_output, fmt,
                                 make_console, output_option, path, say)
from semlink.errors import InputError

__all__ = ["add_parsers"]


def add_parsers(sub) -> None:
    """Add ``export``, ``compare`` and ``plot`` to the sub-command parsers ``sub``."""
    p = add_command(sub, "export", help="export a results file as tidy CSV and/or JSON",
                    examples=["export results/quickstart.h5 -o results/quickstart-csv",
                              "export results/quickstart.h5 --json results/quickstart.json",
                              "export results/rayleigh.h5 -o out/ --json out/summary.json"],
                    quiet="do not list the files written")
    p.add_argument("results", type=path, help="results .h5 file")
    add_output(p, metavar="DIR", aliases=["--csv"],
               help="write summary.csv and one CSV per table to DIR")
    p.add_argument("--json", type=path, metavar="FILE",
                   help="write the summary and attributes as JSON")
    p.set_defaults(func=_cmd_export)

    p = add_command(sub, "compare", help="paired differences of two links of a results file "
                                         "(per SNR and image metric, with intervals)",
                    examples=["compare results/quickstart.h5 semantic jpeg2000",
                              "compare results/rayleigh.h5 semantic jpeg2000 --metric psnr "
                              "-o psnr.csv"],
                    quiet="no table (with -o, only the CSV)")
    p.add_argument("results", type=path, help="results .h5 file")
    p.add_argument("link", help="link compared")
    p.add_argument("baseline", help="link compared against (differences are link - baseline)")
    p.add_argument("--metric", nargs="+", help="image metrics, or channel_uses (default: every "
                                               "image metric in the file)")
    add_output(p, aliases=["--csv"], help="also write the rows as CSV")
    p.set_defaults(func=_cmd_compare)

    p = add_command(sub, "plot", help="plot a results file (PNG and PDF)",
                    examples=["plot results/quickstart.h5 -o results/quickstart-plots"],
                    quiet="do not list the figures written")
    p.add_argument("results", type=path, help="results .h5 file")
    add_output(p, metavar="DIR", aliases=["--out"], required=True, help="folder for the figures")
    p.set_defaults(func=_cmd_plot)


def _cmd_export(args: argparse.Namespace) -> int:
    from semlink.export import export_csv, export_json
    from semlink.results import ResultsStore

    store = ResultsStore.open(args.results)
    if not (args.output or args.json):
        raise InputError("export: give -o DIR (CSV) and/or --json FILE")
    if args.json:
        check_output(args.json, option="--json")
    if args.output:
        for written in export_csv(store, args.output):
            say(args, str(written))
    if args.json:
        say(args, str(export_json(store, args.json)))
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from semlink.compare import COMPARE_COLUMNS, compare_links
    from semlink.export import write_table_csv
    from semlink.results import ResultsStore

    if args.output:
        check_output(args.output, option=output_option(args))
    store = ResultsStore.open(args.results)
    rows = compare_links(store, args.link, args.baseline, metrics=args.metric)
    table = Table(title=f"{args.link} - {args.baseline}, paired over images and transmissions "
                        "(95% interval, paired t-test)")
    for col in ("SNR dB", "metric", args.link, args.baseline, "difference", "95% interval",
                "p", "pairs"):
        table.add_column(col, justify="left" if col == "metric" else "right", no_wrap=True)
    for r in rows:
        table.add_row(f"{r['snr_db']:g}", r["metric"], fmt(r["link_mean"]),
                      fmt(r["baseline_mean"]), fmt(r["difference"]),
                      f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]", fmt(r["p_value"]),
                      str(r["pairs"]))
    make_console(quiet=args.quiet).print(table)
    if args.output:
        say(args, str(write_table_csv(args.output, list(COMPARE_COLUMNS), rows)))
    return EXIT_OK


def _cmd_plot(args: argparse.Namespace) -> int:
    from semlink.plots import plot_results
    from semlink.results import ResultsStore

    store = ResultsStore.open(args.results)
    figures = plot_results(store, args.output)
    if not figures:
        raise InputError(f"{args.results}: nothing to plot ({store.completed_points} finished "
                         "points, none with BER or image metrics)")
    for figure in figures:
        say(args, str(figure))
    return EXIT_OK
