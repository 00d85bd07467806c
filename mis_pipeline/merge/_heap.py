"""Indexed min-heap of merge candidates for the Ward kernel (numba, called by it).

One entry per owner node (a live cluster): ``(key: float64, pair: int64)`` in parallel arrays
``hk``, ``hp`` with the owner in ``hn`` and ``pos[node]`` the entry's index (-1 when absent).
``pair = hi << 32 | lo`` for node ids ``hi > lo``, so comparing pairs as integers compares
``(hi, lo)`` lexicographically and the order ``(key, hi, lo)`` costs one float and at most
one integer comparison. Entries are updated or removed in place, so no stale entry is ever
pushed or popped. Binary: measured, a 4-ary heap was no faster here.

(After editing this module, clear the numba cache: see the note in ``_lanes.py``.)

Assumes room for every insert (at most one entry per node) and keys that are never NaN.
Nothing is checked.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["heap_before", "iheap_set", "iheap_remove", "iheap_rename", "iheapify"]


@njit(cache=True)
def heap_before(k1, p1, k2, p2):
    """``(k1, p1) < (k2, p2)`` lexicographically (without short-circuit branches: the
    outcome is data-dependent, and a select costs less than a mispredicted branch)."""
    return (k1 < k2) | ((k1 == k2) & (p1 < p2))


@njit(cache=True)
def _iswap_in(hk, hp, hn, pos, dst, key, pair, node):
    hk[dst] = key
    hp[dst] = pair
    hn[dst] = node
    pos[node] = dst


@njit(cache=True)
def _isift_up(hk, hp, hn, pos, i):
    key = hk[i]
    pair = hp[i]
    node = hn[i]
    while i > 0:
        up = (i - 1) >> 1
        if heap_before(key, pair, hk[up], hp[up]):
            _iswap_in(hk, hp, hn, pos, i, hk[up], hp[up], hn[up])
            i = up
        else:
            break
    _iswap_in(hk, hp, hn, pos, i, key, pair, node)


@njit(cache=True)
def _isift_down(hk, hp, hn, pos, size, i):
    key = hk[i]
    pair = hp[i]
    node = hn[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size:
            c += np.int64(heap_before(hk[c + 1], hp[c + 1], hk[c], hp[c]))
        if heap_before(hk[c], hp[c], key, pair):
            _iswap_in(hk, hp, hn, pos, i, hk[c], hp[c], hn[c])
            i = c
        else:
            break
    _iswap_in(hk, hp, hn, pos, i, key, pair, node)


@njit(cache=True)
def iheap_set(hk, hp, hn, pos, size, node, key, pair):
    """Insert ``node``'s entry ``(key, pair)`` or change it in place; returns the new size."""
    i = pos[node]
    if i < 0:
        _iswap_in(hk, hp, hn, pos, size, key, pair, node)
        _isift_up(hk, hp, hn, pos, size)
        return size + 1
    if heap_before(key, pair, hk[i], hp[i]):
        hk[i] = key
        hp[i] = pair
        _isift_up(hk, hp, hn, pos, i)
    else:
        hk[i] = key
        hp[i] = pair
        _isift_down(hk, hp, hn, pos, size, i)
    return size


@njit(cache=True)
def iheap_remove(hk, hp, hn, pos, size, node):
    """Remove ``node``'s entry if present; returns the new size."""
    i = pos[node]
    if i < 0:
        return size
    pos[node] = -1
    size -= 1
    if i == size:
        return size
    key = hk[size]
    pair = hp[size]
    last = hn[size]
    _iswap_in(hk, hp, hn, pos, i, key, pair, last)
    if i > 0 and heap_before(key, pair, hk[(i - 1) >> 1], hp[(i - 1) >> 1]):
        _isift_up(hk, hp, hn, pos, i)
    else:
        _isift_down(hk, hp, hn, pos, size, i)
    return size


@njit(cache=True)
def iheap_rename(hn, pos, old, new):
    """Hand ``old``'s entry, unchanged, to node ``new`` (which has none)."""
    e = pos[old]
    pos[old] = -1
    pos[new] = e
    hn[e] = new


@njit(cache=True)
def iheapify(hk, hp, hn, pos, size):
    """Make entries ``0..size-1`` a heap in O(size) and set ``pos`` for their owners."""
    for i in range(size):
        pos[hn[i]] = i
    for i in range((size - 2) // 2, -1, -1):
        _isift_down(hk, hp, hn, pos, size, i)
