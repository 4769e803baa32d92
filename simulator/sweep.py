"""Sweep runner: the tasks a scenario is planned into (:mod:`semlink.plan`) run by an executor
(:mod:`semlink.executors`), their results appended to one file.

A task's result depends only on the scenario and its coordinates (seeds come from
:func:`semlink.seeding.derive_seed`): tasks can run in any order, be resumed after a crash, be
split into shards run on other machines or GPUs (:class:`semlink.plan.Shard`, merged by
:func:`semlink.merge.merge_results`), or be handed to the workers of a Ray cluster
(:class:`semlink.executors.RayExecutor`), and give the same numbers.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from semlink.devices import describe_device, package_versions
from semlink.errors import InputError
from semlink.executors import LocalExecutor, RayExecutor
from semlink.plan import REFERENCE, Shard, Task, plan_tasks
from semlink.results import ResultsStore, reconstructions_dir
from semlink.scenario import Scenario, scenario_hash
from semlink.stage_times import format_stage_table, stage_totals
from semlink.tasks import wants_features

if TYPE_CHECKING:
    from semlink.metrics.fid import FidStatistics

__all__ = ["open_store", "run_scenario", "add_set_points", "channel_words", "describe_results",
           "set_points_label"]


def open_store(scenario: Scenario, text: str, output: Path, *, device: str, resume: bool,
               overwrite: bool, planned: list[str] | None = None,
               shard: Shard | None = None, device_name: str | None = None,
               fid_reference: Path | None = None) -> ResultsStore:
    """The results store for a run: new, resumed, or refused.

    :param planned: Point ids of the whole run's tasks (every shard's), stored so that merged
        shards know whether anything is missing.
    :param shard: The shard the file holds; ``None`` for the whole run.
    :param device_name: What ran the tasks, as stored; default the name of ``device`` here.
    :param fid_reference: Statistics file FID is measured against (None: the originals).
    :raises InputError: If ``output`` exists and neither ``resume`` nor ``overwrite`` is given,
        or it holds results of a different scenario (changed content), of another device type
        (CPU float32 vs CUDA bfloat16 models) or of another shard, and ``overwrite`` is not given;
        or if ``output`` is a folder.
    """
    ResultsStore.check_path(output)  # before "exists": a folder is no results file to resume
    digest = scenario_hash(scenario)
    device_type = torch.device(device).type
    if output.exists() and not overwrite:
        if not resume:
            raise InputError(f"{output}: results file exists; pass --resume to continue it or "
                             "--overwrite to start again")
        store = ResultsStore.open(output)
        if store.attrs.get("scenario_hash") != digest:
            raise InputError(f"{output}: holds results of a different scenario (hash "
                             f"{str(store.attrs.get('scenario_hash'))[:12]} vs {digest[:12]}: "
                             "another scenario file, other --set values or another semlink "
                             "version); refusing to mix them: resume with the --set it was "
                             "started with (semlink info shows its scenario), or use another "
                             "output or --overwrite")
        stored_type = store.attrs.get("device_type", device_type)
        if stored_type != device_type:
            raise InputError(f"{output}: was computed on {stored_type}; resuming on "
                             f"{device_type} would mix results of different numerics: resume "
                             f"with --device {stored_type}, or use another output or --overwrite")
        stored_shard = store.attrs.get("shard", "")
        if stored_shard != (str(shard) if shard else ""):
            raise InputError(f"{output}: holds {_shard_words(stored_shard)}; resuming it as "
                             f"{_shard_words(shard)} would run other tasks into it: resume with "
                             f"{'--shard ' + stored_shard if stored_shard else 'no --shard'}")
        return store
    attrs = {
        "scenario_text": text, "scenario_hash": digest, "scenario_name": scenario.name,
        "versions": package_versions(), "device": device_name or describe_device(device),
        "device_type": device_type, "fid_reference": str(fid_reference or ""),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if planned is not None:
        attrs["planned_points"] = planned
    trained = scenario.trained_image_sizes()
    if trained:  # read with the scenario's image size: was a preset run at its own size?
        attrs["preset_training_sizes"] = trained
    if shard is not None:
        attrs["shard"] = str(shard)
    store = ResultsStore(output, attrs)
    store.save()
    return store


def describe_results(store: ResultsStore) -> str:
    """A few lines on a results file: its scenario, shard, progress against the run's plan,
    device, versions and times, and per link its tasks' seconds per stage
    (:func:`semlink.stage_times.format_stage_table`; none in files written before them)
    (``semlink info``)."""
    attrs = store.attrs
    planned = attrs.get("planned_points")
    shard = attrs.get("shard", "")
    head = (f"{store.path}: scenario {attrs.get('scenario_name', '?')!r} "
            f"(hash {str(attrs.get('scenario_hash', ''))[:12]})")
    if shard:
        head += f", shard {shard}"
    if "merged_from" in attrs:
        count = len(attrs["merged_from"])
        head += f", merged from {count} file{'s' if count > 1 else ''}"
    if planned is None:
        progress = f"{store.completed_points} points (the run's plan was not recorded)"
    else:
        tasks = Shard.parse(shard).select(planned) if shard else planned
        done = sum(store.has(p) for p in tasks)
        sets = sum(store.has(p) for p in store.table("points").get("point_id", [])
                   if str(p).endswith("/fid"))
        progress = (f"{done} of {len(tasks)} tasks done"
                    + (" (this shard's)" if shard else "")
                    + (f", {sets} {set_points_label(store)} points" if sets else ""))
    versions = attrs.get("versions", {})
    return "\n".join([
        head, *_scenario_lines(attrs.get("scenario_text", "")), f"  {progress}",
        f"  device: {attrs.get('device', '?')}",
        "  versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"  created {attrs.get('created_utc', '?')}, updated {attrs.get('updated_utc', '?')}",
        *format_stage_table(stage_totals(store.table("points")))])


def set_points_label(store: ResultsStore) -> str:
    """What the set points (``LINK/snrI/fid``) of ``store`` hold: ``FID``, ``KID`` or
    ``FID/KID``."""
    return "/".join(m.upper() for m in ("fid", "kid") if m in store.table_names) or "FID"


def _tracking_words(tracking: dict) -> str:
    """A phase tracker's section in words: pilot blocks or PT-RS."""
    if "subcarrier_stride" in tracking:
        return (f"PT-RS every {tracking['subcarrier_stride']} subcarriers"
                + (", interference estimated" if tracking.get("estimate_interference") else ""))
    length = tracking.get("pilot_length", 1)
    pilots = "pilots" if length == 1 else f"blocks of {length} pilots"
    return (f"phase tracked on {pilots} every {tracking['pilot_spacing']} symbols"
            + (", frequency offset estimated" if tracking.get("estimate_frequency_offset")
               else "")
            + (", phase noise estimated" if tracking.get("estimate_phase_noise") else ""))


