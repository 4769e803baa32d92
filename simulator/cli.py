"""The ``semlink`` command line.

Exit codes: 0 success, 1 an internal error (a bug: the traceback is printed), 2 bad input (a scenario,
image, weights directory or argument; one line per problem on stderr, no traceback), 130 interrupted,
141 the reader of the output left (a closed pipe).
Heavy modules are imported inside each command so that ``semlink --help`` stays fast.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from semlink import __version__
from semlink.errors import InputError, first_line

if TYPE_CHECKING:
    from semlink.sweep import Shard

__all__ = ["main", "build_parser"]

_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf(inity)?$", re.IGNORECASE)
EXIT_OK, EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141


def _cmd_validate(args: argparse.Namespace) -> int:
    code = EXIT_OK
    for path in args.scenario:  # every file is checked, whatever the ones before it held
        try:
            print(_validate_one(path))
        except InputError as err:
            code = _input_error(_problems(err))
    return code


def _validate_one(path: str) -> str:
    """What ``semlink validate`` says of one valid file."""
    from semlink.scenario import load_scenario
    from semlink.training.config import load_train_config

    if _is_training_recipe(path):
        config, _ = load_train_config(path)
        phases = "; ".join(f"{'+'.join(p.train)} {p.steps} steps" for p in config.phases)
        return (f"{path}: ok: training recipe {config.name!r} (preset {config.model.preset}): "
                f"{phases}")
    scenario, _ = load_scenario(path)
    kinds = ", ".join(f"{name} ({link.type})" for name, link in scenario.links.items())
    snrs = scenario.snr.values_db()
    # Files may live only where the scenario will run: named, not refused.
    missing = [f"{field} {value}" for field, value in scenario.referenced_paths().items()
               if not _exists(value, Path(path).parent)]
    return (f"{path}: ok: {len(scenario.links)} link(s): {kinds}; channel {scenario.channel.type}; "
            f"{len(snrs)} SNR point(s) {snrs[0]:g}..{snrs[-1]:g} dB ({scenario.snr.kind})"
            + (f"; not found here: {', '.join(missing)}" if missing else ""))


def _exists(value: str, base_dir: Path) -> bool:
    """True if a path or glob pattern of a scenario names something (relative to ``base_dir``)."""
    import glob

    path = Path(value).expanduser()
    path = path if path.is_absolute() else base_dir / path
    return bool(glob.glob(str(path))) if any(ch in value for ch in "*?[") else path.exists()


def _load_scenario(path: str):
    """``(scenario, text)`` of the scenario file ``path``, refusing a training recipe with a
    line that says how to train it.

    :raises InputError: As :func:`semlink.scenario.load_scenario`, or for a recipe.
    """
    from semlink.scenario import load_scenario

    if _is_training_recipe(path):
        raise InputError(f"{path}: is a training recipe (it has phases:), not a scenario; "
                         f"train with semlink train {path}")
    return load_scenario(path)


def _is_training_recipe(path: str) -> bool:
    """True if the YAML file has a top-level ``phases:`` key (a ``semlink train`` recipe)."""
    return _has_top_level_key(path, "phases")


def _has_top_level_key(path: str, key: str) -> bool:
    """True if the YAML file has ``key:`` at the start of a line; an unreadable file is left to
    the loader, which reports it."""
    try:
        with open(path, encoding="utf-8") as f:
            return any(re.match(rf"{key}\s*:", line) for line in f)
    except (OSError, UnicodeDecodeError):
        return False


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    from semlink.summary import summarize
    from semlink.sweep import run_scenario

    if args.workers is not None and args.ray is None:
        raise InputError("--workers: counts Ray workers; give it with --ray")
    scenario, text = _load_scenario(args.scenario)
    if args.device is not None:
        scenario = scenario.model_copy(update={"device": args.device})
    # A log file or pipe gets the whole table, not one cut to rich's default 80 columns.
    console = Console(stderr=True, quiet=args.quiet,
                      width=None if sys.stderr.isatty() else 160)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=console,
                        # A pipe or log file would get only the bar's last state (and a blank
                        # line before an error): the bar is for terminals, gone once done.
                        disable=args.quiet or not console.is_terminal, transient=True)
    images_done = [0, 0.0]

    def on_task(task, point, done, total):
        images_done[0] += len(task.image_indices)
        images_done[1] += point["seconds"]
        rate = f"{images_done[0] / images_done[1]:.2f} img/s" if images_done[0] else ""
        progress.update(bar, completed=done, total=total, rate=rate,
                        description=f"{task.link} @ {task.snr_db:g} dB")

    with progress:
        bar = progress.add_task(scenario.name, total=None, rate="")
        store = run_scenario(scenario, text, base_dir=Path(args.scenario).resolve().parent,
                             resume=args.resume, overwrite=args.overwrite,
                             output=Path(args.output) if args.output else None,
                             shard=args.shard, ray=args.ray is not None,
                             ray_address=args.ray or None, workers=args.workers,
                             on_task=on_task)
    if not args.quiet:
        _print_summary(console, summarize(store))
        console.print(f"results: {store.path}")
    return EXIT_OK


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
                      *[_fmt(by_metric[m]["value"]) if m in by_metric else "" for m in metrics],
                      *tail)
    console.print(table)


def _fmt(value: float) -> str:
    return f"{value:.2e}" if 0 < abs(value) < 1e-2 else f"{value:.4g}"


def _cmd_merge(args: argparse.Namespace) -> int:
    from semlink.merge import merge_results
    from semlink.sweep import set_points_label

    report = merge_results(args.results, args.output, overwrite=args.overwrite)
    points = report.store.completed_points
    files = f"{len(args.results)} file{'s' if len(args.results) > 1 else ''}"
    if report.planned is None:
        print(f"{report.store.path}: {points} points from {files} (a file from "
              "before semlink recorded the run's plan: completeness not checked)")
    elif report.missing:
        print(f"{report.store.path}: {report.planned - len(report.missing)} of {report.planned} "
              f"points from {files}; missing {len(report.missing)} (first "
              f"{report.missing[0]}): `semlink run SCENARIO --resume -o {report.store.path}` "
              "runs them")
    else:
        set_points = points - report.planned
        print(f"{report.store.path}: all {report.planned} points from {files}"
              + (f", and {set_points} {set_points_label(report.store)} points computed from "
                 "them" if set_points else ""))
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from semlink.results import ResultsStore
    from semlink.sweep import describe_results

    for path in args.results:
        print(describe_results(ResultsStore.open(path)))
    return EXIT_OK


def _cmd_fid_stats(args: argparse.Namespace) -> int:
    from semlink.images import load_images
    from semlink.metrics.fid import FidStatistics, inception_features, save_fid_statistics
    from semlink.devices import resolve_device

    if not args.out.endswith(".npz"):  # numpy would append it and the path we print be wrong
        raise InputError(f"--out: {args.out}: must end in .npz (pytorch-fid's format)")
    _check_output(args.out, option="--out")
    device = resolve_device(args.device)
    images, _ = load_images(args.images, args.size, count=args.count, field="fid-stats")
    if len(images) < 2:
        raise InputError(f"{args.images}: FID statistics need at least 2 images; found 1")
    stats = FidStatistics.from_features(inception_features(images.to(device)))
    save_fid_statistics(stats, args.out)
    print(f"{args.out}: FID statistics of {len(images)} images at {_shape_text(args.size)} px")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from semlink.export import export_csv, export_json
    from semlink.results import ResultsStore

    store = ResultsStore.open(args.results)
    if not (args.csv or args.json):
        raise InputError("export: give --csv DIR and/or --json FILE")
    if args.json:
        _check_output(args.json, option="--json")
    if args.csv:
        for path in export_csv(store, args.csv):
            print(path)
    if args.json:
        print(export_json(store, args.json))
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from semlink.compare import COMPARE_COLUMNS, compare_links
    from semlink.export import write_table_csv
    from semlink.results import ResultsStore

    if args.csv:
        _check_output(args.csv, option="--csv")
    store = ResultsStore.open(args.results)
    rows = compare_links(store, args.link, args.baseline, metrics=args.metric)
    table = Table(title=f"{args.link} - {args.baseline}, paired over images and transmissions "
                        "(95% interval, paired t-test)")
    for col in ("SNR dB", "metric", args.link, args.baseline, "difference", "95% interval",
                "p", "pairs"):
        table.add_column(col, justify="left" if col == "metric" else "right", no_wrap=True)
    for r in rows:
        table.add_row(f"{r['snr_db']:g}", r["metric"], _fmt(r["link_mean"]),
                      _fmt(r["baseline_mean"]), _fmt(r["difference"]),
                      f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]", _fmt(r["p_value"]),
                      str(r["pairs"]))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if args.csv:
        print(write_table_csv(args.csv, list(COMPARE_COLUMNS), rows))
    return EXIT_OK


def _cmd_papr(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from semlink.devices import resolve_device
    from semlink.export import write_table_csv
    from semlink.link_papr import EXCEEDED_BY, THRESHOLDS_DB, link_papr

    if args.csv:
        _check_output(args.csv, option="--csv")
    scenario, _ = _load_scenario(args.scenario)
    device = resolve_device(args.device or scenario.device)
    rows = link_papr(scenario, base_dir=Path(args.scenario).resolve().parent, device=device,
                     num_images=args.images, snr_db=args.snr_db, links=args.link)
    if not rows:
        raise InputError(f"{args.scenario}: no link with a waveform to measure (links over "
                         "channel_code: capacity have none)")
    table = Table(title=f"{scenario.name}: transmitted power, dB above the amplifier's "
                        "reference (single carrier: each image's mean; OFDM: a full symbol's)")
    for col in ("link", "waveform", "rows", "samples",
                *(f"exceeded by {p:g}" for p in EXCEEDED_BY), "median peak per block"):
        table.add_column(col, justify="left" if col in ("link", "waveform") else "right",
                         no_wrap=True)
    for r in rows:
        table.add_row(r.link, r.waveform, str(r.rows), str(r.samples),
                      *("-" if math.isnan(v) else f"{v:.2f}" for v in r.levels_db),
                      f"{r.median_peak_db:.2f}")
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if args.csv:
        curve = [{"link": r.link, "waveform": r.waveform, "threshold_db": t, "ccdf": c}
                 for r in rows for t, c in zip(THRESHOLDS_DB, r.ccdf)]
        print(write_table_csv(args.csv, ["link", "waveform", "threshold_db", "ccdf"], curve))
    if args.plot:
        from semlink.plots import plot_power_ccdf

        for path in plot_power_ccdf(rows, args.plot, title=f"{scenario.name}: power CCDF"):
            print(path)
    return EXIT_OK


def _cmd_plot(args: argparse.Namespace) -> int:
    from semlink.plots import plot_results
    from semlink.results import ResultsStore

    store = ResultsStore.open(args.results)
    paths = plot_results(store, args.out)
    if not paths:
        raise InputError(f"{args.results}: nothing to plot ({store.completed_points} finished "
                         "points, none with BER or image metrics)")
    for path in paths:
        print(path)
    return EXIT_OK


def _cmd_weights(args: argparse.Namespace) -> int:
    from semlink.models.weights import (NOT_READY, describe_weights_dir, download_weights,
                                          scan_weights_dir)

    if args.download:
        download_weights(args.directory, variant=args.variant)
    report = scan_weights_dir(args.directory)
    print(describe_weights_dir(report))
    if not report.semantic_link_ready:  # a non-zero exit for scripts that check a folder
        raise InputError(f"{args.directory}: not ready for the semantic link ({NOT_READY})")
    return EXIT_OK


def _check_preset(name: str) -> None:
    from semlink.models.presets import PRESET_NAMES

    if name not in PRESET_NAMES:
        raise InputError(f"--preset: unknown preset {name!r}; allowed: " + ", ".join(PRESET_NAMES))


def _check_image_suffix(path: str, *, option: str) -> None:
    """Refuse an output name Pillow cannot write before any work is done."""
    from semlink.images import writable_format

    try:
        writable_format(path)
    except ValueError:
        raise InputError(f"{option}: cannot write an image named {path!r}; use a suffix such "
                         "as .png") from None
    _check_output(path, option=option)


def _check_output(path: str, *, option: str) -> None:
    """Refuse an output file that cannot be written before any work is done (a folder, a
    read-only or full place): creates its folder and a temporary file there, then removes it."""
    import tempfile

    target = Path(path)
    if target.is_dir():
        raise InputError(f"{option}: {path} is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}."):
            pass
    except OSError as err:
        raise InputError(f"{option}: {_os_error_message(err)}") from None


#: Each link's own options of `semlink transmit`, with their defaults.
_TRANSMIT_OPTIONS = {
    "semantic": {"preset": "small", "weights": None, "steps": None, "estimate": None},
    "classical": {"channel_uses": 288, "modulation": 16, "code_rate": 0.5, "harq": 1,
                  "harq_combining": "chase", "harq_groups": None},
    "capacity": {"channel_uses": 288},
}


def _check_transmit_options(args: argparse.Namespace) -> None:
    """Refuse the other links' options (they would be ignored), then fill in the defaults of
    this link's (None on the command line: not given)."""
    from semlink.scenario import MAX_HARQ_TRANSMISSIONS

    mine = _TRANSMIT_OPTIONS[args.link]
    for link, options in _TRANSMIT_OPTIONS.items():
        for name in options:
            if name not in mine and getattr(args, name) is not None:
                raise InputError(f"--{name.replace('_', '-')}: applies to the {link} link, "
                                 f"not to --link {args.link}")
    for name, default in mine.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.link == "semantic":
        _check_preset(args.preset)
        if args.preset != "small" and args.weights is None:
            raise InputError(f"--weights: preset {args.preset!r} needs the folder of its weights "
                             "(semlink weights DIR --download fetches them)")
    elif args.link == "classical" and args.harq > MAX_HARQ_TRANSMISSIONS:
        raise InputError(f"--harq: at most {MAX_HARQ_TRANSMISSIONS} sends; got {args.harq}")
    elif args.link == "classical" and args.harq_groups is not None and args.harq == 1:
        raise InputError("--harq-groups: groups code blocks for retransmissions; give --harq "
                         "T > 1 too")
    if args.link != "semantic" and args.channel_uses > 3 * args.size[0] * args.size[1]:
        raise InputError(f"--channel-uses: at most 3 x width x height = "
                         f"{3 * args.size[0] * args.size[1]} for --size {_shape_text(args.size)} "
                         f"(one channel use per pixel value); got {args.channel_uses}")


