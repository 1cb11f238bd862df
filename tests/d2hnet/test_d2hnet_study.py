"""d2hnet study: noise models, baselines, statistics, one-batch overfitting, and the study wired end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import isp_sim  # noqa: E402
from d2hnet.study import METHOD_ORDER, PAIRED, StudyConfig, run_study  # noqa: E402
from d2hnet.study.baselines import fusion, gat, gat_inverse, register  # noqa: E402
from d2hnet.study.noise_models import (BROOKS_SHOT_RANGE, GenericGaussian, OtherPhoneByK, ProfileRecipe,  # noqa: E402
                                       degrade_pair)
from d2hnet.study.scenes import dead_leaves  # noqa: E402
from d2hnet.study.stats import bootstrap_ci, paired, psnr_ssim  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PHONE_B = ROOT / "examples" / "profiles" / "sim_phone_b.json"


@pytest.fixture(scope="module")
def phone_b():
    return isp_sim.load_profile(PHONE_B)


def test_study_phone_profile_is_what_the_tool_writes(phone_b, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_study_phone", ROOT / "tools" / "make_study_phone.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.make().to_dict() == phone_b.to_dict()
    assert phone_b.sensor.pattern == "GRBG" and phone_b.iso_range == (100.0, 6400.0)


# ----------------------------------------------------------------------------- noise models


def test_paper_recipe_maps_to_the_phone_range_and_bands(phone_b):
    rng = np.random.default_rng(0)
    rec = ProfileRecipe(phone_b)
    pairs = np.array([rec.isos(rng) for _ in range(2000)])
    assert pairs[:, 0].min() >= 100 and pairs[:, 0].max() <= 800
    np.testing.assert_allclose(pairs[:, 1], 8 * pairs[:, 0])
    # log-uniform: the median long ISO is the geometric middle of [100, 800]
    assert abs(np.median(np.log(pairs[:, 0])) - math.log(math.sqrt(100 * 800))) < 0.05
    lo = ProfileRecipe(phone_b, band=(0, 3)).isos(rng)[0]
    hi = ProfileRecipe(phone_b, band=(2, 3)).isos(rng)[0]
    assert 100 <= lo <= 200 and 400 <= hi <= 800


def test_other_phone_by_k_keeps_shot_noise_and_takes_the_other_shape(phone_b):
    mi = isp_sim.load_profile("mi_note10")
    m = OtherPhoneByK(phone_b, mi)
    a, b = m.pair_params(np.random.default_rng(3))
    t = phone_b.at_iso(b.iso)
    np.testing.assert_array_equal(b.K, t.K)
    o = mi.at_k(float(np.exp(np.mean(np.log(t.K)))))
    np.testing.assert_allclose(b.read_std, o.read_std)
    np.testing.assert_allclose(b.read_lambda, o.read_lambda)
    assert b.row_std == o.row_std == 0.0 and t.row_std > 0
    np.testing.assert_array_equal(b.black_level, phone_b.sensor.black_level)
    # the long frame's K (ISO 100-800) lies below mi_note10's k_range: clamped and counted
    assert m.drawn == 2 and m.clamped >= 1 and a.extra["shape_at_k"] == pytest.approx(mi.k_range[0])


def test_generic_model_follows_brooks_2019(phone_b):
    m = GenericGaussian(phone_b)
    rng = np.random.default_rng(1)
    span = phone_b.sensor.white_level - 48.0
    ls, lr = [], []
    for _ in range(3000):
        a, b = m.pair_params(rng)
        np.testing.assert_allclose(b.K, 8 * a.K)
        assert a.read_law == "gaussian" and a.row_std == 0.0
        for p in (a, b):
            ls.append(p.K[0] / span)
            lr.append((p.read_std[0] / span) ** 2)
    ls, lr = np.log(ls), np.log(lr)
    assert math.exp(ls.min()) >= BROOKS_SHOT_RANGE[0] * (1 - 1e-9) and math.exp(ls.max()) <= BROOKS_SHOT_RANGE[1] * (1 + 1e-9)
    slope, icpt = np.polyfit(ls, lr, 1)
    resid = lr - (slope * ls + icpt)
    assert slope == pytest.approx(2.18, abs=0.03) and icpt == pytest.approx(1.20, abs=0.15)
    assert resid.std() == pytest.approx(0.26, rel=0.05)


def test_degrade_pair_variance_follows_the_model_raw_law(phone_b):
    """The pair goes through isp_sim: the short frame's raw variance is K x + read^2 + row^2 + 1/12."""
    img = np.full((128, 128, 3), 0.25, np.float32)
    rec = ProfileRecipe(phone_b, band=(2, 3))
    _, _, info = degrade_pair(img, img, rec, np.random.default_rng(5), keep_raw=True)
    r = info["short_result"]
    n = r.params.noise
    from isp_sim.cfa import channel_map

    cm = channel_map(phone_b.sensor.pattern)
    (i, j), = np.argwhere(cm == 1)
    raw = r.raw[i::2, j::2].astype(np.float64)
    clean = r.raw_clean[i::2, j::2]
    x = float(clean.mean() - n.black_level[1])
    want = n.K[1] * x + n.read_std[1] ** 2 + 1 / 12
    # row noise is common to a row: remove it before comparing the per-pixel variance
    got = (raw - raw.mean(axis=1, keepdims=True)).var() * raw.shape[1] / (raw.shape[1] - 1)
    assert got == pytest.approx(want, rel=0.06)


