"""d2hnet training: metrics, config validation, both phases, exact resume, gloo DDP, CLI subcommands."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from d2hnet.cli import main  # noqa: E402
from d2hnet.config import ConfigError, load_config, validate_config  # noqa: E402
from d2hnet.data.dataset import TrainDataset  # noqa: E402
from d2hnet.errors import CheckpointError  # noqa: E402
from d2hnet.metrics import psnr, ssim  # noqa: E402
from d2hnet.train import EpochSampler, Trainer, train  # noqa: E402
from isp_sim.errors import IspSimError, ProfileError  # noqa: E402

from .test_d2hnet_data import make_tuples  # noqa: E402

TINY_MODEL = {"deblurnet": {"ngf": 4, "n_res": 1, "n_res2": 1},
              "enhancenet": {"ngf": 4, "n_res": 1, "n_res2": 1, "deformable_groups": 2, "offset_channels": 8}}


@pytest.fixture(scope="module")
def tuples(tmp_path_factory):
    return make_tuples(tmp_path_factory.mktemp("d2h_train"))


def tiny_config(out_dir: Path, train_dir: Path, **sections) -> dict:
    cfg = {
        "run": {"out_dir": str(out_dir), "num_workers": 0, "progress": False, "log_every": 1, "ckpt_every": 0,
                "seed": 3},
        "data": {"train_dir": str(train_dir)},
        "varmap": {"window": 8, "squares_per_image": 20, "extra": 1},
        "augment": {"cutnoise_size": 8},
        "model": copy.deepcopy(TINY_MODEL),
        "phase1": {"crop": 64, "epochs": 3, "lr": 2e-3},
        "phase2": {"crop": 64, "patch": 32, "patches": 1, "epochs": 2, "lr": 2e-3},
    }
    for sec, kv in sections.items():
        cfg.setdefault(sec, {}).update(kv)
    return cfg


# ----------------------------------------------------------------------------- metrics


def _ssim_reference(x, y, *, gaussian, data_range, sample_cov):
    """SSIM from its definition with SciPy filters (an independent restatement of each protocol's pinned values):
    reflect-padded local statistics, the border of half a window cropped, mean over pixels and channels."""
    from scipy import ndimage

    vals = []
    for c in range(3):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        if gaussian:
            f = lambda t: ndimage.gaussian_filter(t, 1.5, truncate=3.5, mode="reflect")  # noqa: E731
            win, norm = 11, 1.0
        else:
            f = lambda t: ndimage.uniform_filter(t, 7, mode="reflect")  # noqa: E731
            win, norm = 7, 49 / 48 if sample_cov else 1.0
        mx, my = f(a), f(b)
        vx, vy, cxy = norm * (f(a * a) - mx * mx), norm * (f(b * b) - my * my), norm * (f(a * b) - mx * my)
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        pad = (win - 1) // 2
        vals.append(m[pad:-pad, pad:-pad].mean())
    return float(np.mean(vals))


def test_metric_protocols_equal_their_definitions():
    rng = np.random.default_rng(0)
    gt = rng.random((40, 48, 3))
    out = gt + rng.normal(0, 0.08, gt.shape)  # overshoots [0, 1]: the protocols differ in clamping
    std = ssim(out, gt)
    assert std == pytest.approx(_ssim_reference(np.clip(out, 0, 1), gt, gaussian=True, data_range=1.0,
                                                sample_cov=False), rel=1e-9)
    pap = ssim(out, gt, protocol="paper")
    assert pap == pytest.approx(_ssim_reference(out, gt, gaussian=False, data_range=2.0, sample_cov=True), rel=1e-9)
    assert pap != pytest.approx(std, rel=1e-3)
    mse_unclamped, mse_clamped = np.mean((out - gt) ** 2), np.mean((np.clip(out, 0, 1) - gt) ** 2)
    assert psnr(out, gt, protocol="paper") == pytest.approx(20 * math.log10(1 / math.sqrt(mse_unclamped)), rel=1e-12)
    assert psnr(out, gt) == pytest.approx(10 * math.log10(1 / mse_clamped), rel=1e-12)
    t = torch.from_numpy(out).permute(2, 0, 1)
    assert ssim(t, torch.from_numpy(gt).permute(2, 0, 1), protocol="paper") == pytest.approx(pap, rel=1e-12)
    x = np.full((20, 20, 3), 0.5, np.float32)
    assert psnr(x + 0.1, x) == pytest.approx(20.0, abs=1e-5)  # MSE 0.01 -> 20 dB
    assert math.isinf(psnr(x, x)) and ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(x, x[:10])
    with pytest.raises(ValueError, match="protocol"):
        ssim(x, x, protocol="matlab")


# ----------------------------------------------------------------------------- config


def test_config_toml_defaults_and_paths(tuples, tmp_path):
    f = tmp_path / "cfg" / "run.toml"
    f.parent.mkdir()
    rel = os.path.relpath(tuples, f.parent)
    f.write_text(f'[run]\nout_dir = "out"\n[data]\ntrain_dir = "{rel}"\n[phase1]\ncrop = 512\n')
    cfg = load_config(f)
    assert cfg["run"]["out_dir"] == str((f.parent / "out").resolve())
    assert cfg["phase1"]["crop"] == 512 and cfg["phase1"]["betas"] == [0.5, 0.999] and cfg["phase2"]["lr"] == 5e-5
    assert cfg["model"]["deblurnet"]["ngf"] == 32 and cfg["noise"]["recipe"] == "paper"


@pytest.mark.parametrize("patch, match", [
    ({"phase1": {"crop_size": 64}}, r"\[phase1\]: unknown key\(s\) \['crop_size'\]; allowed: .*'crop'"),
    ({"optimiser": {}}, r"unknown section\(s\) \['optimiser'\]"),
    ({"model": {"deblurnet": {"width": 3}}}, r"\[model\].*unknown key"),
    ({"phase1": {"crop": 60}}, r"phase1.crop: must be a multiple of 4 x scale = 8, got 60"),
    ({"augment": {"ca_p": 1.5}}, r"augment.ca_p: must be <= 1.0"),
    ({"noise": {"recipe": "both"}}, r"noise.recipe: must be one of \[.paper., .release.\]"),
    ({"noise": {"iso_mode": "release"}}, r"noise.iso_mode was replaced by noise.recipe .* write recipe = \"release\""),
    ({"data": {"train_dir": "/nonexistent/d2h"}}, r"data.train_dir: '/nonexistent/d2h': no such folder"),
    ({"run": {"seed": 1.5}}, r"run.seed: must be an integer"),
])
def test_bad_config_is_rejected_naming_the_key(tuples, tmp_path, patch, match):
    cfg = tiny_config(tmp_path / "run", tuples)
    for sec, kv in patch.items():
        cfg.setdefault(sec, {}).update(kv)
    with pytest.raises(ConfigError, match=match):
        validate_config(cfg)


def test_errors_before_training_starts(tuples, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IspSimError, match="holds no tuples"):
        train(tiny_config(tmp_path / "r1", tmp_path / "empty"))
    bad = tmp_path / "bad_profile.json"
    bad.write_text(json.dumps({"format": "isp_sim.noise_profile", "version": 1, "name": "x"}))
    with pytest.raises(ProfileError):
        train(tiny_config(tmp_path / "r2", tuples), profile=str(bad))
    with pytest.raises(ConfigError, match="smaller than the phase-1 crop 128"):
        train(tiny_config(tmp_path / "r3", tuples, phase1={"crop": 128}))
    with pytest.raises(ConfigError, match="phase 2 needs trained DeblurNet weights"):
        train(tiny_config(tmp_path / "r4", tuples), phases=(2,))
    with pytest.raises(IspSimError, match="iso_ratio"):
        train(tiny_config(tmp_path / "r5", tuples, noise={"iso_ratio": 20.0}))
    with pytest.raises(ConfigError, match="--resume-from .*: is a folder; give a state file"):
        train(tiny_config(tmp_path / "r6", tuples), phases=(1,), resume_from=tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="junk.pt: cannot be loaded as a PyTorch weights file"):
        train(tiny_config(tmp_path / "r7", tuples), phases=(1,), resume_from=junk)
    for r in ("r1", "r2", "r3", "r4", "r5"):  # nothing was written: every check ran before training
        assert not (tmp_path / r / "phase1").exists()
    rc = main(["train", "--config", str(tmp_path / "missing.toml")])
    assert rc == 2


# ----------------------------------------------------------------------------- training


def _fixed_batch(tr: Trainer, n: int = 3):
    ds = TrainDataset(tr.records, tr.profile, tr.settings, seed=99)
    items = [ds.sample(i % len(tr.records), epoch=0) for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _loss_of(tr: Trainer, model, batch) -> float:
    net = model.deblurnet if tr.phase == 1 else model.enhancenet
    with torch.no_grad():
        return float(tr._loss(model, net, batch))


def test_both_phases_lower_the_loss_and_write_checkpoints(tuples, tmp_path):
    from d2hnet.checkpoint import load_checkpoint

    cfg = validate_config(tiny_config(tmp_path / "run", tuples))
    for phase in (1, 2):
        tr = Trainer(cfg, phase)
        init_model = tr._build()[0]
        batch = _fixed_batch(tr)
        before = _loss_of(tr, init_model, batch)
        losses = tr.run()
        after = _loss_of(tr, tr.model, batch)
        assert len(losses) == cfg[f"phase{phase}"]["epochs"] * 2  # 3 tuples + 1 varmap patch, batch 2
        assert after < 0.9 * before, (phase, before, after)
    out = tmp_path / "run"
    model = load_checkpoint(out / "model.pt")
    assert model.config() == TINY_MODEL
    assert (out / "config.json").exists() and (out / "varmap_phase1.json").exists()
    rows = (out / "phase2" / "train.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,loss") and len(rows) == 1 + 4
    # a finished phase 1 in this folder cannot be overwritten by accident
    with pytest.raises(ConfigError, match="pass --resume"):
        Trainer(cfg, 1)


def test_resume_gives_exactly_the_same_next_losses(tuples, tmp_path):
    full = train(tiny_config(tmp_path / "a", tuples), phases=(1,), max_steps=5)[1]
    cfg_b = tiny_config(tmp_path / "b", tuples)
    first = train(cfg_b, phases=(1,), max_steps=3)[1]  # stops mid-epoch 2 (2 steps per epoch)
    cfg_b["run"]["num_workers"] = 1  # samples do not depend on the worker count
    rest = train(cfg_b, phases=(1,), resume=True, max_steps=5)[1]
    assert len(first) == 3 and len(rest) == 2
    assert first + rest == full  # bit-exact on the CPU
    sa = torch.load(tmp_path / "a" / "phase1" / "state.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "phase1" / "state.pt", weights_only=True)
    assert (sa["epoch"], sa["step_in_epoch"], sa["global_step"]) == (sb["epoch"], sb["step_in_epoch"], sb["global_step"]) == (2, 1, 5)
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    with pytest.raises(ConfigError, match="differs from the run's"):
        cfg_b["phase1"]["lr"] = 1e-2
        train(cfg_b, phases=(1,), resume=True)


def test_epoch_sampler_shards_and_skips():
    s0, s1 = EpochSampler(7, seed=1, rank=0, world=2), EpochSampler(7, seed=1, rank=1, world=2)
    a, b = s0.indices(), s1.indices()
    assert len(a) == len(b) == 4 and set(a) | set(b) == set(range(7))
    s0.set_start(2)
    assert [i for _, i in s0] == a[2:]
    s0.set_epoch(1)
    assert s0.indices() != a


def test_two_process_gloo_run(tuples, tmp_path):
    cfg = tiny_config(tmp_path / "ddp", tuples, phase1={"epochs": 1}, varmap={"extra": 1})
    f = tmp_path / "ddp.json"
    f.write_text(json.dumps(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "d2hnet.cli", "train", "--config", str(f), "--phase", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    st = torch.load(tmp_path / "ddp" / "phase1" / "state.pt", weights_only=True)
    assert st["world"] == 2 and st["epoch"] == 1 and st["global_step"] == 1  # 4 samples / 2 ranks / batch 2
    assert (tmp_path / "ddp" / "model_phase1.pt").exists() and (tmp_path / "ddp" / "config.json").exists()


def test_cli_make_val_and_validate(tuples, tmp_path, capsys):
    assert main(["make-val", "--profile", "mi_note10", "--src", str(tuples), "-o", str(tmp_path / "val"),
                 "--crop", "64"]) == 0
    cfg = tiny_config(tmp_path / "run", tuples, data={"val_dir": str(tmp_path / "val")}, phase1={"epochs": 1})
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cfg))
    assert main(["train", "--config", str(f), "--phase", "1", "--profile", "mi_note10"]) == 0
    rows = (tmp_path / "run" / "phase1" / "val.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,split,n,psnr,ssim" and rows[1].split(",")[2:4] == ["all", "3"]
    assert (tmp_path / "run" / "config.json").exists() and (tmp_path / "run" / "config.json").read_text()
    capsys.readouterr()
    out_json = tmp_path / "res.json"
    assert main(["validate", "-c", str(tmp_path / "run" / "model_phase1.pt"), "--val-dir", str(tmp_path / "val"),
                 "--device", "cpu", "--inputs", "--json", str(out_json), "--no-progress"]) == 0
    res = json.loads(out_json.read_text())
    assert res["model"]["all"]["n"] == 3 and 0 < res["model"]["all"]["ssim"] <= 1 and "input_best" in res
    assert "PSNR dB" in capsys.readouterr().out


def test_checkpoint_history_best_console_line_and_image_grid(tuples, tmp_path, capsys):
    """Last N + every K-th epoch kept, best by validation PSNR kept and resumable, one console line per
    validation, a PNG grid per phase-2 validation, training time continuing across a resume."""
    from d2hnet.checkpoint import load_checkpoint
    from d2hnet.data.dataset import make_val

    val = tmp_path / "val"
    make_val(tuples, val, "mi_note10", crop=64)
    cfg = tiny_config(tmp_path / "run", tuples, data={"val_dir": str(val)}, phase1={"epochs": 4},
                      phase2={"epochs": 2}, run={"keep_last": 1, "keep_every": 2, "val_images": 2})
    train(cfg, phases=(1,))
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("phase 1 val epoch")]
    assert len(lines) == 4 and "all" in lines[0] and "dB" in lines[0] and "[standard]" in lines[0], out
    ph1 = tmp_path / "run" / "phase1"
    idx = json.loads((ph1 / "history" / "index.json").read_text())
    rows = [r.split(",") for r in (ph1 / "val.csv").read_text().splitlines()[1:] if r.split(",")[2] == "all"]
    best_epoch = max(rows, key=lambda r: float(r[4]))[1]
    assert idx["best"]["epoch"] == int(best_epoch) and idx["best"]["protocol"] == "standard"
    assert set(idx["epochs"]) == {2, 4} | {idx["best"]["epoch"]}  # every 2nd, the last, the best
    kept = sorted(p.name for p in (ph1 / "history").glob("state_e*.pt"))
    assert kept == [f"state_e{e:04d}.pt" for e in sorted(idx["epochs"])]
    assert load_checkpoint(ph1 / "best.pt").config() == TINY_MODEL
    # resume from a kept state: the same next losses as the uninterrupted run, elapsed time continues
    full = torch.load(ph1 / "state.pt", weights_only=True)
    cfg2 = tiny_config(tmp_path / "run2", tuples, phase1={"epochs": 4}, run={"keep_last": 4})
    a = train(cfg2, phases=(1,))[1]
    st2 = torch.load(tmp_path / "run2" / "phase1" / "history" / "state_e0002.pt", weights_only=True)
    b = train(cfg2, phases=(1,), resume_from=tmp_path / "run2" / "phase1" / "history" / "state_e0002.pt")[1]
    assert b == a[4:]
    st_end = torch.load(tmp_path / "run2" / "phase1" / "state.pt", weights_only=True)
    assert st_end["elapsed_s"] > st2["elapsed_s"] > 0 and full["elapsed_s"] > 0
    # phase 2 validations write their image grid
    train(cfg, phases=(2,))
    grids = sorted((tmp_path / "run" / "phase2" / "val_images").glob("*.png"))
    assert [g.name for g in grids] == ["epoch_0001.png", "epoch_0002.png"]
    from PIL import Image

    with Image.open(grids[0]) as im:
        assert im.size[0] > 500 and im.size[1] > 300


def test_keep_last_zero_still_keeps_the_best(tmp_path):
    """keep_last = 0, keep_every = 0: only the best epoch stays in history (it was deleted before its validation
    could make it the best), and a former best goes once beaten."""
    import os

    from d2hnet.ckpt_policy import CheckpointPolicy

    pol = CheckpointPolicy(tmp_path, keep_last=0, keep_every=0)
    for epoch, psnr in [(1, 30.0), (2, 29.0), (3, 31.0)]:
        for name, tag in (("state.pt", b"s"), ("model.pt", b"m")):  # a new file each epoch, as torch saves do
            (tmp_path / ".new").write_bytes(tag + bytes([epoch]))
            os.replace(tmp_path / ".new", tmp_path / name)
        pol.after_epoch(epoch, tmp_path / "state.pt", tmp_path / "model.pt")
        assert pol.after_validation(epoch, {"all": {"psnr": psnr}}) == (epoch != 2)
        assert pol.index["epochs"] == [1 if epoch < 3 else 3]
    assert pol.index["best"]["epoch"] == 3 and (tmp_path / "best.pt").read_bytes() == b"m\x03"
    assert sorted(p.name for p in pol.hist.glob("*_e*.pt")) == ["model_e0003.pt", "state_e0003.pt"]


def test_training_with_progress_bars(tuples, tmp_path, capsys):
    """The default run.progress = true shows a bar per epoch (the bar's label once indexed the phase config as a
    dict and failed at the first epoch)."""
    cfg = tiny_config(tmp_path / "run", tuples, run={"progress": True}, phase1={"epochs": 1})
    train(cfg, phases=(1,))
    assert "phase 1 epoch 1/1" in capsys.readouterr().err


def test_validate_and_restore_agree_on_the_same_image(tuples, tmp_path):
    from d2hnet.data.dataset import ValDataset, make_val
    from d2hnet.infer import restore
    from d2hnet.metrics import score
    from d2hnet.models import D2HNet
    from d2hnet.validate import evaluate

    make_val(tuples, tmp_path / "val", "mi_note10", crop=64)
    torch.manual_seed(0)
    model = D2HNet(TINY_MODEL)
    ds = ValDataset(tmp_path / "val")
    name, split, long, short, gt = ds[0]
    for protocol in ("standard", "paper"):
        res = evaluate(model, tmp_path / "val", max_items=1, protocol=protocol)
        kw = {} if protocol == "standard" else {"deblur_size": None, "deblur_scale": 0.5, "clip": False}
        p, s = score(restore(long, short, model, **kw), gt, protocol=protocol)
        assert res["all"]["psnr"] == pytest.approx(p, rel=1e-12) and res["all"]["ssim"] == pytest.approx(s, rel=1e-12)
        assert res["all"]["protocol"] == protocol and "DeblurNet at" in res["all"]["deblur"]


def test_device_degradation_engine_trains_and_resumes_exactly(tuples, tmp_path):
    """noise.engine = "torch": workers return clean crops plus a noise seed, the step degrades on its device
    (isp_sim.torch); noise statistics like the numba path's; resume bit-exact on the CPU."""
    tr = Trainer(validate_config(tiny_config(tmp_path / "a", tuples, noise={"engine": "torch"})), 1)
    ds = TrainDataset(tr.records, tr.profile, tr.settings, seed=3)
    item = ds.sample(0, 0)
    assert "noise_seed" in item and item["long"].shape == (3, 64, 64)  # clean, full crop: the step degrades
    batch = {k: torch.stack([ds.sample(i, 0)[k] for i in range(2)]) for k in item}
    tr.gen = torch.Generator().manual_seed(0)
    long, short, gt = tr._degrade_on_device(batch, batch["long"], batch["short"], batch["gt"])
    assert long.shape == (2, 3, 32, 32) and torch.isfinite(short).all()
    cpu = Trainer(validate_config(tiny_config(tmp_path / "n", tuples)), 1)
    cpu_item = TrainDataset(cpu.records, cpu.profile, cpu.settings, seed=3).sample(0, 0)
    dev_noise = float((short[0] - gt[0]).std())
    cpu_noise = float((cpu_item["short"] - cpu_item["gt"]).std())
    assert 0.5 < dev_noise / cpu_noise < 2.0, (dev_noise, cpu_noise)  # same recipe, another ISO draw
    full = train(tiny_config(tmp_path / "b", tuples, noise={"engine": "torch"}), phases=(1,), max_steps=5)[1]
    cfg_c = tiny_config(tmp_path / "c", tuples, noise={"engine": "torch"})
    first = train(cfg_c, phases=(1,), max_steps=3)[1]
    rest = train(cfg_c, phases=(1,), resume=True, max_steps=5)[1]
    assert first + rest == full and all(np.isfinite(full))
    losses2 = train(tiny_config(tmp_path / "b", tuples, noise={"engine": "torch"}), phases=(2,), max_steps=2)[2]
    assert len(losses2) == 2 and all(np.isfinite(losses2))
