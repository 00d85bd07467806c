"""Patch-feature backbones from a small registry.

Public API
----------
:func:`get_backbone`         build a backbone from a FeatureConfig or a name
:func:`available_backbones`  registered names
:func:`register_backbone`    decorator for new variants
:class:`Backbone`            the protocol: ``name``, ``patch_size``, ``dim``, ``extract``,
                             ``features_for_image``

Registered: ``dino_vits8``, ``dino_vits16``, ``dino_vitb8``, ``dino_vitb16``,
``dinov2_vits14`` (timm ViTs), ``colour_texture`` (weights-free, CPU) and ``test_vit_tiny``
(a tiny random ViT for tests). Importing this package imports neither torch nor timm nor
OpenCV; building a backbone does.
"""

from . import colour_texture as _colour_texture  # noqa: F401  (registers its builder)
from . import vit as _vit  # noqa: F401  (registers the ViT builders)
from .registry import (
    Backbone,
    BackboneBase,
    available_backbones,
    check_patch_images,
    get_backbone,
    register_backbone,
)

__all__ = [
    "Backbone",
    "BackboneBase",
    "available_backbones",
    "check_patch_images",
    "get_backbone",
    "register_backbone",
]
