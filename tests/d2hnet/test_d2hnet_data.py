"""d2hnet.data: readers, tuple synthesis, VarmapSelection, augmentations, pair noise, datasets, make-val."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import isp_sim  # noqa: E402
from d2hnet.data import (  # noqa: E402
    SampleSettings,
    TrainDataset,
    ValDataset,
    color_adjust,
    cut_noise,
    cut_noise_box,
    degrade_pair,
    illumination_adjust,
    make_val,
    scan_dataset,
    synth_from_frames,
    synth_from_stills,
    varmap_ratio,
    varmap_selection,
)
from d2hnet.data.noise import check_iso_setup, pair_isos  # noqa: E402
from d2hnet.data.synth import tuple_from_frames  # noqa: E402
from d2hnet.errors import InputError  # noqa: E402
from isp_sim.imageio import SAMPLE_IMAGES, read_rgb, sample_image_path, write_image  # noqa: E402

SUFFIXES = ("long2", "long4", "long6", "long8", "long_last", "short")


def make_tuples(folder: Path, size: int = 112, seed: int = 0) -> Path:
    """Small synthetic tuples (one per bundled photo, a centre crop of ``size``), for data and training tests."""
    stills = []
    for name in SAMPLE_IMAGES:
        img, _ = read_rgb(sample_image_path(name))
        y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        stills.append(write_image(folder / "stills" / f"{name}.png", img[y:y + size, x:x + size], 8))
    synth_from_stills(stills, folder / "tuples", tuples_per_image=1, seed=seed, max_shake_px=6.0)
    return folder / "tuples"


@pytest.fixture(scope="module")
def tuples(tmp_path_factory):
    return make_tuples(tmp_path_factory.mktemp("d2h_data"))


@pytest.fixture(scope="module")
def profile():
    return isp_sim.load_profile("mi_note10")


def _touch(p: Path, value: float = 0.5, size: int = 16) -> None:
    write_image(p, np.full((size, size, 3), value, np.float32), 8)


# ----------------------------------------------------------------------------- readers


def test_scan_d2_layout_splits_blur_patches_and_incomplete(tmp_path):
    for split in ("day", "night"):
        for s in SUFFIXES:
            _touch(tmp_path / "train" / split / f"vid1_0001_{s}.png")
    for s in ("long8", "short"):
        _touch(tmp_path / "train" / "day" / f"vid2_0003_p7_{s}.png")  # blur patch: three name tokens
    _touch(tmp_path / "train" / "day" / "vid3_0001_long2.png")  # no short: incomplete
    _touch(tmp_path / "train" / "day" / "vid1_0001_half.png")  # read-out-gap frame: ignored
    with pytest.warns(UserWarning, match="skipped 1 incomplete"):
        recs = scan_dataset(tmp_path / "train", "d2")
    assert [r.name for r in recs] == ["day/vid1_0001", "day/vid2_0003_p7", "night/vid1_0001"]
    assert [r.split for r in recs] == ["day", "day", "night"]
    assert sorted(recs[0].longs) == ["long2", "long4", "long6", "long8"]
    assert recs[0].long_last is not None and recs[1].long_last is None
    assert recs[0].long_path().name == "vid1_0001_long8.png"


def test_scan_generic_per_tuple_and_parallel_folders(tmp_path):
    for name in ("a", "b"):
        _touch(tmp_path / "per" / name / "long.png")
        _touch(tmp_path / "per" / name / "short.png")
    _touch(tmp_path / "per" / "a" / "long_last.png")
    recs = scan_dataset(tmp_path / "per")
    assert [r.name for r in recs] == ["a", "b"] and recs[0].long_last is not None and list(recs[1].longs) == ["long"]
    for name in ("x", "y"):
        _touch(tmp_path / "par" / "long" / f"{name}.png")
        _touch(tmp_path / "par" / "short" / f"{name}.png")
    recs = scan_dataset(tmp_path / "par", "generic")
    assert [r.name for r in recs] == ["x", "y"] and recs[1].longs["long"].parent.name == "long"


def test_scan_errors_name_the_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        scan_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no tuples"):
        scan_dataset(tmp_path / "empty")
    with pytest.raises(InputError, match="layout must be one of"):
        scan_dataset(tmp_path / "empty", "flat")


# ----------------------------------------------------------------------------- synthesis


def test_tuple_from_frames_means_gap_and_short():
    frames = [np.full((4, 4, 3), i / 100, np.float32) for i in range(8 + 3 + 1)]
    tup = tuple_from_frames(frames, (2, 4, 6, 8), 3)
    # longs end on frame 7 (long_last); short is frame 7 + 3 + 1 = 11
    assert np.allclose(tup["long2"], (6 + 7) / 2 / 100) and np.allclose(tup["long8"], np.mean(range(8)) / 100)
    assert np.allclose(tup["long_last"], 0.07) and np.allclose(tup["short"], 0.11)


def test_synth_from_frames_writes_d2_tuples(tmp_path):
    for i in range(30):
        write_image(tmp_path / "frames" / f"f{i}.png", np.full((8, 8, 3), i / 40, np.float32), 8)
    names = synth_from_frames(tmp_path / "frames", tmp_path / "out", fps=100, long_ms=(20, 40, 60, 80), gap_ms=30)
    assert names == ["frames_0000", "frames_0001"]  # span 8 + 3 + 1 = 12 frames, two tuples in 30
    recs = scan_dataset(tmp_path / "out")
    assert len(recs) == 2 and recs[0].long_last is not None
    short, _ = read_rgb(recs[1].short)
    assert abs(short[0, 0, 0] - 23 / 40) < 1 / 255  # second tuple starts at frame 12: short = frame 12 + 11
    with pytest.raises(InputError, match="equal frame counts"):
        synth_from_frames(tmp_path / "frames", tmp_path / "o2", fps=10)


def test_synth_from_stills_is_reproducible_and_blurs_the_long(tuples, tmp_path):
    again = make_tuples(tmp_path)
    for f in sorted(tuples.iterdir()):
        assert f.read_bytes() == (again / f.name).read_bytes()
    recs = scan_dataset(tuples)
    assert len(recs) == 3 and all(sorted(r.longs) == ["long2", "long4", "long6", "long8"] for r in recs)
    ratios = [varmap_ratio(read_rgb(r.longs["long8"])[0], read_rgb(r.long_last)[0], 8).mean() for r in recs]
    assert max(ratios) < 0.95  # 80 ms of shake removes detail against the sharp last frame
    with pytest.raises(InputError, match="neither a folder nor a file"):
        synth_from_stills(tmp_path / "missing.png", tmp_path / "x")


# ----------------------------------------------------------------------------- VarmapSelection


def test_varmap_ratio_blur_low_flat_one():
    rng = np.random.default_rng(0)
    sharp = rng.random((64, 64, 3)).astype(np.float32)
    blurred = (sharp + np.roll(sharp, 1, 0) + np.roll(sharp, 1, 1) + np.roll(sharp, 2, 1)) / 4
    assert varmap_ratio(blurred, sharp, 16).max() < 0.6
    assert np.allclose(varmap_ratio(sharp, blurred, 16), 1.0)  # capped at 1
    flat = np.full((32, 32, 3), 0.3, np.float32)
    assert np.allclose(varmap_ratio(flat, flat, 16), 1.0)


def test_varmap_selection_threshold_and_patches(tuples):
    recs = scan_dataset(tuples)
    res = varmap_selection(recs, crop=64, n_extra=7, window=8, percentile=5, squares_per_image=200, seed=3)
    assert res.n_scored == 3 * 4 * 200 and len(res.patches) == 7
    ratio_means = []
    for p in res.patches:
        r = recs[p.record]
        ratio = varmap_ratio(read_rgb(r.longs[p.long])[0], read_rgb(r.long_last)[0], 8)
        ratio_means.append(ratio[p.y // 8:p.y // 8 + 8, p.x // 8:p.x // 8 + 8].mean())
    assert max(ratio_means) <= res.threshold + 1e-12
    again = varmap_selection(recs, crop=64, n_extra=7, window=8, squares_per_image=200, seed=3)
    assert again.to_dict() == res.to_dict()


# ----------------------------------------------------------------------------- augmentations and noise


def test_augmentation_effects():
    rng = np.random.default_rng(0)
    x = rng.random((130, 250, 3)).astype(np.float32)
    (a, b), fired = illumination_adjust([x, x], np.random.default_rng(1), p=1.0)
    assert fired and np.array_equal(a, b) and np.all(a <= x + 1e-7)
    m = (x > 0.1) & (x < 0.9)
    g = np.log(a[m]) / np.log(x[m])
    assert np.allclose(g, g[0], rtol=1e-3) and any(abs(g[0] - v) < 1e-3 for v in (1 / 0.6, 1 / 0.7, 1 / 0.75, 1 / 0.8, 1 / 0.9))
    s, fired = color_adjust(x, np.random.default_rng(2), p=1.0)
    coef = np.polyfit(x.ravel(), s.ravel(), 1)
    assert fired and 0.3 <= coef[0] <= 0.6 and 0.001 <= coef[1] <= 0.01
    box = cut_noise_box(np.random.default_rng(3), 130, 250, p=1.0, size=120)
    out = cut_noise(x + 1, x, box)
    changed = np.argwhere((out != x + 1).any(-1))
    assert (changed.max(0) - changed.min(0) + 1).tolist() == [120, 120]  # 120x120, not the release's 120x240
    assert cut_noise_box(np.random.default_rng(3), 130, 250, p=0.0) is None
    # the release's box: 120 rows x 240 columns, cut at the right edge (dataloader/augmentation.py: cutnoise)
    widths = set()
    for seed in range(40):
        y, x0, h, w = cut_noise_box(np.random.default_rng(seed), 130, 250, p=1.0, size=120, wide=True)
        assert h == 120 and w == min(240, 250 - x0) and 0 <= x0 <= 130
        widths.add(w)
    assert 240 in widths and min(widths) < 240


def test_degrade_pair_recipes(profile):
    """paper: ISO x exposure fixed, one WB for the pair; release: integer ISOs drawn uniformly and independently,
    WB per frame, raw clipped at the black level (a dark bias, as the release's clip at 0 after read noise)."""
    x = np.full((16, 16, 3), 0.4, np.float32)
    rel = []
    for seed in range(200):
        li, si = pair_isos(np.random.default_rng(seed), profile, "paper")
        assert 800 <= li <= 1600 and si == pytest.approx(8 * li)
        li, si = pair_isos(np.random.default_rng(seed), profile, "release")
        assert 1000 <= li <= 4000 and 6400 <= si <= 12800 and li == int(li) and si == int(si)
        rel.append(li)
    # uniform, not log-uniform: the median of U[1000, 4000] is 2500 (log-uniform: 2000)
    assert abs(np.median(rel) - 2500) < 4 * 1500 / np.sqrt(200)
    _, _, info = degrade_pair(x, x, profile, np.random.default_rng(7), recipe="release")
    assert info["wb"] != info["wb_short"]
    _, _, info = degrade_pair(x, x, profile, np.random.default_rng(7))
    assert info["wb"] == info["wb_short"]
    dark = np.zeros((64, 64, 3), np.float32)
    mp = [degrade_pair(dark, dark, profile, np.random.default_rng(s), recipe="paper")[1].mean() for s in range(3)]
    mr = [degrade_pair(dark, dark, profile, np.random.default_rng(s), recipe="release")[1].mean() for s in range(3)]
    assert np.mean(mr) > np.mean(mp) + 0.005, (mp, mr)  # the release's clip at black lifts the darks
    nl, ns, info = degrade_pair(x, x, profile, np.random.default_rng(5))
    assert nl.shape == ns.shape == x.shape and 1.9 <= info["wb"][0] <= 2.4 and 1.5 <= info["wb"][1] <= 1.9
    assert ns.std() > nl.std()  # 8x the ISO: noisier short
    again = degrade_pair(x, x, profile, np.random.default_rng(5))
    assert np.array_equal(nl, again[0]) and np.array_equal(ns, again[1])
    with pytest.raises(InputError, match="ISO range"):
        check_iso_setup(profile, "paper", None, None, 32.0)
    with pytest.raises(InputError, match="long_iso"):
        check_iso_setup(profile, "release", (400, 4000), (6400, 12800), 8)


# ----------------------------------------------------------------------------- datasets


def test_train_dataset_is_a_pure_function_of_seed_epoch_index(tuples, profile):
    recs = scan_dataset(tuples)
    ds = TrainDataset(recs, profile, SampleSettings(phase=1, crop=64, cutnoise_size=8), seed=4)
    a, b = ds.sample(1, epoch=2), ds.sample(1, epoch=2)
    assert a["long"].shape == (3, 32, 32) and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["short"], ds.sample(1, epoch=3)["short"])
    rel = TrainDataset(recs, profile, SampleSettings(phase=1, crop=64, cutnoise_size=8, recipe="release",
                                                     cutnoise_p=1.0), seed=4).sample(0, 0)
    assert rel["short"].shape == (3, 32, 32) and rel["fired"][2] == 1.0
    ds2 = TrainDataset(recs, profile, SampleSettings(phase=2, crop=64, patch=32, patches=2, cutnoise_size=8), seed=4)
    s = ds2.sample(0, 0)
    assert s["long"].shape == (3, 64, 64) and s["patch_yx"].shape == (2, 2) and s["cut_t"].shape == (2, 4)
    assert int(s["patch_yx"].max()) <= 32
    with pytest.raises(InputError, match="smaller than the crop"):
        TrainDataset(recs, profile, SampleSettings(phase=1, crop=256)).sample(0)
    with pytest.raises(InputError, match="empty"):
        TrainDataset([], profile, SampleSettings())


