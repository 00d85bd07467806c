"""Numba kernel of the connectivity-constrained Ward merge on a 4-neighbour patch grid.

Imported lazily by :func:`mis_pipeline.merge.ward_grid`: importing this module imports numba,
and compilation happens on the first call (cached on disk with ``cache=True``). numba keys
that cache on this file alone: after editing ``_lanes.py``, ``_ir.py`` or ``_heap.py``
(which this kernel calls), delete ``__pycache__/*.nb[ic]`` beside them, or a stale kernel
may be loaded (installing a new version rewrites this file too, which invalidates the cache).

The kernel reproduces ``sklearn.cluster.ward_tree(X, connectivity=grid_to_graph(h, w))``
merge for merge, not only as a set of clusters:

* Criterion. scikit-learn's ``_hierarchical_fast.compute_ward_dist`` for adjacent clusters
  ``a`` and ``b``, in float64::

      w    = (s_a * s_b) / (s_a + s_b)                  # s: cluster sizes (exact integers)
      pa   = sum_f (m_a[f] / s_a - m_b[f] / s_b) ** 2    # m: float64 feature sums; the sum
                                                        # runs sequentially f = 0 .. C-1
      cost = pa * w

  with ``m_k = m_i + m_j`` as scikit-learn updates its moments. The value *is* MIS eq. 4,
  ``s_a s_b / (s_a + s_b) ||mu_a - mu_b||^2``; scikit-learn's ``return_distance`` reports
  ``sqrt(2 * cost)`` (scipy's Ward distance).
* Tie-breaking. Among the adjacent pairs of live clusters, the pair with the smallest key
  ``(cost, hi, lo)`` merges, ``hi > lo`` being the two node ids, keys compared
  lexicographically. scikit-learn's ``heapq`` of ``(inertia, i, j)`` tuples (always pushed
  with ``i > j``) pops in this order too, so exact ties (duplicated feature vectors,
  piecewise-constant features) resolve identically.
* Output. Merge ``s`` creates node ``n + s`` and ``children[s] = (lo, hi)``, scikit-learn's
  ``children_`` convention; ``cost[s]`` is scikit-learn's float64 criterion of that merge,
  bit for bit, rounded to float32.

Exact selection from fast distances
-----------------------------------
Summing ``pa`` sequentially, as scikit-learn does, chains C dependent additions per pair.
The kernel instead sums each pair's squared differences in SIMD lanes with fused
multiply-adds (:mod:`._lanes`), which is several times faster but rounds differently. The
*differences* are exactly scikit-learn's (same float64 sums, correctly rounded centroid
divisions); only the summation differs. For C nonnegative terms, any summation order is
within a relative ``gamma_C = C u / (1 - C u)`` (``u = 2**-53``) of the exact real sum, and so
is scikit-learn's; with the roundings of ``pa * w`` this puts scikit-learn's cost ``c`` within

    [c_fast / F - ETA, c_fast * F + ETA],    F - 1 ~ (C + 1) * 2**-52,

``ETA`` (about ``n * C * 2**-1074``) covering underflow. The kernel uses ``F`` and ``ETA``
about twice and sixteen times larger. Each adjacent pair stores the lower bound, the key
the heap and the best-pair scans order by, and a bit telling whether it is exact; the upper
bound is derived from the lower one where needed (:func:`_upper`, a slightly wider value,
which only makes settling a little more frequent). A pair whose fast sum is exactly 0 is an
exact 0 (both sums then add only zeros). At each
merge the root pair ``p0`` has the smallest lower bound; it is scikit-learn's choice if its
interval is a single exact value (every other pair's exact value is at least its lower
bound, with ties ordered by pair as scikit-learn's heap does), or if its upper bound is
below every other pair's lower bound. Only three heap entries need a look for the latter: p0
owns two entries (the root and, as the only other entry with the root's key, a child of it),
and any other entry lies below one of them. Otherwise ``p0`` is *settled*: its exact
criterion (:func:`_exact_cost`, scikit-learn's operations in order) replaces its interval,
and the root is examined again. Settling is needed where two pairs' costs agree to about
``1e-13``, i.e. almost only at exact ties; each pair is settled at most once, so large
classes of tied costs (e.g. small-integer features) stay linear. The float32 cost is read
from the interval when both ends round to the same float32, else from the exact criterion.

Data structures and tricks, each there for speed or memory (details in the comments below):

* float64 sums for internal clusters only, in ``n // 2`` reusable slots (a leaf's sum and
  centroid are its input row); centroids are never stored but derived from the sums where
  needed, by a correctly rounded division (an FMA correction for float32 inputs), which
  halves the memory and the memory traffic of storing both (measured, each no faster: a
  float32 centroid cache, stored float64 centroids, and two-leaf clusters read from their
  two input rows instead of a slot);
* one unordered neighbour list per live cluster in a shared int32 pool, with the lower
  bound of each adjacent pair beside it and its exactness in a bit of the neighbour's id
  (an array of upper bounds, which this replaces, measured 4-9% slower);
* per node, one int32 record of list offset, list length, slot and size, and one int32
  pair of heap index and mark: a merge reads these for each neighbour, and each is one
  cache miss instead of one per array (than six arrays: 3-5% faster at C = 17, neutral to
  2% at C = 384; a single 32-byte record of all six, which doubles the table, measured no
  faster);
* an indexed heap (:mod:`._heap`) holding one entry per live cluster, its best pair,
  updated in place (scikit-learn pushes every new pair and pops the dead ones too); a
  cluster's best pair is read from its heap entry (no second copy to keep in step and to
  miss in the cache), and each entry's owner is a bit of its pair code (no owner array to
  load at every level of a sift);
* the criteria of a new cluster against its neighbours computed up to 8 at a time in SIMD
  lanes (a 6-lane variant for the usual 5-6 neighbours), the first batch fused with the new
  cluster's sums and centroid; the value check of the input (finite, bounded) rides on the
  first pass over the features, which measures the leaf pairs;
* the neighbours' lists and heap entries prefetched before the distance pass that precedes
  their update, and the next root pair's lists and rows at the end of a step (measured no
  faster: also the first lines past a row's 4 KB page boundary, where the stream prefetcher
  stops; also the records of that pair's neighbours); comparisons in the heap and the
  best-pair scans written without branches;
* every buffer sized up front from ``n``: no array is reallocated inside the merge loop.

Measured on 60x80 grids of 384-d features, a little under half of the time goes to the fused
distance batches (bound by memory latency: merges jump around the grid, and each touches
some seven 1.5-3 KB rows of features or sums), a tenth to the leaf pairs, the rest to the
heap and the neighbour lists.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._heap import code_hi, code_lo, heap_before, iheap_remove, iheap_set, iheapify, pair_code
from ._lanes import (
    LANES,
    prefetch,
    prefetch_row,
    sqdist_merged,
    sqdist_merged6,
    sqdist_pairs,
    sqdist_row_mixed,
)

__all__ = ["ward_grid_kernel", "ward_pair_criterion"]


# --------------------------------------------------------------------------- distances
# A pool entry is a neighbour's node id (< 2**30, see ward.py) and, in bit 30, whether the
# pair's stored lower bound is its exact criterion (an exact zero, or settled); the bit is
# read only in the list of the pair's newer node, like the upper bound derived from it.
ID_MASK = (1 << 30) - 1
EXACT = 1 << 30

# Columns of the kernel's per-node record.
OFF, LEN, SLOT, SIZE = 0, 1, 2, 3

# Lines of a row prefetched ahead of a distance pass (the hardware prefetchers take over once
# a row is streaming).
PREFETCH_LINES = 4


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
@njit(cache=True)
def _best_of(v, node, pool, pool_d):
    """Smallest key ``(cost, hi, lo)`` among node ``v``'s adjacent pairs -> (cost, pair)."""
    o = node[v, OFF]
    best_c = np.inf
    best_p = np.int64(-1)
    for q in range(node[v, LEN]):
        u = np.int64(pool[o + q] & ID_MASK)
        pr = pair_code(u, v, v)
        c = pool_d[o + q]
        better = (best_p < 0) | heap_before(c, pr, best_c, best_p)
        best_c = c if better else best_c
        best_p = pr if better else best_p
    return best_c, best_p


