"""Indexed min-heap of merge candidates for the Ward kernel (numba, called by it).

One entry per owner node (a live cluster): ``(key: float64, code: int64)`` in parallel arrays
``hk``, ``hp``, and ``pos[node]`` the entry's index (-1 when absent). The code packs the pair
and its owner: ``code = hi << 33 | lo << 1 | (owner == lo)`` for node ids ``hi > lo``, so
comparing codes as integers compares ``(hi, lo)`` lexicographically (the owner bit only
orders the two entries of one pair), and the order ``(key, hi, lo)`` costs one float and at
most one integer comparison. The owner is decoded from the code, so a sift moves two words per
level and keeps ``pos`` up to date without loading an owner array (that load was a cache miss
per level on large heaps). Node ids must be below ``2**30``. Entries are updated or removed in
place, so no stale entry is ever pushed or popped. Binary: measured, a 4-ary heap was no
faster here.

(After editing this module, clear the numba cache: see the note in ``_lanes.py``.)

Assumes room for every insert (at most one entry per node) and keys that are never NaN.
Nothing is checked.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "heap_before",
    "pair_code",
    "code_hi",
    "code_lo",
    "iheap_set",
    "iheap_remove",
    "iheapify",
]

_MASK30 = np.int64((1 << 30) - 1)


@njit(cache=True)
def pair_code(a, b, owner):
    """The code of the pair of nodes ``a != b`` in ``owner``'s entry (``owner`` is one of
    them)."""
    hi = np.int64(max(a, b))
    lo = np.int64(min(a, b))
    return (hi << 33) | (lo << 1) | np.int64(owner == lo)


@njit(cache=True)
def code_hi(code):
    """The larger node id of a pair code."""
    return code >> 33


@njit(cache=True)
def code_lo(code):
    """The smaller node id of a pair code."""
    return (code >> 1) & _MASK30


@njit(cache=True)
def _owner(code):
    """The node whose entry holds ``code``."""
    return code_lo(code) if (code & 1) != 0 else code_hi(code)


@njit(cache=True)
def heap_before(k1, p1, k2, p2):
    """``(k1, p1) < (k2, p2)`` lexicographically (without short-circuit branches: the
    outcome is data-dependent, and a select costs less than a mispredicted branch)."""
    return (k1 < k2) | ((k1 == k2) & (p1 < p2))


@njit(cache=True)
def _isift_up(hk, hp, pos, i):
    key = hk[i]
    code = hp[i]
    while i > 0:
        up = (i - 1) >> 1
        if heap_before(key, code, hk[up], hp[up]):
            hk[i] = hk[up]
            hp[i] = hp[up]
            pos[_owner(hp[up])] = i
            i = up
        else:
            break
    hk[i] = key
    hp[i] = code
    pos[_owner(code)] = i


@njit(cache=True)
def _isift_down(hk, hp, pos, size, i):
    key = hk[i]
    code = hp[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size:
            c += np.int64(heap_before(hk[c + 1], hp[c + 1], hk[c], hp[c]))
        if heap_before(hk[c], hp[c], key, code):
            hk[i] = hk[c]
            hp[i] = hp[c]
            pos[_owner(hp[c])] = i
            i = c
        else:
            break
    hk[i] = key
    hp[i] = code
    pos[_owner(code)] = i


@njit(cache=True)
def iheap_set(hk, hp, pos, size, node, key, code):
    """Insert ``node``'s entry ``(key, code)`` (``code`` owned by ``node``) or change it in
    place; returns the new size."""
    i = pos[node]
    if i < 0:
        hk[size] = key
        hp[size] = code
        _isift_up(hk, hp, pos, size)
        return size + 1
    if heap_before(key, code, hk[i], hp[i]):
        hk[i] = key
        hp[i] = code
        _isift_up(hk, hp, pos, i)
    else:
        hk[i] = key
        hp[i] = code
        _isift_down(hk, hp, pos, size, i)
    return size


@njit(cache=True)
def iheap_remove(hk, hp, pos, size, node):
    """Remove ``node``'s entry if present; returns the new size."""
    i = pos[node]
    if i < 0:
        return size
    pos[node] = -1
    size -= 1
    if i == size:
        return size
    key = hk[size]
    code = hp[size]
    hk[i] = key
    hp[i] = code
    if i > 0 and heap_before(key, code, hk[(i - 1) >> 1], hp[(i - 1) >> 1]):
        _isift_up(hk, hp, pos, i)
    else:
        _isift_down(hk, hp, pos, size, i)
    return size


@njit(cache=True)
def iheapify(hk, hp, pos, size):
    """Make entries ``0..size-1`` a heap in O(size) and set ``pos`` for their owners."""
    for i in range(size):
        pos[_owner(hp[i])] = i
    for i in range((size - 2) // 2, -1, -1):
        _isift_down(hk, hp, pos, size, i)
