"""Full-resolution restoration: sizes, tiling and blending, file I/O, CLI, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from isp_sim.imageio import read_image_raw, write_image  # noqa: E402

from d2hnet.checkpoint import save_checkpoint  # noqa: E402
from d2hnet.cli import SUBCOMMANDS, build_parser, main, register_subcommand  # noqa: E402
from d2hnet.errors import CheckpointError, ImageIOError, InputError, InputTypeError  # noqa: E402
from d2hnet.infer import (  # noqa: E402
    blend_ramp,
    deblur,
    enhance,
    find_pairs,
    reduced_size,
    restore,
    restore_files,
    tile_starts,
)
from d2hnet.models import D2HNet  # noqa: E402

from ..conftest import SMALL_D2HNET as SMALL  # noqa: E402


def _pair(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A blocky scene; long = slightly noisy and shifted, short = noisy and darker."""
    rng = np.random.default_rng(seed)
    base = rng.random((h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    scene = np.kron(base, np.ones((8, 8, 1), np.float32))
    long = scene[1 : h + 1, 2 : w + 2] + 0.01 * rng.standard_normal((h, w, 3), dtype=np.float32)
    short = 0.8 * scene[:h, :w] + 0.08 * rng.standard_normal((h, w, 3), dtype=np.float32)
    return np.clip(long, 0, 1), np.clip(short, 0, 1)


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return D2HNet(SMALL).eval()


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory, small_model):
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "small.pt", small_model)


# ----------------------------------------------------------------------------- sizes and tiles


def test_reduced_size_keeps_the_aspect_ratio_and_never_upsamples():
    assert reduced_size(3472, 4624) == (769, 1024)
    assert reduced_size(4624, 3472) == (1024, 769)
    assert reduced_size(3472, 4624, deblur_size=512) == (384, 512)
    assert reduced_size(3472, 4624, deblur_scale=0.5) == (1736, 2312)
    assert reduced_size(600, 800) == (600, 800)
    assert reduced_size(600, 800, deblur_scale=1.0) == (600, 800)
    with pytest.raises(InputError, match="deblur_scale"):
        reduced_size(600, 800, deblur_scale=2.0)
    with pytest.raises(InputError, match="deblur_size"):
        reduced_size(600, 800, deblur_size=0)


