"""The 'model' predictor: a trained SimpleClick checkpoint under SimpleClick's inference.

Per click (:meth:`ModelPredictor.predict`):

1. the zoom strategy picks the *view* the network sees (:class:`View`): with ``zoom="simpleclick"``
   (SimpleClick's ``ZoomIn`` as its evaluation configures it: ``skip_clicks=-1``, a square
   target of the training size, expansion 1.4, minimum crop 200 px, new crop when the box IoU
   falls below 0.5, previous answer thresholded at 0.5) a box around the previous answer and the
   positive clicks, stretched to ``target x target`` px (the first view is the whole image);
   with ``zoom="none"`` the whole image at its own size;
2. the image and the previous answer are cropped and resized to the view (bilinear,
   ``align_corners=True``), the clicks mapped into it (sub-pixel coordinates, disks of
   ``model.click_radius`` drawn around them as SimpleClick's ``DistMaps`` does);
3. one network evaluation (:meth:`ModelPredictor.forward_logits`), with ``flip`` on a batch of
   the view and its mirror image whose logits are averaged (SimpleClick's ``AddHorizontalFlip``:
   the average is taken on logits, before the sigmoid);
4. the probabilities are resized back into the view's box (bilinear, ``align_corners=True``)
   and the rest of the image set to 0.

What is cached per image: the image patch embedding of the current view (and of its mirror
image), reused while the view does not change. Nothing more can be: SimpleClick adds the click
tokens to the image tokens *before* the first transformer block, so every block depends on the
clicks and the whole ViT runs once per click.

Extension points (used by cascade-forward refinement and target-aware zoom): a zoom strategy is
a class with ``reset(hw)`` and ``select(clicks, prev_prob) -> View`` registered in
:data:`ZOOMS`, and a :class:`View` maps images and clicks into the network's input and the
output back (``image``, ``points``, ``paste``, ``key``). :meth:`ModelPredictor.forward_logits`
runs one network evaluation for given clicks and a given previous mask, so a refinement loop
can call it repeatedly on one view.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..clicker import Click
from .base import Predictor, check_image

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ...config import ModelPredictorConfig, PipelineConfig

__all__ = [
    "ModelPredictor",
    "View",
    "FullView",
    "CropView",
    "NoZoom",
    "SimpleClickZoom",
    "TaizZoom",
    "ZOOMS",
    "disk_maps",
    "object_roi",
    "box_iou",
]

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (rmin, rmax, cmin, cmax), inclusive, image pixels


# --------------------------------------------------------------------------- click maps
def disk_maps(points: np.ndarray, positive: np.ndarray, hw: tuple[int, int], radius: float) -> np.ndarray:
    """``(2, H, W) float32`` [positive, negative] disks around sub-pixel clicks.

    ``points (K, 2)`` float ``(row, col)``; pixel ``(y, x)`` is in a disk when
    ``(y - r)^2 + (x - c)^2 <= radius^2`` (SimpleClick's ``DistMaps(use_disks=True)`` rule, which
    takes the zoomed clicks' fractional coordinates as they are). At integer coordinates this is
    :func:`mis_pipeline.clicks.click_maps`.
    """
    h, w = hw
    out = np.zeros((2, h, w), dtype=np.float32)
    r2 = float(radius) ** 2
    for (pr, pc), pos in zip(np.asarray(points, dtype=np.float64), np.asarray(positive, dtype=bool), strict=True):
        r0, r1 = max(0, int(np.ceil(pr - radius))), min(h - 1, int(np.floor(pr + radius)))
        c0, c1 = max(0, int(np.ceil(pc - radius))), min(w - 1, int(np.floor(pc + radius)))
        if r0 > r1 or c0 > c1:
            continue
        yy = (np.arange(r0, r1 + 1, dtype=np.float64) - pr)[:, None] ** 2
        xx = (np.arange(c0, c1 + 1, dtype=np.float64) - pc)[None, :] ** 2
        out[0 if pos else 1, r0 : r1 + 1, c0 : c1 + 1][yy + xx <= r2] = 1.0
    return out


# --------------------------------------------------------------------------- views
class View(ABC):
    """What the network sees for one prediction, and how to map back.

    ``size`` is the network input ``(h, w)``; ``key`` identifies the image content of the view
    (views with equal keys share the cached image embedding).
    """

    size: tuple[int, int]
    key: Any

    @abstractmethod
    def image(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` full-image tensor -> ``(B, C, h, w)`` view."""

    @abstractmethod
    def points(self, clicks: Sequence[Click]) -> np.ndarray:
        """``(K, 2) float64`` click ``(row, col)`` in view pixels."""

    @abstractmethod
    def paste(self, prob: torch.Tensor) -> torch.Tensor:
        """``(1, 1, h, w)`` view probabilities -> ``(1, 1, H, W)`` image probabilities."""


class FullView(View):
    """The whole image at its own size."""

    def __init__(self, hw: tuple[int, int]) -> None:
        self.size = (int(hw[0]), int(hw[1]))
        self.key = ("full", self.size)

    def image(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def points(self, clicks: Sequence[Click]) -> np.ndarray:
        return np.array([[c.row, c.col] for c in clicks], dtype=np.float64).reshape(-1, 2)

    def paste(self, prob: torch.Tensor) -> torch.Tensor:
        return prob


class CropView(View):
    """Box ``roi`` of an ``hw`` image resized to ``size`` (SimpleClick's ``get_roi_image_nd``)."""

    def __init__(self, roi: Box, size: tuple[int, int], hw: tuple[int, int]) -> None:
        self.roi = tuple(int(v) for v in roi)
        self.size = (int(size[0]), int(size[1]))
        self.hw = (int(hw[0]), int(hw[1]))
        self.key = ("crop", self.roi, self.size)

    def image(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        r0, r1, c0, c1 = self.roi
        crop = x[:, :, r0 : r1 + 1, c0 : c1 + 1]
        return F.interpolate(crop, size=self.size, mode="bilinear", align_corners=True)

    def points(self, clicks: Sequence[Click]) -> np.ndarray:
        r0, r1, c0, c1 = self.roi
        h, w = self.size
        pts = [[h * (c.row - r0) / (r1 - r0 + 1), w * (c.col - c0) / (c1 - c0 + 1)] for c in clicks]
        return np.array(pts, dtype=np.float64).reshape(-1, 2)

    def paste(self, prob: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        r0, r1, c0, c1 = self.roi
        inner = F.interpolate(prob, size=(r1 - r0 + 1, c1 - c0 + 1), mode="bilinear", align_corners=True)
        out = torch.zeros((*prob.shape[:2], *self.hw), dtype=prob.dtype, device=prob.device)
        out[:, :, r0 : r1 + 1, c0 : c1 + 1] = inner
        return out


# --------------------------------------------------------------------------- zoom strategies
def object_roi(mask: np.ndarray, clicks: Sequence[Click], expansion: float, min_crop: int) -> Box:
    """SimpleClick's ``get_object_roi``: the bounding box of ``mask`` (bool (H, W)) with the
    positive clicks' pixels added, scaled by ``expansion`` about its centre (at least
    ``min_crop`` px per side, Python rounding), clamped to the image."""
    m = np.asarray(mask, dtype=bool).copy()
    for c in clicks:
        if c.is_positive:
            m[int(c.row), int(c.col)] = True
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    rmin, rmax, cmin, cmax = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    rc, cc = 0.5 * (rmin + rmax), 0.5 * (cmin + cmax)
    hh = max(expansion * (rmax - rmin + 1), min_crop)
    ww = max(expansion * (cmax - cmin + 1), min_crop)
    box = (round(rc - 0.5 * hh), round(rc + 0.5 * hh), round(cc - 0.5 * ww), round(cc + 0.5 * ww))
    h, w = m.shape
    return (max(0, box[0]), min(h - 1, box[1]), max(0, box[2]), min(w - 1, box[3]))


def box_iou(a: Box, b: Box) -> float:
    """SimpleClick's ``get_bbox_iou``: product of the row and column segment overlaps, each
    ``intersection / span of both`` (inclusive pixel segments)."""

    def seg(s: tuple[int, int], t: tuple[int, int]) -> float:
        inter = max(0, min(s[1], t[1]) - max(s[0], t[0]) + 1)
        return inter / max(1e-6, max(s[1], t[1]) - min(s[0], t[0]) + 1)

    return seg((a[0], a[1]), (b[0], b[1])) * seg((a[2], a[3]), (b[2], b[3]))


class NoZoom:
    """Every click on the whole image at its own size."""

    def reset(self, hw: tuple[int, int]) -> None:
        self.hw = (int(hw[0]), int(hw[1]))

    def select(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> View:
        return FullView(self.hw)

    def describe(self) -> dict[str, Any]:
        return {"zoom": "none"}


class SimpleClickZoom:
    """SimpleClick's ``ZoomIn`` (see the module docstring); ``target`` is the square view side.

    With ``skip_clicks >= 0`` the first ``skip_clicks`` clicks, and any click without a
    previous answer to zoom on, use the whole image at its own size (RITM's behaviour; the
    re-prediction RITM adds for ``skip_clicks == 0`` is not reproduced).
    """

    def __init__(
        self,
        target: int,
        *,
        expansion: float = 1.4,
        min_crop: int = 200,
        recompute_iou: float = 0.5,
        prob_threshold: float = 0.5,
        skip_clicks: int = -1,
    ) -> None:
        self.target = int(target)
        self.expansion = float(expansion)
        self.min_crop = int(min_crop)
        self.recompute_iou = float(recompute_iou)
        self.prob_threshold = float(prob_threshold)
        self.skip_clicks = int(skip_clicks)
        self.roi: Box | None = None

    def reset(self, hw: tuple[int, int]) -> None:
        self.hw = (int(hw[0]), int(hw[1]))
        self.roi = None

    def _clicks_inside(self, roi: Box, clicks: Sequence[Click]) -> bool:
        # SimpleClick's check_object_roi: a positive click on the box's last row/column is "outside"
        return all(roi[0] <= c.row < roi[1] and roi[2] <= c.col < roi[3] for c in clicks if c.is_positive)

    def select(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> View:
        if len(clicks) <= self.skip_clicks:
            return FullView(self.hw)
        current: Box | None = None
        mask = np.asarray(prev_prob) > self.prob_threshold
        if mask.any():
            current = object_roi(mask, clicks, self.expansion, self.min_crop)
        if current is None:
            if self.skip_clicks >= 0:
                return FullView(self.hw)
            current = (0, self.hw[0] - 1, 0, self.hw[1] - 1)
        if (
            self.roi is None
            or not self._clicks_inside(self.roi, clicks)
            or box_iou(current, self.roi) < self.recompute_iou
        ):
            self.roi = current
        return CropView(self.roi, (self.target, self.target), self.hw)

    def describe(self) -> dict[str, Any]:
        return {
            "zoom": "simpleclick",
            "target": self.target,
            "expansion": self.expansion,
            "min_crop": self.min_crop,
            "recompute_iou": self.recompute_iou,
            "prob_threshold": self.prob_threshold,
            "skip_clicks": self.skip_clicks,
        }


def _make_simpleclick(cfg: ModelPredictorConfig, train_size: int) -> SimpleClickZoom:
    return SimpleClickZoom(
        cfg.zoom_target_size if cfg.zoom_target_size is not None else train_size,
        expansion=cfg.zoom_expansion,
        min_crop=cfg.zoom_min_crop,
        recompute_iou=cfg.zoom_recompute_iou,
        prob_threshold=cfg.zoom_prob_threshold,
        skip_clicks=cfg.zoom_skip_clicks,
    )


class TaizZoom:
    """VTMR's target-aware zoom (issue 16; :mod:`mis_pipeline.refine.taiz`): the coarse pass sees
    the whole image resized to ``target x target`` (VTMR's bilinear downsampling); the predictor
    then runs the warped pass and blends it in (``ModelPredictor._taiz``). ``params`` is the
    :class:`~mis_pipeline.config.TaizConfig`."""

    def __init__(self, target: int, params: Any = None) -> None:
        from ...config import TaizConfig

        self.target = int(target)
        self.params = params if params is not None else TaizConfig(max_clicks=20)

    def reset(self, hw: tuple[int, int]) -> None:
        self.hw = (int(hw[0]), int(hw[1]))

    def select(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> View:
        return CropView((0, self.hw[0] - 1, 0, self.hw[1] - 1), (self.target, self.target), self.hw)

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"zoom": "taiz", "target": self.target, "taiz_sigma": p.sigma, "taiz_floor": p.floor,
                "taiz_max_clicks": p.max_clicks, "taiz_prob_threshold": p.prob_threshold}


#: zoom name -> builder ``(evaluate.model config, model training size) -> strategy``
ZOOMS: dict[str, Any] = {
    "none": lambda cfg, train_size: NoZoom(),
    "simpleclick": _make_simpleclick,
    "taiz": lambda cfg, train_size: TaizZoom(cfg.zoom_target_size or train_size),
}


# --------------------------------------------------------------------------- predictor
class ModelPredictor(Predictor):
    """A trained :class:`~mis_pipeline.model.SimpleClickModel` answering clicks (module docstring)."""

    name: ClassVar[str] = "model"
    uses_ground_truth: ClassVar[bool] = False

    def __init__(self, model: Any, zoom: Any, *, flip: bool = True, meta: dict[str, Any] | None = None,
                 checkpoint: str | None = None, cfr: Any = None) -> None:
        from ...config import CfrConfig

        self.model = model.eval()
        self.zoom = zoom
        self.flip = bool(flip)
        self.meta = dict(meta or {})
        self.checkpoint = checkpoint
        self.cfr = cfr if cfr is not None else CfrConfig()  # issue 16: CFR / A-CFR (steps 0 = off)
        self._image: torch.Tensor | None = None
        self._tokens_key: Any = None
        self._tokens: torch.Tensor | None = None
        self._prompt: torch.Tensor | None = None  # issue 16: RefCut prompt of the current reference
        self.forwards = 0  # network evaluations so far (CFR / TAIZ add some per click)

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> ModelPredictor:
        from ...errors import ConfigError
        from ...features.vit import resolve_device
        from ...model import load_checkpoint

        m = cfg.evaluate.model
        if m.checkpoint is None:
            raise ConfigError(
                "evaluate.model.checkpoint", None, "a training run folder or its checkpoint/ folder (--checkpoint)"
            )
        device = resolve_device(m.device)
        model, meta = load_checkpoint(m.checkpoint, map_location=device)
        zoom = ZOOMS[m.zoom](m, model.cfg.img_size)
        if isinstance(zoom, TaizZoom):  # T of lambda_t defaults to the protocol's click budget
            zoom.params = dataclasses.replace(cfg.taiz, max_clicks=cfg.taiz.max_clicks or cfg.evaluate.max_clicks)
        return cls(model, zoom, flip=m.flip, meta=meta, checkpoint=str(m.checkpoint), cfr=cfg.cfr)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ protocol
    def reset(self, image: np.ndarray, gt: np.ndarray | None = None, ignore: np.ndarray | None = None) -> None:
        import torch

        image = check_image(image)
        self._image = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        self._hw = image.shape[:2]
        self.zoom.reset(self._hw)
        self._tokens_key, self._tokens = None, None
        self._prompt = None

    def set_reference(self, reference: Any) -> None:
        """RefCut: compute the prompt of ``reference`` (``image (H, W, 3) uint8``, ``positive`` and
        ``negative`` bool (H, W) masks, as :meth:`PartCombinationDataset.load_reference` gives)
        once; every later click of this image uses it. ``None`` removes it. The reference is
        stretched to the model's training size, as in training (:mod:`mis_pipeline.refcut.pairs`)."""
        import torch
        import torch.nn.functional as F

        if reference is None:
            self._prompt = None
            return
        image = check_image(reference.image)
        s = int(self.model.cfg.img_size)
        img = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        img = F.interpolate(img, size=(s, s), mode="bilinear", align_corners=False)

        def mask(m: Any) -> torch.Tensor | None:
            m = np.asarray(m, dtype=bool)
            if not m.any():
                return None
            t = torch.from_numpy(m.astype(np.float32)).to(self.device)[None, None]
            return F.interpolate(t, size=(s, s), mode="nearest")[:, 0]

        with torch.no_grad():
            self._prompt = self.model.reference_prompt(img, mask(reference.positive), mask(reference.negative))

    def predict(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> np.ndarray:
        import torch

        from ...refine import cascade_forward, cfr_applies

        if self._image is None:
            raise RuntimeError("call reset(image) before predict()")
        prev_prob = np.asarray(prev_prob, dtype=np.float32)
        view = self.zoom.select(clicks, prev_prob)
        prev = torch.from_numpy(prev_prob).to(self.device)[None, None]

        def forward(prev_full: torch.Tensor) -> torch.Tensor:  # image-size probabilities in and out
            return view.paste(torch.sigmoid(self.forward_logits(view, clicks, view.image(prev_full))))

        c = self.cfr
        with torch.no_grad():
            if c.steps > 0 and cfr_applies(len(clicks), c.max_clicks):  # CFR-ICL eqs. 4-5
                prob = cascade_forward(forward, prev, steps=c.steps, adaptive=c.adaptive, threshold=c.threshold,
                                       prob_threshold=c.prob_threshold).prob
            else:
                prob = forward(prev)
            if isinstance(self.zoom, TaizZoom):
                prob = self._taiz(clicks, prob)
        return prob[0, 0].float().cpu().numpy()

    def _taiz(self, clicks: Sequence[Click], prob: torch.Tensor) -> torch.Tensor:
        """VTMR's blend of the coarse answer ``prob (1, 1, H, W)`` with the warped pass."""
        import torch

        from ...refine import taiz_refine

        p = self.zoom.params
        pts = np.array([[c.row, c.col] for c in clicks], dtype=np.int64).reshape(-1, 2)
        positive = np.array([c.is_positive for c in clicks], dtype=bool)

        def run(img_w, prev_w, pts_w, lab_w, ok_w):  # noqa: ANN001, ANN202 - taiz_refine's callback
            maps = disk_maps(pts_w[0].cpu().numpy().astype(np.float64), lab_w[0].cpu().numpy() == 1,
                             tuple(img_w.shape[-2:]), self.model.cfg.click_radius)
            coord = torch.cat([prev_w.float(), torch.from_numpy(maps).to(self.device)[None]], dim=1)
            image = img_w
            if self.flip:
                image = torch.cat([image, torch.flip(image, dims=[3])], dim=0)
                coord = torch.cat([coord, torch.flip(coord, dims=[3])], dim=0)
            self.forwards += 1
            logits = self.model.forward_maps(image, coord, prompt=self._batch_prompt(coord.shape[0]))
            return 0.5 * (logits[:1] + torch.flip(logits[1:], dims=[3])) if self.flip else logits

        coarse = torch.logit(prob.float(), eps=1e-6)
        out, _lam = taiz_refine(run, self._image, coarse, pts, positive.astype(np.int64), np.ones(len(pts), bool),
                                t=len(clicks), out_hw=(self.zoom.target, self.zoom.target), sigma=p.sigma,
                                floor=p.floor, max_clicks=p.max_clicks or 20, prob_threshold=p.prob_threshold,
                                click_radius=self.model.cfg.click_radius)
        return torch.sigmoid(out)

    def _batch_prompt(self, b: int) -> torch.Tensor | None:
        return None if self._prompt is None else self._prompt.expand(b, -1)

    def forward_logits(self, view: View, clicks: Sequence[Click], prev_mask: torch.Tensor) -> torch.Tensor:
        """One network evaluation on ``view``: logits ``(1, 1, h, w)`` for ``clicks`` and the
        previous mask ``prev_mask (1, 1, h, w)`` (in view pixels, probabilities), averaged with
        the mirrored input when ``flip``. The view's image embedding is cached. Call it under
        ``torch.no_grad()`` (as :meth:`predict` does)."""
        import torch

        h, w = view.size
        pts = view.points(clicks)
        maps = disk_maps(pts, np.array([c.is_positive for c in clicks], dtype=bool), (h, w), self.model.cfg.click_radius)
        coord = torch.cat([prev_mask.float(), torch.from_numpy(maps).to(self.device)[None]], dim=1)
        tokens = self._view_tokens(view)
        if self.flip:
            # a disk mirrored about the vertical axis is the disk of the mirrored click
            coord = torch.cat([coord, torch.flip(coord, dims=[3])], dim=0)
        self.forwards += 1
        logits = self.model.forward_maps(None, coord, image_tokens=tokens, prompt=self._batch_prompt(coord.shape[0]))
        if self.flip:
            logits = 0.5 * (logits[:1] + torch.flip(logits[1:], dims=[3]))
        return logits

    def _view_tokens(self, view: View) -> torch.Tensor:
        import torch

        if self._tokens is None or self._tokens_key != view.key:
            img = view.image(self._image)
            if self.flip:
                img = torch.cat([img, torch.flip(img, dims=[3])], dim=0)
            self._tokens = self.model.embed_image(img)
            self._tokens_key = view.key
        return self._tokens

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "uses_ground_truth": self.uses_ground_truth,
            "checkpoint": self.checkpoint,
            "flip": self.flip,
            "model": self.meta.get("model", {}),
            "cfr_steps": self.cfr.steps,
            "cfr_adaptive": self.cfr.adaptive,
            "cfr_threshold": self.cfr.threshold,
            "cfr_max_clicks": self.cfr.max_clicks,
        }
        describe = getattr(self.zoom, "describe", None)
        if describe is not None:
            out.update(describe())
        return out
