"""Commands on models, their weights and reference data: ``fid-stats``, ``bench``,
``weights``, ``train``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semlink.cli._shared import (EXIT_OK, add_command, add_output, check_output, check_preset,
                                 device_name, guidance, image_shape, image_side, output_option,
                                 path, positive_int, say, shape_text)
from semlink.errors import InputError

__all__ = ["add_parsers"]


def add_parsers(sub) -> None:
    """Add ``fid-stats``, ``bench``, ``weights`` and ``train`` to the sub-command parsers
    ``sub``."""
    p = add_command(sub, "fid-stats", help="FID reference statistics of a set of images (.npz, "
                                           "pytorch-fid format) for a scenario's fid_reference",
                    examples=["fid-stats sample --size 256 -o sample-256.npz",
                              "fid-stats 'photos/*.jpg' --size 512 --count 1000 -o ref.npz"],
                    quiet="no summary line")
    p.add_argument("images", type=path, help="folder, glob pattern, or 'sample'")
    p.add_argument("--size", type=image_shape, required=True,
                   help="SIDE or WIDTHxHEIGHT the images are centre-cropped and resized to, as "
                        "in a scenario")
    p.add_argument("--count", type=positive_int, help="at most this many images (by name)")
    p.add_argument("--device", type=device_name, default="auto")
    add_output(p, aliases=["--out"], required=True, help="statistics file to write (.npz)")
    p.set_defaults(func=_cmd_fid_stats)

    p = add_command(sub, "bench", help="time the semantic receiver (JSON output)",
                    examples=["bench --device cpu --size 256 --batch 1",
                              "bench --preset stable-cascade-lite --device cuda -o bench.json"],
                    quiet="no progress lines; with -o, no JSON on stdout either")
    p.add_argument("--preset", default="small",
                   help="on the CPU the real presets are replaced by 'small' (the JSON says so)")
    p.add_argument("--size", type=image_side, nargs="+",
                   help="image sides, px, 64..4096 and multiples of 32 (default 256 512 on CPU, "
                        "512 1024 on CUDA)")
    p.add_argument("--batch", type=positive_int, nargs="+",
                   help="batch sizes (default 1 4 on CPU, 1 4 16 64 on CUDA; stops at the first "
                        "out-of-memory)")
    p.add_argument("--steps", type=positive_int, default=10,
                   help="sampling steps (default 10, the paper's)")
    p.add_argument("--guidance", type=guidance, default=1.1,
                   help="classifier-free guidance (default 1.1, the paper's; 1.0 = no CFG pass)")
    p.add_argument("--repeats", type=positive_int, default=2, help="timed calls after one warm-up")
    p.add_argument("--device", type=device_name, default="auto")
    p.add_argument("--no-sd15", action="store_true", help="skip the SD 1.5 img2img timing (CUDA)")
    add_output(p, aliases=["--json"],
               help="also write the JSON to FILE (rewritten after each measurement)")
    p.set_defaults(func=_cmd_bench, value_error_is_input=True)

    p = add_command(sub, "weights", help="check a Stable Cascade weights directory",
                    examples=["weights ~/stable-cascade",
                              "weights ~/stable-cascade --download --variant full"],
                    quiet="print nothing (the exit code says whether the folder is ready)")
    p.add_argument("directory", type=path)
    p.add_argument("--download", action="store_true",
                   help="download into DIRECTORY first (needs huggingface_hub and network)")
    p.add_argument("--variant", choices=["lite", "full"], default="lite")
    p.set_defaults(func=_cmd_weights)

    p = add_command(sub, "train", help="fine-tune / train models from a training config",
                    examples=["train scenarios/train-small.yaml",
                              "train scenarios/train-small.yaml --resume -o runs/small"],
                    quiet="no progress bar and no summary line")
    p.add_argument("config", type=path, help="training YAML file")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    add_output(p, metavar="DIR", help="output folder (default: the config's)")
    p.add_argument("--device", type=device_name,
                   help="train on this device instead of the config's (auto, cpu, cuda, cuda:N)")
    p.set_defaults(func=_cmd_train)


def _cmd_fid_stats(args: argparse.Namespace) -> int:
    from semlink.devices import resolve_device
    from semlink.images import load_images
    from semlink.metrics.fid import FidStatistics, inception_features, save_fid_statistics

    option = output_option(args)
    if not args.output.endswith(".npz"):  # numpy would append it and the path we print be wrong
        raise InputError(f"{option}: {args.output}: must end in .npz (pytorch-fid's format)")
    check_output(args.output, option=option)
    device = resolve_device(args.device)
    images, _ = load_images(args.images, args.size, count=args.count, field="fid-stats")
    if len(images) < 2:
        raise InputError(f"{args.images}: FID statistics need at least 2 images; found 1")
    stats = FidStatistics.from_features(inception_features(images.to(device)))
    save_fid_statistics(stats, args.output)
    say(args, f"{args.output}: FID statistics of {len(images)} images at "
              f"{shape_text(args.size)} px")
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    import json

    from semlink.bench import run_bench
    from semlink.devices import resolve_device

    check_preset(args.preset)
    device = resolve_device(args.device)
    batches = args.batch or ([1, 4] if device == "cpu" else [1, 4, 16, 64])
    sizes = args.size or ([256, 512] if device == "cpu" else [512, 1024])

    def save(results: dict) -> None:
        """Rewrite -o after each measurement (a run cut short keeps what it measured)."""
        last = (results["sd15_img2img"] or results["receiver"])[-1]
        what = "sd15 img2img" if results["sd15_img2img"] else results["preset"]
        if not args.quiet:
            print(f"semlink bench: {what} {last['image_size']} px, batch {last['batch_size']}: "
                  + (f"{last['seconds_per_image']:.4f} s/image" if "error" not in last
                     else last["error"]), file=sys.stderr, flush=True)
        if args.output:
            Path(args.output).write_text(json.dumps(results, indent=1) + "\n")

    if args.output:
        check_output(args.output, option=output_option(args))
    result = run_bench(preset=args.preset, sizes=sizes, batch_sizes=batches, device=device,
                       steps=args.steps, guidance=args.guidance,
                       sd15=False if args.no_sd15 else None, repeats=args.repeats,
                       on_result=save)
    if not (args.quiet and args.output):
        print(json.dumps(result, indent=1))
    return EXIT_OK


def _cmd_weights(args: argparse.Namespace) -> int:
    from semlink.models.weights import (NOT_READY, describe_weights_dir, download_weights,
                                        scan_weights_dir)

    if args.download:
        download_weights(args.directory, variant=args.variant)
    report = scan_weights_dir(args.directory)
    say(args, describe_weights_dir(report))
    if not report.semantic_link_ready:  # a non-zero exit for scripts that check a folder
        raise InputError(f"{args.directory}: not ready for the semantic link ({NOT_READY})")
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from semlink.cli.scenarios import has_top_level_key, is_training_recipe
    from semlink.training import train_main

    if not is_training_recipe(args.config) and has_top_level_key(args.config, "links"):
        raise InputError(f"{args.config}: is a scenario (it has links:, no phases:); run it "
                         f"with semlink run {args.config}")
    return train_main(args.config, resume=args.resume, output=args.output, quiet=args.quiet,
                      device=args.device)
