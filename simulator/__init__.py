"""semlink's simulator: links (semantic, classical), models and weights, codecs, metrics,
scenarios, sweeps, results, plots and the command line.

The entry points for Python (docs/python-api.md) are names of this package:
:func:`read_scenario`, :func:`run`, :func:`open_results`, :func:`transmit` and
:func:`make_channel` (from :mod:`semlink.api` and :mod:`semlink.transmission`). They are loaded
on first use: ``import semlink`` imports nothing heavy (no torch, Sionna or pydantic), so that
``semlink --help`` stays fast. Everything else is imported from its module
(``from semlink.metrics import psnr_db``).
"""
import importlib

__version__ = "0.1.0"

#: Lazily loaded names of this package, by the module that defines them.
_LAZY = {
    "LoadedScenario": "semlink.api",
    "Progress": "semlink.api",
    "Results": "semlink.api",
    "make_channel": "semlink.api",
    "open_results": "semlink.api",
    "read_scenario": "semlink.api",
    "run": "semlink.api",
    "transmit": "semlink.transmission",
    "InputError": "semlink.errors",
    "ScenarioError": "semlink.scenario",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'semlink' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
