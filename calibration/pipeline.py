"""``calibrate(raw_dir)``: a capture session's frames -> per-ISO estimates -> cross-ISO models -> NoiseProfile.

Steps (each in its own module): :func:`calibration.discovery.scan` finds and
summarises the frames and feeds the frames of ``dark/`` folders to one
:class:`calibration.estimators.DarkAccumulator` per ISO (bias, DSNU, row noise,
read noise and its law) as it decodes them; classified darks, flat pairs and
photos wait in the frame cache; flat pairs then go once through
:func:`calibration.estimators.flat_pair_tiles`; K per channel comes from the
zero-offset photon-transfer fit (EMVA 1288 style: flat-pair variance minus the
dark-pair variance against mean minus the dark mean) over tiles up to 70% of
saturation; :mod:`calibration.crossiso` fits the ISO dependence. The written
profile reproduces the measured points (``at_iso`` at a measured ISO returns
them) and carries the fits in ``models`` for sampling and diagnostics.

Every problem becomes a message in ``CalibrationResult.warnings`` and a
:class:`~calibration.errors.CalibrationWarning`; the run stops with
:class:`~calibration.errors.CalibrationError` only when no ISO can be calibrated.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isp_sim.cli_support import folder_problem
from isp_sim.params import dng_noise_profile, tukey_lambda_std
from isp_sim.profile import NoiseProfile, profile_dict

from . import crossiso
from .discovery import CLASSIFY_RULE, DarkScan, FlatScan, FrameCache, Session, iter_frames, pair_flats, progress_bar, scan
from .errors import CalibrationError, CalibrationWarning
from .estimators import (SATURATION_FRACTION, DarkAccumulator, DarkStats, PairTiles, PtcFit, fit_photon_transfer,
                         flat_pair_tiles, law_for_profile)

CHANNELS = ("R", "Gr", "Gb", "B")


@dataclass
class IsoEstimate:
    """Everything measured at one ISO (units: DN, K in DN/e-; arrays R, Gr, Gb, B)."""

    iso: float
    dark_files: list
    flat_pairs: list  # [(path_a, path_b)]
    dark: DarkStats
    pairs: list  # PairTiles
    ptc: list  # 4 PtcFit (zero-offset fit)
    ptc_free: list  # 4 PtcFit with a free intercept, as a check
    K: np.ndarray
    K_err: np.ndarray
    law: dict  # read_lambda, read_scale, read_std per channel as written in the profile
    dng_measured: list
    dng_compare: dict | None
    notes: list = field(default_factory=list)
    method: str = "flat_field"  # which estimator produced K: flat_field, burst, single or dng_tag
    dark_source: str = "dark_frames"  # where read noise, row noise and bias come from: dark_frames or the K method
    labfree: list = field(default_factory=list)  # calibration.labfree.LabFreeEstimate of this ISO's photos


@dataclass
class CalibrationResult:
    """Result of :func:`calibrate`: the profile, the per-ISO estimates, cross-ISO fits and all warnings."""

    profile: NoiseProfile
    estimates: dict  # iso -> IsoEstimate
    cross: dict
    session: Session
    warnings: list
    notes: list
    raw_dir: Path

    @property
    def isos(self) -> list[float]:
        return sorted(self.estimates)


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return f"phonenoise {version('phonenoise')}"
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "phonenoise (source tree)"


def _snake(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") or "calibrated"


def calibrate(raw_dir: str | os.PathLike, *, jobs: int = 1, iso_from_name: str | None = None, name: str | None = None,
              min_dsnu_frames: int = 4, tile: int = 32, max_samples: int = 400_000, progress: bool | None = None,
              seed: int = 0, cache_dir: str | os.PathLike | None = None,
              photos: str | os.PathLike | None = None) -> CalibrationResult:
    """Calibrate the noise of the camera whose dark and flat frames are under ``raw_dir`` (module docstring).

    Parameters
    ----------
    raw_dir : folder with ``dark/`` and ``flat/`` sub-folders, or one folder of mixed frames (classified).
    jobs : decoding threads.
    iso_from_name : regular expression whose first group gives the ISO of files without ISO metadata.
    name : profile name (lowercase snake case; default from the camera model).
    min_dsnu_frames : dark frames needed to remove the fixed pattern before the read-noise fit.
    tile : flat tile size in pixels of one CFA channel.
    max_samples : dark residuals per channel and ISO kept for the read-noise law fit.
    progress : show progress bars (default: when stderr is a terminal).
    seed : seed of the residual subsampling and jitter (results are reproducible).
    photos : a folder of photos (tripod bursts or single frames of any scene) besides ``raw_dir/photos/``;
        an ISO without flat pairs is calibrated from them (:mod:`calibration.labfree`), one with flats
        keeps the flat-field result and reports the photo estimates beside it.
    cache_dir : where decoded flats, photos and classified frames wait between the scan and the estimators
        (default: the system's temporary folder; about their uncompressed size, deleted at the end; the frames of
        ``dark/`` folders are accumulated as they are decoded and need no space). Each file is decoded once; frames
        that do not fit (1 GB of free space kept) are decoded again, and the notes say how many.
    """
    import sys

    if progress is None:
        progress = sys.stderr.isatty()
    jobs = max(1, int(jobs))
    root = Path(raw_dir)
    for arg, value, what in (("photos", photos, "photo"), ("cache_dir", cache_dir, "cache")):
        why = folder_problem(value, what) if value is not None else None
        if why:
            raise CalibrationError(f"{arg} {value}: {why}")
    cache = FrameCache(cache_dir)
    try:
        return _calibrate(root, cache, jobs=jobs, iso_from_name=iso_from_name, name=name,
                          min_dsnu_frames=min_dsnu_frames, tile=tile, max_samples=max_samples, progress=progress,
                          seed=seed, photos=photos)
    finally:
        cache.close()


def _calibrate(root: Path, cache, *, jobs, iso_from_name, name, min_dsnu_frames, tile, max_samples, progress,
               seed, photos=None) -> CalibrationResult:
    """The steps of :func:`calibrate`: scan, plan the ISOs, estimate each, build the profile."""
    def make(pattern, black, shape):
        return DarkAccumulator(pattern, black, shape, min_dsnu_frames=min_dsnu_frames, max_samples=max_samples,
                               seed=seed)

    def tiles(a, b, ia, ib):
        return flat_pair_tiles(a, b, ia.pattern, ia.black_level, ia.white_level, tile=tile, files=(ia.path, ib.path),
                               exposure_time=ia.exposure_time)

    dark_scan, flat_scan = DarkScan(make), FlatScan(tiles)
    sess = scan(root, jobs=jobs, iso_from_name=iso_from_name, progress=progress, cache=cache, photos=photos,
                darks=dark_scan, flats=flat_scan)
    run = _Run(sess, cache, jobs=jobs, min_dsnu_frames=min_dsnu_frames, tile=tile, max_samples=max_samples, seed=seed,
               dark_scan=dark_scan, flat_scan=flat_scan)
    if cache.n_refused:
        run.notes.append(f"{cache.n_refused} decoded frame(s) did not fit in the frame cache ({cache.dir.parent}): "
                         "decoded again by the estimators (slower, same results)")
    if not sess.frames:
        reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in sess.skipped[:10]) or "no raw files found"
        raise CalibrationError(f"{root}: no usable frames ({reasons})")
    if sess.layout == "mixed":
        nd = sum(len(v) for v in sess.darks.values())
        nf = sum(len(v) for v in sess.flats.values())
        nph = sum(len(v) for v in sess.photos.values())
        run.notes.append(f"no dark/, flat/ or photos/ folders: frames classified automatically ({CLASSIFY_RULE}): "
                         f"{nd} dark, {nf} flat, {nph} photo")
    plan, plan_lf = run.plan()
    dark_sets = [(iso, d) for iso, (d, _) in plan.items()] + list(plan_lf.items())
    total = (sum(2 * len(run.unscanned_pairs(p)) for _, p in plan.values()) + sum(len(v) for v in sess.photos.values())
             + sum(len(d) for iso, d in dark_sets if not run.scanned(iso, d)))
    run.bar = progress_bar(progress, total, "calibrate")
    estimates: dict[float, IsoEstimate] = {}
    for iso, (darks, pairs) in plan.items():
        est = run.flat_field_iso(iso, darks, pairs)
        if est is not None:
            estimates[iso] = est
            run.notes.extend(est.notes)
    for iso, darks in plan_lf.items():
        est = run.photo_iso(iso, darks)
        if est is not None:
            estimates[iso] = est
            run.notes.extend(est.notes)
    run.bar.close()
    msgs, notes = run.msgs, run.notes
    if not estimates:
        raise CalibrationError(f"{root}: no ISO could be calibrated: " + " | ".join(msgs[-10:]))
    prof_dict, cross = build_profile(estimates, sess, name=name, root=root, msgs=msgs, notes=notes)
    profile = NoiseProfile.from_dict(prof_dict, source=f"calibration of {root}")
    for m in msgs:
        warnings.warn(m, CalibrationWarning, stacklevel=3)
    return CalibrationResult(profile=profile, estimates=estimates, cross=cross, session=sess, warnings=msgs,
                             notes=notes, raw_dir=root)


def _bursts(photos: list) -> list[list]:
    """Photos of one ISO grouped into bursts: consecutive frames (name order) at the same exposure time whose
    channel means agree within 3%; a group of one is a single frame. Metadata only: :meth:`_Run.photo_estimates`
    then splits a group where consecutive frames do not show the same scene
    (:func:`calibration.labfree.same_scene`)."""
    groups: list[list] = []
    for f in photos:
        g = groups[-1] if groups else None
        if g is not None:
            ref = g[-1]
            same_exp = (f.exposure_time or 0) == (ref.exposure_time or 0)
            m0, m1 = np.asarray(ref.channel_mean), np.asarray(f.channel_mean)
            close = np.all(np.abs(m1 - m0) <= 0.03 * np.maximum(np.abs(m0), 1.0))
            if same_exp and close:
                g.append(f)
                continue
        groups.append([f])
    return groups


def _combine(ests: list):
    """The estimate a lab-free ISO uses, in :data:`calibration.labfree.METHODS` order: bursts (inverse-variance mean
    over bursts), the vendor's DNG tag, single frames (median per channel over the frames that do not mark it
    unreliable); returns (method, K, K_err, dark_var)."""
    from .labfree import METHODS

    for m in METHODS:
        sel = [e for e in ests if e.method == m]
        if not sel:
            continue
        K = np.array([e.K for e in sel])
        dv = np.array([e.dark_var for e in sel])
        if m == "burst":
            w = 1.0 / np.maximum(np.array([e.K_err for e in sel]), 1e-12) ** 2
            return m, (w * K).sum(0) / w.sum(0), 1.0 / np.sqrt(w.sum(0)), np.median(dv, axis=0)
        Kerr = np.array([e.K_err for e in sel])
        # per channel the median over the estimates that trust it (all of them where none does)
        ok = np.array([e.reliable for e in sel])
        ok[:, ~ok.any(0)] = True

        def median(a):
            return np.array([np.median(a[ok[:, c], c]) for c in range(4)])

        return m, median(K), median(Kerr) / np.sqrt(ok.sum(0)), median(dv)
    return None


class _Run:
    """One calibration's shared state (the session's sensor, the frame cache, threads, progress, messages) and
    its named steps: :meth:`plan`, :meth:`dark_stats`, :meth:`flat_tiles`, :meth:`ptc_fits`,
    :meth:`flat_field_iso`, :meth:`photo_estimates`, :meth:`photo_iso`."""

    def __init__(self, sess: Session, cache, *, jobs: int, min_dsnu_frames: int, tile: int, max_samples: int,
                 seed: int, dark_scan: DarkScan | None = None, flat_scan: FlatScan | None = None) -> None:
        self.sess, self.cache, self.jobs, self.dark_scan, self.flat_scan = sess, cache, jobs, dark_scan, flat_scan
        self.min_dsnu_frames, self.tile, self.max_samples, self.seed = min_dsnu_frames, tile, max_samples, seed
        self.msgs: list[str] = list(sess.warnings)
        self.notes: list[str] = []
        self.bar = None
        if sess.frames:
            f0 = sess.frames[0]
            self.pattern, self.black, self.white, self.shape = f0.pattern, f0.black_level, f0.white_level, f0.shape
            self.usable_max = SATURATION_FRACTION * (self.white - float(np.max(self.black)))

    def _frames(self, paths):
        def on_error(p, err):
            self.msgs.append(f"skipped {err} (while estimating)")

        return iter_frames(paths, jobs=self.jobs, on_error=on_error, bar=self.bar, cache=self.cache)

    def _few_darks(self, iso, darks) -> None:
        if 0 < len(darks) < self.min_dsnu_frames:
            self.msgs.append(f"ISO {iso:g}: only {len(darks)} dark frame(s) (< {self.min_dsnu_frames}): the dark fixed "
                             "pattern (DSNU) cannot be separated and is counted as read noise")

    def plan(self) -> tuple[dict, dict]:
        """Per ISO, what to estimate: ``{iso: (darks, flat pairs)}`` for the flat-field path and ``{iso: darks}``
        for ISOs with photos but no flat pairs; what cannot be calibrated is said in the messages."""
        sess = self.sess
        plan, plan_lf = {}, {}
        for iso in sorted(set(sess.darks) | set(sess.flats) | set(sess.photos)):
            darks = list(sess.darks.get(iso, []))  # scan order: the order the scan accumulated them in
            pairs, left = pair_flats(sess.flats.get(iso, []))
            for f in left:
                self.msgs.append(f"ISO {iso:g}: flat frame {f.path} has no partner at the same exposure: not used")
            if not pairs and sess.photos.get(iso):
                plan_lf[iso] = darks
                self._few_darks(iso, darks)
                continue
            if not darks or not pairs:
                self.msgs.append(f"ISO {iso:g}: {len(darks)} dark frame(s) and {len(pairs)} flat pair(s); a calibration "
                                 "needs >= 1 dark frame and >= 1 flat pair (2 flats at one exposure): ISO not in the "
                                 "profile")
                continue
            self._few_darks(iso, darks)
            plan[iso] = (darks, pairs)
        return plan, plan_lf

    def scanned(self, iso: float, darks: list) -> bool:
        """Whether the scan already accumulated exactly these dark frames (in this order)."""
        return bool(darks) and self.dark_scan is not None and \
            self.dark_scan.scanned(iso, darks[0].key()) == [str(f.path) for f in darks]

    def dark_stats(self, iso: float, darks: list) -> DarkStats:
        """Bias, DSNU, row noise and the read-noise law from the dark frames: from the scan's accumulator when it
        holds exactly these frames, else in one pass over the cache (frames the scan saw but that changed set, e.g.
        after a copied frame was skipped, are decoded again, and the notes say so)."""
        paths = [f.path for f in darks]
        acc = None
        if self.dark_scan is not None and darks:
            key = darks[0].key()
            before = self.dark_scan.scanned(iso, key)
            acc = self.dark_scan.take(iso, key, paths)
            if acc is None and before:
                self.notes.append(f"ISO {iso:g}: the dark set changed after the scan ({len(before)} accumulated, "
                                  f"{len(paths)} used): its {len(paths)} dark frames were read again")
        if acc is None:
            acc = DarkAccumulator(self.pattern, self.black, self.shape, min_dsnu_frames=self.min_dsnu_frames,
                                  max_samples=self.max_samples, seed=self.seed)
            for p, data in self._frames(paths):
                acc.add(data, Path(p).name)
        return acc.finish()

    def unscanned_pairs(self, pairs: list) -> list:
        """The flat pairs whose tiles the scan did not take."""
        done = self.flat_scan.pairs if self.flat_scan is not None else {}
        return [pr for pr in pairs if (str(pr[0].path), str(pr[1].path)) not in done]

    def flat_tiles(self, iso: float, pairs: list) -> list[PairTiles]:
        """Tile statistics of every flat pair (from the scan, or from the cache); clipped or over-exposed tiles are
        flagged (and said)."""
        done = self.flat_scan.pairs if self.flat_scan is not None else {}
        tiles: list[PairTiles] = []
        for fa, fb in pairs:
            pt = done.pop((str(fa.path), str(fb.path)), None)
            if pt is None:  # not taken by the scan: from the cache (or decoded again)
                data = dict(self._frames([fa.path, fb.path]))
                if len(data) < 2:
                    lost, kept = (fb.path, fa.path) if fa.path in data else (fa.path, fb.path)
                    self.msgs.append(f"ISO {iso:g}: flat frame {lost} was unreadable: its pair with {kept} is not used")
                    continue
                pt = flat_pair_tiles(data[fa.path], data[fb.path], self.pattern, self.black, self.white,
                                     tile=self.tile, files=(fa.path, fb.path), exposure_time=fa.exposure_time)
            pa, pb = pt.files
            nclip = sum(int(c.sum()) for c in pt.clipped)
            over = float(np.max(pt.level)) > self.usable_max
            if nclip or over:
                frac = nclip / sum(c.size for c in pt.clipped)
                what = (f"{100 * frac:.0f}% of its tiles hold clipped pixels" if nclip else "")
                what += ("; " if what and over else "") + (
                    f"mean {float(np.max(pt.level)):.0f} DN above black > {100 * SATURATION_FRACTION:.0f}% of saturation"
                    if over else "")
                self.msgs.append(f"ISO {iso:g}: flat pair {Path(pa).name}, {Path(pb).name}: {what}: those tiles are "
                                 "not used for K")
            tiles.append(pt)
        return tiles

    def ptc_fits(self, iso: float, tiles: list[PairTiles], dark: DarkStats) -> tuple[list, list] | None:
        """The zero-offset photon-transfer fit per channel (and a free-intercept one as a check); None (said) when
        a channel cannot be fitted."""
        ptc, ptc_free = [], []
        for c in range(4):
            m = np.concatenate([t.mean[c][~t.clipped[c]] for t in tiles]) if tiles else np.zeros(0)
            v = np.concatenate([t.var[c][~t.clipped[c]] for t in tiles]) if tiles else np.zeros(0)
            n = tiles[0].n if tiles else 2
            try:
                fixed = None if dark.pair_var is None else float(dark.pair_var[c])
                ptc.append(fit_photon_transfer(m, v, n, usable_max=self.usable_max, fixed_intercept=fixed,
                                               dark_mean=float(dark.bias[c]) if fixed is not None else 0.0))
                try:
                    ptc_free.append(fit_photon_transfer(m, v, n, usable_max=self.usable_max))
                except (ValueError, np.linalg.LinAlgError):
                    ptc_free.append(None)
            except (ValueError, np.linalg.LinAlgError) as exc:
                self.msgs.append(f"ISO {iso:g}, channel {CHANNELS[c]}: no photon-transfer fit ({exc}): ISO not in "
                                 "the profile")
                return None
        return ptc, ptc_free

    def flat_field_iso(self, iso: float, darks: list, pairs: list) -> IsoEstimate | None:
        """One ISO from its darks and flat pairs (the lab path); its photos, if any, are estimated for comparison."""
        paths = [f.path for f in darks]
        dark = self.dark_stats(iso, darks)
        tiles = self.flat_tiles(iso, pairs)
        fits = self.ptc_fits(iso, tiles, dark)
        if fits is None:
            return None
        ptc, ptc_free = fits
        if dark.pair_var is None:
            self.msgs.append(f"ISO {iso:g}: one dark frame only: K fitted with a free intercept (no dark pair variance)")
        K = np.array([f.K for f in ptc])
        K_err = np.array([f.K_err for f in ptc])
        if np.any(K <= 0):
            self.msgs.append(f"ISO {iso:g}: non-positive K {K.tolist()}: the flats carry no usable signal; ISO not in "
                             "the profile")
            return None
        inotes = []
        if np.any(dark.quant_dominated):
            chans = [CHANNELS[c] for c in range(4) if dark.quant_dominated[c]]
            inotes.append(f"ISO {iso:g}: read noise below 1 DN in {', '.join(chans)}: quantisation-dominated; a Tukey "
                          "lambda is not meaningful there, so the read noise is Gaussian with its std from the moments "
                          "(1/12 DN^2 of rounding removed), written as the Gaussian-equivalent Tukey shape 0.1349")
        law = law_for_profile(dark)
        meas, cmp_ = self._dng(K, law, dark, darks)
        return IsoEstimate(iso=iso, dark_files=paths, flat_pairs=[t.files for t in tiles], dark=dark, pairs=tiles,
                           ptc=ptc, ptc_free=ptc_free, K=K, K_err=K_err, law=law, dng_measured=meas,
                           dng_compare=cmp_, notes=inotes,
                           labfree=self.photo_estimates(iso, self.sess.photos.get(iso, []), dark.bias))

    def _dng(self, K, law, dark, frames) -> tuple[list, dict | None]:
        """The DNG NoiseProfile these parameters imply, and its comparison with the files' tag when present."""
        dark_var = np.asarray(law["read_std"]) ** 2 + dark.row_std**2 + 1 / 12
        meas = dng_noise_profile(K, dark_var, self.black, self.white)
        tag = next((f.noise_profile for f in frames if f.noise_profile), None)
        return meas, (crossiso.compare_noise_profiles(meas, tag) if tag else None)

    def _scene_runs(self, iso: float, frames: list) -> list[list]:
        """``frames`` ((FrameInfo, data) of one metadata burst, :func:`_bursts`) split where consecutive frames do not
        show the same scene (:func:`calibration.labfree.same_scene`), each split said in the messages."""
        from .labfree import same_scene

        runs = [frames[:1]] if frames else []
        for prev, cur in zip(frames, frames[1:]):
            if same_scene(prev[1], cur[1], self.pattern):
                runs[-1].append(cur)
            else:
                self.msgs.append(f"ISO {iso:g}: photos {Path(prev[0].path).name} and {Path(cur[0].path).name}: "
                                 "same exposure and levels but not the same scene: not one burst")
                runs.append([cur])
        return runs

    def photo_estimates(self, iso: float, photos: list, bias) -> list:
        """Every lab-free estimate this ISO's photos allow: one per burst (or single frame), and the DNG tag."""
        from .labfree import burst_estimate, single_estimate, tag_estimate

        out = []
        for group in _bursts(photos):
            by_path = {f.path: f for f in group}
            frames = [(by_path[p], d) for p, d in self._frames(list(by_path))]  # a file that fails is skipped
            for run in self._scene_runs(iso, frames):  # one metadata group decoded at a time, as before the split
                paths = [f.path for f, _ in run]
                data = [d for _, d in run]
                try:
                    if len(data) >= 2:
                        out.append(burst_estimate(data, self.pattern, self.black, self.white, bias=bias, files=paths))
                    else:
                        out.append(single_estimate(data[0], self.pattern, self.black, self.white, bias=bias,
                                                   files=paths))
                except ValueError as exc:
                    self.msgs.append(f"ISO {iso:g}: photos {', '.join(Path(p).name for p in paths)}: no estimate "
                                     f"({exc})")
        tagged = next((f for f in photos if f.noise_profile), None)
        if tagged is not None:
            try:
                out.append(tag_estimate(tagged.noise_profile, self.black, self.white, files=[tagged.path]))
            except ValueError as exc:
                self.msgs.append(f"ISO {iso:g}: DNG NoiseProfile not used ({exc})")
        return out

    def photo_iso(self, iso: float, darks: list) -> IsoEstimate | None:
        """An ISO without flats, from its photos (and its darks where given)."""
        photos = self.sess.photos[iso]
        paths = [f.path for f in darks]
        dark = self.dark_stats(iso, darks) if darks else None
        ests = self.photo_estimates(iso, photos, None if dark is None else dark.bias)
        pick = _combine(ests)
        if pick is None:
            self.msgs.append(f"ISO {iso:g}: photos gave no usable estimate: ISO not in the profile")
            return None
        method, K, K_err, dvar = pick
        used = [e for e in ests if e.method == method]
        self.msgs.extend(f"ISO {iso:g}: photos {', '.join(Path(p).name for p in e.files)}: {w}"
                         for e in used for w in e.warnings)
        untrusted = [c for c in range(4) if not any(e.reliable[c] for e in used)]
        if untrusted:
            self.msgs.append(f"ISO {iso:g}: channel(s) {untrusted} marked unreliable by every {method} estimate: "
                             "K there is the median of the unreliable ones")
        if np.any(K <= 0):
            self.msgs.append(f"ISO {iso:g}: non-positive K {K.tolist()} from the {method} estimate: ISO not in the "
                             "profile")
            return None
        notes = [f"ISO {iso:g}: K from {method} ({len([e for e in ests if e.method == method])} estimate(s) of "
                 f"{len(photos)} photo(s); flat-field calibration not available at this ISO)"]
        if dark is None:
            read = np.sqrt(np.maximum(dvar - 1.0 / 12.0, 0.0))
            dark = DarkStats(n_frames=0, n_pixels=np.zeros(4), bias=np.zeros(4), bias_err=np.zeros(4), read_std=read,
                             read_std_err=np.zeros(4), row_std=0.0, row_std_err=0.0, dsnu=None, dsnu_removed=False,
                             quant_dominated=np.ones(4, bool), laws=[None] * 4)
            notes.append(f"ISO {iso:g}: no dark frames: read noise Gaussian with std sqrt(dark variance - 1/12) from "
                         f"the {method} fit's intercept ("
                         + ("row noise, which the single-frame filter cancels, is not in it"
                            if method == "single" else "it includes any row noise")
                         + "); no row noise and no bias modelled")
            source = method
        else:
            source = "dark_frames"
        law = law_for_profile(dark)
        ptc = [PtcFit(K=float(K[c]), K_err=float(K_err[c]), intercept=float(dvar[c]), intercept_err=math.nan,
                      r2=math.nan, chi2_red=math.nan, max_rel_residual=math.nan,
                      n_tiles=int(sum(e.n_tiles[c] for e in ests if e.method == method and e.n_tiles)),
                      signal_range=(math.nan, math.nan)) for c in range(4)]
        meas, cmp_ = self._dng(K, law, dark, photos)
        return IsoEstimate(iso=iso, dark_files=paths, flat_pairs=[], dark=dark, pairs=[], ptc=ptc,
                           ptc_free=[None] * 4, K=K, K_err=K_err, law=law, dng_measured=meas, dng_compare=cmp_,
                           notes=notes, method=method, dark_source=source, labfree=ests)