# ----------------------------------------------------------------------------- baselines and statistics


def test_gat_stabilises_poisson_gaussian_noise():
    rng = np.random.default_rng(0)
    k, read, off = 2.5, 4.0, 64.0
    for electrons in (5.0, 40.0, 400.0):
        dn = k * rng.poisson(electrons, 200_000) + rng.normal(0, read, 200_000) + off
        z, s2 = gat(dn, k, read**2, off)
        assert z.std() == pytest.approx(1.0, rel=0.04)
        # the closed-form inverse of the mean transform returns the mean signal
        assert gat_inverse(np.array([z.mean()]), k, s2, off)[0] == pytest.approx(off + k * electrons, rel=0.02)


def test_fusion_registers_and_beats_the_short_frame():
    rng = np.random.default_rng(0)
    clean = dead_leaves(rng, 160)[16:144, 16:144]
    from scipy.ndimage import shift

    full = dead_leaves(np.random.default_rng(0), 160)
    long = shift(full, (2.0, -3.0, 0), order=1)[16:144, 16:144]
    short = np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1).astype(np.float32)
    reg = register(long, short)
    assert psnr_ssim(reg, clean)[0] > psnr_ssim(long, clean)[0] + 5
    assert psnr_ssim(fusion(long, short, 1.0, 0.0), clean)[0] > psnr_ssim(short, clean)[0] + 4


def test_bootstrap_interval_width_and_paired_differences():
    rng = np.random.default_rng(2)
    v = rng.normal(3.0, 1.0, 40)
    lo, hi = bootstrap_ci(v, n_boot=20_000, seed=1)
    assert lo < v.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * v.std() / math.sqrt(v.size), rel=0.12)
    assert bootstrap_ci(np.full(7, 1.5)) == [1.5, 1.5]
    d = paired([2.0, 3.0, 4.0], [1.0, 1.0, 5.0])
    assert d["mean"] == pytest.approx(2 / 3) and d["wins"] == 2 and d["per_image"] == [1.0, 2.0, -1.0]