#: The channel options of `semlink transmit`, by the schema field each one sets.
_CHANNEL_OPTIONS = {"k_factor_db": "--k-factor-db", "num_rx_antennas": "--rx-antennas",
                    "num_tx_antennas": "--tx-antennas", "csi_error_var": "--csi-error-var",
                    "normalized_doppler": "--normalized-doppler",
                    "input_backoff_db": "--amplifier-backoff-db",
                    "phase_noise_linewidth": "--phase-noise-linewidth",
                    "frequency_offset": "--frequency-offset", "pilot_spacing": "--pilot-spacing"}


def _transmit_channel(args: argparse.Namespace):
    """The channel section `semlink transmit` builds from --channel, --k-factor-db,
    --rx-antennas, --tx-antennas, --csi-error-var, --normalized-doppler,
    --amplifier-backoff-db, --phase-noise-linewidth, --frequency-offset and --pilot-spacing
    (each refused where the channel has no such setting); the schema checks the values, and
    its message names the option."""
    import pydantic

    from semlink.scenario import (AmplifierConfig, AWGNConfig, OFDMConfig,
                                    PhaseTrackingConfig, RayleighConfig, RicianConfig)

    rician = args.channel == "rician"
    if args.k_factor_db is not None and not rician:
        raise InputError(f"--k-factor-db: applies to --channel rician, not to --channel "
                         f"{args.channel}")
    for option in ("rx_antennas", "tx_antennas", "csi_error_var", "normalized_doppler"):
        if getattr(args, option) is not None and args.channel not in ("rayleigh", "rician"):
            raise InputError(f"--{option.replace('_', '-')}: applies to --channel rayleigh or "
                             f"rician, not to --channel {args.channel}")
    for option, ofdm in (("phase_noise_linewidth", "a scenario gives its oscillator in Hz"),
                         ("frequency_offset", "a scenario gives its oscillator in Hz"),
                         ("pilot_spacing", "it estimates on its grid's pilots")):
        if getattr(args, option) is not None and args.channel == "ofdm":
            raise InputError(f"--{option.replace('_', '-')}: applies to --channel awgn, rayleigh "
                             f"or rician, not to --channel ofdm ({ofdm})")
    for option in ("amplifier_backoff_db", "phase_noise_linewidth", "frequency_offset"):
        if getattr(args, option) is not None and args.link == "capacity":
            raise InputError(f"--{option.replace('_', '-')}: the capacity link counts only the "
                             "channel's noise; use --link classical")
    if rician and args.k_factor_db is None:
        raise InputError("--k-factor-db: --channel rician needs its K factor (dB)")
    try:
        amplifier = (None if args.amplifier_backoff_db is None
                     else AmplifierConfig(input_backoff_db=args.amplifier_backoff_db))
        if args.channel == "ofdm":
            return OFDMConfig(type="ofdm", amplifier=amplifier)
        tracking = (None if args.pilot_spacing is None
                    else PhaseTrackingConfig(pilot_spacing=args.pilot_spacing))
        oscillator = {"amplifier": amplifier, "phase_noise_linewidth": args.phase_noise_linewidth,
                      "frequency_offset": args.frequency_offset, "phase_tracking": tracking}
        if args.channel == "awgn":
            return AWGNConfig(type="awgn", **oscillator)
        settings = {"num_rx_antennas": args.rx_antennas, "num_tx_antennas": args.tx_antennas,
                    "csi_error_var": args.csi_error_var,
                    "normalized_doppler": args.normalized_doppler, **oscillator}
        if rician:
            return RicianConfig(type="rician", k_factor_db=args.k_factor_db, **settings)
        return RayleighConfig(type="rayleigh", **settings)
    except pydantic.ValidationError as err:
        raise InputError(_option_message(err.errors()[0])) from None


