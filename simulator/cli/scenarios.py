"""Commands on scenarios and their results files: ``validate``, ``run``, ``merge``, ``info``."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from semlink.cli._shared import (EXIT_OK, add_command, add_output, add_overrides, device_name,
                                 fmt, input_error, make_console, path, positive_int, problems,
                                 say, shard)
from semlink.errors import InputError

__all__ = ["add_parsers", "load_scenario_file", "warn_scenario", "is_training_recipe",
           "has_top_level_key"]


def add_parsers(sub) -> None:
    """Add ``validate``, ``run``, ``merge`` and ``info`` to the sub-command parsers ``sub``."""
    p = add_command(sub, "validate", help="check scenario files without running them",
                    examples=["validate scenarios/*.yaml",
                              "validate -v scenarios/quickstart.yaml",
                              "validate scenarios/train-small.yaml --set data.source=photos"],
                    quiet="print only the problems (the exit code says whether all are valid)",
                    verbose="also print each file as it will run, every default filled in "
                            "(JSON)")
    p.add_argument("scenario", type=path, nargs="+", help="scenario YAML file(s)")
    add_overrides(p, what="file (each file)")
    _add_memory_limit(p)
    p.set_defaults(func=_cmd_validate)

    p = add_command(sub, "run", help="run a scenario and append its results to an HDF5 file",
                    description="Run a scenario and append its results to an HDF5 file. On a "
                                "terminal a progress bar shows the tasks; elsewhere (a log "
                                "file, a batch scheduler) a line with the tasks done, the rate "
                                "and the ETA goes to stderr at the first and last task and at "
                                "most every few seconds between.",
                    examples=["run scenarios/quickstart.yaml --set snr.points_db=[5,10] "
                              "--set images.source=photos -o results/mine.h5",
                              "run scenarios/rayleigh.yaml --resume -o results/rayleigh.h5",
                              "run scenarios/rayleigh.yaml -q --shard 2/8 --device cuda:1"],
                    quiet="no progress, no warnings and no summary table",
                    verbose="also one progress line per task: link, SNR, batch, images, "
                            "seconds")
    p.add_argument("scenario", type=path, nargs="+",
                   help="scenario YAML file(s); several run one after the other, each into "
                        "its own output, every one checked before the first starts")
    add_overrides(p, what="file (each file)")
    add_output(p, help="results file (default: the scenario's output; one scenario only)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue an interrupted run; finished points are kept, not recomputed")
    mode.add_argument("--overwrite", action="store_true", help="discard an existing results file")
    p.add_argument("--device", type=device_name,
                   help="run on this device instead of the scenario's (auto, cpu, cuda, cuda:N)")
    p.add_argument("--shard", type=shard, metavar="K/N",
                   help="run only shard K of N (every N-th task) into NAME.shardKofN.h5 "
                        "beside the results file NAME.h5 (--output or the scenario's); "
                        "combine the shards with semlink merge")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the tasks on a Ray cluster: the one at ADDRESS, else the one "
                        "RAY_ADDRESS names, else a new one on this machine (pip install "
                        "'semlink[ray]')")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="Ray workers (default: one per GPU for a CUDA run, one per CPU else)")
    _add_memory_limit(p)
    p.set_defaults(func=_cmd_run)

    p = add_command(sub, "merge", help="merge the results files of a scenario's shards into one",
                    examples=["merge results/NAME.shard*of8.h5 -o results/NAME.h5"],
                    quiet="no summary line")
    p.add_argument("results", type=path, nargs="+", help="results .h5 files of one scenario")
    add_output(p, help="merged results file", required=True)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_cmd_merge)

    p = add_command(sub, "info", help="what each link sends per image (the paper's Table 1), "
                                      "and what a results file holds: scenario, shard, "
                                      "progress, device, versions",
                    description="For a scenario (.yaml, .yml) or a results file: each link's "
                                "row of the paper's Table 1 at the scenario's image size, the "
                                "shape of what it sends per image (a classical link's frame in "
                                "bytes), the compression ratio 3 H W / values, the share of "
                                "the image and the complex channel uses per image. For a "
                                "results file also its scenario, shard, progress against the "
                                "run's plan, device, versions and times.",
                    examples=["info scenarios/paper-awgn-512.yaml", "info results/*.h5",
                              "info -q results/quickstart.h5"],
                    quiet="print nothing (the exit code says whether every file opens)")
    p.add_argument("results", type=path, nargs="+", metavar="FILE",
                   help="scenario .yaml or results .h5 file(s)")
    p.set_defaults(func=_cmd_info)


def _add_memory_limit(parser: argparse.ArgumentParser) -> None:
    """``--memory-limit SIZE``: sets ``SEMLINK_MEMORY_LIMIT`` for the command."""
    parser.add_argument("--memory-limit", type=_memory_size, metavar="SIZE",
                        help="refuse a scenario whose batch is estimated to need more than "
                             "SIZE (8GiB, 500MB; off: no check); default 80%% of the memory "
                             "available (of the GPU's free memory for CUDA); also "
                             "SEMLINK_MEMORY_LIMIT")


def _memory_size(text: str) -> str:
    from semlink.memory import parse_size

    try:
        parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _set_memory_limit(args: argparse.Namespace) -> None:
    import os

    from semlink.memory import MEMORY_LIMIT_ENV

    if getattr(args, "memory_limit", None) is not None:
        os.environ[MEMORY_LIMIT_ENV] = args.memory_limit  # Ray workers started here inherit it


# ---------------------------------------------------------------------------- validate
def _cmd_validate(args: argparse.Namespace) -> int:
    _set_memory_limit(args)
    code = EXIT_OK
    for file in args.scenario:  # every file is checked, whatever the ones before it held
        try:
            line, resolved = _validate_one(file, args.overrides)
        except InputError as err:
            code = input_error(problems(err))
            continue
        say(args, line)
        if args.verbose:
            print(f"  {resolved}")
    return code


def _validate_one(file: str, overrides: list | None = None) -> tuple[str, str]:
    """What ``semlink validate`` says of one valid file (with ``overrides``, ``--set``), and
    the file resolved as JSON. A value still ``???`` is named, not refused: the file is valid,
    and says what a run of it must be given."""
    from semlink.scenario import load_scenario, missing_paths
    from semlink.training.config import load_train_config

    where = {"overrides": overrides, "overrides_dir": Path.cwd(), "allow_missing": True}
    if is_training_recipe(file):
        config, _ = load_train_config(file, **where)
        phases = "; ".join(f"{'+'.join(p.train)} {p.steps} steps" for p in config.phases)
        model = ("a DeepJSCC autoencoder" if config.model.deepjscc is not None else
                 f"preset {config.model.preset}")
        return (f"{file}: ok: training recipe {config.name!r} ({model}): {phases}"
                + _needs(missing_paths(config.model_dump(mode="json"))),
                config.model_dump_json())
    scenario, _ = load_scenario(file, **where)
    warn_scenario(file, scenario)
    needed = missing_paths(scenario.model_dump(mode="json", by_alias=True))
    kinds = ", ".join(f"{name} ({link.type})" for name, link in scenario.links.items())
    snrs = scenario.snr.values_db()
    # Files may live only where the scenario will run: named, not refused.
    missing = [f"{field} {value}" for field, value in scenario.referenced_paths().items()
               if field not in needed and not _exists(value, Path(file).parent)]
    memory = _memory_note(scenario, Path(file).parent) if not needed else ""
    return (f"{file}: ok: {len(scenario.links)} link(s): {kinds}; channel "
            f"{scenario.channel.type}; {len(snrs)} SNR point(s) {snrs[0]:g}..{snrs[-1]:g} dB "
            f"({scenario.snr.kind})" + memory + (f"; not found here: {', '.join(missing)}"
                                                 if missing else "") + _needs(needed),
            scenario.model_dump_json(by_alias=True))


def _memory_note(scenario, base_dir: Path) -> str:
    """``; peak memory ~1.2 GiB per task`` (:mod:`semlink.memory`; links sized from their
    configs, no models loaded), or "" where no link can be sized without its models.

    :raises InputError: If a batch would not fit (:func:`semlink.memory.check_memory`).
    """
    from semlink.devices import resolve_device
    from semlink.links.builder import LinkBuilder
    from semlink.memory import (check_memory, config_channel_uses, estimate_task_memory,
                                format_size)

    builder = LinkBuilder(scenario, base_dir=base_dir, device="cpu")
    estimate = estimate_task_memory(scenario, config_channel_uses(builder, scenario.links))
    if estimate is None:
        return ""
    try:
        device = resolve_device(scenario.device)
    except InputError:
        device = "cpu"  # no such device here: the run's machine is checked when it runs
    check_memory(estimate, scenario, device)
    weights = any(link.type in ("semantic", "deepjscc", "img2img-sc", "python")
                  for link in scenario.links.values())
    return (f"; peak memory ~{format_size(estimate.total_bytes)} per task"
            + (" besides the models' weights" if weights else ""))


def _needs(paths: list[str]) -> str:
    """``; to run it, pass --set data.source=...``: the values written ``???``, or ""."""
    if not paths:
        return ""
    return "; to run it, pass " + " ".join(f"--set {p}=..." for p in paths)


def _exists(value: str, base_dir: Path) -> bool:
    """True if a path or glob pattern of a scenario names something (relative to ``base_dir``)."""
    import glob

    target = Path(value).expanduser()
    target = target if target.is_absolute() else base_dir / target
    return bool(glob.glob(str(target))) if any(ch in value for ch in "*?[") else target.exists()


def load_scenario_file(file: str, overrides: list | None = None, *,
                       allow_missing: bool = False):
    """``(scenario, text)`` of the scenario file ``file`` with the command line's ``--set``
    ``overrides`` (relative paths in them start from the current directory; ``text`` is then
    the effective scenario), refusing a training recipe with a line that says how to train it.
    ``allow_missing``: keep values written ``???`` instead of refusing them.

    :raises InputError: As :func:`semlink.scenario.load_scenario`, or for a recipe.
    """
    from semlink.scenario import load_scenario

    why = _recipe_reason(file)
    if why is not None:
        raise InputError(f"{file}: is a training recipe ({why}), not a scenario; "
                         f"train with semlink train {file}")
    return load_scenario(file, overrides=overrides, overrides_dir=Path.cwd(),
                         allow_missing=allow_missing)


def is_training_recipe(file: str) -> bool:
    """True if the YAML file is a ``semlink train`` recipe: it has a top-level ``phases:`` key,
    or builds on (``base:``) a file that is a recipe."""
    return _recipe_reason(file) is not None


def _recipe_reason(file: str, seen: tuple[Path, ...] = ()) -> str | None:
    """Why the YAML file is a training recipe (``it has phases:``), or None."""
    if has_top_level_key(file, "phases"):
        return "it has phases:"
    base = _top_level_value(file, "base")
    target = Path(file).parent / base if base else None
    if target is None or target.resolve() in seen:  # a cycle: the loader reports it
        return None
    if _recipe_reason(str(target), (*seen, Path(file).resolve())) is None:
        return None
    return f"it builds on {base}, a training recipe"


def has_top_level_key(file: str, key: str) -> bool:
    """True if the YAML file has ``key:`` at the start of a line; an unreadable file is left to
    the loader, which reports it."""
    return _top_level_value(file, key) is not None


def _top_level_value(file: str, key: str) -> str | None:
    """The text after ``key:`` at the start of a line (quotes and comment removed; "" for a
    key whose value follows on the next lines), or None without such a line."""
    from semlink.scenario.limits import MAX_YAML_BYTES

    try:
        with open(file, encoding="utf-8") as f:
            text = f.read(MAX_YAML_BYTES + 1)  # more (/dev/zero too): the loader refuses it
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        match = re.match(rf"{key}\s*:(.*)$", line)
        if match:
            return match.group(1).split(" #")[0].strip().strip("'\"")
    return None


# ---------------------------------------------------------------------------- run
def _cmd_run(args: argparse.Namespace) -> int:
    from semlink.cli.progress import RunProgress
    from semlink.summary import summarize
    from semlink.sweep import run_scenario

    if args.workers is not None and args.ray is None:
        raise InputError("--workers: counts Ray workers; give it with --ray")
    if args.output and len(args.scenario) > 1:
        raise InputError(f"--output: names one results file, for one scenario; got "
                         f"{len(args.scenario)} scenarios: leave -o out (each writes its "
                         "scenario's output) or run them one at a time")
    _set_memory_limit(args)
    runs = _check_runs(args)  # every file, before hours of the first are spent
    for file, (scenario, text) in zip(args.scenario, runs):
        if not args.quiet:
            warn_scenario(file, scenario)
        output = Path(args.output or scenario.output)
        created = _missing_folder(output.parent)  # the run creates it: said at the end
        console = make_console(stderr=True, quiet=args.quiet)
        with RunProgress(scenario.name, console=console, quiet=args.quiet,
                         verbose=args.verbose) as progress:
            store = run_scenario(scenario, text, base_dir=Path(file).resolve().parent,
                                 resume=args.resume, overwrite=args.overwrite,
                                 output=Path(args.output) if args.output else None,
                                 shard=args.shard, ray=args.ray is not None,
                                 ray_address=args.ray or None, workers=args.workers,
                                 on_task=progress.on_task)
        if not args.quiet:
            _print_summary(console, summarize(store))
            console.print(f"results: {store.path}" + (f" (created folder {created})"
                                                       if created and created.is_dir() else ""))
    return EXIT_OK


def _check_runs(args: argparse.Namespace) -> list[tuple]:
    """``(scenario, text)`` of each file of ``semlink run`` with its ``--set`` and
    ``--device``, after checking all of them: every file's problems, its images (fewer than
    ``images.count``), results files that exist without ``--resume``/``--overwrite``, two
    scenarios writing one file.

    :raises ScenarioError: With one line per problem of every file.
    """
    from semlink.errors import first_line
    from semlink.images import list_images
    from semlink.scenario import ScenarioError

    runs, lines, outputs = [], [], {}
    for file in args.scenario:
        try:
            scenario, text = load_scenario_file(file, args.overrides)
        except InputError as err:
            lines.extend(problems(err))
            continue
        if args.device is not None:
            scenario = scenario.model_copy(update={"device": args.device})
        if scenario.images is not None:  # cheap, and the same folder for every file, often
            try:
                list_images(scenario.images.source, base_dir=Path(file).parent,
                            count=scenario.images.count)
            except InputError as err:
                lines.append(f"{file}: {first_line(err)}")
        output = Path(args.output or scenario.output)
        if args.shard is not None:
            output = args.shard.output(output)
        if output.resolve() in outputs:
            lines.append(f"{file}: output {output}: also the output of "
                         f"{outputs[output.resolve()]}; give one of them another output "
                         "(--set output=...)")
        outputs.setdefault(output.resolve(), file)
        if len(args.scenario) > 1 and output.exists() and not (args.resume or args.overwrite):
            lines.append(f"{output}: results file exists ({file}); pass --resume to continue "
                         "it or --overwrite to start again")
        runs.append((scenario, text))
    if lines:
        raise ScenarioError(lines)
    return runs


def warn_scenario(file: str, scenario) -> None:
    """Print what is valid in ``scenario`` but likely not meant (:meth:`Scenario.warnings`) on
    stderr, one ``semlink: warning: FILE: ...`` line each (``validate`` always, ``run``
    unless ``-q``)."""
    for line in scenario.warnings():
        print(f"semlink: warning: {file}: {line}", file=sys.stderr)


def _missing_folder(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet, or None."""
    missing = None
    while not folder.exists() and folder != folder.parent:
        missing, folder = folder, folder.parent
    return missing


