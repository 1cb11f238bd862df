"""Single-pass calibration: each raw file decoded once (frame cache), and the numba statistics kernels equal to the
NumPy formulas they replaced (written out here as the reference)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

import calibration.rawio as rawio
from calibration import calibrate
from calibration.errors import CalibrationWarning
from calibration.discovery import FrameCache, _summary
from calibration.estimators import DarkAccumulator, flat_pair_tiles, sample_positions
from isp_sim.cfa import channel_sites
from calibration.rawio import RawFrame
from calibration.simulate import simulate_capture


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("single_pass")
    simulate_capture("mi_note10", root, isos=[800, 3200], n_dark=5, n_flat_pairs=3, size=(64, 96), seed=3)
    return root


def test_each_raw_file_is_decoded_once(session, monkeypatch):
    import rawpy

    opened = Counter()
    real = rawpy.imread

    def counting(path, *a, **k):
        opened[str(path)] += 1
        return real(path, *a, **k)

    monkeypatch.setattr(rawpy, "imread", counting)
    res = calibrate(session, progress=False)
    files = sorted(str(p) for p in session.rglob("*.dng"))
    assert sorted(opened) == files
    assert set(opened.values()) == {1}, opened
    assert res.isos == [800.0, 3200.0]


def test_cache_fallback_gives_the_same_profile(session, monkeypatch, tmp_path):
    """Frames that do not fit in the cache are decoded again: same numbers, and the notes say so."""
    a = calibrate(session, progress=False, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # the cache folder is deleted

    def refuse(self, path, data):
        self.n_refused += 1
        return False

    from calibration.discovery import DarkScan, FlatScan

    monkeypatch.setattr(FrameCache, "put", refuse)  # nothing fits in the cache, and the scan keeps nothing either
    monkeypatch.setattr(DarkScan, "add", lambda self, info, data, sums: False)
    monkeypatch.setattr(FlatScan, "add", lambda self, info, data: False)
    b = calibrate(session, progress=False)
    pa, pb = a.profile.to_dict(), b.profile.to_dict()
    assert pa["points"] == pb["points"]
    assert any("did not fit in the frame cache" in n for n in b.notes)


@pytest.mark.parametrize("keep", ["darks", "flats", "neither"])
def test_statistics_from_the_scan_equal_those_from_the_cache(session, monkeypatch, keep):
    """The scan's dark accumulators and flat pairs and the cache path (frames the scan could not keep, taken later
    from the cache) give the same profile to the last digit."""
    from calibration.discovery import DarkScan, FlatScan

    a = calibrate(session, progress=False)
    if keep != "darks":
        monkeypatch.setattr(DarkScan, "add", lambda self, info, data, sums: False)
    if keep != "flats":
        monkeypatch.setattr(FlatScan, "add", lambda self, info, data: False)
    b = calibrate(session, progress=False)
    assert a.profile.to_dict()["points"] == b.profile.to_dict()["points"]


def test_scan_budgets_split_the_work_without_changing_results(session, monkeypatch):
    """Dark sums for one ISO only (the budget of one accumulator) and no room for waiting flats: the other ISO's
    darks and every flat go through the cache; the profile is the same."""
    import functools

    import calibration.pipeline as pipeline
    from calibration.discovery import DarkScan, FlatScan

    a = calibrate(session, progress=False)
    made = []

    class OneIso(DarkScan):
        def __init__(self, make):
            super().__init__(make, budget_bytes=6 * 64 * 96)
            made.append(self)

    monkeypatch.setattr(pipeline, "DarkScan", OneIso)
    monkeypatch.setattr(pipeline, "FlatScan", functools.partial(FlatScan, max_pending=0))
    b = calibrate(session, progress=False)
    assert made and made[0].n_refused == 5  # the second ISO's 5 darks
    assert a.profile.to_dict()["points"] == b.profile.to_dict()["points"]


def test_a_dark_set_changed_after_the_scan_is_read_again(session, tmp_path):
    """A copied dark frame is skipped after the scan accumulated it: that ISO's darks are read again (said in the
    notes) and the profile equals the session's without the copy."""
    import shutil

    copy = tmp_path / "s"
    shutil.copytree(session, copy)
    first = sorted((copy / "dark").rglob("*iso800*.dng"))[0]
    shutil.copy(first, first.with_name("zz_" + first.name))
    a = calibrate(session, progress=False)
    with pytest.warns(CalibrationWarning, match="identical pixel data"):
        b = calibrate(copy, progress=False)
    assert any("dark set changed after the scan" in n for n in b.notes)
    assert any("identical pixel data" in w for w in b.warnings)
    strip = lambda pts: [{k: v for k, v in p.items() if k != "quality"} for p in pts]  # noqa: E731
    assert strip(a.profile.to_dict()["points"]) == strip(b.profile.to_dict()["points"])


