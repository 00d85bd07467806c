"""The methods of issue 16 plugged into the trainer through its hooks (see :mod:`.step`).

- ``train.loss = "icl"``: CFR-ICL's Iterative Click Loss (:class:`~mis_pipeline.losses.icl.IclLossHook`).
- ``vtmr.enabled``: VTMR's mask-matching regularisation, in any mode
  (:class:`~mis_pipeline.losses.vtmr.VtmrLossHook`). Not combined with ICL (both replace the
  trained forward).
- ``train.mode = "refcut"``: RefCut's reference branch (the model gets the prompt MLPs, every
  forward of a step gets the prompt of the sample's reference) on pairs from part labels
  (:class:`~mis_pipeline.refcut.PartPairDataset`) or mined from two tree stores
  (:class:`~mis_pipeline.refcut.MinedPairDataset`).
- ``suem.enabled`` (``train.mode = "finetune"``): CFR-ICL's SUEM copy-paste on the annotated
  samples (:class:`SuemSource`).
- ``taiz.train_prob`` (any mode): VTMR's TAIZ distortion of that fraction of the training
  samples, the target mask as guidance (:class:`TaizSource`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.dataset import SampleSource, sample_fields
from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..config import PipelineConfig

__all__ = ["method_loss_hook", "method_prompt_fn", "refcut_prompt", "refcut_source", "prepare_model",
           "SuemSource", "TaizSource", "taiz_warp_sample", "wrap_source"]


def method_loss_hook(cfg: PipelineConfig) -> Any:
    """The loss hook the configuration asks for, or None (the trainer's default forward)."""
    icl = cfg.train.loss == "icl"
    if icl and cfg.vtmr.enabled:
        raise ConfigError("vtmr.enabled", True, "false when train.loss is 'icl' (both replace the trained forward)")
    if icl:
        from ..losses.icl import IclLossHook

        return IclLossHook(cfg.icl)
    if cfg.vtmr.enabled:
        from ..losses.vtmr import VtmrLossHook

        return VtmrLossHook(cfg.vtmr)
    return None


def refcut_prompt(model: Any, batch: Any) -> Any:
    """RefCut prompt ``(B, D)`` of a training batch (``batch.extra``: ``ref_image (B, H, W, 3)``
    uint8, ``ref_pos``/``ref_neg (B, H, W)`` bool; an empty mask contributes nothing)."""
    ex = batch.extra
    for key in ("ref_image", "ref_pos", "ref_neg"):
        if key not in ex:
            raise ConfigError("train.mode", "refcut", f"samples with a {key!r} key (a RefCut pair source)")
    image = ex["ref_image"].permute(0, 3, 1, 2).float().div(255.0)
    return model.reference_prompt(image, ex["ref_pos"].bool(), ex["ref_neg"].bool())


def method_prompt_fn(cfg: PipelineConfig) -> Any:
    """``refcut_prompt`` in mode ``refcut``, else None."""
    return refcut_prompt if cfg.train.mode == "refcut" else None


def prepare_model(model: Any, cfg: PipelineConfig) -> Any:
    """Mode ``refcut``: give the model the reference branch (zero-initialised output layers, so
    a plain checkpoint fine-tuned with it starts as itself)."""
    if cfg.train.mode == "refcut":
        from ..refcut import attach_reference_branch

        attach_reference_branch(model, hidden_ratio=cfg.refcut.hidden_ratio, mask_resize=cfg.refcut.mask_resize)
    return model


def refcut_source(cfg: PipelineConfig, parts: str | None, store: str | None, reference_store: str | None) -> Any:
    """RefCut pairs: from part labels (``parts``) or mined from ``store`` and ``reference_store``."""
    if parts is not None:
        if store is not None or reference_store is not None:
            raise ConfigError("--store", store or reference_store, "no tree store with --parts (one pair source)")
        from ..refcut import PartPairDataset

        return PartPairDataset(parts, seed=cfg.seed, config=cfg.data, refcut=cfg.refcut)
    if store is None:
        raise ConfigError("--parts", None, "a part dataset (--parts DIR), or --store A [--reference-store B] "
                          "for mined pairs, in train.mode 'refcut'")
    from ..refcut import MinedPairDataset

    return MinedPairDataset(store, reference_store or store, seed=cfg.seed, config=cfg.data, refcut=cfg.refcut,
                            features=None)


def wrap_source(source: Any, cfg: PipelineConfig, mode: str) -> Any:
    """The sample source with the configured augmentations of issue 16 around it (SUEM for
    ``finetune``, then TAIZ for any mode)."""
    if mode == "finetune" and cfg.suem.enabled:
        source = SuemSource(source, cfg)
    if cfg.taiz.train_prob > 0:
        source = TaizSource(source, cfg)
    return source


class SuemSource(SampleSource):
    """SUEM copy-paste around an annotated sample source (same ``sample(index, epoch)`` keys).

    The extra samples are other samples of the same epoch drawn by a generator seeded from
    ``(seed, epoch, index)``; the clicks are simulated again on the new mask (the public code
    applies the copy-paste before the point sampler).
    """

    _TAG = 0x5E3

    def __init__(self, source: Any, cfg: PipelineConfig) -> None:
        self.source = source
        self.suem = cfg.suem
        self.clicks = cfg.data.clicks
        self.config = source.config
        self.seed = int(source.seed)
        self.epoch_size = int(source.epoch_size)

    def __repr__(self) -> str:
        return f"SuemSource({self.source!r})"

    def sample(self, index: int, epoch: int = 0) -> dict[str, Any]:
        from .. import clicks as click_lib
        from ..data.seeding import sample_seeds
        from ..data.suem import suem_augment

        index, epoch = self._check_index(index, epoch)
        s = self.source.sample(index, epoch)
        rng, _ = sample_seeds(self.seed, epoch, index, self._TAG)

        def draw_extra(r: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
            j = int(r.integers(self.epoch_size - 1))
            e = self.source.sample(j + (j >= index), epoch)
            return e["image"], e["mask"]

        res = suem_augment(s["image"], s["mask"], draw_extra, rng, self.suem)
        if not res.modes:
            return s
        if not res.mask.any():  # an exclusion that hid everything: keep the original sample
            return s
        c = click_lib.sample_clicks(res.mask, rng, self.clicks)
        s.update(sample_fields(res.image, res.mask, c))
        return s


def taiz_warp_sample(image: np.ndarray, mask: np.ndarray, sigma: float, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """VTMR's training distortion: ``image (H, W, 3) uint8`` and ``mask (H, W) bool`` warped by
    the TAIZ map whose guidance is the mask itself, at the same size (bilinear / nearest)."""
    import cv2

    from ..refine import taiz_warp

    h, w = mask.shape
    warp = taiz_warp(mask.astype(np.float32), (h, w), sigma=sigma, floor=floor)
    map_y = np.repeat((warp.ty * h - 0.5)[:, None], w, axis=1).astype(np.float32)
    map_x = np.repeat((warp.tx * w - 0.5)[None, :], h, axis=0).astype(np.float32)
    img = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    m = cv2.remap(mask.astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return img, m.astype(bool)


class TaizSource(SampleSource):
    """VTMR's TAIZ training distortion around any sample source (``taiz.train_prob`` of the
    samples, drawn per ``(seed, epoch, index)``); clicks are simulated again on the warped mask."""

    _TAG = 0x7A12

    def __init__(self, source: Any, cfg: PipelineConfig) -> None:
        self.source = source
        self.taiz = cfg.taiz
        self.clicks = cfg.data.clicks
        self.config = source.config
        self.seed = int(source.seed)
        self.epoch_size = int(source.epoch_size)

    def __repr__(self) -> str:
        return f"TaizSource({self.source!r}, prob={self.taiz.train_prob})"

    def sample(self, index: int, epoch: int = 0) -> dict[str, Any]:
        from .. import clicks as click_lib
        from ..data.seeding import sample_seeds

        index, epoch = self._check_index(index, epoch)
        s = self.source.sample(index, epoch)
        rng, _ = sample_seeds(self.seed, epoch, index, self._TAG)
        if rng.random() >= self.taiz.train_prob or not s["mask"].any():
            return s
        img, m = taiz_warp_sample(s["image"], s["mask"], self.taiz.sigma, self.taiz.floor)
        if not m.any():
            return s
        c = click_lib.sample_clicks(m, rng, self.clicks)
        s.update(sample_fields(img, m, c))
        return s
