"""How bad input must look on the command line: exit 2 and one line, no traceback."""
from __future__ import annotations

from semlink.cli import main

__all__ = ["one_line_error"]


def one_line_error(argv: list[str], capsys) -> str:
    """Run ``semlink argv``; assert it exits 2 with exactly one ``semlink: error: ...`` line on
    stderr and no traceback; return that line. Warnings (``semlink: warning: ...`` lines, on
    what is valid but likely not meant, such as a preset run at another image size than it
    was trained on) may come before it: they are no errors."""
    assert main(argv) == 2
    err = "".join(line for line in capsys.readouterr().err.splitlines(keepends=True)
                  if not line.startswith("semlink: warning: "))
    assert err.count("\n") == 1 and err.startswith("semlink: error: ") and "Traceback" not in err
    return err