def test_decoded_cache_gives_the_same_samples_and_decodes_once(tuples, profile, tmp_path):
    """The decoded-image cache: identical samples to decoding the PNGs, each image decoded once per cache folder
    (also from a second dataset, as DataLoader workers are), re-decoded when the file changes."""
    import os
    import pickle

    from d2hnet.data.decoded import DecodedCache, crop_to_float
    from isp_sim.imageio import read_image_raw, to_float

    recs = scan_dataset(tuples)
    for st in (SampleSettings(phase=1, crop=64, cutnoise_size=8),
               SampleSettings(phase=2, crop=64, patch=32, patches=2, cutnoise_size=8)):
        plain = TrainDataset(recs, profile, st, seed=4)
        cache = DecodedCache(tmp_path / f"c{st.phase}")
        cached = TrainDataset(recs, profile, st, seed=4, decoded_cache=cache)
        for i in range(len(recs)):
            a, b = plain.sample(i, epoch=1), cached.sample(i, epoch=1)
            assert all(np.array_equal(a[k], b[k]) for k in a), i
        images = {r.short for r in recs} | {f for r in recs for f in r.longs.values()}
        assert cache.decoded <= len(images) and len(list(cache.dir.glob("*.npy"))) == cache.decoded
        for f in images:
            cache.get(f)
        assert cache.decoded == len(images)
        worker = pickle.loads(pickle.dumps(cached))  # what a DataLoader worker gets
        worker.sample(0, epoch=5)
        assert worker.cache.decoded == 0
    assert not list(cache.dir.glob(".*.tmp"))
    arr = read_image_raw(recs[0].short)
    assert np.array_equal(crop_to_float(arr, 3, 5, 16, 20), to_float(arr)[3:19, 5:25])
    old = cache.get(recs[0].short)
    st_ = os.stat(recs[0].short)
    os.utime(recs[0].short, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
    fresh = DecodedCache(cache.dir)
    assert np.array_equal(fresh.get(recs[0].short), old) and fresh.decoded == 1


def test_each_augmentation_fires_with_its_probability(tuples, profile):
    """Statistical: 400 samples per setting, seed fixed; tolerance 4 binomial standard deviations."""
    recs = scan_dataset(tuples)
    probs = {"ia_p": 0.2, "ca_p": 0.7, "cutnoise_p": 0.4, "cutnoise_t_p": 0.6}
    st = SampleSettings(phase=2, crop=32, patch=32, patches=1, cutnoise_size=8, noise=False, **probs)
    ds = TrainDataset(recs, profile, st, seed=11)
    n = 400
    fired = np.array([ds.sample(i % len(recs), epoch=i).get("fired").numpy() for i in range(n)])
    for j, key in enumerate(probs):
        p = probs[key]
        assert abs(fired[:, j].mean() - p) < 4 * np.sqrt(p * (1 - p) / n), (key, fired[:, j].mean())
    st1 = SampleSettings(phase=1, crop=32, cutnoise_size=8, noise=False, cutnoise_p=0.1, ia_p=0.0, ca_p=1.0)
    f1 = np.array([TrainDataset(recs, profile, st1, seed=2).sample(0, epoch=i)["fired"].numpy() for i in range(n)])
    assert f1[:, 0].sum() == 0 and f1[:, 1].all() and abs(f1[:, 2].mean() - 0.1) < 4 * np.sqrt(0.09 / n)


def test_make_val_is_deterministic_and_keeps_splits(tuples, tmp_path, profile):
    src = tmp_path / "src"
    for i, r in enumerate(scan_dataset(tuples)):
        split = "day" if i < 2 else "night"
        for s, p in (("long8", r.longs["long8"]), ("short", r.short)):
            (src / split).mkdir(parents=True, exist_ok=True)
            (src / split / f"v{i}_0001_{s}.png").write_bytes(p.read_bytes())
    m1 = make_val(src, tmp_path / "v1", "mi_note10", seed=7, crop=48)
    make_val(src, tmp_path / "v2", profile, seed=7, crop=48)
    files = sorted(p.relative_to(tmp_path / "v1") for p in (tmp_path / "v1").rglob("*.png"))
    assert len(files) == 9
    for f in files:
        assert (tmp_path / "v1" / f).read_bytes() == (tmp_path / "v2" / f).read_bytes()
    make_val(src, tmp_path / "v3", profile, seed=8, crop=48)
    assert (tmp_path / "v3" / files[1]).read_bytes() != (tmp_path / "v1" / files[1]).read_bytes()
    assert m1.name == "manifest.json"
    val = ValDataset(tmp_path / "v1")
    assert [it.split for it in val.items] == ["day", "day", "night"]
    name, split, long, short, gt = val[0]
    assert long.shape == short.shape == gt.shape == (48, 48, 3)
    with pytest.raises(InputError, match="make-val"):
        ValDataset(tmp_path / "nothing")
    # the paper's 1440p set: frames resized to 2560x1440 first (here centre-cropped afterwards to stay small)
    make_val(src, tmp_path / "v1440", profile, seed=7, crop=64, resolution="1440p")
    import json

    man = json.loads((tmp_path / "v1440" / "manifest.json").read_text())
    assert man["resolution"] == "1440p" and man["recipe"] == "paper"
    _, _, _, _, gt1440 = ValDataset(tmp_path / "v1440")[0]
    from d2hnet.data.dataset import _resize
    from isp_sim.imageio import read_rgb

    first = sorted((src / "day").glob("*_short.png"))[0]
    big = _resize(read_rgb(first)[0], (2560, 1440))
    want = big[(1440 - 64) // 2:(1440 - 64) // 2 + 64, (2560 - 64) // 2:(2560 - 64) // 2 + 64]
    assert np.abs(gt1440 - want).max() <= 0.5 / 255 + 1e-6  # the ground truth, 8-bit rounded
    with pytest.raises(InputError, match="1440p or 2880p"):
        make_val(src, tmp_path / "vbad", profile, resolution="4k")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_sample_crop_and_adjust_equal_the_augmentation_functions(dtype, tmp_path):
    """The sample path's table-gather crop with IA and CA (``TrainDataset._crop_adjust``) gives the same bits as
    crop_to_float, illumination_adjust and color_adjust in turn, from memory maps as the decoded cache gives them,
    for every combination of IA and CA firing, and leaves the random stream where they leave it."""
    from d2hnet.data.decoded import crop_to_float

    gen = np.random.default_rng(7)
    top = np.iinfo(dtype).max
    for name in ("l", "s"):
        np.save(tmp_path / f"{name}.npy", gen.integers(0, top + 1, (90, 70, 3)).astype(dtype))
    long_, short_ = (np.load(tmp_path / f"{n}.npy", mmap_mode="r") for n in ("l", "s"))
    for ia_p in (0.0, 1.0):
        for ca_p in (0.0, 1.0):
            ds = TrainDataset(scan_dataset_stub(), None, SampleSettings(crop=48, ia_p=ia_p, ca_p=ca_p))
            for seed in range(3):
                r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
                lo, sh, gt, ia, ca = ds._crop_adjust(long_, short_, 11, 17, r1)
                want_l, want_s = crop_to_float(long_, 11, 17, 48, 48), crop_to_float(short_, 11, 17, 48, 48)
                (want_s, want_l, want_g), ia2 = illumination_adjust([want_s, want_l, want_s], r2, ia_p)
                want_s, ca2 = color_adjust(want_s, r2, ca_p)
                assert (ia, ca) == (ia2, ca2) == (ia_p == 1.0, ca_p == 1.0)
                for got, want in ((lo, want_l), (sh, want_s), (gt, want_g)):
                    assert got.dtype == np.float32 and np.array_equal(got, want), (ia_p, ca_p, seed)
                assert r1.random() == r2.random()


def scan_dataset_stub():
    """One placeholder record (``_crop_adjust`` reads none)."""
    from d2hnet.data.layout import TupleRecord

    return [TupleRecord(name="x", short=Path("x_short.png"), longs={"long8": Path("x_long8.png")})]


@pytest.mark.parametrize("s", [2, 3])
def test_area_down_gives_the_bits_of_the_strided_sum(s):
    """area_down's loop adds exactly as the numpy sum of strided views it replaced (also for a strided input)."""
    from d2hnet.data.dataset import area_down

    x = np.random.default_rng(s).random((12 * s, 10 * s, 3)).astype(np.float32)
    for img in (x, x[:, ::-1]):
        acc = np.zeros((12, 10, 3), np.float32)
        for i in range(s):
            for j in range(s):
                acc += img[i::s, j::s]
        acc *= np.float32(1.0 / (s * s))
        assert np.array_equal(area_down(img, s), acc)
    assert not np.signbit(area_down(np.full((2 * s, 2 * s, 3), -0.0, np.float32), s)).any()  # +0.0, as the sum


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_area_down_is_the_box_mean(s):
    from d2hnet.data.dataset import area_down

    x = np.random.default_rng(s).random((12 * s, 8 * s, 3)).astype(np.float32)
    want = x.astype(np.float64).reshape(12, s, 8, s, 3).mean(axis=(1, 3))
    got = area_down(x, s)
    assert got.dtype == np.float32 and got.shape == (12, 8, 3)
    np.testing.assert_allclose(got, want, atol=2e-7)


_FAULTS = r"""
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from d2hnet.data.dataset import keep_freed_memory
    assert keep_freed_memory()

def churn():  # a sample's pattern in miniature: two crop-sized arrays and a smaller one, freed out of order
    a = np.ones((1024, 1024, 3), np.float32); b = np.ones((1024, 1024, 3), np.float32); del a
    c = np.ones((1024, 1024), np.float32); del b, c

for _ in range(3):
    churn()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    churn()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 10)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt; elsewhere nothing is changed")
def test_workers_keep_freed_memory_instead_of_faulting_it_in_again():
    """worker_init_fn's keep_freed_memory: freed arrays are reused, so the allocation churn of a sample stops paying a
    page fault per 4 KB (measured in fresh processes: glibc's defaults unmap and fault in again, ~1000 faults per
    round of 36 MB here)."""
    import subprocess

    run = [subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True)
           for mode in ("default", "keep")]
    default, keep = (float(r.stdout.split()[-1]) for r in run)
    assert default > 200 and keep < 20, (default, keep)
