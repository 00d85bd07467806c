"""SUEM copy-paste augmentation of CFR-ICL (Sun et al., Sec. 3.3) for supervised fine-tuning.

Four modes on a *source* sample (image, object mask) and *extra* samples drawn at random from
the training set (already augmented to the same crop size):

- **Simple** C&P: the source object is pasted onto the extra image; the target is the source
  mask (:func:`simple_paste`).
- **Union** C&P: an extra object is pasted into the source image; the target is the union of the
  two masks (:func:`union_paste`).
- **Exclusion** C&P: an extra object is pasted into the source image over the source object; the
  target is the source mask minus the extra object (:func:`exclusion_paste`).
- Image **Mixing**: the whole source image is blended with an extra image; the target is the
  source mask (:func:`image_mix`).

The paper gives no probabilities; :func:`suem_augment` follows the public code
(``isegm/data/base.py``, ``copy_paste_prob = image_mix_prob = 0.5`` in its model configs):

1. with probability ``copy_paste_prob``, simple C&P, alpha-blended: pasted pixels are
   ``alpha * source + (1 - alpha) * extra`` with ``alpha ~ U[0.5, 1]``;
2. independently with probability ``copy_paste_prob``, an extra object from another sample is
   pasted into the (possibly new) source image at its own position: one of exclusion, union or
   an alpha-blended paste that keeps the mask (uniform over the three; the third is the public
   code's, not named in the paper). Up to ``max_tries`` extra objects are drawn until one leaves
   more than ``min_visible`` (20) source pixels visible; if none does, nothing is pasted;
3. independently with probability ``image_mix_prob``, image mixing with ``alpha ~ U[0.5, 1]``
   weighting the source image.

Blends round like OpenCV's ``addWeighted`` on uint8 (round half to even here, saturating).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..config import SuemConfig

__all__ = [
    "simple_paste",
    "union_paste",
    "exclusion_paste",
    "alpha_paste",
    "image_mix",
    "suem_augment",
    "SuemResult",
]


def _check(image: np.ndarray, mask: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what} image must be (H, W, 3) uint8, got shape {image.shape} dtype {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{what} mask shape {mask.shape} does not match its image {image.shape[:2]}")
    return image, mask


def _same_size(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"SUEM needs samples of one crop size, got {a.shape} and {b.shape}")


def _blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha * a + (1 - alpha) * b`` on uint8, rounded and saturated (cv2.addWeighted)."""
    out = alpha * a.astype(np.float32) + (1.0 - alpha) * b.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def simple_paste(image: np.ndarray, mask: np.ndarray, extra_image: np.ndarray, alpha: float = 1.0):
    """Simple C&P: the source object onto ``extra_image``. Returns ``(image, mask)``; mask = source."""
    image, mask = _check(image, mask, "source")
    _same_size(image, np.asarray(extra_image))
    out = np.array(extra_image, dtype=np.uint8, copy=True)
    out[mask] = _blend(image[mask], out[mask], alpha)
    return out, mask.copy()


def _paste_extra(image, mask, extra_image, extra_mask, alpha: float = 1.0):
    image, mask = _check(image, mask, "source")
    extra_image, extra_mask = _check(extra_image, extra_mask, "extra")
    _same_size(image, extra_image)
    out = image.copy()
    out[extra_mask] = _blend(extra_image[extra_mask], image[extra_mask], alpha) if alpha < 1 else extra_image[extra_mask]
    return out, mask, extra_mask


def union_paste(image, mask, extra_image, extra_mask):
    """Union C&P: the extra object pasted into the source image; mask = source | extra."""
    out, m, e = _paste_extra(image, mask, extra_image, extra_mask)
    return out, m | e


def exclusion_paste(image, mask, extra_image, extra_mask):
    """Exclusion C&P: the extra object pasted over the source; mask = source & ~extra."""
    out, m, e = _paste_extra(image, mask, extra_image, extra_mask)
    return out, m & ~e


def alpha_paste(image, mask, extra_image, extra_mask, alpha: float):
    """The public code's third paste: extra-object pixels become ``alpha * source + (1 - alpha)
    * extra``; mask = source."""
    image, mask = _check(image, mask, "source")
    extra_image, extra_mask = _check(extra_image, extra_mask, "extra")
    _same_size(image, extra_image)
    out = image.copy()
    out[extra_mask] = _blend(image[extra_mask], extra_image[extra_mask], alpha)
    return out, mask.copy()


def image_mix(image: np.ndarray, mask: np.ndarray, extra_image: np.ndarray, alpha: float):
    """Image mixing: ``alpha * source + (1 - alpha) * extra`` everywhere; mask = source."""
    image, mask = _check(image, mask, "source")
    _same_size(image, np.asarray(extra_image))
    return _blend(image, np.asarray(extra_image), alpha), mask.copy()


class SuemResult(NamedTuple):
    """``image (H, W, 3) uint8``, ``mask (H, W) bool`` and the modes applied in order
    (``"simple"``, ``"union"``, ``"exclusion"``, ``"alpha"``, ``"mix"``)."""

    image: np.ndarray
    mask: np.ndarray
    modes: tuple[str, ...]


def suem_augment(
    image: np.ndarray,
    mask: np.ndarray,
    draw_extra: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    cfg: SuemConfig,
) -> SuemResult:
    """Apply SUEM to one sample as the public code does (module docstring).

    ``draw_extra(rng) -> (image (H, W, 3) uint8, mask (H, W) bool)`` returns a random other
    training sample (augmented to the same size) and one of its objects; it is called only when
    a mode needs one, with the same generator, so results are reproducible from the seed.
    """
    image, mask = _check(image, mask, "source")
    lo, hi = cfg.alpha_range
    modes: list[str] = []
    if rng.random() < cfg.copy_paste_prob:
        extra_image, _ = draw_extra(rng)
        image, mask = simple_paste(image, mask, extra_image, float(rng.uniform(lo, hi)))
        modes.append("simple")
    if rng.random() < cfg.copy_paste_prob:
        for _ in range(cfg.max_tries):
            extra_image, extra_mask = draw_extra(rng)
            extra_mask = np.asarray(extra_mask, dtype=bool)
            if np.count_nonzero(mask & ~extra_mask) <= cfg.min_visible:
                continue  # the extra object would (almost) hide the source: draw another
            choice = int(rng.integers(0, 3))
            if choice == 0:
                image, mask = exclusion_paste(image, mask, extra_image, extra_mask)
                modes.append("exclusion")
            elif choice == 1:
                image, mask = union_paste(image, mask, extra_image, extra_mask)
                modes.append("union")
            else:
                image, mask = alpha_paste(image, mask, extra_image, extra_mask, float(rng.uniform(lo, hi)))
                modes.append("alpha")
            break
    if rng.random() < cfg.image_mix_prob:
        extra_image, _ = draw_extra(rng)
        image, mask = image_mix(image, mask, extra_image, float(rng.uniform(lo, hi)))
        modes.append("mix")
    return SuemResult(image, mask, tuple(modes))
