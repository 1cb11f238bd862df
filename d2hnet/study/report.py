"""What a study run writes for people: ``panel.png``, ``curves.png`` and ``summary.md`` (``study.json`` is the data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_outputs", "summary_markdown"]

PANEL_COLUMNS = ("gt", "long_input", "short_input", "bm3d_short", "classical_fusion", "d2hnet_generic",
                 "d2hnet_other_phone", "d2hnet_matched")
_BASELINE_LINES = ("short_input", "gaussian_blur_short", "nlm_short", "bm3d_short", "classical_fusion")


def _outputs(out: Path, cache: Path, test: dict) -> dict[str, np.ndarray]:
    o = {"gt": test["gt"], "long_input": test["long"], "short_input": test["short"]}
    for name in ("bm3d_short", "classical_fusion", "gaussian_blur_short", "nlm_short"):
        p = cache / f"baseline_{name}.outputs.npy"
        if p.exists():
            o[name] = np.load(p).astype(np.float32)
    for name in ("d2hnet_generic", "d2hnet_other_phone", "d2hnet_matched", "d2hnet_release_recipe"):
        p = out / f"{name}.outputs.npy"
        if p.exists():
            o[name] = np.load(p).astype(np.float32)
    return o


def write_panel(path: Path, study: dict, outputs: dict[str, np.ndarray], test: dict, n_rows: int = 4) -> Path:
    """One row per test image (its highest-ISO crop), one column per method, PSNR in each title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .stats import psnr_ssim

    images = study["images"]
    rows = []
    for name in images[:n_rows]:
        idx = [i for i, (g, b) in enumerate(zip(test["image"], test["band"])) if g == name]
        rows.append(max(idx, key=lambda i: test["meta"][i]["short_iso"] or 0))
    cols = [c for c in PANEL_COLUMNS if c in outputs]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.1 * len(cols), 2.6 * len(rows)), squeeze=False)
    for r, i in enumerate(rows):
        for c, m in enumerate(cols):
            ax = axes[r, c]
            img = np.clip(outputs[m][i], 0, 1)
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = m.replace("d2hnet_", "").replace("_short", "").replace("_input", "")
            if m == "gt":
                iso = test["meta"][i]["short_iso"]
                title = f"ground truth\n{test['image'][i]}, ISO {iso:.0f}" if iso else "ground truth"
            else:
                title = f"{label}\n{psnr_ssim(img, test['gt'][i])[0]:.2f} dB"
            ax.set_title(title, fontsize=8)
    fig.suptitle("d2hnet study: highest-ISO test crop of each image (PSNR against the ground truth)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_curves(path: Path, study: dict) -> Path:
    """PSNR on the test crops against training steps, for every model, with the baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    offset = 0
    gen = study["curves"].get("d2hnet_generic", [])
    g_end = max((p["step"] for p in gen), default=0)
    for name, pts in study["curves"].items():
        off = 0 if name == "d2hnet_generic" else g_end
        p2 = [p for p in pts if p["phase"] == 2]
        p1 = [p for p in pts if p["phase"] == 1]
        line, = ax.plot([p["step"] + off for p in p2], [p["psnr"] for p in p2], "-o", ms=3, label=name.replace("d2hnet_", ""))
        if p1:
            ax.plot([p["step"] + off for p in p1], [p["psnr"] for p in p1], ":", color=line.get_color(), lw=1)
        offset = max(offset, max((p["step"] + off for p in pts), default=0))
    for name in _BASELINE_LINES:
        m = study["methods"].get(name)
        if m:
            ax.axhline(m["psnr_mean"], color="0.5", lw=0.8, ls="--")
            ax.text(offset, m["psnr_mean"], f" {name}", fontsize=7, va="center", color="0.3")
    ax.set_xlabel("training step (fine-tunes continue from the generic model's last step)")
    ax.set_ylabel("test PSNR (dB), mean over crops")
    ax.set_title("PSNR vs steps (dotted: phase 1, DeblurNet output alone; solid: phase 2, full pipeline)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ci(v) -> str:
    return f"[{v[0]:+.2f}, {v[1]:+.2f}]"


def summary_markdown(study: dict) -> str:
    """A readable account of one study run."""
    cfg = study["config"]
    m = study["methods"]
    L = ["# d2hnet study", ""]
    L.append(f"Target phone profile `{cfg['profile']}`; test noise from `{cfg['truth']}` (truth); other phone "
             f"`{cfg['other_profile']}`. Test set: {len(study['images'])} photos ({', '.join(study['images'])}), "
             f"{cfg['test_crops']} crops of {cfg['crop']} px each, scored per image (mean over its crops).")
    if study["circular"]:
        L += ["", "**Circular study**: `--truth` equals `--profile`, so the test noise is the matched model's own "
              "training noise. This shows what the calibrated profile is worth only if the calibration is right; "
              "for a real phone, test on real pairs."]
    if cfg.get("quick"):
        L += ["", "`--quick`: a smoke run with tiny budgets; it is not evidence."]
    L += ["", "## Methods (standard protocol: PSNR/SSIM on clamped [0, 1]; 95% bootstrap CI over images)", "",
          "| method | PSNR dB | 95% CI | SSIM |", "|---|---:|---|---:|"]
    for name, r in m.items():
        L.append(f"| {name} | {r['psnr_mean']:.2f} | [{r['psnr_ci95'][0]:.2f}, {r['psnr_ci95'][1]:.2f}] | {r['ssim_mean']:.4f} |")
    L += ["", "## Paired differences (dB, per image; 95% bootstrap CI)", "", "| comparison | mean | 95% CI | images won |",
          "|---|---:|---|---:|"]
    for k, r in study["paired"].items():
        L.append(f"| {k} | {r['mean']:+.2f} | {_ci(r['ci95'])} | {r['wins']}/{r['n']} |")
    L += ["", "## By ISO band of the short frame", "", "| band | short ISO | crops | matched | generic | other phone | "
          "release recipe | BM3D | fusion | matched - other phone | matched - generic |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for b, r in study["by_iso"].items():
        mm, pp = r["methods"], r["paired"]
        L.append(f"| {b} | {r['short_iso_range'][0]:.0f}-{r['short_iso_range'][1]:.0f} | {r['n_crops']} | "
                 f"{mm['d2hnet_matched']['psnr_mean']:.2f} | {mm['d2hnet_generic']['psnr_mean']:.2f} | "
                 f"{mm['d2hnet_other_phone']['psnr_mean']:.2f} | {mm['d2hnet_release_recipe']['psnr_mean']:.2f} | "
                 f"{mm['bm3d_short']['psnr_mean']:.2f} | {mm['classical_fusion']['psnr_mean']:.2f} | "
                 f"{pp['matched_minus_other_phone']['mean']:+.2f} {_ci(pp['matched_minus_other_phone']['ci95'])} | "
                 f"{pp['matched_minus_generic']['mean']:+.2f} {_ci(pp['matched_minus_generic']['ci95'])} |")
    best_base = max(("gaussian_blur_short", "nlm_short", "bm3d_short", "classical_fusion"), key=lambda k: m[k]["psnr_mean"])
    d = m["d2hnet_matched"]["psnr_mean"] - m[best_base]["psnr_mean"]
    L += ["", "## Reading", "",
          f"* The matched model scores {m['d2hnet_matched']['psnr_mean']:.2f} dB; the best classical baseline is "
          f"`{best_base}` at {m[best_base]['psnr_mean']:.2f} dB: the matched model is "
          f"{'above' if d > 0 else 'below'} it by {abs(d):.2f} dB."]
    for k, label in (("matched_minus_other_phone", "another phone's noise shape"), ("matched_minus_generic", "the generic model"),
                     ("matched_minus_release_recipe", "the release's recipe"),
                     ("matched_minus_matched_seed2", "the same fine-tuning with another seed (null control)"),
                     ("matched_minus_ablation_no_long", "the model without its long frame")):
        r = study["paired"][k]
        lo, hi = r["ci95"]
        verdict = "above 0" if lo > 0 else ("below 0" if hi < 0 else "includes 0")
        L.append(f"* matched vs {label}: {r['mean']:+.2f} dB, CI {_ci(r['ci95'])} ({verdict}).")
    L += ["", f"With {len(study['images'])} images the intervals are wide and the percentile bootstrap under-covers; "
          "they are a guide, not a test.", "", "## Set-up", "",
          f"* Networks: D2HNet at reduced widths `{cfg['arch']}`; generic {cfg['generic_steps']} steps (phase 1, phase 2), "
          f"every fine-tune {cfg['finetune_steps']}, batches {cfg['batch']}, {cfg['n_train']} pre-degraded {cfg['crop']} px "
          "training tuples per noise model (dead leaves + textures), same data and steps for every fine-tune.",
          f"* Baseline parameters tuned per ISO band on a separate split: `{cfg['tuned_baselines']}`.",
          "* Noise models: see `study.json` config.noise_models.", "",
          "Files: `study.json` (every number), `panel.png`, `curves.png`, checkpoints `d2hnet_*.pt`.", ""]
    t = study["timing"]
    L.append(f"Time: {t['total_s'] / 60:.1f} min (data {t['data_s']:.0f} s, generic {t['generic_s'] / 60:.1f} min).")
    return "\n".join(L) + "\n"


def write_outputs(out: Path, study: dict, test: dict, cache: Path, log=print) -> None:
    """``panel.png``, ``curves.png``, ``summary.md`` in ``out``."""
    outputs = _outputs(out, cache, test)
    write_panel(out / "panel.png", study, outputs, test)
    write_curves(out / "curves.png", study)
    (out / "summary.md").write_text(summary_markdown(study))
    log(f"wrote {out / 'study.json'}, {out / 'summary.md'}, {out / 'panel.png'}, {out / 'curves.png'}")
