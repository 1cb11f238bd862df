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
    with pytest.raises(CalibrationError, match="not found"):
        emva1288(tmp_path / "missing.txt")


def test_cli(measurement, tmp_path, capsys):
    assert main(["--emva1288", str(measurement), "--report", str(tmp_path / "rep")]) == 0
    assert "K " in capsys.readouterr().out
    assert (tmp_path / "rep" / "emva1288.png").exists() and (tmp_path / "rep" / "summary.md").exists()
