"""Unsupervised RefCut pairs mined from two tree stores (new: no paper does this).

RefCut trains on part-annotated pairs (:mod:`.pairs`). Here the pairs come from the merge trees
of MIS instead, so the reference branch can be trained without part labels:

1. the target is an MIS training sample of store A (:class:`~mis_pipeline.data.ProposalDataset`:
   a proposal node ``a`` drawn top-down, augmented, with simulated clicks);
2. a reference image is drawn uniformly from store B (another image than the target's when
   the stores are the same);
3. every node of the reference tree gets its mean patch feature (the store keeps no features:
   they are recomputed with the ``features`` backbone, by default the one the store was built
   with, and averaged per node in O(n) through the tree's depth-first leaf spans); among the
   reference nodes whose area passes the proposal filter (``data.proposals.min_area``), the
   one with the highest cosine similarity to node ``a``'s mean feature is the positive
   reference ``M_r^+``;
4. the negative reference ``M_r^-`` is the rest of that node's parent region (its sibling
   subtree), the tree's analogue of "the other parts of the object";
5. the reference masks follow RefCut's 25 % positive-only / 25 % negative-only draw.

Whether this helps is an empirical question the README measures against the supervised pairs.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import numpy as np

from ..config import DataConfig, FeatureConfig, RefCutConfig
from ..data.dataset import SampleSource, _check_seed, _resolve
from ..errors import SampleError
from .pairs import draw_reference_mode

__all__ = ["node_mean_features", "match_node", "MinedPairDataset"]

log = logging.getLogger(__name__)


def node_mean_features(tree: Any, feats: np.ndarray) -> np.ndarray:
    """Mean feature ``(2n - 1, C)`` float32 of every node of ``tree`` from patch features
    ``feats (grid_h, grid_w, C)`` (row-major leaves), by prefix sums over the leaf order."""
    idx = tree.index
    gh, gw = idx.grid_shape
    f = np.asarray(feats, dtype=np.float64)
    if f.shape[:2] != (gh, gw):
        raise ValueError(f"features of grid {f.shape[:2]} do not match the tree's grid {(gh, gw)}")
    flat = f.reshape(gh * gw, -1)[idx.order]
    cs = np.concatenate([np.zeros((1, flat.shape[1])), np.cumsum(flat, axis=0)])
    sums = cs[idx.stop] - cs[idx.start]
    return (sums / idx.sizes[:, None]).astype(np.float32)


def match_node(query: np.ndarray, node_feats: np.ndarray, candidates: np.ndarray) -> tuple[int, float]:
    """``(node, cosine similarity)`` of the candidate whose mean feature is closest to ``query``."""
    if candidates.size == 0:
        raise ValueError("no candidate node to match")
    q = np.asarray(query, dtype=np.float64)
    c = np.asarray(node_feats[candidates], dtype=np.float64)
    sim = c @ q / (np.linalg.norm(c, axis=1) * np.linalg.norm(q) + 1e-12)
    k = int(np.argmax(sim))
    return int(candidates[k]), float(sim[k])


def _grid_features(backbone: Any, image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Patch features of ``image`` on the tree's grid (area-resampled when the grids differ)."""
    import cv2

    f = backbone.features_for_image(image)
    if f.shape[:2] != tuple(grid):
        f = cv2.resize(f, (grid[1], grid[0]), interpolation=cv2.INTER_AREA).reshape(grid[0], grid[1], -1)
    return f