@pytest.mark.parametrize("length,tile,overlap", [(4624, 1024, 128), (3472, 1024, 128), (96, 64, 32), (100, 48, 16), (48, 48, 16), (20, 64, 16)])
def test_tile_grid_covers_the_image_with_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    assert all(0 < b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_blend_ramps_are_positive_and_complementary():
    w = blend_ramp(64, 16, 16)
    assert w.min() > 0 and w.max() == 1.0 and torch.equal(w, w.flip(0))
    left, right = blend_ramp(64, 0, 16), blend_ramp(64, 16, 0)
    torch.testing.assert_close(left[-16:] + right[:16], torch.ones(16))  # partition of unity over the overlap


@pytest.mark.parametrize("h,w,tile,overlap", [(64, 96, 64, 32), (100, 130, 48, 16), (50, 33, 32, 0), (40, 40, 64, 16)])
def test_tiling_is_exact_for_a_pixelwise_network(h, w, tile, overlap):
    """Blending weights are normalised and the grid covers everything: a per-pixel 'network' is reproduced exactly."""

    def pixelwise(long, short, t):
        return long * short + 0.5 * t - long.square()

    g = torch.Generator().manual_seed(0)
    long, short, t = (torch.rand(1, 3, h, w, generator=g) for _ in range(3))
    calls = []
    out = enhance(long, short, t, pixelwise, tile_size=tile, tile_overlap=overlap, device="cpu",
                  on_tile=lambda i, n: calls.append((i, n)))
    torch.testing.assert_close(out, pixelwise(long, short, t), rtol=0, atol=1e-6)
    assert calls[-1] == (len(calls), len(calls))
    assert len(calls) == len(tile_starts(h, tile, overlap)) * len(tile_starts(w, tile, overlap))


def test_tiled_restoration_matches_untiled_for_a_network_that_changes_its_input():
    """64x96 pair, EnhanceNet in 2 tiles of 64 px (overlap 32) vs one pass.

    Weights re-initialised with xavier gain 1 (not 0.02) so the residual is
    large and spatially varying. Tiled and untiled differ only because a tile
    lacks the context beyond its border (EnhanceNet's receptive field covers
    the whole test image): stated tolerance mean |diff| < 1 % of the mean
    change and max |diff| < 0.03 (measured: 0.15 % and 0.004; butt-joined
    48 px tiles without overlap: 8 % and 0.42).
    """
    torch.manual_seed(1)
    model = D2HNet(SMALL, init_gain=1.0).eval()
    long, short = _pair(64, 96)
    untiled, t_up = restore(long, short, model, tile_size=128, clip=False, return_deblurred=True, device="cpu")
    change = np.abs(untiled - t_up)
    centred = (untiled - t_up) - (untiled - t_up).mean(axis=(0, 1))
    assert change.mean() > 0.1 and change.max() > 0.5, "the network must really change its input"
    assert np.abs(centred).mean() > 0.05, "... and not by a constant"
    tiled = restore(long, short, model, tile_size=64, tile_overlap=32, clip=False, device="cpu")
    diff = np.abs(tiled - untiled)
    assert diff.mean() < 0.01 * change.mean(), (diff.mean(), change.mean())
    assert diff.max() < 0.03
    # overlapping, blended tiles beat butt-joined ones (the release's paste)
    butt = restore(long, short, model, tile_size=48, tile_overlap=0, clip=False, device="cpu")
    assert np.abs(butt - untiled).mean() > diff.mean()


# ----------------------------------------------------------------------------- restore()


def test_restore_outputs_and_deblur_resolution(small_model):
    long, short = _pair(64, 96)
    seen = []
    hook = small_model.deblurnet.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[-2:])))
    try:
        out = restore(long, short, small_model, device="cpu")
        restore(long, short, small_model, deblur_size=48, device="cpu")
        restore(long, short, small_model, deblur_scale=0.5, device="cpu")
        restore((long * 255).round().astype(np.uint8), (short * 65535).round().astype(np.uint16), small_model)
    finally:
        hook.remove()
    assert seen == [(64, 96), (32, 48), (32, 48), (64, 96)]
    assert out.shape == (64, 96, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert not small_model.training


def test_deblur_stage_area_downsamples_and_upsamples_bilinearly():
    class Identity(torch.nn.Module):
        def forward(self, long, short):
            return long

    long = torch.rand(1, 3, 40, 60)
    t_up = deblur(long, long, Identity(), deblur_scale=0.5, device="cpu")
    down = torch.nn.functional.avg_pool2d(long, 2)
    want = torch.nn.functional.interpolate(down, size=(40, 60), mode="bilinear", align_corners=False)
    torch.testing.assert_close(t_up, want)


def test_restore_bad_inputs(small_model, tmp_path):
    long, short = _pair(32, 48)
    with pytest.raises(InputError, match=r"same size.*\(32, 48, 3\).*\(32, 40, 3\)"):
        restore(long, short[:, :40], small_model)
    with pytest.raises(InputError, match="grayscale"):
        restore(long[..., 0], short[..., 0], small_model)
    with pytest.raises(InputError, match="RGBA"):
        restore(np.dstack([long, long[..., :1]]), short, small_model)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        restore(long * 2, short, small_model)
    with pytest.raises(InputTypeError, match="numpy"):
        restore(torch.from_numpy(long), short, small_model)
    with pytest.raises(InputTypeError, match="D2HNet"):
        restore(long, short, object())
    with pytest.raises(InputError, match="tile_size"):
        restore(long, short, small_model, tile_size=100)
    with pytest.raises(InputError, match="tile_overlap"):
        restore(long, short, small_model, tile_size=64, tile_overlap=40)
    with pytest.raises(InputError, match="only supported on CUDA"):
        restore(long, short, small_model, device="cpu", amp="bf16")
    with pytest.raises(InputError, match="amp"):
        restore(long, short, small_model, amp="int8")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            restore(long, short, small_model, device="cuda")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        restore(long, short, tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- files and CLI


def test_restore_files_keeps_the_bit_depth(small_ckpt, tmp_path):
    long, short = _pair(40, 56)
    for ext, bd in ((".png", 8), (".tif", 16), (".png", 16)):
        lp, sp = write_image(tmp_path / f"l{bd}{ext}", long, bd), write_image(tmp_path / f"s{bd}{ext}", short, bd)
        out = restore_files(lp, sp, tmp_path / f"o{bd}{ext}", small_ckpt)
        raw = read_image_raw(out)
        assert raw.shape == (40, 56, 3) and raw.dtype == (np.uint8 if bd == 8 else np.uint16)
    out = restore_files(lp, sp, tmp_path / "forced8.png", small_ckpt, bit_depth=8)
    assert read_image_raw(out).dtype == np.uint8


def test_cli_restore_pair_and_folder(small_ckpt, tmp_path, capsys):
    long, short = _pair(40, 56)
    lp, sp = write_image(tmp_path / "a_long.png", long), write_image(tmp_path / "a_short.png", short)
    out = tmp_path / "res" / "a.png"
    assert main(["restore", "--long", str(lp), "--short", str(sp), "--checkpoint", str(small_ckpt),
                 "-o", str(out), "--no-progress", "--save-deblur", "--deblur-scale", "0.5"]) == 0
    assert read_image_raw(out).shape == (40, 56, 3)
    assert (tmp_path / "res" / "a_deblur.png").exists()
    # folder mode: two pairs and one lonely file (a warning, not an error)
    write_image(tmp_path / "b_long.png", short)
    write_image(tmp_path / "b_short.png", long)
    write_image(tmp_path / "c_long.png", long)
    with pytest.warns(UserWarning, match="c_long.png"):
        assert [n for n, _, _ in find_pairs(tmp_path)] == ["a", "b"]
    outdir = tmp_path / "outdir"
    assert main(["restore", "--input-dir", str(tmp_path), "-c", str(small_ckpt), "-o", str(outdir),
                 "--no-progress", "--tile-size", "32", "--tile-overlap", "8"]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["a_restored.png", "b_restored.png"]
    captured = capsys.readouterr()
    assert "c_long.png" in captured.err
    assert "DeblurNet at 56x40 for a 56x40 input (long side 1024 px, never upsampled)" in captured.out
    # side-by-side PNGs and, in folder mode, a contact sheet
    sbs = tmp_path / "sbs"
    assert main(["restore", "--input-dir", str(tmp_path), "-c", str(small_ckpt), "-o", str(sbs), "--no-progress",
                 "--side-by-side"]) == 0
    names = sorted(p.name for p in sbs.iterdir())
    assert names == ["a_restored.png", "a_restored_side_by_side.png", "b_restored.png", "b_restored_side_by_side.png",
                     "contact_sheet.png"]
    from PIL import Image

    with Image.open(sbs / "contact_sheet.png") as im:
        assert im.size[0] >= 800 and im.size[1] >= 400  # two rows of three panels


def test_cli_bad_inputs_give_clear_errors(small_ckpt, tmp_path, capsys):
    long, short = _pair(40, 56)
    lp = write_image(tmp_path / "l.png", long)
    cases = {
        "small": (write_image(tmp_path / "s_small.png", short[:32]), small_ckpt, "same size"),
        "gray": (write_image(tmp_path / "gray.png", short[..., 0]), small_ckpt, "grayscale"),
        "rgba": (write_image(tmp_path / "rgba.png", np.dstack([short, short[..., :1]])), small_ckpt, "RGBA"),
        "text": (tmp_path / "notes.png", small_ckpt, "notes.png"),
    }
    (tmp_path / "notes.png").write_text("not an image")
    bad_ck = tmp_path / "wrong.pt"
    torch.save(D2HNet(SMALL).enhancenet.state_dict(), bad_ck)
    cases["wrong network"] = (write_image(tmp_path / "s.png", short), bad_ck, "bare EnhanceNet state_dict")
    for name, (sp, ck, msg) in cases.items():
        rc = main(["restore", "--long", str(lp), "--short", str(sp), "-c", str(ck), "-o", str(tmp_path / "o.png"), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and "error" in err, (name, err)
    # Python API raises the package's errors
    with pytest.raises(ImageIOError, match="grayscale"):
        restore_files(lp, tmp_path / "gray.png", tmp_path / "o.png", small_ckpt)
    with pytest.raises(ImageIOError, match="notes.png"):
        restore_files(tmp_path / "notes.png", lp, tmp_path / "o.png", small_ckpt)
    with pytest.raises(ImageIOError, match="jpg"):
        restore_files(lp, lp, tmp_path / "o.jpg", small_ckpt)
    with pytest.raises(CheckpointError, match="bare EnhanceNet"):
        restore_files(lp, lp, tmp_path / "o.png", bad_ck)
    rc = main(["restore", "--long", str(lp), "-c", str(small_ckpt), "-o", str(tmp_path / "o.png")])
    assert rc == 2 and "--short" in capsys.readouterr().err


def test_cli_is_extensible():
    names = [n for n, _ in SUBCOMMANDS]
    assert names[:3] == ["restore", "convert-release", "info"]

    def add_hello(sub):
        p = sub.add_parser("hello-test")
        p.set_defaults(func=lambda args: 7)

    register_subcommand("hello-test", add_hello)
    try:
        assert main(["hello-test"]) == 7
        with pytest.raises(ValueError, match="already registered"):
            register_subcommand("hello-test", add_hello)
    finally:
        SUBCOMMANDS[:] = [(n, f) for n, f in SUBCOMMANDS if n != "hello-test"]
    assert "hello-test" not in build_parser().format_help()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_matches_cpu(small_model):
    long, short = _pair(64, 96)
    cpu = restore(long, short, small_model, device="cpu")
    for amp in ("off", "bf16", "fp16"):
        gpu = restore(long, short, small_model, device="cuda", amp=amp, tile_size=64, tile_overlap=16)
        ref = restore(long, short, small_model, device="cpu", tile_size=64, tile_overlap=16)
        tol = 1e-4 if amp == "off" else 2e-2
        assert np.abs(gpu - ref).max() < tol, amp
    small_model.cpu()
    assert cpu.shape == (64, 96, 3)
