"""semlink from Python: read a scenario, run it, read its results, build a channel.

The functions a notebook needs, each a thin layer over the modules the ``semlink`` command uses
(:mod:`semlink.scenario`, :mod:`semlink.sweep`, :mod:`semlink.results`, :mod:`semlink.summary`,
:mod:`semlink.channel`), so that a run from Python and ``semlink run`` give the same results
file. ``import semlink`` re-exports them, and :func:`semlink.transmission.transmit`, lazily: it
loads none of torch, Sionna or pydantic until one is used. docs/python-api.md walks through them.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from semlink.results import ResultsStore
from semlink.scenario import (ChannelConfig, Scenario, ScenarioError, parse_scenario,
                              resolve_yaml, validate_yaml, yaml_text)

if TYPE_CHECKING:
    import pandas
    from sionna.phy import Block

__all__ = ["LoadedScenario", "Progress", "Results", "make_channel", "open_results",
           "read_scenario", "run"]

#: The pseudo-table of :class:`Results` holding :func:`semlink.summary.summarize`'s rows.
_SUMMARY = "summary"


@dataclasses.dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with the YAML text stored beside its results and the folder its
    relative paths (``images.source``, ``weights``, ``fid_reference``) start from.

    :param scenario: The validated scenario (a frozen pydantic model).
    :param text: Its YAML text: the file's as read, or written out by :meth:`updated`.
    :param base_dir: Absolute folder relative paths of the scenario start from: the file's folder,
        or the current directory for text.
    :param source: Names the scenario in error messages (its path, or ``<scenario>``).
    """

    scenario: Scenario
    text: str
    base_dir: Path
    source: str = "<scenario>"

    def updated(self, changes: Mapping[str, Any]) -> "LoadedScenario":
        """A copy with ``changes`` merged into the scenario and validated again, as in a file.

        Nested mappings merge key by key (``{"snr": {"points_db": [5]}}`` keeps the other SNR
        settings, ``{"links": {"qpsk": {"modulation": 16}}}`` changes one link's field); any
        other value replaces what was there; ``None`` removes a key, so that its default applies
        (``{"links": {"bpsk": None}}`` drops a link). Its :attr:`text` is the updated scenario
        as YAML (the original file's comments are not kept).

        :param changes: ``{field: value}`` with plain values (numbers, strings, lists, dicts).
        :raises ScenarioError: One line per problem of the updated scenario, named
            ``SOURCE (updated): yaml.path: message``.
        :raises TypeError: If ``changes`` is not a mapping or holds values YAML cannot write.

        >>> import semlink
        >>> loaded = semlink.read_scenario(text='''
        ... snr: {points_db: [0, 4]}
        ... links: {bpsk: {type: ber, modulation: 2}, qpsk: {type: ber, modulation: 4}}
        ... ''')
        >>> changed = loaded.updated({"snr": {"points_db": [8]}, "links": {"bpsk": None}})
        >>> list(changed.scenario.links), changed.scenario.snr.values_db()
        (['qpsk'], [8.0])
        >>> try:
        ...     loaded.updated({"snr": {"points_db": []}})
        ... except semlink.ScenarioError as err:
        ...     print(err)
        <scenario> (updated): snr: points_db must not be empty
        """
        if not isinstance(changes, Mapping):
            raise TypeError(f"`changes` must be a mapping of fields; got "
                            f"{type(changes).__name__}.")
        data = _merge(self.scenario.model_dump(mode="python", exclude_unset=True, by_alias=True),
                      changes, path="changes")
        text = yaml_text(data, name="changes")
        scenario = _validate(text, Scenario, source=f"{self.source} (updated)",
                             base_dir=self.base_dir)
        return dataclasses.replace(self, scenario=scenario, text=text)

    def overridden(self, overrides: Mapping[str, Any]) -> "LoadedScenario":
        """A copy with the values at dotted paths changed, as ``semlink run --set`` changes
        them (``{"snr.points_db": [5], "links.semantic.steps": 4}``): applied to :attr:`text`
        and validated again; relative paths in them start from the current directory. Its
        :attr:`text` is the effective scenario (:func:`semlink.scenario.resolve_yaml`).

        :raises ScenarioError: One line per problem, naming the override
            (``overrides['KEY']: message``).
        :raises TypeError: If ``overrides`` is not a mapping of dotted paths to plain values.

        >>> import semlink
        >>> loaded = semlink.read_scenario(text="snr: {points_db: [0]}\\nlinks: {b: {type: ber}}")
        >>> loaded.overridden({"snr.points_db": [3, 6]}).scenario.snr.values_db()
        [3.0, 6.0]
        """
        scenario, text = resolve_yaml(self.text, Scenario, source=self.source,
                                      context={"base_dir": self.base_dir}, overrides=overrides,
                                      overrides_dir=Path.cwd(), base_dir=self.base_dir)
        return dataclasses.replace(self, scenario=scenario, text=text)


