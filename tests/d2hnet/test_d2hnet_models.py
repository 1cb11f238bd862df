"""D2HNet networks: wavelet transform, alignment block, shapes, parameter counts, determinism."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import torch.nn.functional as F  # noqa: E402

from d2hnet.errors import InputError, InputTypeError  # noqa: E402
from d2hnet.models import (  # noqa: E402
    AlignBlock,
    D2HNet,
    DeblurNet,
    EnhanceNet,
    HaarDWT,
    HaarIWT,
    ResBlock,
    count_parameters,
    haar_dwt,
    haar_iwt,
    init_weights,
    modulated_deform_conv,
    validate_config,
)
from d2hnet.models.blocks import UpsampleConv  # noqa: E402

from ..conftest import RELEASE_JSON  # noqa: E402
from ..conftest import SMALL_D2HNET as SMALL  # noqa: E402


def test_missing_torch_gives_an_install_hint(monkeypatch):
    import importlib.util

    import d2hnet

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchvision" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install phonenoise\[torch\].*torchvision"):
        d2hnet.require_torch()


# ----------------------------------------------------------------------------- Haar DWT / IWT


def test_dwt_golden_values_follow_the_spec_formulas():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 6, 8, generator=g, dtype=torch.float64)
    a, b = x[..., 0::2, 0::2], x[..., 1::2, 0::2]
    c, d = x[..., 0::2, 1::2], x[..., 1::2, 1::2]
    want = torch.cat(((a + b + c + d) / 2, (-a - b + c + d) / 2, (-a + b - c + d) / 2, (a - b - c + d) / 2), 1)
    got = haar_dwt(x)
    assert got.shape == (2, 12, 3, 4)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # a 2x2 block [[1, 2], [3, 4]]: a=1, b=3 (row 1), c=2 (col 1), d=4
    one = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert haar_dwt(one).flatten().tolist() == [5.0, 1.0, 2.0, 0.0]


def test_dwt_then_iwt_is_the_identity_and_back():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 10, 14, generator=g, dtype=torch.float64)
    torch.testing.assert_close(haar_iwt(haar_dwt(x)), x, rtol=0, atol=1e-12)
    y = torch.randn(1, 8, 3, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(haar_dwt(haar_iwt(y)), y, rtol=0, atol=1e-12)
    # orthonormal: energy preserved
    torch.testing.assert_close(haar_dwt(x).square().sum(), x.square().sum())
    # module wrappers call the functions
    torch.testing.assert_close(HaarIWT()(HaarDWT()(x)), x, rtol=0, atol=1e-12)
    # float32 round trip to float precision
    x32 = x.float()
    torch.testing.assert_close(haar_iwt(haar_dwt(x32)), x32, rtol=0, atol=1e-6)


def test_dwt_iwt_gradcheck():
    x = torch.randn(1, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(haar_dwt, (x,))
    y = torch.randn(1, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(haar_iwt, (y,))


def test_dwt_iwt_bad_inputs():
    with pytest.raises(InputError, match="even"):
        haar_dwt(torch.zeros(1, 3, 5, 4))
    with pytest.raises(InputError, match="multiple of 4"):
        haar_iwt(torch.zeros(1, 6, 4, 4))
    with pytest.raises(InputError, match=r"\(3, 4, 4\)"):
        haar_dwt(torch.zeros(3, 4, 4))
    with pytest.raises(InputTypeError):
        haar_dwt([[1.0]])


# ----------------------------------------------------------------------------- blocks


def test_resblock_is_x_plus_tenth_of_residual():
    torch.manual_seed(0)
    blk = ResBlock(6)
    x = torch.randn(2, 6, 7, 9)
    r = F.conv2d(F.leaky_relu(F.conv2d(x, blk.conv1.weight, blk.conv1.bias, padding=1), 0.2),
                 blk.conv2.weight, blk.conv2.bias, padding=1)
    torch.testing.assert_close(blk(x), x + 0.1 * r)


def test_upsample_conv_spectral_norm_train_iterates_eval_does_not():
    torch.manual_seed(0)
    up = UpsampleConv(8, 4)
    x = torch.randn(1, 8, 5, 6)
    assert up(x).shape == (1, 4, 10, 12)
    assert count_parameters(up) == 8 * 4 * 9 + 4  # u, v are buffers
    up.eval()
    u0 = up.conv.parametrizations.weight[0]._u.clone()
    up(x)
    assert torch.equal(up.conv.parametrizations.weight[0]._u, u0)
    up.train()
    for _ in range(30):
        up(x)
    # after the power iterations the normalised weight has spectral norm ~1
    w = up.conv.weight.detach().reshape(4, -1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=1e-3)


# ----------------------------------------------------------------------------- alignment block


def _pure_shift_block(channels: int, groups: int, shifts: list[tuple[int, int]]) -> AlignBlock:
    """An AlignBlock whose offset/mask conv outputs constant offsets (per group) and mask ~1."""
    blk = AlignBlock(channels, offset_channels=8, deformable_groups=groups, has_coarser=False)
    with torch.no_grad():
        blk.offset_mask.weight.zero_()
        bias = torch.empty(3 * groups * 9)
        for g, (dy, dx) in enumerate(shifts):
            for k in range(9):
                bias[2 * (g * 9 + k)] = dy  # row offset first ...
                bias[2 * (g * 9 + k) + 1] = dx  # ... then column offset, per tap, per group
        bias[2 * groups * 9:] = 30.0  # sigmoid(30) == 1.0 in float32
        blk.offset_mask.bias.copy_(bias)
    return blk


def test_deform_conv_with_zero_offsets_and_unit_mask_is_a_plain_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 9, 11)
    w, b = torch.randn(16, 16, 3, 3), torch.randn(16)
    off = torch.zeros(2, 2 * 8 * 9, 9, 11)
    mask = torch.ones(2, 8 * 9, 9, 11)
    torch.testing.assert_close(modulated_deform_conv(x, off, mask, w, b), F.conv2d(x, w, b, padding=1),
                               rtol=1e-5, atol=1e-5)
    # the same through the block: offset/mask conv giving zero offsets and mask logit 30
    blk = _pure_shift_block(16, 8, [(0, 0)] * 8)
    with torch.no_grad():
        blk.dcn.weight.copy_(w)
        blk.dcn.bias.copy_(b)
    short_f = torch.randn(2, 16, 9, 11)
    aligned, feat = blk(short_f, x)
    assert feat.shape == (2, 8, 9, 11)
    torch.testing.assert_close(aligned, F.leaky_relu(F.conv2d(x, w, b, padding=1), 0.2), rtol=1e-5, atol=1e-5)


def test_alignment_block_undoes_a_known_integer_shift_per_deformable_group():
    torch.manual_seed(0)
    C, G, H, W = 16, 8, 20, 24
    base = torch.randn(1, C, H, W)
    shifts = [(2, -3), (0, 1), (-1, 0), (3, 2), (1, 1), (-2, -2), (0, 0), (1, -1)]
    per = C // G
    # long features: the channels of group g displaced by shifts[g]: long[y, x] = base[y - dy, x - dx]
    long_f = torch.cat([torch.roll(base[:, g * per:(g + 1) * per], shifts=s, dims=(2, 3)) for g, s in enumerate(shifts)], 1)
    blk = _pure_shift_block(C, G, shifts)
    aligned, _ = blk(torch.randn(1, C, H, W), long_f)
    want = F.leaky_relu(F.conv2d(base, blk.dcn.weight, blk.dcn.bias, padding=1), 0.2)
    m = 5  # away from the borders, where rolling wraps around and padding differs
    torch.testing.assert_close(aligned[..., m:-m, m:-m], want[..., m:-m, m:-m], rtol=1e-4, atol=1e-4)
    # without the offsets the block does not align
    unaligned = F.leaky_relu(F.conv2d(long_f, blk.dcn.weight, blk.dcn.bias, padding=1), 0.2)
    assert (unaligned - want)[..., m:-m, m:-m].abs().mean() > 0.1


def test_alignment_block_coarser_offsets_and_errors():
    torch.manual_seed(0)
    blk = AlignBlock(16, offset_channels=8, deformable_groups=8, has_coarser=True)
    s, l = torch.randn(1, 16, 8, 10), torch.randn(1, 16, 8, 10)
    aligned, feat = blk(s, l, torch.randn(1, 8, 4, 5))
    assert aligned.shape == (1, 16, 8, 10) and feat.shape == (1, 8, 8, 10)
    with pytest.raises(InputError, match="coarser"):
        blk(s, l)
    with pytest.raises(InputError, match="divisible"):
        AlignBlock(12, deformable_groups=8)


# ----------------------------------------------------------------------------- networks


def test_parameter_counts_match_the_paper_and_release():
    model = D2HNet(init_type="default")
    assert count_parameters(model.deblurnet) == 19_548_987
    assert count_parameters(model.enhancenet) == 53_682_779
    # no frozen parameters: the spectral-norm vectors are buffers
    assert count_parameters(model.enhancenet, trainable_only=False) == 53_682_779
    if RELEASE_JSON.exists():
        counts = json.loads(RELEASE_JSON.read_text())["param_counts"]
        assert count_parameters(model.deblurnet) == counts["DeblurNet_v2"]["parameters_trainable_excluding_unused_modules"]
        assert count_parameters(model.enhancenet) == counts["DenoiseNet_v2"]["parameters_trainable_excluding_unused_modules"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_backward_shapes_and_dtypes_any_size(dtype):
    torch.manual_seed(0)
    model = D2HNet(SMALL).to(dtype)
    long = torch.rand(2, 3, 37, 53, dtype=dtype)
    short = torch.rand(2, 3, 37, 53, dtype=dtype, requires_grad=True)
    t = model.deblurnet(long, short)
    assert t.shape == long.shape and t.dtype == dtype
    out = model.enhancenet(long, short, t)
    assert out.shape == long.shape and out.dtype == dtype
    out.square().mean().backward()
    assert short.grad is not None and short.grad.shape == short.shape
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient (unused in forward?)"
        assert p.grad.dtype == dtype and torch.isfinite(p.grad).all(), name


def test_tiny_inputs_are_padded_and_cropped():
    torch.manual_seed(0)
    model = D2HNet(SMALL).eval()
    with torch.no_grad():
        for h, w in [(1, 1), (3, 5), (17, 16)]:
            x = torch.rand(1, 3, h, w)
            t = model.deblurnet(x, x)
            assert model.enhancenet(x, x, t).shape == (1, 3, h, w)


def test_default_init_leaves_output_close_to_the_base_image():
    """xavier gain 0.02 (release): the residual branches start small."""
    torch.manual_seed(0)
    model = D2HNet(SMALL).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        t = model.deblurnet(x, x)
        out = model.enhancenet(x, x, t)
    assert (t - x).abs().max() < 0.2 and (out - t).abs().max() < 0.2


def test_deterministic_with_a_seed():
    def build(seed):
        torch.manual_seed(seed)
        return D2HNet(SMALL).eval()

    a, b, c = build(3), build(3), build(4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    g = torch.Generator().manual_seed(0)
    long, short = torch.rand(1, 3, 32, 48, generator=g), torch.rand(1, 3, 32, 48, generator=g)
    with torch.no_grad():
        oa = a.enhancenet(long, short, a.deblurnet(long, short))
        ob = b.enhancenet(long, short, b.deblurnet(long, short))
        oa2 = a.enhancenet(long, short, a.deblurnet(long, short))
    assert torch.equal(oa, ob) and torch.equal(oa, oa2)


def test_init_weights_options_and_errors():
    torch.manual_seed(0)
    net = DeblurNet(ngf=4, n_res=1, n_res2=1, init_gain=0.02)
    std_small = net.fusion_conv.weight.std().item()
    init_weights(net, "xavier", 1.0)
    assert net.fusion_conv.weight.std().item() == pytest.approx(std_small * 50, rel=0.1)
    with pytest.raises(InputError, match="init_type"):
        init_weights(net, "uniformish")
    with pytest.raises(InputError, match="gain"):
        init_weights(net, "xavier", -1.0)


def test_network_input_errors():
    model = D2HNet(SMALL)
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(InputError, match=r"same shape.*\(1, 3, 16, 16\).*\(1, 3, 16, 20\)"):
        model.deblurnet(x, torch.rand(1, 3, 16, 20))
    with pytest.raises(InputError, match=r"\(N, 3, H, W\)"):
        model.enhancenet(x, x, torch.rand(1, 4, 16, 16))
    with pytest.raises(InputTypeError, match="floating"):
        model.deblurnet(x, torch.zeros(1, 3, 16, 16, dtype=torch.uint8))


def test_config_validation():
    assert validate_config({})["enhancenet"]["deformable_groups"] == 8
    with pytest.raises(InputError, match="unknown key.*'width'"):
        validate_config({"deblurnet": {"width": 3}})
    with pytest.raises(InputError, match="unknown section"):
        validate_config({"denoisenet": {}})
    with pytest.raises(InputTypeError, match="integer"):
        validate_config({"enhancenet": {"ngf": 8.5}})
    with pytest.raises(InputError, match="divisible by deformable_groups"):
        EnhanceNet(ngf=12)
    with pytest.raises(InputError, match="ngf"):
        DeblurNet(ngf=0)