def _r(v, nd=6):
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_r(x, nd) for x in v]
    if v is None:
        return None
    v = float(v)
    return None if not math.isfinite(v) else float(f"{v:.{nd + 3}g}")


def _quality(e: IsoEstimate) -> dict:
    """The fit-quality and provenance record of one ISO (``points[].quality`` in the profile)."""
    d = e.dark
    lf = list(d.laws)
    quality = {
        "ptc_r2": _r([f.r2 for f in e.ptc]), "ptc_chi2_red": _r([f.chi2_red for f in e.ptc]),
        "ptc_max_rel_residual": _r([f.max_rel_residual for f in e.ptc]), "ptc_n_tiles": [f.n_tiles for f in e.ptc],
        "ptc_free_intercept_K": _r([f.K if f else None for f in e.ptc_free]),
        "ppcc_tukey": _r([law.ppcc_tukey if law else None for law in lf]),
        "ppcc_gaussian": _r([law.ppcc_gauss if law else None for law in lf]),
        "kl_tukey": _r([law.kl_tukey if law else None for law in lf]),
        "kl_gaussian": _r([law.kl_gauss if law else None for law in lf]),
        "quantisation_dominated": [bool(x) for x in d.quant_dominated],
        "dsnu": _r(d.dsnu) if d.dsnu is not None else None, "dsnu_removed": bool(d.dsnu_removed),
        "n_dark": len(e.dark_files), "n_flat_pairs": len(e.flat_pairs), "dark_pixels_per_channel": _r(d.n_pixels),
        "gaussian_read_std": _r(d.read_std),
        "dng_noise_profile": _r(e.dng_measured),
        "method": {"K": e.method, "read_noise_row_bias": e.dark_source},
        "photo_estimates": [{"method": le.method, "K": _r(le.K), "dark_variance": _r(le.dark_var),
                             "reliable": [bool(x) for x in le.reliable],
                             "files": [Path(f).name for f in le.files]} for le in e.labfree],
    }
    if e.dng_compare:
        quality["dng_noise_profile_tag"] = _r(e.dng_compare.get("tag"))
        quality["dng_tag_S_rel_diff"] = _r(e.dng_compare.get("S_rel_diff"))
        quality["dng_tag_O_rel_diff"] = _r(e.dng_compare.get("O_rel_diff"))
    return quality


