"""Every `semlink` command shown in the README and the docs parses: the subcommand and options
exist and take the values shown (a renamed option would otherwise leave the docs wrong)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from semlink.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[tuple[str, str]]:
    """(file, command line) of every line in a fenced block that starts with `semlink `,
    backslash continuations joined and the trailing comment dropped."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        for block in re.findall(r"```(?:sh|bash)?\n(.*?)```", text, flags=re.S):
            for line in block.splitlines():
                line = line.strip()
                if line.startswith("semlink "):
                    found.append((path.name, line.split("  #")[0].split(" # ")[0].strip()))
    return found


COMMANDS = _commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 20
    assert {c.split()[1] for _, c in COMMANDS} >= {"run", "transmit", "compare", "merge", "info"}


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}:{c[:40]}" for w, c in COMMANDS])
def test_command_parses(where, command, capsys):
    argv = [a for a in shlex.split(command)[1:] if a != "&"]
    argv = [a.replace("$((k + 1))", "1").replace("$k", "0") for a in argv]
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `{command}` does not parse: {capsys.readouterr().err.strip()}")