def _print_summary(console, rows) -> None:
    """One line per link and SNR, one column per metric (intervals are in the export)."""
    from rich.table import Table

    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    cells: dict[tuple[str, float], dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["link"], r["snr_db"]), {})[r["metric"]] = r
    with_images = any(m not in ("ber", "bler", "throughput") for m in metrics)
    counts = ["images", "failed"] if with_images else ["bits"]
    table = Table(title="mean per link and SNR (95% intervals: semlink export)")
    for col in ["link", "SNR dB", *metrics, *counts]:
        table.add_column(col, justify="left" if col == "link" else "right", no_wrap=True)
    for (link, snr_db), by_metric in cells.items():
        images = [m for m in by_metric.values()
                  if m["metric"] not in ("ber", "bler", "throughput", "fid", "kid")]
        if with_images:
            tail = [str(images[0]["count"]), str(images[0]["failures"])] if images else ["", ""]
        else:
            tail = [str(by_metric["ber"]["count"])]
        table.add_row(link, f"{snr_db:g}",
                      *[fmt(by_metric[m]["value"]) if m in by_metric else "" for m in metrics],
                      *tail)
    console.print(table)


# ---------------------------------------------------------------------------- merge, info
def _cmd_merge(args: argparse.Namespace) -> int:
    from semlink.merge import merge_results
    from semlink.sweep import set_points_label

    report = merge_results(args.results, args.output, overwrite=args.overwrite)
    points = report.store.completed_points
    files = f"{len(args.results)} file{'s' if len(args.results) > 1 else ''}"
    if report.planned is None:
        say(args, f"{report.store.path}: {points} points from {files} (a file from "
                  "before semlink recorded the run's plan: completeness not checked)")
    elif report.missing:
        say(args, f"{report.store.path}: {report.planned - len(report.missing)} of "
                  f"{report.planned} points from {files}; missing {len(report.missing)} (first "
                  f"{report.missing[0]}): `semlink run SCENARIO --resume -o "
                  f"{report.store.path}` runs them")
    else:
        set_points = points - report.planned
        say(args, f"{report.store.path}: all {report.planned} points from {files}"
                  + (f", and {set_points} {set_points_label(report.store)} points computed "
                     "from them" if set_points else ""))
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from semlink.results import ResultsStore
    from semlink.sweep import describe_results

    for file in args.results:
        if Path(file).suffix.lower() in (".yaml", ".yml"):
            # what a link sends does not depend on values the user supplies (???)
            scenario, _ = load_scenario_file(file, allow_missing=True)
            say(args, "\n".join([f"{file}: scenario {scenario.name!r}",
                                  *_link_table(scenario, Path(file).parent)]))
            continue
        store = ResultsStore.open(file)
        say(args, "\n".join([describe_results(store), *_stored_link_table(store)]))
    return EXIT_OK


def _link_table(scenario, base_dir: Path) -> list[str]:
    """``semlink info``'s lines on what each link of ``scenario`` sends (indented)."""
    from semlink.dimensionality import format_rows, scenario_rows

    lines = []
    if scenario.images is not None:
        height, width = scenario.images.shape
        lines.append(f"  per image of {width}x{height} px (width x height), 3 x {height} x "
                     f"{width} = {3 * height * width} values:")
    rows = scenario_rows(scenario, base_dir=base_dir)
    return lines + [f"    {line}" for line in format_rows(rows)]


def _stored_link_table(store) -> list[str]:
    """The link table of a results file's scenario, or a line on why there is none (a file
    of another version, a user's link whose module is not here)."""
    from semlink.scenario import parse_scenario

    try:
        scenario = parse_scenario(store.attrs.get("scenario_text", ""),
                                  source=f"{store.path} (its scenario)")
        return _link_table(scenario, store.path.parent)
    except InputError as err:
        return [f"  what each link sends: not available here ({str(err).splitlines()[0]})"]