def _point(e: IsoEstimate, law_name: str) -> dict:
    """One ISO's measured point of the profile (values, standard errors, quality)."""
    d = e.dark
    tk = law_name == "tukey_lambda"
    return {
        "iso": float(e.iso), "K": _r(e.K), "read_law": law_name,
        "read_lambda": _r(e.law["read_lambda"]) if tk else [None] * 4,
        "read_scale": _r(e.law["read_scale"]) if tk else [None] * 4,
        "read_std": _r(e.law["read_std"] if tk else d.read_std), "row_std": _r(d.row_std),
        "bias": _r(d.bias),
        "uncertainty": {"K": _r(e.K_err), "read_std": _r(d.read_std_err), "row_std": _r(d.row_std_err),
                        "bias": _r(d.bias_err)},
        "quality": _quality(e),
    }


def _cross_iso(estimates: dict, pts: list, law_name: str, msgs: list, notes: list) -> tuple[np.ndarray, dict, dict]:
    """The cross-ISO models of the profile (K vs ISO with its break test, log-linear noise lines, the measured
    lambdas and biases) and their fit record; says when K vs ISO is not a line."""
    isos = sorted(estimates)
    kmean = np.array([float(np.exp(np.mean(np.log(p["K"])))) for p in pts])
    kmean_err = np.array([float(np.sqrt(np.mean((np.asarray(p["uncertainty"]["K"]) / np.asarray(p["K"])) ** 2) / 4)) * km
                          for p, km in zip(pts, kmean)])
    cross: dict = {"k_vs_iso": crossiso.fit_k_vs_iso(np.array(isos), kmean, kmean_err)}
    scale = np.array([float(np.exp(np.mean(np.log(p["read_scale"])))) if law_name == "tukey_lambda" else np.nan for p in pts])
    rstd = np.array([float(np.exp(np.mean(np.log(np.maximum(p["read_std"], 1e-9))))) for p in pts])
    gstd = np.array([float(np.exp(np.mean(np.log(np.maximum(estimates[i].dark.read_std, 1e-9))))) for i in isos])
    row = np.array([p["row_std"] for p in pts])
    models: dict = {}
    tk_sel = np.array([not bool(np.all(estimates[i].dark.quant_dominated)) for i in isos])
    fits = {}
    if law_name == "tukey_lambda" and tk_sel.sum() >= 2:
        fits["read_scale"] = crossiso.fit_loglinear(kmean[tk_sel], scale[tk_sel])
    fits["gaussian_read_std"] = crossiso.fit_loglinear(kmean, gstd)
    if np.all(row > 0):
        fits["row_std"] = crossiso.fit_loglinear(kmean, row)
    elif np.any(row > 0):
        notes.append("row noise is zero at some ISOs: no row-noise line fitted")
    for k, f in fits.items():
        if f is not None:
            models[k] = f.to_model("mean")
    lams = [float(l) for i, p in zip(isos, pts) if law_name == "tukey_lambda"
            for l, qd in zip(p["read_lambda"], estimates[i].dark.quant_dominated) if not qd]
    if lams:
        models["read_lambdas"] = _r(lams)
    models["biases"] = [p["bias"] for p in pts]
    brk = cross["k_vs_iso"].get("break")
    line = cross["k_vs_iso"].get("line")
    if line and not brk and line["chi2_red"] > 25 and line["max_rel_residual"] > 0.03:
        # K follows the analogue gain: a line, a smooth gain-table curve (the Mi Note 10's K is quadratic in
        # ISO) or a clean break. Say when the line does not describe it; warn when not even a smooth curve
        # does (mislabelled ISOs, a bad flat series) instead of reporting "none detected"
        notes.append(f"K vs ISO is not a straight line (reduced chi-square {line['chi2_red']:.3g}, largest residual "
                     f"{100 * line['max_rel_residual']:.1f}%) and has no single break: models.k_vs_iso's line is only "
                     "a summary; the profile interpolates the measured points")
        if len(isos) >= 4:
            x = np.asarray(isos, float)
            q = np.polyval(np.polyfit(x, kmean, 2), x)
            worst = float(np.max(np.abs(q / kmean - 1)))
            if worst > 0.03:
                msgs.append(f"K vs ISO is neither a straight line (reduced chi-square {line['chi2_red']:.3g}) nor a "
                            f"smooth curve (largest residual of a quadratic {100 * worst:.1f}%), and no single break "
                            "explains it: check the ISO metadata and the flat series; the profile interpolates the "
                            "measured points")
    if brk:
        lo = np.array(isos) <= brk["iso_below"]
        seg = {}
        for nm, sel in (("low", lo), ("high", ~lo)):
            f = crossiso.fit_loglinear(kmean[sel], rstd[sel])
            seg[nm] = f.to_model("mean") if f else None
        cross["k_vs_iso"]["read_std_segments"] = seg
        msgs.append(f"K vs ISO changes law between ISO {brk['iso_below']:g} and {brk['iso_above']:g} "
                    "(a dual-conversion-gain switch or a gain-table change): the profile interpolates the measured "
                    "points; the cross-ISO lines are fitted over all points and per segment in models.k_vs_iso")
    cross["read_std_line"] = models.get("gaussian_read_std")
    cross["read_scale_line"] = models.get("read_scale")
    cross["row_std_line"] = models.get("row_std")
    models["k_vs_iso"] = _r_tree(cross["k_vs_iso"])
    return kmean, models, cross


