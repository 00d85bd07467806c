"""Registered architectures of the SimpleClick model: backbone size and neck/head widths.

Names match :data:`mis_pipeline.config.MODEL_ARCHS`. The widths of ``vit_base``, ``vit_large``,
``vit_huge`` and ``vit_xtiny`` are those of SimpleClick's public configurations
(``models/iter_mask/plainvit_*448_*.py``; MIS trains ``vit_base``); ``vit_tiny`` (CPU runs) and
``vit_test`` (unit tests) are small models of the same design. A checkpoint stores the resolved
:class:`ViTArch`, so it does not depend on this table staying the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ViTArch", "ARCHS", "get_arch"]


@dataclass(frozen=True)
class ViTArch:
    """A plain ViT backbone with its simple feature pyramid and all-MLP head.

    ``neck_dims`` are the channels of the 1/4, 1/8, 1/16 and 1/32 feature maps,
    ``head_channels`` the width of the head's fused map, ``mae`` the timm name of the MAE
    weights for this backbone (None when MAE did not release it).
    """

    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    neck_dims: tuple[int, int, int, int]
    head_channels: int
    mae: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "neck_dims", tuple(int(c) for c in self.neck_dims))
        if len(self.neck_dims) != 4:
            raise ValueError(f"neck_dims must have 4 entries (1/4 .. 1/32), got {self.neck_dims}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}")


ARCHS: dict[str, ViTArch] = {
    "vit_base": ViTArch(16, 768, 12, 12, 4.0, (128, 256, 512, 1024), 256, "vit_base_patch16_224.mae"),
    "vit_large": ViTArch(16, 1024, 24, 16, 4.0, (192, 384, 768, 1536), 256, "vit_large_patch16_224.mae"),
    "vit_huge": ViTArch(14, 1280, 32, 16, 4.0, (240, 480, 960, 1920), 256, "vit_huge_patch14_224.mae"),
    "vit_xtiny": ViTArch(16, 160, 8, 4, 4.0, (96, 192, 288, 384), 128),
    "vit_tiny": ViTArch(16, 128, 4, 4, 4.0, (16, 32, 64, 128), 32),
    "vit_test": ViTArch(16, 32, 2, 2, 2.0, (8, 16, 24, 32), 16),
}


def get_arch(name: str) -> ViTArch:
    """The registered architecture ``name``."""
    if name not in ARCHS:
        raise ConfigError("model.arch", name, "one of " + ", ".join(repr(n) for n in ARCHS))
    return ARCHS[name]
