"""Accuracy of calibration without a lab, against the truth and the flat-field calibration of the same phone.

Two simulated phones (the bundled mi_note10, PRNU 1%; examples/profiles/sim_phone_b.json, PRNU 0.5%), each
across its ISO range: a photo session (2 dead-leaves scenes per ISO at the frame's native resolution, bursts of
4 frames with 0.05 px tripod jitter, no flats, no darks) and a flat-field session (16 darks, 4 flat pairs) of
the same sensor. Per ISO the largest K error over the four channels of each estimator: bursts, single frames
(the first frame of each burst alone), the DNG tag (the simulator writes the true model there, so it only
checks the conversion), the flat-field calibration; and the read-std error of the burst calibration (no darks:
Gaussian, including row noise).

A second table checks the single-frame estimator on chosen scenes (mi_note10, PRNU 1%, 512x640 frames,
:func:`calibration.simulate.scene_frame`): a smooth bilinear ramp, and dead leaves of large leaves only
(r >= 24 px; three scenes), per ISO the largest K error over the four channels.

A third table says why single frames of these scenes are hard: how much of the scene itself passes through the
estimator's fine-scale filter (and through a full-resolution green-quincunx difference), against the noise.

A fourth table gives single frames at a phone photo's scale (default 2048x3072, 6 MP; a 0.4 MP frame of these
scenes holds only a few dozen noise-free tiles per channel): two session-style dead-leaves scenes per phone, each
ISO, the phone's PRNU; per frame the largest K error over the four channels, the largest error of the two frames
combined as a calibration combines them (per channel the median of the frames that trust it), and the channels
the estimator marked unreliable.

    python benchmarks/bench_labfree.py [--size 512 768] [--work /tmp/bench_labfree]
        [--chosen-scenes-only | --texture-only | --large-only [--large-size 2048 3072]]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

PHONES = [("mi_note10", [800, 1600, 3200, 6400, 12800], 0.01),
          ("examples/profiles/sim_phone_b.json", [100, 400, 1600, 6400], 0.005)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(512, 768))
    ap.add_argument("--work", default="/tmp/bench_labfree")
    ap.add_argument("--chosen-scenes-only", action="store_true", help="only the second table (a few seconds)")
    ap.add_argument("--texture-only", action="store_true",
                    help="only the third table: how much texture the sessions' scenes put into the fine scale")
    ap.add_argument("--large-only", action="store_true", help="only the fourth table: single frames at 6 MP")
    ap.add_argument("--large-size", type=int, nargs=2, default=(2048, 3072))
    a = ap.parse_args(argv)
    if a.texture_only:
        _texture(a)
        return 0
    if a.large_only:
        _large_frames(a)
        return 0
    if not a.chosen_scenes_only:
        _sessions(a)
    _chosen_scenes()
    _texture(a)
    if not a.chosen_scenes_only:
        _large_frames(a)
    return 0


def _large_frames(a) -> None:
    """Single frames of phone-photo size: the scenes :func:`calibration.simulate_capture` would shoot at that size
    (seed 7: dead leaves down to 2 px, natural colours, gamma 2.2 to linear), each through every ISO of each phone
    (:func:`calibration.simulate.scene_frame`, the phone's PRNU)."""
    from calibration.labfree import single_estimate
    from calibration.pipeline import _combine
    from calibration.simulate import scene_frame
    from isp_sim.profile import load_profile
    from isp_sim.scenes import dead_leaves, natural_palette

    root = Path(__file__).resolve().parents[1]
    h, w = a.large_size
    srng = np.random.default_rng(np.random.SeedSequence([7, 0x5CE]))  # simulate_capture's scene stream, seed 7
    pal = natural_palette(srng)
    scenes = [dead_leaves(srng, max(h, w), palette=pal)[:h, :w].astype(np.float64) ** 2.2 for _ in range(2)]
    print()
    print(f"| phone | ISO | single-frame K, {h}x{w}: largest error per frame | the 2 frames combined | "
          "channels marked unreliable |")
    print("|---|---|---|---|---|")
    for prof_name, isos, prnu in PHONES:
        prof = load_profile(prof_name if not prof_name.endswith(".json") else str(root / prof_name))
        for iso in isos:
            t = prof.at_iso(iso)
            es = [single_estimate(scene_frame(s, t, "RGGB", seed=iso + k, prnu=prnu), "RGGB", t.black_level,
                                  t.white_level) for k, s in enumerate(scenes)]
            errs = np.array([e.K / t.K - 1 for e in es])
            worst = [f"{100 * float(np.max(np.abs(r))):.1f}%" for r in errs]
            med = 100 * float(np.max(np.abs(_combine(es)[1] / t.K - 1)))  # what a calibration of the 2 would use
            bad = [f"frame {k}: {np.flatnonzero(~e.reliable).tolist()}" for k, e in enumerate(es) if not e.reliable.all()]
            print(f"| {Path(prof_name).stem} | {iso} | {', '.join(worst)} | {med:.1f}% | {'; '.join(bad) or '-'} |",
                  flush=True)


def _texture(a) -> None:
    """Per 8x8 tile of the green (Gr) plane of a session scene (the first of mi_note10's photo session, noise-free),
    the scene's own variance through the single-frame estimator's fine-scale filter (the plane's mixed second
    difference, :func:`calibration.labfree._single_tiles`) and through a full-resolution green-quincunx difference
    (Gr minus the mean of its four diagonal Gb neighbours, noise gain 1.25), each over the noise variance the
    true model gives the tile at that ISO: what texture passes for noise (quantiles over the tiles)."""
    from calibration.labfree import _single_tiles, single_estimate
    from calibration.simulate import scene_frame
    from isp_sim.cfa import mosaic
    from isp_sim.profile import load_profile
    from isp_sim.scenes import dead_leaves, natural_palette

    h, w = a.size
    srng = np.random.default_rng(np.random.SeedSequence([7, 0x5CE]))  # simulate_capture's scene stream, seed 7
    pal = natural_palette(srng)
    scene = dead_leaves(srng, max(h, w), palette=pal)[:h, :w].astype(np.float64) ** 2.2
    m = mosaic(scene, "RGGB")
    prof = load_profile("mi_note10")
    print()
    print("| mi_note10 ISO | fine-scale texture / noise per tile, quantiles 10/25/50/75/90% | "
          "green-quincunx difference, same | noisy frame (PRNU 1%), Gr: tiles past its own loose test, judged pure "
          "noise, single-frame K error |")
    print("|---|---|---|---|")
    for iso in (800, 3200, 12800):
        t = prof.at_iso(iso)
        clean = 0.8 * (t.white_level - float(t.black_level.max())) * m / m.max()  # above black, as scene_frame
        noise = lambda mu: t.K[1] * mu + t.read_std[1] ** 2 + t.row_std ** 2 + 1 / 12  # noqa: E731
        gr, gb = clean[0::2, 1::2], clean[1::2, 0::2]
        mu, vf, _ = _single_tiles(gr, 8)
        d = gr[1:, :-1] - 0.25 * (gb[:-1, :-1] + gb[:-1, 1:] + gb[1:, :-1] + gb[1:, 1:])
        th, tw = d.shape[0] // 8 * 8, d.shape[1] // 8 * 8
        q = ((d[:th, :tw] ** 2).reshape(th // 8, 8, tw // 8, 8).mean((1, 3))
             / (1.25 * noise(gr[1:, :-1][:th, :tw]).reshape(th // 8, 8, tw // 8, 8).mean((1, 3))))
        fmt = lambda v: " / ".join(f"{x:.2g}" for x in np.percentile(v, [10, 25, 50, 75, 90]))  # noqa: E731
        e = single_estimate(scene_frame(scene, t, "RGGB", seed=iso), "RGGB", t.black_level, t.white_level)
        print(f"| {iso} | {fmt(vf / noise(mu))} | {fmt(q)} | {e.n_tiles[1] + e.n_rejected[1]}, {e.n_tiles[1]}, "
              f"{100 * (e.K[1] / t.K[1] - 1):+.1f}% |", flush=True)


def _chosen_scenes() -> None:
    from calibration.labfree import single_estimate
    from calibration.simulate import scene_frame
    from isp_sim.profile import load_profile
    from isp_sim.scenes import dead_leaves

    prof = load_profile("mi_note10")
    y, x = np.mgrid[0:512, 0:640]
    ramp = np.repeat((0.03 + 0.97 * (x / 640) * (y / 512))[..., None], 3, axis=2)
    leaves = [dead_leaves(np.random.default_rng(s), 640, r_min=24.0, r_max=300.0)[:512].astype(np.float64) ** 2.2
              for s in (11, 12, 13)]
    print()
    print("| mi_note10 ISO | smooth ramp, single-frame K | large leaves (3 scenes), single-frame K |")
    print("|---|---|---|")
    for iso in (800, 3200, 12800):
        t = prof.at_iso(iso)

        def err(scene, seed):
            e = single_estimate(scene_frame(scene, t, "RGGB", seed=seed), "RGGB", t.black_level, t.white_level)
            return 100 * float(np.max(np.abs(e.K / t.K - 1)))

        lv = [err(s, iso + k) for k, s in enumerate(leaves)]
        print(f"| {iso} | {err(ramp, iso):.1f}% | {', '.join(f'{v:.1f}%' for v in lv)} |", flush=True)


def _sessions(a) -> None:
    from calibration import calibrate, simulate_capture
    from calibration.labfree import single_estimate
    from calibration.rawio import read_raw

    root = Path(__file__).resolve().parents[1]
    print("| phone | ISO | burst K | single-frame K | DNG tag K | flat-field K | burst read std (no darks) |")
    print("|---|---|---|---|---|---|---|")
    for prof, isos, prnu in PHONES:
        pname = Path(prof).stem
        prof_path = prof if not prof.endswith(".json") else str(root / prof)
        w = Path(a.work) / pname
        s = simulate_capture(prof_path, w / "photos_session", isos=isos, n_dark=0, n_flat_pairs=0, size=tuple(a.size),
                             n_scenes=2, burst=4, jitter=0.05, prnu=prnu, seed=7)
        simulate_capture(prof_path, w / "flat_session", isos=isos, n_dark=16, n_flat_pairs=4, size=tuple(a.size),
                         prnu=prnu, seed=7)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rp = calibrate(w / "photos_session", progress=False)
            rf = calibrate(w / "flat_session", progress=False)
        for iso in isos:
            t = s.truth[float(iso)]
            ep = rp.estimates[float(iso)]
            bursts = [le for le in ep.labfree if le.method == "burst"]
            kb = float(np.max(np.abs(ep.K / t.K - 1)))
            singles = []
            for files in s.photo_files[float(iso)]:
                fr = read_raw(files[0])
                try:
                    singles.append(single_estimate(fr.data, fr.pattern, fr.black_level, fr.white_level).K)
                except ValueError:
                    pass
            ks = float(np.max(np.abs(np.median(singles, 0) / t.K - 1))) if singles else float("nan")
            tag = [le for le in ep.labfree if le.method == "dng_tag"]
            kt = float(np.max(np.abs(tag[0].K / t.K - 1))) if tag else float("nan")
            kf = float(np.max(np.abs(rf.estimates[float(iso)].K / t.K - 1)))
            want = np.sqrt(t.read_std**2 + t.row_std**2)
            rd = np.asarray(ep.law["read_std"]) / want - 1
            big = want > 1
            rdm = f"{100 * float(np.max(np.abs(rd[big]))):.1f}%" if big.any() else "(< 1 DN)"
            print(f"| {pname} | {iso} | {100 * kb:.2f}% ({len(bursts)} bursts) | {100 * ks:.1f}% | {100 * kt:.2g}% | "
                  f"{100 * kf:.2f}% | {rdm} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
