"""Ward merge benchmarks: speed against scikit-learn, peak memory, one-time JIT cost.

    python benchmarks/bench_merge.py speed  [--repeats 7] [--grids 28x28,47x63,60x80,100x134]
    python benchmarks/bench_merge.py memory [--grids ...]
    python benchmarks/bench_merge.py jit
    python benchmarks/bench_merge.py sample [--minutes 5] [--repeats 9]
    python benchmarks/bench_merge.py ab --base REV [--new REV] [--repeats 41] [--channels 384]
    python benchmarks/bench_merge.py latency
    python benchmarks/bench_merge.py sweep [--repeats 25] [--channels-list 8,64,384]
    python benchmarks/bench_merge.py traffic [--grids 60x80,100x134]
    python benchmarks/bench_merge.py cachesim [--grids 60x80,100x134] [--channels 384]
    python benchmarks/bench_merge.py all

Inputs: C = 384 float32 features (DINO ViT-S width), spatially smooth like real patch
features: i.i.d. normal noise filtered with a Gaussian of sigma 2 patches along the grid
(not along channels), fixed seed.

``speed``: in one process, on the same arrays, after one warm-up call of each: ``ward_grid``
and ``sklearn.cluster.ward_tree(X, connectivity=grid_to_graph(h, w))`` (connectivity built
once outside the timing, which favours scikit-learn). Each is timed ``--repeats`` times back
to back (the features stay in cache, as they are right after feature extraction): median
wall-clock ms per tree, the ratio, and the ratio of median CPU times (the machine may be
shared). Then ``--repeats`` alternating calls (each library starts with caches flushed by the
other): median ms and ratio. Then "best": the fastest of all ``2 * repeats`` runs of each
library and their ratio (on a shared machine other load only ever adds time, so the least
disturbed runs give the steadiest ratio). Also the 60x80 -> 100x134 growth, from the runs
above and from ``2 * repeats`` runs of the two grids interleaved (median of the paired
ratios, and ratio of the best runs), and a check that both give the same ``children``.

``sample``: once a minute, the 60x80 ratio and the 60x80 -> 100x134 growth from ``--repeats``
runs each (see :func:`bench_sample`), to see how they move with the machine's load.

``ab``: the kernel of git revision ``REV`` (its ``mis_pipeline/merge`` kernel modules,
imported from a temporary package) against the working tree's (or revision ``--new``'s), in
one process on the same arrays (default grids 60x80 and 100x134): both must give the same children and costs, then
``--repeats`` rounds, each timing every grid with both kernels in turn. Per grid: minimum,
10th percentile and median of each, and the ratios new / base (of the minima, of the 10th
percentiles, and the median of the per-round ratios); the growth 60x80 -> 100x134 of each.
The two kernels take turns going first (the second run of a pair finds the features warm
in the cache, which with a fixed order favours one side by up to 10% on 60x80 grids). For
changes of a few percent on a shared machine, the 10th percentile and the paired median are
the figures to trust; ``--base HEAD`` on a clean tree shows the noise floor.

``latency``: a dependent random walk through buffers of 0.5 to 128 MB, one load per cache
line: nanoseconds per load. Shows the cache sizes this process really gets (on a shared
host, far less than the processor's nominal last-level cache), which is what the growth
from 60x80 to 100x134 runs into.

``sweep``: the 60x80 -> 100x134 growth at several feature widths, the two grids interleaved
(``--repeats`` pairs): nanoseconds per merge and the growth (median of the paired ratios, and
of the best runs). At C = 8 the rows are negligible and the time is the bookkeeping's (lists,
heap, node records); the difference between C = 384 and C = 8 is the time spent on feature
rows. Shows which of the two grows.

``traffic``: the feature rows a merge reads and writes, counted by replaying the tree in
Python (no timing): the two merged clusters' rows, the new cluster's sums written, and its
neighbours' rows (a leaf's row is ``4 C`` bytes, an internal cluster's sums ``8 C``); bytes
per merge and the mean number of neighbours. Shows that the work per merge does not depend on
the grid's size.

``cachesim``: the noise-free view (needs valgrind, its ``callgrind.h`` and a C compiler).
One ``ward_grid`` call per grid, after a warm-up call, run under valgrind's callgrind with
its cache simulator (instrumentation switched on for that call only, through a client
request from a tiny C library built on the fly): instructions and data-cache misses per
merge, with a 48 KB L1 and three last-level caches: 2 MB (this host's L2, in effect its
last level: see ``latency``), 32 MB and 96 MB (a dedicated L3). Counts, not times: they do
not depend on the machine's load. About 1-2 minutes per grid and cache size.

``memory``: one fresh subprocess per grid, which loads the features from a .npy file (one
allocation) and compiles on a tiny grid first. Peak extra memory of one ``ward_grid`` call,
measured two ways: (1) the process's resident-set high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` just before the first full-size call) minus the resident set
before it: every page the call touches is new to the process, so this counts everything,
numba's O(n) bookkeeping arrays included; (2) ``tracemalloc`` on a second call: the numpy
allocations made inside the call (the two work arrays and the outputs; numba's own
allocations are invisible to it). Both are divided by the size of the float32 features.

``jit``: fresh subprocesses with an empty ``NUMBA_CACHE_DIR``: time to import
``mis_pipeline.merge``, then the first ``ward_grid`` call on a tiny float32 grid (numba import
plus compilation), then a second call; then the same in a new subprocess with the cache
filled by the first (cache load instead of compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GRIDS = ((28, 28), (47, 63), (60, 80), (100, 134))
C = 384


def smooth_features(h: int, w: int, c: int = C, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((h, w, c)).astype(np.float32)
    return np.ascontiguousarray(
        gaussian_filter(x, sigma=(2, 2, 0), mode="reflect"), dtype=np.float32
    )


def _parse_grids(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(tuple(int(v) for v in g.split("x")) for g in text.split(","))  # type: ignore[misc]


# --------------------------------------------------------------------------- speed
def _median_ms(fn, repeats: int, every: list[float] | None = None) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds of ``repeats`` back-to-back calls (each wall
    time is also appended to ``every``)."""
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    if every is not None:
        every.extend(1e3 * t for t in wall)
    return 1e3 * float(np.median(wall)), 1e3 * float(np.median(cpu))


