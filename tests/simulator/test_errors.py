"""One-line error text: what semlink keeps of a library's (often multi-line) message."""
from __future__ import annotations

from semlink.errors import describe_error, first_line


def test_first_line_of_multi_line_empty_and_key_errors():
    assert first_line(ValueError("\n  bad value\nsecond line\n")) == "bad value"
    assert first_line(OSError()) == "OSError"  # no message: the class names it
    assert first_line(KeyError("column x")) == "column x"  # not "'column x'"
    assert first_line(KeyError()) == "KeyError"


def test_describe_error_names_the_class():
    err = EOFError("Ran out of input\nwhile reading")
    assert describe_error(err) == "EOFError: Ran out of input"
