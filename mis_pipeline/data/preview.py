"""What the training data looks like: the ``mis preview`` figures.

:func:`render_preview` draws one image of a store: the photo, its merge tree cut at a few
granularities (each region one colour), and a grid of the training samples the dataset
draws from that image (crop, proposal outline, positive clicks green, negative red).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig

__all__ = ["render_preview", "write_previews", "draw_sample", "sample_indices_of_image"]

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
    # A Figure without pyplot: no global backend switch (notebooks keep inline plots), no
    # figure registry to leak.
    from matplotlib.figure import Figure

    image = ds.load_image(image_index)
    tree = ds.tree(image_index)
    indices = sample_indices_of_image(ds, image_index, n_samples, epoch)
    ncols = max(len(levels) + 1, min(max(len(indices), 1), 6))
    nrows = 1 + math.ceil(len(indices) / ncols)
    fig = Figure(figsize=(2.4 * ncols, 2.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
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
    return out


def write_previews(store: Any, out_dir: str | Path, *, n_images: int = 8, n_samples: int = 8,
                   seed: int = 0, config: DataConfig | None = None) -> list[Path]:
    """One preview PNG per image for the first ``n_images`` images with a tree of ``store``
    (written to ``out_dir/<image id with / as __>.png``); returns the paths."""
    from ..store import TreeStore
    from .dataset import ProposalDataset

    cfg = config if config is not None else DataConfig()
    ts = store if isinstance(store, TreeStore) else TreeStore.open(store)
    # long enough that every image's first n_samples passes are in epoch 0
    ds = ProposalDataset(ts, seed=seed, config=cfg, epoch_size=max(ts.ok_indices().size * n_samples, 1))
    out = []
    for i in ds.ok[: int(n_images)].tolist():
        name = str(ds.image_ids[i]).replace("/", "__").replace("\\", "__")
        out.append(render_preview(ds, int(i), Path(out_dir) / f"{Path(name).stem}.png", n_samples=n_samples))
        log.info("wrote %s", out[-1])
    return out
