"""Numba kernel of the connectivity-constrained Ward merge on a 4-neighbour patch grid.

Imported lazily by :func:`mis_pipeline.merge.ward_grid`: importing this module imports numba,
and compilation happens on the first call (cached on disk with ``cache=True``).

The kernel reproduces ``sklearn.cluster.ward_tree(X, connectivity=grid_to_graph(h, w))``
merge for merge, not only as a set of clusters:

* Criterion. For adjacent clusters ``a`` and ``b`` it computes, in float64, with exactly the
  operations of scikit-learn's ``_hierarchical_fast.compute_ward_dist``::

      w    = (s_a * s_b) / (s_a + s_b)                  # s: cluster sizes (exact integers)
      pa   = sum_f (m_a[f] / s_a - m_b[f] / s_b) ** 2    # m: float64 feature sums; the sum
                                                        # runs sequentially f = 0 .. C-1
      cost = pa * w

  with ``m_k = m_i + m_j`` as scikit-learn updates its moments. ``m_a[f] / s_a`` is cached
  once per cluster (a division yields the same bits whenever it is evaluated). Nothing is
  reassociated or fused (no fastmath, no FMA contraction), so the criterion is bit-identical
  to scikit-learn's. The value *is* MIS eq. 4, ``s_a s_b / (s_a + s_b) ||mu_a - mu_b||^2``;
  scikit-learn's ``return_distance`` reports ``sqrt(2 * cost)`` (scipy's Ward distance).
* Tie-breaking. Among the adjacent pairs of live clusters, the pair with the smallest key
  ``(cost, hi, lo)`` merges, ``hi > lo`` being the two node ids, keys compared
  lexicographically. scikit-learn's ``heapq`` of ``(inertia, i, j)`` tuples (always pushed
  with ``i > j``) pops in this order too, so exact ties (duplicated feature vectors,
  piecewise-constant features) resolve identically.
* Output. Merge ``s`` creates node ``n + s`` and ``children[s] = (lo, hi)``, scikit-learn's
  ``children_`` convention.

Data structures, each chosen for speed or memory (details in the comments below): float64
sums and centroids for internal clusters only, in ``n // 2`` reusable slots; one unordered
neighbour list per live cluster in a shared int32 pool; a binary min-heap of ``(cost, hi, lo)``
held as parallel arrays, with lazy deletion and purging. All buffers are sized up front from
``n`` so that no array is reallocated inside the merge loop (numba reference-counts arrays
that are rebound, and atomic reference counting in the hot loop costs more than the heap).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._lanes import LANES, sqdist_row_rows, sqdist_rows_rows

__all__ = ["ward_grid_kernel", "ward_pair_criterion", "LEAF_ROWS"]

# Scratch rows at the end of the centroid array W, where the leaf neighbours of a new cluster
# are converted to float64 so that leaves and internal clusters share one distance routine.
LEAF_ROWS = LANES


# --------------------------------------------------------------------------- heap
# Entries are (cost: float64, pair: int64) with pair = hi << 32 | lo, so comparing pairs as
# integers compares (hi, lo) lexicographically: one integer compare instead of two.
@njit(cache=True, inline="always")
def _before(k1, p1, k2, p2):
    return k1 < k2 or (k1 == k2 and p1 < p2)


@njit(cache=True, inline="always")
def _sift_up(hk, hp, pos):
    # Move a hole up instead of swapping: one write per level.
    key = hk[pos]
    pair = hp[pos]
    while pos > 0:
        up = (pos - 1) >> 1
        if _before(key, pair, hk[up], hp[up]):
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
        c = 2 * pos + 1
        if c >= size:
            break
        if c + 1 < size and _before(hk[c + 1], hp[c + 1], hk[c], hp[c]):
            c += 1
        if _before(hk[c], hp[c], key, pair):
            hk[pos] = hk[c]
            hp[pos] = hp[c]
            pos = c
        else:
            break
    hk[pos] = key
    hp[pos] = pair


@njit(cache=True, inline="always")
def _pop(hk, hp, size):
    """Remove the root of a heap of ``size`` entries (Floyd's variant: walk the hole down
    along the smaller children, then sift the last entry up from there; the last entry
    almost always belongs near the bottom, so this saves about half the comparisons)."""
    size -= 1
    key = hk[size]
    pair = hp[size]
    pos = 0
    while True:
        c = 2 * pos + 1
        if c >= size:
            break
        if c + 1 < size and _before(hk[c + 1], hp[c + 1], hk[c], hp[c]):
            c += 1
        hk[pos] = hk[c]
        hp[pos] = hp[c]
        pos = c
    hk[pos] = key
    hp[pos] = pair
    _sift_up(hk, hp, pos)
    return size


@njit(cache=True)
def _heapify(hk, hp, size):
    for pos in range(size // 2 - 1, -1, -1):
        _sift_down(hk, hp, size, pos)


# --------------------------------------------------------------------------- distances
@njit(cache=True)
def ward_pair_criterion(sums_a, size_a, sums_b, size_b):
    """The merge criterion of two clusters from their float64 feature sums and sizes.

    Same operations as the kernel and as scikit-learn's ``compute_ward_dist``; exposed for
    tests. ``sums_*``: (C,) float64; ``size_*``: float. Returns a float64.
    """
    pa = 0.0
    for f in range(sums_a.shape[0]):
        d = sums_a[f] / size_a - sums_b[f] / size_b
        pa += d * d
    return pa * ((size_a * size_b) / (size_a + size_b))


# --------------------------------------------------------------------------- kernel
@njit(cache=True, nogil=True)
def ward_grid_kernel(X, grid_h, grid_w, S, W):
    """Connectivity-constrained Ward tree of a ``grid_h x grid_w`` grid (see module doc).

    Assumes checked input (the public wrapper :func:`mis_pipeline.merge.ward_grid` does the
    checking): ``X`` is a C-contiguous ``(grid_h * grid_w, C)`` float32 or float64 array of
    finite values small enough that float64 sums of squares cannot overflow, rows in
    row-major grid order (``r * grid_w + c``); ``grid_h, grid_w >= 1``, ``C >= 1`` and
    ``grid_h * grid_w >= 2``. Nothing is checked here.

    Returns ``(children (n-1, 2) int32, cost (n-1,) float64)``.
    """
    n = grid_h * grid_w
    n_feat = X.shape[1]
    n_nodes = 2 * n - 1
    n_edges = grid_h * (grid_w - 1) + grid_w * (grid_h - 1)

    children = np.empty((n - 1, 2), dtype=np.int32)
    cost = np.empty(n - 1, dtype=np.float64)

    # Cluster sizes as float64, exactly scikit-learn's moments_1 (small exact integers).
    size = np.empty(n_nodes, dtype=np.float64)
    size[:n] = 1.0
    alive = np.zeros(n_nodes, dtype=np.bool_)
    alive[:n] = True

    # Internal clusters' float64 sums (S) and centroids (W) live in slots. Live internal
    # clusters are disjoint with >= 2 leaves each, so n // 2 slots always suffice, and a
    # merge reuses a child's slot. Leaves need no slot: their sum and centroid are their
    # input row. Extra memory: 2 * (n/2) * C float64, i.e. 2x a float32 feature array.
    # W has LEAF_ROWS more rows where leaf neighbours are converted to float64.
    n_slots = S.shape[0]
    slot_of = np.full(n_nodes, -1, dtype=np.int32)
    free_slots = np.empty(n_slots, dtype=np.int32)
    for s in range(n_slots):
        free_slots[s] = n_slots - 1 - s
    n_free = n_slots

    # Adjacency: the neighbours of node v are pool[adj_off[v] : adj_off[v] + adj_len[v]].
    # A merge rewrites i/j into k inside each neighbour's list (which never grows), so only
    # the new cluster needs a fresh block, appended at the end. Blocks sit in node-id order,
    # so the pool compacts in place. A merge removes >= 1 adjacency and adds none: live
    # lists never exceed 2 * n_edges entries, so 4 * n_edges is room enough after compaction.
    adj_off = np.zeros(n_nodes, dtype=np.int64)
    adj_len = np.zeros(n_nodes, dtype=np.int32)
    pool = np.empty(4 * n_edges + 16, dtype=np.int32)
    pool_end = 0
    for r in range(grid_h):
        for c in range(grid_w):
            v = r * grid_w + c
            adj_off[v] = pool_end
            if r > 0:
                pool[pool_end] = v - grid_w
                pool_end += 1
            if c > 0:
                pool[pool_end] = v - 1
                pool_end += 1
            if c + 1 < grid_w:
                pool[pool_end] = v + 1
                pool_end += 1
            if r + 1 < grid_h:
                pool[pool_end] = v + grid_w
                pool_end += 1
            adj_len[v] = pool_end - adj_off[v]

    # Heap with lazy deletion. Live entries (adjacent live pairs) never exceed n_edges; when
    # a push would overflow, stale entries are purged, which always frees enough room.
    heap_cap = 2 * n_edges + n + 64
    hk = np.empty(heap_cap, dtype=np.float64)
    hp = np.empty(heap_cap, dtype=np.int64)
    e_hi = np.empty(n_edges, dtype=np.int32)
    e_lo = np.empty(n_edges, dtype=np.int32)
    e = 0
    for v in range(n):
        r = v // grid_w
        c = v - r * grid_w
        if r > 0:
            e_hi[e] = v
            e_lo[e] = v - grid_w
            e += 1
        if c > 0:
            e_hi[e] = v
            e_lo[e] = v - 1
            e += 1
    ra = np.empty(LANES, dtype=np.int32)  # scratch: the rows of one batch of distances
    rb = np.empty(LANES, dtype=np.int32)
    dist = np.empty(LANES, dtype=np.float64)
    for g in range(0, n_edges, LANES):
        cnt = min(LANES, n_edges - g)
        for q in range(LANES):
            src = g + q if q < cnt else g  # pad a short batch with a repeat (result unused)
            ra[q] = e_hi[src]
            rb[q] = e_lo[src]
        sqdist_rows_rows(X, ra, X, rb, dist)
        for q in range(cnt):
            hk[g + q] = dist[q] * 0.5  # two leaves: w = (1 * 1) / (1 + 1), cost = pa * w
    for t in range(n_edges):
        hp[t] = (np.int64(e_hi[t]) << 32) | np.int64(e_lo[t])
    heap_size = n_edges
    _heapify(hk, hp, heap_size)

    mark = np.full(n_nodes, -1, dtype=np.int32)  # dedupes the new cluster's neighbours
    mask32 = np.int64(0xFFFFFFFF)

    for step in range(n - 1):
        k = n + step
        # ---- pop the smallest live pair, skipping stale entries (lazy deletion)
        while True:
            inert = hk[0]
            pair = hp[0]
            heap_size = _pop(hk, hp, heap_size)
            i = np.int64(pair >> 32)
            j = np.int64(pair & mask32)
            if alive[i] and alive[j]:
                break
        children[step, 0] = j
        children[step, 1] = i
        cost[step] = inert
        size[k] = size[i] + size[j]
        sz = size[k]

        # ---- sums and centroid of k: exactly m_k = m_i + m_j, then m_k / s_k
        si = slot_of[i]
        sj = slot_of[j]
        if si >= 0:
            sk = si
            if sj >= 0:
                for f in range(n_feat):
                    S[sk, f] += S[sj, f]
                free_slots[n_free] = sj
                n_free += 1
            else:
                for f in range(n_feat):
                    S[sk, f] += np.float64(X[j, f])
        elif sj >= 0:
            sk = sj
            for f in range(n_feat):
                S[sk, f] += np.float64(X[i, f])
        else:
            n_free -= 1
            sk = free_slots[n_free]
            for f in range(n_feat):
                S[sk, f] = np.float64(X[i, f]) + np.float64(X[j, f])
        for f in range(n_feat):
            W[sk, f] = S[sk, f] / sz
        slot_of[k] = sk
        slot_of[i] = -1
        slot_of[j] = -1

        # ---- neighbour list of k: (N(i) | N(j)) - {i, j}, appended to the pool
        need = adj_len[i] + adj_len[j]
        if pool_end + need > pool.shape[0]:
            p = 0
            for v in range(k):  # i and j are still alive here and keep their lists
                if alive[v]:
                    o = adj_off[v]
                    ln = adj_len[v]
                    for q in range(ln):  # destination <= source: safe in place
                        pool[p + q] = pool[o + q]
                    adj_off[v] = p
                    p += ln
            pool_end = p
        ok = pool_end
        adj_off[k] = ok
        deg = 0
        mark[i] = k
        mark[j] = k
        for side in range(2):
            src = i if side == 0 else j
            o = adj_off[src]
            for q in range(adj_len[src]):
                t = pool[o + q]
                if mark[t] != k:
                    mark[t] = k
                    pool[ok + deg] = t
                    deg += 1
        adj_len[k] = deg
        pool_end += deg
        alive[i] = False
        alive[j] = False
        alive[k] = True

        # ---- in each neighbour's list, i and/or j become k (the list never grows)
        for q in range(deg):
            t = pool[ok + q]
            o = adj_off[t]
            ln = adj_len[t]
            found = False
            p = 0
            while p < ln:
                u = pool[o + p]
                if u == i or u == j:
                    if found:
                        ln -= 1
                        pool[o + p] = pool[o + ln]
                        continue
                    pool[o + p] = k
                    found = True
                p += 1
            adj_len[t] = ln

        # ---- make room in the heap: purge stale entries (always frees enough, see above)
        if heap_size + deg > heap_cap:
            live_e = 0
            for t in range(heap_size):
                pr = hp[t]
                if alive[pr >> 32] and alive[pr & mask32]:
                    hk[live_e] = hk[t]
                    hp[live_e] = pr
                    live_e += 1
            heap_size = live_e
            _heapify(hk, hp, heap_size)

        # ---- criteria of k against its neighbours, pushed as (cost, k, t); k > t always.
        # Batches of LANES neighbours share one SIMD pass (see _lanes.py). A leaf's row is
        # converted to float64 into W's scratch rows so leaves and internal clusters go
        # through the same gather; a short batch is padded with a repeat (result unused).
        for g in range(0, deg, LANES):
            cnt = min(LANES, deg - g)
            for q in range(LANES):
                t = pool[ok + g + (q if q < cnt else 0)]
                if t < n:
                    rr = n_slots + q
                    if q < cnt:
                        for f in range(n_feat):
                            W[rr, f] = X[t, f]
                        rb[q] = rr
                    else:
                        rb[q] = rb[0]
                else:
                    rb[q] = slot_of[t]
            sqdist_row_rows(W, sk, W, rb, dist)
            for q in range(cnt):
                t = pool[ok + g + q]
                st = size[t]
                # exactly scikit-learn's (m1[k] * m1[t]) / (m1[k] + m1[t]), then pa * w
                hk[heap_size] = dist[q] * ((sz * st) / (sz + st))
                hp[heap_size] = (np.int64(k) << 32) | np.int64(t)
                heap_size += 1
                _sift_up(hk, hp, heap_size - 1)

    return children, cost