@njit(cache=True)
def _exact_cost(X, S, node, a, b, n):
    """scikit-learn's criterion of live clusters ``a`` and ``b``, bit for bit: centroids by
    IEEE division of the float64 sums (a leaf's is its input row), the squared differences
    summed sequentially over the features, then ``pa * w`` (see the module doc)."""
    sa = np.float64(node[a, SIZE])
    sb = np.float64(node[b, SIZE])
    ra = a if a < n else node[a, SLOT]
    rb = b if b < n else node[b, SLOT]
    pa = 0.0
    for f in range(X.shape[1]):
        xa = np.float64(X[ra, f]) if a < n else S[ra, f] / sa
        xb = np.float64(X[rb, f]) if b < n else S[rb, f] / sb
        d = xa - xb
        pa += d * d
    return pa * ((sa * sb) / (sa + sb))


@njit(cache=True)
def _pos_in_list(v, u, node, pool):
    """Index in the pool of neighbour ``u`` within node ``v``'s list (it is there)."""
    o = node[v, OFF]
    for q in range(node[v, LEN]):
        if (pool[o + q] & ID_MASK) == u:
            return o + q
    return np.int64(-1)


@njit(cache=True)
def _upper(lo, F, ETA):
    """An upper bound of scikit-learn's criterion of a pair whose lower bound from
    :func:`_bounds` is ``lo`` (not an exact value): ``lo = max(c / F - ETA, 0)`` up to
    roundings gives ``c <= (lo + ETA) * F`` and the upper bound ``c * F + ETA``; one more
    factor ``F`` (``F - 1 >= 18 * 2**-52``) covers the roundings of
    both computations."""
    return (((lo + ETA) * F) * F) * F + 2.0 * ETA


