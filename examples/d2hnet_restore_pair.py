"""Restore a long/short exposure pair with D2HNet from Python.

With the official release's weights (GNet-epoch-99.pkl = DeblurNet_v2,
GNet-epoch-149.pkl = DenoiseNet_v2), convert them once, then restore::

    d2hnet convert-release GNet-epoch-99.pkl GNet-epoch-149.pkl -o d2hnet_release.pt
    python examples/d2hnet_restore_pair.py --checkpoint d2hnet_release.pt \\
        --long long.png --short short.png -o restored.png

Without weights, ``--demo`` runs the same code on a synthetic pair with a
small randomly initialised model (the output is meaningless; it shows the API
and writes the images into ``--demo-dir``)::

    python examples/d2hnet_restore_pair.py --demo --demo-dir /tmp/d2hnet_demo

The command-line equivalent of the first form is
``d2hnet restore --long long.png --short short.png --checkpoint d2hnet_release.pt -o restored.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, help="d2hnet checkpoint")
    ap.add_argument("--long", type=Path, help="long exposure (PNG/TIFF, 8/16 bit)")
    ap.add_argument("--short", type=Path, help="short exposure (same size)")
    ap.add_argument("-o", "--output", type=Path, default=Path("restored.png"))
    ap.add_argument("--deblur-size", type=int, default=1024, help="DeblurNet long side (aspect kept)")
    ap.add_argument("--tile-size", type=int, default=1024)
    ap.add_argument("--demo", action="store_true", help="synthetic pair, small random model")
    ap.add_argument("--demo-dir", type=Path, default=Path("d2hnet_demo"))
    args = ap.parse_args()

    import torch

    from isp_sim.imageio import read_rgb, write_image

    from d2hnet import D2HNet, load_checkpoint, restore

    if args.demo:
        torch.manual_seed(0)
        model = D2HNet({"deblurnet": {"ngf": 8}, "enhancenet": {"ngf": 8}})
        rng = np.random.default_rng(0)
        scene = np.kron(rng.random((25, 33, 3), dtype=np.float32), np.ones((16, 16, 1), np.float32))[:384, :512]
        long = np.clip(np.roll(scene, 3, axis=1) + 0.01 * rng.standard_normal(scene.shape, dtype=np.float32), 0, 1)
        short = np.clip(0.9 * scene + 0.08 * rng.standard_normal(scene.shape, dtype=np.float32), 0, 1)
        bit_depth = 8
        args.demo_dir.mkdir(parents=True, exist_ok=True)
        write_image(args.demo_dir / "long.png", long)
        write_image(args.demo_dir / "short.png", short)
        out_path = args.demo_dir / "restored.png"
    else:
        if args.checkpoint is None or args.long is None or args.short is None:
            ap.error("give --checkpoint, --long and --short (or --demo)")
        model = load_checkpoint(args.checkpoint)
        long, bd_l = read_rgb(args.long)
        short, bd_s = read_rgb(args.short)
        bit_depth = max(bd_l, bd_s)
        out_path = args.output

    t0 = time.perf_counter()
    restored, t_up = restore(long, short, model, deblur_size=args.deblur_size, tile_size=args.tile_size,
                             progress=True, return_deblurred=True)
    dt = time.perf_counter() - t0
    write_image(out_path, restored, bit_depth=bit_depth)
    write_image(out_path.with_name(out_path.stem + "_deblur" + out_path.suffix), t_up, bit_depth=bit_depth)
    mp = long.shape[0] * long.shape[1] / 1e6
    print(f"{out_path}: {long.shape[1]}x{long.shape[0]} restored in {dt:.1f} s ({dt / mp:.1f} s/MP)")


if __name__ == "__main__":
    main()
