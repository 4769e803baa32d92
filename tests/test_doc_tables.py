"""The table scripts of docs/tables/ stay runnable and findable: docs/tables/regenerate.py lists
every one, each page it names quotes the script by its path, and every script loads (its
imports and set-up; no measurement, they take minutes)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLES_DIR = ROOT / "docs" / "tables"


def _regenerate():
    spec = importlib.util.spec_from_file_location("docs_tables_regenerate",
                                                  TABLES_DIR / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


TABLES = _regenerate().TABLES


def test_every_script_is_listed():
    scripts = {t.script for t in TABLES.values() if t.script}
    on_disk = {p.name for p in TABLES_DIR.glob("*_table.py") if not p.name.startswith("_")}
    assert scripts == on_disk


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_page_names_the_script(name):
    table = TABLES[name]
    text = (ROOT / table.page).read_text()
    if table.script:
        assert f"docs/tables/{table.script}" in text
    else:  # the training logs
        assert "docs/tables/training-small-log.csv" in text


def test_every_script_loads():
    done = subprocess.run([sys.executable, str(TABLES_DIR / "regenerate.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" loads") == sum(1 for t in TABLES.values() if t.script)
