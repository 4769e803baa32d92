"""Commands on single links: ``transmit`` (one image through a link and a channel) and
``papr`` (how far each link's transmitted power rises above its mean).

``semlink transmit`` turns its options into a scenario's link and channel sections and hands
them to :func:`semlink.transmission.transmit`, which validates them with the scenario schema and
builds them as a sweep does; this module only says which option applies to which link and
channel, and names the option in the schema's messages.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from semlink.cli._shared import (EXIT_OK, LazyChoices, add_command, add_output, add_overrides,
                                 check_image_suffix, check_output, check_preset, code_rate,
                                 device_name, finite_float, image_shape, make_console,
                                 non_negative_int, output_option, path, positive_int, say,
                                 shape_text, snr_db)
from semlink.errors import InputError

__all__ = ["add_parsers"]

#: Each link's own options of `semlink transmit`, with their defaults.
_LINK_OPTIONS = {
    "semantic": {"preset": "small", "weights": None, "steps": None, "estimate": None},
    "classical": {"channel_uses": 288, "modulation": 16, "code_rate": 0.5, "harq": 1,
                  "harq_combining": "chase", "harq_groups": None, "codec": "jpeg2000"},
    "capacity": {"channel_uses": 288, "codec": "jpeg2000"},
}
#: The channel options of `semlink transmit`: which channels take each (None: all).
_CHANNEL_OPTIONS = {"k_factor_db": ("rician",), "rx_antennas": ("rayleigh", "rician"),
                    "tx_antennas": ("rayleigh", "rician"), "csi_error_var": ("rayleigh", "rician"),
                    "normalized_doppler": ("rayleigh", "rician"), "amplifier_backoff_db": None,
                    "phase_noise_linewidth": ("awgn", "rayleigh", "rician"),
                    "frequency_offset": ("awgn", "rayleigh", "rician"),
                    "pilot_spacing": ("awgn", "rayleigh", "rician")}
#: Why OFDM takes no such option (its scenario section has another one).
_NOT_ON_OFDM = {"phase_noise_linewidth": "a scenario gives its oscillator in Hz",
                "frequency_offset": "a scenario gives its oscillator in Hz",
                "pilot_spacing": "it estimates on its grid's pilots"}
#: The option behind each field of the link and channel sections transmit() names in errors.
_OPTION_OF = {
    "link.preset": "--preset", "link.weights": "--weights", "link.steps": "--steps",
    "link.transmission.estimate": "--estimate", "link.bandwidth": "--channel-uses",
    "link.bandwidth.channel_uses": "--channel-uses", "link.modulation": "--modulation",
    "link.code_rate": "--code-rate", "link.codec": "--codec",
    "link.harq.max_transmissions": "--harq",
    "link.harq.combining": "--harq-combining", "link.harq.code_block_groups": "--harq-groups",
    "channel.type": "--channel", "channel.k_factor_db": "--k-factor-db",
    "channel.num_rx_antennas": "--rx-antennas", "channel.num_tx_antennas": "--tx-antennas",
    "channel.csi_error_var": "--csi-error-var",
    "channel.normalized_doppler": "--normalized-doppler",
    "channel.amplifier.input_backoff_db": "--amplifier-backoff-db",
    "channel.phase_noise_linewidth": "--phase-noise-linewidth",
    "channel.frequency_offset": "--frequency-offset",
    "channel.phase_tracking.pilot_spacing": "--pilot-spacing", "snr_db": "--snr-db",
    "seed": "--seed", "device": "--device",
}


def add_parsers(sub) -> None:
    """Add ``transmit`` and ``papr`` to the sub-command parsers ``sub``."""
    p = add_command(sub, "transmit", help="send one image through a link and save the result",
                    examples=["transmit photo.jpg --snr-db 5 -o recon.png",
                              "transmit photo.jpg --snr-db 2 --link classical --harq 4 "
                              "-o recon.png",
                              "transmit photo.jpg --snr-db 5 --channel rician --k-factor-db 6 "
                              "--rx-antennas 2 -o recon.png"],
                    quiet="do not print the line on the result",
                    verbose="also print the link and channel sections it ran (JSON) on "
                            "stderr")
    p.add_argument("image", type=path, help="image file")
    add_output(p, aliases=["--out"], required=True, help="output image (PNG)")
    p.add_argument("--snr-db", type=snr_db, required=True, help="Es/N0 in dB")
    p.add_argument("--link", choices=list(_LINK_OPTIONS), default="semantic",
                   help="semantic (default); classical: JPEG2000 + LDPC + QAM; capacity: "
                        "JPEG2000 over an ideal code at the AWGN capacity of --snr-db")
    # A metavar of its own: argparse would read the choices (and import the schema) to make one.
    p.add_argument("--channel", choices=LazyChoices("semlink.scenario", "CHANNEL_TYPES"),
                   default="awgn", metavar="TYPE",
                   help="one of %(choices)s: awgn (default); rayleigh or rician: fast flat "
                        "fading, perfect CSI; ofdm: TDL-A with LS estimates")
    p.add_argument("--k-factor-db", type=finite_float,
                   help="--channel rician: K factor, dB (required there)")
    p.add_argument("--rx-antennas", type=positive_int,
                   help="--channel rayleigh or rician: receive antennas combined by MRC "
                        "(default 1)")
    p.add_argument("--tx-antennas", type=int, choices=[1, 2],
                   help="--channel rayleigh or rician: 2 sends Alamouti's space-time block "
                        "code (default 1)")
    p.add_argument("--csi-error-var", type=finite_float,
                   help="--channel rayleigh or rician: variance of the receiver's channel-"
                        "estimation error (default 0, perfect CSI)")
    p.add_argument("--amplifier-backoff-db", type=finite_float,
                   help="a transmit amplifier (Rapp, p = 2) at this input back-off, dB (default: "
                        "linear); on --channel ofdm it acts on the time-domain signal")
    p.add_argument("--normalized-doppler", type=finite_float,
                   help="--channel rayleigh or rician: f_D T_s, time-correlated (Jakes) fading "
                        "instead of independent fading per symbol")
    p.add_argument("--phase-noise-linewidth", type=finite_float, metavar="V",
                   help="receiver oscillator linewidth times symbol period: Wiener phase noise "
                        "(default: none)")
    p.add_argument("--frequency-offset", type=finite_float, metavar="V",
                   help="receiver oscillator frequency offset times symbol period (default: "
                        "none)")
    p.add_argument("--pilot-spacing", type=positive_int, metavar="P",
                   help="track the phase on a pilot before every P data symbols and after the "
                        "last (default: untracked)")
    p.add_argument("--preset", help="semantic link: preset (default small)")
    p.add_argument("--weights", type=path, help="semantic link: weights directory (real presets)")
    p.add_argument("--steps", type=positive_int,
                   help="semantic link: sampling steps (default: the preset's)")
    p.add_argument("--estimate", choices=["none", "lmmse", "noise-matched"],
                   help="semantic link: the receiver's symbol estimate (default none, the "
                        "paper's; docs/semantic-link.md)")
    p.add_argument("--size", type=image_shape, default=(256, 256),
                   help="image side (square) or WIDTHxHEIGHT in pixels, each 64..4096 and a "
                        "multiple of 32 (default 256)")
    p.add_argument("--channel-uses", type=positive_int,
                   help="classical and capacity links: complex channel uses (default 288 = small "
                        "preset, 256 px)")
    p.add_argument("--codec", choices=["jpeg2000", "jpeg"],
                   help="classical and capacity links: the source codec, jpeg2000 (default) or "
                        "jpeg (the largest quality whose whole file fits the frame)")
    p.add_argument("--modulation", type=int, choices=[2, 4, 16, 64, 256],
                   help="classical link: QAM order (default 16)")
    p.add_argument("--code-rate", type=code_rate,
                   help="classical link: LDPC rate, e.g. 1/2 (default) or 0.75")
    p.add_argument("--harq", type=positive_int, metavar="T",
                   help="classical link: HARQ, at most T sends of the frame (default 1: one "
                        "send)")
    p.add_argument("--harq-combining", choices=["chase", "ir"],
                   help="classical link: chase (default: the same symbols again, combined) or "
                        "ir (incremental redundancy: the next redundancy version)")
    p.add_argument("--harq-groups", type=int, choices=[2, 4, 6, 8], metavar="N",
                   help="classical link: resend only the groups of code blocks with a failed "
                        "block, of at most N groups: 2, 4, 6 or 8 (5G CBG; default: the whole "
                        "frame)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--device", type=device_name, default="auto")
    # Their arguments go into the links and models, whose checks raise ValueError.
    p.set_defaults(func=_cmd_transmit, value_error_is_input=True)

    p = add_command(sub, "papr", help="how far above its mean power each link's transmitted "
                                      "signal goes, on the scenario's waveform",
                    examples=["papr scenarios/ofdm-amplifier.yaml",
                              "papr scenarios/ofdm-amplifier.yaml --images 2 -o ccdf.csv "
                              "--plot plots/"],
                    quiet="no table (with -o or --plot, only the files)")
    p.add_argument("scenario", type=path, help="scenario YAML file")
    add_overrides(p)
    p.add_argument("--link", nargs="+", help="links to measure (default: all)")
    p.add_argument("--images", type=positive_int, default=8, metavar="N",
                   help="send the scenario's first N images (default 8)")
    p.add_argument("--snr-db", type=finite_float,
                   help="adaptive links: send the frame chosen at this SNR (default: the "
                        "scenario's first SNR point)")
    p.add_argument("--device", type=device_name,
                   help="run on this device instead of the scenario's (auto, cpu, cuda, cuda:N)")
    add_output(p, aliases=["--csv"],
               help="also write the power CCDF (0 to 16 dB in 0.25 dB steps) as CSV")
    p.add_argument("--plot", type=path, metavar="DIR",
                   help="also plot the power CCDF into DIR (power_ccdf.png and .pdf)")
    p.set_defaults(func=_cmd_papr)


# ---------------------------------------------------------------------------- transmit
def _cmd_transmit(args: argparse.Namespace) -> int:
    import json

    from semlink.images import load_image, save_image
    from semlink.scenario import ScenarioError
    from semlink.transmission import transmit

    _check_link_options(args)
    _check_channel_options(args)
    option = output_option(args)
    check_image_suffix(args.output, option=option)
    image = load_image(args.image, args.size).unsqueeze(0)  # [1, 3, H, W]
    try:
        result = transmit(image, link=_link_section(args), channel=_channel_section(args),
                          snr_db=args.snr_db, seed=args.seed, device=args.device)
    except ScenarioError as err:
        raise ScenarioError([_option_message(problem) for problem in err.problems]) from None
    except InputError as err:
        raise InputError(_option_message(str(err))) from None
    save_image(result.images[0], args.output)
    if args.verbose:
        link = result.link.model_dump(mode="json", exclude_none=True, by_alias=True)
        print(f"link: {json.dumps(link)}\n"
              f"channel: {json.dumps(result.channel.model_dump(mode='json', exclude_none=True))}",
              file=sys.stderr)
    say(args, f"{args.output}: {result.describe(0)}")
    return EXIT_OK


def _check_link_options(args: argparse.Namespace) -> None:
    """Refuse the other links' options (they would be ignored), then fill in the defaults of
    this link's (None on the command line: not given)."""
    from semlink.scenario import MAX_HARQ_TRANSMISSIONS

    mine = _LINK_OPTIONS[args.link]
    for name in dict.fromkeys(n for options in _LINK_OPTIONS.values() for n in options):
        if name not in mine and getattr(args, name) is not None:
            links = [link for link, options in _LINK_OPTIONS.items() if name in options]
            raise InputError(f"--{name.replace('_', '-')}: applies to the {' and '.join(links)} "
                             f"link{'s' if len(links) > 1 else ''}, not to --link {args.link}")
    for name, default in mine.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.link == "semantic":
        check_preset(args.preset)
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
                         f"{3 * args.size[0] * args.size[1]} for --size {shape_text(args.size)} "
                         f"(one channel use per pixel value); got {args.channel_uses}")