def test_ssim_is_scikit_image_wang_2004():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((48, 48, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    p, s = psnr_ssim(a, b)
    assert p == pytest.approx(10 * math.log10(1 / np.mean((a - b) ** 2)))
    assert s == pytest.approx(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                    data_range=1.0, channel_axis=-1))


def test_dead_leaves_radii_follow_r_minus_3():
    """The inverse-CDF radii of the generator follow p(r) ~ r^-3 (checked through its CDF on a large draw)."""
    a, b = 2.0, 80.0
    u = np.random.default_rng(0).random(200_000)
    r = (a**-2 - u * (a**-2 - b**-2)) ** -0.5
    for q in (3.0, 6.0, 20.0):
        want = (a**-2 - q**-2) / (a**-2 - b**-2)
        assert (r <= q).mean() == pytest.approx(want, abs=0.005)
    img1 = dead_leaves(np.random.default_rng(4), 64)
    assert np.array_equal(img1, dead_leaves(np.random.default_rng(4), 64))
    assert img1.dtype == np.float32 and 0 <= img1.min() and img1.max() <= 1 and img1.std() > 0.05


# ----------------------------------------------------------------------------- training


def test_tiny_model_overfits_one_fixed_batch(phone_b):
    """DeblurNet at small width learns one fixed noisy batch to >= 35 dB, >= 10 dB above its short input."""
    from d2hnet.models.pair import D2HNet
    from d2hnet.study.training import phase1_loss

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    gts, ls, ss = [], [], []
    for i in range(2):
        gt = dead_leaves(np.random.default_rng(10 + i), 64)
        nl, ns, _ = degrade_pair(gt, gt, ProfileRecipe(phone_b, band=(2, 3)), rng)
        gts.append(gt), ls.append(nl), ss.append(ns)
    t = [torch.from_numpy(np.stack(x).transpose(0, 3, 1, 2).copy()) for x in (ls, ss, gts)]
    model = D2HNet({"deblurnet": {"ngf": 8, "n_res": 1, "n_res2": 1}, "enhancenet": {"ngf": 8, "n_res": 0, "n_res2": 0}})
    opt = torch.optim.Adam(model.deblurnet.parameters(), lr=2e-3, betas=(0.5, 0.999))
    down = [torch.nn.functional.avg_pool2d(x, 2) for x in t]
    in_psnr = 10 * math.log10(1 / float(((down[1] - down[2]) ** 2).mean()))
    for step in range(600):
        loss = phase1_loss(model, *t, np.random.default_rng(step), cutnoise_p=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = model.deblurnet(down[0], down[1]).clamp(0, 1)
    got = 10 * math.log10(1 / float(((out - down[2]) ** 2).mean()))
    assert got >= 35.0 and got >= in_psnr + 10.0, (got, in_psnr)


# ----------------------------------------------------------------------------- the study, tiny, end to end


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    cfg = StudyConfig(crop=64, patch=32, n_train=16, n_dead_leaves=2, test_crops=1, tune_crops=2, n_bands=1,
                      generic_steps=(3, 2), finetune_steps=(2, 2), eval_points=1, batch=(2, 2), jobs=2,
                      baseline_grid="tiny", n_boot=500, seed=1)
    study = run_study(PHONE_B, PHONE_B, out, cfg=cfg, progress=False, log=lambda *a: None)
    return out, study, cfg


def test_study_json_contract(tiny_study):
    out, study, cfg = tiny_study
    on_disk = json.loads((out / "study.json").read_text())
    assert on_disk == json.loads(json.dumps(study))
    assert set(METHOD_ORDER) <= set(study["methods"])
    n_img = len(study["images"])
    assert n_img >= 6
    for name, m in study["methods"].items():
        assert len(m["psnr"]) == len(m["ssim"]) == n_img, name
        assert m["psnr_mean"] == pytest.approx(np.mean(m["psnr"]))
        assert m["ssim_mean"] == pytest.approx(np.mean(m["ssim"]))
        # the intervals come from the per-image values (same resampling as the study)
        assert m["psnr_ci95"] == pytest.approx(bootstrap_ci(m["psnr"], n_boot=cfg.n_boot, seed=cfg.seed))
    for key, (a, b) in PAIRED.items():
        d = np.subtract(study["methods"][a]["psnr"], study["methods"][b]["psnr"])
        assert study["paired"][key]["mean"] == pytest.approx(d.mean()), key
        assert study["paired"][key]["ci95"] == pytest.approx(bootstrap_ci(d, n_boot=cfg.n_boot, seed=cfg.seed))
    assert set(study["by_iso"]) == {"band0"}
    for name in ("d2hnet_generic", "d2hnet_matched", "d2hnet_other_phone", "d2hnet_release_recipe", "d2hnet_matched_seed2"):
        c = study["curves"][name]
        assert c and all({"step", "psnr", "phase"} <= set(p) for p in c)
        assert c[-1]["step"] == sum(cfg.generic_steps if name == "d2hnet_generic" else cfg.finetune_steps)
    assert study["circular"] is True  # --truth was --profile
    assert {"config", "timing"} <= set(study)
    for f in ("panel.png", "curves.png", "summary.md", "d2hnet_matched.pt"):
        assert (out / f).stat().st_size > 0
    assert "Circular study" in (out / "summary.md").read_text()


def test_study_inputs_scores_are_the_crops_scores(tiny_study):
    """short_input per image = mean over its crops of the PSNR of the cached noisy short frame."""
    out, study, _ = tiny_study
    d = np.load(out / "cache" / "test_split.npz")
    p = [psnr_ssim(s, g)[0] for s, g in zip(d["short"], d["gt"])]
    assert study["methods"]["short_input"]["psnr"] == pytest.approx(p)  # one crop per image here


def test_finetunes_start_from_the_generic_weights(tiny_study):
    """Every fine-tune: DeblurNet from the generic model's, EnhanceNet from the generic model's, same steps."""
    out, study, _ = tiny_study
    from d2hnet.checkpoint import load_checkpoint, read_checkpoint

    gen = load_checkpoint(out / "d2hnet_generic.pt")
    p1 = load_checkpoint(out / "cache" / "generic_phase1.pt")
    for k, v in gen.deblurnet.state_dict().items():  # phase 2 leaves DeblurNet as phase 1 made it
        assert torch.equal(v, p1.deblurnet.state_dict()[k]), k
    for name in ("d2hnet_matched", "d2hnet_other_phone", "d2hnet_release_recipe", "d2hnet_matched_seed2"):
        first = read_checkpoint(out / "cache" / f"{name}_phase1.pt")["meta"]["job"]
        second = read_checkpoint(out / f"{name}.pt")["meta"]["job"]
        assert first["init"] == str(out / "cache" / "generic_phase1.pt") and (first["steps1"], first["steps2"]) == (2, 0)
        assert second["init_enhancenet"] == str(out / "d2hnet_generic.pt") and (second["steps1"], second["steps2"]) == (0, 2)


def test_study_refuses_to_overwrite_and_k_indexed_profiles(tmp_path, tiny_study):
    from d2hnet.errors import InputError

    out, _, _ = tiny_study
    with pytest.raises(InputError, match="already holds a study"):
        run_study(PHONE_B, PHONE_B, out, cfg=StudyConfig.quick_config(), progress=False)
    with pytest.raises(InputError, match="K-indexed"):
        run_study("sony_a7s2", PHONE_B, tmp_path / "x", progress=False)


def test_init_reuses_a_generic_checkpoint(tiny_study, tmp_path):
    """--init: the generic model is the given checkpoint (not retrained): same weights, same test scores."""
    out, study, cfg = tiny_study
    again = run_study(PHONE_B, PHONE_B, tmp_path / "again", cfg=cfg, init=str(out / "d2hnet_generic.pt"),
                      progress=False, log=lambda *a: None)
    assert again["methods"]["d2hnet_generic"]["psnr"] == pytest.approx(study["methods"]["d2hnet_generic"]["psnr"])
    assert again["config"]["init"] == str(out / "d2hnet_generic.pt")
    assert [p["step"] for p in again["curves"]["d2hnet_generic"]] == [0]


def test_init_with_another_architecture_is_refused_before_work(tiny_study, tmp_path):
    from d2hnet.errors import InputError
    from d2hnet.study import FULL_ARCH

    out, _, cfg = tiny_study
    wide = StudyConfig(**{**cfg.__dict__, "arch": FULL_ARCH})
    with pytest.raises(InputError, match="architecture"):
        run_study(PHONE_B, PHONE_B, tmp_path / "w", cfg=wide, init=str(out / "d2hnet_generic.pt"), progress=False)
    assert not (tmp_path / "w").exists()


def test_the_study_accepts_a_profile_made_without_a_lab(tmp_path):
    """A profile calibrated from tripod bursts alone (Gaussian read noise, no row noise) drives the study's
    matched noise model like any calibrated profile."""
    import warnings

    from calibration import calibrate, simulate_capture
    from d2hnet.study import _profile
    from d2hnet.study.noise_models import ProfileRecipe, degrade_pair

    simulate_capture("mi_note10", tmp_path / "s", isos=[800, 3200, 12800], n_dark=0, n_flat_pairs=0, size=(128, 192),
                     n_scenes=1, burst=3, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = calibrate(tmp_path / "s", progress=False)
    path = tmp_path / "labfree.json"
    res.profile.save(path)
    prof = _profile(path, "--profile")
    assert prof.default_read_law == "gaussian"
    model = ProfileRecipe(prof)
    x = np.full((32, 32, 3), 0.3, np.float32)
    nl, ns, info = degrade_pair(x, x, model, np.random.default_rng(0))
    assert ns.std() > nl.std() > 0
