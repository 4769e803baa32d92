"""The ``semlink`` command line.

Exit codes: 0 success, 1 an internal error (a bug: the traceback is printed), 2 bad input (a scenario,
image, weights directory or argument; one line per problem on stderr, no traceback), 130 interrupted.
Heavy modules are imported inside each command so that ``semlink --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from simulator import __version__
from simulator.errors import InputError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _cmd_validate(args: argparse.Namespace) -> int:
    from simulator.scenario import load_scenario

    for path in args.scenario:
        scenario, _ = load_scenario(path)
        kinds = ", ".join(f"{name} ({link.type})" for name, link in scenario.links.items())
        snrs = scenario.snr.values_db()
        print(f"{path}: ok: {len(scenario.links)} link(s): {kinds}; channel {scenario.channel.type}; "
              f"{len(snrs)} SNR point(s) {snrs[0]:g}..{snrs[-1]:g} dB ({scenario.snr.kind})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (each sets ``func``)."""
    parser = argparse.ArgumentParser(
        prog="semlink",
        description="Link-level simulator for semantic image communication (Stable Cascade) "
                    "and a classical JPEG2000 + LDPC + QAM link.")
    parser.add_argument("--version", action="version", version=f"semlink {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check scenario files without running them")
    p.add_argument("scenario", nargs="+", help="scenario YAML file(s)")
    p.set_defaults(func=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``semlink`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except InputError as err:
        for line in str(err).splitlines() or [type(err).__name__]:
            print(f"semlink: error: {line}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("semlink: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
