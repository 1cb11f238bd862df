"""The calibration report: PNG plots and one markdown summary with every parameter and warning.

Plots (matplotlib ``Figure`` objects with the Agg canvas; global matplotlib state is not touched):

* ``ptc_iso{ISO}.png``: photon transfer per channel (tile variance vs mean above black, fit, 70% limit);
* ``k_vs_iso.png``: K per channel vs ISO with the line (and the break, if any);
* ``sigma_vs_k.png``: ln read std and ln row std vs ln K with the fitted lines;
* ``ppcc_iso{ISO}.png``: PPCC curves of the Tukey-lambda shape per channel;
* ``dark_hist_iso{ISO}.png``: dark residual histograms vs the Tukey and Gaussian models, with KL divergences.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .discovery import CLASSIFY_RULE

CHANNELS = ("R", "Gr", "Gb", "B")
COLORS = ("tab:red", "tab:green", "tab:olive", "tab:blue")


def new_figure(w=7.0, h=4.5, n=1, m=1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, m, squeeze=False)
    return fig, axes


def save_figure(fig, path: Path) -> Path:
    from matplotlib.ticker import NullFormatter

    for a in fig.axes:  # log axes: label decades only, minor labels collide
        for axis in (a.xaxis, a.yaxis):
            if axis.get_scale() == "log":
                axis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    fig.savefig(path)
    return path


def _readable_log_ticks(a) -> None:
    """Plain-number labels at 1-2-5 steps on log axes that span little more than a decade (no lone 10^k)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    for axis in (a.xaxis, a.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    a.tick_params(labelsize=7)


def plot_ptc(est, path: Path, usable_max: float) -> Path:
    fig, ax = new_figure(8, 6, 2, 2)
    for c in range(4):
        a = ax[c // 2][c % 2]
        m = np.concatenate([t.mean[c] for t in est.pairs])
        v = np.concatenate([t.var[c] for t in est.pairs])
        clip = np.concatenate([t.clipped[c] for t in est.pairs])
        used = (~clip) & (m <= usable_max) & (m > 0)
        a.loglog(m[used], v[used], ".", ms=3, color=COLORS[c], label="tiles used")
        if (~used).any():
            a.loglog(np.maximum(m[~used], 1e-3), np.maximum(v[~used], 1e-3), "x", ms=3, color="0.6", label="not used")
        f = est.ptc[c]
        xs = np.geomspace(max(m[m > 0].min() if (m > 0).any() else 1, 1e-2), max(m.max(), 2), 100)
        d0 = float(est.dark.bias[c])
        a.loglog(xs, f.K * (xs - d0) + f.intercept, "k-", lw=1, label=f"K={f.K:.4g}±{f.K_err:.2g} DN/e-")
        a.axvline(usable_max, color="0.5", ls="--", lw=0.8)
        _ptc_axes(a, f"{CHANNELS[c]}  ISO {est.iso:g}")
    return save_figure(fig, path)


def _ptc_axes(a, title: str, ylabel: str = "temporal variance (DN²)") -> None:
    """Title, axis labels, readable log ticks and legend of one photon-transfer panel."""
    a.set_title(title, fontsize=9)
    a.set_xlabel("mean above black (DN)", fontsize=8)
    a.set_ylabel(ylabel, fontsize=8)
    _readable_log_ticks(a)
    a.legend(fontsize=7)


def plot_k_vs_iso(result, path: Path) -> Path:
    fig, ax = new_figure()
    a = ax[0][0]
    isos = np.array(result.isos)
    for c in range(4):
        k = np.array([result.estimates[i].K[c] for i in isos])
        e = np.array([result.estimates[i].K_err[c] for i in isos])
        a.errorbar(isos, k, yerr=e, fmt="o", ms=4, color=COLORS[c], label=CHANNELS[c])
    kv = result.cross["k_vs_iso"]
    xs = np.linspace(0, isos.max() * 1.05, 50)
    if kv.get("line"):
        a.plot(xs, kv["line"]["slope"] * xs + kv["line"]["intercept"], "k-", lw=0.8, label="line (mean K)")
    b = kv.get("break")
    if b:
        for seg in ("low", "high"):
            a.plot(xs, b[seg]["slope"] * xs + b[seg]["intercept"], "--", lw=0.8, label=f"{seg} segment")
        a.axvline(0.5 * (b["iso_below"] + b["iso_above"]), color="0.4", ls=":")
    a.set_xlabel("ISO")
    a.set_ylabel("K (DN per electron)")
    a.legend(fontsize=8)
    return save_figure(fig, path)


def plot_sigma_vs_k(result, path: Path) -> Path:
    fig, ax = new_figure()
    a = ax[0][0]
    pts = result.profile.points
    km = np.array([math.exp(np.mean(np.log(p["K"]))) for p in pts])
    rs = np.array([math.exp(np.mean(np.log(np.maximum(p["quality"]["gaussian_read_std"], 1e-9)))) for p in pts])
    row = np.array([p["row_std"] for p in pts])
    a.plot(np.log(km), np.log(rs), "o", label="read std")
    if np.all(row > 0):
        a.plot(np.log(km), np.log(row), "s", label="row std")
    xs = np.linspace(np.log(km).min() - 0.2, np.log(km).max() + 0.2, 20)
    for key, lab in (("gaussian_read_std", "read line"), ("row_std", "row line")):
        f = result.profile.models.get(key)
        if f:
            a.plot(xs, f["slope"] * xs + f["bias"], "-", lw=0.8,
                   label=f"{lab}: slope {f['slope']:.3f}, bias {f['bias']:.3f}, resid {f['sigma_residual']:.3f}")
    a.set_xlabel("ln K (mean over channels)")
    a.set_ylabel("ln sigma (DN)")
    a.legend(fontsize=8)
    return save_figure(fig, path)


def plot_labfree(est, path: Path) -> Path:
    """Photon transfer from photos: each estimate's binned points and its line (bursts: the temporal variance of
    the frame differences; single frames: the fine-scale spatial variance of the tiles judged pure noise)."""
    fig, ax = new_figure(8, 6, 2, 2)
    styles = {"burst": "o", "single": "s", "dng_tag": None}
    for c in range(4):
        a = ax[c // 2][c % 2]
        for le in est.labfree:
            if le.points and styles.get(le.method):
                m, v = le.points[c]
                a.loglog(m, np.maximum(v, 1e-3), styles[le.method], ms=3, mfc="none", color=COLORS[c], alpha=0.7)
        xs = np.geomspace(1.0, 1e3, 50)
        a.loglog(xs, est.K[c] * xs + est.ptc[c].intercept, "k-", lw=1, label=f"{est.method}: K={est.K[c]:.4g} DN/e-")
        for le in est.labfree:
            if le.method != est.method:
                a.loglog(xs, le.K[c] * xs + le.dark_var[c], "--", lw=0.8, label=f"{le.method}: K={le.K[c]:.4g}")
        methods = {le.method for le in est.labfree if le.points}
        ylabel = ("noise variance (DN²): o temporal, s fine-scale spatial" if {"burst", "single"} <= methods
                  else "fine-scale spatial variance (DN²)" if "single" in methods else "temporal variance (DN²)")
        _ptc_axes(a, f"{CHANNELS[c]}  ISO {est.iso:g} (photos: o burst, s single frame)", ylabel)
    return save_figure(fig, path)


def plot_ppcc(est, path: Path) -> Path:
    fig, ax = new_figure()
    a = ax[0][0]
    for c in range(4):
        lf = est.dark.laws[c]
        if lf is None:
            continue
        a.plot(lf.lambda_grid, lf.ppcc_curve, "-", color=COLORS[c], label=f"{CHANNELS[c]}: lambda {lf.tukey_lambda:.3f}")
        a.axvline(lf.tukey_lambda, color=COLORS[c], lw=0.5, ls=":")
    a.set_xlabel("Tukey lambda")
    a.set_ylabel("PPCC")
    a.set_title(f"ISO {est.iso:g}" + ("  (quantisation-dominated)" if np.all(est.dark.quant_dominated) else ""))
    a.legend(fontsize=8)
    return save_figure(fig, path)


def plot_dark_hist(est, path: Path) -> Path:
    fig, ax = new_figure(8, 6, 2, 2)
    for c in range(4):
        a = ax[c // 2][c % 2]
        lf = est.dark.laws[c]
        if lf is None:
            continue
        ctr = 0.5 * (lf.hist_edges[1:] + lf.hist_edges[:-1])
        a.semilogy(ctr, np.maximum(lf.hist_counts, 0.5), ".", ms=3, color="k", label="dark residuals")
        a.semilogy(ctr, np.maximum(lf.hist_model_tukey, 0.5), "-", color=COLORS[c],
                   label=f"Tukey {lf.tukey_lambda:.3f}: KL {lf.kl_tukey:.2e}")
        a.semilogy(ctr, np.maximum(lf.hist_model_gauss, 0.5), "--", color="0.4", label=f"Gaussian: KL {lf.kl_gauss:.2e}")
        a.set_title(f"{CHANNELS[c]}  ISO {est.iso:g}", fontsize=9)
        a.set_xlabel("residual (DN)", fontsize=8)
        a.set_ylabel("pixels per bin (log scale)", fontsize=8)
        a.legend(fontsize=7)
    return save_figure(fig, path)


def _fmt(v, nd=4):
    if v is None:
        return "-"
    if isinstance(v, (list, tuple, np.ndarray)):
        return ", ".join(_fmt(x, nd) for x in v)
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(v)
    v = float(v)
    return "nan" if not math.isfinite(v) else f"{v:.{nd}g}"


def write_report(result, out_dir: str | os.PathLike, *, profile_path: str | os.PathLike | None = None) -> Path:
    """Write the plots and ``summary.md`` for a :class:`calibration.CalibrationResult`; returns the summary path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prof = result.profile
    white = prof.sensor.white_level
    usable_max = 0.7 * (white - float(np.max(prof.sensor.black_level)))
    plots = []
    for iso in result.isos:
        e = result.estimates[iso]
        tag = f"{iso:g}"
        plots.append(plot_ptc(e, out / f"ptc_iso{tag}.png", usable_max) if e.pairs
                     else plot_labfree(e, out / f"photo_ptc_iso{tag}.png"))
        if e.labfree and e.pairs:
            plots.append(plot_labfree(e, out / f"photo_ptc_iso{tag}.png"))
        if any(lf is not None for lf in e.dark.laws):
            plots += [plot_ppcc(e, out / f"ppcc_iso{tag}.png"), plot_dark_hist(e, out / f"dark_hist_iso{tag}.png")]
    plots += [plot_k_vs_iso(result, out / "k_vs_iso.png"), plot_sigma_vs_k(result, out / "sigma_vs_k.png")]
    L = []
    L.append(f"# Noise calibration: {prof.sensor.camera}\n")
    L.append(f"Session `{result.raw_dir}` ({result.session.layout} layout); profile `{prof.name}`"
             + (f" written to `{profile_path}`" if profile_path else "") + ".\n")
    L.append(f"Sensor: {prof.sensor.pattern}, {prof.sensor.bit_depth}-bit, white {white} DN, black "
             f"{_fmt(prof.sensor.black_level)} DN (R, Gr, Gb, B). Units: DN; K in DN per electron.\n")
    L.append("## Warnings\n")
    L += [f"- {w}" for w in result.warnings] or ["- none"]
    L.append("\n## Notes\n")
    L += [f"- {n}" for n in result.notes] or ["- none"]
    L.append("\n## Per-ISO parameters (R, Gr, Gb, B)\n")
    L.append("| ISO | darks | flat pairs | K (DN/e-) | K std err | read std (DN) | Tukey lambda | Tukey scale | row std | bias (DN) | DSNU (DN) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for p in prof.points:
        q = p["quality"]
        L.append(f"| {p['iso']:g} | {q['n_dark']} | {q['n_flat_pairs']} | {_fmt(p['K'])} | {_fmt(p['uncertainty']['K'], 2)} | "
                 f"{_fmt(p['read_std'])} | {_fmt(p['read_lambda'], 3)} | {_fmt(p['read_scale'])} | {_fmt(p['row_std'])} | "
                 f"{_fmt(p['bias'], 3)} | {_fmt(q['dsnu'], 3)} |")
    L.append("\n## Methods\n")
    L.append("Which estimator produced each ISO's parameters (calibration.labfree for photos: `burst` = temporal "
             "variance of a static burst, scene and PRNU cancel; `single` = one frame of any scene, the PRNU cannot "
             "be separated; `dng_tag` = the vendor's NoiseProfile model, not a measurement).\n")
    L.append("| ISO | K from | read noise, row noise, bias from | photo estimates: K (R, Gr, Gb, B) | relative to the profile's K |")
    L.append("|---|---|---|---|---|")
    for iso in result.isos:
        e = result.estimates[iso]
        src = {"dark_frames": f"{len(e.dark_files)} dark frames"}.get(e.dark_source, f"{e.dark_source} intercept (no darks)")
        if e.labfree:
            for le in e.labfree:
                L.append(f"| {iso:g} | {e.method.replace('_', ' ')} | {src} | {le.method} ({len(le.files)} file(s)): "
                         f"{_fmt(le.K)} | {_fmt(le.K / e.K - 1, 3)} |")
        else:
            L.append(f"| {iso:g} | {e.method.replace('_', ' ')} | {src} | - | - |")
    L.append("\n## Fit quality\n")
    L.append("| ISO | PTC R² | PTC reduced chi² | PTC max rel. residual | K with free intercept | PPCC Tukey | PPCC Gaussian | KL Tukey | KL Gaussian | quantisation-dominated |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for p in prof.points:
        q = p["quality"]
        L.append(f"| {p['iso']:g} | {_fmt(q['ptc_r2'], 5)} | {_fmt(q['ptc_chi2_red'], 3)} | {_fmt(q['ptc_max_rel_residual'], 3)} | "
                 f"{_fmt(q['ptc_free_intercept_K'])} | {_fmt(q['ppcc_tukey'], 6)} | {_fmt(q['ppcc_gaussian'], 6)} | "
                 f"{_fmt(q['kl_tukey'], 2)} | {_fmt(q['kl_gaussian'], 2)} | {_fmt(q['quantisation_dominated'])} |")
    L.append("\n## Cross-ISO models\n")
    kv = result.cross["k_vs_iso"]
    if kv.get("line"):
        ln = kv["line"]
        L.append(f"- K (geometric mean of channels) vs ISO: K = {ln['slope']:.6g} x ISO + {ln['intercept']:.4g} "
                 f"(reduced chi² {ln['chi2_red']:.3g}, max relative residual {ln['max_rel_residual']:.3g}).")
    b = kv.get("break")
    L.append(f"- Dual-conversion-gain / gain-law break: " + (
        f"between ISO {b['iso_below']:g} and {b['iso_above']:g}; low K = {b['low']['slope']:.6g} ISO + "
        f"{b['low']['intercept']:.4g}, high K = {b['high']['slope']:.6g} ISO + {b['high']['intercept']:.4g}" if b else "none detected"))
    for key, lab in (("read_scale", "Tukey scale"), ("gaussian_read_std", "read std (Gaussian)"), ("row_std", "row std")):
        f = prof.models.get(key)
        if f:
            L.append(f"- ln({lab}) = {f['slope']:.4f} ln K + {f['bias']:.4f}, residual std {f['sigma_residual']:.4f}")
    if prof.models.get("read_lambdas"):
        lam = np.array(prof.models["read_lambdas"])
        L.append(f"- Tukey lambda over ISOs and channels: mean {lam.mean():.4f}, std {lam.std():.4f}, range "
                 f"[{lam.min():.4f}, {lam.max():.4f}] ({lam.size} values)")
    L.append("\n## DNG NoiseProfile (tag 51041)\n")
    L.append("Per ISO (S, O) for R, G, B: S = K/(W-B), O = (read_std² + row_std² + 1/12)/(W-B)²; the DNG tag has one "
             "pair per colour plane, so Gr and Gb are merged by averaging their S and O.\n")
    L.append("| ISO | measured (S, O) R; G; B | tag in the files | S rel. diff (tag/measured - 1) | O rel. diff |")
    L.append("|---|---|---|---|---|")
    for p in prof.points:
        q = p["quality"]
        meas = "; ".join(f"{s:.4g}, {o:.4g}" for s, o in q["dng_noise_profile"])
        tag = "; ".join(f"{s:.4g}, {o:.4g}" for s, o in q["dng_noise_profile_tag"]) if q.get("dng_noise_profile_tag") else "none"
        L.append(f"| {p['iso']:g} | {meas} | {tag} | {_fmt(q.get('dng_tag_S_rel_diff'), 3)} | {_fmt(q.get('dng_tag_O_rel_diff'), 3)} |")
    L.append("\n## Frames\n")
    s = result.session
    L.append(f"- used: {len(prof.provenance.get('files', []))} files; skipped: {len(s.skipped)}; ignored (not raw): {len(s.ignored)}")
    for p, r in s.skipped:
        L.append(f"  - skipped `{p}`: {r}")
    for p in s.ignored:
        L.append(f"  - ignored `{p}` (no raw-file suffix)")
    if s.classification:
        L.append("\nAutomatic classification (mixed folder): " + CLASSIFY_RULE + ".\n")
        L.append("| file | class | max channel mean above black (DN) | neighbour-difference noise (DN) | scene structure |")
        L.append("|---|---|---|---|---|")
        for p, k, m, n, st in s.classification:
            L.append(f"| {Path(p).name} | {k} | {m:.3g} | {n:.3g} | {100 * st:.2f}% |")
    L.append("\n## Plots\n")
    L += [f"![{p.stem}]({p.name})" for p in plots]
    L.append(f"\nProvenance: {prof.provenance.get('tool')}, created {prof.provenance.get('created')}, "
             f"frames captured {prof.provenance.get('captured')}.\n")
    path = out / "summary.md"
    path.write_text("\n".join(L) + "\n")
    return path