def bench_speed(grids: tuple[tuple[int, int], ...], repeats: int) -> dict[str, dict[str, float]]:
    from sklearn.cluster import ward_tree
    from sklearn.feature_extraction.image import grid_to_graph

    from mis_pipeline.merge import ward_grid

    results: dict[str, dict[str, float]] = {}
    print(f"speed: C={C} float32 smooth features, median of {repeats} runs after warm-up")
    print(
        f"{'grid':>9} {'leaves':>7} {'ours ms':>8} {'sklearn ms':>10} {'ratio':>6} "
        f"{'cpu ratio':>9} | {'alternating: ours ms':>20} {'ratio':>6} | {'best: ours ms':>13} "
        f"{'ratio':>6}  same children"
    )
    for h, w in grids:
        feats = smooth_features(h, w)
        X = feats.reshape(h * w, C)
        conn = grid_to_graph(h, w)
        ours_tree = ward_grid(feats)  # warm-up (and JIT)
        sk_children = ward_tree(X, connectivity=conn)[0]
        same = bool(np.array_equal(ours_tree.children, sk_children))
        # Back-to-back runs (the features stay in cache, as right after feature extraction).
        all_ours: list[float] = []
        all_sk: list[float] = []
        ours_ms, ours_cpu = _median_ms(lambda: ward_grid(feats), repeats, all_ours)  # noqa: B023
        sk_ms, sk_cpu = _median_ms(
            lambda: ward_tree(X, connectivity=conn),  # noqa: B023
            repeats,
            all_sk,
        )
        # Alternating runs: each call starts after the other library has flushed the caches.
        alt_ours, alt_sk = [], []
        for _ in range(repeats):
            alt_ours.append(_median_ms(lambda: ward_grid(feats), 1, all_ours)[0])  # noqa: B023
            alt_sk.append(
                _median_ms(lambda: ward_tree(X, connectivity=conn), 1, all_sk)[0]  # noqa: B023
            )
        r = {
            "ours_ms": ours_ms,
            "sklearn_ms": sk_ms,
            "ratio": sk_ms / ours_ms,
            "cpu_ratio": sk_cpu / ours_cpu,
            "alternating_ours_ms": float(np.median(alt_ours)),
            "alternating_ratio": float(np.median(alt_sk)) / float(np.median(alt_ours)),
            # the least disturbed of all 2 * repeats runs of each (a shared machine only
            # ever adds time): the most stable estimate of the intrinsic ratio
            "best_ours_ms": min(all_ours),
            "best_ratio": min(all_sk) / min(all_ours),
        }
        results[f"{h}x{w}"] = r
        print(
            f"{h:>4}x{w:<4} {h * w:>7} {ours_ms:>8.2f} {sk_ms:>10.1f} {r['ratio']:>5.1f}x "
            f"{r['cpu_ratio']:>8.1f}x | {r['alternating_ours_ms']:>20.2f} "
            f"{r['alternating_ratio']:>5.1f}x | {r['best_ours_ms']:>13.2f} "
            f"{r['best_ratio']:>5.1f}x  {same}"
        )
    if "60x80" in results and "100x134" in results:
        a, b = results["60x80"], results["100x134"]
        # The grids above were timed seconds apart, under whatever load the machine had
        # then; time the two grids interleaved too, so that both see the same conditions.
        small, large = smooth_features(60, 80), smooth_features(100, 134)
        t_small: list[float] = []
        t_large: list[float] = []
        for _ in range(2 * repeats):
            _median_ms(lambda: ward_grid(small), 1, t_small)
            _median_ms(lambda: ward_grid(large), 1, t_large)
        paired = float(np.median(np.array(t_large) / np.array(t_small)))
        results["growth"] = {
            "back_to_back": b["ours_ms"] / a["ours_ms"],
            "alternating": b["alternating_ours_ms"] / a["alternating_ours_ms"],
            "interleaved_median": paired,
            "interleaved_best": min(t_large) / min(t_small),
        }
        print(
            f"growth 60x80 -> 100x134 (x{100 * 134 / 4800:.2f} leaves): "
            f"x{b['ours_ms'] / a['ours_ms']:.2f} back-to-back, "
            f"x{b['alternating_ours_ms'] / a['alternating_ours_ms']:.2f} alternating; "
            f"interleaved: median x{paired:.2f}, best x{min(t_large) / min(t_small):.2f} "
            f"(sklearn x{b['sklearn_ms'] / a['sklearn_ms']:.2f})"
        )
    return results


