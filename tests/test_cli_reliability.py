"""Every entry point survives bad input: one-line errors and exit statuses, arguments checked before any work,
outputs that never overwrite inputs, batches that skip and name bad items, implausible profiles refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import isp_sim
from calibration.cli import main as calibrate_main
from isp_sim.cli import main as isp_main
from isp_sim.cli_support import run_cli
from isp_sim.errors import InputError, ProfileError
from isp_sim.imageio import write_image

ROOT = Path(__file__).resolve().parents[1]


def _d2h():
    pytest.importorskip("torch")
    from d2hnet.cli import main

    return main


def _run(entry, argv):
    """Call a CLI's main in-process; argparse's own usage errors (SystemExit) become their status."""
    try:
        return entry(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def img(tmp_path):
    return write_image(tmp_path / "in.png", np.random.default_rng(0).random((16, 24, 3)), 8)


# ----------------------------------------------------------------------------- arguments checked before work

BAD_ARGS = [
    ("isp-sim degrade --seed -1", "isp", ["degrade", "{img}", "-o", "{tmp}/o", "--seed", "-1"], ">= 0"),
    ("isp-sim demo --seed -1", "isp", ["demo", "-o", "{tmp}/o", "--seed", "-1"], ">= 0"),
    ("isp-sim degrade --iso reversed", "isp", ["degrade", "{img}", "-o", "{tmp}/o", "--iso", "800:400"], "reversed"),
    ("isp-sim degrade --iso text", "isp", ["degrade", "{img}", "-o", "{tmp}/o", "--iso", "high"], "ISO number"),
    ("calibrate --seed -1", "cal", ["--simulate", "mi_note10", "--out-dir", "{tmp}/s", "--seed", "-1"], ">= 0"),
    ("calibrate --jobs 0", "cal", ["--raw-dir", "{tmp}", "--jobs", "0"], ">= 1"),
    ("calibrate --min-dsnu-frames -1", "cal", ["--raw-dir", "{tmp}", "--min-dsnu-frames", "-1"], ">= 1"),
    ("calibrate --iso-from-name invalid", "cal", ["--raw-dir", "{tmp}", "--iso-from-name", "iso(\\d+"],
     "not a valid regular expression"),
    ("calibrate --iso-from-name no group", "cal", ["--raw-dir", "{tmp}", "--iso-from-name", "iso\\d+"], "no group"),
    ("calibrate --name", "cal", ["--raw-dir", "{tmp}", "--name", "My Phone"], "not a profile name"),
    ("d2hnet synth --seed -1", "d2h", ["synth", "--samples", "-o", "{tmp}/t", "--seed", "-1"], ">= 0"),
    ("d2hnet make-val --seed -1", "d2h", ["make-val", "-p", "mi_note10", "--src", "{tmp}", "-o", "{tmp}/v",
                                          "--seed", "-1"], ">= 0"),
    ("d2hnet study --seed -1", "d2h", ["study", "--profile", "mi_note10", "--truth", "mi_note10", "--out", "{tmp}/st",
                                       "--seed", "-1"], ">= 0"),
    ("d2hnet study --jobs 0", "d2h", ["study", "--profile", "mi_note10", "--truth", "mi_note10", "--out", "{tmp}/st",
                                      "--jobs", "0"], ">= 1"),
    # a folder where a file is expected is called a folder (one wording, file_problem, for every loader)
    ("isp-sim degrade --profile folder", "isp", ["degrade", "{img}", "-o", "{tmp}/o", "--profile", "{tmp}"],
     "is a folder; give a profile file"),
    ("calibrate --emva1288 folder", "cal", ["--emva1288", "{tmp}"], "is a folder; give a descriptor file"),
    ("calibrate --raw-dir file", "cal", ["--raw-dir", "{img}"], "is a file; give a session folder"),
    ("d2hnet restore --long folder", "d2h", ["restore", "--long", "{tmp}", "--short", "{img}", "-c", "{img}",
                                             "-o", "{tmp}/r.png"], "is a folder; give an image file"),
    ("d2hnet restore -c folder", "d2h", ["restore", "--long", "{img}", "--short", "{img}", "-c", "{tmp}",
                                         "-o", "{tmp}/r.png"], "is a folder; give a checkpoint file"),
    ("d2hnet info folder", "d2h", ["info", "{tmp}"], "is a folder; give a checkpoint file"),
    ("d2hnet train --config folder", "d2h", ["train", "--config", "{tmp}"], "is a folder; give a config file"),
    ("d2hnet study --truth folder", "d2h", ["study", "--profile", "mi_note10", "--truth", "{tmp}", "--out",
                                            "{tmp}/st"], "is a folder; give a profile file"),
]


@pytest.mark.parametrize("label,cli,argv,msg", BAD_ARGS, ids=[b[0] for b in BAD_ARGS])
def test_bad_arguments_exit_2_with_one_line_and_no_work(label, cli, argv, msg, tmp_path, img, capsys):
    entry = {"isp": isp_main, "cal": calibrate_main, "d2h": None}[cli] or _d2h()
    argv = [a.format(img=img, tmp=tmp_path) for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _run(entry, argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


# ----------------------------------------------------------------------------- outputs


def test_isp_sim_degrade_refuses_colliding_outputs(tmp_path, capsys):
    a = write_image(tmp_path / "a" / "x.png", np.zeros((8, 8, 3)), 8)
    b = write_image(tmp_path / "b" / "x.png", np.ones((8, 8, 3)) * 0.5, 8)
    assert isp_main(["degrade", str(a), str(b), "-o", str(tmp_path / "out"), "--iso", "3200"]) == 2
    err = capsys.readouterr().err
    assert "would both be written" in err and str(a) in err and str(b) in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("x")
    assert isp_main(["degrade", str(a), "-o", str(tmp_path / "file"), "--iso", "3200"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert isp_main(["degrade", str(tmp_path / "a"), "-o", str(tmp_path / "o2"), "--iso", "3200"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_isp_sim_degrade_never_overwrites_its_input(tmp_path, capsys):
    src = write_image(tmp_path / "x_noisy.png", np.full((8, 8, 3), 0.4), 8)
    before = src.read_bytes()
    # the output of x_noisy.png would be x_noisy_noisy.png; an input named like another input's output is refused
    other = write_image(tmp_path / "x.png", np.full((8, 8, 3), 0.4), 8)
    assert isp_main(["degrade", str(other), str(src), "-o", str(tmp_path), "--iso", "3200"]) == 2
    assert "is an input file" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_calibrate_output_checks_before_reading(tmp_path, capsys):
    (tmp_path / "outdir").mkdir()
    assert calibrate_main(["--raw-dir", str(tmp_path), "-o", str(tmp_path / "outdir"), "--quiet"]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "rep").write_text("x")
    assert calibrate_main(["--raw-dir", str(tmp_path), "--report", str(tmp_path / "rep"), "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert calibrate_main(["--raw-dir", str(tmp_path / "nope"), "--quiet"]) == 2
    assert "no such session folder" in capsys.readouterr().err


def test_d2hnet_restore_refuses_to_overwrite_an_input(tmp_path, capsys):
    main = _d2h()
    lp = write_image(tmp_path / "L.png", np.full((16, 16, 3), 0.3), 8)
    sp = write_image(tmp_path / "S.png", np.full((16, 16, 3), 0.3), 8)
    before = lp.read_bytes()
    rc = main(["restore", "--long", str(lp), "--short", str(sp), "-c", str(tmp_path / "none.pt"), "-o", str(lp)])
    assert rc == 2 and "is also an input" in capsys.readouterr().err
    assert lp.read_bytes() == before
    (tmp_path / "pairs").mkdir()
    write_image(tmp_path / "pairs" / "a_long.png", np.zeros((16, 16, 3)), 8)
    write_image(tmp_path / "pairs" / "a_short.png", np.zeros((16, 16, 3)), 8)
    rc = main(["restore", "--input-dir", str(tmp_path / "pairs"), "-c", str(tmp_path / "none.pt"), "-o",
               str(tmp_path / "pairs"), "--out-suffix", "_long"])
    assert rc == 2 and "is an input file" in capsys.readouterr().err


def test_checkpoints_are_written_like_other_outputs(tmp_path):
    pytest.importorskip("torch")
    from d2hnet.checkpoint import save_checkpoint
    from d2hnet.models import D2HNet

    p = save_checkpoint(tmp_path / "m.pt", D2HNet({"deblurnet": {"ngf": 4, "n_res": 1, "n_res2": 1},
                                                   "enhancenet": {"ngf": 8, "n_res": 1, "n_res2": 1}}))
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not list(tmp_path.glob("*.tmp"))


# ----------------------------------------------------------------------------- batches


def test_isp_sim_degrade_batch_skips_and_names_bad_files(tmp_path, img, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    rc = isp_main(["degrade", str(img), str(bad), str(empty), "-o", str(tmp_path / "o"), "--iso", "3200"])
    err = capsys.readouterr().err
    assert rc == 1 and "1 done, 2 skipped" in err and "bad.png" in err and "empty.png" in err
    assert "Traceback" not in err
    assert (tmp_path / "o" / "in_noisy.png").exists()


def test_calibrate_folder_of_broken_files_finishes_and_names_them(tmp_path, capfd):
    """capfd, not capsys: LibRaw and tifffile write at the C / logging level; every line must name its file."""
    from calibration.simulate import simulate_capture

    sess = tmp_path / "sess"
    simulate_capture("mi_note10", sess, isos=[1000, 4000], n_dark=3, n_flat_pairs=2, size=(32, 48), seed=0)
    dark = sess / "dark"
    (dark / "text.dng").write_text("hello")
    (dark / "zero.dng").write_bytes(b"")
    good = next(iter(sorted(dark.rglob("*.dng"))))
    (dark / "truncated.dng").write_bytes(good.read_bytes()[:300])
    (dark / "photo.dng").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 200)  # a JPEG renamed
    (dark / "folder.dng").mkdir()
    (dark / "cut_data.dng").write_bytes(good.read_bytes()[:-100])  # header intact, pixel data short
    flipped = bytearray(good.read_bytes())
    for i in range(200, len(flipped), 7):
        flipped[i] ^= 0xFF
    (dark / "flipped.dng").write_bytes(bytes(flipped))
    rc = calibrate_main(["--raw-dir", str(sess), "--quiet", "--no-report"])
    err = capfd.readouterr().err
    assert rc == 1, err
    names = ("text.dng", "zero.dng", "truncated.dng", "photo.dng", "cut_data.dng", "flipped.dng")  # folder.dng: scanned as a folder
    for name in names:
        assert name in err, name
    assert "skipped" in err and "Traceback" not in err
    for line in err.splitlines():
        if line.strip() and not line.startswith(("warning:", "calibrate:", "  ")) and "warning(s)" not in line:
            assert any(n in line for n in names) or "skipped" in line, f"unattributed stderr line: {line!r}"
    assert (sess / "profile.json").exists()


def test_d2hnet_restore_folder_skips_a_broken_pair(tmp_path, capsys):
    main = _d2h()
    from d2hnet.checkpoint import save_checkpoint
    from d2hnet.models import D2HNet

    ck = save_checkpoint(tmp_path / "m.pt", D2HNet({"deblurnet": {"ngf": 4, "n_res": 1, "n_res2": 1},
                                                    "enhancenet": {"ngf": 8, "n_res": 1, "n_res2": 1}}))
    d = tmp_path / "pairs"
    write_image(d / "good_long.png", np.full((32, 32, 3), 0.3), 8)
    write_image(d / "good_short.png", np.full((32, 32, 3), 0.3), 8)
    (d / "bad_long.png").write_text("text")
    write_image(d / "bad_short.png", np.full((32, 32, 3), 0.3), 8)
    rc = main(["restore", "--input-dir", str(d), "-c", str(ck), "-o", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "1 done, 1 skipped: bad" in err and "Traceback" not in err
    assert (tmp_path / "out" / "good_restored.png").exists()


# ----------------------------------------------------------------------------- the handler


def test_unexpected_errors_show_traceback_and_ask_for_a_report(capsys):
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--debug", action="store_true")

    def boom(_):
        raise RuntimeError("kaboom")

    assert run_cli("tool", ap, [], boom) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "kaboom" in err and "please report" in err

    def project_error(_):
        raise InputError("bad thing")

    assert run_cli("tool", ap, [], project_error) == 2
    err = capsys.readouterr().err
    assert err.strip() == "tool: error: bad thing"
    assert run_cli("tool", ap, ["--debug"], project_error) == 2
    assert "Traceback" in capsys.readouterr().err


def test_output_into_a_closed_pipe_ends_quietly():
    code = ("import argparse, sys\nfrom isp_sim.cli_support import run_cli\n"
            "def f(_):\n    for i in range(100000):\n        print('line', i)\n"
            "sys.exit(run_cli('t', argparse.ArgumentParser(), [], f))\n")
    p = subprocess.run(f"{sys.executable} -c \"{code}\" | head -n 2", shell=True, capture_output=True, text=True,
                       cwd=ROOT)
    assert p.stdout.splitlines() == ["line 0", "line 1"]
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr


def test_cli_messages_name_flags_not_api_arguments(tmp_path, img, capsys):
    assert isp_main(["degrade", str(img), "-o", str(tmp_path / "o"), "--iso", "50"]) == 1
    err = capsys.readouterr().err
    assert "--extrapolate" in err and "extrapolate=True" not in err


# ----------------------------------------------------------------------------- profiles and API


def _profile_dict():
    return json.loads((ROOT / "isp_sim" / "profiles" / "mi_note10.json").read_text())


@pytest.mark.parametrize("field,value,msg", [
    ("K", 1e300, "points[0].K"), ("K", -1.0, "points[0].K"), ("read_std", 5000.0, "points[0].read_std"),
    ("bias", [1e6, 0, 0, 0], "points[0].bias"), ("read_lambda", [-0.7] * 4, "read_lambda"),
])
def test_profiles_with_implausible_values_are_refused(tmp_path, field, value, msg):
    d = _profile_dict()
    d["points"][0][field] = value if isinstance(value, list) else [value] * 4
    with pytest.raises(ProfileError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        isp_sim.NoiseProfile.from_dict(d)
    f = tmp_path / "p.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ProfileError, match=str(f)):
        isp_sim.load_profile(f)


def test_profile_nan_infinity_and_nesting(tmp_path):
    text = (ROOT / "isp_sim" / "profiles" / "mi_note10.json").read_text()
    for const in ("NaN", "Infinity", "-Infinity"):
        d = _profile_dict()
        s = json.dumps(d).replace(json.dumps(d["points"][0]["K"][0]), const, 1)
        f = tmp_path / f"{const}.json"
        f.write_text(s)
        with pytest.raises(ProfileError, match=f"{const}.*not allowed"):
            isp_sim.load_profile(f)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ProfileError, match="nested too deeply|must be a JSON object"):
        isp_sim.load_profile(deep)
    assert text  # the bundled file itself still loads


def test_every_bundled_and_example_profile_is_within_bounds():
    for name in isp_sim.bundled_profiles():
        isp_sim.load_profile(name)
    isp_sim.load_profile(ROOT / "examples" / "profiles" / "sim_phone_b.json")
    # the bounds scale with the signal range: a 14-bit sensor may have a read noise a 10-bit one cannot
    d = _profile_dict()
    d["points"][0]["read_std"] = [400.0] * 4
    with pytest.raises(ProfileError):
        isp_sim.NoiseProfile.from_dict(d)
    d["sensor"].update(bit_depth=14, white_level=16383)
    isp_sim.NoiseProfile.from_dict(d)


def test_api_errors_are_the_packages_own():
    from isp_sim.noise import add_noise

    with pytest.raises(InputError, match="empty batch"):
        isp_sim.degrade(np.zeros((0, 8, 8, 3), np.float32), "mi_note10", iso=1000)
    p = isp_sim.load_profile("mi_note10").at_iso(1000)
    with pytest.raises(InputError, match=r"key must be an integer in \[0, 2\*\*64\)"):
        add_noise(np.full((4, 4), 100.0), p, key=-1)


# ----------------------------------------------------------------------------- suspicious calibration data


@pytest.fixture
def small_session(tmp_path):
    from calibration.simulate import simulate_capture

    sess = tmp_path / "sess"
    s = simulate_capture("mi_note10", sess, isos=[1000, 4000], n_dark=4, n_flat_pairs=2, size=(32, 48), seed=0)
    return sess, s


def test_duplicated_dark_frames_are_counted_once(small_session):
    import shutil

    from calibration.pipeline import calibrate

    sess, s = small_session
    darks = sorted(s.dark_files[1000.0])
    for d in darks[1:]:
        shutil.copyfile(darks[0], d)  # one dark copied over the others
    from calibration.errors import CalibrationWarning

    with pytest.warns(CalibrationWarning) as rec:
        res = calibrate(sess, progress=False)
    assert any("identical pixel data" in str(w.message) for w in rec)
    skipped = {Path(p).name: r for p, r in res.session.skipped}
    for d in darks[1:]:
        assert "identical pixel data" in skipped[Path(d).name]
    assert Path(darks[0]).name not in skipped
    # the duplicates do not fake a noiseless sensor: read noise stays near the truth
    true = s.truth[1000.0].read_std.mean()
    p = next(q for q in res.profile.points if q["iso"] == 1000.0)
    assert np.mean(p["read_std"]) > 0.5 * true


def test_constant_frames_and_darks_below_black_are_flagged(small_session):
    from calibration.pipeline import calibrate
    from isp_sim.dng import write_dng

    sess, s = small_session
    write_dng(sess / "dark" / "stripped.dng", np.zeros((32, 48), np.uint16), "RGGB", [64] * 4, 1023, iso=1000,
              exposure_time=0.01)
    low = np.random.default_rng(0).normal(40, 1.5, (32, 48)).clip(0).astype(np.uint16)  # 24 DN below black 64
    write_dng(sess / "dark" / "lowdark.dng", low, "RGGB", [64] * 4, 1023, iso=4000, exposure_time=0.01)
    from calibration.errors import CalibrationWarning

    with pytest.warns(CalibrationWarning) as rec:
        res = calibrate(sess, progress=False)
    assert any("every pixel equals 0" in str(w.message) for w in rec)
    skipped = {Path(p).name: r for p, r in res.session.skipped}
    assert "every pixel equals 0" in skipped["stripped.dng"]
    assert any("lowdark.dng" in w and "below the black level" in w for w in res.warnings)


def test_a_k_vs_iso_that_is_no_line_is_flagged(tmp_path):
    """A session whose K jumps +-10% between ISOs (no clean break) is not reported as "Warnings: none"."""
    from calibration.errors import CalibrationWarning
    from calibration.pipeline import calibrate
    from calibration.simulate import loglinear_profile, simulate_capture

    d = loglinear_profile("zigzag", isos=(100, 200, 400, 800, 1600, 3200), k_per_iso=2e-3).to_dict()
    for p, f in zip(d["points"], (1.0, 1.12, 0.9, 1.1, 0.9, 1.0)):
        p["K"] = [v * f for v in p["K"]]
    prof = isp_sim.NoiseProfile.from_dict(d)
    simulate_capture(prof, tmp_path / "s", n_dark=4, n_flat_pairs=3, size=(64, 64), seed=1)
    with pytest.warns(CalibrationWarning) as rec:
        res = calibrate(tmp_path / "s", progress=False)
    assert any("K vs ISO is neither a straight line" in str(w.message) for w in rec)
    assert any("neither a straight line" in w for w in res.warnings)


def test_linearised_dngs_are_calibrated_with_a_warning(small_session):
    """A DNG with a (synthetic) LinearizationTable is read as linear DN and the quantisation caveat is stated."""
    from calibration import read_raw
    from calibration.errors import CalibrationWarning
    from calibration.pipeline import calibrate
    from isp_sim.dng import write_dng

    sess, s = small_session
    f = sorted(s.dark_files[4000.0])[0]
    fr = read_raw(f)
    table = np.arange(1024)
    table[900:] = 900 + 2 * ((np.arange(900, 1024) - 900) // 2)  # monotonic, steps of 0 and 2 DN above 900
    table[-1] = 1023
    write_dng(f, fr.data, fr.pattern, fr.black_level.tolist(), fr.white_level, iso=4000, exposure_time=0.01,
              extra_tags={50712: (3, table.tolist())})
    with pytest.warns(CalibrationWarning) as rec:
        res = calibrate(sess, progress=False)
    msg = [str(w.message) for w in rec if "LinearizationTable" in str(w.message)]
    assert msg and Path(f).name in msg[0] and "not the uniform 1/12" in msg[0]
    assert 4000.0 in res.isos


def test_unsafe_load_hint_is_never_relayed(tmp_path):
    torch = pytest.importorskip("torch")
    from d2hnet.checkpoint import load_checkpoint
    from d2hnet.errors import CheckpointError

    import fractions

    p = tmp_path / "pickled.pt"
    torch.save({"model": fractions.Fraction(1, 3)}, p)  # a Python object weights_only refuses
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(p)
    msg = str(exc.value)
    assert "pickled.pt" in msg and "Python objects besides tensors" in msg
    assert "weights_only=False" not in msg and "two options" not in msg


def test_d2hnet_synth_skips_a_bad_photo(tmp_path, capsys):
    main = _d2h()
    good = write_image(tmp_path / "in" / "good.png", np.random.default_rng(0).random((96, 96, 3)), 8)
    (tmp_path / "in" / "broken.png").write_text("not an image")
    rc = main(["synth", "--stills", str(tmp_path / "in"), "-o", str(tmp_path / "t"), "--max-shake", "4"])
    err = capsys.readouterr().err
    assert rc == 1 and "1 done, 1 skipped: broken.png" in err and "Traceback" not in err
    assert any(p.name.startswith(good.stem) for p in (tmp_path / "t").iterdir())
