"""Training samples from a tree store: image -> proposal -> augmentation -> clicks.

:class:`ProposalDataset` is the one function ``sample(index, epoch)`` (DESIGN.md "Training
sample") under two front ends (:mod:`.frontends`: a ``torch.utils.data.Dataset`` and a Ray
Data dataset). A sample is computed as MIS trains:

1. the epoch's image order: sample ``index`` of ``epoch`` takes image
   ``ok[perm_k[index % n_ok]]`` with ``k = index // n_ok`` and ``perm_k`` a seeded permutation
   of the stored images that have a tree (failed records are never drawn; every image is used
   once per pass, the RITM ``epoch_len`` loader draws with replacement instead);
2. the image is decoded from the record's ``source`` (or ``image_root / image_id``) exactly as
   the preprocessing decoded it (:func:`mis_pipeline.io.load_image`), and checked against the
   record's ``orig_hw``;
3. a node of its merge tree (:func:`mis_pipeline.proposals.sample_proposal`, MIS Algorithm 2
   with the area filter by default) and its mask at image size (nearest neighbour through the
   leaf spans);
4. the augmentation (:class:`.augment.Augmenter`) of image and mask together (and of the
   "other objects" mask with ``clicks.other_source = "tree"``);
5. if fewer than ``clicks.min_object_area`` pixels (at least 1) of the proposal survive the
   augmentation, steps 3-4 are re-drawn with the next sub-seed, at most ``max_redraws`` times;
   then :class:`~mis_pipeline.errors.SampleError` names the image, seed, epoch and index
   (RITM re-draws the augmentation of the same object until one survives, without a limit);
6. clicks (:func:`mis_pipeline.clicks.sample_clicks`, RITM MultiPointSampler semantics).

Every draw comes from generators keyed by ``(seed, epoch, index, attempt)``
(:mod:`.seeding`), so a sample is bit-identical in any process. Process-local state (the
store handle, its chunk-caching reader, an LRU of decoded trees, the augmentation transforms)
is rebuilt lazily after pickling or forking, as DataLoader and Ray workers do.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, SampleError, raise_if_interrupted
from .seeding import epoch_permutation, sample_seeds

__all__ = ["SampleSource", "ProposalDataset", "SAMPLE_KEYS"]

log = logging.getLogger(__name__)

#: Keys of a sample dict, in order (see :meth:`ProposalDataset.sample`).
SAMPLE_KEYS = ("image", "mask", "points", "labels", "valid", "image_index", "node", "index", "epoch")


def _perm_cache_entries(n: int) -> int:
    """How many epoch permutations of ``n`` images a process keeps: about 64 MB of them, at
    least 4 (every pass of a small store stays cached even when indices come shuffled)."""
    return max(4, (1 << 23) // max(int(n), 1))


class _Timer:
    """Accumulates wall time per component (``timer["decode"]`` seconds); used by the benchmark."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.totals[name] = self.totals.get(name, 0.0) + now - self._t
        self._t = now


class _NoTimer:
    def lap(self, name: str) -> None:
        pass


_NO_TIMER = _NoTimer()


