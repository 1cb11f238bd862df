"""Calibration without a lab: tripod bursts, single photos and DNG NoiseProfile tags, on simulated phones whose
truth is known (dead-leaves scenes at native resolution through PRNU, DSNU, vignetting, clipping and jitter)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from calibration import calibrate
from calibration.labfree import burst_estimate, tag_estimate
from calibration.rawio import read_raw
from calibration.simulate import simulate_capture
from isp_sim.dng import write_dng

PHONE_B = "examples/profiles/sim_phone_b.json"


def _quiet_calibrate(root, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calibrate(root, progress=False, **kw)


@pytest.mark.parametrize("profile,isos,prnu", [("mi_note10", [800, 3200, 12800], 0.01), (PHONE_B, [100, 800, 6400], 0.005)])
def test_bursts_recover_k_and_read_noise_without_a_lab(profile, isos, prnu, tmp_path):
    """Bursts of 4 frames of two dead-leaves scenes per ISO, 0.05 px tripod jitter, no flats, no darks:
    K within 3% of the truth in every channel; the read std (Gaussian, including row noise) within 10%
    where it is above 1 DN."""
    s = simulate_capture(profile, tmp_path / "s", isos=isos, n_dark=0, n_flat_pairs=0, size=(384, 512),
                         n_scenes=2, burst=4, jitter=0.05, prnu=prnu, seed=4)
    r = _quiet_calibrate(tmp_path / "s")
    assert r.isos == [float(i) for i in isos]
    for iso in r.isos:
        e, t = r.estimates[iso], s.truth[iso]
        assert e.method == "burst" and e.dark_source == "burst"
        np.testing.assert_allclose(e.K, t.K, rtol=0.03, err_msg=f"ISO {iso}")
        want = np.sqrt(t.read_std**2 + t.row_std**2)
        got = np.asarray(e.law["read_std"])
        big = want > 1.0
        np.testing.assert_allclose(got[big], want[big], rtol=0.10, err_msg=f"ISO {iso}")
    p = r.profile
    assert p.default_read_law == "gaussian" and all(pt["row_std"] == 0 for pt in p.points)
    assert any("no dark frames" in a for a in p.to_dict()["sensor"]["assumptions"])
    assert p.points[0]["quality"]["method"] == {"K": "burst", "read_noise_row_bias": "burst"}


def test_a_flat_field_session_keeps_its_path_and_reports_photo_estimates(tmp_path):
    """Photos beside flats change nothing in the flat-field result; they are compared in the report."""
    a = simulate_capture("mi_note10", tmp_path / "a", isos=[1600], n_dark=4, n_flat_pairs=3, size=(128, 192), seed=1)
    ra = _quiet_calibrate(tmp_path / "a")
    simulate_capture("mi_note10", tmp_path / "b", isos=[1600], n_dark=4, n_flat_pairs=3, size=(128, 192), seed=1,
                     n_scenes=1, burst=3)
    rb = _quiet_calibrate(tmp_path / "b")
    ea, eb = ra.estimates[1600.0], rb.estimates[1600.0]
    assert eb.method == "flat_field" and np.array_equal(ea.K, eb.K)
    assert [le.method for le in eb.labfree][:1] == ["burst"]
    from calibration.report import write_report

    text = write_report(rb, tmp_path / "rep").read_text()
    assert "## Methods" in text and "burst (3 file(s))" in text
    assert (tmp_path / "rep" / "photo_ptc_iso1600.png").exists() and a.truth


def test_darks_supply_read_law_row_noise_and_bias_to_a_burst_calibration(tmp_path):
    s = simulate_capture(PHONE_B, tmp_path / "s", isos=[3200], n_dark=6, n_flat_pairs=0, size=(256, 384),
                         n_scenes=2, burst=4, jitter=0.05, seed=2)  # phone B has row noise (0.35 x read)
    r = _quiet_calibrate(tmp_path / "s")
    e, t = r.estimates[3200.0], s.truth[3200.0]
    assert t.row_std > 0.5
    assert e.method == "burst" and e.dark_source == "dark_frames"
    np.testing.assert_allclose(e.K, t.K, rtol=0.03)
    assert e.dark.row_std == pytest.approx(t.row_std, rel=0.25) and r.profile.default_read_law == "tukey_lambda"


def test_dng_noise_profile_tags_both_layouts_and_files_without_it(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(64, 1023, (32, 48)).astype(np.uint16)
    S, O = 2e-3, 3e-6
    for name, npf in (("one", [(S, O)]), ("three", [(S, O), (S / 2, O / 2), (S * 2, O * 2)])):
        p = write_dng(tmp_path / f"{name}.dng", raw, "RGGB", 64, 1023, iso=800, exposure_time=0.01, noise_profile=npf)
        fr = read_raw(p)
        assert len(fr.noise_profile) == len(npf)
        e = tag_estimate(fr.noise_profile, fr.black_level, fr.white_level)
        rngw = 1023 - 64
        want = [npf[0][0], npf[min(1, len(npf) - 1)][0], npf[min(1, len(npf) - 1)][0], npf[-1][0]]
        np.testing.assert_allclose(e.K, np.array(want) * rngw, rtol=1e-6)
        assert "vendor" in e.notes[0]
    p = write_dng(tmp_path / "none.dng", raw, "RGGB", 64, 1023, iso=800, exposure_time=0.01)
    assert read_raw(p).noise_profile is None


def test_a_tag_only_iso_is_marked_as_the_vendors_model(tmp_path):
    """Single photos whose files carry the NoiseProfile: the tag (the vendor's model) is preferred over the
    single-frame estimate and the profile says where K came from."""
    s = simulate_capture("mi_note10", tmp_path / "s", isos=[1600], n_dark=0, n_flat_pairs=0, size=(384, 512),
                         n_scenes=2, burst=1, seed=3)
    r = _quiet_calibrate(tmp_path / "s")
    e = r.estimates[1600.0]
    assert e.method == "dng_tag"
    np.testing.assert_allclose(e.K, s.truth[1600.0].K, rtol=1e-6)  # the simulator writes the true model as the tag
    assert any("vendor" in a for a in r.profile.to_dict()["sensor"]["assumptions"])
    assert {le.method for le in e.labfree} == {"single", "dng_tag"}


def test_burst_motion_term_absorbs_jitter():
    """A strongly jittered burst: the motion term keeps K within 5% where ignoring motion would not."""
    from calibration.simulate import simulate_capture as sim
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        s = sim("mi_note10", d, isos=[1600], n_dark=0, n_flat_pairs=0, size=(384, 512), n_scenes=1, burst=6,
                jitter=0.1, seed=5)
        fr = [read_raw(f) for f in s.photo_files[1600.0][0]]
    e = burst_estimate([f.data for f in fr], fr[0].pattern, fr[0].black_level, fr[0].white_level)
    np.testing.assert_allclose(e.K, s.truth[1600.0].K, rtol=0.05)
    assert any("motion" in n for n in e.notes)


def _uncompensated_burst_K(frames, pattern, black, white, tile=16):
    """K per channel as burst_estimate computed it before the motion compensation: the plain temporal variance,
    the gradient-energy term and the chi-square rejection (the same tile fit)."""
    from calibration.labfree import _burst_tiles, _robust_fit
    from isp_sim.cfa import channel_sites

    stack = np.stack(frames)
    L = len(frames)
    usable = 0.7 * (white - float(np.max(black)))
    out = []
    for c, (i, j) in enumerate(channel_sites(pattern)):
        p = stack[:, i::2, j::2].astype(np.float64)
        clip = (stack[:, i::2, j::2] >= white).any(0)
        mu, var, g = _burst_tiles(p.mean(0), p.var(0, ddof=1), clip, tile, float(np.asarray(black)[c]), usable, L)
        out.append(_robust_fit([mu, np.ones_like(mu), g], var, tile * tile * (L - 1))[0][0])
    return np.array(out)


def _burst_frames(profile, iso, tmp_path, **kw):
    s = simulate_capture(profile, tmp_path / "s", isos=[iso], n_dark=0, n_flat_pairs=0, size=(384, 512), n_scenes=1,
                         prnu=0.005, **kw)
    fr = [read_raw(f) for f in s.photo_files[float(iso)][0]]
    return [f.data for f in fr], fr[0], s.truth[float(iso)]


def test_motion_compensation_recovers_k_at_a_low_k_iso_under_strong_jitter(tmp_path):
    """Phone B at ISO 100 (K = 0.14 DN/e-: the shot noise is small against the motion term), 8 frames with
    0.15 px of tripod jitter: K within 3% (issue 13's target; this burst's standard errors of K are about 1%,
    the error found is 1.0%), where the uncompensated temporal variance with the gradient-energy term (the
    estimator before the per-frame compensation) is off by 27%."""
    frames, f0, t = _burst_frames(PHONE_B, 100, tmp_path, burst=8, jitter=0.15, seed=2)
    e = burst_estimate(frames, f0.pattern, f0.black_level, f0.white_level)
    np.testing.assert_allclose(e.K, t.K, rtol=0.03)
    assert np.all(e.K_err < 0.015 * e.K)
    old = _uncompensated_burst_K(frames, f0.pattern, f0.black_level, f0.white_level)
    assert np.max(np.abs(old / t.K - 1)) > 0.1
    assert any("per-frame shifts" in n for n in e.notes)


def test_motion_compensation_leaves_a_static_burst_alone(tmp_path):
    """No motion (jitter 0), phone B at ISO 100, 4 frames: no temporal direction is projected out (every
    channel keeps its 3 degrees of freedom per pixel), K moves from the uncompensated estimate by under half its
    standard error (the regression's 7 parameters per frame take 7 / 49000 of the noise; found: under 0.1 of the
    error here, under 0.3 over six seeds) and is within 3% and 3 standard errors of the truth."""
    from calibration.labfree import _burst_variance
    from isp_sim.cfa import channel_sites

    frames, f0, t = _burst_frames(PHONE_B, 100, tmp_path, burst=4, jitter=0.0, seed=1)
    e = burst_estimate(frames, f0.pattern, f0.black_level, f0.white_level)
    stack = np.stack(frames)
    for i, j in channel_sites(f0.pattern):
        p = stack[:, i::2, j::2].astype(np.float64)
        assert _burst_variance(p, (stack[:, i::2, j::2] >= f0.white_level).any(0), 16)[2] == 0
    old = _uncompensated_burst_K(frames, f0.pattern, f0.black_level, f0.white_level)
    assert np.all(np.abs(e.K - old) < 0.5 * e.K_err)
    np.testing.assert_allclose(e.K, t.K, rtol=0.03)
    assert np.all(np.abs(e.K - t.K) < 3 * e.K_err)


def test_temporal_projection_takes_out_motion_of_any_spatial_form():
    """Residuals sharing two temporal patterns over the image, with spatial responses that are white noise (no
    derivative of the mean represents them), on top of Gaussian noise of variance 9: both patterns are
    projected out and the mean variance is 9 within 1% (65536 pixels, 3 degrees of freedom each: 0.3%
    standard error), where the plain temporal variance is 5x too high; pure noise projects nothing."""
    from calibration.labfree import _burst_variance

    rng = np.random.default_rng(7)
    L, n = 6, 256
    scene = 300.0 + 100.0 * np.sin(np.arange(n) / 9.0)[:, None] * np.cos(np.arange(n) / 13.0)[None, :]
    pattern = rng.normal(0.0, 1.0, (2, L))
    response = rng.laplace(0.0, 5.0, (2, n, n))
    motion = np.einsum("ik,ihw->khw", pattern, response)
    clip = np.zeros((n, n), bool)
    for moving in (True, False):
        p = scene + rng.normal(0.0, 3.0, (L, n, n)) + (motion if moving else 0.0)
        m, v, q, shifts = _burst_variance(p, clip, 16)
        assert q == (2 if moving else 0) and shifts.shape == (L, 2)
        assert float(v.mean()) == pytest.approx(9.0, rel=0.01)
        if moving:
            assert float(p.var(0, ddof=1).mean()) > 5 * 9.0


def test_mixed_folder_classifies_darks_flats_and_photos(tmp_path):
    """One folder of everything: the rule (stated in the report) keeps flats flats (a flat pair is also a
    two-frame static burst) and finds the photos by their scene structure."""
    simulate_capture(PHONE_B, tmp_path / "s", isos=[100, 1600, 6400], n_dark=3, n_flat_pairs=3, size=(192, 256),
                     n_scenes=1, burst=3, seed=6, layout="mixed")
    r = _quiet_calibrate(tmp_path / "s")
    kinds = {p.split("/")[-1].split("_")[0]: set() for p, *_ in r.session.classification}
    for p, k, *_ in r.session.classification:
        kinds[p.split("/")[-1].split("_")[0]].add(k)
    assert kinds == {"dark": {"dark"}, "flat": {"flat"}, "scene": {"photo"}}
    assert all(e.method == "flat_field" and e.labfree for e in r.estimates.values())
    from calibration.report import write_report

    assert "scene structure" in write_report(r, tmp_path / "rep").read_text()


def _single_frame_of(scene_lin: np.ndarray, iso: float, seed: int, prnu: float = 0.01):
    """One raw frame (RGGB) of a linear RGB scene through mi_note10's noise model and PRNU, and its truth."""
    from calibration.simulate import scene_frame
    from isp_sim.profile import load_profile

    params = load_profile("mi_note10").at_iso(iso)
    return scene_frame(scene_lin, params, "RGGB", seed=seed, prnu=prnu), params


@pytest.mark.parametrize("iso", [800, 6400])
def test_single_frame_recovers_k_on_a_smooth_scene(iso):
    """A single frame of a smoothly shaded scene (a bilinear ramp over most of the range, PRNU 1%, mi_note10's
    Tukey-lambda read noise): the smoothness test and the noise/texture mixture recover K within 6% in every
    channel (the PRNU bias, about PRNU^2 x electrons, is +2% at ISO 800 averaged over the ramp). A channel's tiles
    are those that at least two of the three other channels judge smooth, each with probability 0.8: 0.896 of the
    1209 tiles (31 x 39 windows of 10 x 10 pixels), less the 1% its own test drops: about 1070."""
    from calibration.labfree import single_estimate

    y, x = np.mgrid[0:512, 0:640]
    scene = np.repeat((0.03 + 0.97 * (x / 640) * (y / 512))[..., None], 3, axis=2)
    raw, t = _single_frame_of(scene, iso, seed=iso)
    e = single_estimate(raw, "RGGB", t.black_level, t.white_level)
    np.testing.assert_allclose(e.K, t.K, rtol=0.06)
    assert e.method == "single" and any("PRNU" in n for n in e.notes)
    assert all(1000 < n < 1120 for n in e.n_tiles), e.n_tiles
    assert e.reliable.all() and not e.warnings


def test_single_frame_rejects_texture_that_a_plain_residual_takes_for_noise():
    """On the benchmark's harder scenes (leaves down to 2 px, texture on every leaf) the single-frame K is
    within 10% here (2-9%; BENCHMARKS.md: 3.2-9.4% on 6 MP frames over two phones' ISO ranges), asserted within
    15%; the 4-neighbour residual's bin medians (the earlier estimator, recomputed here) are more than twice
    the truth, so the texture rejection is doing the work."""
    from calibration.labfree import _bins, single_estimate
    from isp_sim.scenes import dead_leaves, natural_palette

    rng = np.random.default_rng(12)
    scene = dead_leaves(rng, 768, palette=natural_palette(rng)).astype(np.float64) ** 2.2
    raw, t = _single_frame_of(scene, 1600, seed=5)
    e = single_estimate(raw, "RGGB", t.black_level, t.white_level)
    assert np.all(np.abs(e.K / t.K - 1) < 0.15), e.K / t.K
    # the plain estimator: 4-neighbour residual, per-tile MAD, bin medians, line
    p = raw[0::2, 0::2].astype(np.float64)
    q = np.pad(p, 1, mode="reflect")
    r = p - 0.25 * (q[:-2, 1:-1] + q[2:, 1:-1] + q[1:-1, :-2] + q[1:-1, 2:])
    tr = r[:256, :256].reshape(32, 8, 32, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
    tm = p[:256, :256].reshape(32, 8, 32, 8).mean(axis=(1, 3)).ravel() - t.black_level[0]
    sd = 1.4826 * np.median(np.abs(tr - np.median(tr, 1, keepdims=True)), 1)
    ok = tm > 0
    b = _bins(tm[ok], 0.5, 600.0, 8)
    mus = np.array([np.median(tm[ok][b == k]) for k in np.unique(b) if (b == k).sum() >= 10])
    vs = np.array([np.median((sd[ok][b == k] ** 2) / 1.25) for k in np.unique(b) if (b == k).sum() >= 10])
    K_plain = np.polyfit(mus, vs, 1)[0]
    assert K_plain > 2 * t.K[0], K_plain / t.K[0]


def test_shared_texture_measures_what_the_channels_share_and_nothing_of_their_noise():
    """The cross-channel texture estimate, against the truth. (1) Four independent noise planes of different
    levels (no scene): its tile values average zero (within 4 standard errors of their mean), their variance is
    the one it predicts within 10%, and each plane's fine variance is its noise variance (border tiles too).
    (2) A noise-free grey scene with a low-frequency texture (a 0.3 rad/px sinusoid, gains 2 : 1 : 1 : 0.5 per
    channel, as a coloured illuminant gives): per tile it equals the channel's own fine-scale variance within
    10% (it sees cos(0.3)^2 = 0.91 to cos(0.3) = 0.96 of it: the channels sample the wave at offsets of 1 px)."""
    from calibration.labfree import _curvature, _shared_texture, _single_tiles
    from isp_sim.cfa import channel_sites

    sites = channel_sites("RGGB")
    rng = np.random.default_rng(3)
    sd = [1.0, 2.0, 2.0, 3.0]
    planes = [s_ * rng.standard_normal((512, 512)) for s_ in sd]
    curvs = [_curvature(p) for p in planes]
    nt = (510 // 8) ** 2  # 63 x 63 tiles: a tile is a 10 x 10 pixel window, its 8 x 8 fine-scale values inside
    mus = [np.full(nt, m) for m in (100.0, 400.0, 400.0, 900.0)]
    noise = [np.full(nt, s_**2) for s_ in sd]
    for c in range(4):
        t_hat, t_var = _shared_texture(curvs, noise, mus, sites, c, 8)
        assert abs(t_hat.mean()) < 4 * t_hat.std() / math.sqrt(t_hat.size), t_hat.mean()
        assert abs(t_hat.var() / t_var.mean() - 1) < 0.1, (t_hat.var(), t_var.mean())
        vf = _single_tiles(planes[c], 8, curvs[c])[1].reshape(63, 63) / sd[c] ** 2
        assert abs(vf.mean() - 1) < 0.02 and abs(np.r_[vf[0], vf[-1], vf[:, 0], vf[:, -1]].mean() - 1) < 0.03
    y, x = np.mgrid[0:516, 0:516].astype(np.float64)
    scene = 200.0 * (1 + 0.05 * np.sin(0.3 * x + 0.2 * y))
    gains = [2.0, 1.0, 1.0, 0.5]
    planes = [g * scene[i::2, j::2] for g, (i, j) in zip(gains, sites)]
    curvs = [_curvature(p) for p in planes]
    st = [_single_tiles(p, 8, d) for p, d in zip(planes, curvs)]
    mus = [m for m, _, _ in st]
    noise = [m for m in mus]  # shot-noise-like weights
    for c in range(4):
        inner = np.ones((32, 32), bool)
        inner[[0, -1], :] = inner[:, [0, -1]] = False  # at the edge the other channels' shifted maps repeat a row
        ratio = (_shared_texture(curvs, noise, mus, sites, c, 8)[0] / st[c][1])[inner.ravel()]
        assert 0.9 < np.median(ratio) < 1.0, np.median(ratio)


def test_single_frame_finds_the_noise_free_area_of_a_scene_whose_texture_dwarfs_the_noise():
    """Phone B at ISO 100 (0.14 DN per electron) on a dead-leaves scene: the texture dwarfs the noise in most
    tiles. The estimator before the tile windows (BENCHMARKS.md) found no noise-free area here: two channels off
    by 1900% and 2500% (marked unreliable). Now K is within 30% in every channel; a channel marked unreliable
    must say so in a warning and carry an error of at least 30%."""
    from calibration.labfree import single_estimate
    from calibration.simulate import scene_frame
    from isp_sim.profile import load_profile
    from isp_sim.scenes import dead_leaves, natural_palette

    rng = np.random.default_rng(12)
    scene = dead_leaves(rng, 1024, palette=natural_palette(rng)).astype(np.float64) ** 2.2
    t = load_profile(str(Path(__file__).resolve().parents[2] / "examples/profiles/sim_phone_b.json")).at_iso(100)
    e = single_estimate(scene_frame(scene, t, "RGGB", seed=1, prnu=0.005), "RGGB", t.black_level, t.white_level)
    err = np.abs(e.K / t.K - 1)
    assert e.reliable.any()
    assert np.all(err < 0.3), err
    for c in np.flatnonzero(~e.reliable):
        assert any(f"channel {c}:" in w and "unreliable" in w for w in e.warnings)
        assert e.K_err[c] / e.K[c] > 0.3


def test_single_frame_texture_no_longer_biases_k_up():
    """mi_note10 at ISO 3200 on dead leaves down to 2 px, 1.5 MP, three noise draws: scene texture can only add
    variance, and the estimator before the tile windows read K 8-19% high in every channel (mean +12%). A tile's
    fine-scale values now come from its own pixels only, and its coarse scale sees the same pixels: the mean error
    over the channels and draws is within 4%, and no channel is off by more than 12%."""
    from calibration.labfree import single_estimate
    from isp_sim.scenes import dead_leaves, natural_palette

    rng = np.random.default_rng(12)
    scene = dead_leaves(rng, 1536, palette=natural_palette(rng))[:1024].astype(np.float64) ** 2.2
    errs = []
    for seed in (1, 2, 3):
        raw, t = _single_frame_of(scene, 3200, seed=seed)
        e = single_estimate(raw, "RGGB", t.black_level, t.white_level)
        errs.append(e.K / t.K - 1)
    errs = np.array(errs)
    assert abs(errs.mean()) < 0.04, errs
    assert np.all(np.abs(errs) < 0.12), errs


def test_single_tiles_see_structure_next_to_a_tile_at_both_scales():
    """A single bright pixel on a flat plane: every tile whose fine-scale variance it raises also sees it in its
    coarse variance (coarse / fine at least 0.3; the smoothness test would otherwise take the tile for noise at a
    higher level). With tiles of t x t pixels whose border curvature reached into the next tile, the tiles beside
    the pixel had a fine variance and no coarse one."""
    from calibration.labfree import _single_tiles

    for y, x in [(8, 8), (9, 9), (12, 17), (16, 16)]:
        p = np.full((66, 66), 100.0)
        p[y, x] += 60.0
        _, vf, vc = _single_tiles(p, 8)
        hit = vf > 1e-9
        assert hit.any() and np.all(vc[hit] >= 0.3 * vf[hit]), (y, x, vf[hit], vc[hit])


def _poisson_gaussian_frame(rng, gains, shape=(1024, 1536), K=2.0, read=3.0, black=64):
    """A textureless frame: a horizontal ramp (50 to 3050 electrons) times each channel's gain, Poisson shot noise,
    Gaussian read noise; integer DN."""
    from isp_sim.cfa import channel_sites

    h, w = shape
    base = 50 + 3000 * (np.mgrid[0:h, 0:w][1] / w)
    img = np.zeros(shape)
    for g, (i, j) in zip(gains, channel_sites("RGGB")):
        e = rng.poisson(base[i::2, j::2] * g)
        img[i::2, j::2] = K * e + rng.normal(0, read, e.shape) + black
    return np.round(img).astype(np.int64)


def test_single_frame_k_is_unbiased_on_noise_alone_even_beside_black_channels():
    """No texture, so any error is the estimator's own: K within 1.5% in every channel of a ramp with ordinary
    channel gains (0.5 : 1 : 1 : 0.3), and within 3% in R when the other three channels are nearly black (0.05% of
    R's signal: their cross-channel texture estimate is then all noise, and is shrunk rather than subtracted;
    unshrunk it put R off by 26%)."""
    from calibration.labfree import single_estimate

    rng = np.random.default_rng(1)
    e = single_estimate(_poisson_gaussian_frame(rng, [0.5, 1.0, 1.0, 0.3]), "RGGB", 64, 16383)
    np.testing.assert_allclose(e.K, 2.0, rtol=0.015)
    for _ in range(3):
        e = single_estimate(_poisson_gaussian_frame(rng, [1.0, 5e-4, 5e-4, 5e-4]), "RGGB", 64, 16383)
        assert abs(e.K[0] / 2.0 - 1) < 0.03, e.K[0]


def test_single_frame_marks_a_channel_without_a_positive_k_unreliable():
    """A flat frame (one level: K cannot be told from the intercept): a channel whose fit finds no positive K
    is marked unreliable with a warning, and its error is at least its value. Which channels find no positive K
    depends on the noise draw: the first of two draws in which some channel does is checked."""
    from calibration.labfree import single_estimate

    for seed in (3, 4):
        rng = np.random.default_rng(seed)
        f = (64 + rng.poisson(1000, (1000, 1500)) * 2 + rng.normal(0, 3, (1000, 1500))).round().astype(np.int64)
        e = single_estimate(f, "RGGB", 64, 16383)
        floor = e.K <= 1.0000001e-6
        if floor.any():
            break
    assert floor.any()
    assert not e.reliable[floor].any() and np.all(e.K_err[floor] >= e.K[floor])
    assert all(any(f"channel {c}: no positive K" in w for w in e.warnings) for c in np.flatnonzero(floor))


def test_shots_of_different_scenes_at_one_level_are_not_a_burst(tmp_path):
    """Three photos of different dead-leaves scenes at the same exposure, ISO and level: the level rule alone
    groups some of them as a burst (whose temporal variance then holds two scenes: K off by 800x); the frames
    themselves say they differ, so each is a single frame, with a message, and K is within the single-frame
    accuracy (15% at this size). Frames of one scene (noise, 0.3 px of shake, or an almost flat scene) are one
    scene; another scene is not."""
    from calibration.discovery import scan
    from calibration.errors import CalibrationError
    from calibration.labfree import same_scene
    from calibration.pipeline import _bursts
    from calibration.simulate import scene_frame
    from isp_sim.profile import load_profile
    from isp_sim.scenes import dead_leaves, natural_palette
    from scipy.ndimage import shift

    s = simulate_capture(PHONE_B, tmp_path / "s", isos=[1600], n_dark=0, n_flat_pairs=0, size=(768, 1024), n_scenes=3,
                         burst=1, seed=3, write_noise_profile=False, prnu=0.005)
    photos = scan(tmp_path / "s").photos[1600.0]
    assert any(len(g) > 1 for g in _bursts(photos))  # what the level rule alone would do
    r = _quiet_calibrate(tmp_path / "s")
    e = r.estimates[1600.0]
    assert e.method == "single" and len(e.labfree) == 3
    assert any("not the same scene" in w for w in r.warnings)
    np.testing.assert_allclose(e.K, s.truth[1600.0].K, rtol=0.15)
    q = r.profile.to_dict()["points"][0]["quality"]["photo_estimates"]  # the profile says which channels it trusts
    assert [p["method"] for p in q] == ["single"] * 3 and all(len(p["reliable"]) == 4 for p in q)

    t = load_profile(PHONE_B).at_iso(1600)
    rng = np.random.default_rng(5)
    scene = dead_leaves(rng, 512, palette=natural_palette(rng)).astype(np.float64) ** 2.2
    other = dead_leaves(rng, 512, palette=natural_palette(rng)).astype(np.float64) ** 2.2
    flat = np.full((512, 512, 3), 0.4) * (1 + 0.002 * np.random.default_rng(1).standard_normal((512, 512, 1)))
    shot = lambda sc, seed: scene_frame(sc, t, "RGGB", seed=seed, prnu=0.0)  # noqa: E731
    assert same_scene(shot(scene, 1), shot(scene, 2), "RGGB")
    assert same_scene(shot(scene, 1), shot(shift(scene, (0.3, -0.2, 0), order=1, mode="nearest"), 2), "RGGB")
    assert same_scene(shot(flat, 1), shot(flat, 2), "RGGB")
    assert not same_scene(shot(scene, 1), shot(other, 2), "RGGB")
    for bad, match in [(np.zeros((64, 96), np.uint16), "differ in shape"), (np.zeros(100, np.uint16), "2-D raw mosaic"),
                       (np.full((64, 64), np.nan), "non-finite")]:
        with pytest.raises(CalibrationError, match=match):
            same_scene(np.zeros((64, 64), np.uint16), bad, "RGGB")


def test_single_frames_combine_per_channel_over_the_frames_that_trust_it():
    """Single-frame estimates of one ISO: per channel the median over the frames that do not mark that channel
    unreliable, the error divided by the square root of their number; a channel no frame trusts uses all."""
    from calibration.labfree import LabFreeEstimate
    from calibration.pipeline import _combine

    def est(K, reliable):
        return LabFreeEstimate("single", np.array(K, float), np.full(4, 2.0), np.full(4, 0.1), np.zeros(4),
                               reliable=np.array(reliable))

    ests = [est([1.0, 1.0, 9.0, 5.0], [True, True, False, False]), est([1.2, 1.1, 1.1, 7.0], [True] * 3 + [False]),
            est([1.1, 1.3, 1.3, 6.0], [True] * 3 + [False])]
    method, K, K_err, dv = _combine(ests)
    assert method == "single"
    np.testing.assert_allclose(K, [1.1, 1.1, 1.2, 6.0])
    np.testing.assert_allclose(K_err, [0.1 / math.sqrt(3)] * 2 + [0.1 / math.sqrt(2), 0.1 / math.sqrt(3)])
    np.testing.assert_allclose(dv, 2.0)


def test_single_photos_without_a_tag_make_a_profile(tmp_path):
    """Single photos whose DNGs carry no NoiseProfile: the ISO is calibrated from the single-frame estimates
    (median over the photos), the profile is valid JSON with finite standard errors and says the method, and
    K is within the single-frame accuracy on these textured scenes (50%; BENCHMARKS.md)."""
    import json
    import math

    s = simulate_capture("mi_note10", tmp_path / "s", isos=[3200], n_dark=0, n_flat_pairs=0, size=(384, 512),
                         n_scenes=3, burst=1, seed=8, write_noise_profile=False)
    r = _quiet_calibrate(tmp_path / "s")
    e = r.estimates[3200.0]
    assert e.method == "single" and {le.method for le in e.labfree} == {"single"}
    np.testing.assert_allclose(e.K, s.truth[3200.0].K, rtol=0.5)
    assert np.all(np.isfinite(e.K_err)) and np.all(e.K_err > 0)
    path = tmp_path / "p.json"
    r.profile.save(path)
    d = json.loads(path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert all(math.isfinite(k) for k in d["points"][0]["K"])


@pytest.mark.parametrize("frame,match", [(np.zeros(100, np.uint16), "2-D raw mosaic"),
                                         (np.zeros((8, 8), np.uint16), "at least 16 x 16"),
                                         (np.full((64, 64), np.nan), "non-finite"),
                                         (np.full((64, 64), "a"), "dtype")])
def test_lab_free_estimators_name_bad_frames(frame, match):
    """A frame that is not a 2-D mosaic of finite numbers gets an error saying so, from both estimators."""
    from calibration.errors import CalibrationError
    from calibration.labfree import single_estimate

    with pytest.raises(CalibrationError, match=match):
        single_estimate(frame, "RGGB", [64] * 4, 1023)
    with pytest.raises(CalibrationError, match=match):
        burst_estimate([frame, frame], "RGGB", [64] * 4, 1023)
    with pytest.raises(CalibrationError, match="differ in shape"):
        burst_estimate([np.zeros((32, 32), np.uint16), np.zeros((32, 48), np.uint16)], "RGGB", [64] * 4, 1023)


def test_dropped_motion_term_leaves_the_standard_errors_of_the_model_fitted():
    """A negative motion coefficient is dropped: K's standard error is then that of the fit without the motion
    column (it came from the three-column design the fit no longer used), and the motion term's error is 0."""
    from calibration.labfree import _robust_fit

    rng = np.random.default_rng(4)
    mu = rng.uniform(10, 800, 2000)
    g = rng.uniform(0, 200, 2000)
    var = (0.8 * mu + 4.0 - 0.5 * g.clip(0, 0.5 * (0.8 * mu + 4.0))) * rng.gamma(100, 1 / 100, 2000)
    coef3, err3, keep3 = _robust_fit([mu, np.ones_like(mu), g], var, 200)
    coef2, err2, keep2 = _robust_fit([mu, np.ones_like(mu)], var, 200)
    assert coef3[2] == 0.0 and err3[2] == 0.0
    np.testing.assert_array_equal(keep3, keep2)
    np.testing.assert_allclose(coef3[:2], coef2, rtol=1e-12)
    np.testing.assert_allclose(err3[:2], err2, rtol=1e-12)


@pytest.mark.parametrize("kw, match", [({"n_scenes": -1}, "n_scenes must be"), ({"burst": 0}, "burst >= 1"),
                                       ({"jitter": float("nan")}, "jitter must be"),
                                       ({"jitter": -0.1}, "jitter must be"),
                                       ({"scene_level": float("nan")}, "scene_level must be")])
def test_bad_scene_session_arguments_are_refused_before_anything_is_written(tmp_path, kw, match):
    from calibration.errors import CalibrationError

    out = tmp_path / "s"
    with pytest.raises(CalibrationError, match=match):
        simulate_capture("mi_note10", out, isos=[800], n_dark=1, n_flat_pairs=1, size=(32, 32), **kw)
    assert not out.exists()


def test_bad_levels_tiles_and_tags_are_named():
    from calibration.errors import CalibrationError
    from calibration.labfree import single_estimate

    fr = np.full((64, 64), 100, np.uint16)
    for kw, match in [({"black": [64, 64, 64]}, "black must be"), ({"black": float("nan")}, "black must be"),
                      ({"white": float("nan")}, "white"), ({"white": 10}, "above every black level"),
                      ({"bias": [0, 0]}, "bias must be"), ({"tile": 0}, "tile must be an integer >= 2"),
                      ({"smooth_quantile": 2}, "smooth_quantile")]:
        args = {"black": 64, "white": 1023, **kw}
        with pytest.raises(CalibrationError, match=match):
            single_estimate(fr, "RGGB", args.pop("black"), args.pop("white"), **args)
    with pytest.raises(CalibrationError, match="tile_dark must be"):
        burst_estimate(iter([fr, fr]), "RGGB", 64, 1023, tile_dark=1)  # a generator of frames is fine
    for tag in ([(float("nan"), 1e-6)], [(-1e-4, 1e-6)], [(1e-4,)], [(1e-4, -1.0)]):
        with pytest.raises(CalibrationError, match=r"S > 0 and O >= 0"):
            tag_estimate(tag, 64, 1023)
    with pytest.raises(CalibrationError, match="list of \\(S, O\\) number pairs"):
        tag_estimate([1e-4, 1e-6], 64, 1023)