def _check_channel_options(args: argparse.Namespace) -> None:
    """Refuse a channel option where the channel, or the capacity link, has no such setting
    (the schema checks the values)."""
    for name, channels in _CHANNEL_OPTIONS.items():
        if getattr(args, name) is None or channels is None or args.channel in channels:
            continue
        option = f"--{name.replace('_', '-')}"
        if args.channel == "ofdm" and name in _NOT_ON_OFDM:
            raise InputError(f"{option}: applies to --channel awgn, rayleigh or rician, not to "
                             f"--channel ofdm ({_NOT_ON_OFDM[name]})")
        raise InputError(f"{option}: applies to --channel {' or '.join(channels)}, not to "
                         f"--channel {args.channel}")
    for name in ("amplifier_backoff_db", "phase_noise_linewidth", "frequency_offset"):
        if getattr(args, name) is not None and args.link == "capacity":
            raise InputError(f"--{name.replace('_', '-')}: the capacity link counts only the "
                             "channel's noise; use --link classical")
    if args.channel == "rician" and args.k_factor_db is None:
        raise InputError("--k-factor-db: --channel rician needs its K factor (dB)")


def _without_none(section: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in section.items() if value is not None}


def _link_section(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario link section of --link and its options."""
    if args.link == "semantic":
        return _without_none({"type": "semantic", "preset": args.preset, "weights": args.weights,
                              "steps": args.steps,
                              "transmission": _without_none({"mode": "analog",
                                                             "estimate": args.estimate})})
    section = {"type": "classical", "bandwidth": {"channel_uses": args.channel_uses},
               "codec": args.codec}
    if args.link == "capacity":
        return {**section, "channel_code": "capacity"}
    harq = None
    if args.harq > 1 or args.harq_combining != "chase":
        harq = _without_none({"max_transmissions": args.harq, "combining": args.harq_combining,
                              "code_block_groups": args.harq_groups})
    return _without_none({**section, "modulation": args.modulation, "code_rate": args.code_rate,
                          "harq": harq})


def _channel_section(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario channel section of --channel and its options."""
    amplifier = (None if args.amplifier_backoff_db is None
                 else {"input_backoff_db": args.amplifier_backoff_db})
    if args.channel == "ofdm":
        return _without_none({"type": "ofdm", "amplifier": amplifier})
    tracking = None if args.pilot_spacing is None else {"pilot_spacing": args.pilot_spacing}
    return _without_none({
        "type": args.channel, "k_factor_db": args.k_factor_db,
        "num_rx_antennas": args.rx_antennas, "num_tx_antennas": args.tx_antennas,
        "csi_error_var": args.csi_error_var, "normalized_doppler": args.normalized_doppler,
        "amplifier": amplifier, "phase_noise_linewidth": args.phase_noise_linewidth,
        "frequency_offset": args.frequency_offset, "phase_tracking": tracking})


def _option_message(problem: str) -> str:
    """A problem transmit() names by its field (``channel.num_rx_antennas: ...``), named by the
    option that set it (``--rx-antennas: ...``); a check on a whole section names the field
    first in its message (``channel: csi_error_var (0.3) must be ...``)."""
    where, sep, message = problem.partition(": ")
    if not sep:
        return problem
    if where in ("link", "channel") and f"{where}.{message.split(' ', 1)[0]}" in _OPTION_OF:
        where = f"{where}.{message.split(' ', 1)[0]}"
    option = _OPTION_OF.get(where)
    return f"{option}: {message}" if option else problem


# ---------------------------------------------------------------------------- papr
def _cmd_papr(args: argparse.Namespace) -> int:
    from rich.table import Table

    from semlink.cli.scenarios import load_scenario_file
    from semlink.devices import resolve_device
    from semlink.export import write_table_csv
    from semlink.link_papr import EXCEEDED_BY, THRESHOLDS_DB, link_papr

    if args.output:
        check_output(args.output, option=output_option(args))
    scenario, _ = load_scenario_file(args.scenario, args.overrides)
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
    make_console(quiet=args.quiet).print(table)
    if args.output:
        curve = [{"link": r.link, "waveform": r.waveform, "threshold_db": t, "ccdf": c}
                 for r in rows for t, c in zip(THRESHOLDS_DB, r.ccdf)]
        say(args, str(write_table_csv(args.output, ["link", "waveform", "threshold_db",
                                                    "ccdf"], curve)))
    if args.plot:
        from semlink.plots import plot_power_ccdf

        for figure in plot_power_ccdf(rows, args.plot, title=f"{scenario.name}: power CCDF"):
            say(args, str(figure))
    return EXIT_OK
