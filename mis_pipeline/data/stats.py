"""Numbers about the proposals a tree store yields: their areas and depths, and their recall.

:func:`proposal_stats` draws many proposals and summarises their areas and depths
(``mis inspect STORE --proposals``); :func:`proposal_recall` measures how often sampled
proposals cover an annotated object (the real-data figure of the README).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ProposalConfig

__all__ = ["proposal_stats", "ProposalStats", "proposal_recall", "RecallResult"]


@dataclass(frozen=True)
class ProposalStats:
    """Areas and depths of ``n`` sampled proposals.

    ``area`` (n,) float64: fraction of the patch grid the node covers; ``depth`` (n,) int64:
    edges from the root; ``image_index`` (n,) int64: store index of the image drawn.
    """

    area: np.ndarray
    depth: np.ndarray
    image_index: np.ndarray
    sampler: str
    min_area: float
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        q = (5, 25, 50, 75, 95)
        a = np.percentile(self.area, q)
        d = np.percentile(self.depth, q)
        small = float(np.mean(self.area <= self.min_area))
        return [
            f"proposals        {self.area.size} draws over {np.unique(self.image_index).size} images "
            f"(sampler {self.sampler})",
            "area (of grid)   mean {:.3f}; percentiles 5/25/50/75/95: {}".format(
                float(self.area.mean()), " / ".join(f"{v:.3f}" for v in a)),
            "depth            mean {:.2f}, max {}; percentiles 5/25/50/75/95: {}".format(
                float(self.depth.mean()), int(self.depth.max()), " / ".join(f"{v:g}" for v in d)),
            f"area <= {self.min_area:g}      {small:.2%} of draws (the filter's fall-back after all tries)",
        ]

    def to_dict(self) -> dict[str, Any]:
        q = (5, 25, 50, 75, 95)
        return {
            "draws": int(self.area.size),
            "images": int(np.unique(self.image_index).size),
            "sampler": self.sampler,
            "area_mean": float(self.area.mean()),
            "area_percentiles": dict(zip(map(str, q), np.percentile(self.area, q).tolist(), strict=True)),
            "depth_mean": float(self.depth.mean()),
            "depth_max": int(self.depth.max()),
            "depth_percentiles": dict(zip(map(str, q), np.percentile(self.depth, q).tolist(), strict=True)),
            "fraction_at_or_below_min_area": float(np.mean(self.area <= self.min_area)),
        }

    def plot(self, path: str | Path) -> Path:
        """Histograms of area and depth, one PNG."""
        from matplotlib.figure import Figure  # no pyplot: no global backend switch

        fig = Figure(figsize=(9, 3.2))
        ax1, ax2 = fig.subplots(1, 2)
        ax1.hist(self.area, bins=np.linspace(0, 1, 41), color="#3070b0")
        ax1.axvline(self.min_area, color="#c03030", ls="--", lw=1, label=f"min_area {self.min_area:g}")
        ax1.set_xlabel("proposal area (fraction of the patch grid)")
        ax1.set_ylabel("draws")
        ax1.legend(fontsize=8)
        dmax = int(self.depth.max())
        ax2.hist(self.depth, bins=np.arange(0, dmax + 2) - 0.5, color="#30a060")
        ax2.set_xlabel("proposal depth (edges from the root)")
        ax2.set_ylabel("draws")
        fig.suptitle(f"{self.area.size} proposals ({self.sampler}) over "
                     f"{np.unique(self.image_index).size} images", fontsize=9)
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
        return out


def proposal_stats(store: Any, n: int = 2000, *, seed: int = 0, config: ProposalConfig | None = None) -> ProposalStats:
    """Draw ``n`` proposals (image uniformly among those with a tree, then the configured
    sampler) and return their areas and depths; no image is decoded."""
    from ..proposals import sample_proposal
    from ..store import TreeStore

    cfg = config if config is not None else ProposalConfig()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    ts = store if isinstance(store, TreeStore) else TreeStore.open(store)
    ok = ts.ok_indices()
    if ok.size == 0:
        raise ValueError(f"tree store {ts.path} has no image with a tree")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x57A7]))
    images = ok[rng.integers(0, ok.size, int(n))]
    reader = ts.reader()
    trees: dict[int, Any] = {}
    area = np.empty(int(n), np.float64)
    depth = np.empty(int(n), np.int64)
    for k, i in enumerate(images.tolist()):
        tree = trees.get(i)
        if tree is None:
            tree = trees[i] = reader.read([i])[0]
        node = int(sample_proposal(tree, rng, cfg))
        area[k] = tree.index.sizes[node] / tree.n_leaves
        depth[k] = tree.index.depth[node]
    return ProposalStats(area=area, depth=depth, image_index=images.astype(np.int64), sampler=cfg.sampler,
                         min_area=float(cfg.min_area))


@dataclass(frozen=True)
class RecallResult:
    """Per annotated object: the best IoU among ``n`` sampled proposals of its image's tree.

    ``sample_ids`` (m,) str; ``best_iou`` (m,) float64; ``best_node`` (m,) int64;
    ``distinct`` (m,) int64: how many different nodes the ``n`` draws hit.
    """

    sample_ids: tuple[str, ...]
    best_iou: np.ndarray
    best_node: np.ndarray
    distinct: np.ndarray
    n: int
    threshold: float

    @property
    def recall(self) -> float:
        """Fraction of objects with at least one proposal at IoU >= ``threshold``."""
        return float(np.mean(self.best_iou >= self.threshold))

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": len(self.sample_ids),
            "proposals_per_image": self.n,
            "iou_threshold": self.threshold,
            "recall": self.recall,
            "best_iou_mean": float(self.best_iou.mean()),
            "best_iou_median": float(np.median(self.best_iou)),
            "distinct_nodes_mean": float(self.distinct.mean()),
            "per_object": {s: round(float(v), 4) for s, v in zip(self.sample_ids, self.best_iou, strict=True)},
        }


def _iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None) -> float:
    if ignore is not None:
        pred, gt = pred & ~ignore, gt & ~ignore
    union = np.count_nonzero(pred | gt)
    return float(np.count_nonzero(pred & gt) / union) if union else 0.0


def proposal_recall(store: Any, dataset: Any, n: int = 200, *, seed: int = 0, threshold: float = 0.5,
                    config: ProposalConfig | None = None) -> RecallResult:
    """How often at least one of ``n`` sampled proposals matches an annotated object.

    For each object of ``dataset`` (an evaluation dataset, e.g. ``GrabCutDataset``), the
    store record whose image id has the same stem (file name up to the first dot) is found,
    ``n`` proposals are drawn from its tree with the configured sampler (seeded by ``seed``
    and the object's position), and the best IoU of their masks at image resolution (nearest
    neighbour from the grid, the dataset's ignore band excluded) is kept. No augmentation.
    """
    from ..proposals import node_mask, sample_proposal
    from ..store import TreeStore

    cfg = config if config is not None else ProposalConfig()
    ts = store if isinstance(store, TreeStore) else TreeStore.open(store)
    by_stem = {Path(i).name.split(".")[0]: k for k, i in enumerate(ts.image_ids)}
    ids, best, nodes, distinct = [], [], [], []
    for j, sid in enumerate(dataset.ids):
        stem = sid.split("#")[0]
        if stem not in by_stem:
            raise KeyError(f"object {sid!r}: no image with stem {stem!r} in store {ts.path}")
        tree = ts.tree(by_stem[stem])
        if tree is None:
            raise ValueError(f"object {sid!r}: its image failed in store {ts.path} (no tree)")
        s = dataset.load(j)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x2EC4, j]))
        drawn = sorted({int(sample_proposal(tree, rng, cfg)) for _ in range(int(n))})
        ious = [_iou(node_mask(tree, v, s.gt.shape), s.gt, s.ignore) for v in drawn]
        k = int(np.argmax(ious))
        ids.append(sid)
        best.append(ious[k])
        nodes.append(drawn[k])
        distinct.append(len(drawn))
    return RecallResult(tuple(ids), np.array(best, np.float64), np.array(nodes, np.int64),
                        np.array(distinct, np.int64), int(n), float(threshold))
