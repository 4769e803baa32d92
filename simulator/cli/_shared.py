"""What the ``semlink`` commands share: exit codes, the parser class and the options every
sub-command has, argument types, checks of outputs before any work, consoles, and how errors
are reported (one line, no traceback).

Nothing heavy is imported at module level: ``semlink --help`` loads this module.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from semlink.errors import InputError, first_line

if TYPE_CHECKING:
    from rich.console import Console

    from semlink.plan import Shard

__all__ = ["EXIT_OK", "EXIT_BUG", "EXIT_INPUT", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE",
           "Parser", "LazyChoices", "add_command", "add_output", "output_option",
           "positive_int", "non_negative_int", "finite_float", "path", "image_side",
           "image_shape", "shape_text", "code_rate", "shard", "device_name", "override",
           "add_overrides", "snr_db",
           "guidance", "check_output", "check_image_suffix", "check_preset", "no_color",
           "make_console", "fmt", "say", "report_time", "os_error_message", "problems",
           "input_error", "is_out_of_memory", "silence_stdout"]

EXIT_OK, EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf(inity)?$", re.IGNORECASE)


# ---------------------------------------------------------------------------- parsers
class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other error of semlink; the usage stays
    behind ``--help``. Sub-command parsers are of this class too (argparse's default)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # argparse takes "-1e3" and "-inf" for options ("expected one argument"): they are
        # values here, as "-3" and "-2.5" already are (no option of semlink looks like them).
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class LazyChoices(Sequence):
    """argparse ``choices`` held by another module, read on first use: building the parser
    (``semlink --help``) then imports nothing heavy. ``LazyChoices("semlink.scenario",
    "CHANNEL_TYPES")`` are the schema's channel types.

    >>> "awgn" in LazyChoices("semlink.scenario", "CHANNEL_TYPES")
    True
    """

    def __init__(self, module: str, name: str) -> None:
        self._module, self._name = module, name

    def _values(self) -> tuple[str, ...]:
        import importlib

        return tuple(getattr(importlib.import_module(self._module), self._name))

    def __getitem__(self, index):
        return self._values()[index]

    def __len__(self) -> int:
        return len(self._values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())


def add_command(sub, name: str, *, help: str, examples: Sequence[str], quiet: str,
                verbose: str | None = None,
                description: str | None = None) -> argparse.ArgumentParser:
    """A sub-command's parser with ``-q/--quiet`` and ``-v/--verbose`` (what each does for
    this command: ``quiet``, ``verbose``) and an ``Examples:`` epilog of ``examples`` (command
    lines without the leading ``semlink``; tests parse them).

    ``-v`` always adds the command's wall time on stderr when it ends (:func:`report_time`).
    """
    lines = "\n".join(f"  semlink {example}" for example in examples)
    # The formatter keeps line breaks (for the examples): the description is wrapped here.
    parser = sub.add_parser(name, help=help, description=textwrap.fill(description or help, 79),
                            epilog=f"Examples:\n{lines}",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help=quiet)
    wall_time = "the command's wall time on stderr"
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help=f"{verbose}, and {wall_time}" if verbose else wall_time)
    parser.set_defaults(examples=tuple(examples))
    return parser


class _Output(argparse.Action):
    """Store an output path and which spelling gave it (``args.output_option``), so that a
    message names the option as typed: a hidden alias such as ``--out`` by itself, ``-o`` and
    ``--output`` as ``--output``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        typed = option_string or self.option_strings[-1]
        setattr(namespace, "output_option", typed if typed.startswith("--") else "--output")


