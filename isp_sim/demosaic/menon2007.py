"""
DDFAPD - Menon (2007) Bayer CFA demosaicing
===========================================

Demosaicing with directional filtering and a posteriori decision: green is
interpolated both horizontally and vertically (with the paper's 5-tap
filter), the direction whose colour differences vary less over a small
window is kept, red and blue follow from the green plane, and an optional
refining step smooths the colour differences along the chosen direction.
Equivalent to colour-demosaicing's ``demosaicing_CFA_Bayer_Menon2007``,
including at the border.

References
----------
Menon, D., Andriani, S., & Calvagno, G. (2007). Demosaicing with directional
filtering and a posteriori decision. IEEE Transactions on Image Processing,
16(1), 132-141. doi:10.1109/TIP.2006.884928
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing  # noqa: F401  (np.typing in the signatures)
from numba import njit, prange

from .. import _isp_kernels
from .._parallel import BLOCKS, ROWS, chunked
from .._scratch import scratch
from ..errors import InputTypeError
from ._common import as_cfa_float32, mirror, pattern_map, row_layout, umirror

__all__ = ["demosaicing_CFA_Bayer_Menon2007"]

_BLOCK_BYTES = 768 * 1024

# Layout of the scratch arrays: values that exist only at the R/B sites of a
# row are stored "compact", column j at index j >> 1 (there is one R/B site
# per column pair in every row, since green sites form a checkerboard).
# A row's sites are numbered k (j = 2 k + first column); interior loops index
# with unsigned k and j (see _common.umirror), the few border sites with signed
# ones that mirroring can take below 0.


@njit(cache=True, inline="always")
def _sites(cmap, i, w):  # pragma: no cover - compiled
    """Row ``i``'s R/B sites ``j = 2 k + j0``, ``0 <= k < n``: (j0, n, the row's R/B plane)."""
    goff, nc = row_layout(cmap, np.int64(i))
    j0 = 1 - goff
    return j0, (w - j0 + 1) // 2, nc


@njit(cache=True, inline="always")
def _interior(j0, n, w, reach):  # pragma: no cover - compiled
    """Sites ``k`` in ``[lo, hi)`` of a row whose neighbours ``j -+ reach`` lie inside ``[0, w)``: the loops run
    there without mirroring (unit-stride in ``k``, so they vectorise) and mirror only the few border sites."""
    lo = min((reach - j0 + 1) // 2, n)
    hi = max(min((w - 1 - reach - j0) // 2 + 1, n), lo)
    return lo, hi


@chunked(ROWS)
@njit(cache=True, parallel=True)
def _planar(x, xp):  # pragma: no cover - compiled
    """``xp[i, p, k] = x[i, 2 k + p]``: each row's even and odd columns as contiguous half rows (a half row's slot
    past the last odd column is 0). The interior stencil loops read these: unit-stride loads vectorise where the
    full row's stride-2 loads became gathers (5x slower in a loop of the green pass's shape, znver4)."""
    h, w = x.shape
    wc = xp.shape[2]
    for i in prange(h):
        xr, e, o = x[i], xp[i, 0], xp[i, 1]
        for k in range(w // 2):
            e[k] = xr[2 * k]
            o[k] = xr[2 * k + 1]
        if w & 1:
            e[wc - 1] = xr[w - 1]
            o[wc - 1] = 0.0


@njit(cache=True, inline="always")
def _color_diffs(c, l1, r1, l2, r2, u1, d1, u2, d2):  # pragma: no cover - compiled
    """x - G_H and x - G_V (float64) at an R/B site of value ``c`` from its row (``l``, ``r``) and column (``u``,
    ``d``) neighbours at distances 1 and 2."""
    # h0 = [0, 1/2, 0, 1/2, 0] plus h1 = [-1/4, 0, 1/2, 0, -1/4]
    g_h = 0.5 * (np.float64(l1) + r1) + 0.25 * ((c - l2) + (c - r2))
    g_v = 0.5 * (np.float64(u1) + d1) + 0.25 * ((c - u2) + (c - d2))
    return c - g_h, c - g_v


@njit(cache=True, inline="always")
def _dd_row(xp, w, cmap, i, chr_, cvr):  # pragma: no cover - compiled
    """Row ``i``'s colour differences x - G_H and x - G_V at its R/B sites (float64, compact), from the mosaic's
    half rows ``xp`` (:func:`planar`; ``w`` columns)."""
    h = xp.shape[0]
    si = np.int64(i)
    im2, im1, ip1, ip2 = umirror(si - 2, h), umirror(si - 1, h), umirror(si + 1, h), umirror(si + 2, h)
    j0, n, _ = _sites(cmap, i, w)
    lo, hi = _interior(j0, n, w, 2)
    # site k's column j = 2 k + j0 is slot k of its own half row; j -+ 1 are slots k + j0 - 1, k + j0 of the other
    # (a mirrored column keeps its parity, so the border's column c is slot c >> 1 of the half row of its parity)
    own, oth = xp[i, j0], xp[i, 1 - j0]
    om2, om1, op1, op2 = xp[im2, j0], xp[im1, j0], xp[ip1, j0], xp[ip2, j0]
    one, j0u = np.uint64(1), np.uint64(j0)
    for kk in range(lo, hi):
        k = np.uint64(kk)
        chr_[k], cvr[k] = _color_diffs(np.float64(own[k]), oth[k + j0u - one], oth[k + j0u], own[k - one],
                                       own[k + one], om1[k], op1[k], om2[k], op2[k])
    for t in range(lo + n - hi):  # the border sites, mirrored
        k = t if t < lo else t - lo + hi
        j = 2 * k + j0
        chr_[k], cvr[k] = _color_diffs(np.float64(own[k]), oth[umirror(j - 1, w) >> one],
                                       oth[umirror(j + 1, w) >> one], own[umirror(j - 2, w) >> one],
                                       own[umirror(j + 2, w) >> one], om1[k], op1[k], om2[k], op2[k])


@njit(cache=True, inline="always")
def _gradient_row(chr_, cvr, cv2, j0, n, w, dhr, dvr):  # pragma: no cover - compiled
    """D_H = |C_H(i, j) - C_H(i, j + 2)| and D_V = |C_V(i, j) - C_V(i + 2, j)| (mirrored) of one row, into its
    zero-framed rows ``dhr``, ``dvr`` (site ``k`` at slot ``k + 1``; the frame and the slots past a short row's
    last site are zeroed). ``cv2`` is row ``i + 2``'s C_V (mirrored)."""
    right = max(min((w - 3 - j0) // 2 + 1, n), 0)  # sites with j + 2 inside the row
    dhr[0] = 0.0
    dvr[0] = 0.0
    for k in range(n):
        dvr[k + 1] = abs(cvr[k] - cv2[k])
    for k in range(right):
        dhr[k + 1] = abs(chr_[k] - chr_[k + 1])
    for k in range(right, n):
        dhr[k + 1] = abs(chr_[k] - chr_[umirror(2 * k + j0 + 2, w) >> np.uint64(1)])
    for k in range(n + 1, dhr.shape[0]):
        dhr[k] = 0.0
        dvr[k] = 0.0


@njit(cache=True, inline="always")
def _decide_row(own, chr_, cvr, dh, dv, r, j0, n, gr, hr):  # pragma: no cover - compiled
    """Classifier sums d_H, d_V (zero outside the image) at a row's R/B sites, whose framed ``dh``/``dv`` row is
    ``r``; keep G_H where d_V >= d_H, else G_V: the green ``gr`` and the choice ``hr`` (1 = horizontal). ``own``:
    the row's half row of its R/B columns (:func:`_planar`)."""
    e = (j0 + 1) // 2  # column j - 1 (a site on rows i -+ 1) is compact slot k + e of the framed arrays
    dhm2, dhm1, dh0, dhp1, dhp2 = dh[r - 2], dh[r - 1], dh[r], dh[r + 1], dh[r + 2]
    dvm2, dvm1, dv0 = dv[r - 2], dv[r - 1], dv[r]
    for k in range(n):
        # framed slots: k + 1 is column j, k is j - 2, k + 2 is j + 2
        d_h = (3.0 * (dh0[k + 1] + dh0[k]) + ((dhm2[k + 1] + dhp2[k + 1]) + (dhm2[k] + dhp2[k]))
               + (dhm1[k + e] + dhp1[k + e]))
        d_v = (3.0 * (dv0[k + 1] + dvm2[k + 1]) + ((dv0[k] + dv0[k + 2]) + (dvm2[k] + dvm2[k + 2]))
               + (dvm1[k + e] + dvm1[k + e + 1]))
        # Selects, not branches: on noisy data the decision is a coin flip.
        keep_h = d_v >= d_h
        hr[k] = np.uint8(keep_h)
        gr[k] = np.float32(np.float64(own[k]) - (chr_[k] if keep_h else cvr[k]))


@chunked(BLOCKS)
@njit(cache=True, parallel=True)
def _green_decision(xp, w, cmap, block, g1, hmask, c_t, d_t):  # pragma: no cover - compiled
    """Directional colour differences, their gradients and the decision, in blocks of ``block`` rows: each thread
    keeps a block's float64 scratch (the block's rows and 2 more on each side: ``c_t``, ``d_t`` per numba thread
    id, :func:`_thread_scratch`) small enough for its L2 cache, and recomputes the 4 halo rows instead of writing
    whole-image float64 arrays (4 of them, each twice the mosaic's size). The blocks are handed out one at a time,
    to whichever thread is free. Every value is computed as by one whole-image pass, whatever ``block`` and the
    schedule. ``xp``: the mosaic's :func:`planar` half rows (``w`` columns)."""
    h = xp.shape[0]
    wc = (w + 1) // 2
    nb = (h + block - 1) // block
    m = block + 4
    for b in prange(nb):
        t = numba.get_thread_id()
        c = c_t[t] if t < c_t.shape[0] else np.empty((2, m, wc), np.float64)  # (an id outside: none documented)
        d = d_t[t] if t < d_t.shape[0] else np.empty((2, m, wc + 2), np.float64)
        ch, cv, dh, dv = c[0], c[1], d[0], d[1]
        a0 = b * block
        a1 = min(h, a0 + block)
        top = a0 - 2  # image row of local row 0
        for r in range(max(top, 0), min(a1 + 2, h)):
            _dd_row(xp, w, cmap, r, ch[r - top], cv[r - top])
        for r in range(top, a1 + 2):
            li = r - top
            if r < 0 or r >= h:  # the classifier's zero frame
                dh[li, :] = 0.0
                dv[li, :] = 0.0
            else:
                j0, n, _ = _sites(cmap, r, w)
                # rows a1 and a1 + 1 lend only their D_H to the block (row a1 + 2 is not computed here),
                # so their D_V is taken against the row itself and never read
                below = mirror(r + 2, h) if r < a1 else r
                _gradient_row(ch[li], cv[li], cv[below - top], j0, n, w, dh[li], dv[li])
        for r in range(a0, a1):
            j0, n, _ = _sites(cmap, r, w)
            _decide_row(xp[r, j0], ch[r - top], cv[r - top], dh, dv, r - top, j0, n, g1[r], hmask[r])


@njit(cache=True, inline="always")
def _rb_green(v, l, lg, r, rg, u, ug, d, dg):  # pragma: no cover - compiled
    """R or B at a green site ``v``: along the row from ``l``, ``r`` and their greens, along the column from
    ``u``, ``d`` (the colour difference's mean added to ``v``)."""
    half = np.float32(0.5)
    return v + half * ((l - lg) + (r - rg)), v + half * ((u - ug) + (d - dg))


@njit(cache=True, inline="always")
def _green_row(xg, xrb, xgm1, xgp1, gr, gm1, gp1, goff, w, oh, ov):  # pragma: no cover - compiled
    """At a row's green sites ``j = 2 k + goff``: R/B of the row's own R/B plane from the row (``oh``) and of the
    other plane from the column (``ov``), with ``g*`` the green at R/B sites of this row and the two beside it;
    ``x*``: the :func:`planar` half rows of the row's green columns ``xg`` and R/B columns ``xrb``, and of the
    green columns of the rows above and below."""
    j0 = 1 - goff
    ng = (w - goff + 1) // 2
    lo, hi = _interior(goff, ng, w, 1)
    one, j0u, goffu = np.uint64(1), np.uint64(j0), np.uint64(goff)
    for kk in range(lo, hi):
        k = np.uint64(kk)
        # R/B slots: column j - 1 is k - j0, column j + 1 is k + goff; rows -+ 1 have theirs at k
        oh[k], ov[k] = _rb_green(xg[k], xrb[k - j0u], gr[k - j0u], xrb[k + goffu], gr[k + goffu],
                                 xgm1[k], gm1[k], xgp1[k], gp1[k])
    for t in range(lo + ng - hi):
        k = t if t < lo else t - lo + hi
        j = 2 * k + goff
        jm1, jp1 = umirror(j - 1, w), umirror(j + 1, w)
        oh[k], ov[k] = _rb_green(xg[k], xrb[jm1 >> one], gr[jm1 >> one], xrb[jp1 >> one], gr[jp1 >> one],
                                 xgm1[k], gm1[k], xgp1[k], gp1[k])


@njit(cache=True, inline="always")
def _rb_site(v, g1v, horizontal, ah, bh, ahc, bhc, aho, bho, av, bv, avc, bvc, avo, bvo, refine):
    # pragma: no cover - compiled
    """At an R/B site ``v``: the other of R/B and (with ``refine``) the refined green, from the two green
    neighbours along the chosen direction (value, their same-plane colour ``c``, their other-plane colour ``o``)."""
    half = np.float32(0.5)
    third = np.float32(1.0 / 3.0)
    a = ah if horizontal else av
    b = bh if horizontal else bv
    a_c = ahc if horizontal else avc
    b_c = bhc if horizontal else bvc
    a_o = aho if horizontal else avo
    b_o = bho if horizontal else bvo
    other = v + half * ((a_o - a_c) + (b_o - b_c))
    green = v - third * (((a_c - a) + (v - g1v)) + (b_c - b)) if refine else g1v
    return other, green


@njit(cache=True, inline="always")
def _rb_slots(k, goff):  # pragma: no cover - compiled
    """An interior R/B site ``k`` (unsigned) of a row whose green sites start at ``goff``: the green slots of its
    columns j -+ 1 (j = 2 k + 1 - goff), no mirroring, so that the loops over them vectorise; they are also the
    slots of those columns' values in the row's green half row (:func:`planar`)."""
    j0u = np.uint64(1 - goff)
    return k + j0u - np.uint64(1), k + j0u


@njit(cache=True, inline="always")
def _rb_border_slots(t, lo, hi, goff, w):  # pragma: no cover - compiled
    """The ``t``-th border R/B site of a row (outside its interior ``[lo, hi)``): ``k`` and, as :func:`_rb_slots`,
    the green slots of its columns j -+ 1, mirrored."""
    k = t if t < lo else t - lo + hi
    j = 2 * k + 1 - goff
    jm1, jp1 = umirror(j - 1, w), umirror(j + 1, w)
    one, g = np.uint64(1), np.uint64(goff)
    return k, (jm1 - g) >> one, (jp1 - g) >> one


@njit(cache=True, inline="always")
def _rb_row(xrb, xg, xrbm1, xrbp1, g1r, hr, goff, w, ah, av, ahm, avm, ahp, avp, refine, other, green):
    # pragma: no cover - compiled
    """At a row's R/B sites: the other of R/B (``other``) and the green (``green``: refined, or ``g1r``) from the
    green sites' values of this row (``ah``, ``av``: by role, see :func:`_green_row`) and of the rows above
    (``ahm``, ``avm``) and below (``ahp``, ``avp``). A neighbour row's roles are swapped: its own-plane value
    is this row's other plane. ``x*``: the :func:`planar` half rows of the row's R/B columns ``xrb`` and green
    columns ``xg``, and of the R/B columns of the rows above and below."""
    j0 = 1 - goff
    n = (w - j0 + 1) // 2
    lo, hi = _interior(j0, n, w, 1)
    for kk in range(lo, hi):
        k = np.uint64(kk)
        gl, gr_ = _rb_slots(k, goff)
        other[k], green[k] = _rb_site(xrb[k], g1r[k], hr[k] != 0, xg[gl], xg[gr_], ah[gl], ah[gr_],
                                      av[gl], av[gr_], xrbm1[k], xrbp1[k], avm[k], avp[k], ahm[k], ahp[k], refine)
    for t in range(lo + n - hi):
        k, gl, gr_ = _rb_border_slots(t, lo, hi, goff, w)
        other[k], green[k] = _rb_site(xrb[k], g1r[k], hr[k] != 0, xg[gl], xg[gr_], ah[gl], ah[gr_],
                                      av[gl], av[gr_], xrbm1[k], xrbp1[k], avm[k], avp[k], ahm[k], ahp[k], refine)


@njit(cache=True, inline="always")
def _refined_other(v, own, horizontal, ah_c, ah_o, bh_c, bh_o, av_c, av_o, bv_c, bv_o):  # pragma: no cover
    """Refining step at an R/B site: ``v`` + the mean of (other - same-plane colour) over the site (``own`` is its
    other-plane value) and its two green neighbours along the chosen direction."""
    third = np.float32(1.0 / 3.0)
    a_c = ah_c if horizontal else av_c
    a_o = ah_o if horizontal else av_o
    b_c = bh_c if horizontal else bv_c
    b_o = bh_o if horizontal else bv_o
    return v + third * (((a_o - a_c) + (own - v)) + (b_o - b_c))


@njit(cache=True, inline="always")
def _refine_row(xrb, hr, goff, w, ch, cv, chm, cvm, chp, cvp, other):  # pragma: no cover - compiled
    """Refining step at a row's R/B sites, in place on ``other``, from the refined green sites' values (``xrb``:
    the :func:`planar` half row of the row's R/B columns)."""
    j0 = 1 - goff
    n = (w - j0 + 1) // 2
    lo, hi = _interior(j0, n, w, 1)
    for kk in range(lo, hi):
        k = np.uint64(kk)
        gl, gr_ = _rb_slots(k, goff)
        other[k] = _refined_other(xrb[k], other[k], hr[k] != 0, ch[gl], cv[gl], ch[gr_], cv[gr_],
                                  cvm[k], chm[k], cvp[k], chp[k])
    for t in range(lo + n - hi):
        k, gl, gr_ = _rb_border_slots(t, lo, hi, goff, w)
        other[k] = _refined_other(xrb[k], other[k], hr[k] != 0, ch[gl], cv[gl], ch[gr_], cv[gr_],
                                  cvm[k], chm[k], cvp[k], chp[k])


@chunked(BLOCKS)
@njit(cache=True, parallel=True)
def _red_blue(xp, w, cmap, g1, hmask, refine, block, rb_t, out, post, ccm, use_ccm, table, tone):  # pragma: no cover - compiled
    """R and B everywhere and the refined green, in blocks of ``block`` rows with block-local planar rows (the
    block's rows and 3 more on each side, recomputed by neighbouring blocks) instead of four passes over the
    interleaved output: (A) R/B at green sites from ``g1``; (B) the other colour and the refined green at R/B
    sites; (C) R/B at green sites again from the refined green; (D) the refining step at R/B sites; then each
    output row is written once. ``rb_t``: six float32 block arrays per numba thread id (:func:`_thread_scratch`);
    the blocks are handed out one at a time. Every value is computed as by whole-image passes, whatever ``block``
    and the schedule. ``xp``: the mosaic's :func:`planar` half rows (``w`` columns). ``post``: the output goes
    through the display transform (``table``, ``tone``), as each value is written where there is no CCM
    (:func:`_write_row`), else each row through :func:`isp_sim._isp_kernels.post_row` (``ccm`` first) while it is
    in cache."""
    h = xp.shape[0]
    wc = (w + 1) // 2
    nb = (h + block - 1) // block
    m = block + 6
    for b in prange(nb):
        t = numba.get_thread_id()
        sc = rb_t[t] if t < rb_t.shape[0] else np.empty((6, m, wc), np.float32)  # (an id outside: none documented)
        ah, av, ch, cv, oth, g3 = sc[0], sc[1], sc[2], sc[3], sc[4], sc[5]
        a0 = b * block
        a1 = min(h, a0 + block)
        top = a0 - 3  # image row of local row 0
        halo = 3 if refine else 1
        for r in range(max(a0 - halo, 0), min(a1 + halo, h)):
            goff, _ = row_layout(cmap, np.int64(r))
            rm, rp = mirror(r - 1, h), mirror(r + 1, h)
            _green_row(xp[r, goff], xp[r, 1 - goff], xp[rm, goff], xp[rp, goff], g1[r], g1[rm], g1[rp], goff,
                       w, ah[r - top], av[r - top])
        for r in range(max(a0 - halo + 1, 0), min(a1 + halo - 1, h)):
            goff, _ = row_layout(cmap, np.int64(r))
            rm, rp = mirror(r - 1, h), mirror(r + 1, h)
            _rb_row(xp[r, 1 - goff], xp[r, goff], xp[rm, 1 - goff], xp[rp, 1 - goff], g1[r], hmask[r], goff, w,
                    ah[r - top], av[r - top], ah[rm - top], av[rm - top], ah[rp - top], av[rp - top], refine,
                    oth[r - top], g3[r - top])
        if refine:
            for r in range(max(a0 - 1, 0), min(a1 + 1, h)):
                goff, _ = row_layout(cmap, np.int64(r))
                rm, rp = mirror(r - 1, h), mirror(r + 1, h)
                _green_row(xp[r, goff], xp[r, 1 - goff], xp[rm, goff], xp[rp, goff], g3[r - top], g3[rm - top],
                           g3[rp - top], goff, w, ch[r - top], cv[r - top])
            for r in range(a0, a1):
                goff, _ = row_layout(cmap, np.int64(r))
                rm, rp = mirror(r - 1, h), mirror(r + 1, h)
                _refine_row(xp[r, 1 - goff], hmask[r], goff, w, ch[r - top], cv[r - top], ch[rm - top],
                            cv[rm - top], ch[rp - top], cv[rp - top], oth[r - top])
            fh, fv, fg = ch, cv, g3
        else:
            fh, fv, fg = ah, av, g3
        for r in range(a0, a1):
            if post and not use_ccm:  # each value through the display transform as it is written
                if tone:  # literal flags: the tone test leaves the row loops (a test per value cost 1.3 ms)
                    _write_row(xp[r], cmap, r, w, fh[r - top], fv[r - top], oth[r - top], fg[r - top], out[r],
                               True, table, True)
                else:
                    _write_row(xp[r], cmap, r, w, fh[r - top], fv[r - top], oth[r - top], fg[r - top], out[r],
                               True, table, False)
            else:
                _write_row(xp[r], cmap, r, w, fh[r - top], fv[r - top], oth[r - top], fg[r - top], out[r], False,
                           table, tone)
                if post:
                    _isp_kernels.post_row(out[r], ccm, use_ccm, table, tone)


@njit(cache=True, inline="always")
def _write_row(xpr, cmap, r, w, gh, gv, other, green, o, display, table, tone):  # pragma: no cover - compiled
    """One output row: at green sites G = x and R/B from ``gh`` (the row's R/B plane) and ``gv``; at R/B sites
    the sample, ``other`` and ``green`` (``xpr``: the row's two :func:`_planar` half rows). ``display``: each value through
    :func:`isp_sim._isp_kernels.display_value` (``table``, ``tone``) as it is written (the values of a
    :func:`~isp_sim._isp_kernels.finish` pass after it, without reading the row again)."""
    goff, nc = row_layout(cmap, np.int64(r))
    oc = np.uint64(2) - nc
    j0 = 1 - goff
    xg, xrb = xpr[goff], xpr[j0]
    if display:
        xgb, xrbb, ghb, gvb = xg.view(np.uint32), xrb.view(np.uint32), gh.view(np.uint32), gv.view(np.uint32)
        ob, grb = other.view(np.uint32), green.view(np.uint32)
        for k in range((w - goff + 1) // 2):
            j = 2 * k + goff
            o[j, 1] = _isp_kernels.display_value(xgb[k], table, tone)
            o[j, nc] = _isp_kernels.display_value(ghb[k], table, tone)
            o[j, oc] = _isp_kernels.display_value(gvb[k], table, tone)
        for k in range((w - j0 + 1) // 2):
            j = 2 * k + j0
            o[j, nc] = _isp_kernels.display_value(xrbb[k], table, tone)
            o[j, 1] = _isp_kernels.display_value(grb[k], table, tone)
            o[j, oc] = _isp_kernels.display_value(ob[k], table, tone)
        return
    for k in range((w - goff + 1) // 2):
        j = 2 * k + goff
        o[j, 1] = xg[k]
        o[j, nc] = gh[k]
        o[j, oc] = gv[k]
    for k in range((w - j0 + 1) // 2):
        j = 2 * k + j0
        o[j, nc] = xrb[k]
        o[j, 1] = green[k]
        o[j, oc] = other[k]


def demosaicing_CFA_Bayer_Menon2007(CFA: np.typing.ArrayLike, pattern: str = "RGGB", refining_step: bool = True) -> np.ndarray:
    """Demosaic a Bayer mosaic with DDFAPD (Menon, Andriani and Calvagno 2007).

    Parameters
    ----------
    CFA : array_like, shape (H, W)
        Bayer mosaic, ``H, W >= 2`` (odd sizes allowed). Float input is used
        as is (any range: the result is not clipped); integer input (e.g.
        ``uint16`` DN) is converted to ``float32`` without scaling. Must be
        finite.
    pattern : {"RGGB", "BGGR", "GRBG", "GBRG"}
        Colour filters of the top-left 2x2 cell in reading order
        (case-insensitive).
    refining_step : bool
        Apply the paper's refining step (smoothing of the colour differences
        along the chosen direction) after the decision.

    Returns
    -------
    numpy.ndarray, float32, shape (H, W, 3)
        RGB image. Measured samples are copied through, except that the
        refining step also updates G at R/B sites (as in the paper).

    Raises
    ------
    InputError
        ``CFA`` not 2-D, smaller than 2x2, or not finite; unknown ``pattern``.
    InputTypeError
        ``CFA`` of a non-numeric dtype, ``pattern`` not a string, or
        ``refining_step`` not a bool.

    Notes
    -----
    The horizontal/vertical decision is computed in float64 (so that it
    follows colour-demosaicing's float64 reference even where the two
    classifier sums nearly tie); everything else in float32. Deterministic
    and bit-identical for any numba thread count.

    Border handling is colour-demosaicing's, so the two agree on the whole
    image: interpolation filters use whole-sample symmetric extension
    (SciPy ``mode="mirror"``; row -1 is row 1, which keeps the Bayer phase)
    and the classifier window of the gradients ``D_H``, ``D_V`` is zero
    outside the image (SciPy ``mode="constant"``). The classifier window is
    colour-demosaicing's: ``d_H(i, j)`` sums ``D_H`` with weight 3 at
    ``(i, j)`` and ``(i, j-2)`` and weight 1 at ``(i+-2, j)``,
    ``(i+-2, j-2)`` and ``(i+-1, j-1)``; ``d_V`` uses the transposed window.
    Ties (``d_V == d_H``, e.g. in flat areas) keep the horizontal estimate.

    Scratch memory: a half-width float32 green plane, a half-width byte
    mask and the mosaic's even and odd columns as contiguous half rows
    (1.6x the size of the float32 mosaic), plus about 1 MB of float64 row
    blocks per numba thread.

    References
    ----------
    Menon, D., Andriani, S., & Calvagno, G. (2007). Demosaicing with
    directional filtering and a posteriori decision. IEEE Transactions on
    Image Processing, 16(1), 132-141. doi:10.1109/TIP.2006.884928

    Examples
    --------
    >>> import numpy as np
    >>> from isp_sim.demosaic import demosaicing_CFA_Bayer_Menon2007
    >>> CFA = np.full((4, 5), 0.4, dtype=np.float32)
    >>> CFA[:, 3:] = 0.8  # a vertical edge
    >>> RGB = demosaicing_CFA_Bayer_Menon2007(CFA, "BGGR")
    >>> RGB.shape, RGB.dtype
    ((4, 5, 3), dtype('float32'))
    >>> RGB[1, :, 1].astype(float).round(4).tolist()  # green along a row: the edge stays sharp
    [0.4, 0.4, 0.4, 0.8, 0.8]
    """
    x = as_cfa_float32(CFA)
    cmap = pattern_map(pattern)
    if not isinstance(refining_step, (bool, np.bool_)):
        raise InputTypeError(f"refining_step must be a bool, got {type(refining_step).__name__}")
    return _menon(planar(x), x.shape[1], cmap, bool(refining_step), None)


_NO_CCM = np.eye(3)
_NO_TABLE = np.zeros(2, np.float32)


def planar_scratch(h: int, w: int) -> np.ndarray:
    """The (reused) scratch array for an ``h x w`` mosaic's :func:`planar` half rows, ``(h, 2, (w + 1) // 2)``
    float32, for a caller that fills it itself (``process``: normalised from the raw DN)."""
    return scratch("menon.planar", (h, 2, (w + 1) // 2), np.float32)


def planar(x: np.ndarray) -> np.ndarray:
    """A checked float32 mosaic ``x`` as its rows' even and odd columns, ``xp[i, p, k] = x[i, 2 k + p]`` (a half
    row's slot past the last odd column is 0), in :func:`planar_scratch`: the layout the kernels read."""
    xp = planar_scratch(*x.shape)
    _planar(x, xp)
    return xp


def menon_finished(xp: np.ndarray, w: int, cmap: np.ndarray, ccm: np.ndarray | None, table: np.ndarray,
                   tone: bool) -> np.ndarray:
    """Menon 2007 (refining step on) of a checked float32 mosaic of ``w`` columns given as its :func:`planar` half
    rows ``xp`` (``cmap`` from ``pattern_map``), each output row then through the CCM (``None``: none) and the
    display transform (:func:`isp_sim._isp_kernels.finish`'s ``table``, ``tone``) while it is in cache: the values
    of the three whole-image passes, without two more passes over the 12-byte-per-pixel output."""
    return _menon(xp, w, cmap, True, (ccm, table, bool(tone)))


def _block_rows(wc: int) -> int:
    """Rows per block for half rows of ``wc`` columns: a thread's block arrays (four float64 arrays of block + 4
    rows of wc + 2 in the green pass) in about 768 KiB, 16 rows at least; the red/blue pass keeps six float32
    arrays of block + 6 rows."""
    return max(16, _BLOCK_BYTES // (32 * (wc + 2)) - 4)


def _thread_scratch(wc: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block arrays of :func:`_green_decision` (``c_t``, ``d_t``: float64, block + 4 rows) and :func:`_red_blue`
    (``rb_t``: float32, block + 6 rows), one set per numba thread id (``numba.get_num_threads()`` of them), reused
    by the calling Python thread's next call. numba's thread ids are unique among the threads running one parallel
    loop; nothing the blocks call starts or waits on another parallel loop, so no two blocks running at once share
    arrays. Every block writes each row and slot of its arrays before reading it (tested with arrays full of NaN)."""
    n = numba.get_num_threads()
    return (scratch("menon.c", (n, 2, block + 4, wc), np.float64),
            scratch("menon.d", (n, 2, block + 4, wc + 2), np.float64),
            scratch("menon.rb", (n, 6, block + 6, wc), np.float32))


def _menon(xp, w, cmap, refine, post):
    h, wc = xp.shape[0], xp.shape[2]
    g1 = scratch("menon.g1", (h, wc), np.float32)
    hmask = scratch("menon.hmask", (h, wc), np.uint8)
    out = np.empty((h, w, 3), dtype=np.float32)
    block = _block_rows(wc)
    c_t, d_t, rb_t = _thread_scratch(wc, block)
    _green_decision(xp, w, cmap, block, g1, hmask, c_t, d_t)
    ccm, table, tone = (None, _NO_TABLE, False) if post is None else post
    _red_blue(xp, w, cmap, g1, hmask, refine, block, rb_t, out, post is not None, _NO_CCM if ccm is None else ccm,
              ccm is not None, table, tone)
    return out
