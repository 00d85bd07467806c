"""Min-heap of merge candidates for the Ward kernel (numba, imported with it).

An entry is ``(key: float64, pair: int64)`` held in two parallel arrays ``hk``, ``hp`` (no
tuple objects, no per-entry allocation), with ``pair = hi << 32 | lo`` for node ids
``hi > lo``: comparing pairs as integers compares ``(hi, lo)`` lexicographically, so the
order ``(key, hi, lo)`` costs one float and at most one integer comparison.

The heap is binary (measured: a 4-ary heap, half as deep but with three comparisons per
level, was no faster here). Removal uses Floyd's variant: the hole walks down along the
smaller children to the bottom, the last entry is put there and sifted up (it almost always
belongs near the bottom), about half the comparisons of a plain sift-down; most pops are
stale entries (lazy deletion), so pops dominate the heap's cost.

(After editing this module, clear the numba cache: see the note in ``_lanes.py``.)

Assumes ``0 <= size <= len(hk)`` and, for pushes, room for one more entry; keys are never
NaN. Nothing is checked.
"""

from __future__ import annotations

from numba import njit

__all__ = ["heap_before", "heap_sift_up", "heap_pop", "heapify"]

_D = 2  # arity


@njit(cache=True, inline="always")
def heap_before(k1, p1, k2, p2):
    """``(k1, p1) < (k2, p2)`` lexicographically."""
    return k1 < k2 or (k1 == k2 and p1 < p2)


@njit(cache=True, inline="always")
def _min_child(hk, hp, first, size):
    best = first
    end = min(first + _D, size)
    for c in range(first + 1, end):
        if heap_before(hk[c], hp[c], hk[best], hp[best]):
            best = c
    return best


@njit(cache=True, inline="always")
def heap_sift_up(hk, hp, pos):
    """Restore the heap after the entry at ``pos`` decreased (or was appended there). The
    entry moves up through a hole: one write per level instead of a swap."""
    key = hk[pos]
    pair = hp[pos]
    while pos > 0:
        up = (pos - 1) // _D
        if heap_before(key, pair, hk[up], hp[up]):
            hk[pos] = hk[up]
            hp[pos] = hp[up]
            pos = up
        else:
            break
    hk[pos] = key
    hp[pos] = pair


@njit(cache=True, inline="always")
def _sift_down(hk, hp, size, pos):
    key = hk[pos]
    pair = hp[pos]
    while True:
        first = _D * pos + 1
        if first >= size:
            break
        c = _min_child(hk, hp, first, size)
        if heap_before(hk[c], hp[c], key, pair):
            hk[pos] = hk[c]
            hp[pos] = hp[c]
            pos = c
        else:
            break
    hk[pos] = key
    hp[pos] = pair


@njit(cache=True, inline="always")
def heap_pop(hk, hp, size):
    """Remove the smallest entry (read it from ``hk[0], hp[0]`` first); returns the new size."""
    size -= 1
    key = hk[size]
    pair = hp[size]
    pos = 0
    while True:
        first = _D * pos + 1
        if first >= size:
            break
        c = _min_child(hk, hp, first, size)
        hk[pos] = hk[c]
        hp[pos] = hp[c]
        pos = c
    hk[pos] = key
    hp[pos] = pair
    heap_sift_up(hk, hp, pos)
    return size


@njit(cache=True)
def heapify(hk, hp, size):
    """Make ``hk[:size], hp[:size]`` a heap in O(size)."""
    for pos in range((size - 2) // _D, -1, -1):
        _sift_down(hk, hp, size, pos)