# --------------------------------------------------------------------------- sample
def bench_sample(minutes: float, repeats: int) -> None:
    """Every minute for ``minutes``: ``repeats`` runs each of ward_grid at 60x80,
    scikit-learn at 60x80, ward_grid at 100x134 and ward_grid at 60x80 again; one line with
    medians, minima, the 60x80 ratio and the growth. Shows how the figures move with the
    load other tenants put on a shared machine."""
    from sklearn.cluster import ward_tree
    from sklearn.feature_extraction.image import grid_to_graph

    from mis_pipeline.merge import ward_grid

    small, large = smooth_features(60, 80), smooth_features(100, 134)
    X, conn = small.reshape(-1, C), grid_to_graph(60, 80)
    ward_grid(small), ward_grid(large), ward_tree(X, connectivity=conn)  # warm-up
    end = time.time() + 60 * minutes
    while True:
        ours: list[float] = []
        sk: list[float] = []
        big: list[float] = []
        _median_ms(lambda: ward_grid(small), repeats, ours)
        _median_ms(lambda: ward_tree(X, connectivity=conn), repeats, sk)
        _median_ms(lambda: ward_grid(large), repeats, big)
        _median_ms(lambda: ward_grid(small), repeats, ours)
        o, k, g = np.median(ours), np.median(sk), np.median(big)
        print(
            f"{time.strftime('%H:%M:%S')} 60x80 ours {o:.2f} ms (min {min(ours):.2f}), "
            f"scikit-learn {k:.1f} ms (min {min(sk):.1f}): ratio {k / o:.1f}x "
            f"(best {min(sk) / min(ours):.1f}x) | 100x134 {g:.2f} ms: growth x{g / o:.2f} "
            f"(best x{min(big) / min(ours):.2f})",
            flush=True,
        )
        if time.time() + 60 > end:
            break
        time.sleep(60)


