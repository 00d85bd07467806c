"""Training augmentation of the MIS SBD setting, built on albumentations, seeded per sample.

The pipeline (RITM's ``hrnet18_sbd_itermask_3p`` augmentator with MIS's 448 crop, the order
of :class:`~mis_pipeline.config.AugmentConfig`):

1. :class:`UniformRandomResize` ``scale ~ U(0.75, 1.25)``; the new size is
   ``round(h * scale) x round(w * scale)`` (RITM's transform: bilinear image, nearest mask);
2. horizontal flip (p 0.5) and ``RandomRotate90`` (p 0.5, 0/90/180/270 degrees).
   RITM's config uses albumentations 0.x ``Flip()`` (horizontal, vertical or both); the issue
   and MIS's setting state a horizontal flip, which is what ``hflip`` does;
3. ShiftScaleRotate with shift 0.03, no scale, rotation +-3 degrees, constant zero border,
   p 0.75 (written as ``A.Affine``, which albumentations 2 implements ShiftScaleRotate with);
4. ``PadIfNeeded`` to the crop size (zeros, centred) and a ``RandomCrop`` of ``crop x crop``;
5. ``RandomBrightnessContrast`` (brightness +-0.25, contrast -0.15..0.4, p 0.75) and
   ``RGBShift`` +-10 per channel (p 0.75): after the crop, so they cost the crop's pixels only.

Seeding: albumentations 2 draws every parameter from each transform's own ``py_random``
(:class:`random.Random`) and ``random_generator`` (numpy ``Generator``), set by
``set_random_seed``. ``Compose.set_random_seed`` gives *every* transform the same seed, so the
first draw of each transform would be the same number (the flip and the rotation decisions
would be correlated); :class:`Augmenter` instead seeds each transform with its own 32-bit
word of :meth:`numpy.random.SeedSequence.generate_state` before each call. The result is then
a pure function of ``(image, masks, seed)``: the same in any process, any worker, any order.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from ..config import AugmentConfig
from ..errors import ConfigError

__all__ = ["Augmenter", "Augmented", "augment", "build_transforms"]


class Augmented(NamedTuple):
    """One augmented sample: ``image (crop, crop, 3) uint8``, ``mask (crop, crop) bool`` and
    ``other (crop, crop) bool`` or ``None`` (when no "other objects" mask was given)."""

    image: np.ndarray
    mask: np.ndarray
    other: np.ndarray | None


def _albumentations() -> Any:
    """Import albumentations without its import-time update check.

    albumentations 2 asks PyPI for a newer version on import (up to 2 s per process, in every
    DataLoader / Ray worker, and a network call on machines that must make none) unless
    ``NO_ALBUMENTATIONS_UPDATE`` is set; it is set here, before the first import, unless the
    user chose a value.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations


def _uniform_random_resize_cls() -> type:
    """The RITM ``UniformRandomResize`` as an albumentations 2 ``DualTransform`` (built lazily so
    that importing this module does not import albumentations)."""
    import cv2

    A = _albumentations()

    class UniformRandomResize(A.DualTransform):
        """Resize by one factor ``s ~ U(lo, hi)`` to ``(round(h*s), round(w*s))``: bilinear for
        the image, nearest for masks (RITM ``isegm.data.transforms.UniformRandomResize``)."""

        def __init__(self, scale_range: tuple[float, float] = (0.9, 1.1), p: float = 1.0) -> None:
            super().__init__(p=p)
            self.scale_range = (float(scale_range[0]), float(scale_range[1]))

        def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
            h, w = params["shape"][:2]
            s = self.py_random.uniform(*self.scale_range)
            return {"new_hw": (max(int(round(h * s)), 1), max(int(round(w * s)), 1))}

        def apply(self, img: np.ndarray, new_hw: tuple[int, int] = (1, 1), **params: Any) -> np.ndarray:
            return cv2.resize(img, (new_hw[1], new_hw[0]), interpolation=cv2.INTER_LINEAR)

        def apply_to_mask(self, mask: np.ndarray, new_hw: tuple[int, int] = (1, 1), **params: Any) -> np.ndarray:
            return cv2.resize(mask, (new_hw[1], new_hw[0]), interpolation=cv2.INTER_NEAREST)

        def get_transform_init_args_names(self) -> tuple[str, ...]:
            return ("scale_range",)

    return UniformRandomResize


def _check(cfg: AugmentConfig) -> None:
    for name in ("scale_range", "brightness_limit", "contrast_limit"):
        lo, hi = getattr(cfg, name)
        if lo > hi:
            raise ConfigError(f"data.augment.{name}", (lo, hi), "a pair (low, high) with low <= high")


