"""Single-pass calibration: each raw file decoded once (frame cache), and the numba statistics kernels equal to the
NumPy formulas they replaced (written out here as the reference)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

import calibration.rawio as rawio
from calibration import calibrate
from calibration.discovery import FrameCache, _summary
from calibration.estimators import DarkAccumulator, flat_pair_tiles
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

    monkeypatch.setattr(FrameCache, "put", refuse)
    b = calibrate(session, progress=False)
    pa, pb = a.profile.to_dict(), b.profile.to_dict()
    assert pa["points"] == pb["points"]
    assert any("did not fit in the frame cache" in n for n in b.notes)


# ----------------------------------------------------------------------------- kernels vs NumPy formulas


def _numpy_dark(frames, pattern, black, remove_dsnu=True, per_frame=None, seed=0):
    """The two-pass NumPy dark statistics the kernels replaced: residual sums of squares, row means, samples."""
    planes = channel_sites(pattern)
    mean = np.mean(np.stack(frames).astype(np.float64), axis=0)
    if not remove_dsnu:
        cm = [mean[i::2, j::2].mean() for i, j in planes]
        mean = np.empty_like(mean)
        for c, (i, j) in enumerate(planes):
            mean[i::2, j::2] = cm[c]
    rng = np.random.default_rng(seed)
    ss, rows_all, samples, pv, prev = np.zeros(4), [], [[] for _ in range(4)], np.zeros(4), None
    for f in frames:
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
            samples[c].append(pc.ravel().copy() if k >= pc.size else pc.ravel()[rng.integers(0, pc.size, size=k)])
    return ss, np.concatenate(rows_all), [np.concatenate(s) for s in samples], pv / (len(frames) - 1)


@pytest.mark.parametrize("pattern,shape,remove", [("RGGB", (60, 80), True), ("GRBG", (61, 79), True),
                                                   ("BGGR", (40, 50), False)])
def test_dark_kernels_equal_numpy(pattern, shape, remove):
    rng = np.random.default_rng(1)
    bias = 64 + rng.normal(0, 2, shape)
    frames = [np.clip(np.rint(bias + rng.normal(0, 3, shape) + rng.normal(0, 1, (shape[0], 1))), 0, 1023)
              .astype(np.uint16) for _ in range(5)]
    black = np.full(4, 64.0)
    acc = DarkAccumulator(pattern, black, shape, 5, min_dsnu_frames=4 if remove else 9, max_samples=2000, seed=0)
    for f in frames:
        acc.add_pass1(f)
    for f in frames:
        acc.add_pass2(f)
    ss, rows, samples, pv = _numpy_dark(frames, pattern, black, remove_dsnu=remove, per_frame=acc._per_frame)
    np.testing.assert_allclose(acc._ss, ss, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate(acc._row_keep), rows, rtol=1e-9, atol=1e-12)
    for c in range(4):
        np.testing.assert_allclose(np.concatenate(acc._samples[c]), samples[c], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(acc._pv / acc._pn, pv, rtol=1e-12)
    st = acc.finish()
    assert st.read_std == pytest.approx(np.sqrt(np.maximum(ss / acc._cnt / ((4 / 5 if remove else 1) * (1 - 1 / shape[1]))
                                                           - 1 / 12, 0)), rel=1e-12)


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
    means, noise, sat, digest, const = _summary(fr)
    ref_noise = []
    for c, (i, j) in enumerate(channel_sites("RGGB")):
        p = a[i::2, j::2]
        assert means[c] == pytest.approx(p.mean() - 64, rel=1e-13)
        ref_noise.append(np.std(np.diff(p[::4, :].astype(np.float64), axis=1)) / math.sqrt(2))
    assert noise == pytest.approx(float(np.median(ref_noise)), rel=1e-12)
    assert sat == pytest.approx(np.count_nonzero(a >= 1023) / a.size) and const is None
    b2 = a.copy()
    b2[0, 0] ^= 1
    fr2 = RawFrame.__new__(RawFrame)
    fr2.data, fr2.pattern, fr2.black_level, fr2.white_level = b2, "RGGB", black, 1023
    assert _summary(fr2)[3] != digest  # one bit changes the digest
    fr2.data = np.full_like(a, 77)
    assert _summary(fr2)[4] == 77.0
