"""docs/python-api.md runs: its ```python blocks, in order, in a fresh folder with the
repository's scenarios/ beside them, as a reader would paste them into one notebook."""
from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "python-api.md"

pytestmark = pytest.mark.usefixtures("one_thread")


def _blocks() -> list[tuple[int, str]]:
    """(line, code) of every ```python block of the page."""
    text = PAGE.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)]


def test_the_page_shows_every_entry_point():
    code = "\n".join(block for _, block in _blocks())
    for name in ("read_scenario", "updated", "run", "open_results", "rows", "array",
                 "transmit", "make_channel"):
        assert re.search(rf"\b{name}\(", code), f"docs/python-api.md runs no {name}(...)"


def test_the_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
    namespace: dict = {"__name__": "python_api_doc"}
    for line, code in _blocks():
        try:
            exec(compile(code, f"{PAGE}:{line}", "exec"), namespace)  # noqa: S102
        except Exception:
            pytest.fail(f"docs/python-api.md, the block at line {line} failed:\n"
                        f"{traceback.format_exc(limit=-3)}")
    out = capsys.readouterr().out
    assert "4/6 jpeg2000 at 15 dB" in out and "6/6 deepjscc at 15 dB" in out and "BER" in out
