"""semlink installs under one import name: the wheel holds the ``semlink`` package only, with
every module of the three source folders (simulator/ as ``semlink``, channels/ and modulation/ as
``semlink.channels`` and ``semlink.modulation``), and nothing generic is importable at top level."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The repository's source folders and the package each installs as (pyproject.toml's
#: ``package-dir``), written out here as the truth the wheel is checked against.
FOLDERS = {"simulator": "semlink", "channels": "semlink/channels",
           "modulation": "semlink/modulation"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from a copy of the tracked files: setuptools builds in the source tree and
    keeps its build/ folder, where a module deleted since an earlier build would linger."""
    source = tmp_path_factory.mktemp("source")
    for name in _tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(source)], check=True, capture_output=True, timeout=300)
    (path,) = out.glob("semlink-*.whl")
    return zipfile.ZipFile(path)


def _tracked(*folders: str) -> list[str]:
    """Files git tracks (in the working tree), below ``folders`` or all."""
    names = subprocess.run(["git", "ls-files", *folders], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    assert names, "git ls-files found nothing: run the suite in a git checkout"
    return [n for n in names if (ROOT / n).is_file()]


def _sources() -> set[str]:
    """Every file git tracks in the three folders, named as the wheel should name it."""
    return {f"{FOLDERS[name.split('/')[0]]}/{name.split('/', 1)[1]}"
            for name in _tracked(*FOLDERS)}


def test_the_wheel_holds_only_the_semlink_package(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert tops == {"semlink", "semlink-0.1.0.dist-info"}


def test_the_wheel_holds_every_module_and_data_file_of_the_source_folders(wheel):
    in_wheel = {n for n in wheel.namelist() if not n.startswith("semlink-0.1.0.dist-info")}
    assert _sources() - in_wheel == set()
    assert in_wheel - _sources() == set()
    entry_points = wheel.read("semlink-0.1.0.dist-info/entry_points.txt").decode()
    assert "semlink = semlink.cli:main" in entry_points


def test_the_installed_package_imports_from_any_folder_and_nothing_generic_does(tmp_path):
    """From a folder outside the repository: every semlink module imports (a module left with
    ``from channels...`` would fail here, while the repository's root is on the path in the
    rest of the suite), and ``channels``, ``modulation`` and ``simulator`` do not."""
    script = (
        "import importlib, pkgutil, semlink, semlink.channels, semlink.modulation\n"
        "names = [m.name for p in (semlink, semlink.channels, semlink.modulation)\n"
        "         for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "for name in ('channels', 'modulation', 'simulator'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    raise SystemExit(f'{name} imports at top level')\n"
        "print(len(names))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) > 70


def test_python_dash_m_semlink_is_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "semlink", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "semlink" in proc.stdout and "run" in proc.stdout