#: Channel settings `semlink info` names when a scenario sets them other than to their
#: default: (field, default, words).
_CHANNEL_WORDS = (("model", None, "{}"), ("k_factor_db", None, "K {:g} dB"),
                  ("domain", "frequency", "{} domain"), ("num_tx_antennas", 1, "{} tx"),
                  ("num_rx_antennas", 1, "{} rx"), ("normalized_doppler", None, "Doppler {:g}"),
                  ("csi_error_var", 0, "CSI error {:g}"), ("interleave", False, "interleaved"),
                  ("phase_noise_linewidth", None, "phase noise {:g}"),
                  ("phase_noise_linewidth_hz", None, "phase noise {:g} Hz"),
                  ("frequency_offset", None, "frequency offset {:g}"),
                  ("frequency_offset_hz", None, "frequency offset {:g} Hz"),
                  ("estimate_frequency_offset", False, "offset estimated on the prefixes"),
                  ("phase_tracking", None, _tracking_words))


def channel_words(channel: dict) -> str:
    """`` (tdl-c, time domain, interleaved)``: the channel settings a scenario gives, or ""
    (`semlink info` on a stored scenario's text, `semlink transmit` on its channel)."""
    words = []
    for field, default, template in _CHANNEL_WORDS:
        if channel.get(field) not in (None, default):
            try:
                words.append(template(channel[field]) if callable(template)
                             else template.format(channel[field]))
            except (KeyError, TypeError, IndexError, ValueError):  # another version's layout
                words.append(field.replace("_", " "))
    return f" ({', '.join(words)})" if words else ""