class MinedPairDataset(SampleSource):
    """RefCut samples with references mined from tree stores (module docstring).

    ``sample(index, epoch)`` returns the keys of :class:`~mis_pipeline.data.ProposalDataset`
    plus ``ref_image (crop, crop, 3) uint8``, ``ref_pos``, ``ref_neg (crop, crop) bool``,
    ``ref_index`` (store-B index) and ``ref_node``, ``ref_similarity`` (float32).

    Parameters
    ----------
    store_a, store_b : target and reference tree stores (paths or ``TreeStore``; may be one store).
    features : backbone of the mean node features; default the backbone recorded in store B's
        configuration (``colour_texture`` when it records none).
    seed, config, refcut : as for the other training datasets.
    """

    def __init__(
        self,
        store_a: Any,
        store_b: Any,
        *,
        seed: int = 0,
        config: DataConfig | None = None,
        refcut: RefCutConfig | None = None,
        features: FeatureConfig | None = None,
        crop_size: int | None = None,
        epoch_size: int | None = None,
    ) -> None:
        from ..data import ProposalDataset

        self.config = _resolve(config, crop_size, epoch_size, None)
        self.seed = _check_seed(seed)
        self.refcut = refcut if refcut is not None else RefCutConfig()
        self.targets = ProposalDataset(store_a, seed=self.seed, config=self.config)
        # the reference store is read through a second ProposalDataset (its readers and caches)
        self.refs = ProposalDataset(store_b, seed=self.seed + 1, config=self.config)
        self.same_store = str(self.targets.store_path) == str(self.refs.store_path)
        if self.same_store and self.refs.n_images < 2:
            raise SampleError("mined RefCut pairs from one store need at least two images with trees")
        self.epoch_size = self.targets.epoch_size
        self.crop_size = self.targets.crop_size
        if features is None:
            from ..config import from_dict

            recorded = (self.refs._store().config or {}).get("features", {})
            features = from_dict(FeatureConfig, {"backbone": recorded.get("backbone", "colour_texture")})
        self.features = features

    def __repr__(self) -> str:
        return (f"MinedPairDataset(targets={self.targets.store_path!r}, references={self.refs.store_path!r}, "
                f"epoch_size={self.epoch_size}, crop_size={self.crop_size}, seed={self.seed})")

    def _backbone(self) -> Any:
        local = self._local()
        if "backbone" not in local:
            from ..features import get_backbone

            local["backbone"] = get_backbone(self.features)
        return local["backbone"]

    def node_features(self, ds: Any, image_index: int) -> np.ndarray:
        """Mean features of every node of image ``image_index`` of ``ds`` (LRU-cached per process)."""
        cache: OrderedDict = self._local().setdefault("node_feats", OrderedDict())
        key = (id(ds), image_index)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        tree = ds.tree(image_index)
        feats = _grid_features(self._backbone(), ds.load_image(image_index), tree.grid_shape)
        out = node_mean_features(tree, feats)
        cache[key] = out
        while len(cache) > 64:
            cache.popitem(last=False)
        return out

    def _candidates(self, tree: Any) -> np.ndarray:
        idx = tree.index
        n = idx.grid_shape[0] * idx.grid_shape[1]
        nodes = np.arange(2 * n - 2)  # every node but the root
        ok = idx.sizes[nodes] > self.config.proposals.min_area * n
        return nodes[ok] if ok.any() else nodes

    def sample(self, index: int, epoch: int = 0) -> dict[str, Any]:
        import cv2

        from ..data.seeding import sample_seeds
        from ..proposals import node_mask

        index, epoch = self._check_index(index, epoch)
        s = self.targets.sample(index, epoch)
        t_img, t_node = int(s["image_index"]), int(s["node"])
        q = self.node_features(self.targets, t_img)[t_node]
        rng, _ = sample_seeds(self.seed, epoch, index, 0x4EF)
        pool = self.refs.ok if not self.same_store else self.refs.ok[self.refs.ok != t_img]
        r_img = int(pool[int(rng.integers(pool.size))])
        tree = self.refs.tree(r_img)
        node, sim = match_node(q, self.node_features(self.refs, r_img), self._candidates(tree))
        image = self.refs.load_image(r_img)
        hw = image.shape[:2]
        pos = node_mask(tree, node, hw)
        parent = int(tree.index.parent[node])
        neg = node_mask(tree, parent, hw) & ~pos
        mode = draw_reference_mode(rng, self.refcut)
        if mode == "positive":
            neg = np.zeros_like(neg)
        elif mode == "negative":
            pos = np.zeros_like(pos)
        c = self.crop_size
        s.update({
            "ref_image": cv2.resize(image, (c, c), interpolation=cv2.INTER_LINEAR),
            "ref_pos": cv2.resize(pos.astype(np.uint8), (c, c), interpolation=cv2.INTER_NEAREST).astype(bool),
            "ref_neg": cv2.resize(neg.astype(np.uint8), (c, c), interpolation=cv2.INTER_NEAREST).astype(bool),
            "ref_index": np.int64(r_img),
            "ref_node": np.int64(node),
            "ref_similarity": np.float32(sim),
        })
        return s
