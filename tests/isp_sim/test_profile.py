import json
import math

import numpy as np
import pytest

from isp_sim import NoiseParams, NoiseProfile, ProfileError, bundled_profiles, load_profile, profile_schema, tukey_lambda_std
from isp_sim.profile import BUNDLED

# Published D2HNet table (published_profiles.md): K_off (electrons per DN) for G, R, B and read scale s
D2HNET_TABLE = {
    1000: (1.166, 1.059, 1.245, 0.92),
    2000: (0.733, 0.673, 0.790, 1.38),
    4000: (0.411, 0.380, 0.447, 2.30),
    6400: (0.255, 0.236, 0.278, 3.50),
    8000: (0.199, 0.182, 0.216, 4.39),
    12800: (0.118, 0.101, 0.122, 7.28),
}


def test_all_bundled_profiles_load():
    assert sorted(bundled_profiles()) == sorted(BUNDLED)
    for name in BUNDLED:
        p = load_profile(name)
        assert p.name == name
        assert p.k_range[0] < p.k_range[1]


@pytest.mark.parametrize("iso", sorted(D2HNET_TABLE))
def test_mi_note10_matches_published_table(iso):
    g, r, b, s = D2HNET_TABLE[iso]
    n = load_profile("mi_note10").at_iso(iso)
    # K = 1 / K_off, table rounded to 3 decimals
    np.testing.assert_allclose(1 / n.K, [r, g, g, b], atol=6e-4)
    np.testing.assert_allclose(n.read_scale * 0.9375, s, atol=6e-3)
    assert n.read_law == "tukey_lambda" and np.all(n.read_lambda == 0.09)
    np.testing.assert_allclose(n.read_std, n.read_scale * tukey_lambda_std(0.09), rtol=1e-12)
    assert n.black_level.tolist() == [64.0] * 4 and n.white_level == 1023


def test_mi_note10_k_grows_with_iso_and_interpolates_loglog():
    p = load_profile("mi_note10")
    isos = np.geomspace(800, 12800, 50)
    ks = np.array([p.at_iso(i).K for i in isos])
    assert np.all(np.diff(ks, axis=0) > 0)
    # between table points (every 100 ISO) the value follows the published quadratic closely
    l = math.log10(1050)
    kg = 1 / (0.60948693 * l**2 - 5.27886693 * l + 11.51749064)
    assert p.at_iso(1050).K[1] == pytest.approx(kg, rel=1e-3)  # 0.1%: far below any calibration error


def test_tukey_lambda_std_matches_scipy():
    from scipy import stats

    for lam in (-0.2, 0.0, 0.09, 0.14, 0.5, 1.0):
        assert tukey_lambda_std(lam) == pytest.approx(stats.tukeylambda.std(lam), rel=1e-6)


def test_at_iso_reproduces_points_and_is_deterministic():
    p = load_profile("mi_note10")
    pt = p.points[5]
    n = p.at_iso(pt["iso"])
    assert n.K.tolist() == pt["K"] and n.read_std.tolist() == pt["read_std"]
    assert p.at_iso(1234.5) == p.at_iso(1234.5)


def test_iso_out_of_range_errors_unless_extrapolate():
    p = load_profile("mi_note10")
    with pytest.raises(ProfileError, match=r"ISO 100 is outside .*\[800, 12800\].*extrapolate=True"):
        p.at_iso(100)
    with pytest.warns(RuntimeWarning, match="extrapolating"):
        n = p.at_iso(25600, extrapolate=True)
    assert n.K[1] > p.at_iso(12800).K[1]


def test_k_indexed_profile_uses_fits():
    p = load_profile("sony_a7s2")
    raw = p.to_dict()
    k = 2.0
    n = p.at_k(k)
    f = raw["models"]["read_scale"]
    assert n.read_scale[0] == pytest.approx(math.exp(f["slope"] * math.log(k) + f["bias"]))
    assert n.read_lambda[0] == pytest.approx(np.mean(raw["models"]["read_lambdas"]))
    assert n.row_std == pytest.approx(math.exp(raw["models"]["row_std"]["slope"] * math.log(k) + raw["models"]["row_std"]["bias"]))
    g = p.at_k(k, read_law="gaussian")
    assert g.read_law == "gaussian" and np.all(np.isnan(g.read_lambda))
    with pytest.raises(ProfileError, match="K-indexed"):
        p.at_iso(800)
    with pytest.raises(ProfileError, match="outside"):
        p.at_k(100.0)


def test_eld_bias_reordered_to_r_gr_gb_b():
    p = load_profile("canon_eos70d")
    # first ELD row is (R, G1, B, G2) = (0.7145, 0.5804, 0.3192, 0.4214)
    assert p.models["biases"][0] == pytest.approx([0.7145485281944275, 0.5803739428520203, 0.42135176062583923, 0.3191665709018707])


def test_sample_is_reproducible_and_in_range():
    for name in ("mi_note10", "nikon_d850"):
        p = load_profile(name)
        a = [p.sample(np.random.default_rng(7)) for _ in range(2)]
        assert a[0] == a[1]
        rng = np.random.default_rng(2024)
        draws = [p.sample(rng) for _ in range(2000)]
        # log-uniform: ln(value) is uniform, so its mean sits mid-range (SE ~ width / sqrt(12 * 2000) < 0.03)
        if p.index == "iso":
            v = np.log([d.iso for d in draws])
            lo, hi = np.log(p.iso_range)
        else:
            v = np.log([d.K[0] for d in draws])
            lo, hi = np.log(p.k_range)
        assert v.min() >= lo and v.max() <= hi
        assert v.mean() == pytest.approx(0.5 * (lo + hi), abs=0.1)
        assert np.histogram(v, bins=4, range=(lo, hi))[0].min() > 400


