"""``semlink report``: the paper's figures and tables from results files (:mod:`semlink.report`)."""
from __future__ import annotations

import argparse

from semlink.cli._shared import EXIT_OK, add_command, add_output, output_option, path, say

__all__ = ["add_parsers"]


def add_parsers(sub) -> None:
    """Add ``report`` to the sub-command parsers ``sub``."""
    p = add_command(sub, "report",
                    help="the paper's Figure 4, Figure 8 and Table 2 and a Markdown page of "
                         "means with 95%% intervals, from results files",
                    description="Lay results files out as the paper does: figure4.png/.pdf "
                                "(PSNR, SSIM, LPIPS, FID vs SNR, every link of the main files), "
                                "figure8.png/.pdf (the ablation files: scenario name "
                                "ablation-..., or --ablation), and report.md (the figures, the "
                                "means per link and SNR with 95% intervals, Table 2: "
                                "predictability beside the published values).",
                    examples=["report results/paper-awgn-512.h5 -o report/",
                              "report results/paper-awgn-512.h5 results/paper-predictability.h5 "
                              "results/ablation-no-finetune.h5 -o report/ --overwrite",
                              "report results/mine.h5 --ablation results/mine-no-finetune.h5 "
                              "-o report/"],
                    quiet="do not list the files written")
    p.add_argument("results", type=path, nargs="+",
                   help="results .h5 files (semlink run); one whose scenario name starts with "
                        "ablation- goes to Figure 8, one with a predictability table to Table 2, "
                        "the others to Figure 4")
    p.add_argument("--ablation", type=path, action="append", default=[], metavar="FILE",
                   help="a results file for Figure 8 whatever its scenario's name (repeatable)")
    add_output(p, metavar="DIR", required=True,
               help="folder for figure4/figure8 (.png, .pdf) and report.md")
    p.add_argument("--overwrite", action="store_true",
                   help="write into DIR even if it holds files (the report's are replaced)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from semlink.report import write_report

    # Every input and the folder are checked before anything is written.
    for written in write_report(args.results, args.output, ablation=args.ablation,
                                overwrite=args.overwrite, option=output_option(args)):
        say(args, str(written))
    return EXIT_OK
