"""The commands agree: every sub-command takes -q/-v and shows examples that parse, every one
that writes names its output -o/--output (older spellings still parse, hidden), and building
the parser (``semlink --help``) imports nothing heavy."""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

import pytest

from semlink.cli import build_parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


COMMANDS = _commands()
#: What -o/--output names for each command that writes (metavar), and its hidden older names.
WRITERS = {"run": ("FILE", []), "merge": ("FILE", []), "train": ("DIR", []),
           "plot": ("DIR", ["--out"]), "transmit": ("FILE", ["--out"]),
           "fid-stats": ("FILE", ["--out"]), "export": ("DIR", ["--csv"]),
           "compare": ("FILE", ["--csv"]), "papr": ("FILE", ["--csv"]),
           "bench": ("FILE", ["--json"]), "report": ("DIR", [])}


def test_the_commands_are_the_documented_ones():
    assert set(COMMANDS) == {"validate", "run", "merge", "info", "export", "compare", "plot",
                             "report", "transmit", "papr", "fid-stats", "bench", "weights",
                             "train"}
    assert set(WRITERS) <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_quiet_or_verbose_on_request(name, capsys):
    options = {o for a in COMMANDS[name]._actions for o in a.option_strings}
    assert {"-q", "--quiet", "-v", "--verbose"} <= options
    example = shlex.split(COMMANDS[name].get_default("examples")[0])
    assert build_parser().parse_args(example + ["-q"]).quiet
    assert build_parser().parse_args(example + ["-v"]).verbose
    with pytest.raises(SystemExit):  # one or the other
        build_parser().parse_args(example + ["-q", "-v"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_shows_examples_that_parse(name, capsys):
    examples = COMMANDS[name].get_default("examples")
    assert 1 <= len(examples) <= 3
    text = COMMANDS[name].format_help()
    assert "\nExamples:\n" in text
    for example in examples:
        assert f"  semlink {example}\n" in text  # one per line, as written
        argv = shlex.split(example)
        assert argv[0] == name
        build_parser().parse_args(argv)  # exits (2) if the example is wrong


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_command_that_writes_names_it_dash_o(name, tmp_path):
    metavar, aliases = WRITERS[name]
    (action,) = [a for a in COMMANDS[name]._actions if "--output" in a.option_strings]
    assert action.option_strings == ["-o", "--output"] and action.metavar == metavar
    for spelling in ["-o", "--output", *aliases]:
        argv = _without_output(COMMANDS[name].get_default("examples")) + [spelling, "x"]
        args = build_parser().parse_args(argv)
        assert args.output == "x"
        assert args.output_option == (spelling if spelling in aliases else "--output")
    help_text = COMMANDS[name].format_help()
    for alias in aliases:
        assert f"{alias} " not in help_text  # hidden: -o/--output is the name shown


def _without_output(examples) -> list[str]:
    """The first example's arguments without its -o VALUE."""
    argv = shlex.split(examples[0])
    keep, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-o", "--output"):
            skip = True
        else:
            keep.append(arg)
    return keep


def test_an_output_given_twice_is_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["plot", "r.h5", "-o", "a", "--out", "b"])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["plot", "r.h5"])
    assert "one of the arguments -o/--output is required" in capsys.readouterr().err


def test_transmit_offers_the_channel_types_of_the_schema():
    from semlink.scenario import CHANNEL_TYPES

    (action,) = [a for a in COMMANDS["transmit"]._actions if "--channel" in a.option_strings]
    assert tuple(action.choices) == CHANNEL_TYPES
    assert f"one of {', '.join(CHANNEL_TYPES)}:" in " ".join(
        COMMANDS["transmit"].format_help().split())


@pytest.mark.parametrize("module", ["semlink.cli", "semlink"])
def test_help_imports_nothing_heavy(module):
    code = ("import sys, contextlib, io\n"
            f"from {module}.__main__ import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n"
            "        main(['--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "assert 'transmit' in out.getvalue()\n"
            "heavy = [m for m in ('torch', 'sionna', 'pydantic', 'numpy', 'h5py', 'rich') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_python_dash_m_semlink_dot_cli_is_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "semlink.cli", "transmit", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Examples:\n  semlink transmit" in proc.stdout


def test_verbose_adds_the_wall_time(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("snr: {points_db: [0]}\nlinks: {q: {type: ber}}\n")
    assert main(["validate", "-v", str(tmp_path / "s.yaml")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{tmp_path / 's.yaml'}: ok: 1 link(s): q (ber)")
    assert '"links":{"q":{"type":"ber"' in captured.out  # the scenario as it will run
    assert captured.err.startswith("semlink validate: ") and captured.err.endswith(" s\n")
    assert main(["validate", "-q", str(tmp_path / "s.yaml")]) == 0
    assert capsys.readouterr() == ("", "")