def test_sample_iso_subrange():
    p = load_profile("mi_note10")
    isos = [p.sample(np.random.default_rng(s), iso_range=(800, 1600)).iso for s in range(50)]
    assert min(isos) >= 800 and max(isos) <= 1600


def test_at_k_on_iso_profile_inverts_mean_k():
    p = load_profile("mi_note10")
    iso = 3000.0
    k = p.mean_k(iso)
    assert p.at_k(k).iso == pytest.approx(iso, rel=1e-6)


def test_save_load_round_trip(tmp_path):
    p = load_profile("canon_eos5d4")
    path = p.save(tmp_path / "sub" / "p.json")
    q = load_profile(path)
    assert q.to_dict() == p.to_dict()
    assert q.at_k(1.0) == p.at_k(1.0)


def _corrupt(tmp_path, mutate):
    d = load_profile("mi_note10").to_dict()
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    return path


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.update(version=2), "unsupported profile version 2"),
    (lambda d: d.update(format="other"), "field 'format'"),
    (lambda d: d["points"][3]["K"].__setitem__(2, -1.0), r"points\[3\]\.K\[2\]"),
    (lambda d: d["sensor"].update(pattern="RGBG"), r"sensor\.pattern"),
    (lambda d: d["points"][0].pop("read_std"), r"points\[0\].*read_std"),
    (lambda d: d.update(iso_range=[100, 12800]), "iso_range"),
    (lambda d: d["sensor"].update(black_level=[64, 64, 64, 2000]), r"sensor\.black_level"),
    (lambda d: d.update(extra_field=1), "extra_field"),
    (lambda d: d["points"].reverse(), "strictly increasing iso"),
])
def test_malformed_profiles_name_the_field(tmp_path, mutate, match):
    with pytest.raises(ProfileError, match=match):
        load_profile(_corrupt(tmp_path, mutate))


def test_not_json_and_missing(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profile(bad)
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile(tmp_path / "missing.json")
    with pytest.raises(ProfileError, match="unknown profile 'pixel9'.*mi_note10"):
        load_profile("pixel9")


def test_schema_is_published_and_validates_bundled():
    import jsonschema

    schema = profile_schema()
    for name in BUNDLED:
        jsonschema.validate(load_profile(name).to_dict(), schema)


def test_noise_params_validation_and_dng_profile():
    n = load_profile("mi_note10").at_iso(4000)
    pairs = n.dng_noise_profile()
    assert len(pairs) == 3
    s, o = pairs[0]
    assert s == pytest.approx(n.K[0] / 959)
    assert o == pytest.approx((n.read_std[0] ** 2 + 1 / 12) / 959**2)
    assert NoiseParams.from_dict(n.to_dict()) == n
    with pytest.raises(ValueError, match="K must be finite and > 0"):
        NoiseParams(K=[1, 1, 0, 1], read_law="gaussian", read_lambda=np.nan, read_scale=np.nan, read_std=1,
                    row_std=0, bias=0, black_level=64, white_level=1023)
    with pytest.raises(ValueError, match="read_law"):
        NoiseParams(K=1, read_law="poisson", read_lambda=0, read_scale=1, read_std=1,
                    row_std=0, bias=0, black_level=64, white_level=1023)


def test_interpolation_between_gaussian_and_tukey_points():
    d = load_profile("mi_note10").to_dict()
    d["points"] = d["points"][:3]
    d["iso_range"] = [d["points"][0]["iso"], d["points"][-1]["iso"]]
    g = d["points"][0]
    g.update(read_law="gaussian", read_lambda=[None] * 4, read_scale=[None] * 4)
    p = NoiseProfile.from_dict(d)
    assert p.at_iso(800).read_law == "gaussian"
    mid = p.at_iso(850)
    assert mid.read_law == "tukey_lambda"
    assert 0.09 < mid.read_lambda[0] < 0.1349
    lo, hi = p.at_iso(800).read_std[0], p.at_iso(900).read_std[0]
    assert min(lo, hi) <= mid.read_std[0] <= max(lo, hi)


def test_interpolated_tukey_std_matches_shape_and_scale():
    d = load_profile("mi_note10").to_dict()
    d["points"] = d["points"][:2]
    d["iso_range"] = [d["points"][0]["iso"], d["points"][1]["iso"]]
    d["points"][0]["read_lambda"] = [-0.2] * 4
    d["points"][1]["read_lambda"] = [0.2] * 4
    for pt in d["points"]:
        pt["read_std"] = [pt["read_scale"][0] * tukey_lambda_std(pt["read_lambda"][0])] * 4
    p = NoiseProfile.from_dict(d)
    mid = p.at_iso(math.sqrt(d["points"][0]["iso"] * d["points"][1]["iso"]))
    np.testing.assert_allclose(mid.read_std, mid.read_scale * np.array([tukey_lambda_std(v) for v in mid.read_lambda]))


def test_seed_sequence_seed_is_not_consumed():
    from isp_sim import degrade

    img = np.full((8, 8, 3), 0.5, np.float32)
    ss = np.random.SeedSequence(5)
    a = degrade(img, "mi_note10", seed=ss)
    b = degrade(img, "mi_note10", seed=ss)
    assert np.array_equal(a.raw, b.raw)


def test_a_folder_named_like_a_bundled_profile_does_not_hide_it(tmp_path, monkeypatch):
    """A calibration session folder named after its phone, in the current directory: the bundled name still
    loads; a folder of another name is refused as a folder."""
    from isp_sim.errors import ProfileError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mi_note10").mkdir()
    (tmp_path / "my_phone").mkdir()
    assert load_profile("mi_note10").name == "mi_note10"
    with pytest.raises(ProfileError, match="my_phone: is a folder"):
        load_profile("my_phone")
