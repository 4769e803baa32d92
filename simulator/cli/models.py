"""Commands on models, their weights and reference data: ``fid-stats``, ``bench``,
``weights``, ``train``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semlink.cli._shared import (EXIT_OK, add_command, add_output, add_overrides, check_output,
                                 check_preset, device_name, guidance, image_shape, image_side,
                                 output_option, path, positive_int, say, shape_text)
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

    p = add_command(sub, "bench", help="time the semantic receiver and, on CUDA, SD 1.5 img2img "
                                       "and the Img2Img-SC link (JSON output)",
                    examples=["bench --device cpu --size 64 --batch 1 --img2img-sc",
                              "bench --preset stable-cascade-lite --device cuda --cuda-graphs "
                              "-o bench.json",
                              "bench --device cuda --ldpc 1024 8192 65536 -o ldpc.json"],
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
    i2i = p.add_mutually_exclusive_group()
    i2i.add_argument("--img2img-sc", dest="img2img_sc", action="store_true", default=None,
                     help="time the whole Img2Img-SC link as published (VAE, the 16-QAM bit "
                          "flips, 30 guided DDIM steps) also on the CPU, with tiny random "
                          "models there (default: wherever SD 1.5 img2img is timed, with its "
                          "real sizes)")
    i2i.add_argument("--no-img2img-sc", dest="img2img_sc", action="store_false",
                     help="skip the Img2Img-SC link timing")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay the receiver as a CUDA graph, captured in the warm-up call "
                        "(on the CPU: ignored, timed eagerly, and the JSON's note says so)")
    p.add_argument("--compile", dest="compiled", action="store_true",
                   help="run stage B (and with --ldpc the BP decoder) through torch.compile "
                        "(inductor), compiled in the warm-up call (warmup_seconds includes "
                        "it); stage B's numbers differ from eager by float rounding")
    p.add_argument("--channels-last", action="store_true",
                   help="keep the receiver's convolution weights in the channels-last memory "
                        "format (NHWC convolutions); images differ from the default layout's "
                        "by float rounding")
    p.add_argument("--profile", type=path, metavar="DIR",
                   help="write a torch profiler trace (Chrome JSON) of one steady-state "
                        "receiver call per measurement into DIR (its path in the JSON row)")
    p.add_argument("--ldpc", type=positive_int, nargs="+", metavar="BLOCKS",
                   help="also time the classical link's bit chain (CRC + 5G LDPC n = 1536 rate "
                        "1/2, 16-QAM, AWGN at 10 dB, 20 BP iterations) at these numbers of code "
                        "blocks per call, in information Mbit/s (ldpc_chain in the JSON); "
                        "without --size and --batch the receiver is not timed")
    add_output(p, aliases=["--json"],
               help="also write the JSON to FILE (rewritten after each measurement)")
    p.set_defaults(func=_cmd_bench, value_error_is_input=True)

    p = add_command(sub, "weights",
                    help="check (and with --download fetch) the weights the paper reproduction "
                         "needs: Stable Cascade, the LPIPS backbone, SD 1.5 and BLIP",
                    examples=["weights ~/stable-cascade --sd15 ~/sd15",
                              "weights ~/stable-cascade --download --variant full",
                              "weights weights/stable-cascade --download --layout all "
                              "--variant all --sd15 --blip"],
                    quiet="print nothing (the exit code says whether the folder is ready)")
    from semlink.models.downloads import (DOWNLOAD_LAYOUTS, SD15_VARIANTS, VARIANTS,
                                          download_listing)

    p.epilog = f"{p.epilog}\n\n{download_listing()}"
    p.add_argument("directory", type=path, help="the Stable Cascade weights directory")
    p.add_argument("--download", action="store_true",
                   help="download what is missing or damaged first (huggingface_hub and "
                        "network; the files are listed below)")
    p.add_argument("--variant", choices=VARIANTS, default="lite",
                   help="stage B to download: lite (default), full or all")
    p.add_argument("--layout", choices=DOWNLOAD_LAYOUTS, default="original",
                   help="Stable Cascade layout to download: original (default), diffusers or "
                        "all (both)")
    p.add_argument("--bf16", action="store_true",
                   help="download stage B in bfloat16 (half the size) instead of float32")
    p.add_argument("--sd15", nargs="?", const=True, type=path, metavar="DIR",
                   help="also require (and with --download fetch) Stable Diffusion 1.5 for the "
                        "img2img-sc link, in DIR (default DIRECTORY/sd15)")
    p.add_argument("--sd15-variant", choices=SD15_VARIANTS, default="fp16",
                   help="SD 1.5 files to download: fp16 (default) or fp32")
    p.add_argument("--blip", nargs="?", const=True, type=path, metavar="DIR",
                   help="also require (and with --download fetch) the BLIP captioner, in DIR "
                        "(default DIRECTORY/blip)")
    p.set_defaults(func=_cmd_weights)

    p = add_command(sub, "train", help="fine-tune / train models from a training config",
                    examples=["train scenarios/train-small.yaml --set data.source=photos",
                              "train scenarios/train-small.yaml --set data.source=photos "
                              "--resume -o runs/small",
                              "train scenarios/train-small.yaml --set data.source=photos "
                              "--set phases.0.steps=100"],
                    quiet="no progress bar and no summary line")
    p.add_argument("config", type=path, help="training YAML file")
    add_overrides(p, what="recipe")
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
    if args.ldpc and args.size is None and args.batch is None:
        sizes = []  # --ldpc alone: the bit chain only

    def save(results: dict) -> None:
        """Rewrite -o after each measurement (a run cut short keeps what it measured)."""
        # the list run_bench appended to last: receiver, sd15 img2img, img2img-sc, ldpc chain
        key = next(k for k in ("ldpc_chain", "img2img_sc", "sd15_img2img", "receiver")
                   if results[k])
        last = results[key][-1]
        if key == "ldpc_chain":
            line = (f"ldpc chain, {last['batch_blocks']} blocks: "
                    + (f"{last['information_mbit_per_second']:.4g} Mbit/s" if "error" not in last
                       else last["error"]))
        else:
            what = {"img2img_sc": f"img2img-sc ({last.get('model')})",
                    "sd15_img2img": "sd15 img2img"}.get(key, results["preset"])
            line = (f"{what} {last['image_size']} px, batch {last['batch_size']}: "
                    + (f"{last['seconds_per_image']:.4f} s/image" if "error" not in last
                       else last["error"]))
        if not args.quiet:
            print(f"semlink bench: {line}", file=sys.stderr, flush=True)
        if args.output:
            Path(args.output).write_text(json.dumps(results, indent=1) + "\n")

    if args.output:
        check_output(args.output, option=output_option(args))
    result = run_bench(preset=args.preset, sizes=sizes, batch_sizes=batches, device=device,
                       steps=args.steps, guidance=args.guidance,
                       sd15=False if args.no_sd15 else None, img2img_sc=args.img2img_sc,
                       repeats=args.repeats, cuda_graphs=args.cuda_graphs,
                       compiled=args.compiled, channels_last=args.channels_last,
                       profile_dir=args.profile,
                       ldpc_blocks=args.ldpc or (), on_result=save)
    if not (args.quiet and args.output):
        print(json.dumps(result, indent=1))
    return EXIT_OK


def _cmd_weights(args: argparse.Namespace) -> int:
    from semlink.cli._shared import input_error
    from semlink.models.downloads import BLIP_REPO_ID, describe_extras, plan_downloads
    from semlink.models.fetching import fetch
    from semlink.models.sd15_files import SD15_REPO_ID
    from semlink.models.weights import NOT_READY, describe_weights_dir, scan_weights_dir

    root = Path(args.directory).expanduser()
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: not a directory (give the folder holding the weights).")
    if not root.exists() and not args.download:
        scan_weights_dir(root)  # raises: the directory does not exist
    sd15, blip = _asked_folder(args.sd15, root / "sd15"), _asked_folder(args.blip, root / "blip")

    def plan():
        return plan_downloads(root, variant=args.variant, layout=args.layout, bf16=args.bf16,
                              sd15=sd15, sd15_variant=args.sd15_variant, blip=blip)

    lines = fetch(plan(), progress=not args.quiet) if args.download else []
    parts = plan()
    # After --download: one line per file still missing or damaged and where to put it.
    # Without: those of SD 1.5 and BLIP when asked for; Stable Cascade has the verdict below.
    lines += [line for d in parts if args.download or d.source in (SD15_REPO_ID, BLIP_REPO_ID)
              for line in d.lines()]
    report = scan_weights_dir(root) if root.is_dir() else None
    if report is not None:
        say(args, describe_weights_dir(report))
    say(args, describe_extras(parts, sd15=sd15 or root / "sd15", blip=blip or root / "blip"))
    if report is None or not report.semantic_link_ready:  # a non-zero exit for scripts
        lines.append(f"{root}: not ready for the semantic link ({NOT_READY})")
    return input_error(lines) if lines else EXIT_OK


def _asked_folder(value: str | bool | None, default: Path) -> Path | None:
    """``--sd15`` / ``--blip``: None when not given, ``default`` when given without DIR."""
    if value is None:
        return None
    return default if value is True else Path(value).expanduser()


def _cmd_train(args: argparse.Namespace) -> int:
    from semlink.cli.scenarios import has_top_level_key, is_training_recipe
    from semlink.training import train_main

    if not is_training_recipe(args.config) and has_top_level_key(args.config, "links"):
        raise InputError(f"{args.config}: is a scenario (it has links:, no phases:); run it "
                         f"with semlink run {args.config}")
    return train_main(args.config, resume=args.resume, output=args.output, quiet=args.quiet,
                      device=args.device, overrides=args.overrides)
