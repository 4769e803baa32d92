"""The ``semlink`` command line: :func:`main` and :func:`build_parser`.

One module per group of commands, each holding its commands' parsers beside their handlers
(``add_parsers(sub)`` and the ``_cmd_*`` functions):

- :mod:`~semlink.cli.scenarios`: ``validate``, ``run``, ``merge``, ``info``
  (:mod:`~semlink.cli.progress`: what ``run`` shows while it runs);
- :mod:`~semlink.cli.results`: ``export``, ``compare``, ``plot``;
- :mod:`~semlink.cli.report`: ``report`` (the paper's figures and tables);
- :mod:`~semlink.cli.links`: ``transmit``, ``papr``;
- :mod:`~semlink.cli.models`: ``fid-stats``, ``bench``, ``weights``, ``train``;
- :mod:`~semlink.cli._shared`: what they share (argument types, ``-o/--output``, ``-q``/``-v``,
  output checks, consoles, error reporting).

Every sub-command takes ``-q/--quiet`` and ``-v/--verbose``; a command that writes a file or
folder names it with ``-o/--output``. ``NO_COLOR`` (https://no-color.org) turns every escape
sequence off.

Exit codes: 0 success, 1 an internal error (a bug: the traceback is printed), 2 bad input (a
scenario, image, weights directory or argument; one line per problem on stderr, no traceback),
130 interrupted, 141 the reader of the output left (a closed pipe).
Heavy modules are imported inside each command so that ``semlink --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from semlink import __version__
from semlink.cli import links, models, report, results, scenarios
from semlink.cli._shared import (EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_OK, Parser,
                                 input_error, is_out_of_memory, problems, report_time,
                                 silence_stdout)
from semlink.cli._shared import os_error_message as _os_error_message
from semlink.errors import InputError, first_line

__all__ = ["main", "build_parser"]

#: The groups of commands, in the order ``semlink --help`` lists them.
_GROUPS = (scenarios, results, report, links, models)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (each sets ``func``)."""
    parser = Parser(
        prog="semlink",
        description="Link-level simulator for semantic image communication (Stable Cascade) "
                    "and a classical JPEG2000 + LDPC + QAM link.",
        epilog="Run `semlink COMMAND --help` for a command's options and examples.")
    parser.add_argument("--version", action="version", version=f"semlink {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in _GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``semlink`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        code = int(args.func(args) or EXIT_OK)
    except InputError as err:
        return input_error(problems(err))
    except ValueError as err:
        if not getattr(args, "value_error_is_input", False):
            raise
        return input_error([first_line(err)])
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err):
            raise
        return input_error([f"{args.command}: out of memory ({first_line(err)[:160]}); run "
                            "smaller batches: a scenario's batch_size (images) or "
                            "monte_carlo.batch_bits (BER), bench --batch, or --size"])
    except BrokenPipeError:  # the reader left (``semlink info *.h5 | head``): stop quietly
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as err:  # an output that cannot be written: a full disk, a file as folder
        return input_error([_os_error_message(err)])
    except KeyboardInterrupt:
        print("semlink: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    report_time(args, started)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
