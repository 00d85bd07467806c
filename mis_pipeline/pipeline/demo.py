"""The offline demo: natural images bundled with scikit-image -> tree store -> a PNG of levels.

:func:`run_demo` copies a few photographs that ship inside the scikit-image wheel (no
download), preprocesses them with :func:`~mis_pipeline.pipeline.preprocess` (by default the
weights-free ``colour_texture`` backbone and the in-process executor, so it runs anywhere
offline in well under a minute), and draws, for a few images, the partitions the merge tree
gives at a few granularities (each region painted with its mean colour, borders in white).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import PipelineConfig
from ..store import TreeStore
from .run import PreprocessResult, preprocess

__all__ = ["DEMO_IMAGES", "DEMO_OVERRIDES", "DemoResult", "run_demo", "cut_labels", "render_levels"]

log = logging.getLogger(__name__)

#: Files of scikit-image's bundled data folder used by the demo (all ship with the wheel).
DEMO_IMAGES = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "ihc.png",
    "hubble_deep_field.jpg",
    "camera.png",
)

#: Configuration overrides of the demo (the same as the preset mis_pipeline/presets/demo.yaml).
DEMO_OVERRIDES = {"features": {"backbone": "colour_texture"}, "preprocess": {"executor": "local", "batch_size": 4}}


@dataclass(frozen=True)
class DemoResult:
    image_dir: Path
    store: Path
    figure: Path
    preprocess: PreprocessResult


def cut_labels(children: np.ndarray, n_leaves: int, n_regions: int) -> np.ndarray:
    """Leaf labels ``(n_leaves,)`` int64 (0..n_regions-1) of the tree cut into ``n_regions``.

    Regions are numbered in the row-major order of their first leaf.

    Replays the first ``n_leaves - n_regions`` merges with a union-find; the partition is the
    set of regions alive at that step.
    """
    n = int(n_leaves)
    k = int(np.clip(n_regions, 1, n))
    parent = np.arange(2 * n - 1)
    for step in range(n - k):
        a, b = int(children[step, 0]), int(children[step, 1])
        parent[a] = parent[b] = n + step
    # follow each leaf up to its region root among the first n - k merges
    root = np.arange(n)
    while True:
        nxt = parent[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    _, first, inverse = np.unique(root, return_index=True, return_inverse=True)
    rank = np.empty(first.size, np.int64)
    rank[np.argsort(first)] = np.arange(first.size)  # number regions in row-major order
    return rank[inverse.ravel()]


def _paint(image: np.ndarray, labels_grid: np.ndarray) -> np.ndarray:
    """Each region of ``labels_grid`` ((gh, gw), upsampled nearest to the image) in its mean colour."""
    h, w = image.shape[:2]
    gh, gw = labels_grid.shape
    rows = np.minimum((np.arange(h) * gh) // h, gh - 1)
    cols = np.minimum((np.arange(w) * gw) // w, gw - 1)
    lab = labels_grid[rows[:, None], cols[None, :]]
    n = int(lab.max()) + 1
    flat = lab.ravel()
    means = np.stack([np.bincount(flat, image[..., c].ravel().astype(np.float64), n) for c in range(3)], 1)
    means /= np.maximum(np.bincount(flat, minlength=n), 1)[:, None]
    out = means[lab].astype(np.uint8)
    edge = np.zeros((h, w), bool)
    edge[:-1] |= lab[:-1] != lab[1:]
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    out[edge] = 255
    return out


def render_levels(store: TreeStore, image_root: Path, image_ids: list[str], levels: tuple[int, ...], path: Path) -> Path:
    """Save a PNG grid: one row per image, the photo then its partition at each level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import load_image

    fig, axes = plt.subplots(len(image_ids), len(levels) + 1, figsize=(3 * (len(levels) + 1), 2.6 * len(image_ids)), squeeze=False)
    for row, image_id in enumerate(image_ids):
        rec = store.get(image_id)
        img = load_image(image_root / image_id)
        axes[row, 0].imshow(img)
        axes[row, 0].set_title(f"{image_id}\n{rec.grid_hw[0]}x{rec.grid_hw[1]} patches", fontsize=8)
        tree = rec.tree
        for col, k in enumerate(levels, start=1):
            if tree is None:
                axes[row, col].text(0.5, 0.5, rec.reason, ha="center")
            else:
                labels = cut_labels(tree.children, tree.n_leaves, k).reshape(tree.grid_shape)
                axes[row, col].imshow(_paint(img, labels))
                axes[row, col].set_title(f"{k} regions", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def copy_demo_images(dest: Path, names: tuple[str, ...] = DEMO_IMAGES) -> Path:
    """Copy scikit-image's bundled photos ``names`` into ``dest`` (no network)."""
    import skimage

    src = Path(skimage.__file__).parent / "data"
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (src / name).is_file():
            log.warning("scikit-image does not ship %s here; skipped", name)
            continue
        shutil.copyfile(src / name, dest / name)
    return dest


def run_demo(
    out_dir: Path,
    config: PipelineConfig,
    *,
    n_images: int = len(DEMO_IMAGES),
    n_shown: int = 4,
    levels: tuple[int, ...] = (64, 16, 4),
    on_progress=None,
) -> DemoResult:
    """Run the demo into ``out_dir`` (``images/``, ``trees.zarr``, ``hierarchy.png``)."""
    out_dir = Path(out_dir)
    image_dir = copy_demo_images(out_dir / "images", DEMO_IMAGES[: max(1, n_images)])
    store_path = out_dir / "trees.zarr"
    result = preprocess(image_dir, store_path, config, on_progress=on_progress)
    store = TreeStore.open(store_path)
    shown = [i for i in store.image_ids if store.get(i).ok][:n_shown]
    figure = render_levels(store, image_dir, shown, levels, out_dir / "hierarchy.png")
    return DemoResult(image_dir=image_dir, store=store_path, figure=figure, preprocess=result)
