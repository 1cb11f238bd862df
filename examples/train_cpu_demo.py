"""Train a small D2HNet on the CPU from the bundled sharp photos, and check it on held-out tuples.

1. Synthesise tuples with random camera shake (``d2hnet.data.synth_from_stills``)
   from ``coffee`` and ``astronaut`` (training) and ``chelsea`` (held out).
2. Write a deterministic noisy validation set from the held-out tuples with the
   ``mi_note10`` profile (``make_val``).
3. Train phase 1 then phase 2 (examples/configs/cpu_demo.toml: narrow nets,
   128 crops) for a bounded number of steps each.
4. Report PSNR/SSIM on the held-out set: the better of the two noisy inputs,
   the untrained model, the trained model.

Run::

    python examples/train_cpu_demo.py --work /tmp/d2h_demo --steps1 300 --steps2 150
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("d2h_demo"), help="work folder (data, run)")
    ap.add_argument("--steps1", type=int, default=300, help="phase-1 steps")
    ap.add_argument("--steps2", type=int, default=150, help="phase-2 steps")
    ap.add_argument("--tuples", type=int, default=12, help="training tuples per training photo")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    import torch

    from d2hnet.config import load_config
    from d2hnet.data import make_val, synth_from_stills
    from d2hnet.models import D2HNet
    from d2hnet.train import train
    from d2hnet.validate import evaluate, evaluate_inputs, format_results
    from isp_sim.imageio import sample_image_path

    work = args.work.resolve()
    data = work / "data"
    if not (data / "train").exists():
        synth_from_stills([sample_image_path("coffee"), sample_image_path("astronaut")], data / "train",
                          tuples_per_image=args.tuples, seed=0, progress=True)
        synth_from_stills([sample_image_path("chelsea")], data / "held_out", tuples_per_image=4, seed=1)
        make_val(data / "held_out", data / "val", "mi_note10", seed=0, crop=128)
    cfg_path = work / "cpu_demo.toml"
    shutil.copyfile(EXAMPLE_DIR / "configs" / "cpu_demo.toml", cfg_path)
    cfg = load_config(cfg_path, overrides={"run": {"num_workers": args.workers}})
    if Path(cfg["run"]["out_dir"]).exists():
        shutil.rmtree(cfg["run"]["out_dir"])
    t0 = time.time()
    train(cfg_path, phases=(1,), max_steps=args.steps1)
    t1 = time.time()
    train(cfg_path, phases=(2,), max_steps=args.steps2)
    t2 = time.time()
    out = Path(cfg["run"]["out_dir"])
    torch.manual_seed(0)
    untrained = D2HNet(cfg["model"])
    trained = out / "model_phase2.pt"
    res = {
        "inputs": evaluate_inputs(data / "val"),
        "untrained": evaluate(untrained, data / "val", device="cpu"),
        "trained": evaluate(trained, data / "val", device="cpu"),
        "train_seconds": {"phase1": round(t1 - t0, 1), "phase2": round(t2 - t1, 1)},
        "steps": {"phase1": args.steps1, "phase2": args.steps2},
    }
    print(format_results(res["inputs"]["long"], "input: long (blurred)"))
    print(format_results(res["inputs"]["short"], "input: short (noisy)"))
    print(format_results(res["inputs"]["best"], "input: better of the two, per image"))
    print(format_results(res["untrained"], "untrained D2HNet"))
    print(format_results(res["trained"], f"trained D2HNet ({args.steps1} + {args.steps2} steps)"))
    print(json.dumps(res["train_seconds"]))
    (work / "results.json").write_text(json.dumps(res, indent=1))
    best, tr = res["inputs"]["best"]["all"]["psnr"], res["trained"]["all"]["psnr"]
    print(f"trained {tr:.2f} dB vs better input {best:.2f} dB vs untrained {res['untrained']['all']['psnr']:.2f} dB")


if __name__ == "__main__":
    main()