@njit(cache=True)
def _bounds(pa_fast, w, F, ETA):
    """(lower, upper) bounds of scikit-learn's criterion of a pair from its fast sum of
    squares ``pa_fast`` and its weight ``w``; (0, 0), an exact zero, for a zero sum. See
    "Exact selection from fast distances" in the module doc."""
    if pa_fast == 0.0:
        return 0.0, 0.0
    c = pa_fast * w
    return max(c / F - ETA, 0.0), c * F + ETA


@njit(cache=True, nogil=True)
def ward_grid_kernel(X, grid_h, grid_w, S, tol_scale, max_energy):
    """Connectivity-constrained Ward tree of a ``grid_h x grid_w`` grid (see module doc).

    Assumes checked input (the public wrapper :func:`mis_pipeline.merge.ward_grid` does the
    checking): ``X`` is a C-contiguous ``(grid_h * grid_w, C)`` float32 or float64 array,
    rows in row-major grid order (``r * grid_w + c``); ``grid_h, grid_w >= 1``, ``C >= 1``
    and ``grid_h * grid_w >= 2``. ``S`` is a C-contiguous float64 ``(max(n // 2, 1), C)``
    work array (contents ignored; allocated by the caller, where numpy backs large arrays
    with huge pages). ``tol_scale`` multiplies the error bounds of the fast criteria: 1.0 is
    the proven bound; tests pass larger values to drive the exact fallbacks (any value >= 1
    gives the same result). ``max_energy``: the kernel's one value check, made in its first
    pass over the features: unless ``sum(X ** 2) <= max_energy`` (NaN/inf fail it), it
    returns at once with empty outputs and ``stats[0] == -1``; the caller reports why.
    Nothing else is checked here.

    Returns ``(children (n-1, 2) int32, cost (n-1,) float32, stats (3,) int64)``: the costs
    are scikit-learn's float64 criteria rounded to float32; ``stats`` (for tests and
    benchmarks) counts pool compactions, pairs settled with exact criteria, and float32
    costs the bounds could not decide.
    """
    n = grid_h * grid_w
    n_nodes = 2 * n - 1
    n_edges = grid_h * (grid_w - 1) + grid_w * (grid_h - 1)
    n_feat = X.shape[1]

    # Error bounds of the fast criteria (see "Exact selection from fast distances" in the
    # module doc): scikit-learn's value c of a pair lies in [c_fast / F - ETA, c_fast * F +
    # ETA]. Proven with F = 1 + (C + 1) * 2**-52 and ETA = n * C * 2**-1074; both taken about
    # twice (F) and sixteen times (ETA) larger, which also covers the roundings of the bounds.
    F = 1.0 + tol_scale * (2.0 * n_feat + 16.0) * 2.0**-52
    ETA = tol_scale * (float(n) * (n_feat + 4.0)) * 2.0**-1070

    children = np.empty((n - 1, 2), dtype=np.int32)
    cost = np.empty(n - 1, dtype=np.float32)
    stats = np.zeros(3, dtype=np.int64)

    # Cluster sizes as float64, exactly scikit-learn's moments_1 (small exact integers).
    # Per node: neighbour-list offset and length, slot of the sums, size (one int32 record,
    # a quarter of a cache line, instead of four arrays: one miss per node, not four).
    node = np.empty((n_nodes, 4), dtype=np.int32)
    node[:, OFF] = 0
    node[:, LEN] = 0
    node[:, SLOT] = -1
    node[:n, SIZE] = 1

    # Internal clusters' float64 sums live in slots of S. Live internal clusters are disjoint
    # with >= 2 leaves each, so n // 2 slots always suffice, and a merge reuses a child's
    # slot. Leaves need no slot: their sum and centroid are their input row. Centroids are
    # never stored: they are derived from the sums where needed (see _ir.py). Extra
    # memory: (n/2) * C float64, the size of a float32 feature array.
    n_slots = S.shape[0]
    free_slots = np.empty(n_slots, dtype=np.int32)
    for s in range(n_slots):
        free_slots[s] = n_slots - 1 - s
    n_free = n_slots

    # Adjacency: the neighbours of node v are pool[o : o + node[v, LEN]], o = node[v, OFF],
    # with the lower bound of each pair's criterion beside them (pool_d, the key), so a
    # neighbour's best pair can be re-found without recomputing distances. Whether that
    # bound is the exact criterion (bit EXACT of the id) is read only for the root pair,
    # from the list of its newer (larger) node, so it is kept up to date only there: a
    # neighbour t of a new cluster k never needs it in its own list (k > t). The pair's
    # upper bound is derived from its lower one (_upper). A merge rewrites i/j into k inside
    # each neighbour's list (which never grows), so only the new cluster needs a fresh block,
    # appended at the end. Blocks sit in node-id order, so the pool compacts in place. A
    # merge removes >= 1 adjacency and adds none: live lists never exceed 2 * n_edges
    # entries, so 4 * n_edges is room enough after a compaction.
    pool_cap = 4 * n_edges + 16
    pool = np.empty(pool_cap, dtype=np.int32)
    pool_d = np.empty(pool_cap, dtype=np.float64)

    # Bounds of the leaf pairs' criteria: *_up[v] for (v, v - grid_w), *_left[v] for
    # (v, v - 1). One batch: lanes 0..3 the left pairs, lanes 4..7 the up pairs of 4 leaves
    # ra[0..3] (a missing pair measures a leaf against itself; unused).
    lo_up = np.empty(n, dtype=np.float64)
    hi_up = np.empty(n, dtype=np.float64)
    lo_left = np.empty(n, dtype=np.float64)
    hi_left = np.empty(n, dtype=np.float64)
    half = LANES // 2
    ra = np.empty(half, dtype=np.int32)
    rb = np.empty(LANES, dtype=np.int32)
    dist = np.empty(LANES, dtype=np.float64)
    lane_size = np.empty(LANES, dtype=np.float64)  # per neighbour lane: size, 1 / size
    lane_recip = np.empty(LANES, dtype=np.float64)
    wk = np.empty((1, n_feat), dtype=np.float64)  # centroid of the new cluster
    energy = np.empty(half, dtype=np.float64)
    total_energy = 0.0
    for v0 in range(0, n, half):
        for q in range(half):
            v = min(v0 + q, n - 1)
            ra[q] = v
            rb[q] = v - 1 if v % grid_w != 0 else v
            rb[half + q] = v - grid_w if v >= grid_w else v
        sqdist_pairs(X, ra, rb, dist, energy)
        for q in range(min(half, n - v0)):
            v = v0 + q
            # two leaves: w = (1 * 1) / (1 + 1)
            lo_left[v], hi_left[v] = _bounds(dist[q], 0.5, F, ETA)
            lo_up[v], hi_up[v] = _bounds(dist[half + q], 0.5, F, ETA)
            total_energy += energy[q]
    # The input check, done in this first pass over the features: NaN or inf anywhere makes
    # the energy non-finite, and the energy bounds every merge cost (see ward.py).
    if not total_energy <= max_energy:
        stats[0] = -1
        return children[:0], cost[:0], stats

    pool_end = 0
    for r in range(grid_h):
        for c in range(grid_w):
            v = r * grid_w + c
            node[v, OFF] = pool_end
            for side in range(4):
                if side == 0 and r > 0:
                    u, lo, hi = v - grid_w, lo_up[v], hi_up[v]
                elif side == 1 and c > 0:
                    u, lo, hi = v - 1, lo_left[v], hi_left[v]
                elif side == 2 and c + 1 < grid_w:
                    u, lo, hi = v + 1, lo_left[v + 1], hi_left[v + 1]
                elif side == 3 and r + 1 < grid_h:
                    u, lo, hi = v + grid_w, lo_up[v + grid_w], hi_up[v + grid_w]
                else:
                    continue
                pool[pool_end] = u | (EXACT if lo == hi else 0)
                pool_d[pool_end] = lo
                pool_end += 1
            node[v, LEN] = pool_end - node[v, OFF]

    # Indexed heap with one entry per live cluster: its best pair (smallest key among its
    # adjacent pairs, by the stored criteria). The smallest pair is the best pair of both
    # its clusters, so it is at the root. A merge removes the two children's entries and
    # updates in place the entries of the neighbours whose best pair changed, so no stale
    # entry is ever pushed or popped (scikit-learn pushes every new pair and skips dead ones
    # when popping). A live cluster's best pair and its key are its heap entry,
    # hp[pos[v]] and hk[pos[v]].
    hk = np.empty(n, dtype=np.float64)
    hp = np.empty(n, dtype=np.int64)
    pm = np.full((n_nodes, 2), -1, dtype=np.int32)  # heap index and mark of each node
    pos = pm[:, 0]
    mark = pm[:, 1]  # dedupes the new cluster's neighbours
    for v in range(n):
        bc, bp = _best_of(v, node, pool, pool_d)
        hk[v] = bc
        hp[v] = bp
    heap_size = n
    iheapify(hk, hp, pos, heap_size)


    for step in range(n - 1):
        k = n + step
        # ---- select the smallest pair exactly. The root p0 has the smallest lower bound.
        # If p0's criterion is exact, or its upper bound is below every other pair's lower
        # bound, it is scikit-learn's choice. Else p0 is settled (its exact criterion
        # replaces both bounds) and the root looked at again.
        while True:
            p0 = hp[0]
            i0 = code_hi(p0)
            j0 = code_lo(p0)
            at = _pos_in_list(i0, j0, node, pool)
            if pool[at] & EXACT:
                break
            hi0 = _upper(pool_d[at], F, ETA)
            # Any other pair with a lower bound <= hi0? p0 has two entries, the root and a
            # child of it (the same pair with the other owner bit: see _heap.py); any other
            # entry <= hi0 lies below the root's other child or below the duplicate, so
            # three entries tell.
            dup = 1 if heap_size > 1 and (hp[1] >> 1) == (p0 >> 1) else 2
            other = 3 - dup
            near = other < heap_size and hk[other] <= hi0
            for e in range(2 * dup + 1, min(2 * dup + 3, heap_size)):
                near = near or hk[e] <= hi0
            if not near:
                break
            stats[1] += 1
            c_ex = _exact_cost(X, S, node, i0, j0, n)
            for side in range(2):
                a = i0 if side == 0 else j0
                b = j0 if side == 0 else i0
                pa_ = _pos_in_list(a, b, node, pool)
                pool_d[pa_] = c_ex
                pool[pa_] |= EXACT
                bc, bp = _best_of(a, node, pool, pool_d)
                if bc != hk[pos[a]] or bp != hp[pos[a]]:
                    heap_size = iheap_set(hk, hp, pos, heap_size, a, bc, bp)

        # ---- the smallest pair is at the root; both children leave the heap
        pair = hp[0]
        i = code_hi(pair)
        j = code_lo(pair)
        # The float32 cost is scikit-learn's float64 criterion rounded: decided by the
        # bounds unless a float32 rounding boundary falls between them. (`at` is the root
        # pair's entry in its newer node's list, found by the loop above.)
        c32 = np.float32(hk[0])
        hi_root = pool_d[at] if pool[at] & EXACT else _upper(pool_d[at], F, ETA)
        if c32 != np.float32(hi_root):
            stats[2] += 1
            c32 = np.float32(_exact_cost(X, S, node, i, j, n))
        # both children's entries leave the heap; k's is inserted at the end of the step
        heap_size = iheap_remove(hk, hp, pos, heap_size, j)
        heap_size = iheap_remove(hk, hp, pos, heap_size, i)
        children[step, 0] = j
        children[step, 1] = i
        cost[step] = c32
        node[k, SIZE] = node[i, SIZE] + node[j, SIZE]
        sz = np.float64(node[k, SIZE])

        # ---- slot of k: reuse a child's slot, else take a free one. Its sums
        # m_k = m_i + m_j (and its centroid m_k / s_k) are computed by the first distance batch
        # below, fused with it (see sqdist_merged).
        si = node[i, SLOT]
        sj = node[j, SLOT]
        if si >= 0:
            sk = si
            if sj >= 0:
                free_slots[n_free] = sj
                n_free += 1
        elif sj >= 0:
            sk = sj
        else:
            n_free -= 1
            sk = free_slots[n_free]
        # rows of the children's sums: their slot in S, or their row in X for a leaf
        ri = si if si >= 0 else i
        rj = sj if sj >= 0 else j
        i_leaf = 1 if si < 0 else 0
        j_leaf = 1 if sj < 0 else 0
        node[k, SLOT] = sk
        node[i, SLOT] = -1
        node[j, SLOT] = -1

        # ---- neighbour list of k: (N(i) | N(j)) - {i, j}, appended to the pool
        need = node[i, LEN] + node[j, LEN]
        if pool_end + need > pool_cap:
            stats[0] += 1
            p = 0
            # the live clusters: those in the heap, and i and j (out of it by now, their
            # lists still to be read)
            for v in range(k):
                if (pos[v] >= 0) | (v == i) | (v == j):
                    o = node[v, OFF]
                    ln = node[v, LEN]
                    for q in range(ln):  # destination <= source: safe in place
                        pool[p + q] = pool[o + q]
                        pool_d[p + q] = pool_d[o + q]
                    node[v, OFF] = p
                    p += ln
            pool_end = p
        ok = pool_end
        node[k, OFF] = ok
        deg = 0
        mark[i] = k
        mark[j] = k
        for side in range(2):
            src = i if side == 0 else j
            o = node[src, OFF]
            for q in range(node[src, LEN]):  # branch-free: a common neighbour of i and j
                t = pool[o + q] & ID_MASK  # is written twice, counted once
                pool[ok + deg] = t
                deg += np.int64(mark[t] != k)
                mark[t] = k
        node[k, LEN] = deg
        pool_end += deg
        # The neighbours' lists and heap entries are updated after the distance pass below;
        # ask for them now so that their cache misses overlap with it.
        for q in range(deg):
            t = pool[ok + q]
            o = node[t, OFF]
            prefetch(pool, o)
            prefetch(pool_d, o)
            if t < n:
                prefetch_row(X, t, PREFETCH_LINES)
            else:
                prefetch_row(S, node[t, SLOT], PREFETCH_LINES)
            prefetch(hk, pos[t])
            prefetch(hp, pos[t])

        # ---- criteria of k against its neighbours (fast sums). Batches of LANES neighbours
        # share one SIMD pass (see _lanes.py); the first batch also writes k's sums and
        # centroid. A leaf neighbour's lane reads its input row X[t], an internal one its
        # sums S[slot] divided by its size; k's centroid goes to the scratch row wk for later
        # batches. (deg == 0 only for the root, as the grid is connected: its sums are never
        # needed.)
        for g in range(0, deg, LANES):
            cnt = min(LANES, deg - g)
            bits = 0
            for q in range(cnt):
                t = pool[ok + g + q]
                if t < n:
                    rb[q] = t
                    bits |= 1 << q
                    lane_size[q] = 1.0
                    lane_recip[q] = 1.0
                else:
                    rb[q] = node[t, SLOT]
                    lane_size[q] = np.float64(node[t, SIZE])
                    lane_recip[q] = 1.0 / np.float64(node[t, SIZE])
            for q in range(cnt, LANES):  # a short batch repeats its first lane (unused)
                rb[q] = rb[0]
                bits |= (bits & 1) << q
                lane_size[q] = lane_size[0]
                lane_recip[q] = lane_recip[0]
            if g == 0 and cnt <= 6:
                sqdist_merged6(
                    S, X, wk, sk, ri, i_leaf, rj, j_leaf, sz, rb, bits, lane_size, lane_recip, dist
                )
            elif g == 0:
                sqdist_merged(
                    S, X, wk, sk, ri, i_leaf, rj, j_leaf, sz, rb, bits, lane_size, lane_recip, dist
                )
            else:
                sqdist_row_mixed(wk, 0, S, X, rb, bits, lane_size, lane_recip, dist)
            for q in range(cnt):
                st = np.float64(node[pool[ok + g + q], SIZE])
                # as scikit-learn: (m1[k] * m1[t]) / (m1[k] + m1[t]), then pa * w
                lo, hi = _bounds(dist[q], (sz * st) / (sz + st), F, ETA)
                pool_d[ok + g + q] = lo
                if lo == hi:  # an exact zero (k's ids are read before this: plain ids)
                    pool[ok + g + q] |= EXACT

        # ---- each neighbour t: i and/or j become k in its list (which never grows), with
        # the new criterion; then t's best pair is refreshed and pushed if it changed.
        for q in range(deg):
            t = np.int64(pool[ok + q] & ID_MASK)
            c_kt = pool_d[ok + q]
            o = node[t, OFF]
            ln = node[t, LEN]
            found = False
            p = 0
            while p < ln:
                u = pool[o + p] & ID_MASK
                if (u == i) | (u == j):
                    if found:
                        ln -= 1
                        pool[o + p] = pool[o + ln]
                        pool_d[o + p] = pool_d[o + ln]
                        continue
                    pool[o + p] = k
                    pool_d[o + p] = c_kt  # (its exactness is read in k's list only: k > t)
                    found = True
                p += 1
            node[t, LEN] = ln
            et = pos[t]  # t's heap entry holds its best pair
            old = hp[et]
            old_hi = code_hi(old)
            old_lo = code_lo(old)
            if (old_hi == i) | (old_hi == j) | (old_lo == i) | (old_lo == j):
                bc, bp = _best_of(t, node, pool, pool_d)
            else:
                bc = hk[et]
                bp = old
                p_kt = pair_code(k, t, t)
                if heap_before(c_kt, p_kt, bc, bp):
                    bc = c_kt
                    bp = p_kt
            if bp != old:
                heap_size = iheap_set(hk, hp, pos, heap_size, t, bc, bp)

        # ---- k's own best pair: a new entry (it sifts up from the bottom, most often a
        # level or two, as k's best pair is rarely among the cheapest)
        if deg > 0:
            bc, bp = _best_of(k, node, pool, pool_d)
            heap_size = iheap_set(hk, hp, pos, heap_size, k, bc, bp)

        # ---- the next merge is (most likely) the root's pair: ask for what it reads first
        if heap_size > 0:
            # (written out rather than shared with the loop above: a helper taking these
            # arrays measured 4-5% slower, its array arguments being reference-counted)
            for side in range(2):
                v = code_hi(hp[0]) if side == 0 else code_lo(hp[0])
                o = node[v, OFF]
                prefetch(pool, o)
                prefetch(pool_d, o)
                if v < n:
                    prefetch_row(X, v, PREFETCH_LINES)
                else:
                    prefetch_row(S, node[v, SLOT], PREFETCH_LINES)
            # (Also asking for the records of its neighbours, whose ids are in the lists
            # just asked for, measured neutral at C = 384 and 1-3% slower at C = 17.)

    return children, cost, stats