def build_profile(estimates: dict, sess: Session, *, name, root: Path, msgs: list, notes: list) -> tuple[dict, dict]:
    """The isp_sim profile dict (format version 1) and the cross-ISO fit record."""
    isos = sorted(estimates)
    f0 = sess.frames[0]
    all_qd = all(bool(np.all(estimates[i].dark.quant_dominated)) for i in isos)
    law_name = "gaussian" if all_qd else "tukey_lambda"
    pts = [_point(estimates[iso], law_name) for iso in isos]
    kmean, models, cross = _cross_iso(estimates, pts, law_name, msgs, notes)
    mt = [f.mtime for f in sess.frames if f.mtime]
    iso_fmt = lambda t: _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")
    used = sorted({p for e in estimates.values() for p in e.dark_files} |
                  {p for e in estimates.values() for pr in e.flat_pairs for p in pr} |
                  {p for e in estimates.values() for le in e.labfree for p in le.files})
    assumptions = ["read noise is the temporal noise after removing the dark fixed pattern and row means"
                   " (DSNU reported separately in points[].quality.dsnu)"]
    lab_free = [e for e in estimates.values() if e.method != "flat_field"]
    if lab_free:
        assumptions.append("K at ISO " + ", ".join(f"{e.iso:g} ({e.method})" for e in lab_free) + " from photos "
                           "without a lab (calibration.labfree; points[].quality.method)"
                           + ("; dng_tag points are the camera vendor's NoiseProfile model, not a measurement"
                              if any(e.method == "dng_tag" for e in lab_free) else ""))
    no_dark = [e for e in estimates.values() if e.dark_source != "dark_frames"]
    if no_dark:
        assumptions.append("no dark frames at ISO " + ", ".join(f"{e.iso:g}" for e in no_dark) + ": Gaussian read "
                           "noise (its std includes any row noise), no row noise and no bias at those ISOs")
    rel = []
    for p in used:
        try:
            rel.append(str(Path(p).relative_to(root)))
        except ValueError:
            rel.append(str(p))
    camera = f0.camera or "unknown camera"
    d = profile_dict(**{
        "name": name or _snake(f0.camera or root.name),
        "description": f"{camera}: noise calibrated from {len(used)} raw frames by calibration.calibrate"
                       + (" (partly without a lab: " + ", ".join(sorted({e.method for e in lab_free})) + ")"
                          if lab_free else ""),
        "sensor": {"camera": camera, "pattern": f0.pattern, "bit_depth": max(8, int(math.ceil(math.log2(f0.white_level + 1)))),
                   "white_level": int(f0.white_level), "black_level": _r(f0.black_level),
                   "width": int(f0.shape[1]), "height": int(f0.shape[0]),
                   "assumptions": assumptions},
        "index": "iso", "iso_range": [float(isos[0]), float(isos[-1])],
        "k_range": [float(kmean.min()), float(kmean.max())] if kmean.min() != kmean.max() else [float(kmean[0])] * 2,
        "default_read_law": law_name, "points": pts, "models": models,
        "provenance": {"source": f"calibration.calibrate of {root}", "tool": _tool_version(),
                       "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       "captured": [iso_fmt(min(mt)), iso_fmt(max(mt))] if mt else None,
                       "layout": sess.layout, "files": rel, "n_files": len(rel),
                       "skipped": [{"file": p, "reason": r} for p, r in sess.skipped],
                       "warnings": list(msgs), "notes": list(notes),
                       "dng_noise_profile": "per ISO in points[].quality: (S, O) for R, G, B with S = K/(W-B), "
                                            "O = (read_std^2 + row_std^2 + 1/12)/(W-B)^2; Gr and Gb merged by "
                                            "averaging their S and O"},
    })
    return d, cross


def _r_tree(x):
    if isinstance(x, dict):
        return {k: _r_tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_r_tree(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return _r(x)
    return x