class SampleSource(ABC):
    """Base of the datasets with the ``sample(index, epoch)`` contract: length, epochs and the
    two front ends. Subclasses implement :meth:`sample` and keep process-local state out of
    pickles (:meth:`_local`)."""

    epoch_size: int
    seed: int
    config: DataConfig

    def __len__(self) -> int:
        return int(self.epoch_size)

    def _check_index(self, index: int, epoch: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"sample index must be an integer, got {type(index).__name__}")
        if not 0 <= int(index) < self.epoch_size:
            raise IndexError(f"sample index {index} out of range: the epoch has {self.epoch_size} samples")
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or int(epoch) < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        return int(index), int(epoch)

    @abstractmethod
    def sample(self, index: int, epoch: int = 0) -> dict[str, Any]:
        """The training sample ``index`` of ``epoch`` (the DESIGN.md sample contract)."""

    def torch_dataset(self, epoch: int = 0) -> Any:
        """A ``torch.utils.data.Dataset`` over this source (``len`` = epoch size, ``set_epoch``)."""
        from .frontends import TorchSampleDataset

        return TorchSampleDataset(self, epoch)

    def to_ray(self, epoch: int = 0, *, batch_size: int = 16, **map_kwargs: Any) -> Any:
        """A ``ray.data.Dataset`` of this epoch's samples (see :func:`.frontends.to_ray`)."""
        from .frontends import to_ray

        return to_ray(self, epoch, batch_size=batch_size, **map_kwargs)

    # process-local state ---------------------------------------------------------------
    _local_state: dict[str, Any] | None = None
    _local_pid: int = -1

    def _local(self) -> dict[str, Any]:
        """This process's caches (created on first use, again after a fork or unpickling)."""
        if self._local_state is None or self._local_pid != os.getpid():
            self._local_state = {}
            self._local_pid = os.getpid()
        return self._local_state

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_local_state"] = None
        state["_local_pid"] = -1
        return state


