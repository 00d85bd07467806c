"""Tree-store benchmarks: bytes per merge on real images, random-access trees/s.

    python benchmarks/bench_store.py bytes  [--images DIR] [--limit N]
    python benchmarks/bench_store.py access [--n-images 10000] [--reads 10000]

``bytes``: preprocesses the Weizmann horses (all 327, at their size, colour_texture, in-process
executor) into a fresh store and prints bytes on disk per merge for the whole store, for the
children only (structure) and for the costs only, at the default cost precision (10 mantissa
bits) and exact (23 bits) (``--bits`` to compare others); the public MIS code stores 7.9 B/merge (pickle per image, no costs).

``access``: writes a store of N synthetic valid merge trees of SBD-like grids (30..50 x 30..50
patches; 64 distinct trees repeated with different costs), then reads random single trees:
unbatched ``store[i]`` (one Zarr read per tree), and through the batched reader (batches of 64)
cold (fresh cache) and warm, and with a 4 MB cache (mostly misses).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mis_pipeline.config import PipelineConfig, from_dict
from mis_pipeline.merge.tree import MergeTree
from mis_pipeline.store import TreeRecord, TreeStore, TreeWriter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "WeizmannHorse" / "images"


def bench_bytes(images: Path, limit: int | None, bits_list: tuple[int, ...] = (10, 23), level: int | None = None) -> None:
    from mis_pipeline.pipeline import preprocess

    src = images
    with tempfile.TemporaryDirectory() as tmp:
        if limit:
            listing = Path(tmp) / "list.txt"
            listing.write_text("\n".join(str(p) for p in sorted(images.glob("*.png"))[:limit]) + "\n")
            src = listing
        for bits in bits_list:
            cfg = from_dict(PipelineConfig, {"features": {"backbone": "colour_texture"},
                                              "preprocess": {"executor": "local"},
                                              "store": {"cost_mantissa_bits": bits,
                                                        **({"compression_level": level} if level else {})}})
            res = preprocess(src, Path(tmp) / f"s{bits}.zarr", cfg)
            s = res.summary
            print(f"cost_mantissa_bits={bits} zstd level={cfg.store.compression_level}: {s.n_ok} images, {s.n_merges} merges, "
                  f"{s.n_merges / max(s.n_ok, 1):.0f} merges/image, {s.total_bytes} bytes")
            print(f"  whole store {s.bytes_per_merge:.3f} B/merge | structure (children) "
                  f"{s.structure_bytes_per_merge:.3f} | costs {s.cost_bytes_per_merge:.3f} | "
                  f"records+metadata {(s.total_bytes - s.structure_bytes - s.cost_bytes) / s.n_merges:.3f}")


def _kruskal_tree(gh: int, gw: int, rng: np.random.Generator) -> MergeTree:
    """A valid grid merge tree: grid edges in random order, merging whenever they join two regions."""
    n = gh * gw
    idx = np.arange(n).reshape(gh, gw)
    edges = np.concatenate([np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                            np.stack([idx[:-1].ravel(), idx[1:].ravel()], 1)])
    edges = edges[rng.permutation(len(edges))]
    parent = list(range(n))
    node = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    children = []
    for u, v in edges.tolist():
        ru, rv = find(u), find(v)
        if ru != rv:
            children.append((node[ru], node[rv]))
            parent[rv] = ru
            node[ru] = n + len(children) - 1
    cost = np.sort(rng.lognormal(0, 2, n - 1)).astype(np.float32)
    return MergeTree(np.array(children, np.int32), cost, (gh, gw))


def bench_access(n_images: int, reads: int) -> None:
    rng = np.random.default_rng(0)
    protos = [_kruskal_tree(int(rng.integers(30, 51)), int(rng.integers(30, 51)), rng) for _ in range(64)]
    cfg = PipelineConfig()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.zarr"
        t0 = time.perf_counter()
        with TreeWriter(path, cfg) as w:
            batch = []
            for i in range(n_images):
                p = protos[i % len(protos)]
                tree = MergeTree(p.children, (p.cost * rng.uniform(0.5, 2)).astype(np.float32), p.grid_shape)
                batch.append(TreeRecord(image_id=f"img{i:06d}.jpg", source=f"/x/img{i:06d}.jpg", status="ok",
                                        backbone="synthetic", grid_hw=p.grid_shape, tree=tree))
                if len(batch) == 256:
                    w.commit(batch)
                    batch = []
            w.commit(batch)
        write_s = time.perf_counter() - t0
        store = TreeStore.open(path)
        s = store.summary()
        print(f"store: {len(store)} trees, {s.n_merges} merges ({s.n_merges / len(store):.0f}/tree), "
              f"{s.total_bytes / 1e6:.1f} MB, {s.bytes_per_merge:.2f} B/merge; written in {write_s:.1f} s "
              f"({n_images / write_s:.0f} trees/s)")
        order = rng.integers(0, len(store), reads)

        t0 = time.perf_counter()
        m = min(reads, 1000)
        for i in order[:m]:
            store.tree(int(i))
        print(f"unbatched store.tree(i):         {m / (time.perf_counter() - t0):8.0f} trees/s")
        for label, cache in (("batched reader, cold (256 MB)", 256 << 20), ("batched reader, 4 MB cache", 4 << 20)):
            reader = store.reader(cache_bytes=cache)
            t0 = time.perf_counter()
            for lo in range(0, reads, 64):
                reader.read(order[lo : lo + 64].tolist())
            print(f"{label:<32} {reads / (time.perf_counter() - t0):8.0f} trees/s")
            if cache == 256 << 20:
                t0 = time.perf_counter()
                for lo in range(0, reads, 64):
                    reader.read(order[lo : lo + 64].tolist())
                print(f"{'batched reader, warm':<32} {reads / (time.perf_counter() - t0):8.0f} trees/s")
        reader = store.reader()
        t0 = time.perf_counter()
        for i in order[:m]:
            reader[int(i)]
        print(f"{'reader[i] one at a time, cold':<32} {m / (time.perf_counter() - t0):8.0f} trees/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bytes")
    b.add_argument("--images", type=Path, default=DATA)
    b.add_argument("--limit", type=int, default=None)
    b.add_argument("--bits", type=int, nargs="+", default=[10, 23], help="cost mantissa bits to compare")
    b.add_argument("--level", type=int, default=None, help="Zstandard level (default: the config's)")
    a = sub.add_parser("access")
    a.add_argument("--n-images", type=int, default=10000)
    a.add_argument("--reads", type=int, default=10000)
    args = ap.parse_args()
    if args.what == "bytes":
        bench_bytes(args.images, args.limit, tuple(args.bits), args.level)
    else:
        bench_access(args.n_images, args.reads)


if __name__ == "__main__":
    main()