def test_a_digest_match_is_confirmed_by_the_pixels(session, monkeypatch):
    """Every frame given the same digest (as a 64-bit hash collision would): the pixels, decoded again for dark and
    flat frames that are not cached, tell the frames apart, so nothing is skipped as a copy."""
    import calibration.discovery as discovery

    a = calibrate(session, progress=False)
    real = discovery._summary
    monkeypatch.setattr(discovery, "_summary", lambda fr: (*real(fr)[:3], "0" * 16, *real(fr)[4:]))
    b = calibrate(session, progress=False)
    assert not b.session.skipped
    assert a.profile.to_dict()["points"] == b.profile.to_dict()["points"]


# ----------------------------------------------------------------------------- kernels vs NumPy formulas


def _numpy_dark(frames, keys, pattern, remove_dsnu=True, per_frame=None, seed=0):
    """The two-pass NumPy dark statistics the single-pass accumulator replaces: pass 1 the mean frame, pass 2 each
    frame's residuals against it less their row means (sums of squares, row means, the law's samples at
    :func:`sample_positions`) and the first consecutive pairs' difference variance."""
    planes = channel_sites(pattern)
    mean = np.mean(np.stack(frames).astype(np.float64), axis=0)
    if not remove_dsnu:
        cm = [mean[i::2, j::2].mean() for i, j in planes]
        mean = np.empty_like(mean)
        for c, (i, j) in enumerate(planes):
            mean[i::2, j::2] = cm[c]
    ss, rows_all, samples, pv, prev = np.zeros(4), [], [[] for _ in range(4)], np.zeros(4), None
    for key, f in zip(keys, frames):
        if prev is not None:
            d = f.astype(np.float64) - prev
            pv += [d[i::2, j::2].var() / 2 for i, j in planes]
        prev = f
        r = f - mean
        rows = r.mean(axis=1)
        rows_all.append(rows)
        r -= rows[:, None]
        for c, (i, j) in enumerate(planes):
            pc = r[i::2, j::2]
            ss[c] += np.sum(pc * pc)
            k = min(per_frame, pc.size)
            samples[c].append(pc.ravel().copy() if k >= pc.size
                              else pc.ravel()[sample_positions(key, seed, c, pc.size, k)])
    return ss, np.concatenate(rows_all), [np.concatenate(s) for s in samples], pv / (len(frames) - 1)


@pytest.mark.parametrize("pattern,shape,remove,max_samples", [("RGGB", (60, 80), True, 2000),
                                                              ("GRBG", (61, 79), True, 2000),
                                                              ("BGGR", (40, 50), False, 2000),
                                                              ("RGGB", (30, 40), True, 1000)])
