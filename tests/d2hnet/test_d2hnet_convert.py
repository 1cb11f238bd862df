"""Release checkpoint conversion and the d2hnet checkpoint format.

No release weights are available: synthetic state_dicts are built from
d2hnet_release_state_dict.json (every key and shape of the release's two
networks) with random values, and a functional restatement of the release's
forward (written from docs/d2hnet.md and the release's layer layout, using
the release's key names directly) checks that the converted networks compute
what the release computes.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import torch.nn.functional as F  # noqa: E402
from torchvision.ops import deform_conv2d  # noqa: E402

from d2hnet.checkpoint import FORMAT_VERSION, load_checkpoint, read_checkpoint, save_checkpoint  # noqa: E402
from d2hnet.cli import main  # noqa: E402
from d2hnet.convert import (  # noqa: E402
    RELEASE_DROPPED_KEYS,
    RELEASE_NETS,
    convert_release,
    convert_release_state_dicts,
    release_key_map,
    release_sn_power_iteration,
    spectral_norm_keys,
)
from d2hnet.errors import CheckpointError, ReleaseConversionError  # noqa: E402
from d2hnet.models import D2HNet  # noqa: E402

from ..conftest import RELEASE_JSON  # noqa: E402
from ..conftest import SMALL_D2HNET as SMALL  # noqa: E402


@pytest.fixture(scope="module")
def release_spec():
    if not RELEASE_JSON.exists():
        pytest.skip(f"{RELEASE_JSON} not present (it lives in the project's shared/ folder)")
    return json.loads(RELEASE_JSON.read_text())


def _synthetic(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Random tensors with the release's names and shapes; conv weights ~ N(0, 1/fan_in) so a forward stays finite."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        t = torch.randn(*shape, generator=g)
        if len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            t *= (1.0 / fan_in) ** 0.5
        elif k.endswith("bias"):
            t *= 0.01
        out[k] = t
    return out


@pytest.fixture(scope="module")
def release_sds(release_spec):
    return _synthetic(release_spec["DeblurNet_v2"], 1), _synthetic(release_spec["DenoiseNet_v2"], 2)


@pytest.fixture(scope="module")
def converted(release_sds):
    return convert_release_state_dicts(*release_sds)


# ----------------------------------------------------------------------------- the key mapping


@pytest.mark.parametrize("release_net", sorted(RELEASE_NETS))
def test_mapping_is_complete_and_one_to_one(release_spec, release_net):
    keys = set(release_spec[release_net])
    kmap = release_key_map(release_net)
    dropped = set(RELEASE_DROPPED_KEYS[release_net])
    assert not (set(kmap) & dropped)
    assert set(kmap) | dropped == keys, "every release key is mapped or deliberately dropped"
    assert dropped == set(release_spec["unused_in_forward"][release_net]["keys"])
    ours = getattr(D2HNet(init_type="default"), RELEASE_NETS[release_net]).state_dict()
    assert sorted(kmap.values()) == sorted(ours), "every key of ours is the image of exactly one release key"
    for rk, ok in kmap.items():
        assert tuple(ours[ok].shape) == tuple(release_spec[release_net][rk]), (rk, ok)
    sn = {k for triple in spectral_norm_keys() for k in triple} if release_net == "DenoiseNet_v2" else set()
    assert sn == set(release_spec["spectral_norm_keys"][release_net])


def test_every_tensor_lands_where_it_should(release_sds, converted):
    sn_uv = {k for _, u, v in spectral_norm_keys() for k in (u, v)}
    for (release_net, attr), sd in zip(RELEASE_NETS.items(), release_sds):
        ours = getattr(converted, attr).state_dict()
        for rk, ok in release_key_map(release_net).items():
            if rk in sn_uv:
                continue
            assert torch.equal(ours[ok], sd[rk]), f"{rk} -> {ok}"
    # spectral norm: u, v are the release's first power-iteration step; eval weight = release's weight
    sd = release_sds[1]
    for i, (bar_k, u_k, v_k) in enumerate(spectral_norm_keys()):
        level = 4 - i
        conv = converted.enhancenet.up[level - 1].conv
        u, v = release_sn_power_iteration(sd[bar_k], sd[u_k])
        assert torch.equal(conv.parametrizations.weight[0]._u, u)
        assert torch.equal(conv.parametrizations.weight[0]._v, v)
        w = sd[bar_k].reshape(sd[bar_k].shape[0], -1)
        sigma = torch.dot(u, torch.mv(w, v))
        torch.testing.assert_close(conv.weight, sd[bar_k] / sigma, rtol=1e-6, atol=0)
        # the eval weight is fixed: a second call gives the same weight (the release would iterate again)
        torch.testing.assert_close(conv.weight, sd[bar_k] / sigma, rtol=1e-6, atol=0)


# ----------------------------------------------------------------------------- release forward, restated


def _conv(sd, p, x, stride=1, act=True, padding=1):
    y = F.conv2d(x, sd[f"{p}.weight"], sd[f"{p}.bias"], stride=stride, padding=padding)
    return F.leaky_relu(y, 0.2) if act else y


def _res(sd, p, x):
    y = _conv(sd, f"{p}.conv2d.0.layers.0", x)
    return x + 0.1 * _conv(sd, f"{p}.conv2d.1.layers.0", y, act=False)


def _dwt(x):  # independent of d2hnet.models.dwt: via pixel_unshuffle (sub-pixels a, c, b, d)
    n, c, h, w = x.shape
    s = F.pixel_unshuffle(x, 2).reshape(n, c, 4, h // 2, w // 2)
    a, cc, b, d = s.unbind(2)
    return torch.cat(((a + b + cc + d) / 2, (-a - b + cc + d) / 2, (-a + b - cc + d) / 2, (a - b - cc + d) / 2), 1)


def _iwt(x):
    n, c4, h, w = x.shape
    ll, hl, lh, hh = x.chunk(4, 1)
    a, b = (ll - hl - lh + hh) / 2, (ll - hl + lh - hh) / 2
    c, d = (ll + hl - lh - hh) / 2, (ll + hl + lh + hh) / 2
    return F.pixel_shuffle(torch.stack((a, c, b, d), 2).reshape(n, c4, h, w), 2)


def _release_deblurnet(sd, short, long):
    x = _conv(sd, "downsample_conv.layers.0", _dwt(torch.cat((short, long), 1)))
    x = _conv(sd, "fusion_conv.layers.0", _dwt(x))
    y = x
    for i in range(4):
        y = _res(sd, f"deblur_res_block_{i}", y)
    x = _iwt(_conv(sd, "upsample_conv.layers.0", _iwt(x + y)))
    y = x
    for i in range(4):
        y = _res(sd, f"deblur_res_block2_{i}", y)
    return long + _conv(sd, "deblur_layer.layers.0", y + x, act=False)


def _release_sn_up(sd, lvl, x):
    p = f"upsample_conv{lvl}.conv2d.layers.0.module"
    bar, u0 = sd[f"{p}.weight_bar"], sd[f"{p}.weight_u"]
    w = bar.reshape(bar.shape[0], -1)
    v = w.t() @ u0
    v = v / (v.norm() + 1e-12)
    u = w @ v
    u = u / (u.norm() + 1e-12)
    weight = bar / u.dot(w @ v)
    x = F.interpolate(x, scale_factor=2, mode="nearest")
    return F.leaky_relu(F.conv2d(x, weight, sd[f"{p}.bias"], padding=1), 0.2)


def _release_align(sd, lvl, short_f, long_f, prev):
    p = f"upsample_alignblock{lvl}"
    off = _conv(sd, f"{p}.conv_1", torch.cat((short_f, long_f), 1), act=False, padding=0)
    off = _conv(sd, f"{p}.offset_conv1", off)
    if prev is not None:
        prev = F.interpolate(prev, scale_factor=2, mode="bilinear", align_corners=False)
        off = _conv(sd, f"{p}.offset_conv2", torch.cat((off, prev * 2), 1))
    off = _conv(sd, f"{p}.offset_conv3", off)
    o1, o2, m = _conv(sd, f"{p}.dcnpack.conv_offset_mask", off, act=False).chunk(3, 1)
    out = deform_conv2d(long_f, torch.cat((o1, o2), 1), sd[f"{p}.dcnpack.weight"], sd[f"{p}.dcnpack.bias"],
                        padding=1, mask=torch.sigmoid(m))
    return F.leaky_relu(out, 0.2), off


def _release_denoisenet(sd, short, long, deblur_out):
    def enc(prefix, x):
        feats = []
        for lvl in range(1, 6):
            x = _conv(sd, f"{prefix}{lvl}.0.layers.0", x, stride=1 if lvl == 1 else 2)
            x = _res(sd, f"{prefix}{lvl}.1", x)
            feats.append(x)
        return feats

    s = enc("downsample_short_conv", torch.cat((short, deblur_out), 1))
    lf = enc("downsample_long_conv", long)
    fea, off = _release_align(sd, 5, s[4], lf[4], None)
    fea = _conv(sd, "upsample_comb5.layers.0", torch.cat((fea, s[4]), 1))
    for j in range(4):
        fea = _res(sd, f"upsample_resblock5.{j}", fea)
    for lvl in range(4, 0, -1):
        fea = _release_sn_up(sd, lvl, fea)
        cut, off = _release_align(sd, lvl, s[lvl - 1], lf[lvl - 1], off)
        cut = _conv(sd, f"upsample_comb{lvl}.layers.0", torch.cat((cut, s[lvl - 1]), 1))
        if lvl > 1:
            for j in range(4):
                cut = _res(sd, f"upsample_resblock{lvl}.{j}", cut)
        fea = torch.cat((fea, cut), 1)
    fea = _conv(sd, "upsample_conv0.layers.0", fea)
    y = fea
    for i in range(4):
        y = _res(sd, f"denoise_res_block2_{i}", y)
    return deblur_out + _conv(sd, "denoise_layer.layers.0", y + fea, act=False)


def test_converted_networks_compute_what_the_release_computes(release_sds, converted):
    g = torch.Generator().manual_seed(5)
    long, short = torch.rand(1, 3, 32, 48, generator=g), torch.rand(1, 3, 32, 48, generator=g)
    with torch.no_grad():
        t_ref = _release_deblurnet(release_sds[0], short, long)
        t = converted.deblurnet(long, short)
        assert (t_ref - long).abs().mean() > 0.05, "the synthetic weights must really change the input"
        torch.testing.assert_close(t, t_ref, rtol=1e-4, atol=1e-4)
        out_ref = _release_denoisenet(release_sds[1], short, long, t_ref)
        out = converted.enhancenet(long, short, t_ref)
        assert (out_ref - t_ref).abs().mean() > 0.05
        torch.testing.assert_close(out, out_ref, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- bad release files


def test_missing_extra_and_misshapen_keys_are_named(release_sds):
    deb, enh = release_sds
    bad = dict(enh)
    del bad["upsample_alignblock3.dcnpack.conv_offset_mask.weight"]
    with pytest.raises(ReleaseConversionError, match=r"missing keys.*upsample_alignblock3\.dcnpack\.conv_offset_mask\.weight"):
        convert_release_state_dicts(deb, bad)
    bad = dict(enh)
    del bad["short_conv.layers.0.bias"]  # dropped keys must be present too: the key set is strict
    with pytest.raises(ReleaseConversionError, match=r"missing keys.*short_conv\.layers\.0\.bias"):
        convert_release_state_dicts(deb, bad)
    bad = dict(deb)
    bad["extra_head.weight"] = torch.zeros(3)
    with pytest.raises(ReleaseConversionError, match=r"unexpected keys.*extra_head\.weight"):
        convert_release_state_dicts(bad, enh)
    bad = dict(deb)
    bad["deblur_layer.layers.0.weight"] = torch.zeros(3, 16, 3, 3)
    with pytest.raises(ReleaseConversionError, match=r"deblur_layer\.layers\.0\.weight: \(3, 16, 3, 3\), expected \(3, 32, 3, 3\)"):
        convert_release_state_dicts(bad, enh)
    with pytest.raises(ReleaseConversionError, match="swapped"):
        convert_release_state_dicts(enh, deb)
    prefixed = {f"module.{k}": v for k, v in deb.items()}
    with pytest.raises(ReleaseConversionError, match="module\\."):
        convert_release_state_dicts(prefixed, enh)


def test_convert_release_cli_and_info(tmp_path, release_sds, converted, capsys):
    deb_p, enh_p = tmp_path / "GNet-epoch-99.pkl", tmp_path / "GNet-epoch-149.pkl"
    torch.save(release_sds[0], deb_p)
    torch.save(release_sds[1], enh_p)
    ck = tmp_path / "out" / "d2hnet.pt"
    assert main(["convert-release", str(deb_p), str(enh_p), "-o", str(ck)]) == 0
    assert ck.exists() and not [p for p in ck.parent.iterdir() if p.name != ck.name], "no temporary file left"
    model = load_checkpoint(ck)
    a, b = model.state_dict(), converted.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert model.meta["release_files"]["DenoiseNet_v2"]["name"] == "GNet-epoch-149.pkl"
    capsys.readouterr()
    assert main(["info", str(ck)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == {"deblurnet": 19_548_987, "enhancenet": 53_682_779}
    assert info["format_version"] == FORMAT_VERSION
    # the release file given where a d2hnet checkpoint is expected: a hint to convert it
    with pytest.raises(CheckpointError, match="convert-release"):
        load_checkpoint(enh_p)
    # arguments swapped on the command line: exit status 2 and a message
    assert main(["convert-release", str(enh_p), str(deb_p), "-o", str(tmp_path / "x.pt")]) == 2
    assert "swapped" in capsys.readouterr().err


def test_unsafe_or_wrong_files_are_refused(tmp_path, release_sds):
    from fractions import Fraction  # any class outside weights_only's allow-list stands for arbitrary code

    evil = tmp_path / "evil.pkl"
    torch.save({"obj": Fraction(1, 3)}, evil)
    with pytest.raises(CheckpointError, match="Python objects besides tensors"):
        convert_release(evil, evil, tmp_path / "o.pt")
    wrapped = tmp_path / "wrapped.pkl"
    torch.save({"epoch": 99, "state_dict": release_sds[0]}, wrapped)
    with pytest.raises(ReleaseConversionError, match="not tensors"):
        convert_release(wrapped, wrapped, tmp_path / "o.pt")
    text = tmp_path / "notes.pkl"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pkl"):
        convert_release(text, text, tmp_path / "o.pt")


# ----------------------------------------------------------------------------- our checkpoint format


def test_checkpoint_round_trip_and_checks(tmp_path):
    torch.manual_seed(0)
    model = D2HNet(SMALL)
    ck = save_checkpoint(tmp_path / "m.pt", model, meta={"run": "test", "epoch": 3})
    back = load_checkpoint(ck)
    assert back.config() == model.config() and back.meta["run"] == "test" and not back.training
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())

    raw = torch.load(ck, weights_only=True)

    def write(obj, name):
        torch.save(obj, tmp_path / name)
        return tmp_path / name

    with pytest.raises(CheckpointError, match="format_version 2 is not supported.*newer"):
        load_checkpoint(write({**raw, "format_version": 2}, "v2.pt"))
    with pytest.raises(CheckpointError, match="bad config.*unknown key"):
        load_checkpoint(write({**raw, "config": {"deblurnet": {"ngf": 4, "depth": 3}}}, "cfg.pt"))
    # config and weights disagree: the shapes are named
    cfg = {"deblurnet": {**SMALL["deblurnet"], "ngf": 8}, "enhancenet": SMALL["enhancenet"]}
    with pytest.raises(CheckpointError, match=r"'deblurnet' weights do not match DeblurNet\(ngf=8.*fusion_conv\.weight: file \(64, 96, 3, 3\) vs model \(128, 96, 3, 3\)"):
        load_checkpoint(write({**raw, "config": cfg}, "mismatch.pt"))
    # the two networks swapped: the wrong network is named
    with pytest.raises(CheckpointError, match="'deblurnet' entry holds EnhanceNet weights"):
        load_checkpoint(write({**raw, "deblurnet": raw["enhancenet"], "enhancenet": raw["deblurnet"]}, "swap.pt"))
    # a bare state dict of one of our networks
    with pytest.raises(CheckpointError, match="bare EnhanceNet state_dict"):
        load_checkpoint(write(raw["enhancenet"], "bare.pt"))
    with pytest.raises(CheckpointError, match="missing keys.*out_conv.bias"):
        sd = dict(raw["deblurnet"])
        del sd["out_conv.bias"]
        load_checkpoint(write({**raw, "deblurnet": sd}, "missing.pt"))
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="lacks the entries.*enhancenet"):
        load_checkpoint(write({k: v for k, v in raw.items() if k != "enhancenet"}, "half.pt"))