def _option_message(error: dict) -> str:
    """A schema error on a channel field, as one line naming the `semlink transmit` option."""
    msg = error["msg"].removeprefix("Value error, ")
    field = next((str(part) for part in reversed(error["loc"]) if part in _CHANNEL_OPTIONS),
                 msg.split(" ", 1)[0])  # a model check names the field first
    if "input" in error and not isinstance(error["input"], dict) and "; got" not in msg:
        msg = f"{msg}; got {error['input']!r}"
    return f"{_CHANNEL_OPTIONS.get(field, field)}: {msg}"


def _cmd_transmit(args: argparse.Namespace) -> int:
    from semlink.channel import build_channel
    from semlink.images import load_image, save_image
    from semlink.metrics.quality import psnr_db, ssim
    from semlink.scenario import AnalogTransmission
    from semlink.devices import resolve_device
    from semlink.seeding import derive_seed, make_generator
    from semlink.sweep import channel_words

    _check_transmit_options(args)
    channel_cfg = _transmit_channel(args)
    _check_image_suffix(args.out, option="--out")
    device = resolve_device(args.device)
    image = load_image(args.image, args.size).unsqueeze(0).to(device)
    channel = build_channel(channel_cfg, generator=make_generator(
        derive_seed(args.seed, "transmit", "channel"), device), device=device, check_values=True)
    uses = None  # what the line below says the link spent, if not its channel_uses
    if args.link == "semantic":
        from semlink.links.semantic import SemanticLink

        link = SemanticLink(preset=args.preset, image_size=args.size,
                            transmission=AnalogTransmission(mode="analog",
                                                            estimate=args.estimate),
                            steps=args.steps, weights=args.weights, device=device)
        gens = [make_generator(derive_seed(args.seed, "transmit", "sampler"), device)]
        recon = link.transmit(image, channel, args.snr_db, gens).images
        failed = False
    else:
        if args.link == "classical":
            from semlink.links.classical import ClassicalLink

            link = ClassicalLink(channel_uses=args.channel_uses,
                                 image_size=args.size, modulation=args.modulation,
                                 code_rate=args.code_rate, max_transmissions=args.harq,
                                 combining=args.harq_combining,
                                 code_block_groups=args.harq_groups, device=device)
        else:
            from semlink.links.capacity import CapacityLink, capacity_payload_bytes

            link = CapacityLink(channel_uses=args.channel_uses, image_size=args.size,
                                payload_bytes=capacity_payload_bytes(args.channel_uses,
                                                                     args.snr_db),
                                device=device)
        out = link.transmit(image, channel, args.snr_db)
        recon, failed = out.images, bool(out.failed[0])
        if out.transmissions is not None and args.harq > 1:
            sends = int(out.transmissions[0])
            uses = (f"{int(out.channel_uses[0])} channel uses ({sends} of at most {args.harq} "
                    "sends)")
    save_image(recon[0], args.out)
    print(f"{args.out}: {args.link} link, {uses or f'{link.channel_uses} channel uses'}, "
          f"{args.channel}{channel_words(channel_cfg.model_dump())} at "
          f"{args.snr_db:g} dB: PSNR {float(psnr_db(image, recon)[0]):.2f} dB, "
          f"SSIM {float(ssim(image, recon)[0]):.4f}" + (" (decoding failed)" if failed else ""))
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    import json

    from semlink.bench import run_bench
    from semlink.devices import resolve_device

    _check_preset(args.preset)
    device = resolve_device(args.device)
    batches = args.batch or ([1, 4] if device == "cpu" else [1, 4, 16, 64])
    sizes = args.size or ([256, 512] if device == "cpu" else [512, 1024])

    def save(results: dict) -> None:
        """Rewrite --json after each measurement (a run cut short keeps what it measured)."""
        last = (results["sd15_img2img"] or results["receiver"])[-1]
        what = "sd15 img2img" if results["sd15_img2img"] else results["preset"]
        print(f"semlink bench: {what} {last['image_size']} px, batch {last['batch_size']}: "
              + (f"{last['seconds_per_image']:.4f} s/image" if "error" not in last
                 else last["error"]), file=sys.stderr, flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")

    if args.json:
        _check_output(args.json, option="--json")
    result = run_bench(preset=args.preset, sizes=sizes, batch_sizes=batches, device=device,
                       steps=args.steps, guidance=args.guidance,
                       sd15=False if args.no_sd15 else None, repeats=args.repeats,
                       on_result=save)
    print(json.dumps(result, indent=1))
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from semlink.training import train_main

    if not _is_training_recipe(args.config) and _has_top_level_key(args.config, "links"):
        raise InputError(f"{args.config}: is a scenario (it has links:, no phases:); run it "
                         f"with semlink run {args.config}")
    return train_main(args.config, resume=args.resume, output=args.output, quiet=args.quiet,
                      device=args.device)


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def _finite_float(text: str) -> float:
    """argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def _path(text: str) -> str:
    """argparse type: a file or folder name; an empty one would mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a file or folder name; got an empty one")
    return text


def _non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}")
    return value


