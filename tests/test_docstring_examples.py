"""The examples in the docstrings (``>>>``) run and print what they show, module by module."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import semlink
import semlink.channels
import semlink.modulation


def _modules() -> list[str]:
    # semlink.channels and semlink.modulation live in folders of their own (channels/,
    # modulation/), beside semlink's (simulator/): a walk of semlink's folder does not reach them.
    names = []
    for package in (semlink, semlink.channels, semlink.modulation):
        names.append(package.__name__)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return sorted(set(names))


MODULES = _modules()


def test_the_examples_of_the_core_modules_are_collected():
    """A guard against an empty walk (the test below would then pass vacuously)."""
    assert {"semlink.channels.doppler", "semlink.metrics.kid",
            "semlink.modulation.qam"} <= set(MODULES)
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for name in MODULES
                   for t in finder.find(importlib.import_module(name)))
    assert examples >= 40


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
