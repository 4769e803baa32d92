"""Write a model bundle of a preset with random weights of its real sizes, for timing a sweep
where the real weights cannot be fetched (a lent GPU machine has no network; speed does not
depend on the weights' values).

    python .ci/random_bundle.py OUT_DIR PRESET [--device cuda] [--seed 0]

OUT_DIR/model.safetensors then holds the preset's encoder, stage B and stage A in the preset's
default dtype on that device (bfloat16 on CUDA), as `semlink train` writes a bundle, so a
semantic link loads it with `--set links.NAME.weights=OUT_DIR`. Prints the file, its size and
the seconds it took.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def write_random_bundle(folder: Path, preset_name: str, *, device: str = "cpu",
                        seed: int = 0) -> Path:
    """``folder/model.safetensors`` with random weights of ``preset_name`` (seeded): the
    models `semlink train` starts from without ``model.init``, in the preset's dtype on
    ``device``, with the architecture in the bundle's info as training records it."""
    import torch

    from semlink.models.bundle import BUNDLE_FILE, save_bundle
    from semlink.models.presets import get_preset
    from semlink.training.config import ModelConfig
    from semlink.training.models import build_training_models

    preset = get_preset(preset_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        models = build_training_models(ModelConfig(preset=preset.name), device=device)
    parts = {name: module.to(preset.default_dtype(device))
             for name, module in models.parts().items()}
    info = {"made_by": ".ci/random_bundle.py (random weights, for timing only)", "seed": seed,
            "architecture": models.architecture()}
    return save_bundle(folder / BUNDLE_FILE, parts, preset=preset.name, info=info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("preset")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    path = write_random_bundle(args.folder, args.preset, device=args.device, seed=args.seed)
    print(f"{path}: {path.stat().st_size / 2**20:.0f} MiB of random {args.preset} weights in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
