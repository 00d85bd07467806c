"""SimpleClick's decoder: the simple feature pyramid over the ViT's last tokens and the
all-MLP (SegFormer-style) head.

Pyramid (from the ``(B, D, gh, gw)`` 1/16 map, layer layout as SimpleClick's ``SimpleFPN``):

- 1/4: two stride-2 transposed convolutions (``D -> c4 -> c4/2``, ``c4 = max(2 * dims[0], D/2)``,
  GroupNorm(1) and GELU between), a 1x1 convolution to ``dims[0]``, GroupNorm(1), GELU;
- 1/8: one transposed convolution (``D -> c8``, ``c8 = max(dims[1], D/2)``), GroupNorm(1), a
  1x1 convolution to ``dims[1]``, GroupNorm(1), GELU;
- 1/16: a 1x1 convolution to ``dims[2]``, GroupNorm(1), GELU;
- 1/32: a 2x2 stride-2 convolution (``D -> c32``, ``c32 = max(dims[3], 2 D)``), GroupNorm(1), a 1x1
  convolution to ``dims[3]``, GroupNorm(1), GELU.

Head (SimpleClick's ``SwinTransfomerSegHead`` with ``upsample='x1'``): a 1x1 convolution + ReLU
per level to ``channels``, each resized to the 1/4 map (bilinear, ``align_corners=False``),
concatenated, fused by a 1x1 convolution + ReLU, dropout (``Dropout2d``), and a 1x1 convolution
to one logit per pixel of the 1/4 map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SimpleFeaturePyramid", "MLPHead"]


class SimpleFeaturePyramid(nn.Module):
    """``(B, D, gh, gw)`` -> four maps ``(B, dims[i], gh * 4 / 2^i, ...)`` at 1/4, 1/8, 1/16, 1/32."""

    def __init__(self, in_dim: int, dims: tuple[int, int, int, int]) -> None:
        super().__init__()
        c4 = max(dims[0] * 2, in_dim // 2)
        self.down_4 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, c4, 2, stride=2),
            nn.GroupNorm(1, c4),
            nn.GELU(),
            nn.ConvTranspose2d(c4, c4 // 2, 2, stride=2),
            nn.GroupNorm(1, c4 // 2),
            nn.Conv2d(c4 // 2, dims[0], 1),
            nn.GroupNorm(1, dims[0]),
            nn.GELU(),
        )
        c8 = max(dims[1], in_dim // 2)
        self.down_8 = nn.Sequential(
            nn.ConvTranspose2d(in_dim, c8, 2, stride=2),
            nn.GroupNorm(1, c8),
            nn.Conv2d(c8, dims[1], 1),
            nn.GroupNorm(1, dims[1]),
            nn.GELU(),
        )
        self.down_16 = nn.Sequential(nn.Conv2d(in_dim, dims[2], 1), nn.GroupNorm(1, dims[2]), nn.GELU())
        c32 = max(dims[3], in_dim * 2)
        self.down_32 = nn.Sequential(
            nn.Conv2d(in_dim, c32, 2, stride=2),
            nn.GroupNorm(1, c32),
            nn.Conv2d(c32, dims[3], 1),
            nn.GroupNorm(1, dims[3]),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.down_4(x), self.down_8(x), self.down_16(x), self.down_32(x)]


class MLPHead(nn.Module):
    """Four pyramid maps -> logits ``(B, 1, h4, w4)`` at the size of the first (1/4) map."""

    def __init__(self, in_dims: tuple[int, ...], channels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Sequential(nn.Conv2d(c, channels, 1), nn.ReLU()) for c in in_dims)
        self.fuse = nn.Sequential(nn.Conv2d(channels * len(in_dims), channels, 1), nn.ReLU())
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, 1, 1)
        # mmcv's ConvModule init (Kaiming, fan_out, ReLU) and the decode head's N(0, 0.01) classifier
        for seq in [*self.proj, self.fuse]:
            nn.init.kaiming_normal_(seq[0].weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(seq[0].bias)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        outs = []
        for f, proj in zip(feats, self.proj, strict=True):
            y = proj(f)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            outs.append(y)
        return self.classifier(self.dropout(self.fuse(torch.cat(outs, dim=1))))
