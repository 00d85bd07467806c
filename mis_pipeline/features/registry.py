"""The backbone protocol and the registry that builds backbones by name.

A backbone turns RGB images whose sides are multiples of its patch size into per-patch
feature grids. Variants are registered builder functions (``@register_backbone("name")``)
taking a validated :class:`~mis_pipeline.config.FeatureConfig`; :func:`get_backbone` looks
one up and builds it (model construction and weight loading happen there, once).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..config import FeatureConfig, IOConfig, from_dict, to_dict
from ..errors import ConfigError, ImageArrayError

__all__ = [
    "Backbone",
    "BackboneBase",
    "register_backbone",
    "get_backbone",
    "available_backbones",
    "check_patch_images",
]


@runtime_checkable
class Backbone(Protocol):
    """What every feature backbone provides.

    Attributes
    ----------
    name : str
        Registry name (``"dino_vits8"``).
    patch_size : int
        Side of one square patch in pixels; one feature vector per patch.
    dim : int
        Feature channels ``C``.
    """

    name: str
    patch_size: int
    dim: int

    def extract(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of images already resized to multiples of ``patch_size``.

        ``images[i]`` is ``(H_i, W_i, 3)`` uint8 RGB with ``H_i % patch_size == 0`` and
        ``W_i % patch_size == 0``. Returns one ``(H_i // patch_size, W_i // patch_size, dim)``
        float32 array per image, in input order; grid rows top to bottom, row-major.
        """
        ...

    def features_for_image(self, image: np.ndarray, max_side: int | None = None) -> np.ndarray:
        """Resize one ``(H, W, 3)`` uint8 image by the patch rule, then :meth:`extract` it."""
        ...


def check_patch_images(images: Sequence[np.ndarray], patch: int, who: str) -> None:
    """Raise :class:`ImageArrayError` unless every image is ``(H, W, 3)`` uint8 with sides
    that are positive multiples of ``patch``."""
    if isinstance(images, np.ndarray):
        raise ImageArrayError(
            f"{who}.extract takes a sequence of (H, W, 3) uint8 images, not one array of shape "
            f"{images.shape}; wrap a single image in a list"
        )
    for i, img in enumerate(images):
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            got = f"shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise ImageArrayError(f"{who}: image {i} must be an (H, W, 3) RGB array; got {got}")
        if img.dtype != np.uint8:
            raise ImageArrayError(f"{who}: image {i} must be uint8; got dtype {img.dtype}")
        h, w = img.shape[:2]
        if h < patch or w < patch or h % patch or w % patch:
            raise ImageArrayError(
                f"{who}: image {i} is {h}x{w} (height x width); both sides must be positive "
                f"multiples of the patch size {patch} (resize with "
                "mis_pipeline.io.resize_for_patches first)"
            )


class BackboneBase(abc.ABC):
    """Shared behaviour: :meth:`features_for_image` on top of a subclass's :meth:`extract`."""

    name: str
    patch_size: int
    dim: int

    @abc.abstractmethod
    def extract(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """See :meth:`Backbone.extract`."""

    def features_for_image(
        self, image: np.ndarray, max_side: int | None = IOConfig.max_side
    ) -> np.ndarray:
        """``(grid_h, grid_w, dim)`` float32 features of one ``(H, W, 3)`` uint8 RGB image,
        resized first by :func:`mis_pipeline.io.resize_for_patches`."""
        from ..io import resize_for_patches

        return self.extract([resize_for_patches(image, self.patch_size, max_side)])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, patch_size={self.patch_size}, dim={self.dim})"


_BUILDERS: dict[str, Callable[[FeatureConfig], Backbone]] = {}


def register_backbone(
    name: str,
) -> Callable[[Callable[[FeatureConfig], Backbone]], Callable[[FeatureConfig], Backbone]]:
    """Decorator registering ``builder(cfg: FeatureConfig) -> Backbone`` under ``name``."""

    def deco(builder: Callable[[FeatureConfig], Backbone]) -> Callable[[FeatureConfig], Backbone]:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"a backbone named {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return deco


def available_backbones() -> tuple[str, ...]:
    """Registered backbone names, sorted."""
    return tuple(sorted(_BUILDERS))


def get_backbone(cfg_or_name: FeatureConfig | str, **overrides: Any) -> Backbone:
    """Build a backbone.

    Parameters
    ----------
    cfg_or_name : FeatureConfig or str
        A feature configuration, or a backbone name (other fields take their defaults).
    **overrides
        FeatureConfig fields to change (``weights="none"``, ``device="cpu"``, ...); validated.

    Examples
    --------
    >>> bb = get_backbone("colour_texture")
    >>> bb.patch_size, bb.dim
    (8, 17)
    """
    if isinstance(cfg_or_name, FeatureConfig):
        cfg = (
            from_dict(FeatureConfig, {**to_dict(cfg_or_name), **overrides})
            if overrides
            else cfg_or_name
        )
    elif isinstance(cfg_or_name, str):
        cfg = from_dict(FeatureConfig, {"backbone": cfg_or_name, **overrides})
    else:
        raise TypeError(
            f"get_backbone takes a FeatureConfig or a backbone name; got {type(cfg_or_name).__name__}"
        )
    builder = _BUILDERS.get(cfg.backbone)
    if builder is None:
        raise ConfigError(
            "features.backbone", cfg.backbone, "one of " + ", ".join(available_backbones())
        )
    return builder(cfg)