def _check_seed(seed: Any) -> int:
    """``seed`` as an int; ConfigError unless it is an integer >= 0 (bool is not)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed", seed, "an integer >= 0")
    return int(seed)


def _resolve(config: DataConfig | None, crop_size: int | None, epoch_size: int | None,
             image_root: str | os.PathLike[str] | None) -> DataConfig:
    """``config`` with the explicitly given keyword arguments applied (they win)."""
    from ..config import from_dict, to_dict

    cfg = config if config is not None else DataConfig()
    if not isinstance(cfg, DataConfig):
        raise ConfigError("data", type(cfg).__name__, "a mis_pipeline.config.DataConfig")
    over: dict[str, Any] = {}
    if crop_size is not None:
        over["augment"] = {**to_dict(cfg.augment), "crop_size": crop_size}
    if epoch_size is not None:
        over["epoch_size"] = epoch_size
    if image_root is not None:
        over["image_root"] = str(image_root)
    if not over:
        return cfg
    return from_dict(DataConfig, {**to_dict(cfg), **over})


class ProposalDataset(SampleSource):
    """Training samples of MIS from a tree store (see the module doc for each step).

    Parameters
    ----------
    store : TreeStore, str or PathLike
        The tree store (or its path).
    crop_size, epoch_size, image_root : optional
        Override ``config.augment.crop_size``, ``config.epoch_size`` and ``config.image_root``.
    seed : int
        Base seed; sample ``(epoch, index)`` is a pure function of it.
    config : DataConfig
        Proposal sampler, clicks, augmentation, re-draw limit, tree cache.

    Raises
    ------
    SampleError
        If the store has no image with a tree.
    """

    def __init__(
        self,
        store: Any,
        *,
        crop_size: int | None = None,
        epoch_size: int | None = None,
        seed: int = 0,
        image_root: str | os.PathLike[str] | None = None,
        config: DataConfig | None = None,
    ) -> None:
        from ..store import TreeStore

        self.config = _resolve(config, crop_size, epoch_size, image_root)
        self.seed = _check_seed(seed)
        self.epoch_size = int(self.config.epoch_size)
        self.crop_size = int(self.config.augment.crop_size)
        ts = store if isinstance(store, TreeStore) else TreeStore.open(store)
        self.store_path = ts.path
        self.ok = np.asarray(ts.ok_indices(), dtype=np.int64)
        if self.ok.size == 0:
            raise SampleError(f"tree store {ts.path} has no image with a tree ({len(ts)} records, all failed)")
        self.image_ids = ts.column("image_id")
        self.sources = ts.column("source")
        self.orig_hw = np.asarray(ts.column("orig_hw"), dtype=np.int64)
        self.token = uuid.uuid4().hex  # identifies this dataset in per-worker caches
        self._local()["store"] = ts

    def __repr__(self) -> str:
        return (f"ProposalDataset({self.store_path!r}, images={self.ok.size}, epoch_size={self.epoch_size}, "
                f"crop_size={self.crop_size}, seed={self.seed})")

    # ------------------------------------------------------------------ image order
    @property
    def n_images(self) -> int:
        """Images that can be drawn (records with a tree)."""
        return int(self.ok.size)

    def image_of(self, index: int, epoch: int = 0) -> int:
        """Store index of the image sample ``index`` of ``epoch`` is drawn from."""
        index, epoch = self._check_index(index, epoch)
        n = self.ok.size
        chunk, pos = divmod(index, n)
        perms = self._local().setdefault("perms", OrderedDict())
        key = (epoch, chunk)
        if key not in perms:
            perms[key] = epoch_permutation(self.seed, epoch, chunk, n)
            while len(perms) > _perm_cache_entries(n):
                perms.popitem(last=False)
        return int(self.ok[perms[key][pos]])

    # ------------------------------------------------------------------ process-local readers
    def _store(self) -> Any:
        local = self._local()
        if "store" not in local:
            from ..store import TreeStore

            local["store"] = TreeStore.open(self.store_path)
        return local["store"]

    def tree(self, image_index: int) -> Any:
        """The merge tree of store image ``image_index`` (LRU-cached per process, index built)."""
        local = self._local()
        cache: OrderedDict[int, Any] = local.setdefault("trees", OrderedDict())
        tree = cache.get(image_index)
        if tree is not None:
            cache.move_to_end(image_index)
            return tree
        if "reader" not in local:
            local["reader"] = self._store().reader()
        tree = local["reader"].read([image_index])[0]
        if tree is None:
            raise SampleError(f"image {self.image_ids[image_index]!r} (store index {image_index}) has no tree")
        tree.index  # noqa: B018 - derive sizes/spans once, cached on the tree with it
        if self.config.tree_cache > 0:
            cache[image_index] = tree
            while len(cache) > self.config.tree_cache:
                cache.popitem(last=False)
        return tree

    def image_path(self, image_index: int) -> str:
        """Where image ``image_index`` is read from: ``image_root / image_id`` or its source."""
        root = self.config.image_root
        if root is not None:
            return str(Path(root) / str(self.image_ids[image_index]))
        return str(self.sources[image_index])

    def load_image(self, image_index: int) -> np.ndarray:
        """Decode image ``image_index`` as the preprocessing did; ``(H, W, 3) uint8``."""
        from ..io import load_image

        path = self.image_path(image_index)
        image = _decode_cv2(path) if self.config.decoder == "cv2" else None
        try:
            # no pixel cap: the preprocessing accepted this image already
            image = load_image(path, max_pixels=1 << 62) if image is None else image
        except Exception as exc:
            raise_if_interrupted(exc)
            raise SampleError(
                f"cannot read image {self.image_ids[image_index]!r} from {path}: {exc}"
                + ("" if self.config.image_root else " (set data.image_root for a store made elsewhere)")
            ) from exc
        hw = tuple(int(v) for v in self.orig_hw[image_index])
        if image.shape[:2] != hw:
            raise SampleError(
                f"image {path} is {image.shape[0]}x{image.shape[1]} (rows x cols) but the store recorded "
                f"{hw[0]}x{hw[1]} for {self.image_ids[image_index]!r}: not the image the tree was made from"
            )
        return image

    def _augmenter(self) -> Any:
        local = self._local()
        if "augmenter" not in local:
            from .augment import Augmenter

            local["augmenter"] = Augmenter(self.config.augment)
        return local["augmenter"]

    # ------------------------------------------------------------------ the sample
    def sample(self, index: int, epoch: int = 0) -> dict[str, Any]:
        """Sample ``index`` of ``epoch``: a dict of numpy arrays (DESIGN.md "Training sample").

        Returns
        -------
        dict
            ``image (crop, crop, 3) uint8`` RGB; ``mask (crop, crop) bool`` the proposal;
            ``points (K, 2) int32`` (row, col) in crop pixels, ``labels (K,) int8`` (1
            positive, 0 negative), ``valid (K,) bool`` with ``K = 2 * clicks.max_points``;
            ``image_index`` (store index of the image), ``node`` (merge-tree node id),
            ``index`` and ``epoch`` (int64 scalars, for tracing).
        """
        return self._sample(index, epoch, _NO_TIMER)

    def _sample(self, index: int, epoch: int, timer: Any) -> dict[str, Any]:
        from .. import clicks as click_lib
        from .. import proposals as prop_lib

        index, epoch = self._check_index(index, epoch)
        i = self.image_of(index, epoch)
        timer.lap("order")
        image = self.load_image(i)
        timer.lap("decode")
        tree = self.tree(i)
        timer.lap("tree")
        cfg = self.config
        hw = image.shape[:2]
        augmenter = self._augmenter()
        need = max(int(cfg.clicks.min_object_area), 1)
        areas = []
        for attempt in range(cfg.max_redraws + 1):
            rng, aug_seed = sample_seeds(self.seed, epoch, index, attempt)
            node = int(prop_lib.sample_proposal(tree, rng, cfg.proposals))
            timer.lap("proposal")
            mask = prop_lib.node_mask(tree, node, hw)
            other = _other_mask(prop_lib, tree, node, hw) if cfg.clicks.other_source == "tree" else None
            timer.lap("mask")
            aug = augmenter(image, mask, aug_seed, other=other)
            timer.lap("augment")
            area = int(np.count_nonzero(aug.mask))
            if area >= need:
                break
            areas.append(area)
        else:
            raise SampleError(
                f"sample (seed={self.seed}, epoch={epoch}, index={index}) of image "
                f"{self.image_ids[i]!r}: the proposal kept fewer than {need} px after augmentation in "
                f"all {cfg.max_redraws + 1} draws (areas {areas}); raise data.max_redraws or lower "
                "data.clicks.min_object_area / data.proposals.min_area"
            )
        c = click_lib.sample_clicks(aug.mask, rng, cfg.clicks, other=aug.other)
        timer.lap("clicks")
        return {
            **sample_fields(aug.image, aug.mask, c),
            "image_index": np.int64(i),
            "node": np.int64(node),
            "index": np.int64(index),
            "epoch": np.int64(epoch),
        }

    def timed_sample(self, index: int, epoch: int = 0) -> tuple[dict[str, Any], dict[str, float]]:
        """:meth:`sample` plus the seconds spent per component (order, decode, tree, proposal,
        mask, augment, clicks); what ``benchmarks/bench_samples.py`` reports."""
        timer = _Timer()
        out = self._sample(index, epoch, timer)
        return out, timer.totals


def sample_fields(image: np.ndarray, mask: np.ndarray, clicks: Any) -> dict[str, np.ndarray]:
    """The image, target and click fields of a training sample in the contract's dtypes:
    ``image (H, W, 3) uint8``, ``mask (H, W) bool``, ``points (K, 2) int32`` (row, col),
    ``labels (K,) int8``, ``valid (K,) bool`` from a :class:`~mis_pipeline.clicks.Clicks`."""
    return {
        "image": image,
        "mask": mask,
        "points": np.asarray(clicks.points, dtype=np.int32),
        "labels": np.asarray(clicks.labels, dtype=np.int8),
        "valid": np.asarray(clicks.valid, dtype=bool),
    }


def _other_mask(prop_lib: Any, tree: Any, node: int, hw: tuple[int, int]) -> np.ndarray:
    """``(H, W) bool`` mask of the proposal's "other objects" in the merge tree."""
    fn: Callable[..., np.ndarray] = prop_lib.other_mask
    return np.asarray(fn(tree, node, hw), dtype=bool)


def _decode_cv2(path: str) -> np.ndarray | None:
    """``(H, W, 3) uint8`` RGB by OpenCV (EXIF orientation applied), or None when OpenCV cannot
    read it (URLs, unknown formats, unreadable files: the caller falls back to Pillow)."""
    if "://" in path:
        return None
    import cv2

    flag = getattr(cv2, "IMREAD_COLOR_RGB", None)
    img = cv2.imread(path, flag if flag is not None else cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        return None
    return img if flag is not None else np.ascontiguousarray(img[:, :, ::-1])
