"""Compiled exact squared Euclidean distance transform (imported on first use by the clicker).

Meijster, Roerdink and Hesselink (2000), "A general algorithm for computing distance
transforms in linear time": a column pass (distance to the nearest zero in the same column)
then a row pass over the lower envelope of parabolas, in integer arithmetic only. Every value
is an exact integer, so equal distances compare equal wherever the arrays sit in memory (the
reason this exists: OpenCV's float32 transform differs by 1 ULP between calls, which moved
tied clicks between runs). :func:`mis_pipeline.evaluate.clicker._squared_edt_reference` is the
plain reference it is tested against.

The kernel trusts its input: ``mask`` is a C-contiguous (H, W) uint8 array whose every column
holds at least one zero (the clicker's 1-px zero pad guarantees it), H, W >= 1.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def squared_edt_kernel(mask):  # pragma: no cover - compiled
    h, w = mask.shape
    g = np.empty((h, w), np.int64)  # g[r, c]: rows to the nearest zero in column c
    big = h + w + 1
    for c in range(w):
        g[0, c] = 0 if mask[0, c] == 0 else big
    for r in range(1, h):
        for c in range(w):
            g[r, c] = 0 if mask[r, c] == 0 else g[r - 1, c] + 1
    for r in range(h - 2, -1, -1):
        for c in range(w):
            if g[r + 1, c] + 1 < g[r, c]:
                g[r, c] = g[r + 1, c] + 1
    out = np.empty((h, w), np.int64)
    s = np.empty(w, np.int64)  # columns whose parabolas form the lower envelope
    t = np.empty(w, np.int64)  # first column where each of them is the minimum
    for r in range(h):
        q = 0
        s[0] = 0
        t[0] = 0
        for u in range(1, w):
            gu = g[r, u]
            while q >= 0:
                gs = g[r, s[q]]
                if (t[q] - s[q]) ** 2 + gs * gs > (t[q] - u) ** 2 + gu * gu:
                    q -= 1
                else:
                    break
            if q < 0:
                q = 0
                s[0] = u
            else:
                si = s[q]
                gs = g[r, si]
                # Sep(si, u) >= t[q] >= 0 here, so floor and truncating division agree.
                sep = (u * u - si * si + gu * gu - gs * gs) // (2 * (u - si))
                if sep + 1 < w:
                    q += 1
                    s[q] = u
                    t[q] = sep + 1
        for u in range(w - 1, -1, -1):
            si = s[q]
            gs = g[r, si]
            out[r, u] = (u - si) ** 2 + gs * gs
            if u == t[q]:
                q -= 1
    return out
