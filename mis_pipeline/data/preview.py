"""What the training data looks like: ``mis preview`` figures and proposal statistics.

:func:`render_preview` draws one image of a store: the photo, its merge tree cut at a few
granularities (each region one colour), and a grid of the training samples the dataset
draws from that image (crop, proposal outline, positive clicks green, negative red).
:func:`proposal_stats` draws many proposals and summarises their areas and depths
(``mis inspect STORE --proposals``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig, ProposalConfig

__all__ = ["render_preview", "write_previews", "proposal_stats", "ProposalStats", "sample_indices_of_image"]

log = logging.getLogger(__name__)


def sample_indices_of_image(ds: Any, image_index: int, count: int, epoch: int = 0) -> list[int]:
    """The first ``count`` sample indices of ``epoch`` drawn from store image ``image_index``
    (one per pass over the images; fewer if the epoch is shorter)."""
    from .seeding import epoch_permutation

    pos = np.flatnonzero(ds.ok == image_index)
    if pos.size == 0:
        raise ValueError(f"store image {image_index} has no tree (failed record): nothing to preview")
    n = ds.n_images
    out = []
    for chunk in range(int(count)):
        index = chunk * n + int(np.flatnonzero(epoch_permutation(ds.seed, epoch, chunk, n) == pos[0])[0])
        if index >= len(ds):
            break
        out.append(index)
    return out


def _region_colours(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 3) uint8`` well-spread colours (golden-ratio hues, fixed order)."""
    import colorsys

    h = (np.arange(n) * 0.618033988749895 + 0.11 * seed) % 1.0
    return np.array([colorsys.hsv_to_rgb(x, 0.75, 0.95) for x in h]) * 255


def _cut_image(image: np.ndarray, tree: Any, n_regions: int) -> np.ndarray:
    """The image with the tree cut into ``n_regions`` painted over it (60 % colour, white borders)."""
    from ..merge.index import grid_cell_of_pixels
    from ..pipeline.demo import cut_labels

    labels = cut_labels(tree.children, tree.n_leaves, n_regions).reshape(tree.grid_shape)
    rows, cols = grid_cell_of_pixels(image.shape[:2], tree.grid_shape)
    lab = labels[rows[:, None], cols[None, :]]
    colours = _region_colours(int(lab.max()) + 1)
    out = (0.4 * image + 0.6 * colours[lab]).astype(np.uint8)
    edge = np.zeros(lab.shape, bool)
    edge[:-1] |= lab[:-1] != lab[1:]
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    out[edge] = 255
    return out


def _outline(mask: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` inner boundary of ``mask`` (4-neighbour)."""
    m = np.asarray(mask, bool)
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def draw_sample(ax: Any, sample: dict[str, Any], title: str = "") -> None:
    """Draw one training sample on a matplotlib axis: crop, proposal outline (yellow, proposal
    tinted), positive clicks green, negative red."""
    img = np.asarray(sample["image"]).astype(np.float32)
    mask = np.asarray(sample["mask"], bool)
    shown = img.copy()
    shown[mask] = 0.75 * shown[mask] + 0.25 * np.array([255, 255, 0], np.float32)
    edge = _outline(mask)
    shown[edge] = (255, 255, 0)
    ax.imshow(shown.astype(np.uint8))
    pts, lab, valid = (np.asarray(sample[k]) for k in ("points", "labels", "valid"))
    for want, colour in ((1, "#00e000"), (0, "#ff2020")):
        sel = valid & (lab == want)
        if sel.any():
            ax.scatter(pts[sel, 1], pts[sel, 0], s=22, c=colour, edgecolors="white", linewidths=0.8)
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def render_preview(ds: Any, image_index: int, path: str | Path, *, n_samples: int = 8,
                   levels: tuple[int, ...] = (2, 4, 8, 16), epoch: int = 0) -> Path:
    """Write the preview PNG of store image ``image_index`` of ``ds`` (a ProposalDataset).

    Top row: the image and the merge tree cut into each of ``levels`` regions (the partition
    left after undoing the last ``k - 1`` merges; each colour is one tree node). Below: the
    first ``n_samples`` training samples of ``epoch`` drawn from this image (the exact ones
    the trainer sees when the epoch is long enough), each titled with its sample index, node
    id, node depth, area and click counts.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    image = ds.load_image(image_index)
    tree = ds.tree(image_index)
    indices = sample_indices_of_image(ds, image_index, n_samples, epoch)
    ncols = max(len(levels) + 1, min(max(len(indices), 1), 6))
    nrows = 1 + math.ceil(len(indices) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.4 * ncols, 2.5 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    image_id = str(ds.image_ids[image_index])
    axes[0, 0].imshow(image)
    axes[0, 0].set_title(f"{image_id}\n{image.shape[0]}x{image.shape[1]} px, grid "
                         f"{tree.grid_shape[0]}x{tree.grid_shape[1]}", fontsize=7)
    for col, k in enumerate(levels, start=1):
        k = min(int(k), tree.n_leaves)
        axes[0, col].imshow(_cut_image(image, tree, k))
        axes[0, col].set_title(f"tree cut into {k} regions\n(last {k - 1} merges undone)", fontsize=7)
    sizes, depth = tree.index.sizes, tree.index.depth
    for j, index in enumerate(indices):
        s = ds.sample(index, epoch)
        node = int(s["node"])
        npos = int((s["valid"] & (s["labels"] == 1)).sum())
        nneg = int((s["valid"] & (s["labels"] == 0)).sum())
        title = (f"sample {index}: node {node}, depth {int(depth[node])}\n"
                 f"{sizes[node] / tree.n_leaves:.0%} of grid, {npos}+ {nneg}- clicks")
        draw_sample(axes[1 + j // ncols, j % ncols], s, title)
    fig.suptitle("merge-tree cuts (top) and training samples: proposal outlined yellow, "
                 "positive clicks green, negative red", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def write_previews(store: Any, out_dir: str | Path, *, n_images: int = 8, n_samples: int = 8,
                   seed: int = 0, config: DataConfig | None = None) -> list[Path]:
    """One preview PNG per image for the first ``n_images`` images with a tree of ``store``
    (written to ``out_dir/<image id with / as __>.png``); returns the paths."""
    from .dataset import ProposalDataset

    cfg = config if config is not None else DataConfig()
    probe = ProposalDataset(store, seed=seed, config=cfg, epoch_size=1)
    ds = ProposalDataset(store, seed=seed, config=cfg, epoch_size=max(probe.n_images * n_samples, 1))
    out = []
    for i in ds.ok[: int(n_images)].tolist():
        name = str(ds.image_ids[i]).replace("/", "__").replace("\\", "__")
        out.append(render_preview(ds, int(i), Path(out_dir) / f"{Path(name).stem}.png", n_samples=n_samples))
        log.info("wrote %s", out[-1])
    return out


# --------------------------------------------------------------------------- statistics
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
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
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
        plt.close(fig)
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