# --------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(path: str) -> None:
    """Runs in a fresh subprocess on features saved at ``path``; prints one JSON line."""
    import tracemalloc

    from mis_pipeline.merge import ward_grid

    feats = np.load(path)  # one allocation of exactly the feature array
    ward_grid(np.zeros((4, 5, feats.shape[2]), np.float32))  # JIT / cache load, tiny
    rss_peak = None
    try:
        # First full-size call: every page it touches is new to this process, so the
        # high-water mark of the resident set counts all its memory (numba's included).
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _status_kb("VmRSS")
        ward_grid(feats)
        rss_peak = (_status_kb("VmHWM") - before) * 1024
    except OSError:
        pass
    tracemalloc.start()
    ward_grid(feats)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {"feature_bytes": feats.nbytes, "traced_peak": traced_peak, "rss_peak": rss_peak}
        )
    )


def bench_memory(grids: tuple[tuple[int, int], ...]) -> dict[str, dict[str, float]]:
    print(
        f"memory: peak extra bytes of one ward_grid call / bytes of the float32 (h, w, {C}) features"
    )
    print(f"{'grid':>9} {'features MB':>12} {'tracemalloc':>12} {'RSS HWM':>9}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for h, w in grids:
            path = str(Path(tmp) / f"f{h}x{w}.npy")
            np.save(path, smooth_features(h, w))
            out = subprocess.run(
                [sys.executable, __file__, "_memory_child", path],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            fb = r["feature_bytes"]
            traced = r["traced_peak"] / fb
            rss = r["rss_peak"] / fb if r["rss_peak"] is not None else float("nan")
            results[f"{h}x{w}"] = {"feature_mb": fb / 1e6, "tracemalloc_x": traced, "rss_x": rss}
            print(f"{h:>4}x{w:<4} {fb / 1e6:>12.2f} {traced:>11.2f}x {rss:>8.2f}x")
    return results


# --------------------------------------------------------------------------- jit
_JIT_CHILD = r"""
import time, json
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import mis_pipeline.merge as m
t2 = time.perf_counter()
x = np.random.default_rng(0).standard_normal((5, 6, 8)).astype(np.float32)
m.ward_grid(x)
t3 = time.perf_counter()
m.ward_grid(x)
t4 = time.perf_counter()
tree = m.ward_grid(x)
tree.index
t5 = time.perf_counter()
print(json.dumps({"import_merge_s": t2 - t1, "first_call_s": t3 - t2, "second_call_s": t4 - t3,
                  "first_index_s": t5 - t4}))
"""


def bench_jit() -> dict[str, dict[str, float]]:
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("empty cache (compile)", "filled cache (load)"):
            out = subprocess.run(
                [sys.executable, "-c", _JIT_CHILD],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[label] = r
            print(
                f"jit, {label}: import mis_pipeline.merge {r['import_merge_s'] * 1e3:.0f} ms; first "
                f"ward_grid {r['first_call_s']:.2f} s (numba import + {label.split('(')[1][:-1]}); "
                f"second {r['second_call_s'] * 1e3:.2f} ms; first tree.index {r['first_index_s']:.2f} s"
            )
    return results


# --------------------------------------------------------------------------- ab
_KERNEL_FILES = ("_ward_kernel.py", "_heap.py", "_lanes.py", "_ir.py")


def _kernel_at(rev: str, where: Path):
    """Import the merge kernel modules of git revision ``rev`` as a package in ``where``."""
    import importlib

    root = Path(__file__).resolve().parents[1]
    name = "merge_at_" + "".join(ch if ch.isalnum() else "_" for ch in rev)
    pkg = where / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for fname in _KERNEL_FILES:
        src = subprocess.run(
            ["git", "show", f"{rev}:mis_pipeline/merge/{fname}"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (pkg / fname).write_text(src)
    sys.path.insert(0, str(where))
    return importlib.import_module(f"{name}._ward_kernel")


def bench_ab(base_rev: str, grids, repeats: int, channels: int, new_rev: str | None = None) -> None:
    from mis_pipeline.merge.ward import MAX_SUM_OF_SQUARES

    with tempfile.TemporaryDirectory() as tmp:
        base = _kernel_at(base_rev, Path(tmp))
        if new_rev is None:
            import mis_pipeline.merge._ward_kernel as new
        else:
            new = _kernel_at(new_rev, Path(tmp))
        feats = {g: smooth_features(*g, c=channels).reshape(g[0] * g[1], channels) for g in grids}

        def run(mod, g):
            X = feats[g]
            n = X.shape[0]
            t0 = time.perf_counter()
            # (n // 2 + 1 rows: enough work space for every kernel version so far)
            out = mod.ward_grid_kernel(
                X, g[0], g[1], np.empty((n // 2 + 1, channels)), 1.0, MAX_SUM_OF_SQUARES
            )
            return time.perf_counter() - t0, out

        for g in grids:
            (_, a), (_, b) = run(base, g), run(new, g)
            if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
                raise SystemExit(f"ab: the two kernels disagree on grid {g[0]}x{g[1]}")
        times = {(m, g): [] for m in ("base", "new") for g in grids}
        for r in range(repeats):
            for g in grids:
                # alternate which kernel goes first: the second run of a pair finds the
                # features warm in the cache (a bias of 7-11% on 60x80 grids, measured by
                # timing one kernel against itself), so a fixed order would favour one side
                order = (
                    (("base", base), ("new", new)) if r % 2 == 0 else (("new", new), ("base", base))
                )
                for name, mod in order:
                    times[(name, g)].append(run(mod, g)[0])
        new_name = "working tree" if new_rev is None else new_rev
        print(f"ab: {base_rev} (base) vs {new_name} (new), C={channels}, {repeats} rounds")
        for g in grids:
            a = 1e3 * np.array(times[("base", g)])
            b = 1e3 * np.array(times[("new", g)])
            print(
                f"{g[0]:>4}x{g[1]:<4} base min {a.min():.2f} p10 {np.percentile(a, 10):.2f} "
                f"median {np.median(a):.2f} ms | new min {b.min():.2f} p10 "
                f"{np.percentile(b, 10):.2f} median {np.median(b):.2f} ms | new/base: min "
                f"{b.min() / a.min():.3f}, p10 {np.percentile(b, 10) / np.percentile(a, 10):.3f}, "
                f"paired median {np.median(b / a):.3f}"
            )
        if len(grids) >= 2:
            small, large = grids[0], grids[-1]
            for m in ("base", "new"):
                s_, l_ = np.array(times[(m, small)]), np.array(times[(m, large)])
                print(
                    f"growth {small[0]}x{small[1]} -> {large[0]}x{large[1]}, {m}: min "
                    f"x{l_.min() / s_.min():.2f}, p10 "
                    f"x{np.percentile(l_, 10) / np.percentile(s_, 10):.2f}, median "
                    f"x{np.median(l_) / np.median(s_):.2f}"
                )


# --------------------------------------------------------------------------- latency
def bench_latency() -> None:
    from numba import njit

    @njit(cache=False)
    def walk(nxt, steps):
        i = 0
        for _ in range(steps):
            i = nxt[i]
        return i

    print("latency: dependent loads along a random cycle, one per 64-byte line")
    rng = np.random.default_rng(0)
    for mb in (0.5, 1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128):
        lines = int(mb * 2**20 / 64)
        order = rng.permutation(lines) * 8  # int64 index of each line's first element
        nxt = np.zeros(lines * 8, np.int64)
        nxt[order] = np.roll(order, -1)
        walk(nxt, 1000)
        steps = 2_000_000
        best = min(_timed(walk, nxt, steps) for _ in range(3))
        print(f"{mb:>7.1f} MB: {best / steps * 1e9:6.1f} ns per load")


def bench_sweep(repeats: int, channels: tuple[int, ...]) -> None:
    from mis_pipeline.merge import ward_grid

    small, large = (60, 80), (100, 134)
    print(f"sweep: growth {small[0]}x{small[1]} -> {large[0]}x{large[1]} by feature width, "
          f"{repeats} interleaved pairs")  # fmt: skip
    per_merge = {}
    for c in channels:
        a, b = smooth_features(*small, c=c), smooth_features(*large, c=c)
        ward_grid(a), ward_grid(b)
        ta, tb = [], []
        for _ in range(repeats):
            ta.append(_timed(ward_grid, a))
            tb.append(_timed(ward_grid, b))
        ta, tb = np.array(ta), np.array(tb)
        na, nb = small[0] * small[1] - 1, large[0] * large[1] - 1
        per_merge[c] = (np.median(ta) / na * 1e9, np.median(tb) / nb * 1e9)
        print(
            f"  C={c:<4} {per_merge[c][0]:7.0f} / {per_merge[c][1]:7.0f} ns per merge (median); "
            f"growth: paired median x{np.median(tb / ta):.2f}, best x{tb.min() / ta.min():.2f}"
        )
    lo, hi = min(channels), max(channels)
    if lo != hi:
        rows = [per_merge[hi][g] - per_merge[lo][g] for g in range(2)]
        print(
            f"  per merge, {small[0]}x{small[1]} -> {large[0]}x{large[1]}: bookkeeping (C={lo}) "
            f"x{per_merge[lo][1] / per_merge[lo][0]:.2f}, feature rows (C={hi} minus C={lo}) "
            f"x{rows[1] / rows[0]:.2f}"
        )


def bench_traffic(grids) -> None:
    from mis_pipeline.merge import ward_grid

    print(f"traffic: feature-row bytes per merge at C={C} (replayed from the tree)")
    for h, w in grids:
        n = h * w
        children = ward_grid(smooth_features(h, w)).children
        adj = [set() for _ in range(2 * n - 1)]
        for v in range(n):
            if v % w:
                adj[v].add(v - 1), adj[v - 1].add(v)
            if v >= w:
                adj[v].add(v - w), adj[v - w].add(v)

        row = np.full(2 * n - 1, 8 * C)  # bytes of each node's row: sums of a cluster,
        row[:n] = 4 * C  # a leaf's input row
        total = degree = 0
        for step, (a, b) in enumerate(children):
            k = n + step
            nbrs = (adj[a] | adj[b]) - {a, b}
            for t in nbrs:
                adj[t] -= {a, b}
                adj[t].add(k)
            adj[k], adj[a], adj[b] = nbrs, set(), set()
            total += row[a] + row[b] + 8 * C + sum(row[t] for t in nbrs)
            degree += len(nbrs)
        print(
            f"  {h:>4}x{w:<4} {total / (n - 1) / 1024:5.1f} KB per merge, "
            f"{degree / (n - 1):.2f} neighbours per new cluster"
        )


_CG_SOURCE = """#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("ward_grid"); }
"""
# (name, --LL size,assoc,line): valgrind needs a power-of-two number of sets
_CG_CACHES = (("2 MB", "2097152,16,64"), ("32 MB", "33554432,16,64"), ("96 MB", "100663296,24,64"))


def _cachesim_child(lib: str, grid: str, channels: str) -> None:
    import ctypes

    from mis_pipeline.merge import ward_grid

    h, w = (int(v) for v in grid.split("x"))
    X = smooth_features(h, w, c=int(channels))
    ward_grid(smooth_features(4, 4, c=int(channels)))  # loads (or compiles) the kernel
    ward_grid(X)  # warm-up on the same input
    cg = ctypes.CDLL(lib)
    cg.cg_start()
    ward_grid(X)
    cg.cg_stop()


def bench_cachesim(grids, channels: int) -> None:
    import shutil

    if shutil.which("valgrind") is None:
        raise SystemExit("cachesim needs valgrind on the PATH")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("cachesim needs a C compiler (cc or gcc) for its client-request library")
    print(f"cachesim: one ward_grid call under callgrind, C={channels}; counts per merge")
    with tempfile.TemporaryDirectory() as tmp:
        src, lib = Path(tmp) / "cg.c", Path(tmp) / "cg.so"
        src.write_text(_CG_SOURCE)
        built = subprocess.run(
            [compiler, "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            raise SystemExit(
                f"cachesim: building the client-request library failed:\n{built.stderr}"
            )
        per = {}
        for name, ll in _CG_CACHES:
            for h, w in grids:
                out = Path(tmp) / f"cg.{h}x{w}.{ll.split(',')[0]}"
                cmd = [
                    "valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes",
                    "--D1=49152,12,64", f"--LL={ll}", f"--callgrind-out-file={out}",
                    sys.executable, __file__, "_cachesim_child", str(lib), f"{h}x{w}", str(channels),
                ]  # fmt: skip
                run = subprocess.run(cmd, capture_output=True, text=True)
                dumps = sorted(Path(tmp).glob(out.name + ".*"))
                if run.returncode != 0 or not dumps:
                    raise SystemExit(f"cachesim: valgrind failed on {h}x{w}:\n{run.stderr[-2000:]}")
                events = totals = None
                for line in dumps[-1].read_text().splitlines():
                    if line.startswith("events:"):
                        events = line.split()[1:]
                    elif line.startswith("totals:"):
                        totals = [int(v) for v in line.split()[1:]]
                merges = h * w - 1
                pm = {k: v / merges for k, v in zip(events, totals, strict=True)}
                pm["L1 misses"] = pm["D1mr"] + pm["D1mw"]
                pm["LL misses"] = pm["DLmr"] + pm["DLmw"]
                per[(name, (h, w))] = pm
                print(
                    f"  LL {name:>5} {h:>4}x{w:<4} {pm['Ir']:8.0f} instructions, "
                    f"L1 misses {pm['L1 misses']:6.1f}, LL misses {pm['LL misses']:6.1f} per merge",
                    flush=True,
                )
        small, large = grids[0], grids[-1]
        if small != large:
            print(f"  per merge, {small[0]}x{small[1]} -> {large[0]}x{large[1]}:")
            for name, _ in _CG_CACHES:
                a, b = per[(name, small)], per[(name, large)]
                print(
                    f"    LL {name:>5}: instructions x{b['Ir'] / a['Ir']:.3f}, "
                    f"LL misses x{b['LL misses'] / a['LL misses']:.2f}"
                )


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_memory_child":
        _memory_child(sys.argv[2])
        return
    if len(sys.argv) == 5 and sys.argv[1] == "_cachesim_child":
        _cachesim_child(*sys.argv[2:])
        return
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "what",
        choices=(
            "speed",
            "memory",
            "jit",
            "sample",
            "ab",
            "latency",
            "sweep",
            "traffic",
            "cachesim",
            "all",
        ),
    )
    p.add_argument("--repeats", type=int, default=None, help="default 7 (ab: 41, sweep: 25)")
    p.add_argument("--grids", type=_parse_grids, default=None)
    p.add_argument("--minutes", type=float, default=5.0, help="sample: for how long")
    p.add_argument("--base", default=None, help="ab: the git revision to compare against")
    p.add_argument("--new", default=None, help="ab: a revision instead of the working tree")
    p.add_argument("--channels", type=int, default=C, help="ab, cachesim: feature channels")
    p.add_argument(
        "--channels-list",
        type=lambda t: tuple(int(x) for x in t.split(",")),
        default=(8, 64, 384),
        help="sweep: feature widths",
    )
    a = p.parse_args()
    if a.what == "ab":
        if a.base is None:
            p.error("ab needs --base REV")
        bench_ab(a.base, a.grids or ((60, 80), (100, 134)), a.repeats or 41, a.channels, a.new)
        return
    if a.what == "sweep":
        bench_sweep(a.repeats or 25, a.channels_list)
        return
    if a.what == "traffic":
        bench_traffic(a.grids or ((60, 80), (100, 134)))
        return
    if a.what == "cachesim":
        bench_cachesim(a.grids or ((60, 80), (100, 134)), a.channels)
        return
    a.grids = a.grids or GRIDS
    a.repeats = a.repeats or 7
    if a.what == "latency":
        bench_latency()
        return

    if a.what == "sample":
        bench_sample(a.minutes, a.repeats)
        return
    if a.what in ("speed", "all"):
        bench_speed(a.grids, a.repeats)
    if a.what in ("memory", "all"):
        bench_memory(a.grids)
    if a.what in ("jit", "all"):
        bench_jit()


if __name__ == "__main__":
    main()