def _image_side(text: str) -> int:
    """argparse type: an image side as a scenario's ``images.size`` takes it."""
    from pydantic import TypeAdapter

    from semlink.scenario import ImageSide

    try:
        return TypeAdapter(ImageSide).validate_python(int(text))
    except ValueError:  # pydantic's ValidationError is one
        raise argparse.ArgumentTypeError(f"must be an image side in pixels, 64..4096 and a "
                                         f"multiple of 32; got {text!r}") from None


def _image_shape(text: str) -> tuple[int, int]:
    """argparse type: ``SIDE`` (a square) or ``WIDTHxHEIGHT``, each side as a scenario's
    ``images.size`` takes it; returns ``(height, width)``."""
    sides = text.lower().split("x")
    if len(sides) > 2:
        raise argparse.ArgumentTypeError(f"must be SIDE or WIDTHxHEIGHT in pixels; got {text!r}")
    width, height = (_image_side(side) for side in (sides * 2)[:2])
    return height, width


def _shape_text(shape: tuple[int, int]) -> str:
    """``(height, width)`` as --size takes it: ``256`` or ``768x512``."""
    height, width = shape
    return f"{width}" if height == width else f"{width}x{height}"


def _float_type(accept: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """argparse type: a float for which ``accept`` holds, else an error saying ``rule``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {rule}; got {text!r}")
        return value
    return parse


def _code_rate(text: str) -> float:
    """argparse type: an LDPC code rate as a number or a fraction (``1/2``), as in scenarios."""
    from pydantic import TypeAdapter

    from semlink.scenario import CodeRate, parse_rate

    try:
        return TypeAdapter(CodeRate).validate_python(float(parse_rate(text)))
    except ValueError:  # not a number, or out of range (pydantic's ValidationError is one)
        raise argparse.ArgumentTypeError(f"must be a code rate in [1/5, 948/1024], a number or "
                                         f"a fraction like 1/2; got {text!r}") from None


def _shard(text: str) -> "Shard":
    """argparse type for ``--shard K/N``."""
    from semlink.sweep import Shard

    try:
        return Shard.parse(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("shard: ")) from None


def _device_name(text: str) -> str:
    """argparse type: a device name a run accepts."""
    from semlink.devices import is_device_name

    if not is_device_name(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N; got {text!r}")
    return text


# An SNR may be +inf (no noise), never NaN or -inf; guidance is a finite scale >= 0.
_snr_db = _float_type(lambda v: v > -math.inf, "a number of dB or inf")
_guidance = _float_type(lambda v: math.isfinite(v) and v >= 1, "a finite number >= 1")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other error of semlink; the usage stays
    behind ``--help``. Sub-command parsers are of this class too (argparse's default)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # argparse takes "-1e3" and "-inf" for options ("expected one argument"): they are
        # values here, as "-3" and "-2.5" already are (no option of semlink looks like them).
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (each sets ``func``)."""
    parser = _Parser(
        prog="semlink",
        description="Link-level simulator for semantic image communication (Stable Cascade) "
                    "and a classical JPEG2000 + LDPC + QAM link.")
    parser.add_argument("--version", action="version", version=f"semlink {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check scenario files without running them")
    p.add_argument("scenario", type=_path, nargs="+", help="scenario YAML file(s)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("run", help="run a scenario and append its results to an HDF5 file")
    p.add_argument("scenario", type=_path, help="scenario YAML file")
    p.add_argument("--output", "-o", type=_path,
                   help="results file (default: the scenario's output)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue an interrupted run; finished points are kept, not recomputed")
    mode.add_argument("--overwrite", action="store_true", help="discard an existing results file")
    p.add_argument("--device", type=_device_name,
                   help="run on this device instead of the scenario's (auto, cpu, cuda, cuda:N)")
    p.add_argument("--shard", type=_shard, metavar="K/N",
                   help="run only shard K of N (every N-th task) into NAME.shardKofN.h5; "
                        "combine the shards with semlink merge")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the tasks on a Ray cluster: the one at ADDRESS, else the one "
                        "RAY_ADDRESS names, else a new one on this machine (pip install "
                        "'semlink[ray]')")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="Ray workers (default: one per GPU for a CUDA run, one per CPU else)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("merge", help="merge the results files of a scenario's shards into one")
    p.add_argument("results", type=_path, nargs="+", help="results .h5 files of one scenario")
    p.add_argument("--output", "-o", type=_path, required=True, help="merged results file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_cmd_merge)

    p = sub.add_parser("info", help="what a results file holds: scenario, shard, progress, "
                                    "device, versions")
    p.add_argument("results", type=_path, nargs="+", help="results .h5 file(s)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("fid-stats", help="FID reference statistics of a set of images (.npz, "
                                         "pytorch-fid format) for a scenario's fid_reference")
    p.add_argument("images", type=_path, help="folder, glob pattern, or 'sample'")
    p.add_argument("--size", type=_image_shape, required=True,
                   help="SIDE or WIDTHxHEIGHT the images are centre-cropped and resized to, as "
                        "in a scenario")
    p.add_argument("--count", type=_positive_int, help="at most this many images (by name)")
    p.add_argument("--device", type=_device_name, default="auto")
    p.add_argument("--out", "-o", type=_path, required=True, help="statistics file to write (.npz)")
    p.set_defaults(func=_cmd_fid_stats)

    p = sub.add_parser("export", help="export a results file as tidy CSV and/or JSON")
    p.add_argument("results", type=_path, help="results .h5 file")
    p.add_argument("--csv", type=_path, metavar="DIR",
                   help="write summary.csv and one CSV per table to DIR")
    p.add_argument("--json", type=_path, metavar="FILE",
                   help="write the summary and attributes as JSON")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("compare", help="paired differences of two links of a results file "
                                       "(per SNR and image metric, with intervals)")
    p.add_argument("results", type=_path, help="results .h5 file")
    p.add_argument("link", help="link compared")
    p.add_argument("baseline", help="link compared against (differences are link - baseline)")
    p.add_argument("--metric", nargs="+", help="image metrics, or channel_uses (default: every "
                                               "image metric in the file)")
    p.add_argument("--csv", type=_path, metavar="FILE", help="also write the rows as CSV")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("papr", help="how far above its mean power each link's transmitted "
                                    "signal goes, on the scenario's waveform")
    p.add_argument("scenario", type=_path, help="scenario YAML file")
    p.add_argument("--link", nargs="+", help="links to measure (default: all)")
    p.add_argument("--images", type=_positive_int, default=8, metavar="N",
                   help="send the scenario's first N images (default 8)")
    p.add_argument("--snr-db", type=_finite_float,
                   help="adaptive links: send the frame chosen at this SNR (default: the "
                        "scenario's first SNR point)")
    p.add_argument("--device", type=_device_name,
                   help="run on this device instead of the scenario's (auto, cpu, cuda, cuda:N)")
    p.add_argument("--csv", type=_path, metavar="FILE",
                   help="also write the power CCDF (0 to 16 dB in 0.25 dB steps) as CSV")
    p.add_argument("--plot", type=_path, metavar="DIR",
                   help="also plot the power CCDF into DIR (power_ccdf.png and .pdf)")
    p.set_defaults(func=_cmd_papr)

    p = sub.add_parser("plot", help="plot a results file (PNG and PDF)")
    p.add_argument("results", type=_path, help="results .h5 file")
    p.add_argument("--out", type=_path, required=True, metavar="DIR", help="folder for the figures")
    p.set_defaults(func=_cmd_plot)
    p = sub.add_parser("transmit", help="send one image through a link and save the result")
    p.add_argument("image", type=_path, help="image file")
    p.add_argument("--snr-db", type=_snr_db, required=True, help="Es/N0 in dB")
    p.add_argument("--link", choices=list(_TRANSMIT_OPTIONS), default="semantic",
                   help="semantic (default); classical: JPEG2000 + LDPC + QAM; capacity: "
                        "JPEG2000 over an ideal code at the AWGN capacity of --snr-db")
    p.add_argument("--channel", choices=["awgn", "rayleigh", "rician", "ofdm"], default="awgn",
                   help="awgn (default); rayleigh or rician: fast flat fading, perfect CSI; "
                        "ofdm: TDL-A with LS estimates")
    p.add_argument("--k-factor-db", type=_finite_float,
                   help="--channel rician: K factor, dB (required there)")
    p.add_argument("--rx-antennas", type=_positive_int,
                   help="--channel rayleigh or rician: receive antennas combined by MRC "
                        "(default 1)")
    p.add_argument("--tx-antennas", type=int, choices=[1, 2],
                   help="--channel rayleigh or rician: 2 sends Alamouti's space-time block "
                        "code (default 1)")
    p.add_argument("--csi-error-var", type=_finite_float,
                   help="--channel rayleigh or rician: variance of the receiver's channel-"
                        "estimation error (default 0, perfect CSI)")
    p.add_argument("--amplifier-backoff-db", type=_finite_float,
                   help="a transmit amplifier (Rapp, p = 2) at this input back-off, dB (default: "
                        "linear); on --channel ofdm it acts on the time-domain signal")
    p.add_argument("--normalized-doppler", type=_finite_float,
                   help="--channel rayleigh or rician: f_D T_s, time-correlated (Jakes) fading "
                        "instead of independent fading per symbol")
    p.add_argument("--phase-noise-linewidth", type=_finite_float, metavar="V",
                   help="receiver oscillator linewidth times symbol period: Wiener phase noise "
                        "(default: none)")
    p.add_argument("--frequency-offset", type=_finite_float, metavar="V",
                   help="receiver oscillator frequency offset times symbol period (default: "
                        "none)")
    p.add_argument("--pilot-spacing", type=_positive_int, metavar="P",
                   help="track the phase on a pilot before every P data symbols and after the "
                        "last (default: untracked)")
    p.add_argument("--preset", help="semantic link: preset (default small)")
    p.add_argument("--weights", type=_path, help="semantic link: weights directory (real presets)")
    p.add_argument("--steps", type=_positive_int,
                   help="semantic link: sampling steps (default: the preset's)")
    p.add_argument("--estimate", choices=["none", "lmmse", "noise-matched"],
                   help="semantic link: the receiver's symbol estimate (default none, the "
                        "paper's; docs/semantic-link.md)")
    p.add_argument("--size", type=_image_shape, default=(256, 256),
                   help="image side (square) or WIDTHxHEIGHT in pixels, each 64..4096 and a "
                        "multiple of 32 (default 256)")
    p.add_argument("--channel-uses", type=_positive_int,
                   help="classical and capacity links: complex channel uses (default 288 = small "
                        "preset, 256 px)")
    p.add_argument("--modulation", type=int, choices=[2, 4, 16, 64, 256],
                   help="classical link: QAM order (default 16)")
    p.add_argument("--code-rate", type=_code_rate,
                   help="classical link: LDPC rate, e.g. 1/2 (default) or 0.75")
    p.add_argument("--harq", type=_positive_int, metavar="T",
                   help="classical link: HARQ, at most T sends of the frame (default 1: one "
                        "send)")
    p.add_argument("--harq-combining", choices=["chase", "ir"],
                   help="classical link: chase (default: the same symbols again, combined) or "
                        "ir (incremental redundancy: the next redundancy version)")
    p.add_argument("--harq-groups", type=int, choices=[2, 4, 6, 8], metavar="N",
                   help="classical link: resend only the groups of code blocks with a failed "
                        "block, of at most N groups: 2, 4, 6 or 8 (5G CBG; default: the whole "
                        "frame)")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--device", type=_device_name, default="auto")
    p.add_argument("--out", type=_path, required=True, help="output PNG")
    # Their arguments go straight into the links and models, whose checks raise ValueError.
    p.set_defaults(func=_cmd_transmit, value_error_is_input=True)

    p = sub.add_parser("bench", help="time the semantic receiver (JSON output)")
    p.add_argument("--preset", default="small",
                   help="on the CPU the real presets are replaced by 'small' (the JSON says so)")
    p.add_argument("--size", type=_image_side, nargs="+",
                   help="image sides, px, 64..4096 and multiples of 32 (default 256 512 on CPU, "
                        "512 1024 on CUDA)")
    p.add_argument("--batch", type=_positive_int, nargs="+",
                   help="batch sizes (default 1 4 on CPU, 1 4 16 64 on CUDA; stops at the first "
                        "out-of-memory)")
    p.add_argument("--steps", type=_positive_int, default=10,
                   help="sampling steps (default 10, the paper's)")
    p.add_argument("--guidance", type=_guidance, default=1.1,
                   help="classifier-free guidance (default 1.1, the paper's; 1.0 = no CFG pass)")
    p.add_argument("--repeats", type=_positive_int, default=2, help="timed calls after one warm-up")
    p.add_argument("--device", type=_device_name, default="auto")
    p.add_argument("--no-sd15", action="store_true", help="skip the SD 1.5 img2img timing (CUDA)")
    p.add_argument("--json", type=_path, metavar="FILE", help="also write the JSON to FILE")
    p.set_defaults(func=_cmd_bench, value_error_is_input=True)

    p = sub.add_parser("weights", help="check a Stable Cascade weights directory")
    p.add_argument("directory", type=_path)
    p.add_argument("--download", action="store_true",
                   help="download into DIRECTORY first (needs huggingface_hub and network)")
    p.add_argument("--variant", choices=["lite", "full"], default="lite")
    p.set_defaults(func=_cmd_weights)

    p = sub.add_parser("train", help="fine-tune / train models from a training config")
    p.add_argument("config", type=_path, help="training YAML file")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--output", "-o", type=_path, help="output folder (default: the config's)")
    p.add_argument("--device", type=_device_name,
                   help="train on this device instead of the config's (auto, cpu, cuda, cuda:N)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=_cmd_train)
    return parser


def _os_error_message(err: OSError) -> str:
    """One line naming the path an OSError is about and what is wrong with it."""
    if err.filename is None:
        return str(err)
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        # mkdir(parents=True) met a file where a folder had to be
        return f"{err.filename}: a file stands where a folder is needed in this path"
    return f"{err.filename}: {err.strerror or err}"


def _problems(err: InputError) -> list[str]:
    """The lines to print for bad input: one per problem of a scenario file, else one."""
    return list(getattr(err, "problems", None) or [first_line(err)])


def _input_error(lines: list[str]) -> int:
    """Print bad input as ``semlink: error: ...`` lines (no traceback); the exit code."""
    for line in lines:
        print(f"semlink: error: {line}", file=sys.stderr)
    return EXIT_INPUT


def _is_out_of_memory(err: BaseException) -> bool:
    """True for torch's CUDA out-of-memory error and for a CPU allocation that failed."""
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return (isinstance(err, MemoryError) or (oom is not None and isinstance(err, oom))
            or "can't allocate memory" in str(err) or "out of memory" in str(err))


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail a second time."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (captured by a test)
        pass
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``semlink`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except InputError as err:
        return _input_error(_problems(err))
    except ValueError as err:
        if not getattr(args, "value_error_is_input", False):
            raise
        return _input_error([first_line(err)])
    except (RuntimeError, MemoryError) as err:
        if not _is_out_of_memory(err):
            raise
        return _input_error([f"{args.command}: out of memory ({first_line(err)[:160]}); run "
                             "smaller batches: a scenario's batch_size (images) or "
                             "monte_carlo.batch_bits (BER), bench --batch, or --size"])
    except BrokenPipeError:  # the reader left (``semlink info *.h5 | head``): stop quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as err:  # an output that cannot be written: a full disk, a file as folder
        return _input_error([_os_error_message(err)])
    except KeyboardInterrupt:
        print("semlink: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