def add_output(parser: argparse.ArgumentParser, *, help: str, metavar: str = "FILE",
               required: bool = False, aliases: Sequence[str] = ()) -> None:
    """``-o/--output``: the file or folder a command writes (``args.output``; None when not
    given). ``aliases`` are older spellings that keep working, hidden from ``--help``."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("-o", "--output", action=_Output, type=path, metavar=metavar, help=help)
    for alias in aliases:
        group.add_argument(alias, dest="output", action=_Output, type=path, metavar=metavar,
                           help=argparse.SUPPRESS)
    parser.set_defaults(output_option="--output")


def output_option(args: argparse.Namespace) -> str:
    """The spelling of ``-o/--output`` to name in a message: as typed (see :func:`add_output`)."""
    return getattr(args, "output_option", "--output")


# ---------------------------------------------------------------------------- argument types
def _number_type(parse: Callable[[str], float], accept: Callable[[float], bool],
                 what: str) -> Callable[[str], Any]:
    """An argparse type: ``parse(text)`` if it parses and ``accept`` holds, else the error
    ``must be WHAT; got 'TEXT'``."""
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
        return value
    return convert


positive_int = _number_type(int, lambda v: v >= 1, "an integer >= 1")
"""argparse type: an integer >= 1."""

non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
"""argparse type: an integer >= 0 (a seed)."""

finite_float = _number_type(float, math.isfinite, "a finite number")
"""argparse type: a finite number."""


def path(text: str) -> str:
    """argparse type: a file or folder name; an empty one would mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a file or folder name; got an empty one")
    return text


def image_side(text: str) -> int:
    """argparse type: an image side as a scenario's ``images.size`` takes it."""
    from pydantic import TypeAdapter

    from semlink.scenario import ImageSide

    try:
        return TypeAdapter(ImageSide).validate_python(int(text))
    except ValueError:  # pydantic's ValidationError is one
        raise argparse.ArgumentTypeError(f"must be an image side in pixels, 64..4096 and a "
                                         f"multiple of 32; got {text!r}") from None


def image_shape(text: str) -> tuple[int, int]:
    """argparse type: ``SIDE`` (a square) or ``WIDTHxHEIGHT``, each side as a scenario's
    ``images.size`` takes it; returns ``(height, width)``."""
    sides = text.lower().split("x")
    if len(sides) > 2:
        raise argparse.ArgumentTypeError(f"must be SIDE or WIDTHxHEIGHT in pixels; got {text!r}")
    width, height = (image_side(side) for side in (sides * 2)[:2])
    return height, width


def shape_text(shape: tuple[int, int]) -> str:
    """``(height, width)`` as --size takes it: ``256`` or ``768x512``."""
    height, width = shape
    return f"{width}" if height == width else f"{width}x{height}"


