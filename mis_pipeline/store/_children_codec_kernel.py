"""Numba kernels of the children codec (:mod:`.children_codec`): the replay that encodes
``children`` into ``(rank, nbr)`` codes and decodes them back.

They live at module level so that Numba's on-disk cache (``cache=True``) hits in every new
process. Defined as closures inside a function, as they were, each process pickled the inner
dispatchers differently, so the cache key never matched: every process recompiled them (about
4 s before a store's first commit or first read) and added one more file to ``__pycache__``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _fw_add(tree: np.ndarray, i: int, delta: int) -> None:
    i += 1
    while i < tree.size:
        tree[i] += delta
        i += i & (-i)


@njit(cache=True, nogil=True, inline="always")
def _fw_prefix(tree: np.ndarray, i: int) -> int:
    """Number of present ids < i."""
    s = 0
    while i > 0:
        s += tree[i]
        i -= i & (-i)
    return s


@njit(cache=True, nogil=True, inline="always")
def _fw_kth(tree: np.ndarray, k: int, top: int) -> int:
    """Smallest id with (k + 1) present ids <= it (k is 0-based)."""
    pos = 0
    step = top
    while step > 0:
        nxt = pos + step
        if nxt < tree.size and tree[nxt] <= k:
            pos = nxt
            k -= tree[nxt]
        step >>= 1
    return pos  # 1-based position pos + 1 -> id pos


@njit(cache=True, nogil=True, inline="always")
def _scan(
    node, want_node, want_index, label, node_of, slot_of, head, nxt, col, gh, gw, mark, stamp
):
    """Walk the regions touching ``node`` in encounter order (member list order, then
    right/down/left/up) until reaching region ``want_node`` or the ``want_index``-th
    distinct one; return ``(index, region)`` or ``(-1, -1)``. Stopping early is what
    makes decoding cheap: the wanted neighbour is usually among the first few."""
    own = slot_of[node]
    n = gh * gw
    m = 0
    x = head[node]
    while x != -1:
        c = col[x]  # column lookup instead of a division per leaf
        for d in range(4):
            if d == 0:
                if c + 1 >= gw:
                    continue
                y = x + 1
            elif d == 1:
                y = x + gw
                if y >= n:
                    continue
            elif d == 2:
                if c == 0:
                    continue
                y = x - 1
            else:
                y = x - gw
                if y < 0:
                    continue
            r = label[y]
            if r == own:
                continue
            v = node_of[r]
            if mark[v] != stamp:
                mark[v] = stamp
                if v == want_node or m == want_index:
                    return m, v
                m += 1
        x = nxt[x]
    return -1, -1


@njit(cache=True, nogil=True)
def _replay(children, rank, nbr, gh, gw, encode) -> int:
    """Encode (children -> rank, nbr) or decode (rank, nbr -> children); -1 or bad merge index."""
    n = gh * gw
    n2 = 2 * n - 1
    # every region owns a "slot" (the slot of its bigger child; a leaf's slot is its id):
    # label[leaf] = slot, node_of[slot] = node id, slot_of[node] = slot (-1: merged away)
    label = np.arange(n)
    node_of = np.arange(n)
    col = np.arange(n) % gw
    slot_of = np.full(n2, -1, np.int64)
    head = np.full(n2, -1, np.int64)
    tail = np.full(n2, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    size = np.zeros(n2, np.int64)
    mark = np.zeros(n2, np.int64)
    fw = np.zeros(n2 + 1, np.int64)
    top = 1
    while top * 2 <= n2:
        top *= 2
    for i in range(n):
        slot_of[i] = i
        head[i] = i
        tail[i] = i
        size[i] = 1
        _fw_add(fw, i, 1)
    for k in range(n - 1):
        if encode:
            a = children[k, 0]
            b = children[k, 1]
            if (
                a < 0
                or b < 0
                or a >= n + k
                or b >= n + k
                or a == b
                or slot_of[a] < 0
                or slot_of[b] < 0
            ):
                return k
            if size[a] < size[b] or (size[a] == size[b] and a < b):
                small, big = a, b
            else:
                small, big = b, a
            idx, _ = _scan(
                small, big, -1, label, node_of, slot_of, head, nxt, col, gh, gw, mark, k + 1
            )
            if idx < 0:
                return k
            rank[k] = _fw_prefix(fw, small)
            nbr[k] = 2 * idx + (1 if a > b else 0)
        else:
            r = np.int64(rank[k])
            if r >= n - k:
                return k
            small = _fw_kth(fw, r, top)
            idx = np.int64(nbr[k]) >> 1
            found, big = _scan(
                small, -1, idx, label, node_of, slot_of, head, nxt, col, gh, gw, mark, k + 1
            )
            if found < 0:
                return k
            lo = min(small, big)
            hi = max(small, big)
            if nbr[k] & 1:
                children[k, 0] = hi
                children[k, 1] = lo
            else:
                children[k, 0] = lo
                children[k, 1] = hi
        # merge small and big into node n + k, which keeps big's slot; relabelling the
        # smaller region's leaves keeps the total work O(n log n) (small-to-large)
        new = n + k
        sb = slot_of[big]
        x = head[small]
        while x != -1:
            label[x] = sb
            x = nxt[x]
        node_of[sb] = new
        slot_of[new] = sb
        slot_of[small] = -1
        slot_of[big] = -1
        nxt[tail[big]] = head[small]
        head[new] = head[big]
        tail[new] = tail[small]
        size[new] = size[small] + size[big]
        _fw_add(fw, small, -1)
        _fw_add(fw, big, -1)
        _fw_add(fw, new, 1)
    return -1
