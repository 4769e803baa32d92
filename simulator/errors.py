"""The error raised for bad user input: scenarios, images, weights, codestreams.

The CLI turns an :class:`InputError` into one line on stderr and exit code 2; every other
exception is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["InputError", "first_line", "describe_error"]


class InputError(ValueError):
    """A problem with something the user supplied (a file, a field, a directory).

    The message is one line that names the file and/or field and says what is allowed.
    """


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none): what a
    one-line error keeps of a library's multi-line message. A KeyError's message is its key's
    text, not the quoted repr ``str()`` gives."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return (text.strip().splitlines() or [type(err).__name__])[0]


def describe_error(err: BaseException) -> str:
    """``ClassName: first line of the message``: how a library's failure is quoted inside a
    one-line error (``cannot read image (OSError: ...)``)."""
    return f"{type(err).__name__}: {first_line(err)}"