def _float_type(accept: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """argparse type: a float for which ``accept`` holds, else an error saying ``rule``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {rule}; got {text!r}")
        return value
    return parse


# An SNR may be +inf (no noise), never NaN or -inf; guidance is a finite scale >= 1.
snr_db = _float_type(lambda v: v > -math.inf, "a number of dB or inf")
guidance = _float_type(lambda v: math.isfinite(v) and v >= 1, "a finite number >= 1")


def code_rate(text: str) -> float:
    """argparse type: an LDPC code rate as a number or a fraction (``1/2``), as in scenarios."""
    from pydantic import TypeAdapter

    from semlink.scenario import CodeRate, parse_rate

    try:
        return TypeAdapter(CodeRate).validate_python(float(parse_rate(text)))
    except ValueError:  # not a number, or out of range (pydantic's ValidationError is one)
        raise argparse.ArgumentTypeError(f"must be a code rate in [1/5, 948/1024], a number or "
                                         f"a fraction like 1/2; got {text!r}") from None


def shard(text: str) -> "Shard":
    """argparse type for ``--shard K/N``."""
    from semlink.plan import Shard

    try:
        return Shard.parse(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("shard: ")) from None


def device_name(text: str) -> str:
    """argparse type: a device name a run accepts."""
    from semlink.devices import is_device_name

    if not is_device_name(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N; got {text!r}")
    return text


def override(text: str):
    """argparse type for ``--set KEY=VALUE``: a :class:`semlink.scenario.Override` (a dotted
    path into the YAML and a YAML value)."""
    from semlink.scenario import Override, OverrideError

    try:
        return Override.parse(text)
    except OverrideError as err:
        raise argparse.ArgumentTypeError(f"{text}: {err.reason}") from None


def add_overrides(parser: argparse.ArgumentParser, *, what: str = "scenario") -> None:
    """``--set KEY=VALUE`` (repeatable; ``args.overrides``, a list): change a value of the
    ``what`` file after loading it, the Hydra/OmegaConf way; ``--set ~KEY`` removes one."""
    parser.add_argument("--set", dest="overrides", type=override, action="append", default=[],
                        metavar="KEY=VALUE",
                        help=f"change a value of the {what} (repeatable): KEY is a dotted path "
                             "into the YAML (links.NAME.steps, phases.0.steps), VALUE a YAML "
                             "value (3, [1,5], null); a relative path in VALUE starts from the "
                             f"current directory; a {what} value written ??? must be given "
                             "so; ~KEY removes KEY (~links.NAME: a link)")


# ---------------------------------------------------------------------------- output checks
def check_output(target: str, *, option: str) -> None:
    """Refuse an output file that cannot be written before any work is done (a folder, a
    read-only or full place): creates its folder and a temporary file there, then removes it."""
    import tempfile

    file = Path(target)
    if file.is_dir():
        raise InputError(f"{option}: {target} is a folder; give a file name")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=file.parent, prefix=f".{file.name}."):
            pass
    except OSError as err:
        raise InputError(f"{option}: {os_error_message(err)}") from None


def check_image_suffix(target: str, *, option: str) -> None:
    """Refuse an output name Pillow cannot write before any work is done."""
    from semlink.images import writable_format

    try:
        writable_format(target)
    except ValueError:
        raise InputError(f"{option}: cannot write an image named {target!r}; use a suffix such "
                         "as .png") from None
    check_output(target, option=option)


def check_preset(name: str) -> None:
    """Refuse an unknown ``--preset`` with the names allowed."""
    from semlink.models.presets import PRESET_NAMES

    if name not in PRESET_NAMES:
        raise InputError(f"--preset: unknown preset {name!r}; allowed: " + ", ".join(PRESET_NAMES))


# ---------------------------------------------------------------------------- output
def no_color() -> bool:
    """True when ``NO_COLOR`` is set and not empty (https://no-color.org): no ANSI escapes in
    any output then, whatever forces colour (``FORCE_COLOR``, ``TTY_COMPATIBLE``)."""
    return bool(os.environ.get("NO_COLOR"))


def make_console(*, stderr: bool = False, quiet: bool = False) -> "Console":
    """A rich console on stdout or stderr. A log file or pipe gets whole tables, not ones cut
    to rich's default 80 columns; under ``NO_COLOR`` no escape sequence at all is written
    (no colour, no bold, no cursor control: callers draw no live display then)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    plain = no_color()
    return Console(stderr=stderr, quiet=quiet, width=None if stream.isatty() else 160,
                   no_color=plain or None, color_system=None if plain else "auto",
                   force_terminal=False if plain else None)


def fmt(value: float) -> str:
    """A metric value in a table: 4 significant digits, small ones in scientific notation."""
    return f"{value:.2e}" if 0 < abs(value) < 1e-2 else f"{value:.4g}"


def say(args: argparse.Namespace, text: str) -> None:
    """Print a summary line on stdout unless ``-q``."""
    if not args.quiet:
        print(text)


def report_time(args: argparse.Namespace, started: float) -> None:
    """With ``-v``: the command's wall time on stderr."""
    if getattr(args, "verbose", False):
        print(f"semlink {args.command}: {time.perf_counter() - started:.2f} s", file=sys.stderr)


# ---------------------------------------------------------------------------- errors
def os_error_message(err: OSError) -> str:
    """One line naming the path an OSError is about and what is wrong with it."""
    if err.filename is None:
        return str(err)
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        # mkdir(parents=True) met a file where a folder had to be
        return f"{err.filename}: a file stands where a folder is needed in this path"
    return f"{err.filename}: {err.strerror or err}"


def problems(err: InputError) -> list[str]:
    """The lines to print for bad input: one per problem of a scenario file, else one."""
    return list(getattr(err, "problems", None) or [first_line(err)])


def input_error(lines: list[str]) -> int:
    """Print bad input as ``semlink: error: ...`` lines (no traceback); the exit code."""
    for line in lines:
        print(f"semlink: error: {line}", file=sys.stderr)
    return EXIT_INPUT


def is_out_of_memory(err: BaseException) -> bool:
    """True for torch's CUDA out-of-memory error and for a CPU allocation that failed."""
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return (isinstance(err, MemoryError) or (oom is not None and isinstance(err, oom))
            or "can't allocate memory" in str(err) or "out of memory" in str(err))


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (captured by a test)
        pass
    finally:
        os.close(devnull)
