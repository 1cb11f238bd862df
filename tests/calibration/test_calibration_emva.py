"""EMVA 1288: truth recovery on simulated monochrome data, descriptor parsing errors, CLI."""

import math

import pytest

from calibration import CalibrationError, emva1288
from calibration.cli import main
from calibration.emva import parse_descriptor, simulate_emva


@pytest.fixture(scope="module")
def measurement(tmp_path_factory):
    return simulate_emva(tmp_path_factory.mktemp("emva"), K=0.1, QE=0.5, sigma_d=10.0, shape=(64, 64), seed=1,
                         dsnu=2.0, prnu=0.01)


def test_truth_recovery(measurement):
    r = emva1288(measurement)
    assert r.K == pytest.approx(0.1, rel=0.02)
    assert r.sigma_d == pytest.approx(10.0, rel=0.03)
    assert r.sigma_y_dark == pytest.approx(math.sqrt(1.0 + 1 / 12), rel=0.03)
    assert r.QE == pytest.approx(0.5, rel=0.03)
    assert r.R == pytest.approx(0.05, rel=0.02)
    assert r.DSNU1288 == pytest.approx(20.0, rel=0.05)  # 2 DN / K
    assert r.PRNU1288 == pytest.approx(1.0, rel=0.1)
    assert r.u_e_sat == pytest.approx((4095 - 50) / 0.1, rel=0.05)
    assert r.SNR_max == pytest.approx(math.sqrt(r.u_e_sat))
    assert r.DR == pytest.approx(r.u_p_sat / r.u_p_min)
    assert abs(r.LE_min) < 0.5 and abs(r.LE_max) < 0.5


def test_quantisation_floor(tmp_path):
    r = emva1288(simulate_emva(tmp_path, K=0.05, QE=0.5, sigma_d=2.0, shape=(32, 32), steps=12, seed=2, dsnu=0.0))
    assert r.sigma_y_dark == pytest.approx(math.sqrt(0.24))
    assert any("0.24" in n for n in r.notes)


def test_descriptor_errors(tmp_path):
    d = tmp_path / "d.txt"
    d.write_text("v 3.0\nn 12 8 8\nb 100 5\ni a.tif\n")
    with pytest.raises(CalibrationError, match="at least two"):
        parse_descriptor(d)
    d.write_text("v 3.0\nx nonsense\n")
    with pytest.raises(CalibrationError, match="cannot parse"):
        parse_descriptor(d)
    with pytest.raises(CalibrationError, match="no such descriptor file"):
        emva1288(tmp_path / "missing.txt")


def test_cli(measurement, tmp_path, capsys):
    assert main(["--emva1288", str(measurement), "--report", str(tmp_path / "rep")]) == 0
    assert "K " in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--emva1288", str(measurement), "--report", str(tmp_path / "rep2"), "--emva-saturation", "top"])
    assert exc.value.code == 2
    assert "--emva-saturation" in capsys.readouterr().err
    assert (tmp_path / "rep" / "emva1288.png").exists() and (tmp_path / "rep" / "summary.md").exists()


def _blocks(desc):
    """The descriptor as (header lines, [step block lines]) so a test can reorder or relabel steps."""
    head, blocks = [], []
    for line in desc.read_text().splitlines():
        if line[:1] in "bd":
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
        else:
            head.append(line)
    return head, blocks


def _write(path, head, blocks):
    path.write_text("\n".join(head + [ln for b in blocks for ln in b]) + "\n")
    return path


def test_irregular_real_style_series(measurement, tmp_path):
    """Synthetic stand-in for the public EMVA1288/datasets structures: steps recorded out of order, darks listed
    apart from their brights (paired by exposure time), a stack taken at its own illumination, a mislabelled step.
    The real sets' agreement with the reference implementation is in BENCHMARKS.md (tools/validate_emva1288.py)."""
    base = emva1288(measurement)
    head, blocks = _blocks(measurement)
    shuffled = [blocks[i] for i in range(len(blocks) - 1, -1, -1)]  # brights before their darks, reversed
    # the bright stack labelled with 1/9 of its photons: as a temporal point it would be a wild outlier
    for b in shuffled:
        if len(b) > 3 and b[0].startswith("b"):
            t, e, ph = b[0].split()
            b[0] = f"b {e} {float(ph) / 9:.6f}"
    for name in ("descriptor.txt",):
        alt = _write(measurement.parent / f"shuffled_{name}", head, shuffled)
    r = emva1288(alt)
    for q in ("K", "R", "QE", "sigma_d", "u_p_sat", "DSNU1288", "LE_min", "LE_max"):
        assert getattr(r, q) == pytest.approx(getattr(base, q), rel=1e-12), q
    assert any("out of order" in n for n in r.notes), r.notes
    assert not any("outlier" in n for n in r.notes)
    # one mid-series pair labelled with half its photons: reported by photon count, the fit still uses it
    bright = [b for b in blocks if b[0].startswith("b") and len(b) == 3]
    t, e, ph = bright[10][0].split()
    bright[10][0] = f"b {e} {float(ph) / 2:.6f}"
    r2 = emva1288(_write(measurement.parent / "mislabelled.txt", head, blocks))
    out = [n for n in r2.notes if "outlier" in n]
    assert len(out) == 1 and f"{float(ph) / 2:g}" in out[0], r2.notes


def test_saturation_modes(tmp_path):
    """'reference' (the emva1288 package's backward search) stops at the first maximum seen from the top."""
    from calibration.emva import _reference_saturation

    import numpy as np

    s2 = np.array([1, 2, 3, 4, 5.0, 4.7, 4.6, 4.95, 4.8, 1, 0.5])
    assert int(np.argmax(s2)) == 4
    assert _reference_saturation(s2) == 7
    with pytest.raises(CalibrationError, match="saturation="):
        emva1288(simulate_emva(tmp_path, shape=(16, 16), steps=8), saturation="top")
    with pytest.raises(CalibrationError, match="saturation="):  # said before any descriptor or image is read
        emva1288(tmp_path / "no_such_descriptor.txt", saturation="top")