def _scenario_lines(text: str) -> list[str]:
    """What a results file's scenario compares, in a line (none if its text is unreadable:
    ``semlink info`` reads files of any version without validating them)."""
    import yaml

    try:
        scenario = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(scenario, dict):
        return []
    parts = []
    links = scenario.get("links")
    if isinstance(links, dict):
        parts.append("links " + ", ".join(
            f"{name} ({cfg.get('type', '?') if isinstance(cfg, dict) else '?'})"
            for name, cfg in links.items()))
    channel = scenario.get("channel") or {"type": "awgn"}
    if isinstance(channel, dict):
        parts.append(f"channel {channel.get('type', '?')}{channel_words(channel)}"
                     + (" behind an amplifier" if channel.get("amplifier") else ""))
    images = scenario.get("images")
    if isinstance(images, dict):
        size = (f"{images['width']}x{images['height']}" if "width" in images
                else f"{images.get('size', 256)}")
        parts.append(f"images {images.get('source', 'sample')} at {size} px")
    return [f"  {'; '.join(parts)}"] if parts else []


def _shard_words(shard: Shard | str | None) -> str:
    return f"shard {shard}" if shard else "the whole run"


def run_scenario(scenario: Scenario, text: str, *, base_dir: Path, resume: bool = False,
                 overwrite: bool = False, output: Path | None = None, shard: Shard | None = None,
                 ray: bool = False, ray_address: str | None = None, workers: int | None = None,
                 on_task: Callable[[Task, dict[str, Any], int, int], None] | None = None
                 ) -> ResultsStore:
    """Run every task of ``scenario`` (or of one shard of it) not yet in its results file.

    :param text: The scenario file's text (stored with the results).
    :param base_dir: Folder relative paths in the scenario start from.
    :param output: Results file of the whole run; default ``scenario.output`` (relative to the
        current directory, as for any command-line output path). A shard writes
        :meth:`~semlink.plan.Shard.output` of it, ``NAME.shardKofN.h5`` beside it.
    :param shard: Run only this shard's tasks. FID and KID, which need every image of a (link,
        SNR) point, are left to :func:`semlink.merge.merge_results`.
    :param ray: Run the tasks on a Ray cluster (:class:`semlink.executors.RayExecutor`, with
        ``ray_address`` and ``workers``) instead of in this process
        (:class:`semlink.executors.LocalExecutor`: one after another, or on CUDA, or with
        ``SEMLINK_OVERLAP=1``, the classical links' tasks on a worker thread beside the others).
    :param on_task: Called after each task as ``on_task(task, point_row, done, total)``.
    """
    fid_reference = _fid_reference(scenario, base_dir)
    output = Path(scenario.output if output is None else output)
    if shard is not None:  # NAME.shardKofN.h5 beside the whole run's file, -o's or the scenario's
        output = shard.output(output)
    recon_dir = reconstructions_dir(output)
    executor = (RayExecutor(scenario, base_dir=base_dir, recon_dir=recon_dir,
                            address=ray_address, workers=workers) if ray else
                LocalExecutor(scenario, base_dir=base_dir, recon_dir=recon_dir))
    try:
        planned = plan_tasks(scenario, executor.num_images)
        tasks = shard.select(planned) if shard is not None else planned
        executor.prepare(dict.fromkeys(t.link for t in tasks))
        store = open_store(scenario, text, output, device=executor.device, resume=resume,
                           overwrite=overwrite, planned=[t.point_id for t in planned],
                           shard=shard, device_name=executor.device_name,
                           fid_reference=fid_reference)
        pending = [t for t in tasks if not store.has(t.point_id)]
        done = len(tasks) - len(pending)
        try:
            for task, point, tables, seconds in executor.run(pending):
                point = _store_task(store, task, point, tables, seconds)
                done += 1
                if on_task is not None:
                    on_task(task, point, done, len(tasks))
        except KeyboardInterrupt:  # tasks a worker thread finished meanwhile are kept too
            for result in executor.stop():
                _store_task(store, *result)
            raise
    finally:
        executor.close()
    if wants_features(scenario) and shard is None:
        add_set_points(scenario, store)
    return store