def test_single_pass_dark_statistics_equal_two_pass(pattern, shape, remove, max_samples, monkeypatch):
    """Every statistic of :class:`DarkAccumulator` (one pass, frames added once) equals the two-pass formulas,
    the law fit included (the same residual sample): the last case's planes (300 px) first fit the per-frame share
    whole and are trimmed to random positions as frames arrive."""
    import calibration.estimators as est

    rng = np.random.default_rng(1)
    bias = 64 + rng.normal(0, 2, shape)
    n = 5
    frames = [np.clip(np.rint(bias + rng.normal(0, 3, shape) + rng.normal(0, 1, (shape[0], 1))), 0, 1023)
              .astype(np.uint16) for _ in range(n)]
    keys = [f"dark_{k:03d}.dng" for k in range(n)]
    acc = DarkAccumulator(pattern, np.full(4, 64.0), shape, min_dsnu_frames=4 if remove else 9,
                          max_samples=max_samples, seed=0)
    for k, f in zip(keys, frames):
        acc.add(f, k)
    per_frame = math.ceil(max_samples / n)
    ss, rows, samples, pv = _numpy_dark(frames, keys, pattern, remove_dsnu=remove, per_frame=per_frame)
    seen = {}
    real_fit = est.fit_read_law

    def spy(res, std, model):
        seen[len(seen)] = res.copy()
        return real_fit(res, std, model)

    monkeypatch.setattr(est, "fit_read_law", spy)
    st = acc.finish()
    W = shape[1]
    var_t = ss / (n * np.array(acc._size)) / ((4 / 5 if remove else 1) * (1 - 1 / W))
    np.testing.assert_allclose(st.read_std, np.sqrt(np.maximum(var_t - 1 / 12, 0)), rtol=1e-12)
    np.testing.assert_allclose(st.row_means_sample, rows, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(st.pair_var, pv, rtol=1e-12)
    jitter = np.random.default_rng(0)
    for c in range(4):
        np.testing.assert_allclose(seen[c], samples[c] + jitter.uniform(-0.5, 0.5, samples[c].size), rtol=1e-9,
                                   atol=1e-12)
    assert samples[0].size == n * min(per_frame, acc._size[0])
    # the sample of a frame does not depend on the other frames: the same frame alone gets a prefix-equal draw
    idx_all = sample_positions(keys[2], 0, 1, 10_000, 400)
    assert np.array_equal(sample_positions(keys[2], 0, 1, 10_000, 100), idx_all[:100])
    assert not np.array_equal(sample_positions(keys[3], 0, 1, 10_000, 100), idx_all[:100])


def test_flat_tiles_and_summary_equal_numpy():
    rng = np.random.default_rng(2)
    a = np.clip(rng.poisson(600, (70, 90)) + 64, 0, 1023).astype(np.uint16)
    b = np.clip(rng.poisson(600, (70, 90)) + 64, 0, 1023).astype(np.uint16)
    a[6, 8] = 1023  # R plane (RGGB), inside the first tile
    black = np.full(4, 64.0)
    pt = flat_pair_tiles(a, b, "RGGB", black, 1023, tile=8)
    for c, (i, j) in enumerate(channel_sites("RGGB")):
        pa, pb = a[i::2, j::2].astype(np.float64), b[i::2, j::2].astype(np.float64)
        t = pt.n ** 0.5
        t = int(t)
        ty, tx = pa.shape[0] // t, pa.shape[1] // t
        pa, pb = pa[: ty * t, : tx * t], pb[: ty * t, : tx * t]
        m = ((pa + pb).reshape(ty, t, tx, t).mean(axis=(1, 3)) / 2 - 64).ravel()
        v = ((pa - pb).reshape(ty, t, tx, t).var(axis=(1, 3), ddof=1) / 2).ravel()
        clip = ((pa >= 1023) | (pb >= 1023)).reshape(ty, t, tx, t).any(axis=(1, 3)).ravel()
        np.testing.assert_allclose(pt.mean[c], m, rtol=1e-12)
        np.testing.assert_allclose(pt.var[c], v, rtol=1e-12)
        assert (pt.clipped[c] == clip).all()
    assert pt.clipped[0].sum() == 1
    fr = RawFrame.__new__(RawFrame)
    fr.data, fr.pattern, fr.black_level, fr.white_level = a, "RGGB", black, 1023
    means, noise, sat, digest, const, (rowsum, sq) = _summary(fr)
    ref_noise = []
    for c, (i, j) in enumerate(channel_sites("RGGB")):
        p = a[i::2, j::2]
        assert means[c] == pytest.approx(p.mean() - 64, rel=1e-13)
        assert sq[c] == int(np.sum(p.astype(np.int64) ** 2))
        ref_noise.append(np.std(np.diff(p[::4, :].astype(np.float64), axis=1)) / math.sqrt(2))
    assert noise == pytest.approx(float(np.median(ref_noise)), rel=1e-12)
    np.testing.assert_array_equal(rowsum, np.stack([a[:, 0::2].sum(1), a[:, 1::2].sum(1)], 1))
    assert sat == pytest.approx(np.count_nonzero(a >= 1023) / a.size) and const is None
    b2 = a.copy()
    b2[0, 0] ^= 1
    fr2 = RawFrame.__new__(RawFrame)
    fr2.data, fr2.pattern, fr2.black_level, fr2.white_level = b2, "RGGB", black, 1023
    assert _summary(fr2)[3] != digest  # one bit changes the digest
    fr2.data = np.full_like(a, 77)
    assert _summary(fr2)[4] == 77.0


def test_bad_photos_or_cache_folder_is_named_before_any_work(session, tmp_path):
    from calibration.errors import CalibrationError

    with pytest.raises(CalibrationError, match=r"photos .*nope: no such photo folder"):
        calibrate(session, progress=False, photos=tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(CalibrationError, match=r"cache_dir .*f\.txt: is a file; give a cache folder"):
        calibrate(session, progress=False, cache_dir=tmp_path / "f.txt")