def read_scenario(path: str | os.PathLike[str] | None = None, *, text: str | None = None,
                  base_dir: str | os.PathLike[str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> LoadedScenario:
    """Read and validate a scenario file, or scenario YAML text.

    :param path: The YAML file (give this or ``text``).
    :param text: Scenario YAML (give this or ``path``).
    :param base_dir: Folder relative paths of the scenario start from; default the file's
        folder, or the current directory for ``text``.
    :param overrides: Values to change, by dotted path, as ``semlink run --set KEY=VALUE``
        (``{"images.source": "~/photos", "snr.points_db": [1, 5]}``; a value the file writes
        ``???`` must be given here); relative paths in them start from the current directory
        (from ``base_dir`` when it is given). :attr:`LoadedScenario.text` is then the effective
        scenario.
    :raises ScenarioError: With one line per problem, ``FILE:LINE: yaml.path: message`` (an
        :class:`~semlink.errors.InputError`), also for a missing or unreadable file.
    :raises TypeError: If neither or both of ``path`` and ``text`` are given, or
        ``overrides`` is not a mapping of dotted paths to plain values.

    >>> import semlink
    >>> loaded = semlink.read_scenario(text='''
    ... name: ber
    ... snr: {points_db: [0, 4]}
    ... links: {qpsk: {type: ber, modulation: 4}}
    ... ''')
    >>> list(loaded.scenario.links), loaded.scenario.snr.values_db()
    (['qpsk'], [0.0, 4.0])
    >>> try:
    ...     semlink.read_scenario(text="snr: {points_db: [0]}\\nlinks: {}\\nbogus: 1\\n")
    ... except semlink.ScenarioError as err:
    ...     print("\\n".join(err.problems))
    <scenario>:2: links: Dictionary should have at least 1 item after validation, not 0
    <scenario>:3: bogus: unknown key; allowed: name, description, seed, ...
    """
    from semlink.scenario import load_scenario

    if (path is None) == (text is None):
        raise TypeError("read_scenario: give `path` (a scenario file) or `text` (its YAML), "
                        "not both or neither.")
    if path is not None:
        scenario, text = load_scenario(path, overrides=overrides,
                                       overrides_dir=Path.cwd() if base_dir is None else None)
        folder = Path(path).resolve().parent if base_dir is None else Path(base_dir).resolve()
        return LoadedScenario(scenario, text, folder, str(path))
    if not isinstance(text, str):
        raise TypeError(f"`text` must be str; got {type(text).__name__}.")
    folder = Path.cwd() if base_dir is None else Path(base_dir).resolve()
    if overrides is not None:
        scenario, text = resolve_yaml(text, Scenario, source="<scenario>",
                                      context={"base_dir": folder}, overrides=overrides)
        return LoadedScenario(scenario, text, folder)
    return LoadedScenario(parse_scenario(text, base_dir=folder), text, folder)


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a run stands after each task it finishes (what :func:`run` hands ``progress``).

    :param done: Tasks of the run in its results file, those a resumed run found there included.
    :param total: Tasks of the run.
    :param link: The finished task's link (``(reference)`` for the originals' Inception features).
    :param snr_db: Its SNR point, dB (NaN for the originals' features).
    :param images: Images it transmitted (0 for a BER point).
    :param seconds: How long it took, s.
    """

    done: int
    total: int
    link: str
    snr_db: float
    images: int
    seconds: float

    @property
    def fraction(self) -> float:
        """``done / total``, in [0, 1]."""
        return self.done / self.total if self.total else 1.0


def run(scenario: LoadedScenario | Scenario, *, output: str | os.PathLike[str] | None = None,
        progress: Callable[[Progress], None] | None = None, resume: bool = False,
        overwrite: bool = False, overrides: Mapping[str, Any] | None = None) -> "Results":
    """Run every task of a scenario not yet in its results file (``semlink run``), in this
    process, and open the file.

    :param scenario: From :func:`read_scenario`; or a :class:`~semlink.scenario.Scenario` (e.g.
        changed with ``model_copy(update=...)``), which is written out as YAML and validated
        again, its relative paths starting from the current directory.
    :param output: The results file (``.h5``); default the scenario's ``output``, relative to
        the current directory.
    :param progress: Called with a :class:`Progress` after each task.
    :param resume: Continue the tasks missing from an existing ``output``.
    :param overwrite: Replace an existing ``output``.
    :param overrides: Values to change first, by dotted path, as ``semlink run --set``
        (:meth:`LoadedScenario.overridden`); the results file records the effective scenario,
        and its hash covers them (``resume`` refuses a file started with other values).
    :raises InputError: As ``semlink run``: ``output`` exists (without ``resume`` or
        ``overwrite``) or holds another scenario's results, images or weights are missing, ...
    :raises ScenarioError: If a changed :class:`~semlink.scenario.Scenario` is not valid.

    >>> import tempfile, semlink
    >>> loaded = semlink.read_scenario(text='''
    ... device: cpu
    ... snr: {points_db: [0, 4]}
    ... links: {qpsk: {type: ber, modulation: 4}}
    ... monte_carlo: {min_bits: 2048, max_bits: 2048, batch_bits: 2048}
    ... ''')
    >>> folder = tempfile.TemporaryDirectory()
    >>> def show(p):
    ...     print(f"{p.done}/{p.total} {p.link} {p.snr_db:g} dB")
    >>> results = semlink.run(loaded, output=f"{folder.name}/ber.h5", progress=show)
    1/2 qpsk 0 dB
    2/2 qpsk 4 dB
    >>> [(row["metric"], row["snr_db"], row["count"]) for row in results.rows("summary")]
    [('ber', 0.0, 2048), ('ber', 4.0, 2048)]
    >>> folder.cleanup()
    """
    from semlink.sweep import run_scenario

    if isinstance(scenario, Scenario):
        text = yaml_text(scenario.model_dump(mode="python", exclude_unset=True, by_alias=True),
                         name="scenario")
        scenario = LoadedScenario(_validate(text, Scenario, source="<scenario>",
                                            base_dir=Path.cwd()), text, Path.cwd())
    elif not isinstance(scenario, LoadedScenario):
        raise TypeError(f"`scenario` must be a LoadedScenario (semlink.read_scenario) or a "
                        f"Scenario; got {type(scenario).__name__}.")
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be callable or None; got {type(progress).__name__}.")
    if overrides is not None:
        scenario = scenario.overridden(overrides)

    def on_task(task, point: dict[str, Any], done: int, total: int) -> None:
        progress(Progress(done=done, total=total, link=task.link, snr_db=task.snr_db,
                          images=len(task.image_indices), seconds=point["seconds"]))

    store = run_scenario(scenario.scenario, scenario.text, base_dir=scenario.base_dir,
                         resume=resume, overwrite=overwrite,
                         output=None if output is None else Path(output),
                         on_task=None if progress is None else on_task)
    return open_results(store.path)  # what the file holds, as a later session reads it


class Results:
    """A results file's tables as tidy rows: the summary and every table the run stored.

    Tables: ``summary`` (one row per link, SNR and metric, with a 95 % interval; columns
    :data:`~semlink.summary.SUMMARY_COLUMNS`), and the file's own (docs/results.md): ``points``
    (one row per task), ``images`` (one row per image and transmission), ``ber`` (bit and block
    error counts), ``predictability``, ``features``, ``fid``, ``kid``, as the run has them.

    :param store: The results file, read (:func:`open_results` makes one).
    """

    def __init__(self, store: ResultsStore) -> None:
        if not isinstance(store, ResultsStore):
            raise TypeError(f"`store` must be a ResultsStore; got {type(store).__name__}.")
        self.store = store

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def attrs(self) -> dict[str, Any]:
        """The file's attributes: ``scenario_text``, ``scenario_hash``, ``versions``, ``device``,
        ... (docs/results.md)."""
        return dict(self.store.attrs)

    @property
    def tables(self) -> list[str]:
        """``summary``, then the file's tables by name."""
        return [_SUMMARY, *self.store.table_names]

    def rows(self, table: str = _SUMMARY) -> list[dict[str, Any]]:
        """Table ``table`` as a list of dicts, one per row (a vector column's cells are NumPy
        arrays).

        :raises ValueError: If the file has no table ``table``.
        """
        self._check(table)
        if table == _SUMMARY:
            from semlink.summary import summarize

            return summarize(self.store)
        return self.store.rows(table)

    def array(self, table: str = _SUMMARY) -> np.ndarray:
        """Table ``table`` as a NumPy structured array, one field per column (text as ``<U``,
        a vector column as a subarray field, e.g. ``('feature', '<f4', (2048,))``).

        :raises ValueError: If the file has no table ``table``.
        """
        columns = self._columns(table)
        size = len(next(iter(columns.values()), ()))
        out = np.empty(size, dtype=[(name, values.dtype, values.shape[1:])
                                    for name, values in columns.items()])
        for name, values in columns.items():
            out[name] = values
        return out

    def to_pandas(self, table: str = _SUMMARY) -> "pandas.DataFrame":
        """Table ``table`` as a pandas DataFrame (a vector column holds one array per row).

        :raises ImportError: If pandas is not installed.
        :raises ValueError: If the file has no table ``table``.
        """
        try:
            import pandas
        except ImportError:
            raise ImportError("Results.to_pandas needs pandas, which is not installed: "
                              "pip install pandas") from None
        columns = self._columns(table)
        return pandas.DataFrame({name: list(values) if values.ndim == 2 else values
                                 for name, values in columns.items()})

    def _columns(self, table: str) -> dict[str, np.ndarray]:
        self._check(table)
        if table != _SUMMARY:
            return self.store.table(table)
        from semlink.summary import SUMMARY_COLUMNS

        rows = self.rows(_SUMMARY)
        return {name: np.asarray([row[name] for row in rows],
                                 dtype=_SUMMARY_DTYPES.get(name, np.float64))
                for name in SUMMARY_COLUMNS}

    def _check(self, table: str) -> None:
        if table not in self.tables:
            raise ValueError(f"`table` must be one of {', '.join(self.tables)} (in {self.path}); "
                             f"got {table!r}.")

    def __repr__(self) -> str:
        return (f"Results({str(self.path)!r}: {self.store.completed_points} points, tables "
                f"{', '.join(self.tables)})")


#: Column types of the summary that are not float64.
_SUMMARY_DTYPES = {"link": np.str_, "metric": np.str_, "count": np.int64, "errors": np.int64,
                   "failures": np.int64}


def open_results(path: str | os.PathLike[str]) -> Results:
    """Open a results file (``.h5``, from :func:`run` or ``semlink run``) to read its tables.

    :raises InputError: If the file is missing, a folder, not a semlink results file, or damaged.

    >>> import tempfile, semlink
    >>> loaded = semlink.read_scenario(text='''
    ... device: cpu
    ... snr: {points_db: [2]}
    ... links: {bpsk: {type: ber, modulation: 2, codeword_length: 256}}
    ... monte_carlo: {min_bits: 2048, max_bits: 2048, batch_bits: 2048}
    ... ''')
    >>> folder = tempfile.TemporaryDirectory()
    >>> _ = semlink.run(loaded, output=f"{folder.name}/ber.h5")
    >>> results = semlink.open_results(f"{folder.name}/ber.h5")
    >>> results.tables
    ['summary', 'ber', 'points']
    >>> ber = results.array("ber")
    >>> ber["link"].tolist(), ber["bits"].tolist()
    (['bpsk'], [2048])
    >>> row = results.rows()[0]
    >>> row["metric"], row["ci_low"] < row["value"] < row["ci_high"]
    ('ber', True)
    >>> semlink.open_results(f"{folder.name}/missing.h5")
    Traceback (most recent call last):
    ...
    semlink.errors.InputError: .../missing.h5: results file not found
    >>> folder.cleanup()
    """
    return Results(ResultsStore.open(path))


def make_channel(config: str | Mapping[str, Any] | ChannelConfig = "awgn", /, *,
                 seed: int = 0, device: str = "cpu", check_values: bool = True,
                 **fields: Any) -> "Block":
    """A scenario's channel, validated by the scenario schema and built as a sweep builds it
    (:func:`semlink.channel.build_channel`).

    Call it as ``x_hat, no_eff = channel(x, snr_db)``: ``x`` [batch, num_symbols], complex64,
    Es = 1 on ``device``; ``snr_db`` a float or [batch] tensor, Es/N0 in dB relative to each
    row's measured mean power; ``x_hat`` the equalised symbols, same shape; ``no_eff`` [batch,
    num_symbols], float32, the effective noise variance per symbol for the demapper.

    :param config: A channel ``type`` (``awgn``, ``rayleigh``, ``rician``, ``ofdm``) with its
        fields as keyword arguments, a mapping as a scenario's ``channel:`` section, or a
        validated channel configuration (``loaded.scenario.channel``).
    :param seed: int >= 0; the fading and noise come from
        ``torch.Generator(device).manual_seed(seed)``.
    :param device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
    :param check_values: Check per call that ``snr_db`` is not NaN or -inf (reads a value back
        from the device).
    :param fields: The channel's fields, with a ``type`` given as ``config``.
    :raises ScenarioError: One line per problem, ``channel.field: message``.
    :raises TypeError: For a ``config`` of another type, ``fields`` beside a mapping or
        configuration, or a ``seed`` that is not an int.

    >>> import torch, semlink
    >>> channel = semlink.make_channel("rayleigh", num_rx_antennas=2, seed=1)
    >>> x = torch.ones(2, 16, dtype=torch.complex64)  # [batch, num_symbols], Es = 1
    >>> x_hat, no_eff = channel(x, 10.0)
    >>> x_hat.shape, x_hat.dtype, no_eff.shape
    (torch.Size([2, 16]), torch.complex64, torch.Size([2, 16]))
    >>> try:
    ...     semlink.make_channel("rician", k_factor_db="6")
    ... except semlink.ScenarioError as err:
    ...     print(err)
    channel.k_factor_db: Input should be a valid number; got '6'
    """
    from semlink.channel import build_channel
    from semlink.devices import resolve_device
    from semlink.seeding import make_generator

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"`seed` must be an int >= 0; got {seed!r}.")
    if isinstance(config, str):
        config = {"type": config, **fields}
    elif fields:
        raise TypeError(f"make_channel: give the fields ({', '.join(fields)}) inside the "
                        "mapping, or with a channel type name.")
    if isinstance(config, Mapping):
        text = yaml_text({"channel": dict(config)}, name="config")
        config = _validate(text, _ChannelSection, source=None).channel
    elif not isinstance(config, BaseModel):
        raise TypeError(f"`config` must be a channel type name, a mapping or a channel "
                        f"configuration; got {type(config).__name__}.")
    device = resolve_device(device)
    return build_channel(config, generator=make_generator(seed, device), device=device,
                         check_values=check_values)


class _ChannelSection(BaseModel):
    """A scenario's ``channel:`` section alone, validated as in a file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    channel: ChannelConfig


def _merge(base: dict[str, Any], changes: Mapping[str, Any], *, path: str) -> dict[str, Any]:
    """``base`` with ``changes`` merged in: mappings key by key, None removes a key."""
    merged = dict(base)
    for key, value in changes.items():
        if not isinstance(key, str):
            raise TypeError(f"`{path}` keys must be str; got {key!r}.")
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, path=f"{path}.{key}")
        else:
            merged[key] = value
    return merged


_LOCATION = re.compile(r"^<api>:\d+: ")


def _validate(text: str, model: type, *, source: str | None,
              base_dir: Path | None = None) -> Any:
    """``text`` validated into ``model`` (:func:`semlink.scenario.validate_yaml`), each problem
    named by ``source`` instead of a line of the generated text (by its path alone if None);
    ``base_dir``: where a ``python`` link's module is looked for first."""
    context = None if base_dir is None else {"base_dir": base_dir}
    try:
        return validate_yaml(text, model, source="<api>", context=context)
    except ScenarioError as err:
        prefix = "" if source is None else f"{source}: "
        raise ScenarioError([prefix + _LOCATION.sub("", p) for p in err.problems]) from None
