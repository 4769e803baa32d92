"""The error raised for bad user input: scenarios, images, weights, codestreams.

The CLI turns an :class:`InputError` into one line on stderr and exit code 2; every other
exception is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["InputError", "first_line"]


class InputError(ValueError):
    """A problem with something the user supplied (a file, a field, a directory).

    The message is one line that names the file and/or field and says what is allowed.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none): what a
    one-line error keeps of a library's multi-line message."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
