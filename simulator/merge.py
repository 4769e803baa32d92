"""Merging results files of one scenario: the shards of a sweep split over machines or GPUs.

``semlink run SCENARIO --shard K/N`` runs every N-th task of a scenario into its own results file
(:class:`semlink.plan.Shard`); :func:`merge_results` puts such files back together into one
results file that is the same as a run of the whole scenario on one machine (rows in another
order, timings aside), computes FID and KID once every task is present, and otherwise leaves a
file that ``semlink run SCENARIO --resume -o MERGED`` completes.
"""
from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path

from semlink.errors import InputError
from semlink.results import ResultsStore, reconstructions_dir

__all__ = ["MergeReport", "merge_results"]


@dataclasses.dataclass(frozen=True)
class MergeReport:
    """What :func:`merge_results` wrote.

    :param store: The merged results.
    :param planned: Points of the whole run (``None`` for files from before semlink stored them).
    :param missing: Planned points that no input holds, in plan order.
    """

    store: ResultsStore
    planned: int | None
    missing: tuple[str, ...]


def merge_results(inputs: Sequence[str | Path], output: str | Path, *,
                  overwrite: bool = False) -> MergeReport:
    """Merge the results files ``inputs`` of one scenario into ``output``.

    The inputs must hold results of the same scenario (same scenario hash, hence the same semlink
    version) computed on the same device type, and no point twice. Their reconstructions (PNG
    folders beside them) are copied beside ``output``. With every planned point present and
    ``fid`` or ``kid`` among the scenario's metrics, their points are computed from the merged
    features.

    :raises InputError: If an input is missing or not a results file, the inputs disagree or
        overlap, or ``output`` exists (without ``overwrite``) or is one of the inputs.
    """
    from semlink.scenario import parse_scenario
    from semlink.sweep import add_set_points
    from semlink.tasks import wants_features

    paths = [Path(p) for p in inputs]
    output = Path(output)
    if not paths:
        raise InputError("merge: give the results files to merge")
    resolved = [p.resolve() for p in paths]
    twice = next((p for i, p in enumerate(paths) if resolved[i] in resolved[:i]), None)
    if twice is not None:
        raise InputError(f"{twice}: given twice")
    if output.resolve() in resolved:
        raise InputError(f"{output}: is one of the inputs; write the merged results elsewhere")
    ResultsStore.check_path(output)  # a folder is no results file to replace
    if output.exists() and not overwrite:
        raise InputError(f"{output}: results file exists; pass --overwrite to replace it")
    stores = [ResultsStore.open(p) for p in paths]
    first = stores[0]
    for store in stores[1:]:
        _check_same_run(first, store)
    _check_disjoint(stores)
    merged = ResultsStore(output, _merged_attrs(stores))
    for store in stores:
        merged.extend(store)
    planned = first.attrs.get("planned_points")  # None: a file from before semlink kept it
    missing = tuple(p for p in planned if not merged.has(p)) if planned is not None else ()
    scenario = parse_scenario(first.attrs["scenario_text"], source=str(first.path))
    if planned is not None and not missing and wants_features(scenario):
        add_set_points(scenario, merged)  # writes the file after each point
    merged.save()
    for store in stores:
        _copy_reconstructions(store.path, output)
    return MergeReport(merged, None if planned is None else len(planned), missing)


def _check_same_run(first: ResultsStore, store: ResultsStore) -> None:
    if store.attrs.get("scenario_hash") != first.attrs.get("scenario_hash"):
        raise InputError(f"{store.path}: holds results of a different scenario than {first.path} "
                         f"(hash {str(store.attrs.get('scenario_hash'))[:12]} vs "
                         f"{str(first.attrs.get('scenario_hash'))[:12]}: another scenario text "
                         "or semlink version)")
    if store.attrs.get("device_type") != first.attrs.get("device_type"):
        raise InputError(f"{store.path}: was computed on {store.attrs.get('device_type')}, "
                         f"{first.path} on {first.attrs.get('device_type')}; results of different "
                         "numerics (CPU float32, CUDA bfloat16) are not merged")


def _check_disjoint(stores: list[ResultsStore]) -> None:
    """Name both files of the first point two inputs hold (``extend`` would only say that it is
    stored twice)."""
    owner: dict[str, Path] = {}
    for store in stores:
        for point_id in map(str, store.table("points").get("point_id", [])):
            if point_id in owner:
                raise InputError(f"{store.path}: point {point_id} is also in {owner[point_id]}; "
                                 "the inputs overlap (the same shard twice?)")
            owner[point_id] = store.path


def _merged_attrs(stores: list[ResultsStore]) -> dict:
    """The first input's attributes, less its shard, with every input's origin recorded."""
    attrs = {k: v for k, v in stores[0].attrs.items() if k != "shard"}
    attrs["device"] = "; ".join(dict.fromkeys(str(s.attrs.get("device", "")) for s in stores))
    attrs["created_utc"] = min(str(s.attrs.get("created_utc", "")) for s in stores)
    attrs["merged_from"] = [{"file": str(s.path), "shard": s.attrs.get("shard", ""),
                             "device": s.attrs.get("device", ""),
                             "versions": s.attrs.get("versions", {})} for s in stores]
    return attrs


def _copy_reconstructions(source: Path, output: Path) -> None:
    folder = reconstructions_dir(source)
    if folder.is_dir():
        shutil.copytree(folder, reconstructions_dir(output), dirs_exist_ok=True)
