"""The children codec's Numba kernels load from the on-disk cache in a new process.

As closures they missed the cache in every process (about 4 s of compiling before a store's
first commit or read, and one more cache file each time)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import numpy as np
from mis_pipeline.merge import ward_grid
from mis_pipeline.store import children_codec as cc
tree = ward_grid(np.random.default_rng(0).random((6, 7, 3)).astype(np.float32))
rank, nbr = cc.encode_children(tree.children, (6, 7))
assert (cc.decode_children(rank, nbr, (6, 7)) == tree.children).all()
stats = cc._kernels()["replay"].stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_codec_kernels_hit_the_numba_cache_in_a_new_process():
    runs = [subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    hits, misses = map(int, runs[1].stdout.split())
    assert hits >= 1 and misses == 0, runs[1].stdout