def _store_task(store: ResultsStore, task: Task, point: dict[str, Any],
                tables: dict[str, list[dict[str, Any]]], seconds: float) -> dict[str, Any]:
    """Add a finished task to ``store`` (saved at once); returns its ``points`` row."""
    point = {"link": task.link, "snr_index": task.snr_index, "snr_db": task.snr_db,
             "batch_index": task.batch_index, **point, "seconds": seconds}
    store.add(task.point_id, point, tables)
    return point


def _fid_reference(scenario: Scenario, base_dir: Path) -> Path | None:
    """The scenario's ``fid_reference`` file, resolved and checked before any task runs.

    :raises InputError: If it cannot be read as pytorch-fid statistics.
    """
    if scenario.fid_reference is None:
        return None
    path = Path(scenario.fid_reference).expanduser()
    path = (path if path.is_absolute() else base_dir / path).resolve()
    _load_fid_reference(path)
    return path


def _load_fid_reference(path: str | Path) -> "FidStatistics":
    """The ``fid_reference`` statistics; an unreadable file is an InputError naming the field."""
    from semlink.metrics.fid import load_fid_statistics

    try:
        return load_fid_statistics(path)
    except InputError as err:
        raise InputError(f"fid_reference: {err}") from None


def add_set_points(scenario: Scenario, store: ResultsStore) -> None:
    """FID and KID (those among the metrics) per image link and SNR point from the stored
    Inception features, each link and SNR stored as its own point (``LINK/snrI/fid``); points
    already stored are kept. Call it once every task of the run is in ``store``. FID's reference
    is the store's ``fid_reference`` statistics file when it names one, else the features of the
    transmitted originals, which are always KID's.

    :raises InputError: If the ``fid_reference`` file cannot be read (moved since the run?).
    """
    import numpy as np

    from semlink.metrics.fid import FidStatistics
    from semlink.links.protocol import scoring_rule
    from semlink.tasks import fid_of_group, kid_of_group

    table = store.table("features")
    # Rows in image and transmission order, however the tasks were run (or sharded and merged):
    # the same features always give the same FID and KID, to the last bit.
    order = np.lexsort((table["repeat"], table["image_index"]))
    table = {col: values[order] for col, values in table.items()}
    links = np.asarray(table["link"])
    originals = links == REFERENCE
    fid_reference = None
    if "fid" in scenario.metrics:
        fid_reference = (_load_fid_reference(store.attrs["fid_reference"])
                         if store.attrs.get("fid_reference") else
                         FidStatistics.from_features(torch.as_tensor(table["feature"][originals])))
    for link, cfg in scenario.links.items():
        if cfg.kind == "bits":
            continue
        policy = scoring_rule(cfg)
        for snr_index, snr_db in enumerate(scenario.snr.values_db()):
            point_id = f"{link}/snr{snr_index}/fid"
            if store.has(point_id):
                continue
            rows = (links == link) & (table["snr_db"] == snr_db)
            counts = {"link": link, "snr_db": snr_db, "num_images": int(rows.sum()),
                      "num_failed": int(table["failed"][rows].sum())}
            tables = {}
            if fid_reference is not None:
                tables["fid"] = [{**counts, "fid": fid_of_group(
                    table["feature"][rows], table["failed"][rows].astype(bool), fid_reference,
                    policy=policy)}]
            if "kid" in scenario.metrics:
                kid = kid_of_group(table["feature"][rows], table["image_index"][rows],
                                   table["feature"][originals], table["image_index"][originals])
                tables["kid"] = [{**counts, "kid": kid.kid, "kid_ci_low": kid.ci_low,
                                  "kid_ci_high": kid.ci_high}]
            store.add(point_id, {"link": link, "snr_index": snr_index, "snr_db": snr_db,
                                 "batch_index": -1, "kind": "fid", "seconds": 0.0}, tables)