def build_transforms(cfg: AugmentConfig) -> list[Any]:
    """The albumentations transforms of ``cfg``, in application order (see the module doc).

    Transforms switched off by the config (``hflip=False``, a probability of 0) are left out,
    so they consume no seed word and cost nothing.
    """
    import cv2

    A = _albumentations()
    _check(cfg)
    c = int(cfg.crop_size)
    out: list[Any] = [_uniform_random_resize_cls()(scale_range=cfg.scale_range, p=1.0)]
    if cfg.hflip:
        out.append(A.HorizontalFlip(p=0.5))
    if cfg.rotate90:
        out.append(A.RandomRotate90(p=0.5))
    if cfg.ssr_prob > 0:
        s, r = float(cfg.shift_limit), float(cfg.rotate_limit)
        out.append(
            A.Affine(
                translate_percent={"x": (-s, s), "y": (-s, s)},
                rotate=(-r, r),
                scale=1.0,
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
                p=float(cfg.ssr_prob),
            )
        )
    out.append(A.PadIfNeeded(min_height=c, min_width=c, position="center", border_mode=cv2.BORDER_CONSTANT,
                             fill=0, fill_mask=0))
    out.append(A.RandomCrop(height=c, width=c))
    if cfg.brightness_contrast_prob > 0:
        out.append(
            A.RandomBrightnessContrast(
                brightness_limit=tuple(cfg.brightness_limit),
                contrast_limit=tuple(cfg.contrast_limit),
                p=float(cfg.brightness_contrast_prob),
            )
        )
    if cfg.rgb_shift_prob > 0 and cfg.rgb_shift > 0:
        lim = (-float(cfg.rgb_shift), float(cfg.rgb_shift))
        out.append(A.RGBShift(r_shift_limit=lim, g_shift_limit=lim, b_shift_limit=lim, p=float(cfg.rgb_shift_prob)))
    return out


class Augmenter:
    """The seeded augmentation of ``cfg``: ``augmenter(image, mask, seed, other=None)``.

    Holds the albumentations transforms (built once); not thread-safe (the transforms carry
    their random state), so use one per process or thread, as a DataLoader worker does.
    ``fused_colour=False`` applies the colour transforms to the crop one after the other (the
    plain path); the default composes them into one lookup table first (same bytes).
    """

    def __init__(self, cfg: AugmentConfig | None = None, *, fused_colour: bool = True) -> None:
        self.cfg = cfg if cfg is not None else AugmentConfig()
        self.transforms = build_transforms(self.cfg)
        self.fused_colour = bool(fused_colour)
        # The colour transforms (last in the list) are per-channel point functions of uint8 whose
        # parameters do not depend on the image (brightness_by_max, a constant RGB shift): each
        # sample's pair is one lookup table per channel (see _colour_lut).
        names = [type(t).__name__ for t in self.transforms]
        self._n_geometric = len(names) - sum(n in _POINTWISE for n in names)
        if any(n in _POINTWISE for n in names[: self._n_geometric]):
            raise AssertionError(f"colour transforms must come last, got {names}")

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        seed: int | np.random.SeedSequence,
        other: np.ndarray | None = None,
    ) -> Augmented:
        """Augment ``image (H, W, 3) uint8`` and ``mask (H, W) bool`` (and ``other``) together.

        ``seed`` is an int or a :class:`numpy.random.SeedSequence`; the output is a pure
        function of the inputs and the seed. Returns :class:`Augmented` with
        ``(crop, crop)`` arrays.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        masks = [mask] if other is None else [mask, other]
        for name, m in zip(("mask", "other"), masks, strict=False):
            if np.shape(m) != (h, w):
                raise ValueError(f"{name} must be (H, W) = ({h}, {w}) like the image, got {np.shape(m)}")
        # One uint8 plane per mask, stacked so every geometric op touches them once.
        planes = np.stack([np.asarray(m, dtype=bool) for m in masks], axis=-1).view(np.uint8)
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
        words = ss.generate_state(len(self.transforms), dtype=np.uint32)
        data: dict[str, Any] = {"image": np.ascontiguousarray(image), "mask": planes}
        n_geo = self._n_geometric if self.fused_colour else len(self.transforms)
        for t, word in zip(self.transforms[:n_geo], words[:n_geo], strict=True):
            t.set_random_seed(int(word))
            data = t(**data)
        img = np.ascontiguousarray(data["image"])
        if n_geo < len(self.transforms):
            import cv2

            img = cv2.LUT(img, self._colour_lut(words[n_geo:]))
        out = np.asarray(data["mask"])
        if out.ndim == 2:  # cv2 drops a trailing singleton channel
            out = out[:, :, None]
        return Augmented(img, out[:, :, 0].astype(bool), out[:, :, 1].astype(bool) if other is not None else None)

    def _colour_lut(self, words: np.ndarray) -> np.ndarray:
        """``(256, 1, 3) uint8`` table of the colour transforms seeded with ``words``.

        Fast path of applying them to the crop (tested bit-exact against it): the transforms
        run, with the same seeds and hence the same parameters, on a 256 x 1 ramp holding
        every uint8 value in each channel, so row ``v`` of the result is what they make of
        value ``v``; ``cv2.LUT`` then applies the composed table to the crop in one pass
        instead of two passes, one of them RGBShift's float round trip (whole augmentation
        about 0.55x of the plain path at 448 crops, paired A/B). Valid while both transforms
        stay point functions with image-independent parameters; the bit-exactness test
        against the plain path guards that for future albumentations versions.
        """
        data: dict[str, Any] = {"image": _RAMP.copy()}
        for t, word in zip(self.transforms[self._n_geometric :], words, strict=True):
            t.set_random_seed(int(word))
            data = t(**data)
        return np.ascontiguousarray(data["image"], dtype=np.uint8)


# Transforms that map each channel value through a function fixed by their parameters alone.
_POINTWISE = ("RandomBrightnessContrast", "RGBShift")
_RAMP = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)  # (256, 1, 3)


def augment(
    image: np.ndarray,
    mask: np.ndarray,
    seed: int | np.random.SeedSequence,
    cfg: AugmentConfig | None = None,
    *,
    other: np.ndarray | None = None,
) -> Augmented:
    """One-off :class:`Augmenter` call (builds the transforms each time; keep an
    :class:`Augmenter` for loops)."""
    return Augmenter(cfg)(image, mask, seed, other=other)
